// GPU benchmark, meant to run beside ../shared/bench/torch_gpu_ref.py on the same card: the
// fmnist_cnn training step written with keras::ops (the frontend's layers come later), a large
// matmul and the conv2d forward+backward of bench_core. Prints one JSON line per case.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#include "kerascpp.h"

using namespace keras;
using Clock = std::chrono::steady_clock;

namespace {
double median_step(Backend& be, const std::function<void()>& step, int warm, int n) {
  for (int i = 0; i < warm; ++i) step();
  be.synchronize();
  std::vector<double> t;
  for (int i = 0; i < n; ++i) {
    const auto start = Clock::now();
    step();
    be.synchronize();
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

Tensor glorot(const Shape& s, int64_t fan_in, int64_t fan_out, uint64_t seed, Backend* be) {
  const float limit = std::sqrt(6.f / static_cast<float>(fan_in + fan_out));
  return ops::random_uniform(s, -limit, limit, seed, be);
}
}  // namespace

int main(int argc, char** argv) {
  Backend& be = backend::get_backend(argc > 1 ? argv[1] : "auto");
  std::printf("{\"backend\": \"%s\", \"tf32\": %s}\n", be.name().c_str(),
              tensor_float_32_execution_enabled() ? "true" : "false");

  {  // fmnist_cnn: Conv2D(32,3,relu) MaxPool Conv2D(64,3,relu) MaxPool Flatten Dropout(0.5) Dense(10); Adam; batch 128
    const int64_t batch = 128;
    std::vector<Variable> w;
    w.emplace_back(glorot(Shape{3, 3, 1, 32}, 9, 288, 1, &be), "conv2d/kernel");
    w.emplace_back(ops::zeros(Shape{32}, DType::float32, &be), "conv2d/bias");
    w.emplace_back(glorot(Shape{3, 3, 32, 64}, 288, 576, 2, &be), "conv2d_1/kernel");
    w.emplace_back(ops::zeros(Shape{64}, DType::float32, &be), "conv2d_1/bias");
    w.emplace_back(glorot(Shape{1600, 10}, 1600, 10, 3, &be), "dense/kernel");
    w.emplace_back(ops::zeros(Shape{10}, DType::float32, &be), "dense/bias");
    std::vector<Variable> m, v;
    std::vector<Variable*> trainable;
    for (auto& p : w) {
      m.emplace_back(ops::zeros(p.shape(), DType::float32, &be), p.name() + "/m", false);
      v.emplace_back(ops::zeros(p.shape(), DType::float32, &be), p.name() + "/v", false);
      trainable.push_back(&p);
    }
    const Tensor x = ops::random_uniform(Shape{batch, 28, 28, 1}, 0, 1, 4, &be);
    const Tensor y = ops::to_backend(ops::cast(ops::random_uniform(Shape{batch}, 0, 9.99f, 5), DType::int32), be);
    int64_t step = 0;
    auto train = [&] {
      GradientTape tape;
      Tensor h = ops::conv(x, w[0].value(), w[1].value(), {.activation = UnaryOp::relu});
      h = ops::max_pool(h, {.pool_size = {2}});
      h = ops::conv(h, w[2].value(), w[3].value(), {.activation = UnaryOp::relu});
      h = ops::max_pool(h, {.pool_size = {2}});
      h = ops::dropout(ops::reshape(h, {batch, -1}), 0.5f);
      const Tensor loss = ops::mean(ops::softmax_cross_entropy(ops::linear(h, w[4].value(), w[5].value()), y, true));
      const auto g = tape.gradient(loss, trainable);
      ++step;
      for (size_t i = 0; i < w.size(); ++i) ops::adam_update(w[i], g[i], m[i], v[i], nullptr, {.step = step});
    };
    const double t = median_step(be, train, 10, 50);
    std::printf("{\"model\": \"fmnist_cnn\", \"batch\": %ld, \"train_samples_per_s\": %.1f, \"step_ms\": %.3f}\n",
                static_cast<long>(batch), batch / t, t * 1e3);
  }
  {  // matmul 4096^3
    const int64_t s = be.device().type == DeviceType::cuda ? 4096 : 1024;
    const Tensor a = ops::random_uniform(Shape{s, s}, -1, 1, 6, &be),
                 b = ops::random_uniform(Shape{s, s}, -1, 1, 7, &be);
    const double t = median_step(
        be, [&] { ops::matmul(a, b); }, 3, 20);
    std::printf("{\"case\": \"matmul\", \"size\": %ld, \"tflops\": %.2f}\n", static_cast<long>(s),
                2.0 * s * s * s / t / 1e12);
  }
  {  // conv2d fwd+bwd (128, 28, 28, 32) -> 64, 3x3
    const Tensor xin = ops::random_uniform(Shape{128, 28, 28, 32}, -1, 1, 8, &be);
    Variable k(ops::random_uniform(Shape{3, 3, 32, 64}, -0.1f, 0.1f, 9, &be), "k");
    Variable b(ops::zeros(Shape{64}, DType::float32, &be), "b");
    const Tensor up = ops::random_uniform(Shape{128, 26, 26, 64}, -1, 1, 10, &be);
    Tensor xw = xin;
    const double t = median_step(
        be,
        [&] {
          GradientTape tape;
          tape.watch(xw);
          tape.gradient(ops::conv(xw, k.value(), b.value()), {xw, k.value(), b.value()}, up);
        },
        3, 20);
    const double flops = 3 * 2.0 * 128 * 26 * 26 * 64 * 32 * 9;
    std::printf("{\"case\": \"conv2d_fwd_bwd\", \"step_ms\": %.3f, \"tflops\": %.2f}\n", t * 1e3, flops / t / 1e12);
  }
  return 0;
}
