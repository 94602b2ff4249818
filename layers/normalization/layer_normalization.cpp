#include "layers/normalization/layer_normalization.h"

#include <algorithm>

#include "core/check.h"
#include "core/ops.h"
#include "layers/normalization/beta_gamma.h"

namespace keras::layers {

LayerNormalization::LayerNormalization(LayerNormalizationOptions o)
    : Layer("LayerNormalization", o.name), o_(std::move(o)) {
  KCPP_CHECK(o_.epsilon > 0, ValueError, "LayerNormalization: epsilon must be positive, received {}", o_.epsilon);
  KCPP_CHECK(!o_.axis.empty(), ValueError, "LayerNormalization: expected at least one axis, received none");
  set_autocast(false);  // as Keras: the input's own dtype, float32 weights, the result in the compute dtype
}

std::vector<int64_t> LayerNormalization::axes_for(size_t rank) const {
  const auto r = static_cast<int64_t>(rank);
  std::vector<int64_t> axes;
  for (int64_t a : o_.axis) {
    if (a < -r + 1 || a >= r || a == 0 || a == -r)
      throw input_error(fmt::format("expected axes within the non-batch axes of an input of rank {}, received axis {}",
                                    rank, a));
    const int64_t n = a < 0 ? a + r : a;
    if (std::find(axes.begin(), axes.end(), n) != axes.end())
      throw input_error(fmt::format("axis {} is listed twice", a));
    axes.push_back(n);
  }
  return axes;
}

void LayerNormalization::check_input(const PartialShape& s) const {
  if (s.size() < 2)
    throw input_error(
        fmt::format("expected min_ndim=2, found ndim={}. Full shape received: {}", s.size(), shape_to_string(s)));
  for (int64_t a : axes_for(s.size()))
    if (!s[static_cast<size_t>(a)])
      throw input_error(fmt::format("the normalized axis {} must be known, received shape {}", a, shape_to_string(s)));
}

void LayerNormalization::build(const PartialShape& s) {
  std::vector<int64_t> param;  // the normalized axes' sizes, in the order given (Keras' param_shape)
  for (int64_t a : axes_for(s.size())) param.push_back(*s[static_cast<size_t>(a)]);
  if (o_.scale || o_.rms_scaling)  // Keras gives rms_scaling a gamma even without scale
    gamma_ = &add_weight("gamma", Shape(param), o_.gamma_initializer, true, o_.gamma_regularizer, o_.gamma_constraint);
  if (o_.center && !o_.rms_scaling)
    beta_ = &add_weight("beta", Shape(param), o_.beta_initializer, true, o_.beta_regularizer, o_.beta_constraint);
}

Tensor LayerNormalization::call(const Tensor& x, bool) {
  const auto axes = axes_for(x.rank());
  const auto rank = static_cast<int64_t>(x.rank()), n = static_cast<int64_t>(axes.size());
  bool trailing = !o_.rms_scaling;  // the last axes, in order: one fused op where the backend has it
  for (int64_t i = 0; i < n && trailing; ++i) trailing = axes[static_cast<size_t>(i)] == rank - n + i;
  if (trailing)
    return ops::cast(ops::layer_normalization(x, gamma_ ? gamma_->value() : Tensor(), beta_ ? beta_->value() : Tensor(),
                                              rank - n, o_.epsilon),
                     compute_dtype());
  // gamma and beta reshaped onto the input's rank (Keras reshapes their data in the order given).
  std::vector<int64_t> broadcast(x.rank(), 1);
  for (int64_t a : axes) broadcast[static_cast<size_t>(a)] = x.dim(a);
  auto onto = [&](const Variable* v) { return ops::reshape(v->value(), broadcast); };
  const Tensor inv = ops::rsqrt(ops::var(x, axes, true) + o_.epsilon);
  Tensor y = o_.rms_scaling ? x * inv : (x - ops::mean(x, axes, true)) * inv;
  if (gamma_) y = y * onto(gamma_);
  if (beta_) y = y + onto(beta_);
  return ops::cast(y, compute_dtype());
}

Config LayerNormalization::get_config() const {
  Config c = Layer::get_config();
  c["axis"] = o_.axis.size() == 1 ? Config(o_.axis[0]) : Config(o_.axis);
  c["epsilon"] = o_.epsilon;
  c["rms_scaling"] = o_.rms_scaling;
  detail::write_beta_gamma(c, o_);
  return c;
}

std::shared_ptr<Layer> LayerNormalization::from_config(const Config& config) {
  serialization::ConfigReader r(config, "LayerNormalization config");
  LayerNormalizationOptions o;
  o.name = r.name();
  if (r.has("axis")) o.axis = r.raw("axis").is_array() ? r.int_list("axis") : std::vector<int64_t>{r.integer("axis")};
  o.epsilon = static_cast<float>(r.number("epsilon", 1e-3));
  o.rms_scaling = r.boolean("rms_scaling", false);
  detail::read_beta_gamma(r, o);
  auto layer = std::make_shared<LayerNormalization>(o);
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
