#pragma once
#include <optional>
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

  /// The value. Inside a layer's call under a mixed policy (an AutocastScope), a floating variable
  /// that allows autocasting reads as the layer's compute dtype, as Keras' variables do; the cast
  /// is recorded, so its gradient arrives in the variable's own dtype.
  Tensor value() const;
  /// The stored tensor, never cast: for optimizers, saving and in-place updates.
  const Tensor& stored() const { return value_; }
  const std::string& name() const { return name_; }
  bool trainable() const { return trainable_; }
  /// Freezing a variable stops its gradients (Keras' trainable flag).
  void set_trainable(bool trainable);
  const Shape& shape() const { return value_.shape(); }
  DType dtype() const { return value_.dtype(); }

  /// Keras' `autocast`: false keeps reads in the variable's dtype (BatchNormalization's weights).
  bool autocast() const { return autocast_; }
  void set_autocast(bool autocast) { autocast_ = autocast; }

  /// Copies `new_value` into the variable's storage; throws ShapeError/TypeError on mismatch.
  void assign(const Tensor& new_value);

 private:
  Tensor value_;
  std::string name_;
  bool trainable_ = true;
  bool autocast_ = true;
};

/// Keras' AutocastScope: while one lives, Variable::value() on this thread casts floating variables
/// that allow it to `dtype`; nullopt turns casting off. Layers open one around call() when their
/// policy's compute dtype differs from the variable dtype. Scopes nest.
class KERASCPP_API AutocastScope {
 public:
  explicit AutocastScope(std::optional<DType> dtype);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;
  /// The dtype reads are cast to on this thread, if any.
  static std::optional<DType> current();

 private:
  std::optional<DType> previous_;
};

}  // namespace keras
