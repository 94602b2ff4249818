#include "layers/activations.h"

#include <functional>
#include <map>

#include "core/check.h"
#include "core/ops.h"

namespace keras::activations {
namespace {
Tensor scalar_like(const Tensor& x, double v) { return ops::full({}, v, x.dtype(), x.backend()); }

// Keras 3's activations beyond the classic ones, in its formulas (keras.activations).
Tensor hard_silu(const Tensor& x) { return x * ops::hard_sigmoid(x); }
Tensor log_sigmoid(const Tensor& x) { return -ops::softplus(-x); }
Tensor mish(const Tensor& x) { return x * ops::tanh(ops::softplus(x)); }
Tensor hard_shrink(const Tensor& x) {
  return ops::where(ops::greater(ops::abs(x), scalar_like(x, 0.5)), x, ops::zeros_like(x));
}
Tensor soft_shrink(const Tensor& x) {
  const Tensor zero = ops::zeros_like(x);
  return ops::where(ops::greater(x, scalar_like(x, 0.5)), x - 0.5f,
                    ops::where(ops::less(x, scalar_like(x, -0.5)), x + 0.5f, zero));
}
Tensor sparse_plus(const Tensor& x) {  // 0 below -1, x above 1, (x + 1)^2 / 4 between
  return ops::where(ops::less_equal(x, scalar_like(x, -1.0)), ops::zeros_like(x),
                    ops::where(ops::greater_equal(x, scalar_like(x, 1.0)), x, ops::square(x + 1.f) * 0.25f));
}
Tensor sparse_sigmoid(const Tensor& x) {  // 0 below -1, 1 above 1, (x + 1) / 2 between
  return ops::where(ops::less_equal(x, scalar_like(x, -1.0)), ops::zeros_like(x),
                    ops::where(ops::greater_equal(x, scalar_like(x, 1.0)), ops::ones_like(x), (x + 1.f) * 0.5f));
}
Tensor squareplus(const Tensor& x) { return (x + ops::sqrt(ops::square(x) + 4.f)) * 0.5f; }  // b = 4
Tensor tanh_shrink(const Tensor& x) { return x - ops::tanh(x); }
Tensor glu(const Tensor& x) {  // a * sigmoid(b), a and b the halves of the last axis
  KCPP_CHECK(x.rank() >= 1 && x.dim(-1) % 2 == 0, ValueError,
             "glu: expected an even size of the last axis, received shape {}", x.shape().to_string());
  std::vector<int64_t> starts(x.rank(), 0), sizes = x.shape().dims();
  sizes.back() /= 2;
  const Tensor a = ops::slice(x, starts, sizes);
  starts.back() = sizes.back();
  return a * ops::sigmoid(ops::slice(x, starts, sizes));
}

const std::map<std::string, std::function<Tensor(const Tensor&)>>& table() {
  static const std::map<std::string, std::function<Tensor(const Tensor&)>> t = {
      {"linear", [](const Tensor& x) { return x; }},
      {"relu", ops::relu},
      {"relu6", ops::relu6},
      {"leaky_relu", [](const Tensor& x) { return ops::leaky_relu(x); }},
      {"elu", [](const Tensor& x) { return ops::elu(x); }},
      {"selu", ops::selu},
      {"gelu", [](const Tensor& x) { return ops::gelu(x, /*approximate=*/false); }},  // Keras: exact erf form
      {"sigmoid", ops::sigmoid},
      {"hard_sigmoid", ops::hard_sigmoid},
      {"tanh", ops::tanh},
      {"softmax", [](const Tensor& x) { return ops::softmax(x); }},
      {"log_softmax", [](const Tensor& x) { return ops::log_softmax(x); }},
      {"softplus", ops::softplus},
      {"softsign", ops::softsign},
      {"swish", ops::silu},
      {"silu", ops::silu},
      {"exponential", ops::exp},
      {"celu", [](const Tensor& x) { return ops::elu(x); }},  // alpha 1: elu
      {"glu", glu},
      {"hard_shrink", hard_shrink},
      {"hard_silu", hard_silu},
      {"hard_swish", hard_silu},
      {"hard_tanh", [](const Tensor& x) { return ops::clip(x, -1.f, 1.f); }},
      {"log_sigmoid", log_sigmoid},
      {"mish", mish},
      {"soft_shrink", soft_shrink},
      {"sparse_plus", sparse_plus},
      {"sparse_sigmoid", sparse_sigmoid},
      {"squareplus", squareplus},
      {"tanh_shrink", tanh_shrink},
  };
  return t;
}
}  // namespace

UnaryOp fusable_op(const std::string& name) {
  if (name == "relu") return UnaryOp::relu;
  if (name == "sigmoid") return UnaryOp::sigmoid;
  if (name == "tanh") return UnaryOp::tanh;
  if (name == "relu6") return UnaryOp::relu6;
  return UnaryOp::identity;
}

void check_name(const std::string& name) {
  if (name.empty() || table().count(name)) return;
  std::vector<std::string> names;
  for (const auto& [k, v] : table()) names.push_back(k);
  throw ValueError(fmt::format("unknown activation '{}': expected one of {}", name, fmt::join(names, ", ")));
}

Tensor apply(const std::string& name, const Tensor& x) {
  if (name.empty()) return x;
  check_name(name);
  return table().at(name)(x);
}

}  // namespace keras::activations
