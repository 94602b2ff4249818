#pragma once
// Weight regularizers (added to the loss) and constraints (applied after each optimizer step).
#include <functional>
#include <memory>
#include <string>

#include "../core/export.h"
#include "../core/tensor.h"
#include "serialization.h"

namespace keras {

/// A named function of a weight: the shared shape of regularizers and constraints.
class KERASCPP_API WeightFunction {
 public:
  WeightFunction() = default;
  /// A custom function; it serializes as {"class_name": name} and loads only if registered.
  WeightFunction(std::string name, std::function<Tensor(const Tensor&)> fn);
  explicit operator bool() const { return static_cast<bool>(fn_); }
  Tensor operator()(const Tensor& weight) const { return fn_(weight); }
  const std::string& name() const { return name_; }
  /// Keras' serialized form ({"module", "class_name", "config", "registered_name"}); null when empty.
  Config serialized() const { return fn_ ? serialized_ : Config(nullptr); }
  void set_serialized(Config serialized) { serialized_ = std::move(serialized); }

 private:
  std::string name_;
  std::function<Tensor(const Tensor&)> fn_;
  Config serialized_;
};

/// A penalty on a weight, added to the training loss: Keras' L1, L2, L1L2.
class KERASCPP_API Regularizer : public WeightFunction {
 public:
  using WeightFunction::WeightFunction;
  /// By Keras name with its defaults: "l1" (0.01), "l2" (0.01), "l1_l2" (0.01, 0.01).
  Regularizer(const char* name);  // NOLINT
};

namespace regularizers {
KERASCPP_API Regularizer L1(float l1 = 0.01f);
KERASCPP_API Regularizer L2(float l2 = 0.01f);
KERASCPP_API Regularizer L1L2(float l1 = 0.f, float l2 = 0.f);
/// From a name or Keras' serialized object; null gives an empty regularizer.
KERASCPP_API Regularizer deserialize(const Config& config);
}  // namespace regularizers

/// A projection applied to a weight after each optimizer step: Keras' MaxNorm, MinMaxNorm, NonNeg,
/// UnitNorm (norms over `axis`, 0 by default: each output unit's incoming weights).
class KERASCPP_API Constraint : public WeightFunction {
 public:
  using WeightFunction::WeightFunction;
};

namespace constraints {
KERASCPP_API Constraint MaxNorm(float max_value = 2.f, std::vector<int64_t> axis = {0});
KERASCPP_API Constraint MinMaxNorm(float min_value = 0.f, float max_value = 1.f, float rate = 1.f,
                                   std::vector<int64_t> axis = {0});
KERASCPP_API Constraint NonNeg();
KERASCPP_API Constraint UnitNorm(std::vector<int64_t> axis = {0});
/// From Keras' serialized object (or its snake_case name); null gives an empty constraint.
KERASCPP_API Constraint deserialize(const Config& config);
}  // namespace constraints

}  // namespace keras
