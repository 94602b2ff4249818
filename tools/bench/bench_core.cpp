// Core benchmark: matmul and conv2d forward+backward throughput against oneDNN called directly, and
// the cost of dispatching one small op with and without gradient recording. Prints a table.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "kerascpp.h"
#include "tools/bench/onednn_reference.h"

using namespace keras;
using Clock = std::chrono::steady_clock;

namespace {

// Median seconds per call over `reps` timed calls after `warmup` untimed ones.
double median_seconds(const std::function<void()>& f, int reps, int warmup = 3) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto start = Clock::now();
    f();
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main() {
  std::printf("kerascpp core benchmark, backend '%s'\n\n", backend::backend_name().c_str());
  std::printf("%-44s %12s %12s %8s\n", "case", "kerascpp", "oneDNN", "ratio");

  for (const int64_t s : {256, 1024, 2048}) {
    const Tensor a = ops::random_uniform(Shape{s, s}, -1, 1, 1), b = ops::random_uniform(Shape{s, s}, -1, 1, 2);
    std::vector<float> c(static_cast<size_t>(s * s));
    const double flops = 2.0 * static_cast<double>(s) * static_cast<double>(s) * static_cast<double>(s);
    const int reps = s >= 2048 ? 5 : 20;
    const double ours = median_seconds([&] { ops::matmul(a, b); }, reps);
    const double ref =
        median_seconds([&] { bench::onednn_sgemm(s, s, s, a.data<float>(), b.data<float>(), c.data()); }, reps);
    char name[64];
    std::snprintf(name, sizeof name, "matmul %ldx%ld (GFLOP/s)", static_cast<long>(s), static_cast<long>(s));
    std::printf("%-44s %12.1f %12.1f %8.2f\n", name, flops / ours / 1e9, flops / ref / 1e9, ours / ref);
  }

  {  // conv2d (128, 28, 28, 32) -> 64 filters 3x3, forward + backward data + backward weights
    const int64_t n = 128, h = 28, w = 28, c = 32, f = 64, k = 3;
    const Tensor x = ops::random_uniform(Shape{n, h, w, c}, -1, 1, 3);
    Variable kernel(ops::random_uniform(Shape{k, k, c, f}, -0.1f, 0.1f, 4), "kernel");
    Variable bias(ops::zeros(Shape{f}), "bias");
    const Tensor upstream = ops::random_uniform(Shape{n, h - k + 1, w - k + 1, f}, -1, 1, 5);
    Tensor xw = x;
    auto ours = [&] {
      GradientTape tape;
      tape.watch(xw);
      const Tensor y = ops::conv(xw, kernel.value(), bias.value());
      tape.gradient(y, {xw, kernel.value(), bias.value()}, upstream);
    };
    // Direct primitives: forward, backward data, backward weights (with bias).
    auto ref = bench::onednn_conv_step(n, h, w, c, f, k);
    const double flops = 3 * 2.0 * n * (h - k + 1) * (w - k + 1) * f * c * k * k;
    const double t_ours = median_seconds(ours, 7), t_ref = median_seconds(ref, 7);
    std::printf("%-44s %12.1f %12.1f %8.2f\n", "conv2d fwd+bwd 128x28x28x32->64 3x3 (GFLOP/s)", flops / t_ours / 1e9,
                flops / t_ref / 1e9, t_ours / t_ref);
    std::printf("%-44s %12.2f %12.2f\n", "conv2d fwd+bwd step (ms)", t_ours * 1e3, t_ref * 1e3);
  }

  {  // Mixed precision: a bfloat16 matmul (native where the backend has one) and an MLP's training step.
    const int64_t s = 2048;
    const Tensor a = ops::random_uniform(Shape{s, s}, -1, 1, 1), b = ops::random_uniform(Shape{s, s}, -1, 1, 2);
    const Tensor a16 = ops::cast(a, DType::bfloat16), b16 = ops::cast(b, DType::bfloat16);
    const double flops = 2.0 * static_cast<double>(s) * static_cast<double>(s) * static_cast<double>(s);
    const double f32 = median_seconds([&] { ops::matmul(a, b); }, 5), bf16 = median_seconds([&] { ops::matmul(a16, b16); }, 5);
    std::printf("\n%-44s %12s %12s %8s\n", "mixed precision", "bfloat16", "float32", "ratio");
    std::printf("%-44s %12.1f %12.1f %8.2f\n", "matmul 2048x2048 (GFLOP/s)", flops / bf16 / 1e9, flops / f32 / 1e9,
                f32 / bf16);
    auto mlp_step = [](const char* policy) {
      mixed_precision::PolicyScope scope(policy);
      Sequential m({layers::Input({784}), layers::Dense(1024, {.activation = "relu"}),
                    layers::Dense(1024, {.activation = "relu"}), layers::Dense(10, {.activation = "softmax", .dtype = "float32"})});
      m.compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy"});
      const Tensor x = ops::random_uniform(Shape{256, 784}, 0, 1, 3);
      const Tensor y = ops::cast(ops::floor(ops::random_uniform(Shape{256}, 0, 9.99f, 4)), DType::int32);
      return median_seconds([&] { m.train_on_batch(x, y); }, 15);
    };
    {  // conv2d (128, 28, 28, 32) -> 64 3x3, forward and both gradients, bfloat16 against float32
      auto step = [](DType dtype) {
        const Tensor x = ops::cast(ops::random_uniform(Shape{128, 28, 28, 32}, -1, 1, 3), dtype);
        const Tensor k = ops::cast(ops::random_uniform(Shape{3, 3, 32, 64}, -0.1f, 0.1f, 4), dtype);
        const Tensor up = ops::cast(ops::random_uniform(Shape{128, 26, 26, 64}, -1, 1, 5), dtype);
        return median_seconds(
            [&] {
              Tensor xw = x, kw = k;
              GradientTape tape;
              tape.watch(xw);
              tape.watch(kw);
              tape.gradient(ops::conv(xw, kw, Tensor()), std::vector<Tensor>{xw, kw}, up);
            },
            7);
      };
      const double c16 = step(DType::bfloat16), c32 = step(DType::float32);
      std::printf("%-44s %12.2f %12.2f %8.2f\n", "conv2d fwd+bwd 128x28x28x32->64 3x3 (ms)", c16 * 1e3, c32 * 1e3,
                  c32 / c16);
    }
    const double mlp16 = mlp_step("mixed_bfloat16"), mlp32 = mlp_step("float32");
    std::printf("%-44s %12.2f %12.2f %8.2f\n", "MLP 784-1024-1024-10 train step, batch 256 (ms)", mlp16 * 1e3,
                mlp32 * 1e3, mlp32 / mlp16);
    // A convolutional block: convolutions, batch norms, pooling and a global average, as in ResNets.
    auto cnn_step = [](const char* policy) {
      mixed_precision::PolicyScope scope(policy);
      Sequential m({layers::Input({32, 32, 16}), layers::Conv2D(32, {3, 3}, {.padding = "same"}),
                    layers::BatchNormalization(), layers::Activation("relu"), layers::MaxPooling2D({2, 2}),
                    layers::Conv2D(64, {3, 3}, {.padding = "same"}), layers::BatchNormalization(),
                    layers::Activation("relu"), layers::GlobalAveragePooling2D(),
                    layers::Dense(10, {.activation = "softmax", .dtype = "float32"})});
      m.compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy"});
      const Tensor x = ops::random_uniform(Shape{64, 32, 32, 16}, 0, 1, 6);
      const Tensor y = ops::cast(ops::floor(ops::random_uniform(Shape{64}, 0, 9.99f, 7)), DType::int32);
      return median_seconds([&] { m.train_on_batch(x, y); }, 15);
    };
    const double cnn16 = cnn_step("mixed_bfloat16"), cnn32 = cnn_step("float32");
    std::printf("%-44s %12.2f %12.2f %8.2f\n", "conv-BN-relu-pool block train step, b64 (ms)", cnn16 * 1e3,
                cnn32 * 1e3, cnn32 / cnn16);
  }

  {  // Dispatch: one small add, without and with recording.
    const Tensor a = ops::ones(Shape{16}), b = ops::ones(Shape{16});
    Variable v(ops::ones(Shape{16}), "v");
    const int iters = 200000;
    auto per_op = [&](const std::function<void()>& body) {
      return median_seconds(
                 [&] {
                   for (int i = 0; i < iters; ++i) body();
                 },
                 5, 1) /
             iters * 1e6;
    };
    const double plain = per_op([&] { ops::add(a, b); });
    GradientTape tape;
    const double recorded = per_op([&] { ops::add(v.value(), b); });
    tape.stop_recording();
    std::printf("\n%-44s %12.3f us\n", "dispatch add(16) without recording", plain);
    std::printf("%-44s %12.3f us\n", "dispatch add(16) with recording", recorded);
  }
  return 0;
}
