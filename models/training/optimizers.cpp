#include "models/training/optimizers.h"

#include <cmath>

#include "core/autograd.h"
#include "core/check.h"
#include "core/ops.h"

namespace keras::optimizers {

Optimizer::Optimizer(std::string name, float learning_rate, CommonOptions common)
    : name_(std::move(name)), learning_rate_(learning_rate), common_(common) {
  KCPP_CHECK(learning_rate >= 0, ValueError, "{}: learning_rate must be >= 0, received {}", name_, learning_rate);
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

void Optimizer::apply_gradients(const std::vector<Tensor>& gradients, const std::vector<Variable*>& variables) {
  KCPP_CHECK(gradients.size() == variables.size(), ValueError,
             "{}: received {} gradients for {} variables", name_, gradients.size(), variables.size());
  NoGradScope no_grad;
  const std::vector<const Variable*> ids(variables.begin(), variables.end());
  if (!built_) {
    build(variables);
    built_for_ = ids;
    built_ = true;
  }
  KCPP_CHECK(ids == built_for_, ValueError,
             "{}: apply_gradients received a different list of variables than the one it was built for", name_);
  std::vector<Tensor> grads = gradients;
  if (common_.clipvalue)
    for (auto& g : grads) g = ops::clip(g, -*common_.clipvalue, *common_.clipvalue);
  if (common_.clipnorm)
    for (auto& g : grads) {
      const float norm = static_cast<float>(std::sqrt(ops::sum(ops::square(g)).item()));
      if (norm > *common_.clipnorm) g = g * (*common_.clipnorm / norm);
    }
  if (common_.global_clipnorm) {
    double total = 0;
    for (const auto& g : grads) total += ops::sum(ops::square(g)).item();
    const float norm = static_cast<float>(std::sqrt(total));
    if (norm > *common_.global_clipnorm)
      for (auto& g : grads) g = g * (*common_.global_clipnorm / norm);
  }
  ++iterations_;
  for (size_t i = 0; i < variables.size(); ++i) update(i, *variables[i], grads[i]);
}

SGD::SGD(SGDOptions o) : Optimizer("SGD", o.learning_rate, o.common), options_(o) {
  KCPP_CHECK(o.momentum >= 0 && o.momentum <= 1, ValueError, "SGD: momentum must be in [0, 1], received {}", o.momentum);
}
void SGD::build(const std::vector<Variable*>& vars) {
  if (options_.momentum > 0)
    for (Variable* v : vars) momentums_.push_back(&add_slot(*v, "momentum"));
}
void SGD::update(size_t i, Variable& var, const Tensor& g) {
  SGDAttrs a{.learning_rate = learning_rate(), .momentum = options_.momentum, .nesterov = options_.nesterov};
  ops::sgd_update(var, g, momentums_.empty() ? nullptr : momentums_[i], a);
}

Adam::Adam(AdamOptions o) : Optimizer("Adam", o.learning_rate, o.common), options_(o) {}
void Adam::build(const std::vector<Variable*>& vars) {
  // Keras' order: m0, v0, m1, v1, ... (then the vhat slots for amsgrad).
  for (Variable* v : vars) {
    m_.push_back(&add_slot(*v, "m"));
    v_.push_back(&add_slot(*v, "v"));
  }
  if (options_.amsgrad)
    for (Variable* v : vars) vhat_.push_back(&add_slot(*v, "vhat"));
}
void Adam::update(size_t i, Variable& var, const Tensor& g) {
  AdamAttrs a{.learning_rate = learning_rate(), .beta_1 = options_.beta_1, .beta_2 = options_.beta_2,
              .epsilon = options_.epsilon, .step = iterations(), .amsgrad = options_.amsgrad};
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
  const Tensor increment = g * ops::rsqrt(denominator + options_.epsilon) * learning_rate();
  if (options_.momentum > 0) {
    Variable& m = *momentums_[i];
    m.assign(m.value() * options_.momentum + increment);
    var.assign(var.value() - m.value());
  } else {
    var.assign(var.value() - increment);
  }
}

std::shared_ptr<Optimizer> get(const std::string& name) {
  if (name == "sgd" || name == "SGD") return std::make_shared<SGD>();
  if (name == "adam" || name == "Adam") return std::make_shared<Adam>();
  if (name == "rmsprop" || name == "RMSprop") return std::make_shared<RMSprop>();
  throw ValueError(fmt::format("unknown optimizer '{}': expected one of sgd, adam, rmsprop", name));
}

}  // namespace keras::optimizers
