#pragma once
#include <string>

#include "../core/export.h"
#include "../core/tensor.h"

namespace keras::activations {

/// Keras' activations by name: relu, relu6, leaky_relu, elu, selu, gelu, sigmoid, hard_sigmoid,
/// tanh, softmax, log_softmax, softplus, softsign, swish/silu, exponential, linear (or "").
/// Throws ValueError naming the known ones.
KERASCPP_API Tensor apply(const std::string& name, const Tensor& x);
/// Validates a name without applying it.
KERASCPP_API void check_name(const std::string& name);

}  // namespace keras::activations
