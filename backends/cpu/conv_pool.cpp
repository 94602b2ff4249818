// Conv2D -> MaxPooling2D in one pass, for inference (Capability::fused_conv_max_pool).
//
// A first layer on grey or RGB images has few input channels: oneDNN's convolution is then bound
// by writing its output, and the pooling reads it all back (conv 1->32 and its pooling were 30% of
// fmnist_cnn's predict). On AVX-512 CPUs each pooled output's 2x2 window of convolution outputs is
// computed in registers, 16 filters at a time, and only the maximum is written. Every other shape
// runs oneDNN's convolution, then its pooling.
#include <algorithm>
#include <limits>

#include "backends/cpu/cpu_backend.h"

#if defined(__x86_64__)
#include <immintrin.h>
#if !defined(__clang__)
// GCC 12 takes _mm512_max_ps's deliberately undefined pass-through operand for an uninitialized read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

namespace keras::cpu {
namespace {

constexpr int64_t kMaxChannels = 4;  // beyond this, oneDNN's kernels are compute-bound and faster

struct Geometry {
  int64_t n, h, w, ci;  // the (padded) input
  int64_t kh, kw, f;    // the kernel
  int64_t ph, pw;       // pooled output size
  bool relu;
};

#if defined(__x86_64__)
// One row of pooled outputs: image n, pooled row oy, all filters.
// KH, KW, CI > 0: known at compile time (the taps unroll and the kernel's 16 filters stay in
// registers across the row); 0: read from g.
template <int KH, int KW, int CI>
__attribute__((target("avx512f"))) void conv_max_pool_row(const float* x, const float* w, const float* bias, float* y,
                                                         const Geometry& g, int64_t n, int64_t oy) {
  const int64_t kh = KH ? KH : g.kh, kw = KW ? KW : g.kw, ci = CI ? CI : g.ci;
  const int64_t row = g.w * ci;
  constexpr int kHeld = KH * KW * CI;  // weights kept in registers (0: loaded per tap)
  const float* top = x + (n * g.h + oy * 2) * row;  // the first input row of this output row
  float* out = y + (n * g.ph + oy) * g.pw * g.f;
  for (int64_t f0 = 0; f0 < g.f; f0 += 16) {
    const __m512 b = bias ? _mm512_loadu_ps(bias + f0) : _mm512_set1_ps(0.f);
    __m512 held[kHeld > 0 ? kHeld : 1];
    if constexpr (kHeld > 0)
      for (int t = 0; t < kHeld; ++t) held[t] = _mm512_loadu_ps(w + t * g.f + f0);
    for (int64_t ox = 0; ox < g.pw; ++ox) {
      const float* p = top + ox * 2 * ci;
      // The four convolution outputs (2y, 2x), (2y, 2x+1), (2y+1, 2x), (2y+1, 2x+1).
      __m512 a0 = b, a1 = b, a2 = b, a3 = b;
      int64_t t = 0;
      for (int64_t ky = 0; ky < kh; ++ky) {
        const float* q = p + ky * row;
        for (int64_t k = 0; k < kw * ci; ++k, ++t) {
          const __m512 wv = kHeld > 0 ? held[t] : _mm512_loadu_ps(w + t * g.f + f0);
          a0 = _mm512_fmadd_ps(_mm512_set1_ps(q[k]), wv, a0);
          a1 = _mm512_fmadd_ps(_mm512_set1_ps(q[k + ci]), wv, a1);
          a2 = _mm512_fmadd_ps(_mm512_set1_ps(q[k + row]), wv, a2);
          a3 = _mm512_fmadd_ps(_mm512_set1_ps(q[k + row + ci]), wv, a3);
        }
      }
      __m512 m = _mm512_max_ps(_mm512_max_ps(a0, a1), _mm512_max_ps(a2, a3));
      if (g.relu) m = _mm512_max_ps(m, _mm512_set1_ps(0.f));  // relu commutes with max
      _mm512_storeu_ps(out + ox * g.f + f0, m);
    }
  }
}

// The parallel loop stays outside the AVX-512 function: clang's outlined OpenMP body would not
// inherit its target attribute.
template <int KH, int KW, int CI>
void conv_max_pool_2x2(const float* x, const float* w, const float* bias, float* y, const Geometry& g) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t oy = 0; oy < g.ph; ++oy) conv_max_pool_row<KH, KW, CI>(x, w, bias, y, g, n, oy);
}

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}
#else
bool has_avx512() { return false; }
#endif

}  // namespace

void CpuBackend::conv_max_pool_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y,
                                       const ConvAttrs& conv, const PoolAttrs& pool) {
  const int64_t ci = x.dim(3), f = w.dim(3);
  const bool pool_2x2 = pool.window == std::array<int64_t, 2>{2, 2} && pool.strides == std::array<int64_t, 2>{2, 2} &&
                        pool.pad_begin == std::array<int64_t, 2>{0, 0} && pool.pad_end == std::array<int64_t, 2>{0, 0};
  const bool fast = has_avx512() && x.dtype() == DType::float32 && pool.mode == PoolMode::max && pool_2x2 &&
                    conv.groups == 1 && conv.strides == std::array<int64_t, 2>{1, 1} &&
                    conv.dilations == std::array<int64_t, 2>{1, 1} && ci <= kMaxChannels && f % 16 == 0 &&
                    (conv.activation == UnaryOp::relu || conv.activation == UnaryOp::identity) &&
                    !conv.batch_norm.defined();
  if (!fast) {
    // oneDNN's two primitives; the convolution's output lives only until the pooling has read it.
    const int64_t oh = x.dim(1) + conv.pad_begin[0] + conv.pad_end[0] - ((w.dim(0) - 1) * conv.dilations[0] + 1);
    const int64_t ow = x.dim(2) + conv.pad_begin[1] + conv.pad_end[1] - ((w.dim(1) - 1) * conv.dilations[1] + 1);
    Tensor z = Tensor::empty(Shape{x.dim(0), oh / conv.strides[0] + 1, ow / conv.strides[1] + 1, f}, x.dtype(), this);
    ConvAttrs inference = conv;
    inference.training = false;
    // A Winograd convolution leaves its output in oneDNN's blocked layout; the pooling reads it
    // there, and only the pooled quarter is reordered back.
    BlockedOutput blocked;
    conv_common(false, kForward, x, w, bias, z, nullptr, inference, &blocked);
    if (blocked.storage)
      pool_blocked(blocked, y, pool);
    else
      pool_forward(z, y, nullptr, pool);
    return;
  }
#if defined(__x86_64__)
  fused_conv_max_pools_.fetch_add(1, std::memory_order_relaxed);
  // "same" padding: a zero-padded copy of the (small: few channels) input.
  Tensor padded = x;
  if (conv.pad_begin != std::array<int64_t, 2>{0, 0} || conv.pad_end != std::array<int64_t, 2>{0, 0}) {
    padded = Tensor::empty(Shape{x.dim(0), x.dim(1) + conv.pad_begin[0] + conv.pad_end[0],
                                 x.dim(2) + conv.pad_begin[1] + conv.pad_end[1], ci},
                           x.dtype(), this);
    pad(x, {{{0, 0}}, {{conv.pad_begin[0], conv.pad_end[0]}}, {{conv.pad_begin[1], conv.pad_end[1]}}, {{0, 0}}},
        Scalar(0.f), padded);
  }
  const Geometry g{x.dim(0), padded.dim(1), padded.dim(2), ci,   w.dim(0),
                   w.dim(1), f,              y.dim(1),      y.dim(2), conv.activation == UnaryOp::relu};
  const auto* xp = static_cast<const float*>(padded.raw_data());
  const auto* wp = static_cast<const float*>(w.raw_data());
  const float* bp = bias ? static_cast<const float*>(bias->raw_data()) : nullptr;
  auto* yp = static_cast<float*>(y.raw_data());
  if (g.kh == 3 && g.kw == 3 && ci == 1)
    conv_max_pool_2x2<3, 3, 1>(xp, wp, bp, yp, g);
  else if (g.kh == 3 && g.kw == 3 && ci == 3)
    conv_max_pool_2x2<3, 3, 3>(xp, wp, bp, yp, g);
  else if (g.kh == 5 && g.kw == 5 && ci == 1)
    conv_max_pool_2x2<5, 5, 1>(xp, wp, bp, yp, g);
  else
    conv_max_pool_2x2<0, 0, 0>(xp, wp, bp, yp, g);
#endif
}

}  // namespace keras::cpu
