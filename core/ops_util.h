#pragma once
// Internal helpers shared by the ops_*.cpp files. Not installed.
#include <initializer_list>

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

inline void check_float(const char* op, const Tensor& t, const char* what) {
  check_defined(op, t, what);
  KCPP_CHECK(t.dtype() == DType::float32, TypeError, "{}: expected {} of dtype float32, received dtype {} (shape {})",
             op, what, dtype_name(t.dtype()), t.shape().to_string());
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
