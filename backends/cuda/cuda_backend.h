#pragma once
// The CUDA backend: cuDNN for convolutions, softmax and the LSTM/GRU recurrences, cuBLAS for matrix products,
// CUDA kernels (kernels.cu) for the rest. One stream per device; the host waits only where a value
// is read back or an input must be validated (embedding ids).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backends/cuda/kernels.h"
#include "core/backend.h"
#include "core/check.h"
#include "core/config.h"
#include "core/derived_cache.h"
#include "core/memory_use.h"

namespace keras::cuda {

struct RnnPlan;

/// Each vendor call is checked where it is made; the error names the expression and the library's text.
#define KCPP_CUDA(expr)                                                                                  \
  do {                                                                                                   \
    const cudaError_t e_ = (expr);                                                                       \
    if (e_ != cudaSuccess)                                                                               \
      throw ::keras::BackendError(                                                                       \
          fmt::format("CUDA: {} failed: {} ({})", #expr, cudaGetErrorString(e_), static_cast<int>(e_))); \
  } while (0)
#define KCPP_CUDNN(expr)                                                                                \
  do {                                                                                                  \
    const cudnnStatus_t s_ = (expr);                                                                    \
    if (s_ != CUDNN_STATUS_SUCCESS)                                                                     \
      throw ::keras::BackendError(fmt::format("cuDNN: {} failed: {}", #expr, cudnnGetErrorString(s_))); \
  } while (0)
#define KCPP_CUBLAS(expr)                                                                                  \
  do {                                                                                                     \
    const cublasStatus_t s_ = (expr);                                                                      \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                                       \
      throw ::keras::BackendError(fmt::format("cuBLAS: {} failed: {}", #expr, cublasGetStatusString(s_))); \
  } while (0)
/// Owns one cuDNN descriptor: created with the owner, destroyed with it.
template <typename T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
struct CudnnDescriptor {
  T d = nullptr;
  CudnnDescriptor() { KCPP_CUDNN(Create(&d)); }
  ~CudnnDescriptor() { Destroy(d); }
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
};

/// After a kernel launch: launch errors surface here, not at some later call.
#define KCPP_LAUNCHED() KCPP_CUDA(cudaGetLastError())

/// Size-bucketed caching allocator: a steady training step calls no cudaMalloc or cudaFree.
/// Blocks are reused in stream order on the backend's single stream, so no event is needed.
class DeviceAllocator {
 public:
  /// Blocks allocated while a graph is recorded: reused only by that graph until it is destroyed.
  struct GraphPool {
    std::unordered_multimap<size_t, void*> free;
    bool closed = false;
  };
  ~DeviceAllocator();
  void* allocate(size_t nbytes);
  void release(void* ptr, size_t nbytes);
  int64_t device_mallocs() const { return mallocs_.load(); }
  /// Blocks handed out; blocks taken from the device (handed out, cached, or kept for recorded steps).
  MemoryUse& use() { return use_; }
  const MemoryUse& use() const { return use_; }
  MemoryUse& reserved() { return reserved_; }
  const MemoryUse& reserved() const { return reserved_; }
  /// Frees every cached block (after an out-of-memory, before retrying).
  void empty_cache();
  /// While a pool is open, the calling thread's allocations come from it (and cudaMalloc), not
  /// from the shared cache; other threads' still come from the cache.
  std::shared_ptr<GraphPool> open_pool();
  void stop_pool();
  /// The pool's free blocks return to the shared cache; its live ones do when released.
  void close_pool(const std::shared_ptr<GraphPool>& pool);

 private:
  std::mutex mutex_;
  std::unordered_multimap<size_t, void*> free_;
  std::atomic<int64_t> mallocs_{0};
  MemoryUse use_, reserved_;
  std::shared_ptr<GraphPool> recording_;
  std::thread::id recording_thread_;
  std::unordered_map<void*, std::shared_ptr<GraphPool>> pool_of_;
};

class CudaBackend final : public Backend {
 public:
  /// keep_current: leave `device` the creating thread's current device.
  CudaBackend(int device, bool keep_current);
  ~CudaBackend() override;
  std::string name() const override { return "cuda"; }
  Device device() const override { return {DeviceType::cuda, device_}; }
  bool supports(Capability c) const override;
  bool computes_low_precision(OpFamily family, DType dtype) const override;
  std::map<std::string, int64_t> counters() const override;
  MemoryInfo memory_info() const override;
  void reset_peak_memory() override;

  std::shared_ptr<Storage> allocate(size_t nbytes) override;
  void deallocate(void* data, size_t nbytes) override;
  void copy_from_host(void* dst, const void* src, size_t nbytes) override;
  void copy_to_host(void* dst, const void* src, size_t nbytes) override;
  void copy(void* dst, const void* src, size_t nbytes) override;
  void fill(Tensor& y, Scalar value) override;
  void synchronize() override;

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

  void random(RandomDistribution dist, const RandomKey& key, float a, float b, Tensor& y) override;
  void dropout_mask(float rate, const RandomKey& key, Tensor& mask) override;

  void sgd_update(Tensor& variable, const Tensor& gradient, Tensor* momentum_buffer, const SGDAttrs& attrs) override;
  void adam_update(Tensor& variable, const Tensor& gradient, Tensor& m, Tensor& v, Tensor* vhat,
                   const AdamAttrs& attrs) override;

  void begin_capture() override;
  std::unique_ptr<CapturedWork> end_capture() override;
  /// A conditional node (CUDA 12.3+) whose body is the guarded work, run where a kernel found the
  /// recording's failure flag (set by every recorded check_ids) clear. Where the graph API refuses,
  /// the recording is given up (the step runs op by op).
  void begin_guarded_by_checks() override;
  void end_guarded_by_checks() override;
  /// Op by op, checks then queue their kernel and are read (one wait) at the guard.
  void begin_deferring_checks() override;
  void end_deferring_checks() override;

  // Fused recurrences on cuDNN (rnn.cpp): LSTM and GRU with reset_after.
  void rnn_forward(const RnnAttrs& attrs, const Tensor& x, const Tensor& h0, const Tensor* c0, const Tensor& kernel,
                   const Tensor& recurrent_kernel, const Tensor& bias, const Tensor* recurrent_bias, Tensor& y,
                   Tensor& h_last, Tensor* c_last, Tensor* workspace) override;
  void rnn_backward(const RnnAttrs& attrs, const Tensor& x, const Tensor& h0, const Tensor* c0, const Tensor& kernel,
                    const Tensor& recurrent_kernel, const Tensor& bias, const Tensor* recurrent_bias, const Tensor& y,
                    const Tensor& h_last, const Tensor* c_last, const Tensor& workspace, const Tensor& dy,
                    const Tensor& dh_last, const Tensor* dc_last, Tensor& dx, Tensor& dh0, Tensor* dc0,
                    Tensor& dkernel, Tensor& drecurrent_kernel, Tensor& dbias, Tensor* drecurrent_bias) override;

  // Shared by this backend's files.
  /// The calling thread's stream and handles. A thread recording a graph queues on a stream (and
  /// handles) of its own, so what other threads queue meanwhile (a Dataset's next batch) runs as
  /// usual and stays out of the graph.
  cudaStream_t stream() const { return capturing_here() ? (guarding_ ? guard_stream_ : capture_stream_) : stream_; }
  cudnnHandle_t cudnn() const { return capturing_here() ? capture_cudnn_ : cudnn_; }
  cublasHandle_t cublas() const { return capturing_here() ? capture_cublas_ : cublas_; }
  /// The stream every thread but a recording one uses, and replays run on.
  cudaStream_t main_stream() const { return stream_; }
  void* native_stream() const override { return stream(); }  // the capture stream while this thread records
  void make_current() override;
  std::shared_ptr<Storage> scratch(size_t nbytes) { return allocate(nbytes); }
  /// Throws ValueError naming the first id outside [0, limit) (waits for the device). While a
  /// graph is recorded, the check is recorded too and read after each replay; while this thread
  /// defers its checks (begin_deferring_checks), it is read at the step's guard.
  void check_ids(const Tensor& ids, int64_t limit, const char* op, const char* what);
  /// A check_ids recorded in a graph: the slot holds the position of the first bad id (or more).
  struct RecordedCheck {
    std::shared_ptr<Storage> slot;
    Tensor ids;
    int64_t limit;
    std::string op, what;
  };
  /// Cached algorithm choices, keyed by problem; values are algorithm enums and workspace bytes.
  std::mutex algo_mutex;
  std::unordered_map<std::string, std::pair<int, size_t>> algo_cache;
  std::atomic<int64_t> algorithm_searches{0};
  std::atomic<int64_t> graph_replays{0};
  /// Inference data derived from weights (`what` names it: a kernel's KRSC layout, a folded batch
  /// norm's scale and shift), made by `make` and kept per set of source storages, reused while each
  /// keeps its version. Undefined sources are skipped. Not kept while this thread records: a replay
  /// must read the weights as they are then.
  Tensor inference_weights(const std::vector<const Tensor*>& sources, const std::string& what,
                           const std::function<Tensor()>& make);
  /// cuDNN's descriptors for one recurrence problem (rnn.cpp), built once; after_failure drops the
  /// cached plan for the next algorithm.
  std::shared_ptr<const RnnPlan> rnn_plan(RnnCell cell, const Tensor& x, const Tensor& recurrent_kernel, bool training,
                                          bool after_failure);

 private:
  int device_;
  // Read once, at creation.
  bool native_low_precision_ = settings().native_low_precision != Settings::LowPrecisionKernels::none;
  bool capturing_here() const { return capturing_thread_.load() == std::this_thread::get_id(); }
  cudaStream_t stream_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  DeviceAllocator allocator_;
  // Recording (begin_capture ... end_capture): one thread at a time, on its own stream and handles.
  std::shared_ptr<DeviceAllocator::GraphPool> capture_pool_;
  std::atomic<std::thread::id> capturing_thread_{};
  cudaStream_t capture_stream_ = nullptr;
  cudnnHandle_t capture_cudnn_ = nullptr;
  cublasHandle_t capture_cublas_ = nullptr;
  std::vector<RecordedCheck> recorded_checks_;
  // The recording thread's only: an int32 every recorded check sets to 1 where it fails (made at
  // the first check), the guarded section's depth, whether its work goes to a conditional body
  // (on guard_stream_) now, and whether the graph API refused (the recording is then given up).
  std::shared_ptr<Storage> capture_failed_;
  int guard_depth_ = 0;
  bool guarding_ = false;
  bool capture_broken_ = false;
  cudaStream_t guard_stream_ = nullptr;
  /// Gives the recording up: logs `what` and clears the error it left.
  void break_capture(const char* what, cudaError_t error);
  std::mutex rnn_mutex_;
  std::unordered_map<std::string, std::shared_ptr<RnnPlan>> rnn_plans_;
  DerivedCache<Tensor> kept_weights_{size_t{1} << 30};
  std::atomic<int64_t> weight_reorders_{0}, weight_reuses_{0};
};

/// The element-type code shared with kernels.cu.
inline int code_of(DType d) { return static_cast<int>(d); }
/// Shape and per-input strides for broadcasting kernels; throws for ranks beyond kMaxRank.
kernels::Indexer make_indexer(const Shape& out, std::initializer_list<const Shape*> inputs);

}  // namespace keras::cuda
