#include "layers/activations/activation_layers.h"

#include <algorithm>

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

ReLU::ReLU(ReLUOptions options) : Layer("ReLU", options.name), o_(std::move(options)) {
  KCPP_CHECK(!o_.max_value || *o_.max_value >= 0.f, ValueError,
             "max_value of a ReLU layer cannot be a negative value. Received: max_value={}", *o_.max_value);
  KCPP_CHECK(o_.negative_slope >= 0.f, ValueError,
             "negative_slope of a ReLU layer cannot be a negative value. Received: negative_slope={}",
             o_.negative_slope);
}
Tensor ReLU::call(const Tensor& x, bool) {
  const bool plain = o_.negative_slope == 0.f && o_.threshold == 0.f;
  if (plain && !o_.max_value) return ops::relu(x);
  if (plain && *o_.max_value == 6.f) return ops::relu6(x);
  auto scalar = [&](float v) { return ops::full({}, v, x.dtype(), x.backend()); };
  const Tensor th = scalar(o_.threshold);
  Tensor y = ops::where(ops::greater_equal(x, th), x, (x - th) * o_.negative_slope);
  if (o_.max_value) y = ops::minimum(y, scalar(*o_.max_value));
  return y;
}
Config ReLU::get_config() const {
  Config c = Layer::get_config();
  c["max_value"] = o_.max_value ? Config(*o_.max_value) : Config(nullptr);
  c["negative_slope"] = o_.negative_slope;
  c["threshold"] = o_.threshold;
  return c;
}
std::shared_ptr<Layer> ReLU::from_config(const Config& config) {
  serialization::ConfigReader r(config, "ReLU config");
  ReLUOptions o;
  o.name = r.name();
  if (r.has("max_value")) o.max_value = static_cast<float>(r.number("max_value"));
  o.negative_slope = static_cast<float>(r.number("negative_slope", 0.0));
  o.threshold = static_cast<float>(r.number("threshold", 0.0));
  auto layer = std::make_shared<ReLU>(o);
  r.finish(*layer);
  return layer;
}

LeakyReLU::LeakyReLU(float negative_slope, std::string name)
    : Layer("LeakyReLU", std::move(name)), negative_slope_(negative_slope) {
  KCPP_CHECK(negative_slope >= 0.f, ValueError,
             "The negative_slope value of a Leaky ReLU layer cannot be None or negative value. Expected a float. "
             "Received: negative_slope={}",
             negative_slope);
}
Tensor LeakyReLU::call(const Tensor& x, bool) { return ops::leaky_relu(x, negative_slope_); }
Config LeakyReLU::get_config() const {
  Config c = Layer::get_config();
  c["negative_slope"] = negative_slope_;
  return c;
}
std::shared_ptr<Layer> LeakyReLU::from_config(const Config& config) {
  serialization::ConfigReader r(config, "LeakyReLU config");
  const std::string name = r.name();
  // Keras 2 called the slope "alpha".
  const double slope = r.has("negative_slope") ? r.number("negative_slope") : r.number("alpha", 0.3);
  auto layer = std::make_shared<LeakyReLU>(static_cast<float>(slope), name);
  r.finish(*layer);
  return layer;
}

ELU::ELU(float alpha, std::string name) : Layer("ELU", std::move(name)), alpha_(alpha) {}
Tensor ELU::call(const Tensor& x, bool) { return ops::elu(x, alpha_); }
Config ELU::get_config() const {
  Config c = Layer::get_config();
  c["alpha"] = alpha_;
  return c;
}
std::shared_ptr<Layer> ELU::from_config(const Config& config) {
  serialization::ConfigReader r(config, "ELU config");
  const std::string name = r.name();
  auto layer = std::make_shared<ELU>(static_cast<float>(r.number("alpha", 1.0)), name);
  r.finish(*layer);
  return layer;
}

Softmax::Softmax(int64_t axis, std::string name) : Layer("Softmax", std::move(name)), axis_(axis) {}
void Softmax::check_input(const PartialShape& s) const {
  const auto rank = static_cast<int64_t>(s.size());
  KCPP_CHECK(axis_ >= -rank && axis_ < rank, ValueError, "Softmax: axis {} is out of range for an input of rank {}",
             axis_, rank);
}
Tensor Softmax::call(const Tensor& x, bool) { return ops::softmax(x, axis_); }
Config Softmax::get_config() const {
  Config c = Layer::get_config();
  c["axis"] = axis_;
  return c;
}
std::shared_ptr<Layer> Softmax::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Softmax config");
  const std::string name = r.name();
  KCPP_CHECK(!r.has("axis") || r.raw("axis").is_number_integer(), NotImplementedError,
             "Softmax config: kerascpp supports one axis, received axis={}", config["axis"].dump());
  auto layer = std::make_shared<Softmax>(r.integer("axis", -1), name);
  r.finish(*layer);
  return layer;
}

PReLU::PReLU(PReLUOptions o) : Layer("PReLU", o.name), o_(std::move(o)) {
  for (int64_t a : o_.shared_axes)
    KCPP_CHECK(a >= 1, ValueError, "PReLU: shared_axes count from 1 (the batch axis is 0), received {}", a);
}
void PReLU::check_input(const PartialShape& s) const {
  for (size_t i = 1; i < s.size(); ++i) {
    const bool shared = std::find(o_.shared_axes.begin(), o_.shared_axes.end(), static_cast<int64_t>(i)) !=
                        o_.shared_axes.end();
    if (!shared && !s[i])
      throw input_error(fmt::format("axis {} must be known or shared, received shape {}", i, shape_to_string(s)));
  }
  for (int64_t a : o_.shared_axes)
    if (a >= static_cast<int64_t>(s.size()))
      throw input_error(fmt::format("shared axis {} is beyond an input of shape {}", a, shape_to_string(s)));
}
void PReLU::build(const PartialShape& s) {
  std::vector<int64_t> shape;  // the input's shape without the batch axis, 1 along the shared axes
  for (size_t i = 1; i < s.size(); ++i) {
    const bool shared = std::find(o_.shared_axes.begin(), o_.shared_axes.end(), static_cast<int64_t>(i)) !=
                        o_.shared_axes.end();
    shape.push_back(shared ? 1 : *s[i]);
  }
  alpha_ = &add_weight("alpha", Shape(shape), o_.alpha_initializer, true, o_.alpha_regularizer, o_.alpha_constraint);
}
Tensor PReLU::call(const Tensor& x, bool) { return ops::relu(x) - alpha_->value() * ops::relu(-x); }
Config PReLU::get_config() const {
  Config c = Layer::get_config();
  c["alpha_initializer"] = o_.alpha_initializer.serialized();
  c["alpha_regularizer"] = o_.alpha_regularizer.serialized();
  c["alpha_constraint"] = o_.alpha_constraint.serialized();
  c["shared_axes"] = o_.shared_axes.empty() ? Config(nullptr) : Config(o_.shared_axes);
  return c;
}
std::shared_ptr<Layer> PReLU::from_config(const Config& config) {
  serialization::ConfigReader r(config, "PReLU config");
  PReLUOptions o;
  o.name = r.name();
  o.alpha_initializer = r.initializer("alpha_initializer", "zeros");
  o.alpha_regularizer = r.regularizer("alpha_regularizer");
  o.alpha_constraint = r.constraint("alpha_constraint");
  if (r.has("shared_axes"))
    o.shared_axes = r.raw("shared_axes").is_array() ? r.int_list("shared_axes")
                                                    : std::vector<int64_t>{r.integer("shared_axes")};
  auto layer = std::make_shared<PReLU>(o);
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
