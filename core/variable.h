#pragma once
#include <string>

#include "export.h"
#include "tensor.h"

namespace keras {

/// A named, mutable tensor that persists across steps: layer weights, optimizer slots,
/// metric accumulators. Trainable variables are watched by every GradientTape.
class KERASCPP_API Variable {
 public:
  Variable() = default;
  /// Takes `initial_value` (copied, so later changes to it do not leak in).
  Variable(const Tensor& initial_value, std::string name, bool trainable = true);

  const Tensor& value() const { return value_; }
  const std::string& name() const { return name_; }
  bool trainable() const { return trainable_; }
  /// Freezing a variable stops its gradients (Keras' trainable flag).
  void set_trainable(bool trainable);
  const Shape& shape() const { return value_.shape(); }
  DType dtype() const { return value_.dtype(); }

  /// Copies `new_value` into the variable's storage; throws ShapeError/TypeError on mismatch.
  void assign(const Tensor& new_value);

 private:
  Tensor value_;
  std::string name_;
  bool trainable_ = true;
};

}  // namespace keras
