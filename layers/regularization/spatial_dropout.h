#pragma once
#include "../../core/random.h"
#include "../layer.h"

namespace keras::layers {

/// Dropout of whole feature maps: in training, each channel of each sample is kept or zeroed
/// (and the rest scaled by 1 / (1 - rate)) for every position at once.
class KERASCPP_API SpatialDropout2D : public Layer {
 public:
  KERASCPP_LAYER(SpatialDropout2D)
  std::vector<random::SeedGenerator*> seed_generators() override { return {&seeds_}; }
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit SpatialDropout2D(float rate, std::optional<uint64_t> seed = std::nullopt, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }

 protected:
  void check_input(const PartialShape& s) const override;

 private:
  float rate_;
  std::optional<uint64_t> seed_;
  random::SeedGenerator seeds_;
};

/// Dropout of whole channels of (N, T, C) sequences: each channel of each sample is kept or zeroed
/// for every step at once.
class KERASCPP_API SpatialDropout1D : public Layer {
 public:
  KERASCPP_LAYER(SpatialDropout1D)
  std::vector<random::SeedGenerator*> seed_generators() override { return {&seeds_}; }
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit SpatialDropout1D(float rate, std::optional<uint64_t> seed = std::nullopt, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }

 protected:
  void check_input(const PartialShape& s) const override;

 private:
  float rate_;
  std::optional<uint64_t> seed_;
  random::SeedGenerator seeds_;
};

}  // namespace keras::layers
