#pragma once
// Conv1D, Conv2DTranspose, DepthwiseConv2D and SeparableConv2D: thin layers over keras::ops.
#include <array>

#include "conv2d.h"

namespace keras::layers {

struct Conv1DOptions {
  int64_t strides = 1;
  std::string padding = "valid";
  int64_t dilation_rate = 1;
  int64_t groups = 1;
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
/// 1-d convolution over (N, steps, channels); kernel (kernel_size, in / groups, filters).
class KERASCPP_API Conv1D : public Layer {
 public:
  KERASCPP_LAYER(Conv1D)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  Conv1D(int64_t filters, int64_t kernel_size, Conv1DOptions options = {});
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;

 protected:
  void build(const PartialShape& s) override;
  void check_input(const PartialShape& s) const override;

 private:
  int64_t filters_, kernel_size_;
  Conv1DOptions o_;
  Variable *kernel_ = nullptr, *bias_ = nullptr;
};

/// Transposed 2-d convolution; kernel (kh, kw, filters, in), as Keras.
class KERASCPP_API Conv2DTranspose : public Layer {
 public:
  KERASCPP_LAYER(Conv2DTranspose)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  Conv2DTranspose(int64_t filters, std::array<int64_t, 2> kernel_size, Conv2DOptions options = {});
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;

 protected:
  void build(const PartialShape& s) override;
  void check_input(const PartialShape& s) const override;

 private:
  int64_t filters_;
  std::array<int64_t, 2> kernel_size_;
  Conv2DOptions o_;
  Variable *kernel_ = nullptr, *bias_ = nullptr;
};

struct DepthwiseConv2DOptions {
  std::array<int64_t, 2> strides{1, 1};
  std::string padding = "valid";
  int64_t depth_multiplier = 1;
  std::array<int64_t, 2> dilation_rate{1, 1};
  std::string activation;
  bool use_bias = true;
  Initializer depthwise_initializer = "glorot_uniform";
  Initializer bias_initializer = "zeros";
  Regularizer depthwise_regularizer;
  Regularizer bias_regularizer;
  Regularizer activity_regularizer;  // a penalty on the output (Layer::set_activity_regularizer)
  Constraint depthwise_constraint;
  Constraint bias_constraint;
  std::string name;
};
/// One filter per input channel (times depth_multiplier); kernel (kh, kw, in, multiplier).
class KERASCPP_API DepthwiseConv2D : public Layer {
 public:
  KERASCPP_LAYER(DepthwiseConv2D)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  DepthwiseConv2D(std::array<int64_t, 2> kernel_size, DepthwiseConv2DOptions options = {});
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;

 protected:
  void build(const PartialShape& s) override;
  void check_input(const PartialShape& s) const override;

 private:
  std::array<int64_t, 2> kernel_size_;
  DepthwiseConv2DOptions o_;
  Variable *kernel_ = nullptr, *bias_ = nullptr;
};

struct SeparableConv2DOptions {
  std::array<int64_t, 2> strides{1, 1};
  std::string padding = "valid";
  int64_t depth_multiplier = 1;
  std::array<int64_t, 2> dilation_rate{1, 1};
  std::string activation;
  bool use_bias = true;
  Initializer depthwise_initializer = "glorot_uniform";
  Initializer pointwise_initializer = "glorot_uniform";
  Initializer bias_initializer = "zeros";
  Regularizer depthwise_regularizer;
  Regularizer pointwise_regularizer;
  Regularizer bias_regularizer;
  Regularizer activity_regularizer;  // a penalty on the output (Layer::set_activity_regularizer)
  Constraint depthwise_constraint;
  Constraint pointwise_constraint;
  Constraint bias_constraint;
  std::string name;
};
/// A depthwise convolution followed by a 1x1 convolution; weights depthwise_kernel, pointwise_kernel, bias.
class KERASCPP_API SeparableConv2D : public Layer {
 public:
  KERASCPP_LAYER(SeparableConv2D)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  SeparableConv2D(int64_t filters, std::array<int64_t, 2> kernel_size, SeparableConv2DOptions options = {});
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;

 protected:
  void build(const PartialShape& s) override;
  void check_input(const PartialShape& s) const override;

 private:
  int64_t filters_;
  std::array<int64_t, 2> kernel_size_;
  SeparableConv2DOptions o_;
  Variable *depthwise_ = nullptr, *pointwise_ = nullptr, *bias_ = nullptr;
};

}  // namespace keras::layers
