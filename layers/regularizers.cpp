#include "layers/regularizers.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras {
namespace {
constexpr float kEpsilon = 1e-7f;
}

namespace regularizers {
Regularizer L1(float l1) {
  return Regularizer("l1", [l1](const Tensor& w) { return ops::sum(ops::abs(w)) * l1; });
}
Regularizer L2(float l2) {
  return Regularizer("l2", [l2](const Tensor& w) { return ops::sum(ops::square(w)) * l2; });
}
Regularizer L1L2(float l1, float l2) {
  return Regularizer("l1_l2",
                     [l1, l2](const Tensor& w) { return ops::sum(ops::abs(w)) * l1 + ops::sum(ops::square(w)) * l2; });
}
}  // namespace regularizers

Regularizer::Regularizer(const char* name) {
  const std::string n = name;
  if (n == "l1")
    *this = regularizers::L1();
  else if (n == "l2")
    *this = regularizers::L2();
  else if (n == "l1_l2")
    *this = regularizers::L1L2(0.01f, 0.01f);
  else
    throw ValueError(fmt::format("unknown regularizer '{}': expected one of l1, l2, l1_l2", n));
}

namespace constraints {
Constraint MaxNorm(float max_value, std::vector<int64_t> axis) {
  return Constraint("max_norm", [=](const Tensor& w) {
    const Tensor norms = ops::sqrt(ops::sum(ops::square(w), axis, true));
    return w * (ops::clip(norms, 0.f, max_value) / (norms + kEpsilon));
  });
}
Constraint MinMaxNorm(float min_value, float max_value, float rate, std::vector<int64_t> axis) {
  return Constraint("min_max_norm", [=](const Tensor& w) {
    const Tensor norms = ops::sqrt(ops::sum(ops::square(w), axis, true));
    const Tensor desired = ops::clip(norms, min_value, max_value) * rate + norms * (1.f - rate);
    return w * (desired / (norms + kEpsilon));
  });
}
Constraint NonNeg() {
  return Constraint("non_neg", [](const Tensor& w) { return ops::relu(w); });
}
Constraint UnitNorm(std::vector<int64_t> axis) {
  return Constraint("unit_norm",
                    [=](const Tensor& w) { return w / (ops::sqrt(ops::sum(ops::square(w), axis, true)) + kEpsilon); });
}
}  // namespace constraints

}  // namespace keras
