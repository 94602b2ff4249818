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
  GradientTape tape;
  tape.watch(x);
  const Tensor y = ops::square(x);
  const auto g = tape.gradient(y, {x}, Tensor::from_vector<float>({10, 100}, Shape{2}));
  CHECK(g[0].to_vector<float>() == std::vector<float>{20, 400});
  kt::require_throws_with<ShapeError>([&] { tape.gradient(y, {x}, ops::ones(Shape{3})); }, {"output_gradient", "(3,)"});
}
