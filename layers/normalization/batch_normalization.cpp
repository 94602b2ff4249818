#include "layers/normalization/batch_normalization.h"

#include "core/autograd.h"
#include "core/check.h"
#include "core/ops.h"
#include "layers/normalization/beta_gamma.h"
#include "core/step_recording.h"
#include "distributed/strategy.h"

namespace keras::layers {

BatchNormalization::BatchNormalization(BatchNormalizationOptions options)
    : Layer("BatchNormalization", options.name), options_(std::move(options)) {
  KCPP_CHECK(options_.epsilon > 0, ValueError, "BatchNormalization: epsilon must be positive, received {}",
             options_.epsilon);
  if (options_.synchronized) strategy_ = distribute::current_strategy();
}

size_t BatchNormalization::axis_for(size_t rank) const {
  const auto r = static_cast<int64_t>(rank), a = options_.axis;
  if (a < -r || a >= r)
    throw input_error(fmt::format("expected an axis within the input's rank {}, received axis {}", rank, a));
  return static_cast<size_t>(a < 0 ? a + r : a);
}

void BatchNormalization::check_input(const PartialShape& s) const {
  if (s.size() < 2)
    throw input_error(
        fmt::format("expected min_ndim=2, found ndim={}. Full shape received: {}", s.size(), shape_to_string(s)));
  const size_t a = axis_for(s.size());
  if (!s[a]) throw input_error("the normalized axis must be known, received shape " + shape_to_string(s));
  if (moving_mean_ && *s[a] != moving_mean_->shape()[0])
    throw input_error(fmt::format("expected axis {} of input shape to have value {}, but received input with shape {}",
                                  options_.axis, moving_mean_->shape()[0], shape_to_string(s)));
}

void BatchNormalization::build(const PartialShape& s) {
  const Shape c{*s[axis_for(s.size())]};
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
  const size_t a = axis_for(x.rank());
  if (a + 1 == x.rank()) return ops::cast(normalize(x, training), compute_dtype());
  // Another axis than the last (channels_first): normalized as the last one, moved there and back.
  std::vector<int64_t> to_last, back(x.rank());
  for (size_t i = 0; i < x.rank(); ++i)
    if (i != a) to_last.push_back(static_cast<int64_t>(i));
  to_last.push_back(static_cast<int64_t>(a));
  for (size_t i = 0; i < x.rank(); ++i) back[static_cast<size_t>(to_last[i])] = static_cast<int64_t>(i);
  return ops::cast(ops::transpose(normalize(ops::transpose(x, to_last), training), back), compute_dtype());
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
  keras::detail::update_layer_state([this, mean = r.mean, variance = r.variance] {
    NoGradScope no_grad;
    const float m = options_.momentum;
    moving_mean_->assign(moving_mean_->value() * m + mean * (1.f - m));
    moving_variance_->assign(moving_variance_->value() * m + variance * (1.f - m));
  });
  return r.y;
}

FoldedBatchNorm BatchNormalization::inference_fold() const {
  if (!moving_mean_ || (options_.axis != -1 && options_.axis != 3)) return {};  // a Conv2D output's channels
  return {moving_mean_->value(), moving_variance_->value(), gamma_ ? gamma_->value() : Tensor(),
          beta_ ? beta_->value() : Tensor(), options_.epsilon};
}

Config BatchNormalization::get_config() const {
  const auto& o = options_;
  Config c = Layer::get_config();
  c["axis"] = o.axis;
  c["momentum"] = o.momentum;
  c["epsilon"] = o.epsilon;
  detail::write_beta_gamma(c, o);
  c["moving_mean_initializer"] = o.moving_mean_initializer.serialized();
  c["moving_variance_initializer"] = o.moving_variance_initializer.serialized();
  c["synchronized"] = o.synchronized;
  return c;
}

std::shared_ptr<Layer> BatchNormalization::from_config(const Config& config) {
  serialization::ConfigReader r(config, "BatchNormalization config");
  BatchNormalizationOptions o;
  o.name = r.name();
  // An int, or a list of one (Keras 2 files write [3] for 4-d inputs).
  if (r.has("axis")) {
    if (r.raw("axis").is_array()) {
      const auto axes = r.int_list("axis");
      KCPP_CHECK(axes.size() == 1, NotImplementedError,
                 "BatchNormalization config: expected one axis, received \"axis\": {}", r.raw("axis").dump());
      o.axis = axes[0];
    } else {
      o.axis = r.integer("axis");
    }
  }
  o.momentum = static_cast<float>(r.number("momentum", 0.99));
  o.epsilon = static_cast<float>(r.number("epsilon", 1e-3));
  detail::read_beta_gamma(r, o);
  o.moving_mean_initializer = r.initializer("moving_mean_initializer", "zeros");
  o.moving_variance_initializer = r.initializer("moving_variance_initializer", "ones");
  o.synchronized = r.boolean("synchronized", false);
  r.require("renorm", false);
  auto layer = std::make_shared<BatchNormalization>(std::move(o));
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
