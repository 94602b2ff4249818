#include "layers/normalization/normalization_more.h"

#include "core/check.h"
#include "core/ops.h"
#include "layers/normalization/beta_gamma.h"

namespace keras::layers {
namespace {
// Keras' axis for these layers: the last one (-1, or its index for inputs of a known rank).
void require_last_axis(serialization::ConfigReader& r, const char* layer) {
  if (!r.has("axis")) return;
  const Config& axis = r.raw("axis");
  const Config& a = axis.is_array() && axis.size() == 1 ? axis[0] : axis;
  KCPP_CHECK(a.is_number_integer() && a.get<int64_t>() == -1, NotImplementedError,
             "{} config: only the last axis (channels_last) is supported, received \"axis\": {}", layer, axis.dump());
}
// Empty where the input has a known last axis and a batch axis; else what is wrong.
std::string last_axis_problem(const PartialShape& s) {
  if (s.size() < 2) return fmt::format("expected min_ndim=2, found ndim={}. Full shape received: {}", s.size(), shape_to_string(s));
  if (!s.back()) return "the normalized axis must be known, received shape " + shape_to_string(s);
  return "";
}
}  // namespace

// GroupNormalization -------------------------------------------------------------------------------
GroupNormalization::GroupNormalization(GroupNormalizationOptions o)
    : Layer("GroupNormalization", o.name), o_(std::move(o)) {
  KCPP_CHECK(o_.groups > 0, ValueError, "GroupNormalization: groups must be positive, received {}", o_.groups);
  KCPP_CHECK(o_.epsilon > 0, ValueError, "GroupNormalization: epsilon must be positive, received {}", o_.epsilon);
  set_autocast(false);
}
void GroupNormalization::check_input(const PartialShape& s) const {
  if (const std::string why = last_axis_problem(s); !why.empty()) throw input_error(why);
  if (*s.back() % o_.groups != 0)
    throw input_error(fmt::format("the number of groups ({}) must divide the channels ({}), received shape {}",
                                  o_.groups, *s.back(), shape_to_string(s)));
}
void GroupNormalization::build(const PartialShape& s) {
  const Shape c{*s.back()};
  if (o_.scale) gamma_ = &add_weight("gamma", c, o_.gamma_initializer, true, o_.gamma_regularizer, o_.gamma_constraint);
  if (o_.center) beta_ = &add_weight("beta", c, o_.beta_initializer, true, o_.beta_regularizer, o_.beta_constraint);
}
Tensor GroupNormalization::call(const Tensor& x, bool) {
  // (N, ..., C) as (N, positions, groups, C / groups): moments over the positions and each group's channels.
  const int64_t n = x.dim(0), c = x.dim(-1), g = o_.groups;
  const Tensor grouped = ops::reshape(x, {n, -1, g, c / g});
  const Tensor inv = ops::rsqrt(ops::var(grouped, {1, 3}, true) + o_.epsilon);
  Tensor y = ops::reshape((grouped - ops::mean(grouped, {1, 3}, true)) * inv, x.shape().dims());
  if (gamma_) y = y * gamma_->value();
  if (beta_) y = y + beta_->value();
  return ops::cast(y, compute_dtype());
}
Config GroupNormalization::get_config() const {
  Config c = Layer::get_config();
  c["groups"] = o_.groups;
  c["axis"] = -1;
  c["epsilon"] = o_.epsilon;
  detail::write_beta_gamma(c, o_);
  return c;
}
std::shared_ptr<Layer> GroupNormalization::from_config(const Config& config) {
  serialization::ConfigReader r(config, "GroupNormalization config");
  GroupNormalizationOptions o;
  o.name = r.name();
  require_last_axis(r, "GroupNormalization");
  o.groups = r.integer("groups", 32);
  o.epsilon = static_cast<float>(r.number("epsilon", 1e-3));
  detail::read_beta_gamma(r, o);
  auto layer = std::make_shared<GroupNormalization>(o);
  r.finish(*layer);
  return layer;
}

// UnitNormalization --------------------------------------------------------------------------------
UnitNormalization::UnitNormalization(std::string name) : Layer("UnitNormalization", std::move(name)) {}
Tensor UnitNormalization::call(const Tensor& x, bool) {
  // Keras: x * min(1 / sqrt(sum(x^2)), 1 / 1e-12).
  const Tensor inv = ops::rsqrt(ops::sum(ops::square(x), {-1}, true));
  return x * ops::minimum(inv, ops::full({}, 1e12, inv.dtype(), inv.backend()));
}
Config UnitNormalization::get_config() const {
  Config c = Layer::get_config();
  c["axis"] = -1;
  return c;
}
std::shared_ptr<Layer> UnitNormalization::from_config(const Config& config) {
  serialization::ConfigReader r(config, "UnitNormalization config");
  require_last_axis(r, "UnitNormalization");
  auto layer = std::make_shared<UnitNormalization>(r.name());
  r.finish(*layer);
  return layer;
}

// RMSNormalization ---------------------------------------------------------------------------------
RMSNormalization::RMSNormalization(float epsilon, std::string name)
    : Layer("RMSNormalization", std::move(name)), epsilon_(epsilon) {
  KCPP_CHECK(epsilon > 0, ValueError, "RMSNormalization: epsilon must be positive, received {}", epsilon);
  set_autocast(false);
}
void RMSNormalization::check_input(const PartialShape& s) const {
  if (const std::string why = last_axis_problem(s); !why.empty()) throw input_error(why);
}
void RMSNormalization::build(const PartialShape& s) { scale_ = &add_weight("scale", Shape{*s.back()}, "ones"); }
Tensor RMSNormalization::call(const Tensor& x, bool) {
  const Tensor y = x * ops::rsqrt(ops::mean(ops::square(x), {-1}, true) + epsilon_) * scale_->value();
  return ops::cast(y, compute_dtype());
}
Config RMSNormalization::get_config() const {
  Config c = Layer::get_config();
  c["axis"] = -1;
  c["epsilon"] = epsilon_;
  return c;
}
std::shared_ptr<Layer> RMSNormalization::from_config(const Config& config) {
  serialization::ConfigReader r(config, "RMSNormalization config");
  require_last_axis(r, "RMSNormalization");
  const std::string name = r.name();
  auto layer = std::make_shared<RMSNormalization>(static_cast<float>(r.number("epsilon", 1e-6)), name);
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
