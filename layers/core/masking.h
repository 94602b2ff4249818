#pragma once
#include "../layer.h"

namespace keras::layers {

/// Masks the timesteps of a (batch, time, ...) input whose features all equal `mask_value`, and
/// zeroes them: downstream RNNs skip those steps.
class KERASCPP_API Masking : public Layer {
 public:
  KERASCPP_LAYER(Masking)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Masking(float mask_value = 0.f, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool supports_masking() const override { return true; }
  Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;

 protected:
  void check_input(const PartialShape& s) const override;

 private:
  float mask_value_;
};

}  // namespace keras::layers
