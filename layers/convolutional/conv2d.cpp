#include "layers/convolutional/conv2d.h"

#include "core/check.h"
#include "core/ops.h"
#include "layers/activations.h"
#include "layers/convolutional/conv_config.h"

namespace keras::layers {

namespace detail {
void check_conv_geometry(const char* layer, std::vector<int64_t> kernel, std::vector<int64_t> strides,
                         std::vector<int64_t> dilation, int64_t groups) {
  // Upper bounds keep the shape arithmetic far from overflow; no real layer comes near them.
  constexpr int64_t kMax = int64_t{1} << 31;
  auto positive = [&](const std::vector<int64_t>& v, const char* what) {
    for (int64_t x : v)
      KCPP_CHECK(x > 0 && x < kMax, ValueError, "{}: {} must be positive (and below 2^31), received {}", layer, what,
                 x);
  };
  positive(kernel, "kernel_size");
  positive(strides, "strides");
  positive(dilation, "dilation_rate");
  KCPP_CHECK(groups > 0 && groups < kMax, ValueError, "{}: groups must be positive, received {}", layer, groups);
}
}  // namespace detail

std::optional<int64_t> conv_output_length(std::optional<int64_t> in, int64_t kernel, const std::string& padding,
                                          int64_t stride, int64_t dilation) {
  if (!in) return std::nullopt;
  const int64_t eff = (kernel - 1) * dilation + 1;
  if (padding == "same" || padding == "causal") return (*in + stride - 1) / stride;
  return std::max<int64_t>(0, (*in - eff) / stride + 1 - (*in < eff ? 1 : 0));
}

Conv2D::Conv2D(int64_t filters, std::array<int64_t, 2> kernel_size, Conv2DOptions options)
    : Layer("Conv2D", options.name), filters_(filters), kernel_size_(kernel_size), options_(std::move(options)) {
  set_activity_regularizer(options_.activity_regularizer);
  KCPP_CHECK(filters > 0, ValueError, "Conv2D: expected a positive number of filters, received {}", filters);
  KCPP_CHECK(kernel_size[0] > 0 && kernel_size[1] > 0, ValueError,
             "Conv2D: kernel_size must be positive, received ({}, {})", kernel_size[0], kernel_size[1]);
  KCPP_CHECK(options_.padding == "valid" || options_.padding == "same", ValueError,
             "Conv2D: padding must be 'valid' or 'same', received '{}'", options_.padding);
  KCPP_CHECK(!options_.output_padding, ValueError, "Conv2D: output_padding is an option of Conv2DTranspose");
  detail::check_conv_geometry("Conv2D", {kernel_size[0], kernel_size[1]}, {options_.strides[0], options_.strides[1]},
                              {options_.dilation_rate[0], options_.dilation_rate[1]}, options_.groups);
  KCPP_CHECK(filters % options_.groups == 0, ValueError, "Conv2D: filters {} must be divisible by groups {}", filters,
             options_.groups);
  activations::check_name(options_.activation);
}

void Conv2D::check_input(const PartialShape& s) const {
  if (s.size() != 4)
    throw input_error(
        fmt::format("expected ndim=4, found ndim={}. Full shape received: {}", s.size(), shape_to_string(s)));
  if (!s[3]) throw input_error("the channel axis must be known, received shape " + shape_to_string(s));
  if (kernel_ && *s[3] != kernel_->shape()[2] * options_.groups)
    throw input_error(fmt::format("expected axis -1 of input shape to have value {}, but received input with shape {}",
                                  kernel_->shape()[2] * options_.groups, shape_to_string(s)));
  if (*s[3] % options_.groups != 0)
    throw input_error(fmt::format("input channels {} are not divisible by groups {}", *s[3], options_.groups));
}

void Conv2D::build(const PartialShape& s) {
  kernel_ = &add_weight("kernel", Shape{kernel_size_[0], kernel_size_[1], *s[3] / options_.groups, filters_},
                        options_.kernel_initializer, true, options_.kernel_regularizer, options_.kernel_constraint);
  if (options_.use_bias)
    bias_ = &add_weight("bias", Shape{filters_}, options_.bias_initializer, true, options_.bias_regularizer,
                        options_.bias_constraint);
}

PartialShape Conv2D::compute_output_shape(const PartialShape& s) const {
  return {s[0],
          conv_output_length(s[1], kernel_size_[0], options_.padding, options_.strides[0], options_.dilation_rate[0]),
          conv_output_length(s[2], kernel_size_[1], options_.padding, options_.strides[1], options_.dilation_rate[1]),
          filters_};
}

ops::ConvOptions Conv2D::conv_options(UnaryOp activation) const {
  return {.strides = {options_.strides[0], options_.strides[1]},
          .padding = options_.padding,
          .dilation_rate = {options_.dilation_rate[0], options_.dilation_rate[1]},
          .groups = options_.groups,
          .activation = activation};
}

Tensor Conv2D::call(const Tensor& x, bool training) {
  const std::string& a = options_.activation;
  const UnaryOp fused = activations::fusable_op(a);
  Tensor y = ops::conv(x, kernel_->value(), bias_ ? bias_->value() : Tensor(), conv_options(fused));
  return fused == UnaryOp::identity ? activations::apply(a, y) : y;
}


bool Conv2D::can_fold_batch_norm() const {
  return (options_.activation.empty() || options_.activation == "linear") && !activity_regularizer();
}

Tensor Conv2D::call_with_batch_norm(const Tensor& x, const FoldedBatchNorm& batch_norm, const std::string& activation,
                                    const Tensor& residual) {
  KCPP_CHECK(can_fold_batch_norm() && (activation.empty() || activation == "relu"), ValueError,
             "Conv2D \"{}\": a batch norm folds only into a linear convolution, followed by \"\" or \"relu\"",
             name());
  prepare(x);
  const AutocastScope scope = autocast_scope();
  ops::ConvOptions o = conv_options(activation == "relu" ? UnaryOp::relu : UnaryOp::identity);
  o.batch_norm = batch_norm;
  o.residual = residual;
  // The folded BatchNormalization's float32 weights make the result float32: back to the compute dtype.
  return ops::cast(ops::conv(autocast_input(x), kernel_->value(), bias_ ? bias_->value() : Tensor(), o),
                   compute_dtype());
}

bool Conv2D::can_fold_max_pool() const {
  const std::string& a = options_.activation;
  return (a.empty() || a == "linear" || a == "relu") && !activity_regularizer();
}

Tensor Conv2D::call_with_max_pool(const Tensor& x, const ops::PoolOptions& pool) {
  KCPP_CHECK(can_fold_max_pool(), ValueError,
             "Conv2D \"{}\": max pooling folds only into a convolution with activation relu or linear and no "
             "activity regularizer, received activation \"{}\"",
             name(), options_.activation);
  prepare(x);
  const AutocastScope scope = autocast_scope();
  return ops::conv_max_pool(autocast_input(x), kernel_->value(), bias_ ? bias_->value() : Tensor(),
                            conv_options(options_.activation == "relu" ? UnaryOp::relu : UnaryOp::identity), pool);
}

Config Conv2D::get_config() const {
  Config c = Layer::get_config();
  c["filters"] = filters_;
  c["kernel_size"] = detail::kernel_array(kernel_size_);
  detail::write_conv_common(c, options_, true);
  c["groups"] = options_.groups;
  detail::write_kernel_bias(c, options_);
  return c;
}

std::shared_ptr<Layer> Conv2D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Conv2D config");
  Conv2DOptions o;
  detail::read_conv_common(r, o, 2);
  o.groups = r.integer("groups", 1);
  detail::read_kernel(r, o);
  const auto k = r.ints("kernel_size", 2);
  auto layer = std::make_shared<Conv2D>(r.integer("filters"), std::array<int64_t, 2>{k[0], k[1]}, std::move(o));
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
