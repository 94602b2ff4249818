#pragma once
// Plain C++ declarations of the CUDA kernels' launchers, so host files never include CUDA kernel
// code and nvcc never compiles frontend headers. Every launcher enqueues on `stream` and returns.
#include <cuda_runtime.h>

#include <cstdint>

#include "backends/cuda/index_math.h"  // Indexer, kMaxRank

namespace keras::cuda::kernels {

// dtype codes shared with the host (values of keras::DType).
enum Code : int { f32 = 0, f16 = 1, bf16 = 2, i32 = 3, i64 = 4, u8 = 5, b8 = 6 };

/// Integer dtypes take int_value (every int64 exactly), the others value.
void fill(void* y, int code, double value, int64_t int_value, int64_t n, cudaStream_t stream);
/// op: keras::UnaryOp value.
void unary(int op, int code, const void* x, void* y, int64_t n, float alpha, float beta, cudaStream_t stream);
/// op: keras::BinaryOp value; a and b share `code`; y is bool for comparisons. `same` means no broadcasting.
void binary(int op, int code, const void* a, const void* b, void* y, int64_t n, const Indexer& ix, bool same,
            cudaStream_t stream);
void where(int code, const uint8_t* c, const void* a, const void* b, void* y, int64_t n, const Indexer& ix,
           cudaStream_t stream);
void cast(int from, int to, const void* x, void* y, int64_t n, cudaStream_t stream);

/// Reductions over (outer, r, inner) layouts, every dtype (float16 and bfloat16 accumulate in double,
/// as float32 does). op: keras::ReduceOp value.
void reduce(int op, int code, const void* x, void* y, int64_t outer, int64_t r, int64_t inner, cudaStream_t stream);
/// Columns of (outer, r, inner) reduced over r in row chunks, for few columns over many rows; needs
/// `column_chunks(...).scratch_bytes` of device scratch.
struct ColumnChunks {
  int64_t chunk_rows = 0, chunks = 0;
  size_t scratch_bytes = 0;
};
ColumnChunks column_chunks(int64_t outer, int64_t r, int64_t inner);
void reduce_columns_chunked(int op, int code, const void* x, void* scratch, void* y, int64_t outer, int64_t r,
                            int64_t inner, cudaStream_t stream);
void variance(const float* x, float* y, int64_t outer, int64_t r, int64_t inner, cudaStream_t stream);
/// Batch normalization of (m, c) channels-last rows: data (x, y, dy, dx) of dtype `code` (float32,
/// float16 or bfloat16, computed in float), parameters and statistics float32. The statistics and
/// backward passes need batch_norm_scratch_bytes(m, c) of device scratch.
size_t batch_norm_scratch_bytes(int64_t m, int64_t c);
/// mean and biased variance of each column.
void batch_norm_statistics(int code, const void* x, float* mean, float* variance, void* scratch, int64_t m, int64_t c,
                           float epsilon, cudaStream_t stream);
/// y = (x - mean) / sqrt(variance + epsilon) * gamma + beta.
void batch_norm_apply(int code, const void* x, const float* mean, const float* variance, const float* gamma,
                      const float* beta, void* y, int64_t m, int64_t c, float epsilon, cudaStream_t stream);
void batch_norm_backward(int code, const void* dy, const void* x, const float* gamma, const float* mean,
                         const float* variance, void* dx, float* dgamma, float* dbeta, void* scratch, int64_t m,
                         int64_t c, float epsilon, cudaStream_t stream);
/// Layer normalization of the rows of float32 (rows, c): y = (x - mean) / sqrt(variance + epsilon) *
/// gamma + beta (gamma, beta null: 1 and 0); mean and variance (rows, null: not kept) get each row's
/// statistics.
void layer_norm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* variance,
                        int64_t rows, int64_t c, float epsilon, cudaStream_t stream);
/// dx, and dgamma = sum(dy * xhat), dbeta = sum(dy) over the rows where not null; needs
/// layer_norm_scratch_bytes(rows, c) of device scratch.
size_t layer_norm_scratch_bytes(int64_t rows, int64_t c);
void layer_norm_backward(const float* dy, const float* x, const float* gamma, const float* mean, const float* variance,
                         float* dx, float* dgamma, float* dbeta, void* scratch, int64_t rows, int64_t c, float epsilon,
                         cudaStream_t stream);
void arg_reduce(bool is_max, int code, const void* x, int64_t* y, int64_t outer, int64_t r, int64_t inner,
                cudaStream_t stream);

/// y[out] = x[in] where out runs over `out_dims` and in = base + sum(idx * src_strides): transpose, slice.
void strided_copy(int elem_bytes, const void* x, void* y, const Indexer& ix, int64_t base, int64_t n,
                  cudaStream_t stream);
/// y[base + sum(idx * dst_strides)] = x[flat]: slice_assign, pad, concat pieces.
void strided_scatter(int elem_bytes, const void* x, void* y, const Indexer& ix, int64_t base, int64_t n,
                     cudaStream_t stream);

/// Index checking for gathers: records the first position whose id is outside [0, limit) in
/// *bad_position (initialised to n by the caller) and, where any_failed is given, sets it to 1.
void check_ids(const void* ids, bool ids64, int64_t n, int64_t limit, int64_t* bad_position, int* any_failed,
               cudaStream_t stream);
/// gather and scatter_add (and sparse cross-entropy) read no memory outside x for an id out of
/// range: a recorded step runs them before its checks are read. gather writes 0 there,
/// scatter_add skips it, cross-entropy gives such a row loss 0 and gradient 0.
void gather(int elem_bytes, const void* x, const void* ids, bool ids64, void* y, int64_t outer, int64_t d, int64_t n,
            int64_t inner, cudaStream_t stream);
void scatter_add(const float* dy, const void* ids, bool ids64, float* dx, int64_t outer, int64_t d, int64_t n,
                 int64_t inner, cudaStream_t stream);

/// Softmax (log: log-softmax) of each row of (rows, c), computed in float; any floating dtype `code`.
void softmax_rows(int code, const void* x, void* y, int64_t rows, int64_t c, bool log, cudaStream_t stream);
/// Per-row softmax cross-entropy; labels int (sparse) or float probabilities.
void softmax_cross_entropy(const float* logits, const void* labels, bool sparse, bool labels64, float* loss,
                           float* dlogits, int64_t n, int64_t c, cudaStream_t stream);
/// y (M, N) += bias (N), then y = y * scale + shift (N each, where scale is given: a folded
/// batch-norm), then y += residual (M, N, where given), then the activation (keras::UnaryOp value).
void bias_activation(float* y, const float* bias, int64_t m, int64_t n, int act, cudaStream_t stream,
                     const float* scale = nullptr, const float* shift = nullptr, const float* residual = nullptr);

/// A folded batch norm's per-channel scale = gamma / sqrt(variance + epsilon) and shift = beta -
/// mean * scale (c each; gamma and beta may be null: 1 and 0), in the CPU backend's float order.
void fold_batch_norm(const float* mean, const float* variance, const float* gamma, const float* beta, float epsilon,
                     float* scale, float* shift, int64_t c, cudaStream_t stream);

/// bias_activation for a bfloat16 (bf16) or float16 product and bias, computed in float.
void bias_activation_low(void* y, const void* bias, int64_t m, int64_t n, int act, bool bf16, cudaStream_t stream);

/// Counter-based random numbers, bit-compatible with the CPU backend's uniforms.
void random(int dist, uint64_t key, const uint64_t* key_on_device, float a, float b, float* y, int64_t n,
            cudaStream_t stream);
/// key_on_device (may be null) replaces `key` with the value it holds when the kernel runs; likewise
/// lr_on_device and alpha_on_device below (recorded steps replay with new values).
void dropout_mask(float rate, uint64_t key, const uint64_t* key_on_device, float* y, int64_t n, cudaStream_t stream);

void sgd_update(float* w, const float* g, float* m, int64_t n, float lr, const float* lr_on_device, float momentum,
                bool nesterov, cudaStream_t stream);
void adam_update(float* w, const float* g, float* m, float* v, float* vhat, int64_t n, float alpha,
                 const float* alpha_on_device, float b1, float b2, float eps, cudaStream_t stream);

}  // namespace keras::cuda::kernels

namespace keras::cuda::kernels {

/// Pooling over NHWC with explicit pads; padded positions never contribute (average excludes
/// them, as Keras). Max pooling records the flat input index of each maximum in `argmax`. x, y and
/// dy have dtype `code` (float32, float16 or bfloat16); dx is float32 whatever the dtype.
struct PoolGeometry {
  int64_t n, h, w, c, oh, ow, kh, kw, sh, sw, ph, pw;
};
void pool_forward(bool is_max, int code, const void* x, void* y, int32_t* argmax, const PoolGeometry& g,
                  cudaStream_t stream);
/// dx must be zeroed first.
void pool_backward(bool is_max, int code, const void* dy, const int32_t* argmax, float* dx, const PoolGeometry& g,
                   cudaStream_t stream);

// graph_guard.cu (a module of its own: the only kernel that sets a graph's conditional node)
/// Sets the conditional `handle` (cudaGraphConditionalHandle) to 1 where *any_failed is 0.
void set_conditional_if_passed(const int* any_failed, unsigned long long handle, cudaStream_t stream);

}  // namespace keras::cuda::kernels
