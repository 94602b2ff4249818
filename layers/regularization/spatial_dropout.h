#pragma once
#include "../../core/random.h"
#include "../layer.h"

namespace keras::layers {

/// Dropout of whole feature maps: in training, each channel of each sample is kept or zeroed (and
/// the rest scaled by 1 / (1 - rate)) for every position at once. SpatialDropout1D for (N, T, C)
/// sequences, SpatialDropout2D for (N, H, W, C) images.
class KERASCPP_API SpatialDropout : public Layer {
 public:
  std::vector<random::SeedGenerator*> seed_generators() override { return {&seeds_}; }
  Config get_config() const override;
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }

 protected:
  SpatialDropout(std::string class_name, size_t rank, float rate, std::optional<uint64_t> seed, std::string name);
  void check_input(const PartialShape& s) const override;
  /// Keras' config of either: rate, seed (and channels_last for the 2-d one).
  template <typename L>
  static std::shared_ptr<Layer> read_config(const Config& config);

 private:
  size_t rank_;
  float rate_;
  std::optional<uint64_t> seed_;
  random::SeedGenerator seeds_;
};

class KERASCPP_API SpatialDropout1D : public SpatialDropout {
 public:
  KERASCPP_LAYER(SpatialDropout1D)
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit SpatialDropout1D(float rate, std::optional<uint64_t> seed = std::nullopt, std::string name = "")
      : SpatialDropout("SpatialDropout1D", 3, rate, seed, std::move(name)) {}
};

class KERASCPP_API SpatialDropout2D : public SpatialDropout {
 public:
  KERASCPP_LAYER(SpatialDropout2D)
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit SpatialDropout2D(float rate, std::optional<uint64_t> seed = std::nullopt, std::string name = "")
      : SpatialDropout("SpatialDropout2D", 4, rate, seed, std::move(name)) {}
};

}  // namespace keras::layers
