#include "layers/core/dense.h"

#include "core/check.h"
#include "core/ops.h"
#include "layers/activations.h"

namespace keras::layers {
Dense::Dense(int64_t units, DenseOptions options)
    : Layer("Dense", options.name), units_(units), options_(std::move(options)) {
  KCPP_CHECK(units > 0, ValueError, "Dense: expected a positive number of units, received {}", units);
  activations::check_name(options_.activation);
}

void Dense::check_input(const PartialShape& s) const {
  if (s.size() < 2)
    throw input_error(
        fmt::format("expected min_ndim=2, found ndim={}. Full shape received: {}", s.size(), shape_to_string(s)));
  if (!s.back()) throw input_error(fmt::format("the last axis must be known, received shape {}", shape_to_string(s)));
  if (kernel_ && *s.back() != kernel_->shape()[0])
    throw input_error(fmt::format("expected axis -1 of input shape to have value {}, but received input with shape {}",
                                  kernel_->shape()[0], shape_to_string(s)));
}

void Dense::build(const PartialShape& s) {
  kernel_ = &add_weight("kernel", Shape{*s.back(), units_}, options_.kernel_initializer, true,
                        options_.kernel_regularizer, options_.kernel_constraint);
  if (options_.use_bias)
    bias_ = &add_weight("bias", Shape{units_}, options_.bias_initializer, true, options_.bias_regularizer,
                        options_.bias_constraint);
}

PartialShape Dense::compute_output_shape(const PartialShape& s) const {
  PartialShape out = s;
  out.back() = units_;
  return out;
}

Tensor Dense::call_logits(const Tensor& x, bool training) {
  return ops::linear(x, kernel_->value(), bias_ ? bias_->value() : Tensor());
}

Tensor Dense::call(const Tensor& x, bool training) {
  const UnaryOp fused = activations::fusable_op(options_.activation);
  Tensor y = ops::linear(x, kernel_->value(), bias_ ? bias_->value() : Tensor(), fused);
  return fused == UnaryOp::identity ? activations::apply(options_.activation, y) : y;
}

}  // namespace keras::layers
