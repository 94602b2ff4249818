#include "layers/activations.h"

#include <functional>
#include <map>

#include "core/check.h"
#include "core/ops.h"

namespace keras::activations {
namespace {
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
