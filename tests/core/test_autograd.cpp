#include "tests/support/test_support.h"

using namespace keras;

TEST_CASE("GradientTape watches trainable variables and not frozen ones", "[cpu][autograd]") {
  Variable w(Tensor::from_vector<float>({1, 2, 3}, Shape{3}), "w");
  Variable frozen(Tensor::from_vector<float>({4, 5, 6}, Shape{3}), "frozen", false);
  GradientTape tape;
  // loss = sum(w^2 * frozen): d/dw = 2 w frozen.
  const Tensor loss = ops::sum(ops::square(w.value()) * frozen.value());
  const auto g = tape.gradient(loss, std::vector<Variable*>{&w, &frozen});
  CHECK(g[0].to_vector<float>() == std::vector<float>{8, 20, 36});
  CHECK(g[1].to_vector<float>() ==
        std::vector<float>{0, 0, 0});  // not watched: zeros, as TF's unconnected_gradients="zero"
}

TEST_CASE("nothing is recorded outside a tape or inside a no-gradient scope", "[cpu][autograd]") {
  Variable w(Tensor::from_vector<float>({2}, Shape{1}), "w");
  const Tensor outside = ops::square(w.value());
  CHECK_FALSE(outside.impl()->autograd.grad_fn);
  GradientTape tape;
  Tensor inside;
  {
    NoGradScope no_grad;
    inside = ops::square(w.value());
  }
  CHECK_FALSE(inside.impl()->autograd.grad_fn);
  const Tensor recorded = ops::square(w.value());
  CHECK(recorded.impl()->autograd.grad_fn);
  tape.stop_recording();
  CHECK_FALSE(ops::square(w.value()).impl()->autograd.grad_fn);
}

TEST_CASE("gradients accumulate over repeated uses and reach watched and intermediate tensors", "[cpu][autograd]") {
  Tensor x = Tensor::from_vector<float>({3}, Shape{1});
  GradientTape tape;
  tape.watch(x);
  const Tensor y = x * x;      // 9
  const Tensor z = y * x + y;  // x^3 + x^2 = 36
  const auto g = tape.gradient(z, {x, y});
  CHECK(g[0].item() == Approx(3 * 9 + 2 * 3));  // 3x^2 + 2x
  CHECK(g[1].item() == Approx(3 + 1));          // dz/dy = x + 1
  // A non-scalar target is summed, as TensorFlow does.
  GradientTape tape2;
  tape2.watch(x);
  const Tensor v = ops::concatenate({x, x * 2.f});
  CHECK(tape2.gradient(v, {x})[0].item() == Approx(3));
}

TEST_CASE("a custom training loop with GradientTape fits a linear model", "[cpu][autograd]") {
  // y = 3 x0 - 2 x1 + 0.5; plain gradient descent from zeros must get close.
  const Tensor x = kt::random_tensor(Shape{64, 2}, 5);
  const Tensor true_w = Tensor::from_vector<float>({3, -2}, Shape{2, 1});
  const Tensor y = ops::matmul(x, true_w) + 0.5f;
  Variable w(ops::zeros(Shape{2, 1}), "kernel"), b(ops::zeros(Shape{1}), "bias");
  float first = 0, last = 0;
  for (int step = 0; step < 200; ++step) {
    GradientTape tape;
    const Tensor loss = ops::mean(ops::square(ops::linear(x, w.value(), b.value()) - y));
    const auto grads = tape.gradient(loss, std::vector<Variable*>{&w, &b});
    ops::sgd_update(w, grads[0], nullptr, {.learning_rate = 0.3f});
    ops::sgd_update(b, grads[1], nullptr, {.learning_rate = 0.3f});
    (step == 0 ? first : last) = static_cast<float>(loss.item());
  }
  CHECK(last < first * 1e-4f);
  kt::require_close(w.value().to_vector<float>(), {3, -2}, 1e-2f, 0);
  kt::require_close(b.value().to_vector<float>(), {0.5f}, 1e-2f, 0);
}

TEST_CASE("GradientTape refuses integer targets and Variable checks assignments", "[cpu][autograd]") {
  GradientTape tape;
  kt::require_throws_with<TypeError>([&] { tape.gradient(ops::zeros(Shape{1}, DType::int32), std::vector<Tensor>{}); },
                                     {"floating-point", "int32"});
  Variable v(ops::zeros(Shape{2, 2}), "v");
  kt::require_throws_with<ShapeError>([&] { v.assign(ops::zeros(Shape{4})); }, {"'v'", "(4,)", "(2, 2)"});
  v.assign(ops::ones(Shape{2, 2}));
  CHECK(v.value().to_vector<float>() == std::vector<float>{1, 1, 1, 1});
  kt::require_throws_with<TypeError>([] { ops::zeros(Shape{2}, DType::int32).set_requires_grad(true); },
                                     {"floating-point"});
}

TEST_CASE("gradient starts from a given output gradient, as TF's output_gradients", "[cpu][autograd]") {
  Tensor x = Tensor::from_vector<float>({1, 2}, Shape{2});
  GradientTape tape(/*persistent=*/true);
  tape.watch(x);
  const Tensor y = ops::square(x);
  const auto g = tape.gradient(y, {x}, Tensor::from_vector<float>({10, 100}, Shape{2}));
  CHECK(g[0].to_vector<float>() == std::vector<float>{20, 400});
  kt::require_throws_with<ShapeError>([&] { tape.gradient(y, {x}, ops::ones(Shape{3})); }, {"output_gradient", "(3,)"});
}

namespace {
// y_k = sin(y_{k-1}) from y_0 = x, `n` times: each op keeps its input for its backward pass.
Tensor sine_chain(const Tensor& x, int n) {
  Tensor y = x;
  for (int k = 0; k < n; ++k) y = ops::sin(y);
  return y;
}
// d sin^n(x) / dx = prod_k cos(y_{k-1}), in double.
std::vector<double> sine_chain_grad(const std::vector<float>& x, int n) {
  std::vector<double> g(x.size(), 1.0);
  for (size_t i = 0; i < x.size(); ++i) {
    double y = x[i];
    for (int k = 0; k < n; ++k) {
      g[i] *= std::cos(y);
      y = std::sin(y);
    }
  }
  return g;
}
}  // namespace

TEST_CASE("a tape computes its gradients once and frees what each op kept as its backward pass runs",
          "[cpu][autograd]") {
  constexpr int kOps = 8;
  constexpr int64_t kN = int64_t{1} << 20;  // 4 MiB per float32 tensor: a whole allocator bucket
  constexpr int64_t kBytes = kN * 4;
  Tensor x = ops::random_uniform(Shape{kN}, -2.f, 2.f, 3);
  Backend& be = *x.backend();
  const std::vector<double> want = sine_chain_grad(x.to_vector<float>(), kOps);
  auto check_grad = [&](const Tensor& g) {
    const std::vector<float> got = g.to_vector<float>();
    for (int64_t i = 0; i < kN; i += 4099) REQUIRE(got[i] == Approx(want[i]).margin(1e-6));
  };

  SECTION("not persistent") {
    const int64_t before = be.memory_info().current;
    GradientTape tape;
    tape.watch(x);
    const Tensor z = sine_chain(x, kOps);
    // z and the inputs of ops 2..8 (op 1 keeps x, which was there before).
    const int64_t forward = be.memory_info().current - before;
    CHECK(forward >= kOps * kBytes);
    backend::reset_memory_stats();  // x is on the default backend
    const Tensor g = tape.gradient(z, {x})[0];
    check_grad(g);
    // Each op's kept input goes once it has run: at most a few gradients are alive besides what
    // the forward pass kept (all of them at once would be kOps more tensors).
    CHECK(backend::get_memory_info().peak - before - forward <= 3 * kBytes);
    CHECK(backend::get_memory_info().peak == be.memory_info().peak);
    // With z still held, only z and the gradient remain.
    CHECK(be.memory_info().current - before <= 2 * kBytes + 4096);
    kt::require_throws_with<ValueError>([&] { tape.gradient(z, {x}); }, {"once", "persistent"});
  }
  SECTION("persistent") {
    const int64_t before = be.memory_info().current;
    GradientTape tape(/*persistent=*/true);
    tape.watch(x);
    const Tensor z = sine_chain(x, kOps);
    check_grad(tape.gradient(z, {x})[0]);
    CHECK(be.memory_info().current - before >= kOps * kBytes);  // everything is kept for another call
    check_grad(tape.gradient(z, {x})[0]);
  }
}

TEST_CASE("nested tapes: the inner tape's gradient leaves what the outer one recorded with it", "[cpu][autograd]") {
  Tensor x = Tensor::from_vector<float>({0.5f, -1.f}, Shape{2});
  const std::vector<double> want = sine_chain_grad({0.5f, -1.f}, 3);
  {
    GradientTape outer;
    outer.watch(x);
    Tensor z;
    {
      GradientTape inner;
      inner.watch(x);
      z = sine_chain(x, 3);
      kt::require_close(inner.gradient(z, {x})[0].to_vector<float>(), {float(want[0]), float(want[1])}, 1e-6f, 0);
    }
    kt::require_close(outer.gradient(z, {x})[0].to_vector<float>(), {float(want[0]), float(want[1])}, 1e-6f, 0);
  }

  // Ops only a finished tape recorded are constants to a later tape, as in TensorFlow: the
  // gradient through them is zero.
  GradientTape first;
  first.watch(x);
  const Tensor y = ops::sin(x);
  first.gradient(y, {x});
  GradientTape second;
  const Tensor w = ops::square(y);
  CHECK(second.gradient(w, {x})[0].to_vector<float>() == std::vector<float>{0, 0});
}

TEST_CASE("ops whose gradient needs no values keep none: scaling, sums, differences, means", "[cpu][autograd]") {
  constexpr int64_t kN = int64_t{1} << 20;
  Tensor x = ops::random_uniform(Shape{kN}, -1.f, 1.f, 5);
  Backend& be = *x.backend();
  GradientTape tape;
  tape.watch(x);
  const int64_t before = be.memory_info().current;
  // 2x + x - x/4: scalings, a sum and a difference, then a mean; none of their rules reads a value.
  const Tensor loss = ops::mean((x * 2.f + x) - x * 0.25f);
  CHECK(be.memory_info().current - before < 4096);  // the scalar loss; no 4 MiB intermediate
  const std::vector<float> g = tape.gradient(loss, {x})[0].to_vector<float>();
  REQUIRE(g.size() == static_cast<size_t>(kN));
  for (int64_t i = 0; i < kN; i += 5003) REQUIRE(g[i] == Approx(2.75 / kN));
}
