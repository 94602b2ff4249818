#pragma once
// Conv1D, the transposed, depthwise and separable convolutions in 1-d and 2-d: thin layers over keras::ops.
#include <array>
#include <optional>
#include <type_traits>
#include <vector>

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

namespace detail {
/// What a transposed convolution of any rank keeps, one entry per spatial axis (Keras' BaseConvTranspose).
struct ConvTransposeSpec {
  std::vector<int64_t> kernel_size, strides, dilation_rate;
  std::string padding = "valid";
  std::optional<std::vector<int64_t>> output_padding;
  std::string activation;
  bool use_bias = true;
  Initializer kernel_initializer = "glorot_uniform";
  Initializer bias_initializer = "zeros";
  Regularizer kernel_regularizer;
  Regularizer bias_regularizer;
  Constraint kernel_constraint;
  Constraint bias_constraint;
  std::string name;
};
/// Conv1DTranspose and Conv2DTranspose: kernel (*kernel_size, filters, in), as Keras.
class KERASCPP_API ConvTransposeBase : public Layer {
 public:
  Config get_config() const override;
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;

 protected:
  ConvTransposeBase(const char* class_name, int64_t filters, ConvTransposeSpec spec,
                    const Regularizer& activity_regularizer = {});
  /// The spec of a config (the class name in errors); `rank` spatial axes.
  static ConvTransposeSpec read_spec(serialization::ConfigReader& r, size_t rank);
  void build(const PartialShape& s) override;
  void check_input(const PartialShape& s) const override;

 private:
  int64_t filters_;
  ConvTransposeSpec s_;
  Variable *kernel_ = nullptr, *bias_ = nullptr;
};

/// One number per spatial axis: an int64_t for 1-d layers, an array for 2-d ones.
template <class Axes>
constexpr Axes unit_axes() {
  if constexpr (std::is_integral_v<Axes>) {
    return 1;
  } else {
    Axes a{};
    for (auto& v : a) v = 1;
    return a;
  }
}
}  // namespace detail

struct Conv1DTransposeOptions {
  int64_t strides = 1;
  std::string padding = "valid";
  int64_t dilation_rate = 1;
  /// Keras' output_padding (smaller than the stride); none: Keras' None.
  std::optional<int64_t> output_padding;
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
/// Transposed 1-d convolution over (N, steps, channels); kernel (kernel_size, filters, in), as Keras.
class KERASCPP_API Conv1DTranspose : public detail::ConvTransposeBase {
 public:
  KERASCPP_LAYER(Conv1DTranspose)
  static std::shared_ptr<Layer> from_config(const Config& config);
  Conv1DTranspose(int64_t filters, int64_t kernel_size, Conv1DTransposeOptions options = {});

 private:
  using ConvTransposeBase::ConvTransposeBase;
};

/// Transposed 2-d convolution; kernel (kh, kw, filters, in), as Keras.
class KERASCPP_API Conv2DTranspose : public detail::ConvTransposeBase {
 public:
  KERASCPP_LAYER(Conv2DTranspose)
  static std::shared_ptr<Layer> from_config(const Config& config);
  Conv2DTranspose(int64_t filters, std::array<int64_t, 2> kernel_size, Conv2DOptions options = {});

 private:
  using ConvTransposeBase::ConvTransposeBase;
};

/// DepthwiseConv1D's and DepthwiseConv2D's keyword arguments (Axes: int64_t or std::array<int64_t, 2>).
template <class Axes>
struct DepthwiseConvOptions {
  Axes strides = detail::unit_axes<Axes>();
  std::string padding = "valid";
  int64_t depth_multiplier = 1;
  Axes dilation_rate = detail::unit_axes<Axes>();
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
using DepthwiseConv1DOptions = DepthwiseConvOptions<int64_t>;
using DepthwiseConv2DOptions = DepthwiseConvOptions<std::array<int64_t, 2>>;

/// SeparableConv1D's and SeparableConv2D's keyword arguments (Axes: int64_t or std::array<int64_t, 2>).
template <class Axes>
struct SeparableConvOptions {
  Axes strides = detail::unit_axes<Axes>();
  std::string padding = "valid";
  int64_t depth_multiplier = 1;
  Axes dilation_rate = detail::unit_axes<Axes>();
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
using SeparableConv1DOptions = SeparableConvOptions<int64_t>;
using SeparableConv2DOptions = SeparableConvOptions<std::array<int64_t, 2>>;

namespace detail {
template <class Axes>
std::vector<int64_t> axes_vector(const Axes& a) {
  if constexpr (std::is_integral_v<Axes>)
    return {a};
  else
    return std::vector<int64_t>(a.begin(), a.end());
}
/// One class for both of Keras' depthwise (a filter per input channel, times depth_multiplier) and
/// separable (then a 1x1 convolution to `filters`) convolutions of any rank: kernel
/// (*kernel_size, in, multiplier), named "kernel" (depthwise) or "depthwise_kernel" (separable).
class KERASCPP_API DepthwiseConvBase : public Layer {
 public:
  Config get_config() const override;
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;

 protected:
  /// No filters: depthwise only (no pointwise kernel).
  template <class Axes>
  DepthwiseConvBase(const char* class_name, std::optional<int64_t> filters, std::vector<int64_t> kernel_size,
                    const SeparableConvOptions<Axes>& o)
      : DepthwiseConvBase(class_name, filters, std::move(kernel_size), with_vectors(o)) {}
  DepthwiseConvBase(const char* class_name, std::optional<int64_t> filters, std::vector<int64_t> kernel_size,
                    SeparableConvOptions<std::vector<int64_t>> o);
  /// The options of a config and its kernel_size, for `rank` spatial axes.
  static SeparableConvOptions<std::vector<int64_t>> read_options(serialization::ConfigReader& r, size_t rank,
                                                                 bool separable, std::vector<int64_t>& kernel_size);
  void build(const PartialShape& s) override;
  void check_input(const PartialShape& s) const override;

  template <class Axes>
  static SeparableConvOptions<std::vector<int64_t>> with_vectors(const SeparableConvOptions<Axes>& o) {
    return {axes_vector(o.strides),    o.padding,       o.depth_multiplier,   axes_vector(o.dilation_rate),
            o.activation,              o.use_bias,      o.depthwise_initializer, o.pointwise_initializer,
            o.bias_initializer,        o.depthwise_regularizer, o.pointwise_regularizer, o.bias_regularizer,
            o.activity_regularizer,    o.depthwise_constraint,  o.pointwise_constraint,  o.bias_constraint,
            o.name};
  }
  template <class Axes>
  static SeparableConvOptions<Axes> as_separable(const DepthwiseConvOptions<Axes>& o) {
    SeparableConvOptions<Axes> s{o.strides,    o.padding, o.depth_multiplier, o.dilation_rate, o.activation,
                                 o.use_bias,   o.depthwise_initializer};
    s.bias_initializer = o.bias_initializer;
    s.depthwise_regularizer = o.depthwise_regularizer;
    s.bias_regularizer = o.bias_regularizer;
    s.activity_regularizer = o.activity_regularizer;
    s.depthwise_constraint = o.depthwise_constraint;
    s.bias_constraint = o.bias_constraint;
    s.name = o.name;
    return s;
  }

 private:
  int64_t filters_;  // 0: depthwise only
  std::vector<int64_t> kernel_size_;
  SeparableConvOptions<std::vector<int64_t>> o_;
  Variable *depthwise_ = nullptr, *pointwise_ = nullptr, *bias_ = nullptr;
};
}  // namespace detail

/// One filter per input channel (times depth_multiplier) over (N, steps, channels); kernel (k, in, multiplier).
class KERASCPP_API DepthwiseConv1D : public detail::DepthwiseConvBase {
 public:
  KERASCPP_LAYER(DepthwiseConv1D)
  static std::shared_ptr<Layer> from_config(const Config& config);
  DepthwiseConv1D(int64_t kernel_size, DepthwiseConv1DOptions options = {});

 private:
  using DepthwiseConvBase::DepthwiseConvBase;
};

/// One filter per input channel (times depth_multiplier); kernel (kh, kw, in, multiplier).
class KERASCPP_API DepthwiseConv2D : public detail::DepthwiseConvBase {
 public:
  KERASCPP_LAYER(DepthwiseConv2D)
  static std::shared_ptr<Layer> from_config(const Config& config);
  DepthwiseConv2D(std::array<int64_t, 2> kernel_size, DepthwiseConv2DOptions options = {});

 private:
  using DepthwiseConvBase::DepthwiseConvBase;
};

/// A depthwise 1-d convolution followed by a pointwise one; weights depthwise_kernel (k, in, multiplier),
/// pointwise_kernel (1, in * multiplier, filters), bias.
class KERASCPP_API SeparableConv1D : public detail::DepthwiseConvBase {
 public:
  KERASCPP_LAYER(SeparableConv1D)
  static std::shared_ptr<Layer> from_config(const Config& config);
  SeparableConv1D(int64_t filters, int64_t kernel_size, SeparableConv1DOptions options = {});

 private:
  using DepthwiseConvBase::DepthwiseConvBase;
};

/// A depthwise convolution followed by a 1x1 convolution; weights depthwise_kernel, pointwise_kernel, bias.
class KERASCPP_API SeparableConv2D : public detail::DepthwiseConvBase {
 public:
  KERASCPP_LAYER(SeparableConv2D)
  static std::shared_ptr<Layer> from_config(const Config& config);
  SeparableConv2D(int64_t filters, std::array<int64_t, 2> kernel_size, SeparableConv2DOptions options = {});

 private:
  using DepthwiseConvBase::DepthwiseConvBase;
};

}  // namespace keras::layers
