#pragma once
#include <array>
#include <optional>

#include "../../core/ops.h"
#include "../layer.h"

namespace keras::layers {

/// Keras' Conv2D keyword arguments (defaults as Keras: strides 1, "valid", dilation 1, groups 1).
struct Conv2DOptions {
  std::array<int64_t, 2> strides{1, 1};
  std::string padding = "valid";
  std::array<int64_t, 2> dilation_rate{1, 1};
  int64_t groups = 1;
  /// Conv2DTranspose only: Keras' output_padding (each smaller than its stride); none: Keras' None.
  std::optional<std::array<int64_t, 2>> output_padding;
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
};

/// 2-d convolution over channels_last images; kernel (kh, kw, in / groups, filters).
class KERASCPP_API Conv2D : public Layer {
 public:
  KERASCPP_LAYER(Conv2D)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  Conv2D(int64_t filters, std::array<int64_t, 2> kernel_size, Conv2DOptions options = {});
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& input_shape) const override;
  bool ends_with_softmax() const override { return options_.activation == "softmax"; }
  /// A model's inference fusion: call() (with no activation of its own) followed by an
  /// inference-mode BatchNormalization, a residual block's Add of `residual` (when defined, of the
  /// output's shape) and `activation` ("" or "relu"), in one pass where the backend fuses it.
  Tensor call_with_batch_norm(const Tensor& x, const FoldedBatchNorm& batch_norm, const std::string& activation,
                              const Tensor& residual = Tensor());
  /// True when call_with_batch_norm() applies: no activation of its own, no activity penalty.
  bool can_fold_batch_norm() const;
  /// A model's inference fusion: call() followed by max pooling (a MaxPooling2D reading only this
  /// layer's output), in one pass where the backend fuses it (ops::conv_max_pool).
  Tensor call_with_max_pool(const Tensor& x, const ops::PoolOptions& pool);
  /// True when call_with_max_pool() applies: activation relu or linear, no activity penalty.
  bool can_fold_max_pool() const;

 protected:
  void build(const PartialShape& input_shape) override;
  void check_input(const PartialShape& input_shape) const override;

 private:
  ops::ConvOptions conv_options(UnaryOp activation) const;  // this layer's geometry for ops::conv
  int64_t filters_;
  std::array<int64_t, 2> kernel_size_;
  Conv2DOptions options_;
  Variable* kernel_ = nullptr;
  Variable* bias_ = nullptr;
};

/// Output length of one spatial axis, as Keras computes it (None stays None).
namespace detail {
/// Throws ValueError unless kernel sizes, strides and dilations are in [1, 2^31) and groups >= 1.
KERASCPP_API void check_conv_geometry(const char* layer, std::vector<int64_t> kernel, std::vector<int64_t> strides,
                                      std::vector<int64_t> dilation, int64_t groups);
}  // namespace detail
KERASCPP_API std::optional<int64_t> conv_output_length(std::optional<int64_t> in, int64_t kernel,
                                                       const std::string& padding, int64_t stride, int64_t dilation);

}  // namespace keras::layers
