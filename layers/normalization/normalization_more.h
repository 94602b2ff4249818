#pragma once
#include "../initializers.h"
#include "../layer.h"
#include "../regularizers.h"

namespace keras::layers {

struct GroupNormalizationOptions {
  int64_t groups = 32;  // Keras' default; the channels must divide into them
  float epsilon = 1e-3f;
  bool center = true;
  bool scale = true;
  Initializer beta_initializer = "zeros";
  Initializer gamma_initializer = "ones";
  Regularizer beta_regularizer;
  Regularizer gamma_regularizer;
  Constraint beta_constraint;
  Constraint gamma_constraint;
  std::string name;
};

/// Normalizes each sample over every position and the channels of each group (channels_last),
/// then scales and shifts per channel, as keras.layers.GroupNormalization.
class KERASCPP_API GroupNormalization : public Layer {
 public:
  KERASCPP_LAYER(GroupNormalization)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit GroupNormalization(GroupNormalizationOptions options = {});
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool supports_masking() const override { return true; }

 protected:
  void build(const PartialShape& s) override;
  void check_input(const PartialShape& s) const override;

 private:
  GroupNormalizationOptions o_;
  Variable *gamma_ = nullptr, *beta_ = nullptr;
};

/// x / ||x|| over the last axis (the norm at least 1e-12), as keras.layers.UnitNormalization.
class KERASCPP_API UnitNormalization : public Layer {
 public:
  KERASCPP_LAYER(UnitNormalization)
  explicit UnitNormalization(std::string name = "");
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool supports_masking() const override { return true; }
};

/// x / sqrt(mean(x^2) + epsilon) * scale over the last axis, as keras.layers.RMSNormalization.
class KERASCPP_API RMSNormalization : public Layer {
 public:
  KERASCPP_LAYER(RMSNormalization)
  explicit RMSNormalization(float epsilon = 1e-6f, std::string name = "");
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool supports_masking() const override { return true; }

 protected:
  void build(const PartialShape& s) override;
  void check_input(const PartialShape& s) const override;

 private:
  float epsilon_;
  Variable* scale_ = nullptr;
};

}  // namespace keras::layers
