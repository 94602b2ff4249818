#include "layers/core/simple_layers.h"

#include "core/check.h"
#include "core/ops.h"
#include "layers/activations.h"

namespace keras::layers {

namespace detail {
Shape concrete_noise_shape(const std::string& layer, const PartialShape& noise_shape, const Tensor& x) {
  KCPP_CHECK(noise_shape.size() == x.rank(), ValueError,
             "{}: expected a noise_shape of the input's rank {} (input {}), received {}", layer, x.rank(),
             x.shape().to_string(), shape_to_string(noise_shape));
  std::vector<int64_t> dims;
  for (size_t i = 0; i < noise_shape.size(); ++i) {
    const int64_t d = noise_shape[i].value_or(x.dim(static_cast<int64_t>(i)));
    KCPP_CHECK(d == 1 || d == x.dim(static_cast<int64_t>(i)), ValueError,
               "{}: noise_shape {} does not broadcast onto the input's shape {} (axis {})", layer,
               shape_to_string(noise_shape), x.shape().to_string(), i);
    dims.push_back(d);
  }
  return Shape(dims);
}
DropoutOptions read_dropout_options(serialization::ConfigReader& r) {
  DropoutOptions o;
  o.name = r.name();
  o.seed = r.seed();
  if (r.has("noise_shape")) o.noise_shape = r.shape("noise_shape");
  return o;
}
}  // namespace detail


Activation::Activation(std::string activation, std::string name)
    : Layer("Activation", std::move(name)), activation_(std::move(activation)) {
  activations::check_name(activation_);
}
Tensor Activation::call(const Tensor& x, bool training) { return activations::apply(activation_, x); }

Dropout::Dropout(float rate, DropoutOptions options)
    : Layer("Dropout", options.name),
      rate_(rate),
      seed_(options.seed),
      noise_shape_(std::move(options.noise_shape)),
      seeds_(options.seed) {
  KCPP_CHECK(rate >= 0.f && rate < 1.f, ValueError, "Dropout: the rate must be in [0, 1), received {}", rate);
}
Tensor Dropout::call(const Tensor& x, bool training) {
  if (!training || rate_ == 0.f) return x;
  if (!noise_shape_) return ops::dropout(x, rate_, seeds_);
  const Shape noise = detail::concrete_noise_shape("Dropout", *noise_shape_, x);
  return x * ops::dropout(ops::ones(noise, x.dtype(), x.backend()), rate_, seeds_);
}

Flatten::Flatten(std::string name) : Layer("Flatten", std::move(name)) {}
Tensor Flatten::call(const Tensor& x, bool training) { return ops::reshape(x, {x.dim(0), -1}); }
PartialShape Flatten::compute_output_shape(const PartialShape& s) const {
  std::optional<int64_t> n = 1;
  for (size_t i = 1; i < s.size(); ++i) {
    if (!n || !s[i]) {
      n = std::nullopt;
      continue;
    }
    int64_t product;
    KCPP_CHECK(!__builtin_mul_overflow(*n, *s[i], &product), ValueError,
               "Flatten \"{}\": the flattened size of {} overflows", name(), shape_to_string(s));
    n = product;
  }
  return {s.empty() ? std::nullopt : s[0], n};
}

Reshape::Reshape(std::vector<int64_t> target_shape, std::string name)
    : Layer("Reshape", std::move(name)), target_(std::move(target_shape)) {
  int free = 0;
  for (int64_t d : target_) {
    KCPP_CHECK(d > 0 || d == -1, ValueError, "Reshape: target_shape entries must be positive or -1, received ({})",
               fmt::join(target_, ", "));
    free += d == -1;
  }
  KCPP_CHECK(free <= 1, ValueError, "Reshape: at most one -1 in target_shape, received ({})", fmt::join(target_, ", "));
}
Tensor Reshape::call(const Tensor& x, bool training) {
  std::vector<int64_t> dims{x.dim(0)};
  dims.insert(dims.end(), target_.begin(), target_.end());
  return ops::reshape(x, dims);
}
PartialShape Reshape::compute_output_shape(const PartialShape& s) const {
  int64_t known = 1, in = 1;
  bool in_known = true;
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i])
      in *= *s[i];
    else
      in_known = false;
  }
  PartialShape out{s.empty() ? std::nullopt : s[0]};
  for (int64_t d : target_)
    if (d != -1) known *= d;
  for (int64_t d : target_) {
    if (d != -1)
      out.emplace_back(d);
    else
      out.push_back(in_known && known > 0 ? std::optional<int64_t>(in / known) : std::nullopt);
  }
  if (in_known && known > 0) {
    const bool has_free = std::find(target_.begin(), target_.end(), -1) != target_.end();
    KCPP_CHECK(has_free ? in % known == 0 : in == known, ValueError,
               "Reshape \"{}\": total size of the input {} does not match target_shape ({})", name(),
               shape_to_string(s), fmt::join(target_, ", "));
  }
  return out;
}


Config Activation::get_config() const {
  Config c = Layer::get_config();
  c["activation"] = activation_.empty() ? "linear" : activation_;
  return c;
}
std::shared_ptr<Layer> Activation::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Activation config");
  const std::string name = r.name();
  auto layer = std::make_shared<Activation>(r.activation(), name);
  r.finish(*layer);
  return layer;
}

Config Dropout::get_config() const {
  Config c = Layer::get_config();
  c["rate"] = rate_;
  c["seed"] = seed_ ? Config(*seed_) : Config(nullptr);
  c["noise_shape"] = noise_shape_ ? serialization::shape_to_config(*noise_shape_) : Config(nullptr);
  return c;
}
std::shared_ptr<Layer> Dropout::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Dropout config");
  const DropoutOptions o = detail::read_dropout_options(r);
  auto layer = std::make_shared<Dropout>(static_cast<float>(r.number("rate")), o);
  r.finish(*layer);
  return layer;
}

Config Flatten::get_config() const {
  Config c = Layer::get_config();
  c["data_format"] = "channels_last";
  return c;
}
std::shared_ptr<Layer> Flatten::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Flatten config");
  r.require("data_format", "channels_last");
  auto layer = std::make_shared<Flatten>(r.name());
  r.finish(*layer);
  return layer;
}

Config Reshape::get_config() const {
  Config c = Layer::get_config();
  c["target_shape"] = target_;
  return c;
}
std::shared_ptr<Layer> Reshape::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Reshape config");
  const std::string name = r.name();
  auto layer = std::make_shared<Reshape>(r.int_list("target_shape"), name);
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers

namespace keras::layers {

std::shared_ptr<Layer> Identity::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Identity config");
  auto layer = std::make_shared<Identity>(r.name());
  r.finish(*layer);
  return layer;
}

ActivityRegularization::ActivityRegularization(float l1, float l2, std::string name)
    : Layer("ActivityRegularization", std::move(name)), l1_(l1), l2_(l2) {
  KCPP_CHECK(l1 >= 0.f && l2 >= 0.f, ValueError,
             "ActivityRegularization: expected l1 and l2 >= 0, received l1={} and l2={}", l1, l2);
  set_activity_regularizer(regularizers::L1L2(l1, l2));
}
Config ActivityRegularization::get_config() const {
  Config c = Layer::get_config();
  c["l1"] = l1_;
  c["l2"] = l2_;
  return c;
}
std::shared_ptr<Layer> ActivityRegularization::from_config(const Config& config) {
  serialization::ConfigReader r(config, "ActivityRegularization config");
  const std::string name = r.name();
  r.require("activity_regularizer", nullptr);  // Keras writes its own L1L2 as l1 and l2
  auto layer = std::make_shared<ActivityRegularization>(static_cast<float>(r.number("l1", 0.0)),
                                                        static_cast<float>(r.number("l2", 0.0)), name);
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
