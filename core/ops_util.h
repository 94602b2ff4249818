#pragma once
// Internal helpers shared by the ops_*.cpp files. Not installed.
#include <initializer_list>
#include <optional>

#include "core/autograd.h"
#include "core/check.h"
#include "core/ops.h"

namespace keras::ops::detail {

/// The backend all `inputs` live on; throws ValueError naming `op` when they differ.
inline Backend& common_backend(const char* op, std::initializer_list<const Tensor*> inputs) {
  Backend* b = nullptr;
  for (const Tensor* t : inputs) {
    if (!t || !t->defined()) continue;
    if (!b) b = t->backend();
    KCPP_CHECK(t->backend() == b, ValueError, "{}: all inputs must be on one backend, received {} and {}", op,
               b->name(), t->backend()->name());
  }
  KCPP_CHECK(b, ValueError, "{}: received an undefined tensor", op);
  return *b;
}

inline void check_defined(const char* op, const Tensor& t, const char* what) {
  KCPP_CHECK(t.defined(), ValueError, "{}: {} is undefined", op, what);
}

/// A floating-point tensor: float32, or float16/bfloat16 under mixed precision.
inline void check_float(const char* op, const Tensor& t, const char* what) {
  check_defined(op, t, what);
  KCPP_CHECK(is_floating(t.dtype()), TypeError,
             "{}: expected {} of a floating dtype (float32, float16, bfloat16), received dtype {} (shape {})", op, what,
             dtype_name(t.dtype()), t.shape().to_string());
}

inline bool is_low_precision(DType d) { return d == DType::float16 || d == DType::bfloat16; }

/// Mixed precision where the backend lacks a native kernel: an op whose floating inputs include
/// float16/bfloat16 runs on float32 copies and rounds its floating result back, which is what a
/// native kernel accumulating in float32 gives. Inputs of different floating dtypes also take this
/// path, and the result is then float32 (Keras' type promotion: bfloat16 with float32 gives
/// float32). Returns the result's dtype when the op must take the path, else nullopt.
/// `family`: the op's family, which the backend may compute natively (Backend::computes_low_precision);
/// none for ops that always take the path.
inline std::optional<DType> emulated_dtype(std::initializer_list<const Tensor*> inputs,
                                           std::optional<OpFamily> family = std::nullopt) {
  std::optional<DType> common;
  bool low = false, mixed = false;
  Backend* backend = nullptr;
  for (const Tensor* t : inputs) {
    if (!t || !t->defined() || !is_floating(t->dtype())) continue;
    low = low || is_low_precision(t->dtype());
    if (common && *common != t->dtype()) mixed = true;
    common = t->dtype();
    backend = t->backend();
  }
  if (!low) return std::nullopt;
  if (mixed) return DType::float32;
  if (family && backend->computes_low_precision(*family, *common)) return std::nullopt;
  return common;
}

/// A view that shares y's storage without its autograd identity, so a node can keep its own output
/// without a reference cycle.
inline Tensor detached(const Tensor& y) { return y.view(y.shape()); }

/// `t` as float32 when it is float16 or bfloat16 (a recorded cast, so gradients flow back), else `t`.
inline Tensor widen(const Tensor& t) {
  return t.defined() && is_low_precision(t.dtype()) ? cast(t, DType::float32) : t;
}

/// `y` cast to `dtype` when `y` is floating, else `y` (comparisons and indices keep their dtype).
inline Tensor narrow(const Tensor& y, DType dtype) {
  return y.defined() && is_floating(y.dtype()) ? cast(y, dtype) : y;
}

inline void check_rank(const char* op, const Tensor& t, const char* what, size_t rank) {
  KCPP_CHECK(t.rank() == rank, ShapeError, "{}: expected {} of rank {}, received shape {}", op, what, rank,
             t.shape().to_string());
}

/// Sums `g` over the axes that broadcasting expanded, giving a tensor of `shape`.
Tensor reduce_to(const Tensor& g, const Shape& shape);

/// Gradient of an activation from its output y where that suffices (relu, sigmoid, tanh, ...);
/// an undefined tensor when the rule needs the input.
Tensor activation_grad_from_output(UnaryOp op, const UnaryAttrs& attrs, const Tensor& y, const Tensor& g);

}  // namespace keras::ops::detail
