#pragma once
#include "../layer.h"

namespace keras::layers {

/// Keras' Dense keyword arguments (defaults as Keras: no activation, bias, glorot_uniform, zeros).
struct DenseOptions {
  std::string activation;
  bool use_bias = true;
  Initializer kernel_initializer = "glorot_uniform";
  Initializer bias_initializer = "zeros";
  Regularizer kernel_regularizer;
  Regularizer bias_regularizer;
  Regularizer activity_regularizer;  // a penalty on the output (Layer::set_activity_regularizer)
  Constraint kernel_constraint;
  Constraint bias_constraint;
  std::string name;
  std::string dtype;  // a DTypePolicy name ("float32" on a mixed model's output layer); empty: the global policy
};

/// output = activation(dot(input, kernel) + bias); kernel (input_dim, units). Inputs of rank > 2
/// are applied on the last axis.
class KERASCPP_API Dense : public Layer {
 public:
  KERASCPP_LAYER(Dense)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Dense(int64_t units, DenseOptions options = {});
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& input_shape) const override;
  bool ends_with_softmax() const override { return options_.activation == "softmax"; }
  bool supports_masking() const override { return true; }  // masks pass through, as Keras 3
  Tensor call_logits(const Tensor& x, bool training) override;
  int64_t units() const { return units_; }
  Variable* kernel() { return kernel_; }
  Variable* bias() { return bias_; }

 protected:
  void build(const PartialShape& input_shape) override;
  void check_input(const PartialShape& input_shape) const override;

 private:
  int64_t units_;
  DenseOptions options_;
  Variable* kernel_ = nullptr;
  Variable* bias_ = nullptr;
};

}  // namespace keras::layers
