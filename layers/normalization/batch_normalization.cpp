#include "layers/normalization/batch_normalization.h"

#include "core/autograd.h"
#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

BatchNormalization::BatchNormalization(BatchNormalizationOptions options)
    : Layer("BatchNormalization", options.name), options_(std::move(options)) {
  KCPP_CHECK(options_.epsilon > 0, ValueError, "BatchNormalization: epsilon must be positive, received {}",
             options_.epsilon);
}

void BatchNormalization::check_input(const PartialShape& s) const {
  if (s.size() < 2)
    throw input_error(
        fmt::format("expected min_ndim=2, found ndim={}. Full shape received: {}", s.size(), shape_to_string(s)));
  if (!s.back()) throw input_error("the normalized axis must be known, received shape " + shape_to_string(s));
  if (moving_mean_ && *s.back() != moving_mean_->shape()[0])
    throw input_error(fmt::format("expected axis -1 of input shape to have value {}, but received input with shape {}",
                                  moving_mean_->shape()[0], shape_to_string(s)));
}

void BatchNormalization::build(const PartialShape& s) {
  const Shape c{*s.back()};
  if (options_.scale) gamma_ = &add_weight("gamma", c, "ones");
  if (options_.center) beta_ = &add_weight("beta", c, "zeros");
  moving_mean_ = &add_weight("moving_mean", c, "zeros", false);
  moving_variance_ = &add_weight("moving_variance", c, "ones", false);
}

Tensor BatchNormalization::call(const Tensor& x, bool training) {
  Backend* be = x.backend();
  const Shape c = moving_mean_->shape();
  const Tensor gamma = gamma_ ? gamma_->value() : ops::ones(c, DType::float32, be);
  const Tensor beta = beta_ ? beta_->value() : ops::zeros(c, DType::float32, be);
  if (!training || !trainable())
    return ops::batch_norm_inference(x, gamma, beta, moving_mean_->value(), moving_variance_->value(),
                                     options_.epsilon);
  auto r = ops::batch_norm_training(x, gamma, beta, options_.epsilon);
  {
    NoGradScope no_grad;
    const float m = options_.momentum;
    moving_mean_->assign(moving_mean_->value() * m + r.mean * (1.f - m));
    moving_variance_->assign(moving_variance_->value() * m + r.variance * (1.f - m));
  }
  return r.y;
}

}  // namespace keras::layers
