#include "layers/normalization/layer_normalization.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

LayerNormalization::LayerNormalization(LayerNormalizationOptions o)
    : Layer("LayerNormalization", o.name), o_(std::move(o)) {
  KCPP_CHECK(o_.epsilon > 0, ValueError, "LayerNormalization: epsilon must be positive, received {}", o_.epsilon);
}
void LayerNormalization::check_input(const PartialShape& s) const {
  if (s.size() < 2)
    throw input_error(
        fmt::format("expected min_ndim=2, found ndim={}. Full shape received: {}", s.size(), shape_to_string(s)));
  if (!s.back()) throw input_error("the normalized axis must be known, received shape " + shape_to_string(s));
}
void LayerNormalization::build(const PartialShape& s) {
  if (o_.scale) gamma_ = &add_weight("gamma", Shape{*s.back()}, "ones");
  if (o_.center) beta_ = &add_weight("beta", Shape{*s.back()}, "zeros");
}
Tensor LayerNormalization::call(const Tensor& x, bool training) {
  Tensor y = (x - ops::mean(x, {-1}, true)) * ops::rsqrt(ops::var(x, {-1}, true) + o_.epsilon);
  if (gamma_) y = y * gamma_->value();
  if (beta_) y = y + beta_->value();
  return y;
}

}  // namespace keras::layers
