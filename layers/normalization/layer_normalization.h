#pragma once
#include "../initializers.h"
#include "../layer.h"
#include "../regularizers.h"

namespace keras::layers {

struct LayerNormalizationOptions {
  /// The axes normalized over, Keras' `axis` (an int or a list): negative counts from the end.
  std::vector<int64_t> axis = {-1};
  float epsilon = 1e-3f;  // Keras' default
  bool center = true;
  bool scale = true;
  /// Keras' (deprecated) rms_scaling: x / sqrt(var + epsilon) * gamma (gamma even without `scale`),
  /// no centering and no beta.
  bool rms_scaling = false;
  Initializer beta_initializer = "zeros";
  Initializer gamma_initializer = "ones";
  Regularizer beta_regularizer;
  Regularizer gamma_regularizer;
  Constraint beta_constraint;
  Constraint gamma_constraint;
  std::string name;
};

/// Normalizes each sample over `axis`: (x - mean) / sqrt(var + epsilon) * gamma + beta, with gamma
/// and beta of the normalized axes' sizes, as keras.layers.LayerNormalization.
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
  std::vector<int64_t> axes_for(size_t rank) const;  // non-negative, in the given order
  LayerNormalizationOptions o_;
  Variable *gamma_ = nullptr, *beta_ = nullptr;
};

}  // namespace keras::layers
