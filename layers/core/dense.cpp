#include "layers/core/dense.h"

#include "core/check.h"
#include "core/ops.h"
#include "layers/activations.h"

namespace keras::layers {
Dense::Dense(int64_t units, DenseOptions options)
    : Layer("Dense", options.name), units_(units), options_(std::move(options)) {
  KCPP_CHECK(units > 0, ValueError, "Dense: expected a positive number of units, received {}", units);
  activations::check_name(options_.activation);
  set_activity_regularizer(options_.activity_regularizer);
  if (!options_.dtype.empty()) set_dtype_policy(options_.dtype);
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

Config Dense::get_config() const {
  Config c = Layer::get_config();
  c["units"] = units_;
  c["activation"] = options_.activation.empty() ? "linear" : options_.activation;
  c["use_bias"] = options_.use_bias;
  c["kernel_initializer"] = options_.kernel_initializer.serialized();
  c["bias_initializer"] = options_.bias_initializer.serialized();
  c["kernel_regularizer"] = options_.kernel_regularizer.serialized();
  c["bias_regularizer"] = options_.bias_regularizer.serialized();
  c["kernel_constraint"] = options_.kernel_constraint.serialized();
  c["bias_constraint"] = options_.bias_constraint.serialized();
  return c;
}

std::shared_ptr<Layer> Dense::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Dense config");
  DenseOptions o;
  o.name = r.name();
  const int64_t units = r.integer("units");
  o.activation = r.activation();
  o.use_bias = r.boolean("use_bias", true);
  o.kernel_initializer = r.initializer("kernel_initializer", "glorot_uniform");
  o.bias_initializer = r.initializer("bias_initializer", "zeros");
  o.kernel_regularizer = r.regularizer("kernel_regularizer");
  o.bias_regularizer = r.regularizer("bias_regularizer");
  o.kernel_constraint = r.constraint("kernel_constraint");
  o.bias_constraint = r.constraint("bias_constraint");
  r.require("lora_rank", nullptr);
  auto layer = std::make_shared<Dense>(units, std::move(o));
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
