#pragma once
#include "../layer.h"

namespace keras::layers {

struct LayerNormalizationOptions {
  float epsilon = 1e-3f;  // Keras' default
  bool center = true;
  bool scale = true;
  std::string name;
};

/// Normalizes each sample over its last axis: (x - mean) / sqrt(var + epsilon) * gamma + beta.
class KERASCPP_API LayerNormalization : public Layer {
 public:
  KERASCPP_LAYER(LayerNormalization)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit LayerNormalization(LayerNormalizationOptions options = {});
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool supports_masking() const override { return true; }

 protected:
  void build(const PartialShape& s) override;
  void check_input(const PartialShape& s) const override;

 private:
  LayerNormalizationOptions o_;
  Variable *gamma_ = nullptr, *beta_ = nullptr;
};

}  // namespace keras::layers
