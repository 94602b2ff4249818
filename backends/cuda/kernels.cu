#include <algorithm>
// CUDA kernels of the CUDA backend. Only plain headers are included here.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cfloat>
#include <climits>
#include <type_traits>

#include "backends/cuda/index_math.h"
#include "backends/cuda/kernels.h"
#include "core/op_kinds.h"

namespace keras::cuda::kernels {
namespace {

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65535 * 16 ? 65535 * 16 : b));
}

// Whether rows of `columns` values come in fours and every array given starts on a four-element
// boundary (null ones are absent): then the Four kernels below apply.
template <typename... P>
bool in_fours(int64_t columns, const P*... arrays) {
  return columns % 4 == 0 && ((arrays == nullptr || reinterpret_cast<uintptr_t>(arrays) % (4 * sizeof(P)) == 0) && ...);
}

#define GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)

// float16 / bfloat16 are read as float and written from float: one rounding per result.
template <typename T>
constexpr bool is_low_v = std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;
template <typename T>
constexpr bool is_float_like_v = std::is_floating_point_v<T> || is_low_v<T>;
template <typename A, typename T>
__device__ inline A load_as(T v) {
  if constexpr (is_low_v<T>)
    return static_cast<A>(static_cast<float>(v));
  else
    return static_cast<A>(v);
}
template <typename T, typename A>
__device__ inline T store_as(A v) {
  if constexpr (is_low_v<T>)
    return T(static_cast<float>(v));
  else
    return static_cast<T>(v);
}

// Elementwise math ----------------------------------------------------------------------------------

__device__ inline float unary_f(int op, float x, float alpha, float beta) {
  switch (static_cast<UnaryOp>(op)) {
    case UnaryOp::identity:
      return x;
    case UnaryOp::negative:
      return -x;
    case UnaryOp::abs:
      return fabsf(x);
    case UnaryOp::sign:
      return static_cast<float>((x > 0) - (x < 0));
    case UnaryOp::square:
      return x * x;
    case UnaryOp::sqrt:
      return sqrtf(x);
    case UnaryOp::rsqrt:
      return rsqrtf(x);
    case UnaryOp::reciprocal:
      return 1.f / x;
    case UnaryOp::exp:
      return expf(x);
    case UnaryOp::expm1:
      return expm1f(x);
    case UnaryOp::log:
      return logf(x);
    case UnaryOp::log1p:
      return log1pf(x);
    case UnaryOp::sin:
      return sinf(x);
    case UnaryOp::cos:
      return cosf(x);
    case UnaryOp::tanh:
      return tanhf(x);
    case UnaryOp::sigmoid:
      return 1.f / (1.f + expf(-x));
    case UnaryOp::relu:
      return x > 0 ? x : 0.f;
    case UnaryOp::relu6:
      return fminf(fmaxf(x, 0.f), 6.f);
    case UnaryOp::leaky_relu:
      return x > 0 ? x : alpha * x;
    case UnaryOp::elu:
      return x > 0 ? x : alpha * expm1f(x);
    case UnaryOp::selu:
      return x > 0 ? 1.0507009873554805f * x : 1.0507009873554805f * 1.6732632423543772f * expm1f(x);
    case UnaryOp::gelu:
      return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case UnaryOp::gelu_tanh:
      return 0.5f * x * (1.f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    case UnaryOp::softplus:
      return x > 20.f ? x : log1pf(expf(x));
    case UnaryOp::softsign:
      return x / (1.f + fabsf(x));
    case UnaryOp::swish:
      return x / (1.f + expf(-x));
    case UnaryOp::hard_sigmoid:
      return fminf(fmaxf(x + 3.f, 0.f), 6.f) / 6.f;
    case UnaryOp::erf:
      return erff(x);
    case UnaryOp::floor:
      return floorf(x);
    case UnaryOp::ceil:
      return ceilf(x);
    case UnaryOp::round:
      return rintf(x);
    case UnaryOp::logical_not:
      return x == 0.f ? 1.f : 0.f;
    case UnaryOp::clip:
      return fminf(fmaxf(x, alpha), beta);
    case UnaryOp::affine:
      return alpha * x + beta;
  }
  return x;
}

template <typename T>
__device__ inline T unary_i(int op, T x) {
  switch (static_cast<UnaryOp>(op)) {
    case UnaryOp::negative:
      return static_cast<T>(-x);
    case UnaryOp::abs:
      return x < 0 ? static_cast<T>(-x) : x;
    case UnaryOp::sign:
      return static_cast<T>((x > 0) - (x < 0));
    case UnaryOp::square:
      return static_cast<T>(x * x);
    case UnaryOp::logical_not:
      return static_cast<T>(!x);
    default:
      return x;
  }
}

template <typename T>
__global__ void unary_kernel(int op, const T* x, T* y, int64_t n, float alpha, float beta) {
  GRID_STRIDE(i, n) {
    if constexpr (std::is_floating_point_v<T>)
      y[i] = unary_f(op, x[i], alpha, beta);
    else
      y[i] = unary_i<T>(op, x[i]);
  }
}

template <typename T, typename R>
__device__ inline R binary_op(int op, T a, T b) {
  switch (static_cast<BinaryOp>(op)) {
    case BinaryOp::add:
      return static_cast<R>(a + b);
    case BinaryOp::subtract:
      return static_cast<R>(a - b);
    case BinaryOp::multiply:
      return static_cast<R>(a * b);
    case BinaryOp::divide:
      if constexpr (std::is_floating_point_v<T>)
        return static_cast<R>(a / b);
      else
        return static_cast<R>(b == T(0) ? T(0) : a / b);  // the host refuses zero divisors first
    case BinaryOp::maximum:
      return static_cast<R>(a > b ? a : b);
    case BinaryOp::minimum:
      return static_cast<R>(a < b ? a : b);
    case BinaryOp::power:
      return static_cast<R>(pow(static_cast<double>(a), static_cast<double>(b)));
    case BinaryOp::floor_mod:
      if constexpr (std::is_floating_point_v<T>) {
        return static_cast<R>(a - floorf(a / b) * b);
      } else {
        if (b == 0) return R(0);
        T m = static_cast<T>(a % b);
        if (m != 0 && ((m < 0) != (b < 0))) m = static_cast<T>(m + b);
        return static_cast<R>(m);
      }
    case BinaryOp::equal:
      return R(a == b);
    case BinaryOp::not_equal:
      return R(a != b);
    case BinaryOp::less:
      return R(a < b);
    case BinaryOp::less_equal:
      return R(a <= b);
    case BinaryOp::greater:
      return R(a > b);
    case BinaryOp::greater_equal:
      return R(a >= b);
    case BinaryOp::logical_and:
      return R(a && b);
    case BinaryOp::logical_or:
      return R(a || b);
    case BinaryOp::relu_grad:
      return static_cast<R>(b > T(0) ? a : T(0));
  }
  return R(0);
}

template <typename T, typename R>
__global__ void binary_kernel(int op, const T* a, const T* b, R* y, int64_t n, FastIndexer ix, bool same) {
  GRID_STRIDE(i, n) {
    const int64_t ia = same ? i : offset_of(ix, 0, i), ib = same ? i : offset_of(ix, 1, i);
    y[i] = binary_op<T, R>(op, a[ia], b[ib]);
  }
}

// bfloat16 / float16 elementwise ops: read as float, computed as float, rounded once on the way out.
template <typename T>
__global__ void unary_low_kernel(int op, const T* x, T* y, int64_t n, float alpha, float beta) {
  GRID_STRIDE(i, n) { y[i] = static_cast<T>(unary_f(op, static_cast<float>(x[i]), alpha, beta)); }
}

template <typename T, typename R>
__global__ void binary_low_kernel(int op, const T* a, const T* b, R* y, int64_t n, FastIndexer ix, bool same) {
  GRID_STRIDE(i, n) {
    const int64_t ia = same ? i : offset_of(ix, 0, i), ib = same ? i : offset_of(ix, 1, i);
    if constexpr (std::is_same_v<R, uint8_t>)
      y[i] = binary_op<float, uint8_t>(op, static_cast<float>(a[ia]), static_cast<float>(b[ib]));
    else
      y[i] = static_cast<R>(binary_op<float, float>(op, static_cast<float>(a[ia]), static_cast<float>(b[ib])));
  }
}

template <typename T>
__global__ void where_kernel(const uint8_t* c, const T* a, const T* b, T* y, int64_t n, FastIndexer ix) {
  GRID_STRIDE(i, n) { y[i] = c[offset_of(ix, 0, i)] ? a[offset_of(ix, 1, i)] : b[offset_of(ix, 2, i)]; }
}

template <typename F>
void dispatch(int code, F&& f) {
  switch (code) {
    case f32:
      f(float{});
      break;
    case i32:
      f(int32_t{});
      break;
    case i64:
      f(int64_t{});
      break;
    default:
      f(uint8_t{});
      break;  // u8 and bool
  }
}

// The floating dtypes: float32, float16, bfloat16.
template <typename F>
void dispatch_float(int code, F&& f) {
  if (code == f16)
    f(__half{});
  else if (code == bf16)
    f(__nv_bfloat16{});
  else
    f(float{});
}

// Every dtype, float16 and bfloat16 included.
template <typename F>
void dispatch_all(int code, F&& f) {
  if (code == f16 || code == bf16)
    dispatch_float(code, f);
  else
    dispatch(code, f);
}

// Casts go through double for exactness on integers.
__device__ inline double read_as_double(int code, const void* x, int64_t i) {
  switch (code) {
    case f32:
      return static_cast<const float*>(x)[i];
    case f16:
      return __half2float(static_cast<const __half*>(x)[i]);
    case bf16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(x)[i]);
    case i32:
      return static_cast<const int32_t*>(x)[i];
    case i64:
      return static_cast<double>(static_cast<const int64_t*>(x)[i]);
    case u8:
      return static_cast<const uint8_t*>(x)[i];
    default:
      return static_cast<const uint8_t*>(x)[i] != 0;
  }
}

__global__ void cast_kernel(int from, int to, const void* x, void* y, int64_t n) {
  GRID_STRIDE(i, n) {
    if (from == i64 && to == i32) {
      static_cast<int32_t*>(y)[i] = static_cast<int32_t>(static_cast<const int64_t*>(x)[i]);
      continue;
    }
    if (from == i32 && to == i64) {
      static_cast<int64_t*>(y)[i] = static_cast<const int32_t*>(x)[i];
      continue;
    }
    const double v = read_as_double(from, x, i);
    const bool finite = isfinite(v);
    switch (to) {
      case f32:
        static_cast<float*>(y)[i] = static_cast<float>(v);
        break;
      case f16:
        static_cast<__half*>(y)[i] = __float2half_rn(static_cast<float>(v));
        break;
      case bf16:
        static_cast<__nv_bfloat16*>(y)[i] = __float2bfloat16_rn(static_cast<float>(v));
        break;
      case i32:
        static_cast<int32_t*>(y)[i] = finite ? static_cast<int32_t>(fmin(fmax(v, -2147483648.0), 2147483647.0)) : 0;
        break;
      case i64:
        static_cast<int64_t*>(y)[i] = finite ? static_cast<int64_t>(fmin(fmax(v, -9.2e18), 9.2e18)) : 0;
        break;
      case u8:
        static_cast<uint8_t*>(y)[i] = finite ? static_cast<uint8_t>(fmin(fmax(v, 0.0), 255.0)) : 0;
        break;
      default:
        static_cast<uint8_t*>(y)[i] = v != 0;
        break;
    }
  }
}

template <typename T>
__global__ void fill_kernel(T* y, T v, int64_t n) {
  GRID_STRIDE(i, n) { y[i] = v; }
}

// Reductions ------------------------------------------------------------------------------------------

template <typename T>
struct Acc {
  using type = double;
};
template <>
struct Acc<int32_t> {
  using type = long long;
};
template <>
struct Acc<int64_t> {
  using type = long long;
};
template <>
struct Acc<uint8_t> {
  using type = long long;
};

template <typename A>
__device__ inline A combine(int op, A a, A b) {
  switch (static_cast<ReduceOp>(op)) {
    case ReduceOp::sum:
    case ReduceOp::mean:
      return a + b;
    case ReduceOp::prod:
      return a * b;
    case ReduceOp::max:
      return (b > a || b != b) ? b : a;
    case ReduceOp::min:
      return (b < a || b != b) ? b : a;
  }
  return a;
}

template <typename T, typename A>
__device__ inline A identity_of(int op) {
  switch (static_cast<ReduceOp>(op)) {
    case ReduceOp::prod:
      return A(1);
    case ReduceOp::max:
      if constexpr (is_float_like_v<T>)
        return A(-INFINITY);
      else
        return A(sizeof(T) == 1 ? 0 : (sizeof(T) == 4 ? INT_MIN : LLONG_MIN));
    case ReduceOp::min:
      if constexpr (is_float_like_v<T>)
        return A(INFINITY);
      else
        return A(sizeof(T) == 1 ? 255 : (sizeof(T) == 4 ? INT_MAX : LLONG_MAX));
    default:
      return A(0);
  }
}

// One block per row of r contiguous elements.
template <typename T>
__global__ void reduce_rows(int op, const T* x, T* y, int64_t outer, int64_t r) {
  using A = typename Acc<T>::type;
  __shared__ A partial[kThreads];
  for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
    A acc = identity_of<T, A>(op);
    for (int64_t k = threadIdx.x; k < r; k += blockDim.x) acc = combine<A>(op, acc, load_as<A>(x[row * r + k]));
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) partial[threadIdx.x] = combine<A>(op, partial[threadIdx.x], partial[threadIdx.x + s]);
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      A v = partial[0];
      if (static_cast<ReduceOp>(op) == ReduceOp::mean)
        v = static_cast<A>(static_cast<double>(v) / static_cast<double>(r));
      y[row] = store_as<T>(v);
    }
    __syncthreads();
  }
}

// One thread per (outer, inner) column, reading strided but coalesced across threads.
template <typename T>
__global__ void reduce_columns(int op, const T* x, T* y, int64_t outer, int64_t r, int64_t inner) {
  using A = typename Acc<T>::type;
  GRID_STRIDE(oi, outer * inner) {
    const int64_t o = oi / inner, j = oi % inner;
    A acc = identity_of<T, A>(op);
    for (int64_t k = 0; k < r; ++k) acc = combine<A>(op, acc, load_as<A>(x[(o * r + k) * inner + j]));
    if (static_cast<ReduceOp>(op) == ReduceOp::mean)
      acc = static_cast<A>(static_cast<double>(acc) / static_cast<double>(r));
    y[oi] = store_as<T>(acc);
  }
}

// Few columns over many rows (a bias gradient: (N*H*W, C) -> (C,)) without transposing: each block
// combines one chunk of rows for 32 columns; then one thread per column combines the chunks in order,
// so the result does not depend on scheduling.
constexpr int kColumnTile = 32, kRowLanes = 8;
inline dim3 column_tiles(int64_t c) { return dim3(static_cast<unsigned>((c + kColumnTile - 1) / kColumnTile)); }

template <typename T>
__global__ void reduce_column_chunks(int op, const T* x, typename Acc<T>::type* partial, int64_t r, int64_t inner,
                                     int64_t chunk_rows, int64_t chunks) {
  using A = typename Acc<T>::type;
  __shared__ A lanes[kRowLanes][kColumnTile];
  const int64_t o = blockIdx.z, c = blockIdx.y, j = blockIdx.x * kColumnTile + threadIdx.x;
  A acc = identity_of<T, A>(op);
  if (j < inner) {
    const int64_t end = (c + 1) * chunk_rows < r ? (c + 1) * chunk_rows : r;
    for (int64_t k = c * chunk_rows + threadIdx.y; k < end; k += kRowLanes)
      acc = combine<A>(op, acc, load_as<A>(x[(o * r + k) * inner + j]));
  }
  lanes[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && j < inner) {
    for (int t = 1; t < kRowLanes; ++t) acc = combine<A>(op, acc, lanes[t][threadIdx.x]);
    partial[(o * chunks + c) * inner + j] = acc;
  }
}

template <typename T>
__global__ void finish_column_chunks(int op, const typename Acc<T>::type* partial, T* y, int64_t outer, int64_t chunks,
                                     int64_t inner, int64_t r) {
  using A = typename Acc<T>::type;
  GRID_STRIDE(oi, outer * inner) {
    const int64_t o = oi / inner, j = oi % inner;
    A acc = identity_of<T, A>(op);
    for (int64_t c = 0; c < chunks; ++c) acc = combine<A>(op, acc, partial[(o * chunks + c) * inner + j]);
    if (static_cast<ReduceOp>(op) == ReduceOp::mean)
      acc = static_cast<A>(static_cast<double>(acc) / static_cast<double>(r));
    y[oi] = store_as<T>(acc);
  }
}

// Batch normalization over (M, C) channels-last data. cuDNN's legacy NHWC float32 kernels run at a
// few percent of memory bandwidth on H100 (8 ms forward, 16 ms backward for 64x112x112x64, run 16),
// so the statistics are column sums in row chunks (as reduce_column_chunks, in double) and the rest
// is elementwise.
// Adds up a block's kRowLanes partial sums (a, b) of column j and writes them as chunk `chunk`'s.
__device__ void store_column_partials(double a, double b, double* partial, int64_t chunk, int64_t c, int64_t j) {
  __shared__ double lanes[2][kRowLanes][kColumnTile];
  lanes[0][threadIdx.y][threadIdx.x] = a;
  lanes[1][threadIdx.y][threadIdx.x] = b;
  __syncthreads();
  if (threadIdx.y == 0 && j < c) {
    for (int t = 1; t < kRowLanes; ++t) {
      a += lanes[0][t][threadIdx.x];
      b += lanes[1][t][threadIdx.x];
    }
    partial[(2 * chunk) * c + j] = a;
    partial[(2 * chunk + 1) * c + j] = b;
  }
}

template <typename T>
__global__ void bn_partial_sums(const T* x, const T* dy, const float* mean, const float* inv_std, double* partial,
                                int64_t m, int64_t c, int64_t chunk_rows, int64_t chunks) {
  // Forward (dy null): sums of x and x^2. Backward: sums of dy and dy * xhat.
  const int64_t chunk = blockIdx.y, j = blockIdx.x * kColumnTile + threadIdx.x;
  double a = 0, b = 0;
  if (j < c) {
    const int64_t end = (chunk + 1) * chunk_rows < m ? (chunk + 1) * chunk_rows : m;
    if (!dy) {
      for (int64_t k = chunk * chunk_rows + threadIdx.y; k < end; k += kRowLanes) {
        const double v = load_as<float>(x[k * c + j]);
        a += v;
        b += v * v;
      }
    } else {
      const float mu = mean[j], is = inv_std[j];
      for (int64_t k = chunk * chunk_rows + threadIdx.y; k < end; k += kRowLanes) {
        const float g = load_as<float>(dy[k * c + j]);
        a += g;
        b += static_cast<double>(g) * ((load_as<float>(x[k * c + j]) - mu) * is);
      }
    }
  }
  store_column_partials(a, b, partial, chunk, c, j);
}

// Forward: mean, biased variance and 1/sqrt(var + eps). Backward: dbeta = sum(dy), dgamma = sum(dy * xhat).
// A block adds up kColumnTile columns' chunks, kRowLanes lanes each (ResNet50 at batch 64 has 784 chunks
// per column: one thread per column spent 27 us in the loop).
__global__ void bn_finish_sums(const double* partial, int64_t m, int64_t c, int64_t chunks, float epsilon,
                               bool backward, float* out_a, float* out_b, float* inv_std) {
  const int64_t j = blockIdx.x * int64_t{kColumnTile} + threadIdx.x;
  double a = 0, b = 0;
  if (j < c)
    for (int64_t k = threadIdx.y; k < chunks; k += kRowLanes) {
      a += partial[(2 * k) * c + j];
      b += partial[(2 * k + 1) * c + j];
    }
  __shared__ double lanes[2][kRowLanes][kColumnTile];
  lanes[0][threadIdx.y][threadIdx.x] = a;
  lanes[1][threadIdx.y][threadIdx.x] = b;
  __syncthreads();
  if (threadIdx.y != 0 || j >= c) return;
  for (int t = 1; t < kRowLanes; ++t) {
    a += lanes[0][t][threadIdx.x];
    b += lanes[1][t][threadIdx.x];
  }
  if (backward) {
    out_a[j] = static_cast<float>(a);
    out_b[j] = static_cast<float>(b);
  } else {
    const double mean = a / static_cast<double>(m);
    const double var = b / static_cast<double>(m) - mean * mean;
    out_a[j] = static_cast<float>(mean);
    out_b[j] = static_cast<float>(var > 0 ? var : 0);
    inv_std[j] = static_cast<float>(1.0 / sqrt((var > 0 ? var : 0) + epsilon));
  }
}

__global__ void unary_inv_std(const float* variance, float* inv_std, int64_t c, float epsilon) {
  GRID_STRIDE(j, c) { inv_std[j] = rsqrtf(variance[j] + epsilon); }
}

template <typename T>
__global__ void bn_apply(const T* x, const float* mean, const float* variance, const float* gamma, const float* beta,
                         T* y, int64_t n, ColumnIndex column, float epsilon) {
  GRID_STRIDE(i, n) {
    const int64_t j = column(i);
    y[i] = store_as<T>((load_as<float>(x[i]) - mean[j]) * rsqrtf(variance[j] + epsilon) * gamma[j] + beta[j]);
  }
}

// dx = gamma * inv_std / m * (m * dy - dbeta - xhat * dgamma)
template <typename T>
__global__ void bn_backward_apply(const T* dy, const T* x, const float* gamma, const float* mean, const float* inv_std,
                                  const float* dgamma, const float* dbeta, T* dx, int64_t n, int64_t m,
                                  ColumnIndex column) {
  GRID_STRIDE(i, n) {
    const int64_t j = column(i);
    const float xhat = (load_as<float>(x[i]) - mean[j]) * inv_std[j];
    const float fm = static_cast<float>(m);
    dx[i] = store_as<T>(gamma[j] * inv_std[j] / fm * (fm * load_as<float>(dy[i]) - dbeta[j] - xhat * dgamma[j]));
  }
}

// Four consecutive channels per thread, each array read and written in one access: the per-element
// kernels above spend their time issuing loads of the per-channel values (ncu, run 25: 19% of the
// memory bandwidth, 75% of the SM). Used where the channels come in fours and every array is aligned.
template <typename T>
struct alignas(4 * sizeof(T)) Four {
  T v[4];
};
template <typename T>
__device__ inline Four<T> four(const T* p, int64_t i) {
  return reinterpret_cast<const Four<T>*>(p)[i];
}

template <typename T>
__global__ void bn_apply4(const T* x, const float* mean, const float* variance, const float* gamma, const float* beta,
                          T* y, int64_t n4, ColumnIndex column4, float epsilon) {
  GRID_STRIDE(i, n4) {
    const int64_t j4 = column4(i);
    const Four<T> in = four(x, i);
    const Four<float> mu = four(mean, j4), var = four(variance, j4), g = four(gamma, j4), b = four(beta, j4);
    Four<T> out;
#pragma unroll
    for (int k = 0; k < 4; ++k)
      out.v[k] = store_as<T>((load_as<float>(in.v[k]) - mu.v[k]) * rsqrtf(var.v[k] + epsilon) * g.v[k] + b.v[k]);
    reinterpret_cast<Four<T>*>(y)[i] = out;
  }
}

template <typename T>
__global__ void bn_backward_apply4(const T* dy, const T* x, const float* gamma, const float* mean,
                                   const float* inv_std, const float* dgamma, const float* dbeta, T* dx, int64_t n4,
                                   int64_t m, ColumnIndex column4) {
  GRID_STRIDE(i, n4) {
    const int64_t j4 = column4(i);
    const Four<T> d = four(dy, i), in = four(x, i);
    const Four<float> g = four(gamma, j4), mu = four(mean, j4), is = four(inv_std, j4), dg = four(dgamma, j4),
                      db = four(dbeta, j4);
    const float fm = static_cast<float>(m);
    Four<T> out;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float xhat = (load_as<float>(in.v[k]) - mu.v[k]) * is.v[k];
      out.v[k] = store_as<T>(g.v[k] * is.v[k] / fm * (fm * load_as<float>(d.v[k]) - db.v[k] - xhat * dg.v[k]));
    }
    reinterpret_cast<Four<T>*>(dx)[i] = out;
  }
}

// Layer normalization: a warp per row (the rows of a Transformer are short: 64 to a few thousand
// values), two passes for the statistics as the CPU backend's oneDNN, float throughout.
constexpr int kWarp = 32;

__device__ inline float warp_sum(float v) {
  for (int offset = kWarp / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__global__ void ln_forward_kernel(const float* x, const float* gamma, const float* beta, float* y, float* mean_out,
                                  float* variance_out, int64_t rows, int64_t c, float epsilon) {
  const int lane = threadIdx.x % kWarp;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / kWarp);
  for (int64_t row = blockIdx.x * int64_t(blockDim.x / kWarp) + threadIdx.x / kWarp; row < rows; row += warps) {
    const float* in = x + row * c;
    float sum = 0.f;
    for (int64_t k = lane; k < c; k += kWarp) sum += in[k];
    const float mean = warp_sum(sum) / static_cast<float>(c);
    float squares = 0.f;
    for (int64_t k = lane; k < c; k += kWarp) {
      const float d = in[k] - mean;
      squares += d * d;
    }
    const float variance = warp_sum(squares) / static_cast<float>(c);
    const float inv = rsqrtf(variance + epsilon);
    for (int64_t k = lane; k < c; k += kWarp) {
      float v = (in[k] - mean) * inv;
      if (gamma) v *= gamma[k];
      if (beta) v += beta[k];
      y[row * c + k] = v;
    }
    if (lane == 0 && mean_out) {
      mean_out[row] = mean;
      variance_out[row] = variance;
    }
  }
}

// dx = inv * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma.
__global__ void ln_backward_kernel(const float* dy, const float* x, const float* gamma, const float* mean,
                                   const float* variance, float* dx, int64_t rows, int64_t c, float epsilon) {
  const int lane = threadIdx.x % kWarp;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / kWarp);
  for (int64_t row = blockIdx.x * int64_t(blockDim.x / kWarp) + threadIdx.x / kWarp; row < rows; row += warps) {
    const float* in = x + row * c;
    const float* d = dy + row * c;
    const float mu = mean[row], inv = rsqrtf(variance[row] + epsilon);
    float a = 0.f, b = 0.f;
    for (int64_t k = lane; k < c; k += kWarp) {
      const float g = gamma ? d[k] * gamma[k] : d[k];
      a += g;
      b += g * (in[k] - mu) * inv;
    }
    a = warp_sum(a) / static_cast<float>(c);
    b = warp_sum(b) / static_cast<float>(c);
    for (int64_t k = lane; k < c; k += kWarp) {
      const float g = gamma ? d[k] * gamma[k] : d[k];
      dx[row * c + k] = inv * (g - a - (in[k] - mu) * inv * b);
    }
  }
}

// Column sums of dy and dy * xhat in row chunks (as bn_partial_sums, with each row's statistics).
__global__ void ln_param_partial_sums(const float* dy, const float* x, const float* mean, const float* variance,
                                      double* partial, int64_t rows, int64_t c, int64_t chunk_rows, float epsilon) {
  const int64_t chunk = blockIdx.y, j = blockIdx.x * kColumnTile + threadIdx.x;
  double a = 0, b = 0;
  if (j < c) {
    const int64_t end = (chunk + 1) * chunk_rows < rows ? (chunk + 1) * chunk_rows : rows;
    for (int64_t k = chunk * chunk_rows + threadIdx.y; k < end; k += kRowLanes) {
      const float g = dy[k * c + j];
      a += g;
      b += static_cast<double>(g) * ((x[k * c + j] - mean[k]) * rsqrtf(variance[k] + epsilon));
    }
  }
  store_column_partials(a, b, partial, chunk, c, j);
}

__global__ void variance_kernel(const float* x, float* y, int64_t outer, int64_t r, int64_t inner) {
  GRID_STRIDE(oi, outer * inner) {
    const int64_t o = oi / inner, j = oi % inner;
    double mean = 0;
    for (int64_t k = 0; k < r; ++k) mean += x[(o * r + k) * inner + j];
    mean /= static_cast<double>(r);
    double ss = 0;
    for (int64_t k = 0; k < r; ++k) {
      const double d = x[(o * r + k) * inner + j] - mean;
      ss += d * d;
    }
    y[oi] = static_cast<float>(ss / static_cast<double>(r));
  }
}

__global__ void variance_rows(const float* x, float* y, int64_t outer, int64_t r) {
  __shared__ double partial[kThreads];
  __shared__ double mean;
  for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
    double acc = 0;
    for (int64_t k = threadIdx.x; k < r; k += blockDim.x) acc += x[row * r + k];
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
      __syncthreads();
    }
    if (threadIdx.x == 0) mean = partial[0] / static_cast<double>(r);
    __syncthreads();
    acc = 0;
    for (int64_t k = threadIdx.x; k < r; k += blockDim.x) {
      const double d = x[row * r + k] - mean;
      acc += d * d;
    }
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
      __syncthreads();
    }
    if (threadIdx.x == 0) y[row] = static_cast<float>(partial[0] / static_cast<double>(r));
    __syncthreads();
  }
}

template <typename T>
__global__ void arg_kernel(bool is_max, const T* x, int64_t* y, int64_t outer, int64_t r, int64_t inner) {
  GRID_STRIDE(oi, outer * inner) {
    const int64_t o = oi / inner, j = oi % inner;
    const T* base = x + o * r * inner + j;
    int64_t best = 0;
    T bv = base[0];
    for (int64_t k = 1; k < r; ++k) {
      const T v = base[k * inner];
      if (bv != bv) break;
      if ((is_max ? v > bv : v < bv) || v != v) {
        bv = v;
        best = k;
      }
    }
    y[oi] = best;
  }
}

// Data movement ----------------------------------------------------------------------------------------

template <typename T>
__global__ void strided_copy_kernel(const T* x, T* y, FastIndexer ix, int64_t base, int64_t n) {
  GRID_STRIDE(i, n) { y[i] = x[base + offset_of(ix, 0, i)]; }
}
template <typename T>
__global__ void strided_scatter_kernel(const T* x, T* y, FastIndexer ix, int64_t base, int64_t n) {
  GRID_STRIDE(i, n) { y[base + offset_of(ix, 0, i)] = x[i]; }
}

template <typename F>
void by_size(int bytes, F&& f) {
  switch (bytes) {
    case 1:
      f(uint8_t{});
      break;
    case 2:
      f(uint16_t{});
      break;
    case 4:
      f(uint32_t{});
      break;
    default:
      f(uint64_t{});
      break;
  }
}

__device__ inline int64_t read_id(const void* ids, bool ids64, int64_t i) {
  return ids64 ? static_cast<const int64_t*>(ids)[i] : static_cast<const int32_t*>(ids)[i];
}

__global__ void check_ids_kernel(const void* ids, bool ids64, int64_t n, int64_t limit, int64_t* bad,
                                 int* any_failed) {
  GRID_STRIDE(i, n) {
    const int64_t id = read_id(ids, ids64, i);
    if (id < 0 || id >= limit) {
      atomicMin(reinterpret_cast<unsigned long long*>(bad), static_cast<unsigned long long>(i));
      if (any_failed) *any_failed = 1;
    }
  }
}

// Ids out of range are caught by check_ids; here they only must not reach memory outside x.
template <typename T>
__global__ void gather_kernel(const T* x, const void* ids, bool ids64, T* y, int64_t outer, int64_t d, int64_t n,
                              int64_t inner, GatherIndex at) {
  GRID_STRIDE(i, outer * n * inner) {
    int64_t o, j, k;
    at.split(i, o, j, k);
    const int64_t id = read_id(ids, ids64, j);
    y[i] = id >= 0 && id < d ? x[(o * d + id) * inner + k] : T{};  // zero bits: 0 in every dtype
  }
}

__global__ void scatter_add_kernel(const float* dy, const void* ids, bool ids64, float* dx, int64_t outer, int64_t d,
                                   int64_t n, int64_t inner, GatherIndex at) {
  GRID_STRIDE(i, outer * n * inner) {
    int64_t o, j, k;
    at.split(i, o, j, k);
    const int64_t id = read_id(ids, ids64, j);
    if (id >= 0 && id < d) atomicAdd(dx + (o * d + id) * inner + k, dy[i]);
  }
}

// NN helpers ---------------------------------------------------------------------------------------------

__global__ void xent_kernel(const float* z, const void* labels, bool sparse, bool labels64, float* loss, float* dz,
                            int64_t n, int64_t c) {
  __shared__ float red[kThreads];
  __shared__ double dred[kThreads];
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const float* zr = z + row * c;
    float mx = -INFINITY;
    for (int64_t k = threadIdx.x; k < c; k += blockDim.x) mx = fmaxf(mx, zr[k]);
    red[threadIdx.x] = mx;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + s]);
      __syncthreads();
    }
    mx = red[0];
    __syncthreads();
    double sum = 0;
    for (int64_t k = threadIdx.x; k < c; k += blockDim.x) sum += exp(static_cast<double>(zr[k] - mx));
    dred[threadIdx.x] = sum;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) dred[threadIdx.x] += dred[threadIdx.x + s];
      __syncthreads();
    }
    const float lse = mx + static_cast<float>(log(dred[0]));
    __syncthreads();
    if (sparse) {
      const int64_t y = read_id(labels, labels64, row);
      const bool valid = y >= 0 && y < c;  // else caught by check_ids; nothing read outside the row
      if (threadIdx.x == 0) loss[row] = valid ? lse - zr[y] : 0.f;
      if (dz)
        for (int64_t k = threadIdx.x; k < c; k += blockDim.x)
          dz[row * c + k] = valid ? expf(zr[k] - lse) - (k == y ? 1.f : 0.f) : 0.f;
    } else {
      const float* t = static_cast<const float*>(labels) + row * c;
      double acc = 0, ts = 0;
      for (int64_t k = threadIdx.x; k < c; k += blockDim.x) {
        acc += static_cast<double>(t[k]) * (lse - zr[k]);
        ts += t[k];
      }
      dred[threadIdx.x] = acc;
      __syncthreads();
      for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) dred[threadIdx.x] += dred[threadIdx.x + s];
        __syncthreads();
      }
      if (threadIdx.x == 0) loss[row] = static_cast<float>(dred[0]);
      __syncthreads();
      dred[threadIdx.x] = ts;
      __syncthreads();
      for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) dred[threadIdx.x] += dred[threadIdx.x + s];
        __syncthreads();
      }
      const float tsum = static_cast<float>(dred[0]);
      if (dz)
        for (int64_t k = threadIdx.x; k < c; k += blockDim.x) dz[row * c + k] = expf(zr[k] - lse) * tsum - t[k];
    }
    __syncthreads();
  }
}

// Softmax (or log-softmax) of each row of c values, for float16 / bfloat16 data (float32 goes to
// cuDNN): one block per row, max and sum of exponentials in float, each result rounded once.
template <typename T>
__global__ void softmax_rows_kernel(const T* x, T* y, int64_t rows, int64_t c, bool log) {
  __shared__ float partial[kThreads];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* in = x + row * c;
    float m = -INFINITY;
    for (int64_t k = threadIdx.x; k < c; k += blockDim.x) m = fmaxf(m, load_as<float>(in[k]));
    partial[threadIdx.x] = m;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) partial[threadIdx.x] = fmaxf(partial[threadIdx.x], partial[threadIdx.x + s]);
      __syncthreads();
    }
    m = partial[0];
    __syncthreads();
    float sum = 0.f;
    for (int64_t k = threadIdx.x; k < c; k += blockDim.x) sum += expf(load_as<float>(in[k]) - m);
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
      __syncthreads();
    }
    sum = partial[0];
    __syncthreads();
    const float log_sum = logf(sum);
    for (int64_t k = threadIdx.x; k < c; k += blockDim.x) {
      const float z = load_as<float>(in[k]) - m;
      y[row * c + k] = store_as<T>(log ? z - log_sum : expf(z) / sum);
    }
  }
}

// float arithmetic for every T: a bfloat16 / float16 product is rounded once, on the way out.
template <typename T>
__global__ void bias_act_kernel(T* y, const T* bias, const float* scale, const float* shift, const float* residual,
                                int64_t m, int64_t n, ColumnIndex column, int act) {
  GRID_STRIDE(i, m * n) {
    const int64_t c = column(i);
    float v = load_as<float>(y[i]) + (bias ? load_as<float>(bias[c]) : 0.f);
    if (scale) v = v * scale[c] + shift[c];
    if (residual) v += residual[i];
    y[i] = store_as<T>(unary_f(act, v, 0.f, 0.f));
  }
}

template <typename T>
__global__ void bias_act4(T* y, const T* bias, const float* scale, const float* shift, const float* residual,
                          int64_t n4, ColumnIndex column4, int act) {
  GRID_STRIDE(i, n4) {
    const int64_t j4 = column4(i);
    Four<T> v = four(y, i);
    float f[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) f[k] = load_as<float>(v.v[k]);
    if (bias) {
      const Four<T> b = four(bias, j4);
#pragma unroll
      for (int k = 0; k < 4; ++k) f[k] += load_as<float>(b.v[k]);
    }
    if (scale) {
      const Four<float> a = four(scale, j4), b = four(shift, j4);
#pragma unroll
      for (int k = 0; k < 4; ++k) f[k] = f[k] * a.v[k] + b.v[k];
    }
    if (residual) {
      const Four<float> r = four(residual, i);
#pragma unroll
      for (int k = 0; k < 4; ++k) f[k] += r.v[k];
    }
#pragma unroll
    for (int k = 0; k < 4; ++k) v.v[k] = store_as<T>(unary_f(act, f[k], 0.f, 0.f));
    reinterpret_cast<Four<T>*>(y)[i] = v;
  }
}

// IEEE division and square root (nvcc's defaults), as the CPU backend's channel_affine_of.
__global__ void fold_batch_norm_kernel(const float* mean, const float* variance, const float* gamma, const float* beta,
                                       float epsilon, float* scale, float* shift, int64_t c) {
  GRID_STRIDE(k, c) {
    float s = 1.f / sqrtf(variance[k] + epsilon);
    if (gamma) s *= gamma[k];
    float t = -__fmul_rn(mean[k], s);  // not contracted into an fma with + beta
    if (beta) t += beta[k];
    scale[k] = s;
    shift[k] = t;
  }
}

__device__ inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}
__device__ inline float uniform01(uint64_t key, uint64_t counter) {
  return static_cast<float>(splitmix64(key ^ splitmix64(counter)) >> 40) * (1.f / 16777216.f);
}
__device__ inline float normal01(uint64_t key, uint64_t counter) {
  const float u1 = fmaxf(uniform01(key, 2 * counter), 1e-12f);
  const float u2 = uniform01(key, 2 * counter + 1);
  return sqrtf(-2.f * logf(u1)) * cosf(6.2831853071795865f * u2);
}

__global__ void random_kernel(int dist, uint64_t key_value, const uint64_t* key_on_device, float a, float b, float* y,
                              int64_t n) {
  const uint64_t key = key_on_device ? *key_on_device : key_value;
  GRID_STRIDE(i, n) {
    const uint64_t c = static_cast<uint64_t>(i);
    switch (static_cast<RandomDistribution>(dist)) {
      case RandomDistribution::uniform:
        // No FMA contraction: the CPU backend computes a + (b - a) * u in two roundings.
        y[i] = __fadd_rn(a, __fmul_rn(b - a, uniform01(key, c)));
        break;
      case RandomDistribution::normal:
        y[i] = a + b * normal01(key, c);
        break;
      case RandomDistribution::truncated_normal: {
        float v = 0;
        for (uint64_t attempt = 0; attempt < 1000; ++attempt) {
          v = normal01(key, c + attempt * 0x100000000ULL);
          if (fabsf(v) <= 2.f) break;
        }
        y[i] = a + b * v;
        break;
      }
    }
  }
}

__global__ void dropout_kernel(float rate, uint64_t key_value, const uint64_t* key_on_device, float* y, int64_t n) {
  const uint64_t key = key_on_device ? *key_on_device : key_value;
  const float keep = 1.f / (1.f - rate);
  GRID_STRIDE(i, n) { y[i] = uniform01(key, static_cast<uint64_t>(i)) < rate ? 0.f : keep; }
}

__global__ void sgd_kernel(float* w, const float* g, float* m, int64_t n, float lr_value, const float* lr_on_device,
                           float mu, bool nesterov) {
  const float lr = lr_on_device ? *lr_on_device : lr_value;
  GRID_STRIDE(i, n) {
    if (!m) {
      w[i] -= lr * g[i];
    } else {
      m[i] = mu * m[i] - lr * g[i];
      w[i] += nesterov ? mu * m[i] - lr * g[i] : m[i];
    }
  }
}

__global__ void adam_kernel(float* w, const float* g, float* m, float* v, float* vhat, int64_t n, float alpha_value,
                            const float* alpha_on_device, float b1, float b2, float eps) {
  const float alpha = alpha_on_device ? *alpha_on_device : alpha_value;
  GRID_STRIDE(i, n) {
    m[i] += (g[i] - m[i]) * b1;
    v[i] += (g[i] * g[i] - v[i]) * b2;
    float denom = v[i];
    if (vhat) {
      vhat[i] = fmaxf(vhat[i], v[i]);
      denom = vhat[i];
    }
    w[i] -= alpha * m[i] / (sqrtf(denom) + eps);
  }
}

template <typename T>
__global__ void pool_fwd_kernel(bool is_max, const T* x, T* y, int32_t* argmax, PoolGeometry g, NhwcIndex out) {
  GRID_STRIDE(i, g.n * g.oh * g.ow * g.c) {
    int64_t b, oy, ox, ch;
    out.split(i, b, oy, ox, ch);
    float best = -INFINITY, sum = 0.f;
    int64_t best_index = -1, count = 0;
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      const int64_t iy = oy * g.sh - g.ph + ky;
      if (iy < 0 || iy >= g.h) continue;
      for (int64_t kx = 0; kx < g.kw; ++kx) {
        const int64_t ix = ox * g.sw - g.pw + kx;
        if (ix < 0 || ix >= g.w) continue;
        const int64_t idx = ((b * g.h + iy) * g.w + ix) * g.c + ch;
        const float v = load_as<float>(x[idx]);
        if (best_index < 0 || v > best || v != v) {
          best = v;
          best_index = idx;
        }
        sum += v;
        ++count;
      }
    }
    if (is_max) {
      y[i] = store_as<T>(best);
      if (argmax) argmax[i] = static_cast<int32_t>(best_index);
    } else {
      y[i] = store_as<T>(count ? sum / static_cast<float>(count) : 0.f);
    }
  }
}

// dx is float32 for every T: the window overlaps add up there, and the caller rounds once.
template <typename T>
__global__ void pool_bwd_kernel(bool is_max, const T* dy, const int32_t* argmax, float* dx, PoolGeometry g,
                                NhwcIndex out) {
  GRID_STRIDE(i, g.n * g.oh * g.ow * g.c) {
    if (is_max) {
      if (argmax[i] >= 0) atomicAdd(dx + argmax[i], load_as<float>(dy[i]));
      continue;
    }
    int64_t b, oy, ox, ch;
    out.split(i, b, oy, ox, ch);
    int64_t y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
    const int64_t y1 = min(y0 + g.kh, g.h), x1 = min(x0 + g.kw, g.w);
    y0 = max(y0, int64_t(0));
    x0 = max(x0, int64_t(0));
    const float share = load_as<float>(dy[i]) / static_cast<float>((y1 - y0) * (x1 - x0));
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = x0; ix < x1; ++ix) atomicAdd(dx + ((b * g.h + iy) * g.w + ix) * g.c + ch, share);
  }
}

}  // namespace

// Launchers ------------------------------------------------------------------------------------------------

void fill(void* y, int code, double value, int64_t int_value, int64_t n, cudaStream_t s) {
  switch (code) {
    case f32:
      fill_kernel<<<blocks_for(n), kThreads, 0, s>>>(static_cast<float*>(y), static_cast<float>(value), n);
      break;
    case f16:
      fill_kernel<<<blocks_for(n), kThreads, 0, s>>>(static_cast<__half*>(y),
                                                     __float2half_rn(static_cast<float>(value)), n);
      break;
    case bf16:
      fill_kernel<<<blocks_for(n), kThreads, 0, s>>>(static_cast<__nv_bfloat16*>(y),
                                                     __float2bfloat16_rn(static_cast<float>(value)), n);
      break;
    case i32:
      fill_kernel<<<blocks_for(n), kThreads, 0, s>>>(static_cast<int32_t*>(y), static_cast<int32_t>(int_value), n);
      break;
    case i64:
      fill_kernel<<<blocks_for(n), kThreads, 0, s>>>(static_cast<int64_t*>(y), int_value, n);
      break;
    default:
      fill_kernel<<<blocks_for(n), kThreads, 0, s>>>(static_cast<uint8_t*>(y), static_cast<uint8_t>(int_value), n);
      break;
  }
}

void unary(int op, int code, const void* x, void* y, int64_t n, float alpha, float beta, cudaStream_t s) {
  if (code == bf16) {
    unary_low_kernel<<<blocks_for(n), kThreads, 0, s>>>(op, static_cast<const __nv_bfloat16*>(x),
                                                        static_cast<__nv_bfloat16*>(y), n, alpha, beta);
    return;
  }
  if (code == f16) {
    unary_low_kernel<<<blocks_for(n), kThreads, 0, s>>>(op, static_cast<const __half*>(x), static_cast<__half*>(y), n,
                                                        alpha, beta);
    return;
  }
  dispatch(code, [&](auto t) {
    using T = decltype(t);
    unary_kernel<T>
        <<<blocks_for(n), kThreads, 0, s>>>(op, static_cast<const T*>(x), static_cast<T*>(y), n, alpha, beta);
  });
}

void binary(int op, int code, const void* a, const void* b, void* y, int64_t n, const Indexer& plain, bool same,
            cudaStream_t s) {
  const FastIndexer ix = fast_indexer(same ? Indexer{} : plain, n);
  const bool to_bool = binary_returns_bool(static_cast<BinaryOp>(op));
  if (code == bf16 || code == f16) {
    auto launch = [&](auto t) {
      using T = decltype(t);
      if (to_bool)
        binary_low_kernel<T, uint8_t><<<blocks_for(n), kThreads, 0, s>>>(
            op, static_cast<const T*>(a), static_cast<const T*>(b), static_cast<uint8_t*>(y), n, ix, same);
      else
        binary_low_kernel<T, T><<<blocks_for(n), kThreads, 0, s>>>(
            op, static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(y), n, ix, same);
    };
    if (code == bf16)
      launch(__nv_bfloat16{});
    else
      launch(__half{});
    return;
  }
  dispatch(code, [&](auto t) {
    using T = decltype(t);
    if (to_bool)
      binary_kernel<T, uint8_t><<<blocks_for(n), kThreads, 0, s>>>(
          op, static_cast<const T*>(a), static_cast<const T*>(b), static_cast<uint8_t*>(y), n, ix, same);
    else
      binary_kernel<T, T><<<blocks_for(n), kThreads, 0, s>>>(op, static_cast<const T*>(a), static_cast<const T*>(b),
                                                             static_cast<T*>(y), n, ix, same);
  });
}

void where(int code, const uint8_t* c, const void* a, const void* b, void* y, int64_t n, const Indexer& plain,
           cudaStream_t s) {
  const FastIndexer ix = fast_indexer(plain, n);
  if (code == bf16 || code == f16) {  // a selection: the bits move as they are
    where_kernel<uint16_t><<<blocks_for(n), kThreads, 0, s>>>(
        c, static_cast<const uint16_t*>(a), static_cast<const uint16_t*>(b), static_cast<uint16_t*>(y), n, ix);
    return;
  }
  dispatch(code, [&](auto t) {
    using T = decltype(t);
    where_kernel<T><<<blocks_for(n), kThreads, 0, s>>>(c, static_cast<const T*>(a), static_cast<const T*>(b),
                                                       static_cast<T*>(y), n, ix);
  });
}

void cast(int from, int to, const void* x, void* y, int64_t n, cudaStream_t s) {
  cast_kernel<<<blocks_for(n), kThreads, 0, s>>>(from, to, x, y, n);
}

void reduce(int op, int code, const void* x, void* y, int64_t outer, int64_t r, int64_t inner, cudaStream_t s) {
  dispatch_all(code, [&](auto t) {
    using T = decltype(t);
    if (inner == 1)
      reduce_rows<T><<<static_cast<unsigned>(outer < 65535 ? outer : 65535), kThreads, 0, s>>>(
          op, static_cast<const T*>(x), static_cast<T*>(y), outer, r);
    else
      reduce_columns<T><<<blocks_for(outer * inner), kThreads, 0, s>>>(op, static_cast<const T*>(x), static_cast<T*>(y),
                                                                       outer, r, inner);
  });
}

ColumnChunks column_chunks(int64_t outer, int64_t r, int64_t inner) {
  ColumnChunks c;
  c.chunk_rows = std::max<int64_t>(256, (r + 2047) / 2048);
  c.chunks = (r + c.chunk_rows - 1) / c.chunk_rows;
  c.scratch_bytes = static_cast<size_t>(outer * c.chunks * inner) * 8;  // Acc<T> is 8 bytes for every T
  return c;
}

void reduce_columns_chunked(int op, int code, const void* x, void* scratch, void* y, int64_t outer, int64_t r,
                            int64_t inner, cudaStream_t s) {
  const ColumnChunks c = column_chunks(outer, r, inner);
  dispatch_all(code, [&](auto t) {
    using T = decltype(t);
    using A = typename Acc<T>::type;
    static_assert(sizeof(A) == 8);
    const dim3 grid(static_cast<unsigned>((inner + kColumnTile - 1) / kColumnTile), static_cast<unsigned>(c.chunks),
                    static_cast<unsigned>(outer));
    reduce_column_chunks<T><<<grid, dim3(kColumnTile, kRowLanes), 0, s>>>(
        op, static_cast<const T*>(x), static_cast<A*>(scratch), r, inner, c.chunk_rows, c.chunks);
    finish_column_chunks<T><<<blocks_for(outer * inner), kThreads, 0, s>>>(
        op, static_cast<const A*>(scratch), static_cast<T*>(y), outer, c.chunks, inner, r);
  });
}

size_t batch_norm_scratch_bytes(int64_t m, int64_t c) {
  const ColumnChunks k = column_chunks(1, m, c);
  return static_cast<size_t>(2 * k.chunks * c) * sizeof(double) + static_cast<size_t>(c) * sizeof(float);
}

void batch_norm_statistics(int code, const void* x, float* mean, float* variance, void* scratch, int64_t m, int64_t c,
                           float epsilon, cudaStream_t s) {
  const ColumnChunks k = column_chunks(1, m, c);
  auto* partial = static_cast<double*>(scratch);
  auto* inv_std = reinterpret_cast<float*>(partial + 2 * k.chunks * c);
  const dim3 grid(static_cast<unsigned>((c + kColumnTile - 1) / kColumnTile), static_cast<unsigned>(k.chunks));
  dispatch_float(code, [&](auto t) {
    using T = decltype(t);
    bn_partial_sums<T><<<grid, dim3(kColumnTile, kRowLanes), 0, s>>>(static_cast<const T*>(x), nullptr, nullptr,
                                                                     nullptr, partial, m, c, k.chunk_rows, k.chunks);
  });
  bn_finish_sums<<<column_tiles(c), dim3(kColumnTile, kRowLanes), 0, s>>>(partial, m, c, k.chunks, epsilon, false, mean,
                                                                        variance, inv_std);
}

void batch_norm_apply(int code, const void* x, const float* mean, const float* variance, const float* gamma,
                      const float* beta, void* y, int64_t m, int64_t c, float epsilon, cudaStream_t s) {
  dispatch_float(code, [&](auto t) {
    using T = decltype(t);
    const auto* xt = static_cast<const T*>(x);
    auto* yt = static_cast<T*>(y);
    if (in_fours(c, xt, static_cast<const T*>(yt), mean, variance, gamma, beta))
      bn_apply4<T><<<blocks_for(m * c / 4), kThreads, 0, s>>>(xt, mean, variance, gamma, beta, yt, m * c / 4,
                                                              ColumnIndex(m, c / 4), epsilon);
    else
      bn_apply<T><<<blocks_for(m * c), kThreads, 0, s>>>(xt, mean, variance, gamma, beta, yt, m * c, ColumnIndex(m, c),
                                                         epsilon);
  });
}

void batch_norm_backward(int code, const void* dy, const void* x, const float* gamma, const float* mean,
                         const float* variance, void* dx, float* dgamma, float* dbeta, void* scratch, int64_t m,
                         int64_t c, float epsilon, cudaStream_t s) {
  const ColumnChunks k = column_chunks(1, m, c);
  auto* partial = static_cast<double*>(scratch);
  auto* inv_std = reinterpret_cast<float*>(partial + 2 * k.chunks * c);
  unary_inv_std<<<blocks_for(c), kThreads, 0, s>>>(variance, inv_std, c, epsilon);
  const dim3 grid(static_cast<unsigned>((c + kColumnTile - 1) / kColumnTile), static_cast<unsigned>(k.chunks));
  dispatch_float(code, [&](auto t) {
    using T = decltype(t);
    bn_partial_sums<T><<<grid, dim3(kColumnTile, kRowLanes), 0, s>>>(
        static_cast<const T*>(x), static_cast<const T*>(dy), mean, inv_std, partial, m, c, k.chunk_rows, k.chunks);
    bn_finish_sums<<<column_tiles(c), dim3(kColumnTile, kRowLanes), 0, s>>>(partial, m, c, k.chunks, epsilon, true,
                                                                          dbeta, dgamma, nullptr);
    const auto *dyt = static_cast<const T*>(dy), *xt = static_cast<const T*>(x);
    auto* dxt = static_cast<T*>(dx);
    if (in_fours(c, dyt, xt, static_cast<const T*>(dxt), gamma, mean, static_cast<const float*>(inv_std),
                 static_cast<const float*>(dgamma), static_cast<const float*>(dbeta)))
      bn_backward_apply4<T><<<blocks_for(m * c / 4), kThreads, 0, s>>>(dyt, xt, gamma, mean, inv_std, dgamma, dbeta, dxt,
                                                                       m * c / 4, m, ColumnIndex(m, c / 4));
    else
      bn_backward_apply<T><<<blocks_for(m * c), kThreads, 0, s>>>(dyt, xt, gamma, mean, inv_std, dgamma, dbeta, dxt,
                                                                  m * c, m, ColumnIndex(m, c));
  });
}

namespace {
unsigned row_warp_blocks(int64_t rows) {
  const int64_t b = (rows + kThreads / kWarp - 1) / (kThreads / kWarp);
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65535 ? 65535 : b));
}
}  // namespace

void layer_norm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* variance,
                        int64_t rows, int64_t c, float epsilon, cudaStream_t s) {
  ln_forward_kernel<<<row_warp_blocks(rows), kThreads, 0, s>>>(x, gamma, beta, y, mean, variance, rows, c, epsilon);
}

size_t layer_norm_scratch_bytes(int64_t rows, int64_t c) {
  const ColumnChunks k = column_chunks(1, rows, c);
  return static_cast<size_t>(2 * k.chunks * c) * sizeof(double) + static_cast<size_t>(2 * c) * sizeof(float);
}

void layer_norm_backward(const float* dy, const float* x, const float* gamma, const float* mean, const float* variance,
                         float* dx, float* dgamma, float* dbeta, void* scratch, int64_t rows, int64_t c, float epsilon,
                         cudaStream_t s) {
  ln_backward_kernel<<<row_warp_blocks(rows), kThreads, 0, s>>>(dy, x, gamma, mean, variance, dx, rows, c, epsilon);
  if (!dgamma && !dbeta) return;
  const ColumnChunks k = column_chunks(1, rows, c);
  auto* partial = static_cast<double*>(scratch);
  auto* unused = reinterpret_cast<float*>(partial + 2 * k.chunks * c);  // where a gradient not asked for goes
  const dim3 grid(static_cast<unsigned>((c + kColumnTile - 1) / kColumnTile), static_cast<unsigned>(k.chunks));
  ln_param_partial_sums<<<grid, dim3(kColumnTile, kRowLanes), 0, s>>>(dy, x, mean, variance, partial, rows, c,
                                                                      k.chunk_rows, epsilon);
  bn_finish_sums<<<column_tiles(c), dim3(kColumnTile, kRowLanes), 0, s>>>(partial, rows, c, k.chunks, epsilon, true,
                                                    dbeta ? dbeta : unused, dgamma ? dgamma : unused + c, nullptr);
}

void variance(const float* x, float* y, int64_t outer, int64_t r, int64_t inner, cudaStream_t s) {
  if (inner == 1)
    variance_rows<<<static_cast<unsigned>(outer < 65535 ? outer : 65535), kThreads, 0, s>>>(x, y, outer, r);
  else
    variance_kernel<<<blocks_for(outer * inner), kThreads, 0, s>>>(x, y, outer, r, inner);
}

void arg_reduce(bool is_max, int code, const void* x, int64_t* y, int64_t outer, int64_t r, int64_t inner,
                cudaStream_t s) {
  dispatch(code, [&](auto t) {
    using T = decltype(t);
    arg_kernel<T><<<blocks_for(outer * inner), kThreads, 0, s>>>(is_max, static_cast<const T*>(x), y, outer, r, inner);
  });
}

void strided_copy(int bytes, const void* x, void* y, const Indexer& plain, int64_t base, int64_t n, cudaStream_t s) {
  const FastIndexer ix = fast_indexer(plain, n);
  by_size(bytes, [&](auto t) {
    using T = decltype(t);
    strided_copy_kernel<T>
        <<<blocks_for(n), kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<T*>(y), ix, base, n);
  });
}

void strided_scatter(int bytes, const void* x, void* y, const Indexer& plain, int64_t base, int64_t n, cudaStream_t s) {
  const FastIndexer ix = fast_indexer(plain, n);
  by_size(bytes, [&](auto t) {
    using T = decltype(t);
    strided_scatter_kernel<T>
        <<<blocks_for(n), kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<T*>(y), ix, base, n);
  });
}

void check_ids(const void* ids, bool ids64, int64_t n, int64_t limit, int64_t* bad, int* any_failed, cudaStream_t s) {
  check_ids_kernel<<<blocks_for(n), kThreads, 0, s>>>(ids, ids64, n, limit, bad, any_failed);
}

void gather(int bytes, const void* x, const void* ids, bool ids64, void* y, int64_t outer, int64_t d, int64_t n,
            int64_t inner, cudaStream_t s) {
  by_size(bytes, [&](auto t) {
    using T = decltype(t);
    gather_kernel<T><<<blocks_for(outer * n * inner), kThreads, 0, s>>>(
        static_cast<const T*>(x), ids, ids64, static_cast<T*>(y), outer, d, n, inner, GatherIndex(outer, n, inner));
  });
}

void scatter_add(const float* dy, const void* ids, bool ids64, float* dx, int64_t outer, int64_t d, int64_t n,
                 int64_t inner, cudaStream_t s) {
  scatter_add_kernel<<<blocks_for(outer * n * inner), kThreads, 0, s>>>(dy, ids, ids64, dx, outer, d, n, inner,
                                                                        GatherIndex(outer, n, inner));
}

void softmax_cross_entropy(const float* logits, const void* labels, bool sparse, bool labels64, float* loss,
                           float* dlogits, int64_t n, int64_t c, cudaStream_t s) {
  xent_kernel<<<static_cast<unsigned>(n < 65535 ? (n < 1 ? 1 : n) : 65535), kThreads, 0, s>>>(
      logits, labels, sparse, labels64, loss, dlogits, n, c);
}

void softmax_rows(int code, const void* x, void* y, int64_t rows, int64_t c, bool log, cudaStream_t s) {
  dispatch_float(code, [&](auto t) {
    using T = decltype(t);
    softmax_rows_kernel<T><<<static_cast<unsigned>(rows < 65535 ? (rows < 1 ? 1 : rows) : 65535), kThreads, 0, s>>>(
        static_cast<const T*>(x), static_cast<T*>(y), rows, c, log);
  });
}

void bias_activation(float* y, const float* bias, int64_t m, int64_t n, int act, cudaStream_t s, const float* scale,
                     const float* shift, const float* residual) {
  if (in_fours(n, static_cast<const float*>(y), bias, scale, shift, residual))
    bias_act4<float><<<blocks_for(m * n / 4), kThreads, 0, s>>>(y, bias, scale, shift, residual, m * n / 4,
                                                                ColumnIndex(m, n / 4), act);
  else
    bias_act_kernel<float>
        <<<blocks_for(m * n), kThreads, 0, s>>>(y, bias, scale, shift, residual, m, n, ColumnIndex(m, n), act);
}

void fold_batch_norm(const float* mean, const float* variance, const float* gamma, const float* beta, float epsilon,
                     float* scale, float* shift, int64_t c, cudaStream_t s) {
  fold_batch_norm_kernel<<<blocks_for(c), kThreads, 0, s>>>(mean, variance, gamma, beta, epsilon, scale, shift, c);
}

void bias_activation_low(void* y, const void* bias, int64_t m, int64_t n, int act, bool bf16, cudaStream_t s) {
  dispatch_float(bf16 ? kernels::bf16 : kernels::f16, [&](auto t) {
    using T = decltype(t);
    auto* yt = static_cast<T*>(y);
    const auto* bt = static_cast<const T*>(bias);
    if (in_fours(n, static_cast<const T*>(yt), bt))
      bias_act4<T><<<blocks_for(m * n / 4), kThreads, 0, s>>>(yt, bt, nullptr, nullptr, nullptr, m * n / 4,
                                                              ColumnIndex(m, n / 4), act);
    else
      bias_act_kernel<T><<<blocks_for(m * n), kThreads, 0, s>>>(yt, bt, nullptr, nullptr, nullptr, m, n,
                                                                ColumnIndex(m, n), act);
  });
}

void random(int dist, uint64_t key, const uint64_t* key_on_device, float a, float b, float* y, int64_t n,
            cudaStream_t s) {
  random_kernel<<<blocks_for(n), kThreads, 0, s>>>(dist, key, key_on_device, a, b, y, n);
}

void dropout_mask(float rate, uint64_t key, const uint64_t* key_on_device, float* y, int64_t n, cudaStream_t s) {
  dropout_kernel<<<blocks_for(n), kThreads, 0, s>>>(rate, key, key_on_device, y, n);
}

void sgd_update(float* w, const float* g, float* m, int64_t n, float lr, const float* lr_on_device, float momentum,
                bool nesterov, cudaStream_t s) {
  sgd_kernel<<<blocks_for(n), kThreads, 0, s>>>(w, g, m, n, lr, lr_on_device, momentum, nesterov);
}

void adam_update(float* w, const float* g, float* m, float* v, float* vhat, int64_t n, float alpha,
                 const float* alpha_on_device, float b1, float b2, float eps, cudaStream_t s) {
  adam_kernel<<<blocks_for(n), kThreads, 0, s>>>(w, g, m, v, vhat, n, alpha, alpha_on_device, b1, b2, eps);
}

void pool_forward(bool is_max, int code, const void* x, void* y, int32_t* argmax, const PoolGeometry& g,
                  cudaStream_t s) {
  dispatch_float(code, [&](auto t) {
    using T = decltype(t);
    pool_fwd_kernel<T><<<blocks_for(g.n * g.oh * g.ow * g.c), kThreads, 0, s>>>(
        is_max, static_cast<const T*>(x), static_cast<T*>(y), argmax, g, NhwcIndex(g.n, g.oh, g.ow, g.c));
  });
}

void pool_backward(bool is_max, int code, const void* dy, const int32_t* argmax, float* dx, const PoolGeometry& g,
                   cudaStream_t s) {
  dispatch_float(code, [&](auto t) {
    using T = decltype(t);
    pool_bwd_kernel<T><<<blocks_for(g.n * g.oh * g.ow * g.c), kThreads, 0, s>>>(
        is_max, static_cast<const T*>(dy), argmax, dx, g, NhwcIndex(g.n, g.oh, g.ow, g.c));
  });
}

}  // namespace keras::cuda::kernels
