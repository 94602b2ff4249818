#pragma once
// Direct oneDNN calls, the yardstick the CPU backend is measured against.
#include <cstdint>
#include <functional>

namespace bench {

/// C = A B with dnnl_sgemm, row-major (m, k) x (k, n).
void onednn_sgemm(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c);

/// One forward + backward-data + backward-weights step of a 2-d convolution written directly with
/// oneDNN primitives (NHWC activations, weights kept in the primitive's preferred layout), as an
/// expert would. Returns a callable that runs the step once.
std::function<void()> onednn_conv_step(int64_t n, int64_t h, int64_t w, int64_t c, int64_t f, int64_t k);

}  // namespace bench
