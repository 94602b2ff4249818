// Reductions over any set of axes, as (outer, reduced, inner) loops.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/cpu/cpu_backend.h"

namespace keras::cpu {
namespace {

using Layout = ReduceLayout;

// In place when the reduced axes are contiguous, else through a copy with them moved last.
Layout plan(const Tensor& x, const std::vector<int64_t>& axes, Tensor& moved) {
  if (auto l = contiguous_reduce_layout(x.shape(), axes)) {
    moved = x;
    return *l;
  }
  return move_reduced_axes_last(x, axes, moved);
}

template <typename T, typename Acc, typename Init, typename Step, typename Finish>
void reduce_loop(const T* x, T* y, const Layout& l, Init init, Step step, Finish finish) {
  if (l.inner == 1) {
    parallel_for(
        l.outer,
        [&](int64_t o) {
          Acc acc = init();
          const T* row = x + o * l.r;
          for (int64_t k = 0; k < l.r; ++k) acc = step(acc, row[k]);
          y[o] = finish(acc);
        },
        std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(l.r, 1)));
    return;
  }
  // Column-wise: accumulate whole rows of `inner` values, which vectorizes.
  parallel_for(
      l.outer * l.inner,
      [&](int64_t oi) {
        const int64_t o = oi / l.inner, j = oi % l.inner;
        Acc acc = init();
        const T* base = x + o * l.r * l.inner + j;
        for (int64_t k = 0; k < l.r; ++k) acc = step(acc, base[k * l.inner]);
        y[oi] = finish(acc);
      },
      std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(l.r, 1)));
}

}  // namespace

namespace {
// bfloat16 read as float: sums in double, as float32's; each result rounded once.
void reduce_bf16(ReduceOp op, const Tensor& moved, Tensor& y, const Layout& l) {
  const auto* px = static_cast<const BFloat16*>(moved.raw_data());
  auto* py = static_cast<BFloat16*>(y.raw_data());
  const auto out = [](double a) { return BFloat16(static_cast<float>(a)); };
  switch (op) {
    case ReduceOp::sum:
      return reduce_loop<BFloat16, double>(
          px, py, l, [] { return 0.0; }, [](double a, BFloat16 v) { return a + float(v); }, out);
    case ReduceOp::mean: {
      const double count = static_cast<double>(l.r);
      return reduce_loop<BFloat16, double>(
          px, py, l, [] { return 0.0; }, [](double a, BFloat16 v) { return a + float(v); },
          [count](double a) { return BFloat16(static_cast<float>(a / count)); });
    }
    case ReduceOp::prod:
      return reduce_loop<BFloat16, double>(
          px, py, l, [] { return 1.0; }, [](double a, BFloat16 v) { return a * float(v); }, out);
    case ReduceOp::max:
      return reduce_loop<BFloat16, float>(
          px, py, l, [] { return -INFINITY; },
          [](float a, BFloat16 v) { return (float(v) > a || v != v) ? float(v) : a; }, [](float a) { return BFloat16(a); });
    case ReduceOp::min:
      return reduce_loop<BFloat16, float>(
          px, py, l, [] { return INFINITY; },
          [](float a, BFloat16 v) { return (float(v) < a || v != v) ? float(v) : a; }, [](float a) { return BFloat16(a); });
  }
}
}  // namespace

void CpuBackend::reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& axes, Tensor& y) {
  Tensor moved;
  const Layout l = plan(x, axes, moved);
  if (x.dtype() == DType::bfloat16) return reduce_bf16(op, moved, y, l);
  dispatch_dtype(x.dtype(), "reduce", [&]<typename T>() {
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
    const T* px = static_cast<const T*>(moved.raw_data());
    T* py = static_cast<T*>(y.raw_data());
    const auto id = [](Acc a) { return static_cast<T>(a); };
    switch (op) {
      case ReduceOp::sum:
        return reduce_loop<T, Acc>(
            px, py, l, [] { return Acc(0); }, [](Acc a, T v) { return a + v; }, id);
      case ReduceOp::mean: {
        const double count = static_cast<double>(l.r);
        return reduce_loop<T, Acc>(
            px, py, l, [] { return Acc(0); }, [](Acc a, T v) { return a + v; },
            [count](Acc a) { return static_cast<T>(static_cast<double>(a) / count); });
      }
      case ReduceOp::prod:
        return reduce_loop<T, Acc>(
            px, py, l, [] { return Acc(1); }, [](Acc a, T v) { return a * v; }, id);
      case ReduceOp::max:
        return reduce_loop<T, T>(
            px, py, l, [] { return std::numeric_limits<T>::lowest(); },
            [](T a, T v) { return (v > a || v != v) ? v : a; }, [](T a) { return a; });
      case ReduceOp::min:
        return reduce_loop<T, T>(
            px, py, l, [] { return std::numeric_limits<T>::max(); }, [](T a, T v) { return (v < a || v != v) ? v : a; },
            [](T a) { return a; });
    }
  });
}

void CpuBackend::variance(const Tensor& x, const std::vector<int64_t>& axes, Tensor& y) {
  Tensor moved;
  const Layout l = plan(x, axes, moved);
  const float* px = static_cast<const float*>(moved.raw_data());
  float* py = static_cast<float*>(y.raw_data());
  parallel_for(
      l.outer * l.inner,
      [&](int64_t oi) {
        const int64_t o = oi / l.inner, j = oi % l.inner;
        const float* base = px + o * l.r * l.inner + j;
        double mean = 0;
        for (int64_t k = 0; k < l.r; ++k) mean += base[k * l.inner];
        mean /= static_cast<double>(l.r);
        double ss = 0;
        for (int64_t k = 0; k < l.r; ++k) {
          const double d = base[k * l.inner] - mean;
          ss += d * d;
        }
        py[oi] = static_cast<float>(ss / static_cast<double>(l.r));
      },
      std::max<int64_t>(1, (1 << 13) / std::max<int64_t>(l.r, 1)));
}

void CpuBackend::arg_reduce(bool is_max, const Tensor& x, int64_t axis, Tensor& y) {
  Tensor moved;
  const Layout l = plan(x, {axis}, moved);
  int64_t* py = static_cast<int64_t*>(y.raw_data());
  dispatch_dtype(x.dtype(), is_max ? "argmax" : "argmin", [&]<typename T>() {
    const T* px = static_cast<const T*>(moved.raw_data());
    parallel_for(
        l.outer * l.inner,
        [&](int64_t oi) {
          const int64_t o = oi / l.inner, j = oi % l.inner;
          const T* base = px + o * l.r * l.inner + j;
          int64_t best = 0;
          T bv = base[0];
          for (int64_t k = 1; k < l.r; ++k) {
            const T v = base[k * l.inner];
            if (bv != bv) break;  // NaN wins, as numpy
            if ((is_max ? v > bv : v < bv) || v != v) {
              bv = v;
              best = k;
            }
          }
          py[oi] = best;
        },
        1024);
  });
}

}  // namespace keras::cpu
