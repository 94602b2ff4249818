// The CUDA backend against the CPU backend: every op forward and, where differentiable, backward,
// on the same random inputs. Without a usable CUDA device each case reports itself skipped.
#include <algorithm>
#include <cmath>

#include "tests/support/test_support.h"

using namespace keras;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

Backend* cuda_or_skip() {
  for (const auto& p : backend::available_backends())
    if (p.name == "cuda" && p.reason.empty()) {
      enable_tensor_float_32_execution(false);  // exact float32 for parity; TF32 has its own case
      return &backend::get_backend("cuda");
    }
  kt::skip("no cuda device");
  return nullptr;
}

Backend& cpu() { return backend::get_backend("cpu"); }

std::vector<float> as_floats(const Tensor& t) {
  const Tensor h = ops::to_backend(t, cpu());
  return h.dtype() == DType::float32 ? h.to_vector<float>() : ops::cast(h, DType::float32).to_vector<float>();
}

// Runs f on CPU inputs and on their CUDA copies; compares the outputs and the gradients of
// sum(f * probe) with respect to every floating input.
void check_parity(Backend& gpu, const Fn& f, const std::vector<Tensor>& inputs, float atol = 1e-5f, float rtol = 1e-4f,
                  bool gradients = true) {
  std::vector<Tensor> on_gpu;
  for (const Tensor& t : inputs) on_gpu.push_back(ops::to_backend(t, gpu));
  auto run = [&](std::vector<Tensor> xs) {
    std::vector<Tensor> watched;
    GradientTape tape;
    for (Tensor& x : xs)
      if (gradients && is_floating(x.dtype())) {
        tape.watch(x);
        watched.push_back(x);
      }
    const Tensor y = f(xs);
    std::vector<Tensor> out{y};
    if (!watched.empty() && is_floating(y.dtype())) {
      const Tensor probe = ops::to_backend(kt::random_tensor(y.shape(), 99, 0.5f, 1.5f), *y.backend());
      for (const Tensor& g : tape.gradient(ops::sum(ops::multiply(y, probe)), watched)) out.push_back(g);
    }
    return out;
  };
  const auto expected = run(inputs);
  const auto actual = run(on_gpu);
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO((i == 0 ? "output" : "gradient " + std::to_string(i - 1)) << " " << expected[i].shape().to_string());
    CHECK(actual[i].device().type == DeviceType::cuda);
    REQUIRE(actual[i].shape() == expected[i].shape());
    REQUIRE(actual[i].dtype() == expected[i].dtype());
    kt::require_close(as_floats(actual[i]), as_floats(expected[i]), atol, rtol);
  }
}

Tensor r(const Shape& s, uint32_t seed, float lo = -1.f, float hi = 1.f) { return kt::random_tensor(s, seed, lo, hi); }

// check_parity in float16 / bfloat16: the floating inputs rounded to `low` (except those listed in
// `keep_float32`, such as batch-norm parameters) on both backends. Each backend computes in float32
// and rounds once, by its own kernels or through float32 copies, so outputs agree within two steps
// of the format (each is within one of the exact value); gradients, which pass through several
// rounded intermediates, within four steps of their largest magnitude.
void check_parity_low(Backend& other, DType low, const Fn& f, const std::vector<Tensor>& inputs,
                      const std::vector<size_t>& keep_float32 = {}, bool bias_rounded_apart = false) {
  const int bits = low == DType::bfloat16 ? 8 : 11;  // significand bits, the implicit one included
  auto lowered = [&](const std::vector<Tensor>& xs, Backend& be) {
    std::vector<Tensor> out;
    for (size_t i = 0; i < xs.size(); ++i) {
      const bool keep = std::find(keep_float32.begin(), keep_float32.end(), i) != keep_float32.end();
      const Tensor t = ops::to_backend(xs[i], be);
      out.push_back(is_floating(t.dtype()) && !keep ? ops::cast(t, low) : t);
    }
    return out;
  };
  auto run = [&](std::vector<Tensor> xs) {
    std::vector<Tensor> watched;
    GradientTape tape;
    for (Tensor& x : xs)
      if (is_floating(x.dtype())) {
        tape.watch(x);
        watched.push_back(x);
      }
    const Tensor y = f(xs);
    std::vector<Tensor> out{y};
    if (is_floating(y.dtype())) {
      const Tensor probe = ops::to_backend(kt::random_tensor(y.shape(), 99, 0.5f, 1.5f), *y.backend());
      for (const Tensor& g : tape.gradient(ops::sum(ops::cast(y, DType::float32) * probe), watched)) out.push_back(g);
    }
    return out;
  };
  const auto expected = run(lowered(inputs, cpu()));
  const auto actual = run(lowered(inputs, other));
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO((i == 0 ? "output" : "gradient " + std::to_string(i - 1)) << " " << expected[i].shape().to_string() << " in "
                                                                     << dtype_name(low));
    REQUIRE(actual[i].shape() == expected[i].shape());
    REQUIRE(actual[i].dtype() == expected[i].dtype());
    const std::vector<float> a = as_floats(actual[i]), e = as_floats(expected[i]);
    float largest = 0;
    for (float v : e) largest = std::max(largest, std::fabs(v));
    for (size_t k = 0; k < e.size(); ++k) {
      // A bias added after the product is rounded (cuBLAS and cuDNN write low-precision products, and
      // Keras adds the bias in the compute dtype too): half a step of the largest output more.
      const float allowed = i == 0 ? std::ldexp(std::fabs(e[k]), 2 - bits) +
                                         std::ldexp(largest, bias_rounded_apart ? -bits : -2 * bits)
                                   : std::ldexp(largest, 3 - bits);
      INFO("element " << k << ": " << a[k] << " vs " << e[k]);
      REQUIRE(std::fabs(a[k] - e[k]) <= allowed);
    }
  }
}

// The low-precision ops of a model under mixed precision, on `other` against the CPU backend.
void check_low_precision_ops(Backend& other) {
  for (const DType low : {DType::bfloat16, DType::float16}) {
    INFO(dtype_name(low));
    for (const UnaryOp op : {UnaryOp::relu, UnaryOp::tanh, UnaryOp::sigmoid, UnaryOp::exp}) {
      INFO(unary_op_name(op));
      check_parity_low(other, low, [op](auto& v) { return ops::unary(op, v[0]); }, {r(Shape{7, 33}, 201, -2, 2)});
    }
    check_parity_low(other, low, [](auto& v) { return ops::add(v[0], v[1]) * v[0]; },
                     {r(Shape{7, 33}, 202), r(Shape{33}, 203)});
    check_parity_low(other, low, [](auto& v) { return ops::divide(v[0], v[1]); },
                     {r(Shape{7, 33}, 204), r(Shape{7, 33}, 205, 0.5f, 2.f)});
    check_parity_low(other, low, [](auto& v) { return ops::matmul(v[0], v[1]); },
                     {r(Shape{3, 17, 64}, 206), r(Shape{64, 9}, 207)});
    check_parity_low(other, low, [](auto& v) { return ops::linear(v[0], v[1], v[2], UnaryOp::relu); },
                     {r(Shape{16, 64}, 208), r(Shape{64, 24}, 209), r(Shape{24}, 210)}, {}, true);
    check_parity_low(other, low,
                     [](auto& v) { return ops::conv(v[0], v[1], v[2], {.strides = {2, 2}, .padding = "same"}); },
                     {r(Shape{2, 9, 8, 16}, 211), r(Shape{3, 3, 16, 8}, 212, -0.2f, 0.2f), r(Shape{8}, 213)}, {}, true);
    check_parity_low(other, low,
                     [](auto& v) { return ops::average_pool(v[0], {.pool_size = {3, 3}, .strides = {2, 2}, .padding = "same"}); },
                     {r(Shape{2, 9, 8, 16}, 214)});
    // 2x2 windows of distinct values: max pooling has no ties to route differently.
    check_parity_low(other, low, [](auto& v) { return ops::max_pool(v[0], {.pool_size = {2, 2}}); },
                     {ops::reshape(ops::arange(2 * 8 * 8 * 4, DType::float32), {2, 8, 8, 4}) * (1.f / 512.f)});
    check_parity_low(other, low, [](auto& v) { return ops::batch_norm_training(v[0], v[1], v[2]).y; },
                     {r(Shape{4, 6, 6, 40}, 215, 1, 3), r(Shape{40}, 216, 0.5f, 1.5f), r(Shape{40}, 217)}, {1, 2});
    check_parity_low(
        other, low, [](auto& v) { return ops::batch_norm_inference(v[0], v[1], v[2], v[3], ops::abs(v[4]) + 0.1f); },
        {r(Shape{6, 40}, 218), r(Shape{40}, 219), r(Shape{40}, 220), r(Shape{40}, 221), r(Shape{40}, 222)},
        {1, 2, 3, 4});
    check_parity_low(other, low, [](auto& v) { return ops::softmax(v[0]); }, {r(Shape{5, 70}, 223, -4, 4)});
    check_parity_low(other, low, [](auto& v) { return ops::sum(v[0], {1}); }, {r(Shape{6, 300}, 224)});
    check_parity_low(other, low, [](auto& v) { return ops::mean(v[0], {1, 2}); }, {r(Shape{2, 7, 7, 40}, 225)});
    check_parity_low(other, low, [](auto& v) { return ops::max(v[0], {0}); }, {r(Shape{300, 6}, 226)});
  }
}

}  // namespace

TEST_CASE("cuda: float16 and bfloat16 ops match the CPU backend within their rounding", "[cuda][mixed]") {
  Backend* gpu = cuda_or_skip();
  if (!gpu) return;
  check_low_precision_ops(*gpu);
}

TEST_CASE("the low-precision parity checks hold between the CPU's native and emulated bfloat16", "[cpu][mixed]") {
  // The CUDA case's checks, run where they can run without a GPU: oneDNN's bfloat16 kernels against
  // the float32 copies of the default CPU device.
  if (Backend* all = kt::cpu_with_every_bfloat16_kernel("cpu:5")) check_low_precision_ops(*all);
}

TEST_CASE("cuda: elementwise ops match the CPU backend", "[cuda]") {
  Backend* gpu = cuda_or_skip();
  if (!gpu) return;
  const std::vector<std::tuple<const char*, Fn, float, float>> unary = {
      {"negative", [](auto& v) { return ops::negative(v[0]); }, -2, 2},
      {"abs", [](auto& v) { return ops::abs(v[0]); }, -2, 2},
      {"square", [](auto& v) { return ops::square(v[0]); }, -2, 2},
      {"sqrt", [](auto& v) { return ops::sqrt(v[0]); }, 0.2f, 2},
      {"rsqrt", [](auto& v) { return ops::rsqrt(v[0]); }, 0.2f, 2},
      {"exp", [](auto& v) { return ops::exp(v[0]); }, -2, 2},
      {"log", [](auto& v) { return ops::log(v[0]); }, 0.2f, 2},
      {"log1p", [](auto& v) { return ops::log1p(v[0]); }, 0, 2},
      {"sin", [](auto& v) { return ops::sin(v[0]); }, -2, 2},
      {"cos", [](auto& v) { return ops::cos(v[0]); }, -2, 2},
      {"tanh", [](auto& v) { return ops::tanh(v[0]); }, -2, 2},
      {"sigmoid", [](auto& v) { return ops::sigmoid(v[0]); }, -4, 4},
      {"relu", [](auto& v) { return ops::relu(v[0]); }, -2, 2},
      {"relu6", [](auto& v) { return ops::relu6(v[0] * 5.f); }, -2, 2},
      {"leaky_relu", [](auto& v) { return ops::leaky_relu(v[0]); }, -2, 2},
      {"elu", [](auto& v) { return ops::elu(v[0]); }, -2, 2},
      {"selu", [](auto& v) { return ops::selu(v[0]); }, -2, 2},
      {"gelu", [](auto& v) { return ops::gelu(v[0], false); }, -2, 2},
      {"gelu_tanh", [](auto& v) { return ops::gelu(v[0]); }, -2, 2},
      {"softplus", [](auto& v) { return ops::softplus(v[0]); }, -3, 3},
      {"softsign", [](auto& v) { return ops::softsign(v[0]); }, -2, 2},
      {"silu", [](auto& v) { return ops::silu(v[0]); }, -3, 3},
      {"hard_sigmoid", [](auto& v) { return ops::hard_sigmoid(v[0]); }, -4, 4},
      {"erf", [](auto& v) { return ops::erf(v[0]); }, -2, 2},
      {"floor", [](auto& v) { return ops::floor(v[0]); }, -3, 3},
      {"round", [](auto& v) { return ops::round(v[0]); }, -3, 3},
      {"clip", [](auto& v) { return ops::clip(v[0], -0.3f, 0.4f); }, -1, 1},
      {"scalar ops (affine)", [](auto& v) { return 1.5f - (v[0] * 3.f + 0.25f); }, -2, 2}};
  for (const auto& [name, f, lo, hi] : unary) {
    INFO(name);
    check_parity(*gpu, f, {r(Shape{3, 37}, 1, lo, hi)}, 1e-5f, 1e-5f);
    check_parity(*gpu, f, {r(Shape{50000}, 2, lo, hi)}, 1e-5f, 1e-5f, false);
  }
  const std::vector<std::pair<const char*, Fn>> binary = {
      {"add", [](auto& v) { return v[0] + v[1]; }},
      {"subtract", [](auto& v) { return v[0] - v[1]; }},
      {"multiply", [](auto& v) { return v[0] * v[1]; }},
      {"divide", [](auto& v) { return v[0] / (ops::abs(v[1]) + 1.f); }},
      {"maximum", [](auto& v) { return ops::maximum(v[0], v[1]); }},
      {"minimum", [](auto& v) { return ops::minimum(v[0], v[1]); }},
      {"power", [](auto& v) { return ops::power(ops::abs(v[0]) + 0.5f, v[1]); }},
      {"where", [](auto& v) { return ops::where(ops::greater(v[0], v[1]), v[0], v[1] * 2.f); }}};
  for (const auto& [name, f] : binary) {
    INFO(name);
    check_parity(*gpu, f, {r(Shape{2, 3, 4}, 3), r(Shape{3, 1}, 4)});
    check_parity(*gpu, f, {r(Shape{64, 128}, 5), r(Shape{64, 128}, 6)});
  }
  // Integers, comparisons, casts (half types included) are exact.
  const Tensor ia = Tensor::from_vector<int32_t>({7, -7, 5, 0, 9, -3}, Shape{2, 3});
  const Tensor ib = Tensor::from_vector<int32_t>({2, 3, -4}, Shape{3});
  check_parity(*gpu, [](auto& v) { return ops::binary(BinaryOp::floor_mod, v[0], v[1]); }, {ia, ib});
  check_parity(*gpu, [](auto& v) { return ops::divide(v[0], v[1]); }, {ia, ib});
  check_parity(*gpu, [](auto& v) { return ops::less_equal(v[0], v[1]); }, {ia, ib});
  kt::require_throws_with<ValueError>(
      [&] {
        ops::divide(ops::to_backend(ia, *gpu),
                    ops::to_backend(Tensor::from_vector<int32_t>({1, 0, 1}, Shape{3}), *gpu));
      },
      {"division by zero", "element 1"});
  const Tensor f = r(Shape{4, 5}, 7, -300.f, 300.f);
  for (DType to : {DType::int32, DType::int64, DType::uint8, DType::bool_, DType::float16, DType::bfloat16}) {
    INFO(dtype_name(to));
    check_parity(
        *gpu, [to](auto& v) { return ops::cast(ops::cast(v[0], to), DType::float32); }, {f}, 0, 0, false);
  }
}

TEST_CASE("cuda: reductions match the CPU backend", "[cuda]") {
  Backend* gpu = cuda_or_skip();
  if (!gpu) return;
  const Tensor x = r(Shape{6, 5, 4}, 11);
  for (const std::vector<int64_t>& axes : std::vector<std::vector<int64_t>>{{0}, {1}, {2}, {0, 2}, {0, 1}, {}}) {
    INFO("axes " << axes.size());
    check_parity(*gpu, [&](auto& v) { return ops::sum(v[0], axes); }, {x});
    check_parity(*gpu, [&](auto& v) { return ops::mean(v[0], axes, true); }, {x});
    check_parity(*gpu, [&](auto& v) { return ops::var(v[0], axes); }, {x});
    check_parity(
        *gpu, [&](auto& v) { return ops::max(v[0], axes); }, {x}, 1e-6f, 1e-6f, false);
    check_parity(
        *gpu, [&](auto& v) { return ops::min(v[0], axes); }, {x}, 1e-6f, 1e-6f, false);
  }
  // Long reductions into few outputs (a bias gradient) take the chunked column path.
  check_parity(
      *gpu, [](auto& v) { return ops::sum(v[0], {0}); }, {r(Shape{20000, 3}, 12)}, 1e-3f, 1e-4f, false);
  const Tensor dy = r(Shape{4, 30, 30, 40}, 14);  // 3,600 rows of 40 channels, chunks of 256 rows
  check_parity(
      *gpu, [](auto& v) { return ops::sum(v[0], {0, 1, 2}); }, {dy}, 1e-3f, 1e-4f, false);
  check_parity(
      *gpu, [](auto& v) { return ops::mean(v[0], {1, 2}); }, {dy}, 1e-5f, 1e-4f, false);
  check_parity(
      *gpu, [](auto& v) { return ops::max(v[0], {0, 1, 2}); }, {dy}, 0, 0, false);
  check_parity(
      *gpu, [](auto& v) { return ops::argmax(v[0], 0); }, {x}, 0, 0, false);
  check_parity(
      *gpu, [](auto& v) { return ops::argmin(v[0], -1); }, {x}, 0, 0, false);
  check_parity(
      *gpu, [](auto& v) { return ops::sum(v[0]); }, {ops::cast(r(Shape{1000}, 13, 0, 100), DType::int64)}, 0, 0, false);
}

TEST_CASE("cuda: matmul and linear match the CPU backend, TF32 within its tolerance", "[cuda]") {
  Backend* gpu = cuda_or_skip();
  if (!gpu) return;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      INFO("transposes " << ta << tb);
      check_parity(
          *gpu, [=](auto& v) { return ops::matmul(v[0], v[1], {.transpose_a = ta, .transpose_b = tb}); },
          {r(ta ? Shape{33, 17} : Shape{17, 33}, 21), r(tb ? Shape{9, 33} : Shape{33, 9}, 22)}, 1e-4f, 1e-4f);
    }
  check_parity(
      *gpu, [](auto& v) { return ops::matmul(v[0], v[1]); }, {r(Shape{4, 5, 6}, 23), r(Shape{6, 3}, 24)}, 1e-4f, 1e-4f);
  check_parity(
      *gpu, [](auto& v) { return ops::matmul(v[0], v[1]); }, {r(Shape{2, 1, 5, 6}, 25), r(Shape{3, 6, 2}, 26)}, 1e-4f,
      1e-4f);
  for (UnaryOp act : {UnaryOp::identity, UnaryOp::relu, UnaryOp::sigmoid, UnaryOp::tanh}) {
    INFO(unary_op_name(act));
    check_parity(
        *gpu, [=](auto& v) { return ops::linear(v[0], v[1], v[2], act); },
        {r(Shape{7, 20}, 27), r(Shape{20, 11}, 28), r(Shape{11}, 29)}, 1e-4f, 1e-4f);
  }
  enable_tensor_float_32_execution(true);
  check_parity(
      *gpu, [](auto& v) { return ops::matmul(v[0], v[1]); }, {r(Shape{256, 512}, 30), r(Shape{512, 128}, 31)}, 2e-2f,
      1e-2f);
  enable_tensor_float_32_execution(false);
}

TEST_CASE("cuda: convolutions match the CPU backend", "[cuda]") {
  Backend* gpu = cuda_or_skip();
  if (!gpu) return;
  struct Case {
    Shape x, w;
    ops::ConvOptions o;
  };
  const std::vector<Case> cases = {
      {{2, 7, 6, 3}, {3, 3, 3, 4}, {}},
      {{1, 7, 6, 3}, {3, 2, 3, 5}, {.strides = {2, 1}, .padding = "same"}},  // asymmetric "same" padding
      {{2, 9, 8, 2}, {3, 3, 2, 3}, {.strides = {1, 2}, .padding = "same", .dilation_rate = {2, 1}}},
      {{1, 5, 5, 4}, {3, 3, 2, 6}, {.strides = {2}, .padding = "same", .groups = 2}},
      {{2, 8, 8, 3}, {2, 2, 3, 4}, {.padding = "same", .activation = UnaryOp::relu}},
  };
  for (const auto& c : cases) {
    INFO("x " << c.x.to_string() << " w " << c.w.to_string());
    check_parity(
        *gpu, [&](auto& v) { return ops::conv(v[0], v[1], v[2], c.o); }, {r(c.x, 41), r(c.w, 42), r(Shape{c.w[3]}, 43)},
        1e-4f, 1e-4f);
  }
  check_parity(
      *gpu, [](auto& v) { return ops::conv(v[0], v[1], v[2], {.strides = {2}, .padding = "same"}); },
      {r(Shape{2, 11, 3}, 44), r(Shape{4, 3, 5}, 45), r(Shape{5}, 46)}, 1e-4f, 1e-4f);  // conv1d
  check_parity(
      *gpu, [](auto& v) { return ops::depthwise_conv(v[0], v[1], v[2], {.padding = "same"}); },
      {r(Shape{2, 6, 6, 3}, 47), r(Shape{3, 3, 3, 2}, 48), r(Shape{6}, 49)}, 1e-4f, 1e-4f);
  // Inference with a folded BatchNormalization (its scale and shift computed on the device), and
  // the activation, in the convolution's pass; with and without gamma and beta.
  REQUIRE(gpu->supports(Capability::fused_conv_affine));
  check_parity(
      *gpu,
      [](auto& v) {
        return ops::conv(v[0], v[1], v[2],
                         {.padding = "same", .activation = UnaryOp::relu, .batch_norm = {v[3], v[4], v[5], v[6], 1e-3f}});
      },
      {r(Shape{2, 7, 6, 3}, 53), r(Shape{3, 3, 3, 4}, 54), r(Shape{4}, 55), r(Shape{4}, 56), r(Shape{4}, 57, 0.5f, 1.5f),
       r(Shape{4}, 58, 0.5f, 1.5f), r(Shape{4}, 59)},
      1e-4f, 1e-4f, false);
  check_parity(
      *gpu, [](auto& v) { return ops::conv(v[0], v[1], Tensor(), {.batch_norm = {v[2], v[3], {}, {}, 0.01f}}); },
      {r(Shape{2, 5, 5, 3}, 60), r(Shape{1, 1, 3, 4}, 61), r(Shape{4}, 62), r(Shape{4}, 63, 0.5f, 1.5f)}, 1e-4f, 1e-4f,
      false);
  // A residual block's Add in the same pass (with a folded batch norm and relu, and alone).
  REQUIRE(gpu->supports(Capability::fused_conv_residual));
  check_parity(
      *gpu,
      [](auto& v) {
        return ops::conv(v[0], v[1], v[2],
                         {.padding = "same",
                          .activation = UnaryOp::relu,
                          .batch_norm = {v[3], v[4], v[5], v[6], 1e-3f},
                          .residual = v[7]});
      },
      {r(Shape{2, 7, 6, 3}, 64), r(Shape{3, 3, 3, 4}, 65), r(Shape{4}, 66), r(Shape{4}, 67), r(Shape{4}, 68, 0.5f, 1.5f),
       r(Shape{4}, 69, 0.5f, 1.5f), r(Shape{4}, 75), r(Shape{2, 7, 6, 4}, 76)},
      1e-4f, 1e-4f, false);
  check_parity(
      *gpu, [](auto& v) { return ops::conv(v[0], v[1], Tensor(), {.residual = v[2]}); },
      {r(Shape{2, 5, 5, 3}, 77), r(Shape{1, 1, 3, 4}, 78), r(Shape{2, 5, 5, 4}, 79)}, 1e-4f, 1e-4f, false);
  for (const std::string padding : {"valid", "same"}) {
    INFO("conv_transpose " << padding);
    check_parity(
        *gpu, [&](auto& v) { return ops::conv_transpose(v[0], v[1], v[2], {.strides = {2}, .padding = padding}); },
        {r(Shape{2, 4, 3, 2}, 50), r(Shape{3, 3, 5, 2}, 51), r(Shape{5}, 52)}, 1e-4f, 1e-4f);
  }
}

TEST_CASE("cuda: inference convolutions keep their transposed weights until the weights are written", "[cuda]") {
  Backend* gpu = cuda_or_skip();
  if (!gpu) return;
  // r() makes tensors on the default backend, which is the GPU's where there is one.
  const Tensor x_cpu = ops::to_backend(r(Shape{2, 6, 6, 8}, 70), cpu()), b_cpu = ops::to_backend(r(Shape{5}, 71), cpu());
  const Tensor x = ops::to_backend(x_cpu, *gpu), b = ops::to_backend(b_cpu, *gpu);
  Variable w(ops::to_backend(r(Shape{3, 3, 8, 5}, 72), *gpu), "kernel");
  const auto same_as_cpu = [&](const char* after) {
    INFO("after " << after);
    const Tensor expected = ops::conv(x_cpu, ops::to_backend(w.value(), cpu()), b_cpu, {.padding = "same"});
    kt::require_close(as_floats(ops::conv(x, w.value(), b, {.padding = "same"})), expected.to_vector<float>(), 1e-4f,
                      1e-4f);
  };
  const int64_t reorders = gpu->counters()["weight_reorders"], reuses = gpu->counters()["weight_reuses"];
  same_as_cpu("creation");
  same_as_cpu("nothing");
  CHECK(gpu->counters()["weight_reorders"] - reorders == 1);
  CHECK(gpu->counters()["weight_reuses"] - reuses == 1);
  w.assign(ops::to_backend(r(Shape{3, 3, 8, 5}, 73), *gpu));
  same_as_cpu("assign");
  ops::sgd_update(w, ops::to_backend(r(Shape{3, 3, 8, 5}, 74), *gpu), nullptr, {.learning_rate = 0.5f});
  same_as_cpu("an SGD update");
  CHECK(gpu->counters()["weight_reorders"] - reorders == 3);
  // A folded batch norm's scale and shift likewise, recomputed when its moving statistics move.
  Variable mean(ops::to_backend(r(Shape{5}, 80), *gpu), "moving_mean"),
      variance(ops::to_backend(r(Shape{5}, 81, 0.5f, 1.5f), *gpu), "moving_variance");
  const auto folded_as_cpu = [&](const char* after) {
    INFO("folded, after " << after);
    const auto on = [](const Variable& v) { return ops::to_backend(v.value(), cpu()); };
    const Tensor expected = ops::conv(x_cpu, on(w), b_cpu, {.padding = "same", .batch_norm = {on(mean), on(variance)}});
    kt::require_close(
        as_floats(ops::conv(x, w.value(), b, {.padding = "same", .batch_norm = {mean.value(), variance.value()}})),
        expected.to_vector<float>(), 1e-4f, 1e-4f);
  };
  folded_as_cpu("creation");
  const int64_t reuses_before = gpu->counters()["weight_reuses"];
  folded_as_cpu("nothing");
  CHECK(gpu->counters()["weight_reuses"] - reuses_before == 2);  // the kernel's layout and the fold
  mean.assign(ops::to_backend(r(Shape{5}, 82), *gpu));
  folded_as_cpu("a new moving mean");
}

TEST_CASE("cuda: pooling, batch-norm, softmax, cross-entropy and embedding match the CPU backend", "[cuda]") {
  Backend* gpu = cuda_or_skip();
  if (!gpu) return;
  for (const std::string padding : {"valid", "same"}) {
    INFO(padding);
    check_parity(*gpu,
                 [&](auto& v) {
                   return ops::max_pool(v[0], {.pool_size = {2, 3}, .strides = {2}, .padding = padding});
                 },
                 {r(Shape{2, 7, 6, 3}, 61)});
    check_parity(
        *gpu, [&](auto& v) { return ops::average_pool(v[0], {.pool_size = {3}, .strides = {2}, .padding = padding}); },
        {r(Shape{2, 7, 6, 3}, 62)});
  }
  check_parity(
      *gpu, [](auto& v) { return ops::batch_norm_training(v[0], v[1], v[2]).y; },
      {r(Shape{8, 5, 5, 4}, 63), r(Shape{4}, 64, 0.5f, 1.5f), r(Shape{4}, 65)}, 1e-4f, 1e-3f);
  check_parity(
      *gpu, [](auto& v) { return ops::batch_norm_training(v[0], v[1], v[2]).variance; },
      {r(Shape{8, 5, 5, 4}, 66, -3, 3), r(Shape{4}, 67), r(Shape{4}, 68)}, 1e-4f, 1e-4f, false);
  check_parity(
      *gpu, [](auto& v) { return ops::batch_norm_inference(v[0], v[1], v[2], v[3], ops::abs(v[4]) + 0.1f); },
      {r(Shape{6, 4}, 69), r(Shape{4}, 70), r(Shape{4}, 71), r(Shape{4}, 72), r(Shape{4}, 73)}, 1e-5f, 1e-4f, false);
  // Over 65,535 rows (a 28x28 feature map of a batch of 100): cuDNN's limits must not show.
  check_parity(
      *gpu, [](auto& v) { return ops::batch_norm_inference(v[0], v[1], v[2], v[3], ops::abs(v[4]) + 0.1f); },
      {r(Shape{100 * 28 * 28, 2}, 90), r(Shape{2}, 91), r(Shape{2}, 92), r(Shape{2}, 93), r(Shape{2}, 94)}, 1e-5f,
      1e-4f, false);
  check_parity(
      *gpu, [](auto& v) { return ops::batch_norm_training(v[0], v[1], v[2]).y; },
      {r(Shape{100 * 28 * 28, 2}, 95), r(Shape{2}, 96), r(Shape{2}, 97)}, 1e-4f, 1e-3f);
  // 40 channels (a partial second tile of 32 columns), far from zero mean: statistics in chunks of rows.
  check_parity(
      *gpu, [](auto& v) { return ops::batch_norm_training(v[0], v[1], v[2]).y; },
      {r(Shape{16, 9, 9, 40}, 98, 2, 4), r(Shape{40}, 99, 0.5f, 1.5f), r(Shape{40}, 100)}, 1e-4f, 1e-3f);
  check_parity(
      *gpu, [](auto& v) { return ops::batch_norm_training(v[0], v[1], v[2]).variance; },
      {r(Shape{16, 9, 9, 40}, 101, 2, 4), r(Shape{40}, 102), r(Shape{40}, 103)}, 1e-5f, 1e-4f, false);
  // Layer normalization (kernels.cu, a warp per row; parameter gradients in row chunks): rows shorter
  // and longer than a warp, far from zero mean, without parameters, over two axes, 70,000 rows.
  check_parity(*gpu, [](auto& v) { return ops::layer_normalization(v[0], v[1], v[2]); },
               {r(Shape{10, 7}, 104, -2, 2), r(Shape{7}, 105, 0.5f, 1.5f), r(Shape{7}, 106)}, 1e-4f, 1e-3f);
  check_parity(*gpu, [](auto& v) { return ops::layer_normalization(v[0], v[1], v[2]); },
               {r(Shape{4, 9, 300}, 107, 99, 101), r(Shape{300}, 108), r(Shape{300}, 109)}, 1e-4f, 1e-3f);
  check_parity(*gpu, [](auto& v) { return ops::layer_normalization(v[0], v[1], Tensor(), 1); },
               {r(Shape{3, 5, 8}, 110), r(Shape{5, 8}, 111)}, 1e-4f, 1e-3f);
  check_parity(*gpu, [](auto& v) { return ops::layer_normalization(v[0], Tensor(), Tensor()); },
               {r(Shape{6, 40}, 112)}, 1e-4f, 1e-3f);
  check_parity(*gpu, [](auto& v) { return ops::layer_normalization(v[0], v[1], v[2]); },
               {r(Shape{70000, 16}, 113), r(Shape{16}, 114), r(Shape{16}, 115)}, 1e-4f, 2e-3f);
  check_parity(*gpu, [](auto& v) { return ops::softmax(v[0]); }, {r(Shape{5, 7}, 74, -4, 4)});
  check_parity(*gpu, [](auto& v) { return ops::log_softmax(v[0]); }, {r(Shape{5, 1000}, 75, -4, 4)});
  const Tensor labels = Tensor::from_vector<int64_t>({3, 0, 6, 1, 2}, Shape{5});
  check_parity(
      *gpu, [&](auto& v) { return ops::softmax_cross_entropy(v[0], ops::to_backend(labels, *v[0].backend()), true); },
      {r(Shape{5, 7}, 76, -3, 3)});
  check_parity(*gpu, [](auto& v) { return ops::softmax_cross_entropy(v[0], ops::softmax(v[1]), false); },
               {r(Shape{5, 7}, 77), r(Shape{5, 7}, 78)});
  const Tensor ids = Tensor::from_vector<int32_t>({4, 0, 4, 2, 1, 4}, Shape{2, 3});
  check_parity(*gpu, [&](auto& v) { return ops::embedding(v[0], ops::to_backend(ids, *v[0].backend())); },
               {r(Shape{5, 8}, 79)});
  // Out-of-range ids are the same error on the GPU as on the CPU.
  const Tensor table = ops::to_backend(r(Shape{5, 8}, 80), *gpu);
  kt::require_throws_with<ValueError>(
      [&] {
        ops::embedding(table, ops::to_backend(Tensor::from_vector<int32_t>({1, 2, 5, 7}, Shape{4}), *gpu));
      },
      {"Embedding", "id 5 at position 2", "[0, 5)"});
  kt::require_throws_with<ValueError>(
      [&] { ops::embedding(table, ops::to_backend(Tensor::from_vector<int64_t>({-1}, Shape{1}), *gpu)); }, {"id -1"});
}

TEST_CASE("cuda: fused LSTM and GRU (cuDNN) match the CPU backend's oneDNN ones, forward and backward", "[cuda]") {
  Backend* gpu = cuda_or_skip();
  if (!gpu) return;
  REQUIRE(gpu->supports(Capability::fused_rnn));
  struct Size {
    int64_t n, t, c, u;
  };
  // The default (standard algorithm, Keras' batch-major layout as it lies), time-major packed, and a
  // persistent kernel (or the standard one where cuDNN refuses it).
  const std::vector<std::pair<const char*, const char*>> settings{{"", ""}, {"", "seq_major"}, {"static", ""}};
  for (const auto& [algo, layout] : settings)
  for (const RnnCell cell : {RnnCell::lstm, RnnCell::gru_reset_after})
    for (const Size z : {Size{5, 7, 6, 8}, Size{1, 1, 3, 4}, Size{3, 20, 2, 33}, Size{64, 30, 16, 128}}) {
      const bool lstm = cell == RnnCell::lstm;
      const int64_t g = lstm ? 4 : 3;
      INFO((lstm ? "lstm " : "gru ") << z.n << "x" << z.t << "x" << z.c << " units " << z.u << " algorithm '" << algo
                                     << "' layout '" << layout << "'");
      kt::ScopedEnv choose_algo("KERASCPP_CUDNN_RNN_ALGO", algo), choose_layout("KERASCPP_CUDNN_RNN_LAYOUT", layout);
      // Every output in one vector: the sequence, h_last, and c_last for LSTM.
      const Fn f = [&](const std::vector<Tensor>& v) {
        const ops::RnnResult res =
            ops::fused_rnn(cell, v[0], v[1], lstm ? v[2] : Tensor(), v[3], v[4], v[5], lstm ? Tensor() : v[6]);
        std::vector<Tensor> parts{ops::reshape(res.sequence, {-1}), ops::reshape(res.h, {-1})};
        if (lstm) parts.push_back(ops::reshape(res.c, {-1}));
        return ops::concatenate(parts, 0);
      };
      check_parity(*gpu, f,
                   {r(Shape{z.n, z.t, z.c}, 110), r(Shape{z.n, z.u}, 111), r(Shape{z.n, z.u}, 112),
                    r(Shape{z.c, g * z.u}, 113, -0.5f, 0.5f), r(Shape{z.u, g * z.u}, 114, -0.5f, 0.5f),
                    r(Shape{g * z.u}, 115), r(Shape{g * z.u}, 116)},
                   z.n * z.t > 100 ? 1e-4f : 1e-5f, z.n * z.t > 100 ? 1e-3f : 1e-4f);  // long sums in the large case
    }
  // cuDNN has no reset-before GRU: a clear error, and the layer keeps its step loop.
  CHECK_FALSE(gpu->supports(Capability::fused_gru_reset_before));
  const Tensor x = ops::to_backend(r(Shape{2, 3, 4}, 117), *gpu), h = ops::zeros(Shape{2, 5}, DType::float32, gpu);
  const Tensor k = ops::zeros(Shape{4, 15}, DType::float32, gpu), rk = ops::zeros(Shape{5, 15}, DType::float32, gpu),
               b = ops::zeros(Shape{15}, DType::float32, gpu);
  kt::require_throws_with<NotImplementedError>([&] { ops::fused_rnn(RnnCell::gru, x, h, Tensor(), k, rk, b, Tensor()); },
                                               {"reset_after=False"});
}

TEST_CASE("cuda: data movement, random numbers and optimizer updates match the CPU backend", "[cuda]") {
  Backend* gpu = cuda_or_skip();
  if (!gpu) return;
  check_parity(*gpu, [](auto& v) { return ops::transpose(v[0], {2, 0, 1}); }, {r(Shape{3, 4, 5}, 81)});
  check_parity(*gpu,
               [](auto& v) {
                 return ops::concatenate({v[0], v[1]}, 1);
               },
               {r(Shape{2, 3, 2}, 82), r(Shape{2, 1, 2}, 83)});
  check_parity(*gpu, [](auto& v) { return ops::split(v[0], {1, 3}, -1)[1]; }, {r(Shape{2, 3, 4}, 84)});
  check_parity(*gpu, [](auto& v) { return ops::slice(v[0], {1, 0, 2}, {1, 3, 2}); }, {r(Shape{2, 3, 4}, 85)});
  check_parity(*gpu, [](auto& v) { return ops::pad(v[0], {{{1, 0}}, {{2, 1}}}, 0.5f); }, {r(Shape{2, 3}, 86)});
  check_parity(
      *gpu,
      [](auto& v) {
        return ops::take(v[0], ops::to_backend(Tensor::from_vector<int64_t>({2, 0, 2}, Shape{3}), *v[0].backend()), 1);
      },
      {r(Shape{2, 3, 4}, 87)});
  check_parity(*gpu, [](auto& v) { return ops::broadcast_to(v[0], Shape{3, 2, 4}); }, {r(Shape{2, 1}, 88)});
  // Counter-based random numbers: uniforms and dropout masks are bit-identical across backends.
  CHECK(as_floats(ops::random_uniform(Shape{1000}, -1, 1, 5, gpu)) ==
        ops::random_uniform(Shape{1000}, -1, 1, 5, &cpu()).to_vector<float>());
  kt::require_close(as_floats(ops::random_normal(Shape{1000}, 0, 1, 6, gpu)),
                    ops::random_normal(Shape{1000}, 0, 1, 6, &cpu()).to_vector<float>(), 1e-5f, 1e-5f);
  kt::require_close(as_floats(ops::truncated_normal(Shape{1000}, 0, 1, 7, gpu)),
                    ops::truncated_normal(Shape{1000}, 0, 1, 7, &cpu()).to_vector<float>(), 1e-5f, 1e-5f);
  const Tensor ones_gpu = ops::ones(Shape{4000}, DType::float32, gpu);
  CHECK(as_floats(ops::dropout(ones_gpu, 0.3f, 8)) ==
        ops::dropout(ops::ones(Shape{4000}, DType::float32, &cpu()), 0.3f, 8).to_vector<float>());
  // Optimizer kernels: two steps each.
  for (int which = 0; which < 2; ++which) {
    std::vector<Tensor> result[2];
    Backend* backends[2] = {&cpu(), gpu};
    for (int b = 0; b < 2; ++b) {
      Variable w(ops::to_backend(r(Shape{300}, 90), *backends[b]), "w");
      Variable m(ops::zeros(Shape{300}, DType::float32, backends[b]), "m"),
          v(ops::zeros(Shape{300}, DType::float32, backends[b]), "v");
      for (int step = 1; step <= 2; ++step) {
        const Tensor g = ops::to_backend(r(Shape{300}, 90 + static_cast<uint32_t>(step)), *backends[b]);
        if (which == 0)
          ops::sgd_update(w, g, &m, {.learning_rate = 0.1f, .momentum = 0.9f, .nesterov = true});
        else
          ops::adam_update(w, g, m, v, nullptr, {.step = step});
      }
      result[b] = {w.value(), m.value()};
    }
    kt::require_close(as_floats(result[1][0]), as_floats(result[0][0]), 1e-6f, 1e-5f);
    kt::require_close(as_floats(result[1][1]), as_floats(result[0][1]), 1e-6f, 1e-5f);
  }
}

TEST_CASE("cuda: a steady training step allocates no device memory and searches no algorithms", "[cuda]") {
  Backend* gpu = cuda_or_skip();
  if (!gpu) return;
  Variable kernel(ops::random_normal(Shape{3, 3, 1, 8}, 0.f, 0.1f, 1, gpu), "kernel");
  Variable dense(ops::random_normal(Shape{8 * 13 * 13, 10}, 0.f, 0.05f, 2, gpu), "dense");
  Variable m1(ops::zeros(Shape{3, 3, 1, 8}, DType::float32, gpu), "m1"),
      v1(ops::zeros(Shape{3, 3, 1, 8}, DType::float32, gpu), "v1");
  Variable m2(ops::zeros(Shape{8 * 13 * 13, 10}, DType::float32, gpu), "m2"),
      v2(ops::zeros(Shape{8 * 13 * 13, 10}, DType::float32, gpu), "v2");
  const Tensor x = ops::random_uniform(Shape{32, 28, 28, 1}, 0, 1, 3, gpu);
  const Tensor y = ops::to_backend(ops::cast(ops::random_uniform(Shape{32}, 0, 9.99f, 4), DType::int32), *gpu);
  int64_t step = 0;
  std::vector<float> losses;
  auto train = [&] {
    GradientTape tape;
    Tensor h = ops::max_pool(ops::conv(x, kernel.value(), Tensor(), {.activation = UnaryOp::relu}));
    const Tensor loss =
        ops::mean(ops::softmax_cross_entropy(ops::linear(ops::reshape(h, {32, -1}), dense.value(), Tensor()), y, true));
    const auto g = tape.gradient(loss, std::vector<Variable*>{&kernel, &dense});
    ++step;
    ops::adam_update(kernel, g[0], m1, v1, nullptr, {.learning_rate = 0.01f, .step = step});
    ops::adam_update(dense, g[1], m2, v2, nullptr, {.learning_rate = 0.01f, .step = step});
    losses.push_back(static_cast<float>(loss.item()));
  };
  train();
  train();
  const auto before = gpu->counters();
  for (int i = 0; i < 20; ++i) train();
  const auto after = gpu->counters();
  CHECK(after.at("device_mallocs") == before.at("device_mallocs"));
  CHECK(after.at("algorithm_searches") == before.at("algorithm_searches"));
  CHECK(losses.back() < losses.front());  // it learns the random labels
}

TEST_CASE("cuda: repeated inference calls replay a recorded graph with the layer-by-layer results", "[cuda]") {
  Backend* gpu = cuda_or_skip();
  if (!gpu) return;
  if (&default_backend() != gpu) {
    kt::skip("the default backend is not cuda");
    return;
  }
  kt::ScopedEnv graphs("KERASCPP_CUDA_GRAPHS", "1");
  utils::set_random_seed(3);
  const auto model = kt::residual_model_for_graphs();
  Model& m = *model;
  auto eager = [&](const Tensor& x) {
    kt::ScopedEnv off("KERASCPP_CUDA_GRAPHS", "0");
    return m(x, false);
  };
  auto input = [&](uint64_t seed) { return ops::random_uniform(Shape{2, 12, 12, 3}, 0.f, 1.f, seed, gpu); };
  const int64_t before = gpu->counters().at("graph_replays");
  std::vector<Tensor> kept;
  for (uint64_t i = 0; i < 4; ++i) {
    INFO("call " << i);
    kept.push_back(m(input(10 + i), false));
    kt::require_close(as_floats(kept.back()), as_floats(eager(input(10 + i))), 1e-6f, 1e-5f);
  }
  // The first call runs layer by layer, the second records and replays, the rest replay.
  CHECK(gpu->counters().at("graph_replays") - before == 3);
  // Results handed out earlier are copies: later replays leave them as they were.
  kt::require_close(as_floats(kept[1]), as_floats(eager(input(11))), 1e-6f, 1e-5f);
  // New weights are read by the next replay (set_weights writes into the same storage or the
  // graph is recorded anew).
  std::vector<Tensor> w = m.get_weights();
  for (Tensor& t : w) t = t * 0.5f;
  m.set_weights(w);
  kt::require_close(as_floats(m(input(20), false)), as_floats(eager(input(20))), 1e-6f, 1e-5f);
  kt::require_close(as_floats(m(input(21), false)), as_floats(eager(input(21))), 1e-6f, 1e-5f);
  // Embedding ids are checked by a recorded kernel and read after each replay: a text model is
  // recorded too, and a bad id in a replayed call is an error naming it, as op by op.
  auto ids = layers::Input({4}, {.dtype = "int32"});
  Model text(ids, layers::Dense(2)(layers::GlobalAveragePooling1D()(layers::Embedding(7, 3)(ids))));
  const auto tokens = [&](std::vector<int32_t> v) {
    return ops::to_backend(Tensor::from_vector<int32_t>(v, Shape{2, 4}), *gpu);
  };
  const Tensor first = text(tokens({1, 2, 3, 4, 5, 6, 0, 1}), false);
  const int64_t replays = gpu->counters().at("graph_replays");
  for (int i = 0; i < 3; ++i)
    kt::require_close(as_floats(text(tokens({1, 2, 3, 4, 5, 6, 0, 1}), false)), as_floats(first), 0.f, 0.f);
  CHECK(gpu->counters().at("graph_replays") - replays == 3);
  kt::require_throws_with<ValueError>([&] { text(tokens({1, 2, 3, 4, 5, 9, 0, 1}), false); },
                                      {"id 9 at position 5", "[0, 7)"});
  kt::require_close(as_floats(text(tokens({1, 2, 3, 4, 5, 6, 0, 1}), false)), as_floats(first), 0.f, 0.f);
}

TEST_CASE("cuda: recorded training steps and fit match steps run op by op", "[cuda]") {
  Backend* gpu = cuda_or_skip();
  if (!gpu) return;
  backend::DeviceScope on(*gpu);
  // Dropout keys, an Adam step size from a decaying rate, batch norm statistics, a metric count
  // and sparse labels checked by a recorded kernel: all refreshed before or read after each replay.
  auto make = [] {
    utils::set_random_seed(5);
    auto m = std::make_shared<Sequential>(std::vector<LayerRef>{
        layers::Input({6}), layers::Dense(16, {.activation = "relu"}), layers::BatchNormalization(),
        layers::Dropout(0.3f, {.seed = 11}), layers::Dense(4, {.activation = "softmax"})});
    m->compile({.optimizer = optimizers::Adam({.learning_rate = optimizers::schedules::ExponentialDecay(0.05, 2, 0.7)}),
                .loss = "sparse_categorical_crossentropy",
                .metrics = {"accuracy"}});
    return m;
  };
  Backend& cpu = backend::get_backend("cpu");
  const Tensor x = ops::random_normal(Shape{44, 6}, 0.f, 1.f, 7, &cpu);
  const Tensor y = ops::cast(ops::floor(ops::random_uniform(Shape{44}, 0.f, 4.f, 8, &cpu)), DType::int32);
  auto fit = [&](bool graphs) {
    kt::ScopedEnv env("KERASCPP_CUDA_GRAPHS", graphs ? "1" : "0");
    auto m = make();
    const History h = m->fit(x, y, {.batch_size = 8, .epochs = 3, .verbose = 0});  // a Dataset thread meanwhile
    return std::make_pair(m, h);
  };
  const int64_t before = gpu->counters().at("graph_replays");
  const auto [recorded, h_recorded] = fit(true);
  CHECK(gpu->counters().at("graph_replays") - before == 16);  // as the CPU recorder's test counts
  const auto [eager, h_eager] = fit(false);
  for (const auto& [key, values] : h_eager.history)
    kt::require_close(std::vector<float>(h_recorded.history.at(key).begin(), h_recorded.history.at(key).end()),
                      std::vector<float>(values.begin(), values.end()), 1e-5f, 1e-4f);
  for (size_t i = 0; i < eager->get_weights().size(); ++i)
    kt::require_close(as_floats(recorded->get_weights()[i]), as_floats(eager->get_weights()[i]), 1e-5f, 1e-4f);
  // A bad label in a replayed step is an error naming it, and the step changes nothing: the
  // update is a conditional node that runs only where the recorded checks passed, and the
  // cross-entropy kernel reads nothing outside its row for the bad label.
  // Op by op, the step's checks are read once, where its update begins: the same guarantee.
  std::vector<int32_t> bad(8, 1);
  bad[3] = 4;
  for (const bool graphs : {true, false}) {
    INFO((graphs ? "recorded" : "op by op"));
    kt::ScopedEnv env("KERASCPP_CUDA_GRAPHS", graphs ? "1" : "0");
    Sequential& m = graphs ? *recorded : *eager;
    const auto state = [&] {
      std::vector<std::vector<float>> out;
      for (const Tensor& w : m.get_weights()) out.push_back(as_floats(w));
      for (Variable* v : m.optimizer()->variables()) out.push_back(as_floats(v->value()));
      return out;
    };
    const auto kept = state();
    const int64_t iterations = m.optimizer()->iterations();
    const int64_t replays = gpu->counters().at("graph_replays");
    kt::require_throws_with<ValueError>(
        [&] { m.train_on_batch(ops::slice(x, {0, 0}, {8, 6}), Tensor::from_vector(bad, Shape{8})); },
        {"label 4 at position 3", "[0, 4)"});
    CHECK(gpu->counters().at("graph_replays") - replays == (graphs ? 1 : 0));  // replayed, not run op by op
    CHECK(state() == kept);
    CHECK(m.optimizer()->iterations() == iterations);
    // The next good step applies (replayed where recorded).
    m.train_on_batch(ops::slice(x, {0, 0}, {8, 6}), ops::slice(y, {0}, {8}));
    CHECK(gpu->counters().at("graph_replays") - replays == (graphs ? 2 : 0));
    CHECK(m.optimizer()->iterations() == iterations + 1);
    CHECK(state() != kept);
  }
}

TEST_CASE("cuda: recorded mixed_float16 steps skip and take back the steps op by op skips", "[cuda][mixed]") {
  Backend* gpu = cuda_or_skip();
  if (!gpu) return;
  backend::DeviceScope on(*gpu);
  // A scale of 2^24 overflows the float16 gradients: the first steps are skipped on the device and
  // taken back on the host after the replay; the CPU recorder's twin is in test_step_graphs.cpp.
  Backend& cpu = backend::get_backend("cpu");
  const Tensor x = ops::random_normal(Shape{44, 6}, 0.f, 1.f, 17, &cpu);
  const Tensor y = ops::cast(ops::floor(ops::random_uniform(Shape{44}, 0.f, 4.f, 18, &cpu)), DType::int32);
  auto fit = [&](bool graphs) {
    kt::ScopedEnv env("KERASCPP_CUDA_GRAPHS", graphs ? "1" : "0");
    mixed_precision::PolicyScope policy("mixed_float16");
    utils::set_random_seed(4);
    auto m = std::make_shared<Sequential>(std::vector<LayerRef>{
        layers::Input({6}), layers::Dense(16, {.activation = "relu"}), layers::BatchNormalization(),
        layers::Dense(4, {.activation = "softmax", .dtype = "float32"})});
    m->compile({.optimizer = optimizers::LossScaleOptimizer(optimizers::Nadam({.learning_rate = 0.01f}),
                                                            {.initial_scale = 16777216.f, .dynamic_growth_steps = 2}),
                .loss = "sparse_categorical_crossentropy"});
    const History h = m->fit(x, y, {.batch_size = 8, .epochs = 3, .verbose = 0, .shuffle = false});
    return std::make_pair(m, h);
  };
  const int64_t before = gpu->counters().at("graph_replays");
  const auto [recorded, h_recorded] = fit(true);
  CHECK(gpu->counters().at("graph_replays") - before == 16);
  const auto [eager, h_eager] = fit(false);
  const auto& r = dynamic_cast<const optimizers::LossScaleOptimizer&>(*recorded->optimizer());
  const auto& e = dynamic_cast<const optimizers::LossScaleOptimizer&>(*eager->optimizer());
  INFO("inner steps " << e.iterations() << " of 18, scale " << e.loss_scale());
  CHECK(e.iterations() < 18);
  CHECK(r.iterations() == e.iterations());
  CHECK(r.loss_scale() == e.loss_scale());
  CHECK(r.step_counter() == e.step_counter());
  kt::require_close(std::vector<float>(h_recorded.history.at("loss").begin(), h_recorded.history.at("loss").end()),
                    std::vector<float>(h_eager.history.at("loss").begin(), h_eager.history.at("loss").end()), 1e-3f,
                    1e-3f);
  for (size_t i = 0; i < eager->get_weights().size(); ++i)
    kt::require_close(as_floats(recorded->get_weights()[i]), as_floats(eager->get_weights()[i]), 1e-3f, 1e-3f);
}
