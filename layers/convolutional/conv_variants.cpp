#include "layers/convolutional/conv_variants.h"

#include <functional>

#include "core/check.h"
#include "core/ops.h"
#include "layers/activations.h"
#include "layers/convolutional/conv_config.h"

namespace keras::layers {
namespace {
void check_rank(const PartialShape& s, size_t rank, const std::function<ValueError(const std::string&)>& err) {
  if (s.size() != rank)
    throw err(
        fmt::format("expected ndim={}, found ndim={}. Full shape received: {}", rank, s.size(), shape_to_string(s)));
  if (!s.back()) throw err("the channel axis must be known, received shape " + shape_to_string(s));
}
void check_padding(const std::string& layer, const std::string& p, bool causal = false) {
  KCPP_CHECK(p == "valid" || p == "same" || (causal && p == "causal"), ValueError,
             "{}: padding must be 'valid'{}, received '{}'", layer, causal ? ", 'same' or 'causal'" : " or 'same'", p);
}
}  // namespace

// Conv1D ---------------------------------------------------------------------------------------------------
Conv1D::Conv1D(int64_t filters, int64_t kernel_size, Conv1DOptions o)
    : Layer("Conv1D", o.name), filters_(filters), kernel_size_(kernel_size), o_(std::move(o)) {
  set_activity_regularizer(o_.activity_regularizer);
  KCPP_CHECK(filters > 0 && kernel_size > 0, ValueError,
             "Conv1D: filters and kernel_size must be positive, received {} and {}", filters, kernel_size);
  check_padding("Conv1D", o_.padding, true);
  detail::check_conv_geometry("Conv1D", {kernel_size}, {o_.strides}, {o_.dilation_rate}, o_.groups);
  KCPP_CHECK(filters % o_.groups == 0, ValueError, "Conv1D: filters {} must be divisible by groups {}", filters,
             o_.groups);
  activations::check_name(o_.activation);
}
void Conv1D::check_input(const PartialShape& s) const {
  check_rank(s, 3, [this](const std::string& w) { return input_error(w); });
}
void Conv1D::build(const PartialShape& s) {
  kernel_ = &add_weight("kernel", Shape{kernel_size_, *s[2] / o_.groups, filters_}, o_.kernel_initializer, true,
                        o_.kernel_regularizer, o_.kernel_constraint);
  if (o_.use_bias)
    bias_ = &add_weight("bias", Shape{filters_}, o_.bias_initializer, true, o_.bias_regularizer, o_.bias_constraint);
}
PartialShape Conv1D::compute_output_shape(const PartialShape& s) const {
  return {s[0], conv_output_length(s[1], kernel_size_, o_.padding, o_.strides, o_.dilation_rate), filters_};
}
Tensor Conv1D::call(const Tensor& x, bool training) {
  const Tensor y = ops::conv(
      x, kernel_->value(), bias_ ? bias_->value() : Tensor(),
      {.strides = {o_.strides}, .padding = o_.padding, .dilation_rate = {o_.dilation_rate}, .groups = o_.groups});
  return activations::apply(o_.activation, y);
}

// Conv2DTranspose --------------------------------------------------------------------------------------------
Conv2DTranspose::Conv2DTranspose(int64_t filters, std::array<int64_t, 2> kernel_size, Conv2DOptions o)
    : Layer("Conv2DTranspose", o.name), filters_(filters), kernel_size_(kernel_size), o_(std::move(o)) {
  set_activity_regularizer(o_.activity_regularizer);
  KCPP_CHECK(filters > 0, ValueError, "Conv2DTranspose: filters must be positive, received {}", filters);
  check_padding("Conv2DTranspose", o_.padding);
  detail::check_conv_geometry("Conv2DTranspose", {kernel_size[0], kernel_size[1]}, {o_.strides[0], o_.strides[1]},
                              {o_.dilation_rate[0], o_.dilation_rate[1]}, o_.groups);
  KCPP_CHECK(o_.groups == 1, NotImplementedError, "Conv2DTranspose: groups > 1 is not supported");
  if (o_.output_padding)
    for (size_t i = 0; i < 2; ++i)
      KCPP_CHECK((*o_.output_padding)[i] >= 0 && (*o_.output_padding)[i] < o_.strides[i], ValueError,
                 "Conv2DTranspose: expected output_padding >= 0 and smaller than the strides ({}, {}), received ({}, {})",
                 o_.strides[0], o_.strides[1], (*o_.output_padding)[0], (*o_.output_padding)[1]);
  activations::check_name(o_.activation);
}
void Conv2DTranspose::check_input(const PartialShape& s) const {
  check_rank(s, 4, [this](const std::string& w) { return input_error(w); });
}
void Conv2DTranspose::build(const PartialShape& s) {
  kernel_ = &add_weight("kernel", Shape{kernel_size_[0], kernel_size_[1], filters_, *s[3]}, o_.kernel_initializer, true,
                        o_.kernel_regularizer, o_.kernel_constraint);
  if (o_.use_bias)
    bias_ = &add_weight("bias", Shape{filters_}, o_.bias_initializer, true, o_.bias_regularizer, o_.bias_constraint);
}
PartialShape Conv2DTranspose::compute_output_shape(const PartialShape& s) const {
  auto len = [&](std::optional<int64_t> in, int i) -> std::optional<int64_t> {
    if (!in) return std::nullopt;
    const auto a = static_cast<size_t>(i);
    return ops::conv_transpose_output_size(*in, kernel_size_[a], o_.strides[a], o_.dilation_rate[a], o_.padding,
                                           o_.output_padding ? std::optional<int64_t>((*o_.output_padding)[a])
                                                             : std::nullopt);
  };
  return {s[0], len(s[1], 0), len(s[2], 1), filters_};
}
Tensor Conv2DTranspose::call(const Tensor& x, bool training) {
  const Tensor y = ops::conv_transpose(x, kernel_->value(), bias_ ? bias_->value() : Tensor(),
                                       {.strides = {o_.strides[0], o_.strides[1]},
                                        .padding = o_.padding,
                                        .dilation_rate = {o_.dilation_rate[0], o_.dilation_rate[1]},
                                        .output_padding = o_.output_padding ? std::vector<int64_t>(o_.output_padding->begin(),
                                                                                                   o_.output_padding->end())
                                                                            : std::vector<int64_t>{}});
  return activations::apply(o_.activation, y);
}

// DepthwiseConv2D ---------------------------------------------------------------------------------------------
DepthwiseConv2D::DepthwiseConv2D(std::array<int64_t, 2> kernel_size, DepthwiseConv2DOptions o)
    : Layer("DepthwiseConv2D", o.name), kernel_size_(kernel_size), o_(std::move(o)) {
  set_activity_regularizer(o_.activity_regularizer);
  KCPP_CHECK(o_.depth_multiplier > 0, ValueError, "DepthwiseConv2D: depth_multiplier must be positive, received {}",
             o_.depth_multiplier);
  check_padding("DepthwiseConv2D", o_.padding);
  detail::check_conv_geometry("DepthwiseConv2D", {kernel_size[0], kernel_size[1]}, {o_.strides[0], o_.strides[1]},
                              {o_.dilation_rate[0], o_.dilation_rate[1]}, 1);
  activations::check_name(o_.activation);
}
void DepthwiseConv2D::check_input(const PartialShape& s) const {
  check_rank(s, 4, [this](const std::string& w) { return input_error(w); });
}
void DepthwiseConv2D::build(const PartialShape& s) {
  kernel_ = &add_weight("kernel", Shape{kernel_size_[0], kernel_size_[1], *s[3], o_.depth_multiplier},
                        o_.depthwise_initializer, true, o_.depthwise_regularizer, o_.depthwise_constraint);
  if (o_.use_bias)
    bias_ = &add_weight("bias", Shape{*s[3] * o_.depth_multiplier}, o_.bias_initializer, true, o_.bias_regularizer,
                        o_.bias_constraint);
}
PartialShape DepthwiseConv2D::compute_output_shape(const PartialShape& s) const {
  return {s[0], conv_output_length(s[1], kernel_size_[0], o_.padding, o_.strides[0], o_.dilation_rate[0]),
          conv_output_length(s[2], kernel_size_[1], o_.padding, o_.strides[1], o_.dilation_rate[1]),
          s[3] ? std::optional<int64_t>(*s[3] * o_.depth_multiplier) : std::nullopt};
}
Tensor DepthwiseConv2D::call(const Tensor& x, bool training) {
  const Tensor y = ops::depthwise_conv(x, kernel_->value(), bias_ ? bias_->value() : Tensor(),
                                       {.strides = {o_.strides[0], o_.strides[1]},
                                        .padding = o_.padding,
                                        .dilation_rate = {o_.dilation_rate[0], o_.dilation_rate[1]}});
  return activations::apply(o_.activation, y);
}

// SeparableConv2D ----------------------------------------------------------------------------------------------
SeparableConv2D::SeparableConv2D(int64_t filters, std::array<int64_t, 2> kernel_size, SeparableConv2DOptions o)
    : Layer("SeparableConv2D", o.name), filters_(filters), kernel_size_(kernel_size), o_(std::move(o)) {
  set_activity_regularizer(o_.activity_regularizer);
  KCPP_CHECK(filters > 0 && o_.depth_multiplier > 0, ValueError,
             "SeparableConv2D: filters and depth_multiplier must be positive");
  check_padding("SeparableConv2D", o_.padding);
  detail::check_conv_geometry("SeparableConv2D", {kernel_size[0], kernel_size[1]}, {o_.strides[0], o_.strides[1]},
                              {o_.dilation_rate[0], o_.dilation_rate[1]}, 1);
  activations::check_name(o_.activation);
}
void SeparableConv2D::check_input(const PartialShape& s) const {
  check_rank(s, 4, [this](const std::string& w) { return input_error(w); });
}
void SeparableConv2D::build(const PartialShape& s) {
  depthwise_ = &add_weight("depthwise_kernel", Shape{kernel_size_[0], kernel_size_[1], *s[3], o_.depth_multiplier},
                           o_.depthwise_initializer, true, o_.depthwise_regularizer, o_.depthwise_constraint);
  pointwise_ = &add_weight("pointwise_kernel", Shape{1, 1, *s[3] * o_.depth_multiplier, filters_},
                           o_.pointwise_initializer, true, o_.pointwise_regularizer, o_.pointwise_constraint);
  if (o_.use_bias)
    bias_ = &add_weight("bias", Shape{filters_}, o_.bias_initializer, true, o_.bias_regularizer, o_.bias_constraint);
}
PartialShape SeparableConv2D::compute_output_shape(const PartialShape& s) const {
  return {s[0], conv_output_length(s[1], kernel_size_[0], o_.padding, o_.strides[0], o_.dilation_rate[0]),
          conv_output_length(s[2], kernel_size_[1], o_.padding, o_.strides[1], o_.dilation_rate[1]), filters_};
}
Tensor SeparableConv2D::call(const Tensor& x, bool training) {
  const Tensor d = ops::depthwise_conv(x, depthwise_->value(), Tensor(),
                                       {.strides = {o_.strides[0], o_.strides[1]},
                                        .padding = o_.padding,
                                        .dilation_rate = {o_.dilation_rate[0], o_.dilation_rate[1]}});
  return activations::apply(o_.activation, ops::conv(d, pointwise_->value(), bias_ ? bias_->value() : Tensor()));
}


Config Conv1D::get_config() const {
  Config c = Layer::get_config();
  c["filters"] = filters_;
  c["kernel_size"] = Config::array({kernel_size_});
  detail::write_conv_common(c, o_, false);
  c["groups"] = o_.groups;
  detail::write_kernel_bias(c, o_);
  return c;
}
std::shared_ptr<Layer> Conv1D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Conv1D config");
  Conv1DOptions o;
  detail::read_conv_common(r, o, 1);
  o.groups = r.integer("groups", 1);
  detail::read_kernel(r, o);
  const int64_t k = r.ints("kernel_size", 1)[0];
  auto layer = std::make_shared<Conv1D>(r.integer("filters"), k, std::move(o));
  r.finish(*layer);
  return layer;
}

Config Conv2DTranspose::get_config() const {
  Config c = Layer::get_config();
  c["filters"] = filters_;
  c["kernel_size"] = detail::kernel_array(kernel_size_);
  detail::write_conv_common(c, o_, true);
  c["output_padding"] = o_.output_padding ? Config(*o_.output_padding) : Config(nullptr);  // and no "groups"
  detail::write_kernel_bias(c, o_);
  return c;
}
std::shared_ptr<Layer> Conv2DTranspose::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Conv2DTranspose config");
  Conv2DOptions o;
  detail::read_conv_common(r, o, 2);
  o.groups = r.integer("groups", 1);
  if (r.has("output_padding")) {
    const auto v = r.ints("output_padding", 2);
    o.output_padding = std::array<int64_t, 2>{v[0], v[1]};
  }
  detail::read_kernel(r, o);
  const auto k = r.ints("kernel_size", 2);
  auto layer =
      std::make_shared<Conv2DTranspose>(r.integer("filters"), std::array<int64_t, 2>{k[0], k[1]}, std::move(o));
  r.finish(*layer);
  return layer;
}

Config DepthwiseConv2D::get_config() const {
  Config c = Layer::get_config();
  c["kernel_size"] = detail::kernel_array(kernel_size_);
  detail::write_conv_common(c, o_, true);
  c["depth_multiplier"] = o_.depth_multiplier;
  c["activation"] = o_.activation.empty() ? "linear" : o_.activation;
  c["use_bias"] = o_.use_bias;
  c["depthwise_initializer"] = o_.depthwise_initializer.serialized();
  c["bias_initializer"] = o_.bias_initializer.serialized();
  c["depthwise_regularizer"] = o_.depthwise_regularizer.serialized();
  c["bias_regularizer"] = o_.bias_regularizer.serialized();
  c["activity_regularizer"] = nullptr;
  c["depthwise_constraint"] = o_.depthwise_constraint.serialized();
  c["bias_constraint"] = o_.bias_constraint.serialized();
  return c;
}
std::shared_ptr<Layer> DepthwiseConv2D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "DepthwiseConv2D config");
  DepthwiseConv2DOptions o;
  detail::read_conv_common(r, o, 2);
  o.depth_multiplier = r.integer("depth_multiplier", 1);
  o.depthwise_initializer = r.initializer("depthwise_initializer", "glorot_uniform");
  o.depthwise_regularizer = r.regularizer("depthwise_regularizer");
  o.depthwise_constraint = r.constraint("depthwise_constraint");
  const auto k = r.ints("kernel_size", 2);
  auto layer = std::make_shared<DepthwiseConv2D>(std::array<int64_t, 2>{k[0], k[1]}, std::move(o));
  r.finish(*layer);
  return layer;
}

Config SeparableConv2D::get_config() const {
  Config c = Layer::get_config();
  c["filters"] = filters_;
  c["kernel_size"] = detail::kernel_array(kernel_size_);
  detail::write_conv_common(c, o_, true);
  c["depth_multiplier"] = o_.depth_multiplier;
  c["activation"] = o_.activation.empty() ? "linear" : o_.activation;
  c["use_bias"] = o_.use_bias;
  c["depthwise_initializer"] = o_.depthwise_initializer.serialized();
  c["pointwise_initializer"] = o_.pointwise_initializer.serialized();
  c["bias_initializer"] = o_.bias_initializer.serialized();
  c["depthwise_regularizer"] = o_.depthwise_regularizer.serialized();
  c["pointwise_regularizer"] = o_.pointwise_regularizer.serialized();
  c["bias_regularizer"] = o_.bias_regularizer.serialized();
  c["activity_regularizer"] = nullptr;
  c["depthwise_constraint"] = o_.depthwise_constraint.serialized();
  c["pointwise_constraint"] = o_.pointwise_constraint.serialized();
  c["bias_constraint"] = o_.bias_constraint.serialized();
  return c;
}
std::shared_ptr<Layer> SeparableConv2D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "SeparableConv2D config");
  SeparableConv2DOptions o;
  detail::read_conv_common(r, o, 2);
  o.depth_multiplier = r.integer("depth_multiplier", 1);
  o.depthwise_initializer = r.initializer("depthwise_initializer", "glorot_uniform");
  o.pointwise_initializer = r.initializer("pointwise_initializer", "glorot_uniform");
  o.depthwise_regularizer = r.regularizer("depthwise_regularizer");
  o.pointwise_regularizer = r.regularizer("pointwise_regularizer");
  o.depthwise_constraint = r.constraint("depthwise_constraint");
  o.pointwise_constraint = r.constraint("pointwise_constraint");
  const auto k = r.ints("kernel_size", 2);
  auto layer =
      std::make_shared<SeparableConv2D>(r.integer("filters"), std::array<int64_t, 2>{k[0], k[1]}, std::move(o));
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
