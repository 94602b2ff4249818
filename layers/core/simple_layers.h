#pragma once
// Small layers without weights: Activation, Dropout, Flatten, Reshape.
#include <optional>

#include "../../core/random.h"
#include "../layer.h"

namespace keras::layers {

/// Applies a named activation (see keras::activations).
class KERASCPP_API Activation : public Layer {
 public:
  KERASCPP_LAYER(Activation)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Activation(std::string activation, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool ends_with_softmax() const override { return activation_ == "softmax"; }
  bool supports_masking() const override { return true; }
  Tensor call_logits(const Tensor& x, bool training) override { return x; }
  const std::string& activation() const { return activation_; }

 private:
  std::string activation_;
};

struct DropoutOptions {
  std::optional<uint64_t> seed;
  /// The shape of the keep mask, broadcast over the input (null entries: the input's size), as Keras:
  /// {std::nullopt, 1, std::nullopt} drops the same features at every step of a sequence.
  std::optional<PartialShape> noise_shape;
  std::string name;
};

namespace detail {
/// A noise shape with its null entries filled in from x's shape; refuses a shape that does not
/// broadcast onto x's.
Shape concrete_noise_shape(const std::string& layer, const PartialShape& noise_shape, const Tensor& x);
/// Dropout's and AlphaDropout's config keys: name, seed, noise_shape.
DropoutOptions read_dropout_options(serialization::ConfigReader& r);
}  // namespace detail

/// In training, zeroes each input unit with probability `rate` and scales the rest by 1 / (1 - rate).
class KERASCPP_API Dropout : public Layer {
 public:
  KERASCPP_LAYER(Dropout)
  std::vector<random::SeedGenerator*> seed_generators() override { return {&seeds_}; }
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Dropout(float rate, DropoutOptions options = {});
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool supports_masking() const override { return true; }
  float rate() const { return rate_; }

 private:
  float rate_;
  std::optional<uint64_t> seed_;
  std::optional<PartialShape> noise_shape_;
  random::SeedGenerator seeds_;
};

/// Flattens all axes but the batch axis.
class KERASCPP_API Flatten : public Layer {
 public:
  KERASCPP_LAYER(Flatten)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Flatten(std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;
};

/// Reshapes each sample to `target_shape` (one entry may be -1).
class KERASCPP_API Reshape : public Layer {
 public:
  KERASCPP_LAYER(Reshape)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Reshape(std::vector<int64_t> target_shape, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;

 private:
  std::vector<int64_t> target_;
};

/// Returns its input (keras.layers.Identity: a placeholder in a graph).
class KERASCPP_API Identity : public Layer {
 public:
  KERASCPP_LAYER(Identity)
  explicit Identity(std::string name = "") : Layer("Identity", std::move(name)) {}
  static std::shared_ptr<Layer> from_config(const Config& config);
  Tensor call(const Tensor& x, bool) override { return x; }
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool supports_masking() const override { return true; }
};

/// Returns its input and adds l1 * sum(|x|) + l2 * sum(x^2) of it (divided by the batch size) to
/// the loss, as keras.layers.ActivityRegularization.
class KERASCPP_API ActivityRegularization : public Layer {
 public:
  KERASCPP_LAYER(ActivityRegularization)
  explicit ActivityRegularization(float l1 = 0.f, float l2 = 0.f, std::string name = "");
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  Tensor call(const Tensor& x, bool) override { return x; }
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool supports_masking() const override { return true; }

 private:
  float l1_, l2_;
};

}  // namespace keras::layers
