#include <bit>
#include <cmath>
#include <functional>
#include <limits>

#include "tests/support/test_support.h"

using namespace keras;

namespace {

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> reference;
  float lo, hi;
};

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

std::vector<UnaryCase> unary_cases() {
  const double kAlpha = 1.6732632423543772, kScale = 1.0507009873554805;
  return {
      {"negative", ops::negative, [](double x) { return -x; }, -3, 3},
      {"abs", ops::abs, [](double x) { return std::fabs(x); }, -3, 3},
      {"square", ops::square, [](double x) { return x * x; }, -3, 3},
      {"sqrt", ops::sqrt, [](double x) { return std::sqrt(x); }, 0.1f, 4},
      {"rsqrt", ops::rsqrt, [](double x) { return 1 / std::sqrt(x); }, 0.1f, 4},
      {"reciprocal", ops::reciprocal, [](double x) { return 1 / x; }, 0.5f, 4},
      {"exp", ops::exp, [](double x) { return std::exp(x); }, -3, 3},
      {"log", ops::log, [](double x) { return std::log(x); }, 0.1f, 4},
      {"log1p", ops::log1p, [](double x) { return std::log1p(x); }, -0.5f, 4},
      {"sin", ops::sin, [](double x) { return std::sin(x); }, -3, 3},
      {"cos", ops::cos, [](double x) { return std::cos(x); }, -3, 3},
      {"tanh", ops::tanh, [](double x) { return std::tanh(x); }, -3, 3},
      {"sigmoid", ops::sigmoid, sigmoid, -6, 6},
      {"relu", ops::relu, [](double x) { return x > 0 ? x : 0; }, -3, 3},
      {"relu6", ops::relu6, [](double x) { return std::min(std::max(x, 0.0), 6.0); }, -3, 9},
      {"leaky_relu", [](const Tensor& t) { return ops::leaky_relu(t); }, [](double x) { return x > 0 ? x : 0.2 * x; },
       -3, 3},
      {"elu", [](const Tensor& t) { return ops::elu(t); }, [](double x) { return x > 0 ? x : std::expm1(x); }, -3, 3},
      {"selu", ops::selu, [=](double x) { return x > 0 ? kScale * x : kScale * kAlpha * std::expm1(x); }, -3, 3},
      {"gelu_exact", [](const Tensor& t) { return ops::gelu(t, false); },
       [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, -3, 3},
      {"gelu_tanh", [](const Tensor& t) { return ops::gelu(t, true); },
       [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }, -3, 3},
      {"softplus", ops::softplus, [](double x) { return std::log1p(std::exp(x)); }, -5, 5},
      {"softsign", ops::softsign, [](double x) { return x / (1 + std::fabs(x)); }, -3, 3},
      {"silu", ops::silu, [](double x) { return x * sigmoid(x); }, -5, 5},
      {"hard_sigmoid", ops::hard_sigmoid, [](double x) { return std::min(std::max(x + 3, 0.0), 6.0) / 6; }, -5, 5},
      {"erf", ops::erf, [](double x) { return std::erf(x); }, -2, 2},
      {"floor", ops::floor, [](double x) { return std::floor(x); }, -3, 3},
      {"clip", [](const Tensor& t) { return ops::clip(t, -0.5f, 0.7f); },
       [](double x) { return std::min(std::max(x, -0.5), 0.7); }, -2, 2},
  };
}

}  // namespace

TEST_CASE("unary ops match the C library on small and large tensors", "[cpu][ops]") {
  // 37 elements take the loop path; 40,000 take oneDNN's eltwise primitive.
  for (const int64_t n : {int64_t{37}, int64_t{40000}}) {
    for (const auto& c : unary_cases()) {
      INFO(c.name << " n=" << n);
      const auto xs = kt::random_values(static_cast<size_t>(n), 7, c.lo, c.hi);
      const Tensor y = c.op(Tensor::from_vector(xs, Shape{n}));
      std::vector<float> expected(xs.size());
      for (size_t i = 0; i < xs.size(); ++i) expected[i] = static_cast<float>(c.reference(xs[i]));
      kt::require_close(y.to_vector<float>(), expected, 2e-5f, 2e-5f);
    }
  }
}

TEST_CASE("float32 tensor-scalar ops run as one op, rounded as the host rounds, signed zeros included",
          "[cpu][ops]") {
  // x + s, x * s, x - s and s - x are one UnaryOp::affine each (not a fill and a binary op): the
  // same float as the host's own arithmetic, bit for bit, and the same gradients.
  std::vector<float> xs = kt::random_values(1000, 17, -3.f, 3.f);
  xs.insert(xs.end(), {0.f, -0.f, 1e-40f, -1e-40f, 3e38f, std::numeric_limits<float>::infinity()});
  const Tensor x = Tensor::from_vector(xs, Shape{static_cast<int64_t>(xs.size())});
  auto bits = [](float v) { return std::bit_cast<uint32_t>(v); };
  struct Case {
    const char* name;
    std::function<Tensor(const Tensor&)> op;
    std::function<float(float)> host;
    float slope;
  };
  const float s = 0.3f;
  for (const Case& c : {Case{"x + s", [&](const Tensor& t) { return t + s; }, [&](float v) { return v + s; }, 1.f},
                        Case{"x * s", [&](const Tensor& t) { return t * s; }, [&](float v) { return v * s; }, s},
                        Case{"x * -2", [&](const Tensor& t) { return t * -2.f; }, [](float v) { return v * -2.f; }, -2.f},
                        Case{"x * 0", [&](const Tensor& t) { return t * 0.f; }, [](float v) { return v * 0.f; }, 0.f},
                        Case{"x - s", [&](const Tensor& t) { return t - s; }, [&](float v) { return v - s; }, 1.f},
                        Case{"s - x", [&](const Tensor& t) { return s - t; }, [&](float v) { return s - v; }, -1.f},
                        Case{"0 - x", [&](const Tensor& t) { return 0.f - t; }, [](float v) { return 0.f - v; }, -1.f}}) {
    INFO(c.name);
    const auto y = c.op(x).to_vector<float>();
    size_t mismatches = 0;
    // NaN payloads are unspecified (x86 makes 0xffc00000 of inf * 0, a GPU 0x7fffffff): any NaN matches a NaN.
    for (size_t i = 0; i < xs.size(); ++i)
      mismatches += std::isnan(c.host(xs[i])) ? !std::isnan(y[i]) : bits(y[i]) != bits(c.host(xs[i]));
    CHECK(mismatches == 0);
    Variable v(x, "v");
    GradientTape tape;
    const auto g = tape.gradient(ops::sum(c.op(v.value())), std::vector<Variable*>{&v})[0].to_vector<float>();
    CHECK(g == std::vector<float>(xs.size(), c.slope));
  }
  // Other dtypes keep the binary op: exact integers.
  const Tensor ints = Tensor::from_vector<int32_t>({1, -2, 2147483600}, Shape{3});
  CHECK(ops::add(ints, 7).to_vector<int32_t>() == std::vector<int32_t>{8, 5, 2147483607});
  CHECK(ops::multiply(ints, -1).to_vector<int32_t>() == std::vector<int32_t>{-1, 2, -2147483600});
}

TEST_CASE("binary ops broadcast like NumPy", "[cpu][ops]") {
  const Tensor a = kt::random_tensor(Shape{2, 3, 4}, 1);
  const Tensor b = kt::random_tensor(Shape{3, 1}, 2, 0.5f, 2.f);
  const auto av = a.to_vector<float>(), bv = b.to_vector<float>();
  auto ref = [&](auto f) {
    std::vector<float> out(24);
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 4; ++k)
          out[static_cast<size_t>(i * 12 + j * 4 + k)] =
              f(av[static_cast<size_t>(i * 12 + j * 4 + k)], bv[static_cast<size_t>(j)]);
    return out;
  };
  kt::require_close(ops::add(a, b).to_vector<float>(), ref([](float x, float y) { return x + y; }));
  kt::require_close(ops::subtract(a, b).to_vector<float>(), ref([](float x, float y) { return x - y; }));
  kt::require_close(ops::multiply(a, b).to_vector<float>(), ref([](float x, float y) { return x * y; }));
  kt::require_close(ops::divide(a, b).to_vector<float>(), ref([](float x, float y) { return x / y; }));
  kt::require_close(ops::maximum(a, b).to_vector<float>(), ref([](float x, float y) { return std::max(x, y); }));
  kt::require_close(ops::minimum(a, b).to_vector<float>(), ref([](float x, float y) { return std::min(x, y); }));
  kt::require_close(ops::power(ops::abs(a), b).to_vector<float>(),
                    ref([](float x, float y) { return std::pow(std::fabs(x), y); }), 1e-5f, 1e-4f);
  // Broadcasting on both sides: (4, 1) with (1, 5).
  const Tensor c = Tensor::from_vector<float>({1, 2, 3, 4}, Shape{4, 1});
  const Tensor d = Tensor::from_vector<float>({10, 20, 30, 40, 50}, Shape{1, 5});
  const auto s = ops::add(c, d);
  REQUIRE(s.shape() == Shape{4, 5});
  CHECK(s.to_vector<float>()[7] == 32.f);  // row 1 (2), column 2 (30)
  // A batch-1 tensor against a scalar.
  CHECK(ops::multiply(Tensor::from_vector<float>({3}, Shape{1, 1}), 2.f).to_vector<float>() == std::vector<float>{6});
}

TEST_CASE("comparisons return bool and integer arithmetic is exact", "[cpu][ops]") {
  const Tensor a = Tensor::from_vector<int32_t>({1, 5, -3, 7}, Shape{4});
  const Tensor b = Tensor::from_vector<int32_t>({2, 5, -4, 3}, Shape{4});
  CHECK(ops::less(a, b).dtype() == DType::bool_);
  CHECK(ops::less(a, b).to_vector<uint8_t>() == std::vector<uint8_t>{1, 0, 0, 0});
  CHECK(ops::equal(a, b).to_vector<uint8_t>() == std::vector<uint8_t>{0, 1, 0, 0});
  CHECK(ops::greater_equal(a, b).to_vector<uint8_t>() == std::vector<uint8_t>{0, 1, 1, 1});
  CHECK(ops::add(a, b).to_vector<int32_t>() == std::vector<int32_t>{3, 10, -7, 10});
  CHECK(ops::divide(a, b).to_vector<int32_t>() == std::vector<int32_t>{0, 1, 0, 2});
  // Python's floor modulo: the result takes the divisor's sign.
  CHECK(ops::binary(BinaryOp::floor_mod, Tensor::from_vector<int32_t>({-7, 7}, Shape{2}),
                    Tensor::from_vector<int32_t>({3, -3}, Shape{2}))
            .to_vector<int32_t>() == std::vector<int32_t>{2, -2});
  kt::require_throws_with<ValueError>(
      [&] {
        ops::divide(a, Tensor::from_vector<int32_t>({1, 0, 1, 1}, Shape{4}));
      },
      {"division by zero"});
  const Tensor big = Tensor::from_vector<int64_t>({int64_t{1} << 60, 3}, Shape{2});
  CHECK(ops::add(big, big).to_vector<int64_t>()[0] == int64_t{1} << 61);
  CHECK(ops::logical_and(ops::less(a, b), ops::greater(a, Tensor::from_vector<int32_t>({0, 0, 0, 0}, Shape{4})))
            .to_vector<uint8_t>() == std::vector<uint8_t>{1, 0, 0, 0});
}

TEST_CASE("elementwise ops refuse mismatched shapes and dtypes with clear messages", "[cpu][ops]") {
  const Tensor a = ops::zeros(Shape{32, 4});
  kt::require_throws_with<ShapeError>([&] { ops::add(a, ops::zeros(Shape{32, 3})); }, {"add", "(32, 4)", "(32, 3)"});
  kt::require_throws_with<TypeError>(
      [&] {
        ops::add(a, ops::zeros(Shape{32, 4}, DType::int32));
      },
      {"add", "float32", "int32"});
  kt::require_throws_with<TypeError>([] { ops::exp(ops::zeros(Shape{3}, DType::int64)); }, {"exp", "int64"});
  kt::require_throws_with<TypeError>([&] { ops::logical_and(a, a); }, {"logical_and", "bool"});
  kt::require_throws_with<ValueError>([&] { ops::clip(a, 1.f, 0.f); }, {"min_value <= max_value"});
}

TEST_CASE("where selects with broadcasting", "[cpu][ops]") {
  const Tensor cond = ops::greater(Tensor::from_vector<float>({1, -1, 2}, Shape{3}), ops::zeros(Shape{}));
  const Tensor y =
      ops::where(cond, Tensor::from_vector<float>({10, 20, 30, 40, 50, 60}, Shape{2, 3}), ops::zeros(Shape{1}));
  CHECK(y.to_vector<float>() == std::vector<float>{10, 0, 30, 40, 0, 60});
}

TEST_CASE("cast converts between every dtype, with half types rounding to nearest even", "[cpu][ops]") {
  const Tensor f = Tensor::from_vector<float>({1.5f, -2.7f, 300.f, 0.f}, Shape{4});
  CHECK(ops::cast(f, DType::int32).to_vector<int32_t>() == std::vector<int32_t>{1, -2, 300, 0});
  CHECK(ops::cast(f, DType::uint8).to_vector<uint8_t>() == std::vector<uint8_t>{1, 0, 255, 0});
  CHECK(ops::cast(f, DType::bool_).to_vector<uint8_t>() == std::vector<uint8_t>{1, 1, 1, 0});
  CHECK(ops::cast(ops::cast(f, DType::int64), DType::float32).to_vector<float>() == std::vector<float>{1, -2, 300, 0});
  // 1 + 2^-8 is halfway between two bfloat16 values: ties go to even (1.0). 1 + 3*2^-9 rounds up.
  const Tensor h = Tensor::from_vector<float>({1.00390625f, 1.005859375f, 65504.f, 1e-7f, -0.1f}, Shape{5});
  CHECK(ops::cast(ops::cast(h, DType::bfloat16), DType::float32).to_vector<float>()[0] == 1.f);
  CHECK(ops::cast(ops::cast(h, DType::bfloat16), DType::float32).to_vector<float>()[1] == 1.0078125f);
  const auto half = ops::cast(ops::cast(h, DType::float16), DType::float32).to_vector<float>();
  CHECK(half[0] == 1.00390625f);                       // exactly representable in float16
  CHECK(half[2] == 65504.f);                           // float16's largest finite value
  CHECK(std::fabs(half[3] - 1.1920929e-07f) < 1e-9f);  // a subnormal (2 * 2^-24)
  CHECK(std::fabs(half[4] - -0.099975586f) < 1e-7f);
}
