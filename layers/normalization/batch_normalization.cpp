#include "layers/normalization/batch_normalization.h"

#include "core/autograd.h"
#include "core/check.h"
#include "core/ops.h"
#include "core/step_recording.h"
#include "distributed/strategy.h"

namespace keras::layers {

BatchNormalization::BatchNormalization(BatchNormalizationOptions options)
    : Layer("BatchNormalization", options.name), options_(std::move(options)) {
  KCPP_CHECK(options_.epsilon > 0, ValueError, "BatchNormalization: epsilon must be positive, received {}",
             options_.epsilon);
  if (options_.synchronized) strategy_ = distribute::current_strategy();
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
  const auto& o = options_;
  if (o.scale) gamma_ = &add_weight("gamma", c, o.gamma_initializer, true, o.gamma_regularizer, o.gamma_constraint);
  if (o.center) beta_ = &add_weight("beta", c, o.beta_initializer, true, o.beta_regularizer, o.beta_constraint);
  moving_mean_ = &add_weight("moving_mean", c, o.moving_mean_initializer, false);
  moving_variance_ = &add_weight("moving_variance", c, o.moving_variance_initializer, false);
  for (Variable* v : {gamma_, beta_, moving_mean_, moving_variance_})
    if (v) v->set_autocast(false);  // statistics and affine stay float32 under mixed precision, as in Keras
}

namespace {
// Statistics over every replica's batch: local sums and counts, summed across ranks (differentiably),
// as Keras 3 does with synchronized=True: mean = E[x], variance = E[x^2] - E[x]^2.
ops::BatchNormResult synchronized_batch_norm(distribute::Communicator& comm, const Tensor& x, const Tensor& gamma,
                                             const Tensor& beta, float epsilon) {
  const int64_t c = x.dim(-1);
  const Tensor rows = ops::reshape(x, {-1, c});
  const Tensor local = ops::concatenate({ops::sum(rows, {0}), ops::sum(rows * rows, {0}),
                                         ops::full({1}, static_cast<float>(rows.dim(0)), DType::float32, x.backend())},
                                        0);
  const Tensor total = distribute::all_reduce_sum(comm, local);
  const Tensor count = ops::slice(total, {2 * c}, {1});
  const Tensor mean = ops::slice(total, {0}, {c}) / count;
  const Tensor variance = ops::maximum(ops::slice(total, {c}, {c}) / count - mean * mean, ops::zeros_like(mean));
  ops::BatchNormResult r;
  r.y = (x - mean) * ops::rsqrt(variance + epsilon) * gamma + beta;
  r.mean = mean;
  r.variance = variance;
  return r;
}
}  // namespace

Tensor BatchNormalization::call(const Tensor& input, bool training) {
  // float16/bfloat16 inputs would overflow in the statistics: Keras computes in float32 and casts
  // back. The batch-norm ops do so themselves (natively where the backend can); the synchronized
  // statistics are composed here, so they get float32 data.
  const bool synchronized = training && trainable() && strategy_ && strategy_->communicator().name() != "single";
  const Tensor x = synchronized ? ops::cast(input, DType::float32) : input;
  return ops::cast(normalize(x, training), compute_dtype());
}

Tensor BatchNormalization::normalize(const Tensor& x, bool training) {
  Backend* be = x.backend();
  const Shape c = moving_mean_->shape();
  const Tensor gamma = gamma_ ? gamma_->value() : ops::ones(c, DType::float32, be);
  const Tensor beta = beta_ ? beta_->value() : ops::zeros(c, DType::float32, be);
  if (!training || !trainable())
    return ops::batch_norm_inference(x, gamma, beta, moving_mean_->value(), moving_variance_->value(),
                                     options_.epsilon);
  auto r = strategy_ && strategy_->communicator().name() != "single"
               ? synchronized_batch_norm(strategy_->communicator(), x, gamma, beta, options_.epsilon)
               : ops::batch_norm_training(x, gamma, beta, options_.epsilon);
  // Held by a training step until its labels were checked (a failed step leaves them as they were).
  detail::update_layer_state([this, mean = r.mean, variance = r.variance] {
    NoGradScope no_grad;
    const float m = options_.momentum;
    moving_mean_->assign(moving_mean_->value() * m + mean * (1.f - m));
    moving_variance_->assign(moving_variance_->value() * m + variance * (1.f - m));
  });
  return r.y;
}

FoldedBatchNorm BatchNormalization::inference_fold() const {
  if (!moving_mean_) return {};
  return {moving_mean_->value(), moving_variance_->value(), gamma_ ? gamma_->value() : Tensor(),
          beta_ ? beta_->value() : Tensor(), options_.epsilon};
}

Config BatchNormalization::get_config() const {
  const auto& o = options_;
  Config c = Layer::get_config();
  c["axis"] = -1;
  c["momentum"] = o.momentum;
  c["epsilon"] = o.epsilon;
  c["center"] = o.center;
  c["scale"] = o.scale;
  c["beta_initializer"] = o.beta_initializer.serialized();
  c["gamma_initializer"] = o.gamma_initializer.serialized();
  c["moving_mean_initializer"] = o.moving_mean_initializer.serialized();
  c["moving_variance_initializer"] = o.moving_variance_initializer.serialized();
  c["beta_regularizer"] = o.beta_regularizer.serialized();
  c["gamma_regularizer"] = o.gamma_regularizer.serialized();
  c["beta_constraint"] = o.beta_constraint.serialized();
  c["gamma_constraint"] = o.gamma_constraint.serialized();
  c["synchronized"] = o.synchronized;
  return c;
}

std::shared_ptr<Layer> BatchNormalization::from_config(const Config& config) {
  serialization::ConfigReader r(config, "BatchNormalization config");
  BatchNormalizationOptions o;
  o.name = r.name();
  // channels_last: the last axis, which Keras 2 files may also write as [3] for 4-d inputs.
  if (r.has("axis")) {
    const Config& axis = r.raw("axis");
    const bool last = (axis.is_number_integer() && axis.get<int64_t>() == -1) ||
                      (axis.is_array() && axis.size() == 1 && axis[0].is_number_integer() &&
                       (axis[0].get<int64_t>() == -1 || axis[0].get<int64_t>() == 3));
    const bool three = axis.is_number_integer() && axis.get<int64_t>() == 3;
    if (!last && !three)
      throw NotImplementedError(fmt::format(
          "BatchNormalization config: only the last axis (channels_last) is supported, received \"axis\": {}",
          axis.dump()));
  }
  o.momentum = static_cast<float>(r.number("momentum", 0.99));
  o.epsilon = static_cast<float>(r.number("epsilon", 1e-3));
  o.center = r.boolean("center", true);
  o.scale = r.boolean("scale", true);
  o.beta_initializer = r.initializer("beta_initializer", "zeros");
  o.gamma_initializer = r.initializer("gamma_initializer", "ones");
  o.moving_mean_initializer = r.initializer("moving_mean_initializer", "zeros");
  o.moving_variance_initializer = r.initializer("moving_variance_initializer", "ones");
  o.beta_regularizer = r.regularizer("beta_regularizer");
  o.gamma_regularizer = r.regularizer("gamma_regularizer");
  o.beta_constraint = r.constraint("beta_constraint");
  o.gamma_constraint = r.constraint("gamma_constraint");
  o.synchronized = r.boolean("synchronized", false);
  r.require("renorm", false);
  auto layer = std::make_shared<BatchNormalization>(std::move(o));
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
