#pragma once
// Keras' activation layers with options (keras.layers.activations): ReLU, LeakyReLU, ELU, Softmax, PReLU.
// Activation("name") covers the rest.
#include <optional>

#include "../initializers.h"
#include "../layer.h"
#include "../regularizers.h"

namespace keras::layers {

struct ReLUOptions {
  std::optional<float> max_value;  // no upper bound when unset
  float negative_slope = 0.f;
  float threshold = 0.f;
  std::string name;
};

/// max_value for x >= max_value, x for threshold <= x < max_value, negative_slope * (x - threshold)
/// below: Keras' ReLU layer (ReLU(6.0) in MobileNet).
class KERASCPP_API ReLU : public Layer {
 public:
  KERASCPP_LAYER(ReLU)
  explicit ReLU(ReLUOptions options = {});
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool supports_masking() const override { return true; }
  const ReLUOptions& options() const { return o_; }

 private:
  ReLUOptions o_;
};

/// x for x >= 0, negative_slope * x below (Keras 3's default slope 0.3).
class KERASCPP_API LeakyReLU : public Layer {
 public:
  KERASCPP_LAYER(LeakyReLU)
  explicit LeakyReLU(float negative_slope = 0.3f, std::string name = "");
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool supports_masking() const override { return true; }

 private:
  float negative_slope_;
};

/// x for x > 0, alpha * (exp(x) - 1) below.
class KERASCPP_API ELU : public Layer {
 public:
  KERASCPP_LAYER(ELU)
  explicit ELU(float alpha = 1.f, std::string name = "");
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool supports_masking() const override { return true; }

 private:
  float alpha_;
};

/// Softmax over `axis`. On the last axis it ends a model the way Activation("softmax") does, so a
/// cross-entropy loss runs on the logits.
class KERASCPP_API Softmax : public Layer {
 public:
  KERASCPP_LAYER(Softmax)
  explicit Softmax(int64_t axis = -1, std::string name = "");
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool ends_with_softmax() const override { return axis_ == -1; }
  Tensor call_logits(const Tensor& x, bool /*training*/) override { return x; }

 protected:
  void check_input(const PartialShape& input_shape) const override;

 private:
  int64_t axis_;
};

/// relu(x) - alpha * relu(-x) with a learned alpha per input position (shared along `shared_axes`,
/// counted from 1 as Keras), as keras.layers.PReLU.
struct PReLUOptions {
  Initializer alpha_initializer = "zeros";
  Regularizer alpha_regularizer;
  Constraint alpha_constraint;
  std::vector<int64_t> shared_axes;
  std::string name;
};
class KERASCPP_API PReLU : public Layer {
 public:
  KERASCPP_LAYER(PReLU)
  explicit PReLU(PReLUOptions options = {});
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool supports_masking() const override { return true; }

 protected:
  void build(const PartialShape& s) override;
  void check_input(const PartialShape& s) const override;

 private:
  PReLUOptions o_;
  Variable* alpha_ = nullptr;
};

}  // namespace keras::layers
