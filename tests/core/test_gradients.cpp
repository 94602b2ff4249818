// Every differentiable op against central finite differences.
#include "tests/support/test_support.h"

using namespace keras;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

namespace {
Tensor r(const Shape& s, uint32_t seed, float lo = -1.f, float hi = 1.f) { return kt::random_tensor(s, seed, lo, hi); }
}  // namespace

TEST_CASE("unary op gradients match finite differences", "[cpu][autograd]") {
  const std::vector<std::tuple<const char*, Fn, float, float>> cases = {
      {"negative", [](auto& x) { return ops::negative(x[0]); }, -2.f, 2.f},
      {"abs", [](auto& x) { return ops::abs(x[0]); }, 0.2f, 2.f},
      {"square", [](auto& x) { return ops::square(x[0]); }, -2.f, 2.f},
      {"sqrt", [](auto& x) { return ops::sqrt(x[0]); }, 0.5f, 2.f},
      {"rsqrt", [](auto& x) { return ops::rsqrt(x[0]); }, 0.5f, 2.f},
      {"reciprocal", [](auto& x) { return ops::reciprocal(x[0]); }, 0.5f, 2.f},
      {"exp", [](auto& x) { return ops::exp(x[0]); }, -1.f, 1.f},
      {"log", [](auto& x) { return ops::log(x[0]); }, 0.5f, 2.f},
      {"log1p", [](auto& x) { return ops::log1p(x[0]); }, 0.f, 2.f},
      {"sin", [](auto& x) { return ops::sin(x[0]); }, -2.f, 2.f},
      {"cos", [](auto& x) { return ops::cos(x[0]); }, -2.f, 2.f},
      {"tanh", [](auto& x) { return ops::tanh(x[0]); }, -2.f, 2.f},
      {"sigmoid", [](auto& x) { return ops::sigmoid(x[0]); }, -3.f, 3.f},
      {"relu", [](auto& x) { return ops::relu(x[0]); }, -2.f, 2.f},
      {"relu6", [](auto& x) { return ops::relu6(ops::multiply(x[0], 4.f)); }, -2.f, 2.f},
      {"leaky_relu", [](auto& x) { return ops::leaky_relu(x[0]); }, -2.f, 2.f},
      {"elu", [](auto& x) { return ops::elu(x[0]); }, -2.f, 2.f},
      {"selu", [](auto& x) { return ops::selu(x[0]); }, -2.f, 2.f},
      {"gelu", [](auto& x) { return ops::gelu(x[0], false); }, -2.f, 2.f},
      {"gelu_tanh", [](auto& x) { return ops::gelu(x[0], true); }, -2.f, 2.f},
      {"softplus", [](auto& x) { return ops::softplus(x[0]); }, -2.f, 2.f},
      {"softsign", [](auto& x) { return ops::softsign(x[0]); }, -2.f, 2.f},
      {"silu", [](auto& x) { return ops::silu(x[0]); }, -2.f, 2.f},
      {"hard_sigmoid", [](auto& x) { return ops::hard_sigmoid(x[0]); }, -4.f, 4.f},
      {"erf", [](auto& x) { return ops::erf(x[0]); }, -1.5f, 1.5f},
      {"clip", [](auto& x) { return ops::clip(x[0], -0.5f, 0.5f); }, -1.f, 1.f},
  };
  for (const auto& [name, f, lo, hi] : cases) {
    INFO(name);
    kt::check_gradients(f, {r(Shape{3, 5}, 21, lo, hi)}, 1e-3f);
  }
}

TEST_CASE("binary op gradients match finite differences, with broadcasting", "[cpu][autograd]") {
  const std::vector<std::pair<const char*, Fn>> cases = {
      {"add", [](auto& x) { return ops::add(x[0], x[1]); }},
      {"subtract", [](auto& x) { return ops::subtract(x[0], x[1]); }},
      {"multiply", [](auto& x) { return ops::multiply(x[0], x[1]); }},
      {"divide", [](auto& x) { return ops::divide(x[0], ops::add(ops::abs(x[1]), 1.f)); }},
      {"maximum", [](auto& x) { return ops::maximum(x[0], x[1]); }},
      {"minimum", [](auto& x) { return ops::minimum(x[0], x[1]); }},
      {"power", [](auto& x) { return ops::power(ops::add(ops::abs(x[0]), 0.5f), x[1]); }},
      {"where", [](auto& x) { return ops::where(ops::greater(x[0], x[1]), ops::square(x[0]), x[1]); }},
  };
  for (const auto& [name, f] : cases) {
    INFO(name);
    kt::check_gradients(f, {r(Shape{2, 3, 4}, 31), r(Shape{3, 1}, 32)});
    kt::check_gradients(f, {r(Shape{1}, 33), r(Shape{4, 2}, 34)});
  }
}

TEST_CASE("reduction gradients match finite differences", "[cpu][autograd]") {
  const Tensor x = r(Shape{3, 4, 2}, 41);
  kt::check_gradients([](auto& v) { return ops::sum(v[0], {1}); }, {x});
  kt::check_gradients([](auto& v) { return ops::mean(v[0], {0, 2}, true); }, {x});
  // max/min need values further apart than the finite-difference step: a shuffled ramp.
  std::vector<float> ramp(24);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = 0.1f * static_cast<float>((i * 7) % 24);
  const Tensor spaced = Tensor::from_vector(ramp, Shape{3, 4, 2});
  kt::check_gradients([](auto& v) { return ops::max(v[0], {1}); }, {spaced});
  kt::check_gradients([](auto& v) { return ops::min(v[0]); }, {spaced});
  kt::check_gradients([](auto& v) { return ops::var(v[0], {0}); }, {x});
  kt::check_gradients([](auto& v) { return ops::prod(v[0], {2}); }, {r(Shape{3, 4, 2}, 42, 0.5f, 1.5f)});
}

TEST_CASE("shape op gradients match finite differences", "[cpu][autograd]") {
  kt::check_gradients([](auto& v) { return ops::square(ops::reshape(v[0], {4, -1})); }, {r(Shape{2, 6}, 51)});
  kt::check_gradients([](auto& v) { return ops::transpose(v[0], {1, 2, 0}); }, {r(Shape{2, 3, 4}, 52)});
  kt::check_gradients(
      [](auto& v) {
        return ops::concatenate({v[0], ops::square(v[1])}, 1);
      },
      {r(Shape{2, 3}, 53), r(Shape{2, 2}, 54)});
  kt::check_gradients([](auto& v) { return ops::split(v[0], {1, 2}, 1)[1]; }, {r(Shape{2, 3}, 55)});
  kt::check_gradients([](auto& v) { return ops::slice(v[0], {1, 0}, {2, 2}); }, {r(Shape{3, 3}, 56)});
  kt::check_gradients([](auto& v) { return ops::pad(v[0], {{{1, 0}}, {{0, 2}}}, 3.f); }, {r(Shape{2, 2}, 57)});
  kt::check_gradients(
      [](auto& v) {
        return ops::take(v[0], Tensor::from_vector<int32_t>({2, 0, 2}, Shape{3}), 1);
      },
      {r(Shape{2, 3}, 58)});
  kt::check_gradients([](auto& v) { return ops::broadcast_to(v[0], Shape{3, 2, 4}); }, {r(Shape{2, 1}, 59)});
  kt::check_gradients([](auto& v) { return ops::cast(v[0], DType::float32); }, {r(Shape{2}, 60)});
}

TEST_CASE("matmul and linear gradients match finite differences", "[cpu][autograd]") {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      INFO("transposes " << ta << tb);
      kt::check_gradients([=](auto& v) { return ops::matmul(v[0], v[1], {.transpose_a = ta, .transpose_b = tb}); },
                          {r(ta ? Shape{4, 3} : Shape{3, 4}, 61), r(tb ? Shape{2, 4} : Shape{4, 2}, 62)});
    }
  kt::check_gradients([](auto& v) { return ops::matmul(v[0], v[1]); },
                      {r(Shape{2, 1, 3, 4}, 63), r(Shape{3, 4, 2}, 64)});
  for (UnaryOp act : {UnaryOp::identity, UnaryOp::relu, UnaryOp::sigmoid, UnaryOp::tanh, UnaryOp::gelu_tanh}) {
    INFO(unary_op_name(act));
    kt::check_gradients([=](auto& v) { return ops::linear(v[0], v[1], v[2], act); },
                        {r(Shape{2, 3, 5}, 65), r(Shape{5, 4}, 66), r(Shape{4}, 67)});
  }
}

TEST_CASE("convolution gradients match finite differences", "[cpu][autograd]") {
  kt::check_gradients(
      [](auto& v) {
        return ops::conv(v[0], v[1], v[2], {.strides = {2, 1}, .padding = "same"});
      },
      {r(Shape{2, 5, 4, 3}, 71), r(Shape{3, 2, 3, 2}, 72), r(Shape{2}, 73)});
  kt::check_gradients([](auto& v) { return ops::conv(v[0], v[1], Tensor(), {.dilation_rate = {2}, .groups = 2}); },
                      {r(Shape{1, 6, 6, 4}, 74), r(Shape{2, 2, 2, 4}, 75)});
  kt::check_gradients(
      [](auto& v) { return ops::conv(v[0], v[1], v[2], {.padding = "same", .activation = UnaryOp::tanh}); },
      {r(Shape{1, 7, 2}, 76), r(Shape{3, 2, 3}, 77), r(Shape{3}, 78)});  // conv1d, fused tanh
  kt::check_gradients([](auto& v) { return ops::depthwise_conv(v[0], v[1], v[2], {.padding = "same"}); },
                      {r(Shape{1, 4, 4, 2}, 79), r(Shape{3, 3, 2, 2}, 80), r(Shape{4}, 81)});
  kt::check_gradients(
      [](auto& v) { return ops::conv_transpose(v[0], v[1], v[2], {.strides = {2}, .padding = "same"}); },
      {r(Shape{1, 3, 3, 2}, 82), r(Shape{3, 3, 3, 2}, 83), r(Shape{3}, 84)});
}

TEST_CASE("pooling, batch-norm, softmax, cross-entropy and embedding gradients match finite differences",
          "[cpu][autograd]") {
  kt::check_gradients([](auto& v) { return ops::max_pool(v[0], {.pool_size = {2}, .padding = "same"}); },
                      {r(Shape{1, 5, 5, 2}, 91)});
  kt::check_gradients(
      [](auto& v) { return ops::average_pool(v[0], {.pool_size = {3}, .strides = {2}, .padding = "same"}); },
      {r(Shape{2, 5, 4, 2}, 92)});
  kt::check_gradients([](auto& v) { return ops::batch_norm_training(v[0], v[1], v[2]).y; },
                      {r(Shape{4, 3, 3}, 93), r(Shape{3}, 94, 0.5f, 1.5f), r(Shape{3}, 95)}, 1e-2f, 5e-3f, 5e-2f);
  kt::check_gradients(
      [](auto& v) { return ops::batch_norm_inference(v[0], v[1], v[2], v[3], ops::abs(v[4])); },
      {r(Shape{4, 3}, 96), r(Shape{3}, 97), r(Shape{3}, 98), r(Shape{3}, 99), r(Shape{3}, 100, 0.5f, 1.f)});
  // Layer normalization (the CPU backend's fused op, its backward pass): with and without parameters.
  kt::check_gradients([](auto& v) { return ops::layer_normalization(v[0], v[1], v[2]); },
                      {r(Shape{3, 6}, 108, -2.f, 2.f), r(Shape{6}, 109, 0.5f, 1.5f), r(Shape{6}, 110)}, 1e-2f, 5e-3f,
                      5e-2f);
  kt::check_gradients([](auto& v) { return ops::layer_normalization(v[0], v[1], Tensor(), 1); },
                      {r(Shape{2, 3, 4}, 111, -2.f, 2.f), r(Shape{3, 4}, 112, 0.5f, 1.5f)}, 1e-2f, 5e-3f, 5e-2f);
  kt::check_gradients([](auto& v) { return ops::layer_normalization(v[0], Tensor(), v[1]); },
                      {r(Shape{4, 5}, 113, -2.f, 2.f), r(Shape{5}, 114)}, 1e-2f, 5e-3f, 5e-2f);
  kt::check_gradients([](auto& v) { return ops::layer_normalization(v[0], Tensor(), Tensor()); },
                      {r(Shape{4, 5}, 115, -2.f, 2.f)}, 1e-2f, 5e-3f, 5e-2f);
  kt::check_gradients([](auto& v) { return ops::softmax(v[0]); }, {r(Shape{3, 4}, 101)});
  kt::check_gradients([](auto& v) { return ops::softmax(v[0], 0); }, {r(Shape{3, 4}, 102)});
  kt::check_gradients([](auto& v) { return ops::log_softmax(v[0]); }, {r(Shape{3, 4}, 103)});
  kt::check_gradients(
      [](auto& v) {
        return ops::softmax_cross_entropy(v[0], Tensor::from_vector<int32_t>({1, 0, 3}, Shape{3}), true);
      },
      {r(Shape{3, 4}, 104)});
  kt::check_gradients([](auto& v) { return ops::softmax_cross_entropy(v[0], ops::softmax(v[1]), false); },
                      {r(Shape{2, 3}, 105), r(Shape{2, 3}, 106)});
  kt::check_gradients(
      [](auto& v) {
        return ops::embedding(v[0], Tensor::from_vector<int64_t>({1, 1, 0, 3}, Shape{2, 2}));
      },
      {r(Shape{4, 3}, 107)});
}
