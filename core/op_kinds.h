#pragma once
// The operation enums of the Backend interface, in a header with no includes so CUDA kernel files
// can share them without compiling frontend headers.

namespace keras {

/// Elementwise functions of one tensor. A new activation is a new value here, not a new method.
enum class UnaryOp {
  identity,
  negative,
  abs,
  sign,
  square,
  sqrt,
  rsqrt,
  reciprocal,
  exp,
  expm1,
  log,
  log1p,
  sin,
  cos,
  tanh,
  sigmoid,
  relu,
  relu6,
  leaky_relu /*alpha*/,
  elu /*alpha*/,
  selu,
  gelu,
  gelu_tanh,
  softplus,
  softsign,
  swish,
  hard_sigmoid,
  erf,
  floor,
  ceil,
  round,
  logical_not,
  clip /*alpha = min, beta = max*/,
  /// alpha * x + beta: a tensor-scalar add (alpha 1), multiply (beta -0, which adds nothing, so the
  /// product is exact even for -0) or subtraction from a scalar (alpha -1) in one op, each rounded
  /// as the binary op with a scalar tensor would be.
  affine
};
/// Elementwise functions of two tensors, with NumPy broadcasting. Comparisons return bool.
enum class BinaryOp {
  add,
  subtract,
  multiply,
  divide,
  maximum,
  minimum,
  power,
  floor_mod,
  equal,
  not_equal,
  less,
  less_equal,
  greater,
  greater_equal,
  logical_and,
  logical_or,
  relu_grad  // a where b > 0, else 0: relu's backward in one pass (a the gradient, b relu's input or output)
};
/// Comparisons and logical and/or give bool; every other binary op keeps its inputs' dtype.
constexpr bool binary_returns_bool(BinaryOp op) {
  switch (op) {
    case BinaryOp::equal:
    case BinaryOp::not_equal:
    case BinaryOp::less:
    case BinaryOp::less_equal:
    case BinaryOp::greater:
    case BinaryOp::greater_equal:
    case BinaryOp::logical_and:
    case BinaryOp::logical_or:
      return true;
    default:
      return false;
  }
}
enum class ReduceOp { sum, mean, max, min, prod };
/// The recurrent cells a backend may run fused over time, with sigmoid gates and tanh candidates in
/// Keras' gate orders: LSTM (i, f, c, o) and GRU (z, r, h), the GRU with the reset gate applied
/// before the recurrent matmul (Keras' reset_after=False) or after it (reset_after=True, oneDNN's
/// linear-before-reset and cuDNN's GRU).
enum class RnnCell { lstm, gru, gru_reset_after };
enum class PoolMode { max, average };
enum class RandomDistribution { uniform, normal, truncated_normal };

}  // namespace keras
