// The NCCL communicator plugin: collectives on CUDA tensors, queued on the CUDA backend's stream so
// they are ordered with the ops around them. Ranks share NCCL's id through a bootstrap communicator
// (MPI under mpirun). A wait polls the collective and NCCL's asynchronous error; after the timeout it
// aborts the NCCL communicator and throws, so a failed or hung rank never hangs the others.
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "core/backend.h"
#include "core/check.h"
#include "core/ops.h"
#include "core/registry.h"
#include "distributed/communicator_plugin.h"

namespace keras::distribute {
namespace {

#define KCPP_NCCL_CUDA(expr)                                                                                  \
  do {                                                                                                        \
    const cudaError_t kcpp_e = (expr);                                                                        \
    if (kcpp_e != cudaSuccess)                                                                                \
      throw ::keras::DistributedError(fmt::format("CUDA: {} failed: {}", #expr, cudaGetErrorString(kcpp_e))); \
  } while (0)
#define KCPP_NCCL(expr)                                                                                       \
  do {                                                                                                        \
    const ncclResult_t kcpp_r = (expr);                                                                       \
    if (kcpp_r != ncclSuccess && kcpp_r != ncclInProgress)                                                    \
      throw ::keras::DistributedError(fmt::format("NCCL: {} failed: {}", #expr, ncclGetErrorString(kcpp_r))); \
  } while (0)

ncclDataType_t nccl_type(DType dtype, const char* what) {
  switch (dtype) {
    case DType::float32:
      return ncclFloat32;
    case DType::float16:
      return ncclFloat16;
    case DType::bfloat16:
      return ncclBfloat16;
    case DType::int32:
      return ncclInt32;
    case DType::int64:
      return ncclInt64;
    case DType::uint8:
      return ncclUint8;
    default:
      break;
  }
  throw TypeError(fmt::format("NCCL communicator: {} supports floating, int32, int64 and uint8 tensors, received {}",
                              what, dtype_name(dtype)));
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return ncclSum;
    case ReduceOp::mean:
      return ncclAvg;
    case ReduceOp::max:
      return ncclMax;
    case ReduceOp::min:
      return ncclMin;
  }
  return ncclSum;
}

class NcclCommunicator;

// A collective queued on `stream`. Queued while the stream records a step graph, it runs only in
// the graph's replays: nothing to wait for now (later work on the stream is ordered after it), and
// the host may not query the stream while it records.
class NcclWork final : public Work {
 public:
  NcclWork(NcclCommunicator* owner, std::string what, cudaStream_t stream, Tensor keep_alive);
  ~NcclWork() override {
    if (event_) cudaEventDestroy(event_);
  }
  bool test() override;
  void wait() override;

 private:
  NcclCommunicator* owner_;
  std::string what_;
  cudaEvent_t event_ = nullptr;
  Tensor keep_alive_;
  bool done_ = false;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(CommunicatorOptions o, Communicator* bootstrap) : Communicator(o), bootstrap_(bootstrap) {
    rank_ = bootstrap ? bootstrap->rank() : 0;
    world_ = bootstrap ? bootstrap->world_size() : 1;
    Backend& gpu = default_backend();
    KCPP_CHECK(gpu.device().type == DeviceType::cuda, DistributedError,
               "NCCL communicator: the default backend must be CUDA, it is {}", gpu.name());
    device_ = gpu.device().index;
    KCPP_NCCL_CUDA(cudaSetDevice(device_));
    ncclUniqueId id;
    if (rank_ == 0) KCPP_NCCL(ncclGetUniqueId(&id));
    if (bootstrap && world_ > 1) {
      std::vector<uint8_t> bytes(sizeof id);
      std::memcpy(bytes.data(), &id, sizeof id);
      Tensor t = Tensor::from_vector(bytes, Shape{static_cast<int64_t>(bytes.size())}, &backend::get_backend("cpu"));
      bootstrap->broadcast(t, 0);
      const auto shared = t.to_vector<uint8_t>();
      std::memcpy(&id, shared.data(), sizeof id);
    }
    KCPP_NCCL(ncclCommInitRank(&comm_, world_, id, rank_));
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
  }
  std::string name() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }

  std::unique_ptr<Work> all_reduce_async(Tensor t, ReduceOp op) override {
    if (on_host(t)) {  // a strategy's host values (metric sums): through this rank's GPU, at once
      Tensor d = to_gpu(t);
      all_reduce_async(d, op)->wait();
      ops::copy_into(d, t);
      return std::make_unique<FinishedWork>();
    }
    cudaStream_t s = stream_of(t, "all_reduce");
    KCPP_NCCL(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.num_elements()),
                            nccl_type(t.dtype(), "all_reduce"), nccl_op(op), comm_, s));
    return std::make_unique<NcclWork>(
        this, fmt::format("all_reduce({}) of {}", reduce_op_name(op), t.shape().to_string()), s, t);
  }
  void broadcast(Tensor& t, int root) override {
    KCPP_CHECK(root >= 0 && root < world_, ValueError, "broadcast: root must be a rank in [0, {}), received {}", world_,
               root);
    if (on_host(t)) {  // a strategy's host values (shuffle keys, random states)
      Tensor d = to_gpu(t);
      broadcast(d, root);
      ops::copy_into(d, t);
      return;
    }
    cudaStream_t s = stream_of(t, "broadcast");
    KCPP_NCCL(ncclBroadcast(t.raw_data(), t.raw_data(), static_cast<size_t>(t.num_elements()),
                            nccl_type(t.dtype(), "broadcast"), root, comm_, s));
    NcclWork(this, fmt::format("broadcast of {} from rank {}", t.shape().to_string(), root), s, t).wait();
  }
  Tensor all_gather(const Tensor& t) override {
    if (on_host(t)) return ops::to_backend(all_gather(to_gpu(t)), *t.backend());
    cudaStream_t s = stream_of(t, "all_gather");
    std::vector<int64_t> dims{world_};
    for (int64_t d : t.shape().dims()) dims.push_back(d);
    Tensor out = Tensor::empty(Shape(dims), t.dtype(), t.backend());
    KCPP_NCCL(ncclAllGather(t.raw_data(), out.raw_data(), static_cast<size_t>(t.num_elements()),
                            nccl_type(t.dtype(), "all_gather"), comm_, s));
    NcclWork(this, fmt::format("all_gather of {}", t.shape().to_string()), s, out).wait();
    return out;
  }
  Tensor reduce_scatter(const Tensor& t, ReduceOp op) override {
    KCPP_CHECK(t.rank() >= 1 && t.dim(0) % world_ == 0, ShapeError,
               "reduce_scatter: expected a first dimension divisible by the {} ranks, received shape {}", world_,
               t.shape().to_string());
    if (on_host(t)) return ops::to_backend(reduce_scatter(to_gpu(t), op), *t.backend());
    cudaStream_t s = stream_of(t, "reduce_scatter");
    std::vector<int64_t> dims = t.shape().dims();
    dims[0] /= world_;
    Tensor out = Tensor::empty(Shape(dims), t.dtype(), t.backend());
    KCPP_NCCL(ncclReduceScatter(t.raw_data(), out.raw_data(), static_cast<size_t>(out.num_elements()),
                                nccl_type(t.dtype(), "reduce_scatter"), nccl_op(op), comm_, s));
    NcclWork(this, fmt::format("reduce_scatter of {}", t.shape().to_string()), s, out).wait();
    return out;
  }
  void barrier() override {
    Tensor one = Tensor::from_vector(std::vector<float>{1.f}, Shape{1}, &default_backend());
    all_reduce_async(one, ReduceOp::sum)->wait();
  }
  bool records_in_step_graphs() const override { return true; }
  void wait_for_recorded_collectives(Backend& device) override {
    KCPP_CHECK(!aborted_, DistributedError, "NCCL communicator: a replayed step after the communicator was aborted");
    NcclWork(this, "a replayed training step's collectives", static_cast<cudaStream_t>(device.native_stream()),
             Tensor())
        .wait();
  }
  [[noreturn]] void abort(const std::string& why) override {
    abort_nccl();
    if (bootstrap_ && bootstrap_->world_size() > 1) bootstrap_->abort(why);
    std::fprintf(stderr, "kerascpp: rank %d of %d failed: %s\n", rank_, world_, why.c_str());
    std::abort();
  }

  // For NcclWork: NCCL's asynchronous error, and giving up on a hung collective.
  void check_async_error(const std::string& what) {
    ncclResult_t async = ncclSuccess;
    KCPP_NCCL(ncclCommGetAsyncError(comm_, &async));
    if (async != ncclSuccess && async != ncclInProgress) {
      abort_nccl();
      throw DistributedError(
          fmt::format("{} on rank {} of {}: NCCL reported {}", what, rank_, world_, ncclGetErrorString(async)));
    }
  }
  [[noreturn]] void timed_out(const std::string& what) {
    abort_nccl();
    throw timeout_error(what, rank_, world_, timeout());
  }

 private:
  struct FinishedWork final : Work {
    bool test() override { return true; }
    void wait() override {}
  };
  static bool on_host(const Tensor& t) { return t.defined() && t.device().type == DeviceType::cpu; }
  Tensor to_gpu(const Tensor& t) const {
    return ops::to_backend(t, backend::get_backend(fmt::format("cuda:{}", device_)));
  }
  cudaStream_t stream_of(const Tensor& t, const char* what) const {
    KCPP_CHECK(t.defined() && t.backend()->device().type == DeviceType::cuda, DistributedError,
               "NCCL communicator: {} needs a tensor on the CUDA backend, received one on {}", what,
               t.defined() ? t.backend()->name() : "nothing");
    KCPP_CHECK(!aborted_, DistributedError, "NCCL communicator: {} after the communicator was aborted", what);
    return static_cast<cudaStream_t>(t.backend()->native_stream());
  }
  void abort_nccl() {
    if (comm_ && !aborted_) ncclCommAbort(comm_);
    aborted_ = true;
    comm_ = nullptr;
  }
  Communicator* bootstrap_;
  ncclComm_t comm_ = nullptr;
  int rank_ = 0, world_ = 1, device_ = 0;
  bool aborted_ = false;
};

NcclWork::NcclWork(NcclCommunicator* owner, std::string what, cudaStream_t stream, Tensor keep_alive)
    : owner_(owner), what_(std::move(what)), keep_alive_(std::move(keep_alive)) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  KCPP_NCCL_CUDA(cudaStreamIsCapturing(stream, &capture));
  if (capture != cudaStreamCaptureStatusNone) {
    done_ = true;
    keep_alive_ = Tensor();
    return;
  }
  KCPP_NCCL_CUDA(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
  KCPP_NCCL_CUDA(cudaEventRecord(event_, stream));
}

bool NcclWork::test() {
  if (done_) return true;
  const cudaError_t e = cudaEventQuery(event_);
  if (e == cudaSuccess) {
    done_ = true;
    keep_alive_ = Tensor();
    return true;
  }
  if (e != cudaErrorNotReady) KCPP_NCCL_CUDA(e);
  owner_->check_async_error(what_);
  return false;
}

void NcclWork::wait() {
  const auto deadline = std::chrono::steady_clock::now() + owner_->timeout();
  while (!test()) {
    if (std::chrono::steady_clock::now() > deadline) owner_->timed_out(what_);
    std::this_thread::yield();
  }
}

}  // namespace
}  // namespace keras::distribute

extern "C" KERASCPP_API uint32_t kerascpp_communicator_abi() { return KERASCPP_COMM_ABI_VERSION; }

extern "C" KERASCPP_API keras::distribute::Communicator* kerascpp_communicator_create(
    const keras::distribute::CommunicatorOptions* options, keras::distribute::Communicator* bootstrap, char* why,
    size_t why_size) {
  try {
    return new keras::distribute::NcclCommunicator(*options, bootstrap);
  } catch (const std::exception& e) {
    std::snprintf(why, why_size, "%s", e.what());
    return nullptr;
  }
}
