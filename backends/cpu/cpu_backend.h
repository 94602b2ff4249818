#pragma once
// The CPU backend: oneDNN primitives for the NN operations, OpenMP loops for the rest.
#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>

#include "core/backend.h"
#include "core/check.h"
#include "core/memory_use.h"
#include "core/derived_cache.h"

namespace keras::cpu {

/// A memory descriptor as a cache key: every field that changes the layout.
std::string md_key(const dnnl::memory::desc& md);

/// Wraps a oneDNN call so a failure names the expression and oneDNN's message.
#define KCPP_DNNL(expr)                                                                                   \
  [&]() -> decltype(auto) {                                                                               \
    try {                                                                                                 \
      return (expr);                                                                                      \
    } catch (const dnnl::error& e) {                                                                      \
      throw ::keras::BackendError(                                                                        \
          fmt::format("oneDNN: {} failed: {} (status {})", #expr, e.what(), static_cast<int>(e.status))); \
    }                                                                                                     \
  }()

/// A size-bucketed caching allocator: a steady training step reuses blocks instead of paying
/// for malloc, page faults and zeroing of large buffers.
class CachingAllocator {
 public:
  ~CachingAllocator();
  void* allocate(size_t nbytes);
  void release(void* ptr, size_t nbytes);
  int64_t fresh_allocations() const { return fresh_.load(); }
  MemoryUse& use() { return use_; }
  const MemoryUse& use() const { return use_; }
  /// Round-up used for bucketing, exposed for the Storage size bookkeeping.
  static size_t bucket_size(size_t nbytes);

 private:
  std::mutex mutex_;
  std::unordered_multimap<size_t, void*> free_;
  size_t cached_bytes_ = 0;
  std::atomic<int64_t> fresh_{0};
  MemoryUse use_;  // bucket sizes handed out
};

/// Which pass of a convolution CpuBackend::conv_common runs.
enum ConvDirection { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };

struct RnnShapes;    // backends/cpu/rnn.cpp
struct RnnOperands;

/// `attr` with the scratchpad left to the caller (CpuBackend::execute). oneDNN's own scratchpad
/// may be shared between primitives, so two threads running primitives at once could overwrite
/// each other's; every primitive of this backend is created with this.
dnnl::primitive_attr user_scratchpad(dnnl::primitive_attr attr = {});

/// One cached oneDNN primitive with the descriptors its execution needs.
struct CachedPrimitive {
  dnnl::primitive primitive;
  dnnl::memory::desc src_md, weights_md, dst_md, workspace_md;  // the primitive's chosen layouts
  dnnl::memory::desc diff_weights_md;
  dnnl::memory::desc scratchpad_md;  // filled in by CpuBackend::cached
  std::shared_ptr<void> extra;  // e.g. a forward primitive descriptor hint
};

class CpuBackend final : public Backend {
 public:
  /// `index`: the logical device (each its own caches; they share the processor and its engine).
  explicit CpuBackend(int index = 0);
  std::string name() const override { return "cpu"; }
  Device device() const override { return {DeviceType::cpu, index_}; }
  bool supports(Capability c) const override;
  bool computes_low_precision(OpFamily family, DType dtype) const override;
  std::map<std::string, int64_t> counters() const override;
  MemoryInfo memory_info() const override;
  void reset_peak_memory() override;
  void set_thread_parallelism(int threads) override;

  std::shared_ptr<Storage> allocate(size_t nbytes) override;
  void deallocate(void* data, size_t nbytes) override;
  void copy_from_host(void* dst, const void* src, size_t nbytes) override;
  void copy_to_host(void* dst, const void* src, size_t nbytes) override;
  void copy(void* dst, const void* src, size_t nbytes) override;
  void fill(Tensor& y, Scalar value) override;

  void unary(UnaryOp op, const Tensor& x, Tensor& y, const UnaryAttrs& attrs) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y) override;
  void where(const Tensor& condition, const Tensor& a, const Tensor& b, Tensor& y) override;
  void cast(const Tensor& x, Tensor& y) override;

  void reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& axes, Tensor& y) override;
  void variance(const Tensor& x, const std::vector<int64_t>& axes, Tensor& y) override;
  void arg_reduce(bool is_max, const Tensor& x, int64_t axis, Tensor& y) override;

  void matmul(const Tensor& a, const Tensor& b, const Tensor* bias, Tensor& y, const MatmulAttrs& attrs) override;
  void conv_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, const ConvAttrs& attrs) override;
  void conv_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, const ConvAttrs& attrs) override;
  void conv_backward_weights(const Tensor& dy, const Tensor& x, Tensor& dw, Tensor* dbias,
                             const ConvAttrs& attrs) override;
  void conv_transpose_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y,
                              const ConvAttrs& attrs) override;
  void conv_transpose_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, const ConvAttrs& attrs) override;
  void conv_transpose_backward_weights(const Tensor& dy, const Tensor& x, Tensor& dw, Tensor* dbias,
                                       const ConvAttrs& attrs) override;
  void conv_max_pool_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, const ConvAttrs& conv,
                             const PoolAttrs& pool) override;
  size_t pool_workspace_bytes(const Tensor& x, const Tensor& y, const PoolAttrs& attrs) override;
  void pool_forward(const Tensor& x, Tensor& y, Tensor* workspace, const PoolAttrs& attrs) override;
  void pool_backward(const Tensor& dy, const Tensor& x, const Tensor* workspace, Tensor& dx,
                     const PoolAttrs& attrs) override;
  void batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& mean, Tensor& variance,
                          Tensor& y, float epsilon, bool training) override;
  void batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                           const Tensor& variance, Tensor& dx, Tensor& dgamma, Tensor& dbeta, float epsilon) override;
  void layer_norm_forward(const Tensor& x, const Tensor* gamma, const Tensor* beta, Tensor& y, Tensor* mean,
                          Tensor* variance, float epsilon) override;
  void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor* gamma, const Tensor& mean,
                           const Tensor& variance, Tensor& dx, Tensor* dgamma, Tensor* dbeta, float epsilon) override;
  void softmax(const Tensor& x, Tensor& y, bool log) override;
  void softmax_cross_entropy(const Tensor& logits, const Tensor& labels, bool sparse, Tensor& loss,
                             Tensor* dlogits) override;
  void embedding_forward(const Tensor& table, const Tensor& ids, Tensor& y) override;
  void embedding_backward(const Tensor& dy, const Tensor& ids, Tensor& dtable) override;

  void concat(const std::vector<Tensor>& inputs, int64_t axis, Tensor& y) override;
  void slice(const Tensor& x, const std::vector<int64_t>& starts, Tensor& y) override;
  void slice_assign(const Tensor& x, const std::vector<int64_t>& starts, Tensor& y) override;
  void pad(const Tensor& x, const std::vector<std::array<int64_t, 2>>& pads, Scalar value, Tensor& y) override;
  void transpose(const Tensor& x, const std::vector<int64_t>& perm, Tensor& y) override;
  void gather(const Tensor& x, const Tensor& indices, int64_t axis, Tensor& y) override;
  void scatter_add(const Tensor& dy, const Tensor& indices, int64_t axis, Tensor& dx) override;

  void random(RandomDistribution dist, const RandomKey& random_key, float a, float b, Tensor& y) override;
  void dropout_mask(float rate, const RandomKey& key, Tensor& mask) override;

  void sgd_update(Tensor& variable, const Tensor& gradient, Tensor* momentum_buffer, const SGDAttrs& attrs) override;
  void adam_update(Tensor& variable, const Tensor& gradient, Tensor& m, Tensor& v, Tensor* vhat,
                   const AdamAttrs& attrs) override;

  void rnn_forward(const RnnAttrs& attrs, const Tensor& x, const Tensor& h0, const Tensor* c0, const Tensor& kernel,
                   const Tensor& recurrent_kernel, const Tensor& bias, const Tensor* recurrent_bias, Tensor& y,
                   Tensor& h_last, Tensor* c_last, Tensor* workspace) override;
  void rnn_backward(const RnnAttrs& attrs, const Tensor& x, const Tensor& h0, const Tensor* c0, const Tensor& kernel,
                    const Tensor& recurrent_kernel, const Tensor& bias, const Tensor* recurrent_bias, const Tensor& y,
                    const Tensor& h_last, const Tensor* c_last, const Tensor& workspace, const Tensor& dy,
                    const Tensor& dh_last, const Tensor* dc_last, Tensor& dx, Tensor& dh0, Tensor* dc0,
                    Tensor& dkernel, Tensor& drecurrent_kernel, Tensor& dbias, Tensor* drecurrent_bias) override;

  // Shared by the .cpp files of this backend.
  dnnl::engine& engine() { return engine_; }
  /// A oneDNN stream per calling thread: streams are not thread-safe, and a Dataset may compute on
  /// a background thread while the model trains.
  dnnl::stream& stream();
  /// The primitive for `key`, created by `make` on first use. A steady training step only hits.
  const CachedPrimitive& cached(const std::string& key, const std::function<CachedPrimitive()>& make);
  /// Runs `p` on this thread's stream with `args` plus a scratchpad from the caching allocator,
  /// and waits for it.
  void execute(const CachedPrimitive& p, std::unordered_map<int, dnnl::memory> args);
  /// Reorders between two layouts (cached), for weights in the primitive's preferred format.
  void reorder(const dnnl::memory::desc& from, void* src, const dnnl::memory::desc& to, void* dst);
  /// Scratch memory from the caching allocator, for a primitive's reordered operands.
  std::shared_ptr<Storage> scratch(size_t nbytes) { return allocate(nbytes); }

 private:
  const CachedPrimitive& forward_primitive(RnnCell cell, bool training, const RnnShapes& s);
  std::unordered_map<int, dnnl::memory>& bind_rnn_operands(
      const RnnAttrs& a, const RnnShapes& s, const dnnl::rnn_primitive_desc_base& pd, const Tensor& x,
      const Tensor& h0, const Tensor* c0, const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
      const Tensor* recurrent_bias, const Tensor& y, const Tensor& h_last, const Tensor* c_last, RnnOperands& o);
  // A forward convolution's output left in the Winograd primitive's blocked layout (conv_common's
  // keep_blocked), for a pooling that reads it there.
  struct BlockedOutput {
    std::shared_ptr<Storage> storage;
    dnnl::memory::desc md;
  };
  void conv_common(bool transposed, int direction, const Tensor& a, const Tensor& b, const Tensor* bias, Tensor& out,
                   Tensor* dbias, const ConvAttrs& attrs, BlockedOutput* keep_blocked = nullptr);
  // Max pooling of a BlockedOutput into y (NHWC): oneDNN's pooling on the blocked layout, then a
  // reorder of the (smaller) pooled result.
  void pool_blocked(const BlockedOutput& z, Tensor& y, const PoolAttrs& attrs);
  /// Inference weights in the layout `to` (a blocked layout, Winograd's transform), reordered once and
  /// reused while w's storage keeps its version; the weights themselves where `to` is their layout.
  std::shared_ptr<Storage> reordered_weights(const Tensor& w, const dnnl::memory::desc& from,
                                             const dnnl::memory::desc& to);
  /// Runs a forward convolution primitive whose operands may want other layouts than ours.
  // y = act(y * scale + shift + residual) per channel of an NHWC tensor (scale and shift, or the
  // residual of y's shape, may be null): a folded batch norm and a residual block's Add after a
  // kernel that takes no binary post-ops.
  void apply_channel_affine(Tensor& y, const float* scale, const float* shift, const float* residual,
                            UnaryOp activation);
  // A convolution's forward or backward-weights pass with activations and weights in the
  // primitive's (blocked) layouts, reordered from and back to ours; inference reuses the weights'
  // transform while they are unchanged.
  void conv_blocked(const CachedPrimitive& p, bool backward_weights, const dnnl::memory::desc& x_md,
                    const dnnl::memory::desc& w_user, const dnnl::memory::desc& bias_md,
                    const dnnl::memory::desc& y_md, const Tensor& x, const Tensor& w, const Tensor* bias,
                    const Tensor& y, bool reuse_weight_transform, BlockedOutput* keep_blocked = nullptr);

  int index_;
  dnnl::engine& engine_;  // one for every logical device, so that each thread's stream fits them all
  int default_threads_;    // OpenMP's thread count at creation (OMP_NUM_THREADS)
  bool winograd_enabled_;  // settings().conv_winograd at creation
  uint32_t bf16_families_;  // bit per OpFamily computed in bfloat16 here (probe_bf16_families)
  bool bf16_eltwise_;       // oneDNN has an optimized bfloat16 eltwise (large unary ops use it)
  CachingAllocator allocator_;
  std::mutex cache_mutex_;
  std::unordered_map<std::string, CachedPrimitive> cache_;
  DerivedCache<std::shared_ptr<Storage>> reordered_weights_{size_t{1} << 30};
  std::atomic<int64_t> weight_reorders_{0};  // inference weights reordered (a miss of reordered_weights_)
  std::atomic<int64_t> weight_reuses_{0};    // ... reused unchanged
  std::atomic<int64_t> primitives_created_{0};
  std::atomic<int64_t> cache_hits_{0};
  std::atomic<int64_t> fused_conv_max_pools_{0};  // conv_max_pool_forward calls that took the one-pass kernel
  std::atomic<int64_t> blocked_poolings_{0};      // ... that pooled a Winograd output in its blocked layout
};

/// Calls f(i) for i in [0, n) on OpenMP threads when n is large enough to pay for them.
template <typename F>
inline void parallel_for(int64_t n, F&& f, int64_t grain = 1 << 14) {
  if (n < grain) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) f(i);
}

/// Calls f.template operator()<T>() with T the C++ type of `dtype`; throws TypeError for
/// dtypes this backend does not compute in.
template <typename F>
inline void dispatch_dtype(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::float32:
      f.template operator()<float>();
      return;
    case DType::int32:
      f.template operator()<int32_t>();
      return;
    case DType::int64:
      f.template operator()<int64_t>();
      return;
    case DType::uint8:
      f.template operator()<uint8_t>();
      return;
    case DType::bool_:
      f.template operator()<uint8_t>();
      return;
    default:
      throw TypeError(fmt::format("cpu backend: {} does not support dtype {}", op, dtype_name(dtype)));
  }
}

/// bfloat16 from float, rounding to nearest even (NaN stays NaN), and back.
inline uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_float(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// A bfloat16 element that computes as float: arithmetic converts both sides to float and a result
/// stored back is rounded once, which is what float32 copies rounded back give. Lets the typed
/// elementwise and reduction loops run on bfloat16 storage.
struct BFloat16 {
  uint16_t bits;
  BFloat16() = default;
  BFloat16(float f) : bits(float_to_bf16(f)) {}             // NOLINT: implicit, as float results store back
  operator float() const { return bf16_to_float(bits); }  // NOLINT
};

/// The OpFamily values (as bits) this backend computes in bfloat16: elementwise ops and reductions
/// (its own loops) everywhere, and those for which oneDNN has optimized bfloat16 kernels on this
/// processor (a family with only a reference kernel is left out). only_fast: no matmul or
/// convolution without AVX512_BF16 or AMX, where oneDNN's are slower than float32 ones.
uint32_t probe_bf16_families(const dnnl::engine& engine, bool only_fast);
/// Whether oneDNN has an optimized bfloat16 eltwise primitive here (AVX-512).
bool probe_bf16_eltwise(const dnnl::engine& engine);

/// Broadcast strides of `s` against `out` (0 where broadcast), in elements.
std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out);

}  // namespace keras::cpu
