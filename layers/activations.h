#pragma once
#include <string>

#include "../core/export.h"
#include "../core/op_kinds.h"
#include "../core/tensor.h"

namespace keras::activations {

/// Keras' activations by name: relu, relu6, leaky_relu, elu, selu, gelu, sigmoid, hard_sigmoid,
/// tanh, softmax, log_softmax, softplus, softsign, swish/silu, exponential, linear (or "").
/// Throws ValueError naming the known ones.
KERASCPP_API Tensor apply(const std::string& name, const Tensor& x);
/// The op a matmul or convolution can fuse after its bias for this activation name (relu, relu6,
/// sigmoid, tanh), or identity when the activation must run as its own op.
KERASCPP_API UnaryOp fusable_op(const std::string& name);
/// Validates a name without applying it.
KERASCPP_API void check_name(const std::string& name);

}  // namespace keras::activations
