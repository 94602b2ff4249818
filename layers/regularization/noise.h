#pragma once
// Keras' noise layers: active only in training, the identity in inference; masks pass through.
#include "../../core/random.h"
#include "../core/simple_layers.h"
#include "../layer.h"

namespace keras::layers {

struct NoiseOptions {
  std::optional<uint64_t> seed;
  std::string name;
};

/// What the noise layers share: a seeded generator whose draws a recorded step renews in each
/// replay, the input's shape and mask passed through.
class KERASCPP_API NoiseLayer : public Layer {
 public:
  std::vector<random::SeedGenerator*> seed_generators() override { return {&seeds_}; }
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool supports_masking() const override { return true; }

 protected:
  NoiseLayer(std::string class_name, std::string name, std::optional<uint64_t> seed)
      : Layer(std::move(class_name), std::move(name)), seed_(seed), seeds_(seed) {}
  /// Layer's config with Keras' "seed".
  Config config_with_seed() const;
  std::optional<uint64_t> seed_;
  random::SeedGenerator seeds_;
};

/// Adds zero-centred Gaussian noise of standard deviation `stddev` in training.
class KERASCPP_API GaussianNoise : public NoiseLayer {
 public:
  KERASCPP_LAYER(GaussianNoise)
  explicit GaussianNoise(float stddev, NoiseOptions options = {});
  static std::shared_ptr<Layer> from_config(const Config& config);
  Config get_config() const override;
  Tensor call(const Tensor& x, bool training) override;

 private:
  float stddev_;
};

/// Multiplies by one-centred Gaussian noise of standard deviation sqrt(rate / (1 - rate)) in training.
class KERASCPP_API GaussianDropout : public NoiseLayer {
 public:
  KERASCPP_LAYER(GaussianDropout)
  explicit GaussianDropout(float rate, NoiseOptions options = {});
  static std::shared_ptr<Layer> from_config(const Config& config);
  Config get_config() const override;
  Tensor call(const Tensor& x, bool training) override;

 private:
  float rate_;
};

/// Dropout for SELU networks: dropped units take SELU's negative saturation value and an affine map
/// restores the input's mean and variance (Klambauer et al., 2017), in training.
class KERASCPP_API AlphaDropout : public NoiseLayer {
 public:
  KERASCPP_LAYER(AlphaDropout)
  /// DropoutOptions as Dropout's: seed, noise_shape, name.
  explicit AlphaDropout(float rate, DropoutOptions options = {});
  static std::shared_ptr<Layer> from_config(const Config& config);
  Config get_config() const override;
  Tensor call(const Tensor& x, bool training) override;

 private:
  float rate_;
  std::optional<PartialShape> noise_shape_;
};

}  // namespace keras::layers
