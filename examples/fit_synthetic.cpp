// The main job until the Keras frontend lands: fits a two-layer network to a synthetic
// classification problem with a custom GradientTape loop and Adam, printing the loss as it falls.
#include <cmath>
#include <cstdio>

#include "kerascpp.h"

using namespace keras;

int main() {
  utils::set_random_seed(1337);
  std::printf("kerascpp: backend '%s'\n", backend::backend_name().c_str());

  // Three classes: the label is which of three fixed directions a point's projection favours.
  const int64_t n = 4096, features = 16, hidden = 64, classes = 3;
  const Tensor x = ops::random_normal(Shape{n, features}, 0.f, 1.f, 1);
  const Tensor directions = ops::random_normal(Shape{features, classes}, 0.f, 1.f, 2);
  const Tensor y = ops::argmax(ops::matmul(ops::tanh(x), directions), -1);

  // Glorot-uniform weights, as Keras' Dense layers start.
  auto glorot = [](int64_t in, int64_t out, uint64_t seed) {
    const float limit = std::sqrt(6.f / static_cast<float>(in + out));
    return ops::random_uniform(Shape{in, out}, -limit, limit, seed);
  };
  std::vector<Variable> params = {
      Variable(glorot(features, hidden, 3), "dense/kernel"), Variable(ops::zeros(Shape{hidden}), "dense/bias"),
      Variable(glorot(hidden, classes, 4), "dense_1/kernel"), Variable(ops::zeros(Shape{classes}), "dense_1/bias")};
  std::vector<Variable> m, v;
  std::vector<Variable*> trainable;
  for (auto& p : params) {
    m.emplace_back(ops::zeros_like(p.value()), p.name() + "/m", false);
    v.emplace_back(ops::zeros_like(p.value()), p.name() + "/v", false);
    trainable.push_back(&p);
  }

  const int64_t batch = 128, steps_per_epoch = n / batch;
  int64_t step = 0;
  for (int epoch = 1; epoch <= 10; ++epoch) {
    double total = 0;
    for (int64_t b = 0; b < steps_per_epoch; ++b) {
      const Tensor xb = ops::slice(x, {b * batch, 0}, {batch, features});
      const Tensor yb = ops::slice(y, {b * batch}, {batch});
      GradientTape tape;
      const Tensor h = ops::linear(xb, params[0].value(), params[1].value(), UnaryOp::relu);
      const Tensor logits = ops::linear(h, params[2].value(), params[3].value());
      const Tensor loss = ops::mean(ops::softmax_cross_entropy(logits, yb, true));
      const auto grads = tape.gradient(loss, trainable);
      ++step;
      for (size_t i = 0; i < params.size(); ++i)
        ops::adam_update(params[i], grads[i], m[i], v[i], nullptr, {.step = step});
      total += loss.item();
    }
    NoGradScope no_grad;
    const Tensor logits = ops::linear(ops::linear(x, params[0].value(), params[1].value(), UnaryOp::relu),
                                      params[2].value(), params[3].value());
    const double accuracy = ops::mean(ops::cast(ops::equal(ops::argmax(logits, -1), y), DType::float32)).item();
    std::printf("epoch %2d  loss %.4f  accuracy %.4f\n", epoch, total / static_cast<double>(steps_per_epoch), accuracy);
  }
  return 0;
}
