#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../../core/export.h"
#include "../../core/tensor.h"
#include "../../core/variable.h"
#include "../../layers/serialization.h"

namespace keras::optimizers {

namespace schedules {
/// A learning rate as a function of the optimizer's step (its iterations before the update).
class KERASCPP_API LearningRateSchedule {
 public:
  virtual ~LearningRateSchedule();
  virtual double operator()(int64_t step) const = 0;
  /// Keras' serialized form ({"module": "keras.optimizers.schedules", "class_name", "config", ...}).
  virtual Config serialized() const = 0;
};
/// initial * rate^(step / decay_steps) (the exponent floored when staircase).
class KERASCPP_API ExponentialDecay : public LearningRateSchedule {
 public:
  ExponentialDecay(double initial_learning_rate, double decay_steps, double decay_rate, bool staircase = false);
  double operator()(int64_t step) const override;
  Config serialized() const override;

 private:
  double initial_, steps_, rate_;
  bool staircase_;
};
/// values[i] while step <= boundaries[i], the last value after the last boundary.
class KERASCPP_API PiecewiseConstantDecay : public LearningRateSchedule {
 public:
  PiecewiseConstantDecay(std::vector<int64_t> boundaries, std::vector<double> values);
  double operator()(int64_t step) const override;
  Config serialized() const override;

 private:
  std::vector<int64_t> boundaries_;
  std::vector<double> values_;
};
/// Cosine decay to alpha * initial over decay_steps, after an optional linear warmup to warmup_target.
class KERASCPP_API CosineDecay : public LearningRateSchedule {
 public:
  CosineDecay(double initial_learning_rate, double decay_steps, double alpha = 0.0,
              std::optional<double> warmup_target = std::nullopt, double warmup_steps = 0);
  double operator()(int64_t step) const override;
  Config serialized() const override;

 private:
  double initial_, steps_, alpha_;
  std::optional<double> target_;
  double warmup_;
};
/// initial / (1 + rate * step / decay_steps) (the ratio floored when staircase).
class KERASCPP_API InverseTimeDecay : public LearningRateSchedule {
 public:
  InverseTimeDecay(double initial_learning_rate, double decay_steps, double decay_rate, bool staircase = false);
  double operator()(int64_t step) const override;
  Config serialized() const override;

 private:
  double initial_, steps_, rate_;
  bool staircase_;
};
}  // namespace schedules

/// A fixed learning rate or a schedule: `.learning_rate = 1e-3f` or
/// `.learning_rate = schedules::ExponentialDecay(1e-2, 1000, 0.9)`.
class KERASCPP_API LearningRate {
 public:
  LearningRate(float value) : value_(value) {}                       // NOLINT
  LearningRate(double value) : value_(static_cast<float>(value)) {}  // NOLINT
  template <typename S,
            typename = std::enable_if_t<std::is_base_of_v<schedules::LearningRateSchedule, std::decay_t<S>>>>
  LearningRate(S schedule) : schedule_(std::make_shared<S>(std::move(schedule))) {}  // NOLINT
  const std::shared_ptr<schedules::LearningRateSchedule>& schedule() const { return schedule_; }
  float value() const { return value_; }

 private:
  float value_ = 0.f;
  std::shared_ptr<schedules::LearningRateSchedule> schedule_;
};

/// Options every Keras optimizer takes.
struct CommonOptions {
  std::optional<float> clipnorm;         // clip each gradient to this L2 norm
  std::optional<float> clipvalue;        // clip each gradient element to [-v, v]
  std::optional<float> global_clipnorm;  // clip all gradients together to this global norm
  std::optional<float> weight_decay;     // w -= w * weight_decay * lr before each update
};

/// Applies gradients to variables with Keras' update rules; slot variables are created on the
/// first call, one set per variable.
class KERASCPP_API Optimizer {
 public:
  Optimizer(std::string name, LearningRate learning_rate, CommonOptions common);
  virtual ~Optimizer();
  Optimizer(Optimizer&&) noexcept = default;
  Optimizer& operator=(Optimizer&&) noexcept = default;
  /// One step: clips, then updates every variable in place; throws ValueError when the lists differ.
  virtual void apply_gradients(const std::vector<Tensor>& gradients, const std::vector<Variable*>& variables);
  virtual int64_t iterations() const { return iterations_; }
  /// The rate of the coming step (a schedule's value at iterations()).
  virtual float learning_rate() const;
  /// Whether a schedule computes the rate (Keras then keeps no learning_rate variable).
  virtual bool has_schedule() const { return schedule_ != nullptr; }
  /// Replaces the rate (and any schedule) with a fixed one, as callbacks do.
  virtual void set_learning_rate(float lr);
  const std::string& name() const { return name_; }
  /// The factor the training step multiplies the loss by before differentiating (1 except under
  /// a LossScaleOptimizer); apply_gradients then receives gradients scaled by it.
  virtual float loss_scale() const { return 1.f; }
  /// The loss times loss_scale(), as the training step differentiates it (in a recorded step the
  /// factor is read from the device, so each replay uses the scale of its own step).
  virtual Tensor scale_loss(const Tensor& loss) { return loss; }
  /// Takes back, on the host, the step a replay of a recorded step just took: the step count and
  /// state such as Nadam's momentum product return to where the step started. For replays whose
  /// update did not happen on the device (a failed id or label check, a loss-scaled step whose
  /// gradients were not finite).
  void take_back_recorded_step() {
    iterations_ = step_start_.iterations;
    set_host_extra(step_start_.extra);
  }
  /// Slot variables (Keras' optimizer variables after iteration and learning rate).
  virtual std::vector<Variable*> variables();
  /// Keras' optimizer config (name, learning_rate, clipping, weight_decay, then the optimizer's own keys).
  virtual Config get_config() const;
  /// {"module": "keras.optimizers", "class_name": "Adam", "config": get_config(), ...}.
  Config serialized() const;
  /// State kept outside the slots, saved after them (Nadam's momentum product), as float32 scalars.
  virtual std::vector<float> extra_state() const { return {}; }
  virtual void set_extra_state(const std::vector<float>& values) {}
  /// Restores the step count (loading a saved optimizer state).
  virtual void set_iterations(int64_t iterations) { iterations_ = iterations; }
  /// Creates the slot variables for `variables` now (before the first step), so a saved state can be loaded.
  virtual void build_for(const std::vector<Variable*>& variables);
  virtual bool built() const { return built_; }

 protected:
  virtual void build(const std::vector<Variable*>& variables) = 0;
  /// Updates one variable with device work only: the step's numbers come from step_value() and
  /// learning_rate_on_device(), so a recorded step replays correctly.
  virtual void update(size_t index, Variable& variable, const Tensor& gradient) = 0;
  /// Once per step, on the host, before step_values() (Nadam's momentum product).
  virtual void before_updates() {}
  /// The host state before_updates() changes, exactly, for take_back_recorded_step().
  virtual std::vector<double> host_extra() const { return {}; }
  virtual void set_host_extra(const std::vector<double>&) {}
  /// The host-computed numbers of the step being applied that update() reads (bias corrections,
  /// step sizes), in an order of the optimizer's choosing; iterations() has already advanced.
  virtual std::vector<double> step_values() const { return {}; }
  Variable& add_slot(const Variable& like, const std::string& slot_name);
  /// The rate of the step being applied (iterations() has already advanced), on the host.
  float step_learning_rate() const { return step_lr_; }
  /// That rate, and step_values()[i], as float32 scalars on the variables' device, written before
  /// each step's updates run.
  const Tensor& learning_rate_on_device() const { return on_device_.at(0); }
  const Tensor& step_value(size_t i) const { return on_device_.at(2 + i); }

 private:
  /// The host part of a step: advances iterations, computes the step's numbers and fills them into
  /// on_device_. Kept for each replay when the step is being recorded (core/step_recording.h).
  void prepare_step();
  std::string name_;
  float learning_rate_;
  std::shared_ptr<schedules::LearningRateSchedule> schedule_;
  CommonOptions common_;
  int64_t iterations_ = 0;
  float step_lr_ = 0.f;
  struct HostStepState {  // what a step changes on the host
    int64_t iterations = 0;
    std::vector<double> extra;
  };
  HostStepState step_start_;  // before the step a replay is taking (recorded steps only)
  std::vector<Tensor> on_device_;  // the rate, the weight-decay factor, then step_values()
  bool built_ = false;
  std::vector<const Variable*> built_for_;
  std::vector<std::unique_ptr<Variable>> slots_;
};

struct SGDOptions {
  LearningRate learning_rate = 0.01f;
  float momentum = 0.f;
  bool nesterov = false;
  CommonOptions common;
};
/// Keras SGD: m = momentum * m - lr * g; w += m (nesterov: w += momentum * m - lr * g).
class KERASCPP_API SGD : public Optimizer {
 public:
  explicit SGD(SGDOptions options = {});
  Config get_config() const override;

 protected:
  void build(const std::vector<Variable*>& variables) override;
  void update(size_t index, Variable& variable, const Tensor& gradient) override;

 private:
  SGDOptions options_;
  std::vector<Variable*> momentums_;
};

struct AdamOptions {
  LearningRate learning_rate = 0.001f;
  float beta_1 = 0.9f;
  float beta_2 = 0.999f;
  float epsilon = 1e-7f;
  bool amsgrad = false;
  CommonOptions common;
};
/// Keras Adam (epsilon added to sqrt(v), not inside it).
class KERASCPP_API Adam : public Optimizer {
 public:
  explicit Adam(AdamOptions options = {});
  Config get_config() const override;

 protected:
  Adam(std::string class_name, AdamOptions options);
  void build(const std::vector<Variable*>& variables) override;
  void update(size_t index, Variable& variable, const Tensor& gradient) override;
  std::vector<double> step_values() const override;

 private:
  AdamOptions options_;
  std::vector<Variable*> m_, v_, vhat_;
};

struct RMSpropOptions {
  LearningRate learning_rate = 0.001f;
  float rho = 0.9f;
  float momentum = 0.f;
  float epsilon = 1e-7f;
  bool centered = false;
  CommonOptions common;
};
/// Keras RMSprop: v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + eps) (centered subtracts the
/// squared running mean of g; momentum accumulates the increments).
class KERASCPP_API RMSprop : public Optimizer {
 public:
  explicit RMSprop(RMSpropOptions options = {});
  Config get_config() const override;

 protected:
  void build(const std::vector<Variable*>& variables) override;
  void update(size_t index, Variable& variable, const Tensor& gradient) override;

 private:
  RMSpropOptions options_;
  std::vector<Variable*> velocities_, momentums_, average_gradients_;
};

/// Keras AdamW: Adam with decoupled weight decay (default 0.004).
struct AdamWOptions {
  LearningRate learning_rate = 0.001f;
  float weight_decay = 0.004f;
  float beta_1 = 0.9f;
  float beta_2 = 0.999f;
  float epsilon = 1e-7f;
  bool amsgrad = false;
  CommonOptions common;
};
class KERASCPP_API AdamW : public Adam {
 public:
  explicit AdamW(AdamWOptions options = {});
};

struct AdagradOptions {
  LearningRate learning_rate = 0.001f;
  float initial_accumulator_value = 0.1f;
  float epsilon = 1e-7f;
  CommonOptions common;
};
/// Keras Adagrad: a += g^2; w -= lr g / sqrt(a + eps).
class KERASCPP_API Adagrad : public Optimizer {
 public:
  explicit Adagrad(AdagradOptions options = {});
  Config get_config() const override;

 protected:
  void build(const std::vector<Variable*>& variables) override;
  void update(size_t index, Variable& variable, const Tensor& gradient) override;

 private:
  AdagradOptions options_;
  std::vector<Variable*> accumulators_;
};

struct AdadeltaOptions {
  LearningRate learning_rate = 0.001f;
  float rho = 0.95f;
  float epsilon = 1e-7f;
  CommonOptions common;
};
/// Keras Adadelta.
class KERASCPP_API Adadelta : public Optimizer {
 public:
  explicit Adadelta(AdadeltaOptions options = {});
  Config get_config() const override;

 protected:
  void build(const std::vector<Variable*>& variables) override;
  void update(size_t index, Variable& variable, const Tensor& gradient) override;

 private:
  AdadeltaOptions options_;
  std::vector<Variable*> accumulated_grads_, accumulated_deltas_;
};

struct AdamaxOptions {
  LearningRate learning_rate = 0.001f;
  float beta_1 = 0.9f;
  float beta_2 = 0.999f;
  float epsilon = 1e-7f;
  CommonOptions common;
};
/// Keras Adamax: the infinity-norm variant of Adam.
class KERASCPP_API Adamax : public Optimizer {
 public:
  explicit Adamax(AdamaxOptions options = {});
  Config get_config() const override;

 protected:
  void build(const std::vector<Variable*>& variables) override;
  void update(size_t index, Variable& variable, const Tensor& gradient) override;

 private:
  std::vector<double> step_values() const override;
  AdamaxOptions options_;
  std::vector<Variable*> m_, u_;
};

struct NadamOptions {
  LearningRate learning_rate = 0.001f;
  float beta_1 = 0.9f;
  float beta_2 = 0.999f;
  float epsilon = 1e-7f;
  CommonOptions common;
};
/// Keras Nadam: Adam with Nesterov momentum and Keras' momentum schedule.
class KERASCPP_API Nadam : public Optimizer {
 public:
  explicit Nadam(NadamOptions options = {});
  std::vector<float> extra_state() const override { return {static_cast<float>(u_product_)}; }
  void set_extra_state(const std::vector<float>& values) override { u_product_ = values.at(0); }
  Config get_config() const override;

 protected:
  void build(const std::vector<Variable*>& variables) override;
  void before_updates() override;
  std::vector<double> host_extra() const override { return {u_product_}; }
  void set_host_extra(const std::vector<double>& values) override { u_product_ = values.at(0); }
  std::vector<double> step_values() const override;
  void update(size_t index, Variable& variable, const Tensor& gradient) override;

 private:
  NadamOptions options_;
  std::vector<Variable*> m_, v_;
  double u_product_ = 1.0;
};

/// By Keras name ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam"), with
/// Keras' defaults; throws ValueError otherwise.
KERASCPP_API std::shared_ptr<Optimizer> get(const std::string& name);

struct LossScaleOptions {
  float initial_scale = 32768.f;      // 2^15, Keras' default
  int64_t dynamic_growth_steps = 2000;
  std::string name = "loss_scale_optimizer";
};
/// Keras' LossScaleOptimizer, for mixed_float16 (compile wraps the optimizer in one under that
/// policy): the loss is multiplied by a dynamic scale before differentiating, so small float16
/// gradients do not flush to zero, and the gradients are divided by it before the inner update.
/// A step whose gradients hold an inf or NaN is skipped and halves the scale; after
/// dynamic_growth_steps finite steps in a row the scale doubles. iterations(), the learning rate
/// and the slots are the inner optimizer's.
/// In a recorded step (models/step_graphs.h) the scale is read from the device, the update is
/// applied and then undone on the device where the gradients were not finite (the weights and
/// slots are copied before it: one copy and one select each per step), and the host reads the
/// verdict after the replay, taking the inner optimizer's step back if it was skipped.
class KERASCPP_API LossScaleOptimizer : public Optimizer {
 public:
  explicit LossScaleOptimizer(std::shared_ptr<Optimizer> inner, LossScaleOptions options = {});
  template <typename O, typename = std::enable_if_t<std::is_base_of_v<Optimizer, std::decay_t<O>> &&
                                                    !std::is_lvalue_reference_v<O>>>
  explicit LossScaleOptimizer(O&& inner, LossScaleOptions options = {})
      : LossScaleOptimizer(std::make_shared<std::decay_t<O>>(std::move(inner)), std::move(options)) {}

  void apply_gradients(const std::vector<Tensor>& gradients, const std::vector<Variable*>& variables) override;
  float loss_scale() const override { return scale_; }
  Tensor scale_loss(const Tensor& loss) override;
  /// The finite steps since the scale last changed (Keras' step_counter).
  int64_t step_counter() const { return step_counter_; }
  /// Restores the scale and counter (loading a saved state).
  void set_scale_state(float scale, int64_t step_counter);
  Optimizer& inner_optimizer() const { return *inner_; }
  const LossScaleOptions& options() const { return options_; }

  int64_t iterations() const override { return inner_->iterations(); }
  float learning_rate() const override { return inner_->learning_rate(); }
  bool has_schedule() const override { return inner_->has_schedule(); }
  void set_learning_rate(float lr) override { inner_->set_learning_rate(lr); }
  std::vector<Variable*> variables() override { return inner_->variables(); }
  std::vector<float> extra_state() const override { return inner_->extra_state(); }
  void set_extra_state(const std::vector<float>& values) override { inner_->set_extra_state(values); }
  void set_iterations(int64_t iterations) override { inner_->set_iterations(iterations); }
  void build_for(const std::vector<Variable*>& variables) override;
  bool built() const override { return inner_->built(); }
  /// {"name", "inner_optimizer": serialized, "initial_scale", "dynamic_growth_steps"}, as Keras 3.
  Config get_config() const override;

 protected:
  void build(const std::vector<Variable*>&) override {}
  void update(size_t, Variable&, const Tensor&) override {}

 private:
  /// A step being recorded: every tensor it reads comes from the device.
  void apply_recorded(const std::vector<Tensor>& gradients, const std::vector<Variable*>& variables);
  /// The scale's bookkeeping once a step's gradients are known to be finite or not.
  void count_step(bool finite);
  std::shared_ptr<Optimizer> inner_;
  LossScaleOptions options_;
  float scale_;
  int64_t step_counter_ = 0;
  Tensor scale_on_device_, inverse_on_device_;  // filled before each recorded step's replay
};
/// From a name or Keras' serialized optimizer (Keras 2 or 3); throws ValueError on unknown classes.
KERASCPP_API std::shared_ptr<Optimizer> deserialize(const Config& config);

}  // namespace keras::optimizers
