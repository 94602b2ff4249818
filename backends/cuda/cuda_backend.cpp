#include "backends/cuda/cuda_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include "core/backend_plugin.h"
#include "core/config.h"
#include "core/logging.h"

namespace keras::cuda {

static_assert(static_cast<int>(DType::float32) == kernels::f32 && static_cast<int>(DType::float16) == kernels::f16 &&
                  static_cast<int>(DType::bfloat16) == kernels::bf16 &&
                  static_cast<int>(DType::int32) == kernels::i32 && static_cast<int>(DType::int64) == kernels::i64 &&
                  static_cast<int>(DType::uint8) == kernels::u8 && static_cast<int>(DType::bool_) == kernels::b8,
              "kernels.h dtype codes must follow keras::DType");

namespace {
// Low-precision products accumulate in float32 throughout, as the CPU backend's and the float32
// emulation's: by default cuBLAS may sum split-K partial products in the output's bfloat16/float16.
constexpr cublasMath_t kCublasMath = CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;

size_t bucket(size_t n) {
  if (n <= 4096) return std::max<size_t>(256, (n + 255) & ~size_t{255});
  size_t p = 4096;
  while (p < n) p <<= 1;
  size_t s = p / 2;
  while (s < n) s += p / 8;
  return s;
}
}  // namespace

// With several GPUs in one process, a thread works on one device (DeviceScope makes it current), but
// any thread may allocate, fill or copy another device's tensors (a replica's weights): those calls
// switch devices for their duration.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (cudaGetDevice(&previous_) == cudaSuccess && previous_ != device) {
      KCPP_CUDA(cudaSetDevice(device));
    } else {
      previous_ = -1;
    }
  }
  ~DeviceGuard() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// Allocator -----------------------------------------------------------------------------------------

void* DeviceAllocator::allocate(size_t nbytes) {
  const size_t size = bucket(nbytes);
  std::shared_ptr<GraphPool> pool;
  {
    std::lock_guard lock(mutex_);
    if (recording_ && std::this_thread::get_id() == recording_thread_) pool = recording_;
    auto& cache = pool ? pool->free : free_;
    auto it = cache.find(size);
    if (it != cache.end()) {
      void* p = it->second;
      cache.erase(it);
      use_.add(static_cast<int64_t>(size));
      return p;
    }
  }
  void* p = nullptr;
  mallocs_.fetch_add(1, std::memory_order_relaxed);
  if (cudaMalloc(&p, size) != cudaSuccess) {
    (void)cudaGetLastError();
    empty_cache();  // give cached blocks back and try once more
    const cudaError_t e = cudaMalloc(&p, size);
    if (e != cudaSuccess)
      throw BackendError(
          fmt::format("CUDA: out of device memory allocating {} bytes ({} in use, {} held by the cache and "
                      "recorded steps): {}",
                      size, use_.now(), reserved_.now() - use_.now(), cudaGetErrorString(e)));
  }
  use_.add(static_cast<int64_t>(size));
  reserved_.add(static_cast<int64_t>(size));
  if (pool) {
    std::lock_guard lock(mutex_);
    pool_of_[p] = pool;
  }
  return p;
}

void DeviceAllocator::release(void* ptr, size_t nbytes) {
  use_.remove(static_cast<int64_t>(bucket(nbytes)));
  std::lock_guard lock(mutex_);
  if (auto it = pool_of_.find(ptr); it != pool_of_.end()) {
    if (!it->second->closed) {
      it->second->free.emplace(bucket(nbytes), ptr);
      return;
    }
    pool_of_.erase(it);
  }
  free_.emplace(bucket(nbytes), ptr);
}

std::shared_ptr<DeviceAllocator::GraphPool> DeviceAllocator::open_pool() {
  std::lock_guard lock(mutex_);
  recording_ = std::make_shared<GraphPool>();
  recording_thread_ = std::this_thread::get_id();
  return recording_;
}
void DeviceAllocator::stop_pool() {
  std::lock_guard lock(mutex_);
  recording_.reset();
}
void DeviceAllocator::close_pool(const std::shared_ptr<GraphPool>& pool) {
  std::lock_guard lock(mutex_);
  pool->closed = true;
  for (auto& [size, p] : pool->free) {
    pool_of_.erase(p);
    free_.emplace(size, p);
  }
  pool->free.clear();
}

void DeviceAllocator::empty_cache() {
  std::lock_guard lock(mutex_);
  cudaDeviceSynchronize();
  for (auto& [size, p] : free_) {
    cudaFree(p);
    reserved_.remove(static_cast<int64_t>(size));
  }
  free_.clear();
}

DeviceAllocator::~DeviceAllocator() = default;  // the process is ending: the driver reclaims device memory

// Backend --------------------------------------------------------------------------------------------

CudaBackend::CudaBackend(int device, bool keep_current) : device_(device) {
  // The process' own GPU (a bare "cuda") becomes the creating thread's device; another one
  // ("cuda:1") leaves the thread where it was.
  std::optional<DeviceGuard> guard;
  if (keep_current)
    KCPP_CUDA(cudaSetDevice(device_));
  else
    guard.emplace(device_);
  KCPP_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  KCPP_CUDNN(cudnnCreate(&cudnn_));
  KCPP_CUDNN(cudnnSetStream(cudnn_, stream_));
  KCPP_CUBLAS(cublasCreate(&cublas_));
  KCPP_CUBLAS(cublasSetStream(cublas_, stream_));
  KCPP_CUBLAS(cublasSetMathMode(cublas_, kCublasMath));
  // The loaded libraries, not the headers, decide the kernels: two machines' figures compare only with these.
  int cublas_version = 0;
  cublasGetVersion(cublas_, &cublas_version);
  detail::log_info(fmt::format("cuda backend: device {}, cuDNN {} (built with {}), cuBLAS {}", device_,
                               cudnnGetVersion(), CUDNN_VERSION, cublas_version));
}

CudaBackend::~CudaBackend() = default;  // never unloaded (see the registry)

void CudaBackend::make_current() { KCPP_CUDA(cudaSetDevice(device_)); }

// Graph capture ------------------------------------------------------------------------------------

namespace {
// Waits once for the checks' slots on `stream` and throws the first failed one's error, naming
// the id (read back from the device) and its position.
void raise_failed_checks(const std::vector<CudaBackend::RecordedCheck>& checks, cudaStream_t stream) {
  if (checks.empty()) return;
  std::vector<int64_t> bad(checks.size());
  for (size_t i = 0; i < checks.size(); ++i)
    KCPP_CUDA(cudaMemcpyAsync(&bad[i], checks[i].slot->data(), sizeof(int64_t), cudaMemcpyDeviceToHost, stream));
  KCPP_CUDA(cudaStreamSynchronize(stream));
  for (size_t i = 0; i < checks.size(); ++i) {
    const CudaBackend::RecordedCheck& c = checks[i];
    if (bad[i] >= c.ids.num_elements()) continue;
    int64_t id = 0;
    const size_t es = dtype_size(c.ids.dtype());
    KCPP_CUDA(cudaMemcpy(&id, static_cast<const char*>(c.ids.raw_data()) + static_cast<size_t>(bad[i]) * es, es,
                         cudaMemcpyDeviceToHost));
    if (es == 4) id = static_cast<int32_t>(id & 0xffffffff);
    throw ValueError(fmt::format("{}: {} {} at position {} is out of range [0, {})", c.op, c.what, id, bad[i],
                                 c.limit));
  }
}

// Checks deferred op by op (begin_deferring_checks), per thread: a replica's thread, the training
// thread and a Dataset's thread each keep their own.
struct DeferredChecks {
  const CudaBackend* owner = nullptr;
  int depth = 0;
  bool settled = false;  // read at the guard: checks after it are read where they run
  std::vector<CudaBackend::RecordedCheck> pending;
};
thread_local DeferredChecks deferred;

class CudaGraph final : public CapturedWork {
 public:
  CudaGraph(CudaBackend& be, DeviceAllocator& allocator, cudaGraph_t graph, cudaGraphExec_t exec,
            std::shared_ptr<DeviceAllocator::GraphPool> pool, std::vector<CudaBackend::RecordedCheck> checks,
            std::shared_ptr<Storage> failed_flag)
      : be_(be),
        allocator_(allocator),
        graph_(graph),
        exec_(exec),
        pool_(std::move(pool)),
        checks_(std::move(checks)),
        failed_flag_(std::move(failed_flag)) {}
  ~CudaGraph() override {
    // Launches in flight still complete; the pool's blocks are reused after them, in stream order.
    cudaGraphExecDestroy(exec_);
    cudaGraphDestroy(graph_);
    checks_.clear();  // their slots go back to the pool before it closes
    failed_flag_.reset();
    allocator_.close_pool(pool_);
  }
  void replay() override {
    KCPP_CUDA(cudaGraphLaunch(exec_, be_.main_stream()));
    be_.graph_replays.fetch_add(1);
    // Recorded id checks: one wait for all of them, as a step run op by op would wait for each.
    raise_failed_checks(checks_, be_.main_stream());
  }

 private:
  using RecordedCheck = CudaBackend::RecordedCheck;
  CudaBackend& be_;
  DeviceAllocator& allocator_;
  cudaGraph_t graph_;
  cudaGraphExec_t exec_;
  std::shared_ptr<DeviceAllocator::GraphPool> pool_;
  std::vector<RecordedCheck> checks_;
  std::shared_ptr<Storage> failed_flag_;
};
}  // namespace

void CudaBackend::begin_capture() {
  KCPP_CHECK(!capture_pool_, ValueError, "cuda backend: a graph is already being recorded");
  DeviceGuard on(device_);
  if (!capture_stream_) {  // the recording thread's own stream and handles, made once
    KCPP_CUDA(cudaStreamCreateWithFlags(&capture_stream_, cudaStreamNonBlocking));
    KCPP_CUDNN(cudnnCreate(&capture_cudnn_));
    KCPP_CUDNN(cudnnSetStream(capture_cudnn_, capture_stream_));
    KCPP_CUBLAS(cublasCreate(&capture_cublas_));
    KCPP_CUBLAS(cublasSetStream(capture_cublas_, capture_stream_));
    KCPP_CUBLAS(cublasSetMathMode(capture_cublas_, kCublasMath));
    KCPP_CUDA(cudaStreamCreateWithFlags(&guard_stream_, cudaStreamNonBlocking));
  }
  // The recording reads what earlier work on the main stream wrote only when it is replayed there.
  // Relaxed: cudaMalloc stays allowed (new pool blocks); anything that waits on the stream fails.
  const cudaError_t e = cudaStreamBeginCapture(capture_stream_, cudaStreamCaptureModeRelaxed);
  if (e != cudaSuccess) KCPP_CUDA(e);
  recorded_checks_.clear();
  capture_failed_.reset();
  guard_depth_ = 0;
  guarding_ = false;
  capture_broken_ = false;
  capture_pool_ = allocator_.open_pool();
  capturing_thread_.store(std::this_thread::get_id());
}

std::unique_ptr<CapturedWork> CudaBackend::end_capture() {
  KCPP_CHECK(capture_pool_ && capturing_here(), ValueError,
             "cuda backend: end_capture without begin_capture on this thread");
  if (guarding_) {  // a step that threw inside its guarded section: close the body's capture
    guard_depth_ = 1;
    end_guarded_by_checks();
  }
  auto pool = std::move(capture_pool_);
  capture_pool_.reset();
  capturing_thread_.store(std::thread::id{});
  allocator_.stop_pool();
  std::vector<RecordedCheck> checks = std::move(recorded_checks_);
  recorded_checks_.clear();
  std::shared_ptr<Storage> failed_flag = std::move(capture_failed_);
  capture_failed_.reset();
  cudaGraph_t graph = nullptr;
  const cudaError_t e = cudaStreamEndCapture(capture_stream_, &graph);
  cudaGraphExec_t exec = nullptr;
  if (e == cudaSuccess && graph && !capture_broken_ && cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess)
    return std::make_unique<CudaGraph>(*this, allocator_, graph, exec, std::move(pool), std::move(checks),
                                       std::move(failed_flag));
  (void)cudaGetLastError();  // the failed recording's error is this call's answer, not the next call's
  if (graph) cudaGraphDestroy(graph);
  checks.clear();
  failed_flag.reset();
  allocator_.close_pool(pool);
  return nullptr;
}

void CudaBackend::break_capture(const char* what, cudaError_t error) {
  detail::log_debug(fmt::format("cuda backend: {} failed ({}); the step is not recorded", what, cudaGetErrorString(error)));
  (void)cudaGetLastError();
  capture_broken_ = true;
}

void CudaBackend::begin_deferring_checks() {
  if (deferred.owner && deferred.owner != this) return;  // another device's step on this thread
  deferred.owner = this;
  ++deferred.depth;
}

void CudaBackend::end_deferring_checks() {
  if (deferred.owner != this || --deferred.depth > 0) return;
  deferred = DeferredChecks{};  // unread checks of a step that failed otherwise: their slots are freed in stream order
}

void CudaBackend::begin_guarded_by_checks() {
  if (!capturing_here()) {  // op by op: the step's deferred checks, read with one wait
    if (deferred.owner != this || deferred.settled) return;
    deferred.settled = true;
    std::vector<RecordedCheck> pending = std::move(deferred.pending);
    deferred.pending.clear();
    DeviceGuard on(device_);
    raise_failed_checks(pending, stream());
    return;
  }
  // Nothing to guard before the first check; nested sections are part of the outer one.
  if (guard_depth_++ > 0 || !capture_failed_ || capture_broken_) return;
  DeviceGuard on(device_);
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  cudaGraph_t graph = nullptr;
  cudaError_t e = cudaStreamGetCaptureInfo(capture_stream_, &status, nullptr, &graph);
  if (e != cudaSuccess || status != cudaStreamCaptureStatusActive) return break_capture("cudaStreamGetCaptureInfo", e);
  cudaGraphConditionalHandle handle = 0;
  e = cudaGraphConditionalHandleCreate(&handle, graph, 0, cudaGraphCondAssignDefault);
  if (e != cudaSuccess) return break_capture("cudaGraphConditionalHandleCreate", e);
  kernels::set_conditional_if_passed(static_cast<const int*>(capture_failed_->data()), handle, capture_stream_);
  if ((e = cudaGetLastError()) != cudaSuccess) return break_capture("the guard kernel", e);
  // The conditional node goes after what the capture has queued so far, and what follows after it.
  const cudaGraphNode_t* deps = nullptr;
  const cudaGraphEdgeData* edges = nullptr;
  size_t count = 0;
  e = cudaStreamGetCaptureInfo(capture_stream_, &status, nullptr, &graph, &deps, &edges, &count);
  if (e != cudaSuccess) return break_capture("cudaStreamGetCaptureInfo", e);
  cudaGraphNodeParams params{};
  params.type = cudaGraphNodeTypeConditional;
  params.conditional.handle = handle;
  params.conditional.type = cudaGraphCondTypeIf;
  params.conditional.size = 1;
  cudaGraphNode_t node = nullptr;
  if ((e = cudaGraphAddNode(&node, graph, deps, edges, count, &params)) != cudaSuccess)
    return break_capture("cudaGraphAddNode (conditional)", e);
  e = cudaStreamUpdateCaptureDependencies(capture_stream_, &node, nullptr, 1, cudaStreamSetCaptureDependencies);
  if (e != cudaSuccess) return break_capture("cudaStreamUpdateCaptureDependencies", e);
  e = cudaStreamBeginCaptureToGraph(guard_stream_, params.conditional.phGraph_out[0], nullptr, nullptr, 0,
                                    cudaStreamCaptureModeRelaxed);
  if (e != cudaSuccess) return break_capture("cudaStreamBeginCaptureToGraph", e);
  guarding_ = true;  // stream() is guard_stream_ from here
  cudnnSetStream(capture_cudnn_, guard_stream_);
  cublasSetStream(capture_cublas_, guard_stream_);
}

void CudaBackend::end_guarded_by_checks() {
  if (!capturing_here() || guard_depth_ == 0 || --guard_depth_ > 0 || !guarding_) return;
  DeviceGuard on(device_);
  guarding_ = false;
  cudnnSetStream(capture_cudnn_, capture_stream_);
  cublasSetStream(capture_cublas_, capture_stream_);
  cudaGraph_t body = nullptr;
  const cudaError_t e = cudaStreamEndCapture(guard_stream_, &body);
  if (e != cudaSuccess) break_capture("the guarded section's capture", e);
}

bool CudaBackend::supports(Capability c) const {
  return c == Capability::fused_matmul_activation || c == Capability::fused_conv_activation ||
         c == Capability::fused_rnn || c == Capability::fused_conv_affine || c == Capability::fused_conv_residual ||
         c == Capability::graph_capture || c == Capability::fused_layer_norm;
}

bool CudaBackend::computes_low_precision(OpFamily family, DType dtype) const {
  // cuBLAS and cuDNN in float16/bfloat16 with float32 compute, and the kernels of kernels.cu. The
  // recurrences (cuDNN) run on float32 copies.
  (void)dtype;
  switch (family) {
    case OpFamily::matmul:
    case OpFamily::conv:
    case OpFamily::elementwise:
    case OpFamily::reduce:
    case OpFamily::pool:
    case OpFamily::batch_norm:
    case OpFamily::softmax:
      return native_low_precision_;
  }
  return false;
}

std::map<std::string, int64_t> CudaBackend::counters() const {
  return {{"device_mallocs", allocator_.device_mallocs()},
          {"algorithm_searches", algorithm_searches.load()},
          {"graph_replays", graph_replays.load()},
          {"weight_reorders", weight_reorders_.load()},
          {"weight_reuses", weight_reuses_.load()},
          {"bytes_reserved", allocator_.reserved().now()},
          {"peak_bytes_reserved", allocator_.reserved().peak()}};
}

MemoryInfo CudaBackend::memory_info() const { return {allocator_.use().now(), allocator_.use().peak()}; }
void CudaBackend::reset_peak_memory() {
  allocator_.use().reset_peak();
  allocator_.reserved().reset_peak();
}

Tensor CudaBackend::inference_weights(const std::vector<const Tensor*>& sources, const std::string& what,
                                      const std::function<Tensor()>& make) {
  const DerivedSources l = derived_sources(sources, what);
  const bool keepable = !capturing_here() && std::all_of(l.storages.begin(), l.storages.end(), [this](const auto& s) {
    return s->owner() == this;
  });
  if (keepable)
    if (Tensor kept = kept_weights_.find(l); kept.defined()) {
      weight_reuses_.fetch_add(1);
      return kept;
    }
  Tensor made = make();  // new memory: queued work may still read the old
  weight_reorders_.fetch_add(1);
  if (keepable) kept_weights_.keep(l, made);
  return made;
}

std::shared_ptr<Storage> CudaBackend::allocate(size_t nbytes) {
  if (nbytes == 0) return std::make_shared<Storage>(nullptr, 0, this);
  DeviceGuard on(device_);
  return std::make_shared<Storage>(allocator_.allocate(nbytes), nbytes, this);
}
void CudaBackend::deallocate(void* data, size_t nbytes) { allocator_.release(data, nbytes); }

void CudaBackend::copy_from_host(void* dst, const void* src, size_t n) {
  // The host buffer may go away when this returns: wait for the copy. In a recording that wait is
  // an error that breaks the capture, and a replay would read a buffer long gone: refuse the step
  // (it runs op by op), as the CPU recorder of the tests does.
  KCPP_CHECK(!capturing_here(), BackendError, "cuda backend: a copy from the host while a step is being recorded");
  DeviceGuard on(device_);
  KCPP_CUDA(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, stream()));
  KCPP_CUDA(cudaStreamSynchronize(stream()));
}
void CudaBackend::copy_to_host(void* dst, const void* src, size_t n) {
  KCPP_CHECK(!capturing_here(), BackendError, "cuda backend: a read of the device while a step is being recorded");
  DeviceGuard on(device_);
  KCPP_CUDA(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, stream()));
  KCPP_CUDA(cudaStreamSynchronize(stream()));
}
void CudaBackend::copy(void* dst, const void* src, size_t n) {
  DeviceGuard on(device_);
  KCPP_CUDA(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, stream()));
}
void CudaBackend::synchronize() {
  KCPP_CHECK(!capturing_here(), BackendError, "cuda backend: a wait for the device while a step is being recorded");
  DeviceGuard on(device_);
  KCPP_CUDA(cudaStreamSynchronize(stream()));
}

void CudaBackend::fill(Tensor& y, Scalar value) {
  if (!y.num_elements()) return;
  DeviceGuard on(device_);
  kernels::fill(y.raw_data(), code_of(y.dtype()), value.to_double(), value.to_int(), y.num_elements(), stream());
  KCPP_LAUNCHED();
}

kernels::Indexer make_indexer(const Shape& out, std::initializer_list<const Shape*> inputs) {
  kernels::Indexer ix;
  KCPP_CHECK(out.rank() <= static_cast<size_t>(kernels::kMaxRank), NotImplementedError,
             "cuda backend: tensors of rank {} are not supported (at most {})", out.rank(), kernels::kMaxRank);
  ix.rank = static_cast<int>(out.rank());
  for (size_t d = 0; d < out.rank(); ++d) ix.dims[d] = out[d];
  int which = 0;
  for (const Shape* s : inputs) {
    const size_t off = out.rank() - s->rank();
    const auto own = s->strides();
    for (size_t d = 0; d < s->rank(); ++d) ix.strides[which][off + d] = (*s)[d] == 1 ? 0 : own[d];
    ++which;
  }
  return ix;
}

void CudaBackend::unary(UnaryOp op, const Tensor& x, Tensor& y, const UnaryAttrs& at) {
  if (!x.num_elements()) return;
  kernels::unary(static_cast<int>(op), code_of(x.dtype()), x.raw_data(), y.raw_data(), x.num_elements(), at.alpha,
                 at.beta, stream());
  KCPP_LAUNCHED();
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y) {
  if (!y.num_elements()) return;
  if ((op == BinaryOp::divide || op == BinaryOp::floor_mod) && !is_floating(a.dtype())) {
    // Integer division by zero is an error on every backend, as on the CPU.
    Tensor b64 = Tensor::empty(b.shape(), DType::int64, this);
    cast(b, b64);
    const auto host = b64.to_vector<int64_t>();
    for (size_t i = 0; i < host.size(); ++i)
      KCPP_CHECK(host[i] != 0, ValueError, "{}: integer division by zero (divisor element {})",
                 op == BinaryOp::divide ? "divide" : "mod", i);
  }
  const bool same = a.shape() == y.shape() && b.shape() == y.shape();
  const auto ix = make_indexer(y.shape(), {&a.shape(), &b.shape()});
  kernels::binary(static_cast<int>(op), code_of(a.dtype()), a.raw_data(), b.raw_data(), y.raw_data(), y.num_elements(),
                  ix, same, stream());
  KCPP_LAUNCHED();
}

void CudaBackend::where(const Tensor& c, const Tensor& a, const Tensor& b, Tensor& y) {
  if (!y.num_elements()) return;
  const auto ix = make_indexer(y.shape(), {&c.shape(), &a.shape(), &b.shape()});
  kernels::where(code_of(a.dtype()), static_cast<const uint8_t*>(c.raw_data()), a.raw_data(), b.raw_data(),
                 y.raw_data(), y.num_elements(), ix, stream());
  KCPP_LAUNCHED();
}

void CudaBackend::cast(const Tensor& x, Tensor& y) {
  if (!x.num_elements()) return;
  kernels::cast(code_of(x.dtype()), code_of(y.dtype()), x.raw_data(), y.raw_data(), x.num_elements(), stream());
  KCPP_LAUNCHED();
}

// Reductions --------------------------------------------------------------------------------------------

namespace {
using Layout = ReduceLayout;

// In place when the reduced axes are contiguous, except small column problems over long reductions:
// those are moved so the row kernel's block reduction does the work instead of a few long threads.
Layout plan(const Tensor& x, const std::vector<int64_t>& axes, Tensor& moved) {
  const auto l = contiguous_reduce_layout(x.shape(), axes);
  if (l && (l->inner == 1 || l->outer * l->inner >= 16384 || l->r < 256)) {
    moved = x;
    return *l;
  }
  return move_reduced_axes_last(x, axes, moved);
}
}  // namespace

void CudaBackend::reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& axes, Tensor& y) {
  if (!y.num_elements()) return;
  if (!x.num_elements()) {
    fill(y, op == ReduceOp::prod ? 1 : 0);
    return;
  }
  // Few outputs from long strided columns (a bias gradient): chunked, without a transposed copy.
  const auto direct = contiguous_reduce_layout(x.shape(), axes);
  if (direct && direct->inner > 1 && direct->r >= 256 && direct->outer * direct->inner < 16384 &&
      direct->outer <= 65535) {
    const auto scratch = allocate(kernels::column_chunks(direct->outer, direct->r, direct->inner).scratch_bytes);
    kernels::reduce_columns_chunked(static_cast<int>(op), code_of(x.dtype()), x.raw_data(), scratch->data(),
                                    y.raw_data(), direct->outer, direct->r, direct->inner, stream());
    KCPP_LAUNCHED();
    return;
  }
  Tensor moved;
  const Layout l = plan(x, axes, moved);
  kernels::reduce(static_cast<int>(op), code_of(x.dtype()), moved.raw_data(), y.raw_data(), l.outer, l.r, l.inner,
                  stream());
  KCPP_LAUNCHED();
}

void CudaBackend::variance(const Tensor& x, const std::vector<int64_t>& axes, Tensor& y) {
  Tensor moved;
  const Layout l = plan(x, axes, moved);
  kernels::variance(static_cast<const float*>(moved.raw_data()), static_cast<float*>(y.raw_data()), l.outer, l.r,
                    l.inner, stream());
  KCPP_LAUNCHED();
}

void CudaBackend::arg_reduce(bool is_max, const Tensor& x, int64_t axis, Tensor& y) {
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < static_cast<int64_t>(x.rank()); ++i) {
    if (i < axis) outer *= x.shape()[static_cast<size_t>(i)];
    if (i > axis) inner *= x.shape()[static_cast<size_t>(i)];
  }
  kernels::arg_reduce(is_max, code_of(x.dtype()), x.raw_data(), static_cast<int64_t*>(y.raw_data()), outer,
                      x.shape()[static_cast<size_t>(axis)], inner, stream());
  KCPP_LAUNCHED();
}

// Data movement -------------------------------------------------------------------------------------------

namespace {
kernels::Indexer strided(const Shape& dims, const std::vector<int64_t>& strides) {
  kernels::Indexer ix;
  KCPP_CHECK(dims.rank() <= static_cast<size_t>(kernels::kMaxRank), NotImplementedError,
             "cuda backend: tensors of rank {} are not supported (at most {})", dims.rank(), kernels::kMaxRank);
  ix.rank = static_cast<int>(dims.rank());
  for (size_t d = 0; d < dims.rank(); ++d) {
    ix.dims[d] = dims[d];
    ix.strides[0][d] = strides[d];
  }
  return ix;
}
int64_t dot(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  int64_t s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
}  // namespace

void CudaBackend::concat(const std::vector<Tensor>& inputs, int64_t axis, Tensor& y) {
  const auto ys = y.shape().strides();
  int64_t start = 0;
  for (const Tensor& t : inputs) {
    if (t.num_elements()) {
      kernels::strided_scatter(static_cast<int>(dtype_size(t.dtype())), t.raw_data(), y.raw_data(),
                               strided(t.shape(), ys), start * ys[static_cast<size_t>(axis)], t.num_elements(),
                               stream());
      KCPP_LAUNCHED();
    }
    start += t.shape()[static_cast<size_t>(axis)];
  }
}

void CudaBackend::slice(const Tensor& x, const std::vector<int64_t>& starts, Tensor& y) {
  if (!y.num_elements()) return;
  const auto xs = x.shape().strides();
  kernels::strided_copy(static_cast<int>(dtype_size(x.dtype())), x.raw_data(), y.raw_data(), strided(y.shape(), xs),
                        dot(starts, xs), y.num_elements(), stream());
  KCPP_LAUNCHED();
}

void CudaBackend::slice_assign(const Tensor& x, const std::vector<int64_t>& starts, Tensor& y) {
  if (!x.num_elements()) return;
  const auto ys = y.shape().strides();
  kernels::strided_scatter(static_cast<int>(dtype_size(x.dtype())), x.raw_data(), y.raw_data(), strided(x.shape(), ys),
                           dot(starts, ys), x.num_elements(), stream());
  KCPP_LAUNCHED();
}

void CudaBackend::pad(const Tensor& x, const std::vector<std::array<int64_t, 2>>& pads, Scalar value, Tensor& y) {
  fill(y, value);
  std::vector<int64_t> starts;
  for (const auto& p : pads) starts.push_back(p[0]);
  slice_assign(x, starts, y);
}

void CudaBackend::transpose(const Tensor& x, const std::vector<int64_t>& perm, Tensor& y) {
  if (!y.num_elements()) return;
  const auto xs = x.shape().strides();
  std::vector<int64_t> src(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) src[i] = xs[static_cast<size_t>(perm[i])];
  kernels::strided_copy(static_cast<int>(dtype_size(x.dtype())), x.raw_data(), y.raw_data(), strided(y.shape(), src), 0,
                        y.num_elements(), stream());
  KCPP_LAUNCHED();
}

void CudaBackend::check_ids(const Tensor& ids, int64_t limit, const char* op, const char* what) {
  const int64_t n = ids.num_elements();
  if (!n) return;
  // Scratch per call: a Dataset's background thread may check ids while the model trains.
  auto slot = scratch(sizeof(int64_t));
  auto* bad_index = static_cast<int64_t*>(slot->data());
  kernels::fill(bad_index, code_of(DType::int64), 0.0, n, 1, stream());
  int* any_failed = nullptr;
  if (capturing_here()) {  // the flag a guarded section reads (begin_guarded_by_checks), cleared by each replay
    if (!capture_failed_) {
      capture_failed_ = scratch(sizeof(int));
      kernels::fill(capture_failed_->data(), code_of(DType::int32), 0.0, 0, 1, stream());
    }
    any_failed = static_cast<int*>(capture_failed_->data());
  }
  kernels::check_ids(ids.raw_data(), ids.dtype() == DType::int64, n, limit, bad_index, any_failed, stream());
  KCPP_LAUNCHED();
  if (capturing_here()) {  // read after each replay (CudaGraph::replay)
    recorded_checks_.push_back({std::move(slot), ids, limit, op, what});
    return;
  }
  if (deferred.owner == this && !deferred.settled) {  // read at the step's guard (begin_guarded_by_checks)
    deferred.pending.push_back({std::move(slot), ids, limit, op, what});
    return;
  }
  raise_failed_checks({{std::move(slot), ids, limit, op, what}}, stream());
}

void CudaBackend::gather(const Tensor& x, const Tensor& indices, int64_t axis, Tensor& y) {
  const int64_t d = x.shape()[static_cast<size_t>(axis)];
  check_ids(indices, d, "take", "index");
  if (!y.num_elements()) return;
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < static_cast<int64_t>(x.rank()); ++i) {
    if (i < axis) outer *= x.shape()[static_cast<size_t>(i)];
    if (i > axis) inner *= x.shape()[static_cast<size_t>(i)];
  }
  kernels::gather(static_cast<int>(dtype_size(x.dtype())), x.raw_data(), indices.raw_data(),
                  indices.dtype() == DType::int64, y.raw_data(), outer, d, indices.num_elements(), inner, stream());
  KCPP_LAUNCHED();
}

void CudaBackend::scatter_add(const Tensor& dy, const Tensor& indices, int64_t axis, Tensor& dx) {
  KCPP_CHECK(dx.dtype() == DType::float32, TypeError, "scatter_add: expected float32, received {}",
             dtype_name(dx.dtype()));
  const int64_t d = dx.shape()[static_cast<size_t>(axis)];
  check_ids(indices, d, "scatter_add", "index");
  fill(dx, 0);
  if (!dy.num_elements()) return;
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < static_cast<int64_t>(dx.rank()); ++i) {
    if (i < axis) outer *= dx.shape()[static_cast<size_t>(i)];
    if (i > axis) inner *= dx.shape()[static_cast<size_t>(i)];
  }
  kernels::scatter_add(static_cast<const float*>(dy.raw_data()), indices.raw_data(), indices.dtype() == DType::int64,
                       static_cast<float*>(dx.raw_data()), outer, d, indices.num_elements(), inner, stream());
  KCPP_LAUNCHED();
}

void CudaBackend::embedding_forward(const Tensor& table, const Tensor& ids, Tensor& y) {
  check_ids(ids, table.dim(0), "Embedding", "id");
  if (!y.num_elements()) return;
  kernels::gather(4, table.raw_data(), ids.raw_data(), ids.dtype() == DType::int64, y.raw_data(), 1, table.dim(0),
                  ids.num_elements(), table.dim(1), stream());
  KCPP_LAUNCHED();
}

void CudaBackend::embedding_backward(const Tensor& dy, const Tensor& ids, Tensor& dtable) {
  check_ids(ids, dtable.dim(0), "Embedding", "id");
  fill(dtable, 0);
  if (!dy.num_elements()) return;
  kernels::scatter_add(static_cast<const float*>(dy.raw_data()), ids.raw_data(), ids.dtype() == DType::int64,
                       static_cast<float*>(dtable.raw_data()), 1, dtable.dim(0), ids.num_elements(), dtable.dim(1),
                       stream());
  KCPP_LAUNCHED();
}

void CudaBackend::softmax_cross_entropy(const Tensor& logits, const Tensor& labels, bool sparse, Tensor& loss,
                                        Tensor* dlogits) {
  if (sparse) check_ids(labels, logits.dim(1), "softmax_cross_entropy", "label");
  if (!logits.num_elements()) return;
  kernels::softmax_cross_entropy(static_cast<const float*>(logits.raw_data()), labels.raw_data(), sparse,
                                 labels.dtype() == DType::int64, static_cast<float*>(loss.raw_data()),
                                 dlogits ? static_cast<float*>(dlogits->raw_data()) : nullptr, logits.dim(0),
                                 logits.dim(1), stream());
  KCPP_LAUNCHED();
}

// Random and optimizers -------------------------------------------------------------------------------------

void CudaBackend::random(RandomDistribution dist, const RandomKey& key, float a, float b, Tensor& y) {
  if (!y.num_elements()) return;
  kernels::random(static_cast<int>(dist), key.value,
                  key.on_device.defined() ? static_cast<const uint64_t*>(key.on_device.raw_data()) : nullptr, a, b,
                  static_cast<float*>(y.raw_data()), y.num_elements(), stream());
  KCPP_LAUNCHED();
}

void CudaBackend::dropout_mask(float rate, const RandomKey& key, Tensor& mask) {
  if (!mask.num_elements()) return;
  kernels::dropout_mask(rate, key.value,
                        key.on_device.defined() ? static_cast<const uint64_t*>(key.on_device.raw_data()) : nullptr,
                        static_cast<float*>(mask.raw_data()), mask.num_elements(), stream());
  KCPP_LAUNCHED();
}

void CudaBackend::sgd_update(Tensor& w, const Tensor& g, Tensor* m, const SGDAttrs& at) {
  if (!w.num_elements()) return;
  kernels::sgd_update(static_cast<float*>(w.raw_data()), static_cast<const float*>(g.raw_data()),
                      m ? static_cast<float*>(m->raw_data()) : nullptr, w.num_elements(), at.learning_rate,
                      at.learning_rate_on_device.defined()
                          ? static_cast<const float*>(at.learning_rate_on_device.raw_data())
                          : nullptr,
                      at.momentum, at.nesterov, stream());
  KCPP_LAUNCHED();
}

void CudaBackend::adam_update(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, Tensor* vhat, const AdamAttrs& at) {
  if (!w.num_elements()) return;
  const double t = static_cast<double>(at.step);
  const float alpha =
      static_cast<float>(at.learning_rate * std::sqrt(1.0 - std::pow(at.beta_2, t)) / (1.0 - std::pow(at.beta_1, t)));
  kernels::adam_update(static_cast<float*>(w.raw_data()), static_cast<const float*>(g.raw_data()),
                       static_cast<float*>(m.raw_data()), static_cast<float*>(v.raw_data()),
                       vhat ? static_cast<float*>(vhat->raw_data()) : nullptr, w.num_elements(), alpha,
                       at.step_size_on_device.defined() ? static_cast<const float*>(at.step_size_on_device.raw_data())
                                                        : nullptr,
                       1.f - at.beta_1, 1.f - at.beta_2, at.epsilon, stream());
  KCPP_LAUNCHED();
}

}  // namespace keras::cuda

// Plugin entry point ------------------------------------------------------------------------------------------

namespace {
int cuda_score(char* why, size_t n) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    std::snprintf(why, n, "no CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    return 0;
  }
  return 100;  // above the CPU backend's 10: "auto" prefers the GPU
}
int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) count = 0;
  return count;
}
// A bare "cuda": one process per GPU, each on KERASCPP_CUDA_DEVICE, else its rank on the node
// (mpirun, torchrun). "cuda:1": that GPU (several GPUs in one process, MirroredStrategy).
keras::Backend* cuda_create(int index) {
  const int count = std::max(1, cuda_device_count());
  return new keras::cuda::CudaBackend(index >= 0 ? index : keras::settings().cuda_device % count, index < 0);
}
const KerascppBackendDescriptor kDescriptor{KERASCPP_BACKEND_ABI_VERSION, "cuda", &cuda_score, &cuda_create,
                                            &cuda_device_count};
}  // namespace

extern "C" KERASCPP_API const KerascppBackendDescriptor* kerascpp_backend_descriptor() { return &kDescriptor; }
