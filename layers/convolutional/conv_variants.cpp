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

// Transposed convolutions -------------------------------------------------------------------------------------
namespace detail {
ConvTransposeBase::ConvTransposeBase(const char* class_name, int64_t filters, ConvTransposeSpec spec,
                                     const Regularizer& activity_regularizer)
    : Layer(class_name, spec.name), filters_(filters), s_(std::move(spec)) {
  set_activity_regularizer(activity_regularizer);
  KCPP_CHECK(filters > 0, ValueError, "{}: filters must be positive, received {}", class_name, filters);
  check_padding(class_name, s_.padding);
  check_conv_geometry(class_name, s_.kernel_size, s_.strides, s_.dilation_rate, 1);
  if (s_.output_padding)
    for (size_t i = 0; i < s_.strides.size(); ++i)
      KCPP_CHECK((*s_.output_padding)[i] >= 0 && (*s_.output_padding)[i] < s_.strides[i], ValueError,
                 "{}: expected output_padding >= 0 and smaller than the strides ({}), received ({})", class_name,
                 fmt::join(s_.strides, ", "), fmt::join(*s_.output_padding, ", "));
  activations::check_name(s_.activation);
}
void ConvTransposeBase::check_input(const PartialShape& s) const {
  check_rank(s, s_.kernel_size.size() + 2, [this](const std::string& w) { return input_error(w); });
}
void ConvTransposeBase::build(const PartialShape& s) {
  std::vector<int64_t> shape = s_.kernel_size;
  shape.push_back(filters_);
  shape.push_back(*s.back());
  kernel_ = &add_weight("kernel", Shape(shape), s_.kernel_initializer, true, s_.kernel_regularizer,
                        s_.kernel_constraint);
  if (s_.use_bias)
    bias_ = &add_weight("bias", Shape{filters_}, s_.bias_initializer, true, s_.bias_regularizer, s_.bias_constraint);
}
PartialShape ConvTransposeBase::compute_output_shape(const PartialShape& s) const {
  PartialShape out{s[0]};
  for (size_t a = 0; a < s_.kernel_size.size(); ++a) {
    const std::optional<int64_t> in = s[a + 1];
    out.push_back(in ? std::optional<int64_t>(ops::conv_transpose_output_size(
                           *in, s_.kernel_size[a], s_.strides[a], s_.dilation_rate[a], s_.padding,
                           s_.output_padding ? std::optional<int64_t>((*s_.output_padding)[a]) : std::nullopt))
                     : std::nullopt);
  }
  out.push_back(filters_);
  return out;
}
Tensor ConvTransposeBase::call(const Tensor& x, bool training) {
  const Tensor y = ops::conv_transpose(x, kernel_->value(), bias_ ? bias_->value() : Tensor(),
                                       {.strides = s_.strides,
                                        .padding = s_.padding,
                                        .dilation_rate = s_.dilation_rate,
                                        .output_padding = s_.output_padding.value_or(std::vector<int64_t>{})});
  return activations::apply(s_.activation, y);
}
Config ConvTransposeBase::get_config() const {
  Config c = Layer::get_config();
  c["filters"] = filters_;
  c["kernel_size"] = s_.kernel_size;
  c["strides"] = s_.strides;
  c["padding"] = s_.padding;
  c["data_format"] = "channels_last";
  c["dilation_rate"] = s_.dilation_rate;
  c["output_padding"] = s_.output_padding ? Config(*s_.output_padding) : Config(nullptr);  // and no "groups"
  write_kernel_bias(c, s_);
  return c;
}
ConvTransposeSpec ConvTransposeBase::read_spec(serialization::ConfigReader& r, size_t rank) {
  ConvTransposeSpec s;
  read_conv_common(r, s, rank);
  r.require("groups", 1);
  s.kernel_size = r.ints("kernel_size", rank);
  if (r.has("output_padding")) s.output_padding = r.ints("output_padding", rank);
  read_kernel(r, s);
  return s;
}
}  // namespace detail

namespace {
template <class O>
detail::ConvTransposeSpec transpose_spec(std::vector<int64_t> kernel_size, const O& o,
                                         std::optional<std::vector<int64_t>> output_padding) {
  return {std::move(kernel_size), detail::axes_vector(o.strides), detail::axes_vector(o.dilation_rate),
          o.padding,              std::move(output_padding),      o.activation,
          o.use_bias,             o.kernel_initializer,           o.bias_initializer,
          o.kernel_regularizer,   o.bias_regularizer,             o.kernel_constraint,
          o.bias_constraint,      o.name};
}
// Sets the layer's trainable flag and logs unread keys once the layer exists.
template <class L>
std::shared_ptr<Layer> finished(serialization::ConfigReader& r, std::shared_ptr<L> layer) {
  r.finish(*layer);
  return layer;
}
}  // namespace

Conv1DTranspose::Conv1DTranspose(int64_t filters, int64_t kernel_size, Conv1DTransposeOptions o)
    : ConvTransposeBase("Conv1DTranspose", filters,
                        transpose_spec({kernel_size}, o,
                                       o.output_padding ? std::optional<std::vector<int64_t>>(std::vector<int64_t>{*o.output_padding})
                                                        : std::nullopt),
                        o.activity_regularizer) {}
std::shared_ptr<Layer> Conv1DTranspose::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Conv1DTranspose config");
  auto spec = read_spec(r, 1);
  return finished(r, std::shared_ptr<Conv1DTranspose>(
                         new Conv1DTranspose("Conv1DTranspose", r.integer("filters"), std::move(spec))));
}

Conv2DTranspose::Conv2DTranspose(int64_t filters, std::array<int64_t, 2> kernel_size, Conv2DOptions o)
    : ConvTransposeBase("Conv2DTranspose", filters,
                        transpose_spec({kernel_size[0], kernel_size[1]}, o,
                                       o.output_padding ? std::optional<std::vector<int64_t>>(std::vector<int64_t>(
                                                              o.output_padding->begin(), o.output_padding->end()))
                                                        : std::nullopt),
                        o.activity_regularizer) {
  KCPP_CHECK(o.groups == 1, NotImplementedError, "Conv2DTranspose: groups > 1 is not supported");
}
std::shared_ptr<Layer> Conv2DTranspose::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Conv2DTranspose config");
  auto spec = read_spec(r, 2);
  return finished(r, std::shared_ptr<Conv2DTranspose>(
                         new Conv2DTranspose("Conv2DTranspose", r.integer("filters"), std::move(spec))));
}

// Depthwise and separable convolutions ------------------------------------------------------------------------
namespace detail {
DepthwiseConvBase::DepthwiseConvBase(const char* class_name, std::optional<int64_t> filters,
                                     std::vector<int64_t> kernel_size, SeparableConvOptions<std::vector<int64_t>> o)
    : Layer(class_name, o.name), filters_(filters.value_or(0)), kernel_size_(std::move(kernel_size)), o_(std::move(o)) {
  set_activity_regularizer(o_.activity_regularizer);
  KCPP_CHECK(!filters || *filters > 0, ValueError, "{}: filters must be positive, received {}", class_name,
             filters.value_or(0));
  KCPP_CHECK(o_.depth_multiplier > 0, ValueError, "{}: depth_multiplier must be positive, received {}", class_name,
             o_.depth_multiplier);
  check_padding(class_name, o_.padding);
  check_conv_geometry(class_name, kernel_size_, o_.strides, o_.dilation_rate, 1);
  activations::check_name(o_.activation);
}
void DepthwiseConvBase::check_input(const PartialShape& s) const {
  check_rank(s, kernel_size_.size() + 2, [this](const std::string& w) { return input_error(w); });
}
void DepthwiseConvBase::build(const PartialShape& s) {
  const int64_t in = *s.back();
  std::vector<int64_t> shape = kernel_size_;
  shape.push_back(in);
  shape.push_back(o_.depth_multiplier);
  depthwise_ = &add_weight(filters_ ? "depthwise_kernel" : "kernel", Shape(shape), o_.depthwise_initializer, true,
                           o_.depthwise_regularizer, o_.depthwise_constraint);
  if (filters_) {
    std::vector<int64_t> pointwise(kernel_size_.size(), 1);
    pointwise.push_back(in * o_.depth_multiplier);
    pointwise.push_back(filters_);
    pointwise_ = &add_weight("pointwise_kernel", Shape(pointwise), o_.pointwise_initializer, true,
                             o_.pointwise_regularizer, o_.pointwise_constraint);
  }
  if (o_.use_bias)
    bias_ = &add_weight("bias", Shape{filters_ ? filters_ : in * o_.depth_multiplier}, o_.bias_initializer, true,
                        o_.bias_regularizer, o_.bias_constraint);
}
PartialShape DepthwiseConvBase::compute_output_shape(const PartialShape& s) const {
  PartialShape out{s[0]};
  for (size_t a = 0; a < kernel_size_.size(); ++a)
    out.push_back(conv_output_length(s[a + 1], kernel_size_[a], o_.padding, o_.strides[a], o_.dilation_rate[a]));
  out.push_back(filters_                ? std::optional<int64_t>(filters_)
                : s.back()              ? std::optional<int64_t>(*s.back() * o_.depth_multiplier)
                                        : std::nullopt);
  return out;
}
Tensor DepthwiseConvBase::call(const Tensor& x, bool training) {
  const ops::ConvOptions geometry{.strides = o_.strides, .padding = o_.padding, .dilation_rate = o_.dilation_rate};
  if (!filters_)
    return activations::apply(o_.activation,
                              ops::depthwise_conv(x, depthwise_->value(), bias_ ? bias_->value() : Tensor(), geometry));
  const Tensor d = ops::depthwise_conv(x, depthwise_->value(), Tensor(), geometry);
  return activations::apply(o_.activation, ops::conv(d, pointwise_->value(), bias_ ? bias_->value() : Tensor()));
}
Config DepthwiseConvBase::get_config() const {
  Config c = Layer::get_config();
  c["depth_multiplier"] = o_.depth_multiplier;
  if (filters_) c["filters"] = filters_;
  c["kernel_size"] = kernel_size_;
  c["strides"] = o_.strides;
  c["padding"] = o_.padding;
  c["data_format"] = "channels_last";
  c["dilation_rate"] = o_.dilation_rate;
  c["activation"] = o_.activation.empty() ? "linear" : o_.activation;
  c["use_bias"] = o_.use_bias;
  c["depthwise_initializer"] = o_.depthwise_initializer.serialized();
  if (filters_) c["pointwise_initializer"] = o_.pointwise_initializer.serialized();
  c["bias_initializer"] = o_.bias_initializer.serialized();
  c["depthwise_regularizer"] = o_.depthwise_regularizer.serialized();
  if (filters_) c["pointwise_regularizer"] = o_.pointwise_regularizer.serialized();
  c["bias_regularizer"] = o_.bias_regularizer.serialized();
  c["activity_regularizer"] = nullptr;
  c["depthwise_constraint"] = o_.depthwise_constraint.serialized();
  if (filters_) c["pointwise_constraint"] = o_.pointwise_constraint.serialized();
  c["bias_constraint"] = o_.bias_constraint.serialized();
  return c;
}
SeparableConvOptions<std::vector<int64_t>> DepthwiseConvBase::read_options(serialization::ConfigReader& r,
                                                                           size_t rank, bool separable,
                                                                           std::vector<int64_t>& kernel_size) {
  SeparableConvOptions<std::vector<int64_t>> o;
  read_conv_common(r, o, rank);
  kernel_size = r.ints("kernel_size", rank);
  o.depth_multiplier = r.integer("depth_multiplier", 1);
  o.depthwise_initializer = r.initializer("depthwise_initializer", "glorot_uniform");
  o.depthwise_regularizer = r.regularizer("depthwise_regularizer");
  o.depthwise_constraint = r.constraint("depthwise_constraint");
  if (separable) {
    o.pointwise_initializer = r.initializer("pointwise_initializer", "glorot_uniform");
    o.pointwise_regularizer = r.regularizer("pointwise_regularizer");
    o.pointwise_constraint = r.constraint("pointwise_constraint");
  }
  return o;
}
}  // namespace detail

DepthwiseConv1D::DepthwiseConv1D(int64_t kernel_size, DepthwiseConv1DOptions o)
    : DepthwiseConvBase("DepthwiseConv1D", std::nullopt, {kernel_size}, as_separable(o)) {}
DepthwiseConv2D::DepthwiseConv2D(std::array<int64_t, 2> kernel_size, DepthwiseConv2DOptions o)
    : DepthwiseConvBase("DepthwiseConv2D", std::nullopt, {kernel_size[0], kernel_size[1]}, as_separable(o)) {}
SeparableConv1D::SeparableConv1D(int64_t filters, int64_t kernel_size, SeparableConv1DOptions o)
    : DepthwiseConvBase("SeparableConv1D", filters, {kernel_size}, o) {}
SeparableConv2D::SeparableConv2D(int64_t filters, std::array<int64_t, 2> kernel_size, SeparableConv2DOptions o)
    : DepthwiseConvBase("SeparableConv2D", filters, {kernel_size[0], kernel_size[1]}, o) {}

std::shared_ptr<Layer> DepthwiseConv1D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "DepthwiseConv1D config");
  std::vector<int64_t> k;
  auto o = read_options(r, 1, false, k);
  return finished(r, std::shared_ptr<DepthwiseConv1D>(new DepthwiseConv1D("DepthwiseConv1D", std::nullopt, std::move(k), o)));
}
std::shared_ptr<Layer> DepthwiseConv2D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "DepthwiseConv2D config");
  std::vector<int64_t> k;
  auto o = read_options(r, 2, false, k);
  return finished(r, std::shared_ptr<DepthwiseConv2D>(new DepthwiseConv2D("DepthwiseConv2D", std::nullopt, std::move(k), o)));
}
std::shared_ptr<Layer> SeparableConv1D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "SeparableConv1D config");
  std::vector<int64_t> k;
  auto o = read_options(r, 1, true, k);
  return finished(r, std::shared_ptr<SeparableConv1D>(
                         new SeparableConv1D("SeparableConv1D", r.integer("filters"), std::move(k), o)));
}
std::shared_ptr<Layer> SeparableConv2D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "SeparableConv2D config");
  std::vector<int64_t> k;
  auto o = read_options(r, 2, true, k);
  return finished(r, std::shared_ptr<SeparableConv2D>(
                         new SeparableConv2D("SeparableConv2D", r.integer("filters"), std::move(k), o)));
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

}  // namespace keras::layers
