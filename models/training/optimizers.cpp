#include "models/training/optimizers.h"

#include <cmath>

#include "core/autograd.h"
#include "core/check.h"
#include "core/ops.h"
#include "core/step_recording.h"

namespace keras::optimizers {

namespace schedules {
LearningRateSchedule::~LearningRateSchedule() = default;

ExponentialDecay::ExponentialDecay(double initial, double decay_steps, double decay_rate, bool staircase)
    : initial_(initial), steps_(decay_steps), rate_(decay_rate), staircase_(staircase) {
  KCPP_CHECK(decay_steps > 0, ValueError, "ExponentialDecay: decay_steps must be positive, received {}", decay_steps);
}
double ExponentialDecay::operator()(int64_t step) const {
  double p = static_cast<double>(step) / steps_;
  if (staircase_) p = std::floor(p);
  return initial_ * std::pow(rate_, p);
}

PiecewiseConstantDecay::PiecewiseConstantDecay(std::vector<int64_t> boundaries, std::vector<double> values)
    : boundaries_(std::move(boundaries)), values_(std::move(values)) {
  KCPP_CHECK(values_.size() == boundaries_.size() + 1, ValueError,
             "PiecewiseConstantDecay: expected one more value than boundaries, received {} boundaries and {} values",
             boundaries_.size(), values_.size());
}
double PiecewiseConstantDecay::operator()(int64_t step) const {
  for (size_t i = 0; i < boundaries_.size(); ++i)
    if (step <= boundaries_[i]) return values_[i];
  return values_.back();
}

CosineDecay::CosineDecay(double initial, double decay_steps, double alpha, std::optional<double> warmup_target,
                         double warmup_steps)
    : initial_(initial), steps_(decay_steps), alpha_(alpha), target_(warmup_target), warmup_(warmup_steps) {
  KCPP_CHECK(decay_steps > 0, ValueError, "CosineDecay: decay_steps must be positive, received {}", decay_steps);
}
double CosineDecay::operator()(int64_t step_in) const {
  const double step = static_cast<double>(step_in);
  const double peak = target_.value_or(initial_);
  if (target_ && step < warmup_) return initial_ + (peak - initial_) * step / warmup_;  // linear warmup
  const double fraction = std::min(std::max(step - (target_ ? warmup_ : 0.0), 0.0), steps_) / steps_;
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * fraction));
  return peak * ((1.0 - alpha_) * cosine + alpha_);
}

InverseTimeDecay::InverseTimeDecay(double initial, double decay_steps, double decay_rate, bool staircase)
    : initial_(initial), steps_(decay_steps), rate_(decay_rate), staircase_(staircase) {
  KCPP_CHECK(decay_steps > 0, ValueError, "InverseTimeDecay: decay_steps must be positive, received {}", decay_steps);
}
double InverseTimeDecay::operator()(int64_t step) const {
  double p = static_cast<double>(step) / steps_;
  if (staircase_) p = std::floor(p);
  return initial_ / (1.0 + rate_ * p);
}
}  // namespace schedules

Optimizer::Optimizer(std::string name, LearningRate learning_rate, CommonOptions common)
    : name_(std::move(name)),
      learning_rate_(learning_rate.value()),
      schedule_(learning_rate.schedule()),
      common_(common) {
  KCPP_CHECK(schedule_ || learning_rate_ >= 0, ValueError, "{}: learning_rate must be >= 0, received {}", name_,
             learning_rate_);
}

float Optimizer::learning_rate() const {
  return schedule_ ? static_cast<float>((*schedule_)(iterations_)) : learning_rate_;
}

void Optimizer::set_learning_rate(float lr) {
  schedule_.reset();
  learning_rate_ = lr;
}
Optimizer::~Optimizer() = default;

Variable& Optimizer::add_slot(const Variable& like, const std::string& slot_name) {
  slots_.push_back(std::make_unique<Variable>(ops::zeros_like(like.value()), like.name() + "/" + slot_name, false));
  return *slots_.back();
}

std::vector<Variable*> Optimizer::variables() {
  std::vector<Variable*> out;
  for (auto& s : slots_) out.push_back(s.get());
  return out;
}

void Optimizer::build_for(const std::vector<Variable*>& variables) {
  NoGradScope no_grad;
  const std::vector<const Variable*> ids(variables.begin(), variables.end());
  if (!built_) {
    build(variables);
    built_for_ = ids;
    built_ = true;
  }
  if (on_device_.empty() && !variables.empty()) {
    Backend* device = variables[0]->value().backend();
    for (size_t i = 0; i < 2 + step_values().size(); ++i)
      on_device_.push_back(ops::zeros(Shape{}, DType::float32, device));
  }
  KCPP_CHECK(ids == built_for_, ValueError,
             "{}: apply_gradients received a different list of variables than the one it was built for", name_);
}

void Optimizer::apply_gradients(const std::vector<Tensor>& gradients, const std::vector<Variable*>& variables) {
  KCPP_CHECK(gradients.size() == variables.size(), ValueError, "{}: received {} gradients for {} variables", name_,
             gradients.size(), variables.size());
  NoGradScope no_grad;
  build_for(variables);
  // Clipping as Keras does it, on the device: g * c / max(norm, c) leaves g as it is below c.
  std::vector<Tensor> grads = gradients;
  if (common_.clipvalue)
    for (auto& g : grads) g = ops::clip(g, -*common_.clipvalue, *common_.clipvalue);
  const auto clip_to = [](const Tensor& squares, float limit, Backend* device) {
    const Tensor c = ops::full({}, limit, DType::float32, device);
    return c / ops::maximum(ops::sqrt(squares), c);
  };
  if (common_.clipnorm)
    for (auto& g : grads) g = g * clip_to(ops::sum(ops::square(g)), *common_.clipnorm, g.backend());
  if (common_.global_clipnorm && !grads.empty()) {
    Tensor total;
    for (const auto& g : grads) total = total.defined() ? total + ops::sum(ops::square(g)) : ops::sum(ops::square(g));
    const Tensor factor = clip_to(total, *common_.global_clipnorm, total.backend());
    for (auto& g : grads) g = g * factor;
  }
  if (detail::recording_step()) {  // a replay that fails its checks takes the step back on the host too
    detail::each_step([this] {
      step_start_ = {iterations_, host_extra()};
      prepare_step();
    });
    detail::on_failed_step([this] { take_back_recorded_step(); });
  } else {
    prepare_step();
  }
  if (common_.weight_decay && *common_.weight_decay != 0.f)
    for (Variable* v : variables) v->assign(v->value() - v->value() * on_device_.at(1));
  for (size_t i = 0; i < variables.size(); ++i) update(i, *variables[i], grads[i]);
}

void Optimizer::prepare_step() {
  step_lr_ = learning_rate();  // a schedule's value at the step being taken
  ++iterations_;
  before_updates();
  std::vector<double> values{step_lr_, common_.weight_decay ? *common_.weight_decay * step_lr_ : 0.0};
  for (double v : step_values()) values.push_back(v);
  for (size_t i = 0; i < on_device_.size() && i < values.size(); ++i)
    on_device_[i].backend()->fill(on_device_[i], static_cast<float>(values[i]));
}

namespace {
// A float32 scalar on the device: 0 where every gradient is finite, NaN otherwise (g * 0 is 0 for
// finite g, NaN for inf or NaN); undefined without gradients.
Tensor nonfinite_probe(const std::vector<Tensor>& gradients) {
  Tensor probe;
  for (const Tensor& g : gradients) {
    if (!g.defined()) continue;
    const Tensor z = ops::sum(ops::cast(g, DType::float32) * 0.f);
    probe = probe.defined() ? probe + z : z;
  }
  return probe;
}
}  // namespace

LossScaleOptimizer::LossScaleOptimizer(std::shared_ptr<Optimizer> inner, LossScaleOptions options)
    : Optimizer("LossScaleOptimizer", 0.f, {}), inner_(std::move(inner)), options_(std::move(options)),
      scale_(options_.initial_scale) {
  KCPP_CHECK(inner_ != nullptr, ValueError, "LossScaleOptimizer: expected an inner optimizer, received none");
  KCPP_CHECK(dynamic_cast<LossScaleOptimizer*>(inner_.get()) == nullptr, ValueError,
             "LossScaleOptimizer: the inner optimizer is already a LossScaleOptimizer");
  KCPP_CHECK(options_.initial_scale > 0 && std::isfinite(options_.initial_scale), ValueError,
             "LossScaleOptimizer: expected a positive finite initial_scale, received {}", options_.initial_scale);
  KCPP_CHECK(options_.dynamic_growth_steps >= 1, ValueError,
             "LossScaleOptimizer: expected dynamic_growth_steps >= 1, received {}", options_.dynamic_growth_steps);
}

void LossScaleOptimizer::set_scale_state(float scale, int64_t step_counter) {
  KCPP_CHECK(scale > 0 && std::isfinite(scale) && step_counter >= 0, ValueError,
             "LossScaleOptimizer: expected a positive finite scale and a counter >= 0, received {} and {}", scale,
             step_counter);
  scale_ = scale;
  step_counter_ = step_counter;
}

void LossScaleOptimizer::apply_gradients(const std::vector<Tensor>& gradients, const std::vector<Variable*>& variables) {
  KCPP_CHECK(gradients.size() == variables.size(), ValueError, "{}: received {} gradients for {} variables",
             options_.name, gradients.size(), variables.size());
  NoGradScope no_grad;
  build_for(variables);
  if (detail::recording_step()) {
    apply_recorded(gradients, variables);
    return;
  }
  const Tensor probe = nonfinite_probe(gradients);  // one read of the host tells whether all are finite
  const bool finite = !probe.defined() || std::isfinite(probe.item());
  if (finite) {
    std::vector<Tensor> unscaled;
    unscaled.reserve(gradients.size());
    for (const Tensor& g : gradients) unscaled.push_back(g.defined() ? g * (1.f / scale_) : g);
    inner_->apply_gradients(unscaled, variables);
  }
  count_step(finite);
}

void LossScaleOptimizer::count_step(bool finite) {
  if (!finite) {
    step_counter_ = 0;
    scale_ /= 2.f;
  } else if (step_counter_ == options_.dynamic_growth_steps - 1) {
    step_counter_ = 0;
    scale_ *= 2.f;
  } else {
    ++step_counter_;
  }
}

void LossScaleOptimizer::build_for(const std::vector<Variable*>& variables) {
  inner_->build_for(variables);
  // Made here, in a step run op by op: made while recording, their zero fill would be recorded too.
  if (!scale_on_device_.defined() && !variables.empty()) {
    scale_on_device_ = ops::zeros(Shape{}, DType::float32, variables[0]->value().backend());
    inverse_on_device_ = ops::zeros(Shape{}, DType::float32, variables[0]->value().backend());
  }
}

Tensor LossScaleOptimizer::scale_loss(const Tensor& loss) {
  if (!detail::recording_step()) return loss * scale_;
  KCPP_CHECK(scale_on_device_.defined(), ValueError,
             "{}: a step is being recorded before the optimizer was built (the first step of a signature runs op "
             "by op)",
             options_.name);
  detail::each_step([this] {
    scale_on_device_.backend()->fill(scale_on_device_, scale_);
    inverse_on_device_.backend()->fill(inverse_on_device_, 1.f / scale_);
  });
  return loss * ops::cast(scale_on_device_, loss.dtype());
}

void LossScaleOptimizer::apply_recorded(const std::vector<Tensor>& gradients, const std::vector<Variable*>& variables) {
  const Tensor probe = nonfinite_probe(gradients);
  if (!probe.defined()) {  // no gradients: nothing can be non-finite
    inner_->apply_gradients(gradients, variables);
    detail::after_each_step([this] { count_step(true); });
    return;
  }
  const Tensor finite = ops::equal(probe, probe);
  // The update runs whatever the gradients; where they were not finite it is undone.
  std::vector<Variable*> touched = variables;
  for (Variable* slot : inner_->variables()) touched.push_back(slot);
  std::vector<Tensor> before;
  before.reserve(touched.size());
  for (Variable* v : touched) before.push_back(ops::copy(v->stored()));
  std::vector<Tensor> unscaled;
  unscaled.reserve(gradients.size());
  for (const Tensor& g : gradients) unscaled.push_back(g.defined() ? g * ops::cast(inverse_on_device_, g.dtype()) : g);
  inner_->apply_gradients(unscaled, variables);
  for (size_t i = 0; i < touched.size(); ++i) touched[i]->assign(ops::where(finite, touched[i]->stored(), before[i]));
  detail::after_each_step([this, finite] {
    const bool ok = ops::cast(finite, DType::float32).item() != 0.f;
    if (!ok) inner_->take_back_recorded_step();
    count_step(ok);
  });
}

SGD::SGD(SGDOptions o) : Optimizer("SGD", o.learning_rate, o.common), options_(o) {
  KCPP_CHECK(o.momentum >= 0 && o.momentum <= 1, ValueError, "SGD: momentum must be in [0, 1], received {}",
             o.momentum);
}
void SGD::build(const std::vector<Variable*>& vars) {
  if (options_.momentum > 0)
    for (Variable* v : vars) momentums_.push_back(&add_slot(*v, "momentum"));
}
void SGD::update(size_t i, Variable& var, const Tensor& g) {
  SGDAttrs a{.momentum = options_.momentum, .nesterov = options_.nesterov};
  a.learning_rate_on_device = learning_rate_on_device();
  ops::sgd_update(var, g, momentums_.empty() ? nullptr : momentums_[i], a);
}

Adam::Adam(AdamOptions o) : Adam("Adam", std::move(o)) {}
Adam::Adam(std::string class_name, AdamOptions o)
    : Optimizer(std::move(class_name), o.learning_rate, o.common), options_(o) {}
void Adam::build(const std::vector<Variable*>& vars) {
  // Keras' order: m0, v0, m1, v1, ... (then the vhat slots for amsgrad).
  for (Variable* v : vars) {
    m_.push_back(&add_slot(*v, "m"));
    v_.push_back(&add_slot(*v, "v"));
  }
  if (options_.amsgrad)
    for (Variable* v : vars) vhat_.push_back(&add_slot(*v, "vhat"));
}
std::vector<double> Adam::step_values() const {
  // The step size lr * sqrt(1 - beta_2^t) / (1 - beta_1^t), in double as the backends compute it.
  const double t = static_cast<double>(std::max<int64_t>(iterations(), 1));
  return {step_learning_rate() * std::sqrt(1.0 - std::pow(options_.beta_2, t)) / (1.0 - std::pow(options_.beta_1, t))};
}
void Adam::update(size_t i, Variable& var, const Tensor& g) {
  AdamAttrs a{.beta_1 = options_.beta_1, .beta_2 = options_.beta_2, .epsilon = options_.epsilon,
              .amsgrad = options_.amsgrad};
  a.step_size_on_device = step_value(0);
  ops::adam_update(var, g, *m_[i], *v_[i], vhat_.empty() ? nullptr : vhat_[i], a);
}

RMSprop::RMSprop(RMSpropOptions o) : Optimizer("RMSprop", o.learning_rate, o.common), options_(o) {}
void RMSprop::build(const std::vector<Variable*>& vars) {
  for (Variable* v : vars) velocities_.push_back(&add_slot(*v, "velocity"));
  if (options_.momentum > 0)
    for (Variable* v : vars) momentums_.push_back(&add_slot(*v, "momentum"));
  if (options_.centered)
    for (Variable* v : vars) average_gradients_.push_back(&add_slot(*v, "average_gradient"));
}
void RMSprop::update(size_t i, Variable& var, const Tensor& g) {
  const float rho = options_.rho;
  Variable& vel = *velocities_[i];
  vel.assign(vel.value() * rho + ops::square(g) * (1.f - rho));
  Tensor denominator = vel.value();
  if (options_.centered) {
    Variable& avg = *average_gradients_[i];
    avg.assign(avg.value() * rho + g * (1.f - rho));
    denominator = denominator - ops::square(avg.value());
  }
  const Tensor increment = g * ops::rsqrt(denominator + options_.epsilon) * learning_rate_on_device();
  if (options_.momentum > 0) {
    Variable& m = *momentums_[i];
    m.assign(m.value() * options_.momentum + increment);
    var.assign(var.value() - m.value());
  } else {
    var.assign(var.value() - increment);
  }
}

AdamW::AdamW(AdamWOptions o)
    : Adam("AdamW", {.learning_rate = o.learning_rate,
            .beta_1 = o.beta_1,
            .beta_2 = o.beta_2,
            .epsilon = o.epsilon,
            .amsgrad = o.amsgrad,
            .common = [&] {
              CommonOptions c = o.common;
              c.weight_decay = o.weight_decay;
              return c;
            }()}) {}

Adagrad::Adagrad(AdagradOptions o) : Optimizer("Adagrad", o.learning_rate, o.common), options_(o) {}
void Adagrad::build(const std::vector<Variable*>& vars) {
  for (Variable* v : vars) {
    accumulators_.push_back(&add_slot(*v, "accumulator"));
    accumulators_.back()->assign(ops::full_like(v->value(), options_.initial_accumulator_value));
  }
}
void Adagrad::update(size_t i, Variable& var, const Tensor& g) {
  Variable& acc = *accumulators_[i];
  acc.assign(acc.value() + ops::square(g));
  var.assign(var.value() - g * ops::rsqrt(acc.value() + options_.epsilon) * learning_rate_on_device());
}

Adadelta::Adadelta(AdadeltaOptions o) : Optimizer("Adadelta", o.learning_rate, o.common), options_(o) {}
void Adadelta::build(const std::vector<Variable*>& vars) {
  // Interleaved per variable, Keras' order of optimizer variables (it matters in saved files).
  for (Variable* v : vars) {
    accumulated_grads_.push_back(&add_slot(*v, "accumulated_grad"));
    accumulated_deltas_.push_back(&add_slot(*v, "accumulated_delta_var"));
  }
}
void Adadelta::update(size_t i, Variable& var, const Tensor& g) {
  const float rho = options_.rho, eps = options_.epsilon;
  Variable &ag = *accumulated_grads_[i], &ad = *accumulated_deltas_[i];
  ag.assign(ag.value() * rho + ops::square(g) * (1.f - rho));
  const Tensor delta = ops::negative(ops::sqrt(ad.value() + eps) * ops::rsqrt(ag.value() + eps) * g);
  ad.assign(ad.value() * rho + ops::square(delta) * (1.f - rho));
  var.assign(var.value() + delta * learning_rate_on_device());
}

Adamax::Adamax(AdamaxOptions o) : Optimizer("Adamax", o.learning_rate, o.common), options_(o) {}
void Adamax::build(const std::vector<Variable*>& vars) {
  for (Variable* v : vars) {  // interleaved, as Keras
    m_.push_back(&add_slot(*v, "momentum"));
    u_.push_back(&add_slot(*v, "norm"));
  }
}
std::vector<double> Adamax::step_values() const {
  const double t = static_cast<double>(std::max<int64_t>(iterations(), 1));
  return {step_learning_rate() / (1.0 - std::pow(options_.beta_1, t))};
}
void Adamax::update(size_t i, Variable& var, const Tensor& g) {
  Variable &m = *m_[i], &u = *u_[i];
  m.assign(m.value() + (g - m.value()) * (1.f - options_.beta_1));
  u.assign(ops::maximum(u.value() * options_.beta_2, ops::abs(g)));
  var.assign(var.value() - m.value() * step_value(0) / (u.value() + options_.epsilon));
}

Nadam::Nadam(NadamOptions o) : Optimizer("Nadam", o.learning_rate, o.common), options_(o) {}
void Nadam::build(const std::vector<Variable*>& vars) {
  for (Variable* v : vars) {  // interleaved, as Keras
    m_.push_back(&add_slot(*v, "momentum"));
    v_.push_back(&add_slot(*v, "velocity"));
  }
}
void Nadam::before_updates() {
  // Keras' momentum schedule: the running product of u_t, advanced once per step.
  u_product_ *= options_.beta_1 * (1.0 - 0.5 * std::pow(0.96, static_cast<double>(iterations())));
}
std::vector<double> Nadam::step_values() const {
  // {m's factor, g's factor, v's factor} of Keras' update at step t (u_product_ already includes u_t).
  const double t = static_cast<double>(std::max<int64_t>(iterations(), 1)), b1 = options_.beta_1,
               b2 = options_.beta_2;
  const double u_t = b1 * (1.0 - 0.5 * std::pow(0.96, t));
  const double u_t_1 = b1 * (1.0 - 0.5 * std::pow(0.96, t + 1));
  const double u_product_t_1 = u_product_ * u_t_1;
  return {u_t_1 / (1.0 - u_product_t_1), (1.0 - u_t) / (1.0 - u_product_), 1.0 / (1.0 - std::pow(b2, t))};
}
void Nadam::update(size_t i, Variable& var, const Tensor& g) {
  Variable &m = *m_[i], &v = *v_[i];
  m.assign(m.value() + (g - m.value()) * (1.f - options_.beta_1));
  v.assign(v.value() + (ops::square(g) - v.value()) * (1.f - options_.beta_2));
  const Tensor m_hat = m.value() * step_value(0) + g * step_value(1);
  const Tensor v_hat = v.value() * step_value(2);
  var.assign(var.value() - m_hat * learning_rate_on_device() / (ops::sqrt(v_hat) + options_.epsilon));
}

std::shared_ptr<Optimizer> get(const std::string& name) {
  if (name == "sgd" || name == "SGD") return std::make_shared<SGD>();
  if (name == "adam" || name == "Adam") return std::make_shared<Adam>();
  if (name == "adamw" || name == "AdamW") return std::make_shared<AdamW>();
  if (name == "rmsprop" || name == "RMSprop") return std::make_shared<RMSprop>();
  if (name == "adagrad" || name == "Adagrad") return std::make_shared<Adagrad>();
  if (name == "adadelta" || name == "Adadelta") return std::make_shared<Adadelta>();
  if (name == "adamax" || name == "Adamax") return std::make_shared<Adamax>();
  if (name == "nadam" || name == "Nadam") return std::make_shared<Nadam>();
  throw ValueError(fmt::format(
      "unknown optimizer '{}': expected one of sgd, adam, adamw, rmsprop, adagrad, adadelta, adamax, nadam", name));
}

}  // namespace keras::optimizers
