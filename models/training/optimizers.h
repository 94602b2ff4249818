#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../../core/export.h"
#include "../../core/tensor.h"
#include "../../core/variable.h"

namespace keras::optimizers {

/// Options every Keras optimizer takes.
struct CommonOptions {
  std::optional<float> clipnorm;         // clip each gradient to this L2 norm
  std::optional<float> clipvalue;        // clip each gradient element to [-v, v]
  std::optional<float> global_clipnorm;  // clip all gradients together to this global norm
};

/// Applies gradients to variables with Keras' update rules; slot variables are created on the
/// first call, one set per variable.
class KERASCPP_API Optimizer {
 public:
  Optimizer(std::string name, float learning_rate, CommonOptions common);
  virtual ~Optimizer();
  Optimizer(Optimizer&&) noexcept = default;
  Optimizer& operator=(Optimizer&&) noexcept = default;
  /// One step: clips, then updates every variable in place; throws ValueError when the lists differ.
  void apply_gradients(const std::vector<Tensor>& gradients, const std::vector<Variable*>& variables);
  int64_t iterations() const { return iterations_; }
  float learning_rate() const { return learning_rate_; }
  void set_learning_rate(float lr) { learning_rate_ = lr; }
  const std::string& name() const { return name_; }
  /// Slot variables (Keras' optimizer variables after iteration and learning rate).
  std::vector<Variable*> variables();
  bool built() const { return built_; }

 protected:
  virtual void build(const std::vector<Variable*>& variables) = 0;
  virtual void update(size_t index, Variable& variable, const Tensor& gradient) = 0;
  Variable& add_slot(const Variable& like, const std::string& slot_name);

 private:
  std::string name_;
  float learning_rate_;
  CommonOptions common_;
  int64_t iterations_ = 0;
  bool built_ = false;
  std::vector<const Variable*> built_for_;
  std::vector<std::unique_ptr<Variable>> slots_;
};

struct SGDOptions {
  float learning_rate = 0.01f;
  float momentum = 0.f;
  bool nesterov = false;
  CommonOptions common;
};
/// Keras SGD: m = momentum * m - lr * g; w += m (nesterov: w += momentum * m - lr * g).
class KERASCPP_API SGD : public Optimizer {
 public:
  explicit SGD(SGDOptions options = {});

 protected:
  void build(const std::vector<Variable*>& variables) override;
  void update(size_t index, Variable& variable, const Tensor& gradient) override;

 private:
  SGDOptions options_;
  std::vector<Variable*> momentums_;
};

struct AdamOptions {
  float learning_rate = 0.001f;
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

 protected:
  void build(const std::vector<Variable*>& variables) override;
  void update(size_t index, Variable& variable, const Tensor& gradient) override;

 private:
  AdamOptions options_;
  std::vector<Variable*> m_, v_, vhat_;
};

struct RMSpropOptions {
  float learning_rate = 0.001f;
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

 protected:
  void build(const std::vector<Variable*>& variables) override;
  void update(size_t index, Variable& variable, const Tensor& gradient) override;

 private:
  RMSpropOptions options_;
  std::vector<Variable*> velocities_, momentums_, average_gradients_;
};

/// By Keras name ("sgd", "adam", "rmsprop"), with Keras' defaults; throws ValueError otherwise.
KERASCPP_API std::shared_ptr<Optimizer> get(const std::string& name);

}  // namespace keras::optimizers
