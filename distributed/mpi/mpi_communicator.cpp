// The MPI communicator plugin (OpenMPI from Debian): CPU processes started by mpirun. Every
// collective is non-blocking underneath, so a wait can give up after the timeout instead of
// hanging when a rank failed or hangs. Device tensors are staged through host memory.
#include <mpi.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "core/backend.h"
#include "core/check.h"
#include "core/config.h"
#include "core/ops.h"
#include "core/registry.h"
#include "distributed/communicator_plugin.h"

namespace keras::distribute {
namespace {

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  MPI_Error_string(code, text, &len);
  return std::string(text, static_cast<size_t>(len));
}

#define KCPP_MPI(expr)                                                                                        \
  do {                                                                                                        \
    const int kcpp_mpi_rc = (expr);                                                                           \
    if (kcpp_mpi_rc != MPI_SUCCESS)                                                                           \
      throw ::keras::DistributedError(fmt::format("MPI: {} failed: {}", #expr, mpi_error_text(kcpp_mpi_rc))); \
  } while (0)

MPI_Datatype mpi_type(DType dtype, const char* what) {
  switch (dtype) {
    case DType::float32:
      return MPI_FLOAT;
    case DType::int32:
      return MPI_INT32_T;
    case DType::int64:
      return MPI_INT64_T;
    case DType::uint8:
      return MPI_UINT8_T;
    default:
      break;
  }
  throw TypeError(fmt::format("MPI communicator: {} supports float32, int32, int64 and uint8, received {}", what,
                              dtype_name(dtype)));
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
    case ReduceOp::mean:
      return MPI_SUM;
    case ReduceOp::max:
      return MPI_MAX;
    case ReduceOp::min:
      return MPI_MIN;
  }
  return MPI_SUM;
}

bool on_host(const Tensor& t) { return t.backend()->device().type == DeviceType::cpu; }

// Host memory holding a tensor's bytes: the tensor itself on the CPU, a staged copy elsewhere.
struct HostBuffer {
  Tensor tensor;  // the tensor whose data is reduced
  Tensor host;    // what MPI reads and writes (== tensor on the CPU)
  explicit HostBuffer(const Tensor& t) : tensor(t) {
    host = on_host(t) ? t : ops::to_backend(t, backend::get_backend("cpu"));
  }
  void* data() const { return host.raw_data(); }
  // Writes the result back where it came from.
  void finish() {
    if (host.raw_data() != tensor.raw_data()) ops::copy_into(ops::to_backend(host, *tensor.backend()), tensor);
  }
};

class MpiWork final : public Work {
 public:
  MpiWork(std::string what, int rank, int world, std::chrono::milliseconds timeout, std::function<void()> done = {})
      : what_(std::move(what)), rank_(rank), world_(world), timeout_(timeout), done_(std::move(done)) {}
  MPI_Request* request() { return &request_; }
  bool test() override {
    if (finished_) return true;
    int flag = 0;
    KCPP_MPI(MPI_Test(&request_, &flag, MPI_STATUS_IGNORE));
    if (flag) finish();
    return finished_;
  }
  void wait() override {
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    while (!test()) {
      if (std::chrono::steady_clock::now() > deadline) throw timeout_error(what_, rank_, world_, timeout_);
      std::this_thread::yield();
    }
  }

 private:
  void finish() {
    finished_ = true;
    if (done_) done_();
  }
  std::string what_;
  int rank_, world_;
  std::chrono::milliseconds timeout_;
  std::function<void()> done_;
  MPI_Request request_ = MPI_REQUEST_NULL;
  bool finished_ = false;
};

void finalize_at_exit() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(CommunicatorOptions o) : Communicator(o) {
    int initialized = 0;
    KCPP_MPI(MPI_Initialized(&initialized));
    if (!initialized) {
      int provided = 0;
      // The data reader runs on another thread but never calls MPI: serialized is enough.
      KCPP_MPI(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided));
      std::atexit(finalize_at_exit);
    }
    KCPP_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &comm_));
    KCPP_MPI(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    KCPP_MPI(MPI_Comm_rank(comm_, &rank_));
    KCPP_MPI(MPI_Comm_size(comm_, &world_));
  }
  std::string name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }

  std::unique_ptr<Work> all_reduce_async(Tensor t, ReduceOp op) override {
    const MPI_Datatype type = mpi_type(t.dtype(), "all_reduce");
    KCPP_CHECK(op != ReduceOp::mean || t.dtype() == DType::float32, TypeError,
               "MPI communicator: a mean needs float32, received {}", dtype_name(t.dtype()));
    auto buffer = std::make_shared<HostBuffer>(t);
    const int world = world_;
    auto work =
        std::make_unique<MpiWork>(fmt::format("all_reduce({}) of {}", reduce_op_name(op), t.shape().to_string()), rank_,
                                  world_, timeout(), [buffer, op, world] {
                                    if (op == ReduceOp::mean)
                                      ops::copy_into(buffer->host * (1.f / world), buffer->host);
                                    buffer->finish();
                                  });
    KCPP_MPI(MPI_Iallreduce(MPI_IN_PLACE, buffer->data(), count(t), type, mpi_op(op), comm_, work->request()));
    return work;
  }

  void broadcast(Tensor& t, int root) override {
    KCPP_CHECK(root >= 0 && root < world_, ValueError, "broadcast: root must be a rank in [0, {}), received {}", world_,
               root);
    HostBuffer buffer(t);
    MpiWork work(fmt::format("broadcast of {} from rank {}", t.shape().to_string(), root), rank_, world_, timeout());
    KCPP_MPI(MPI_Ibcast(buffer.data(), count(t), mpi_type(t.dtype(), "broadcast"), root, comm_, work.request()));
    work.wait();
    buffer.finish();
  }

  Tensor all_gather(const Tensor& t) override {
    std::vector<int64_t> dims{world_};
    for (int64_t d : t.shape().dims()) dims.push_back(d);
    Backend* cpu = &backend::get_backend("cpu");
    Tensor out = Tensor::empty(Shape(dims), t.dtype(), cpu);
    const Tensor in = ops::to_backend(t, *cpu);
    MpiWork work(fmt::format("all_gather of {}", t.shape().to_string()), rank_, world_, timeout());
    const MPI_Datatype type = mpi_type(t.dtype(), "all_gather");
    KCPP_MPI(MPI_Iallgather(in.raw_data(), count(t), type, out.raw_data(), count(t), type, comm_, work.request()));
    work.wait();
    return ops::to_backend(out, *t.backend());
  }

  Tensor reduce_scatter(const Tensor& t, ReduceOp op) override {
    KCPP_CHECK(t.rank() >= 1 && t.dim(0) % world_ == 0, ShapeError,
               "reduce_scatter: expected a first dimension divisible by the {} ranks, received shape {}", world_,
               t.shape().to_string());
    std::vector<int64_t> dims = t.shape().dims();
    dims[0] /= world_;
    Backend* cpu = &backend::get_backend("cpu");
    const Tensor in = ops::to_backend(t, *cpu);
    Tensor out = Tensor::empty(Shape(dims), t.dtype(), cpu);
    MpiWork work(fmt::format("reduce_scatter({}) of {}", reduce_op_name(op), t.shape().to_string()), rank_, world_,
                 timeout());
    KCPP_MPI(MPI_Ireduce_scatter_block(in.raw_data(), out.raw_data(), count(out), mpi_type(t.dtype(), "reduce_scatter"),
                                       mpi_op(op), comm_, work.request()));
    work.wait();
    if (op == ReduceOp::mean) out = out * (1.f / world_);
    return ops::to_backend(out, *t.backend());
  }

  void barrier() override {
    MpiWork work("barrier", rank_, world_, timeout());
    KCPP_MPI(MPI_Ibarrier(comm_, work.request()));
    work.wait();
  }

  [[noreturn]] void abort(const std::string& why) override {
    std::fprintf(stderr, "kerascpp: rank %d of %d failed, ending the job: %s\n", rank_, world_, why.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::abort();
  }

 private:
  static int count(const Tensor& t) {
    KCPP_CHECK(t.num_elements() <= INT32_MAX, ValueError, "MPI communicator: at most 2^31 - 1 elements, received {}",
               t.num_elements());
    return static_cast<int>(t.num_elements());
  }
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, world_ = 1;
};

}  // namespace
}  // namespace keras::distribute

extern "C" KERASCPP_API uint32_t kerascpp_communicator_abi() { return KERASCPP_COMM_ABI_VERSION; }

extern "C" KERASCPP_API keras::distribute::Communicator* kerascpp_communicator_create(
    const keras::distribute::CommunicatorOptions* options, keras::distribute::Communicator* /*bootstrap*/, char* why,
    size_t why_size) {
  try {
    if (!keras::settings().launched_by_mpi) {
      std::snprintf(why, why_size, "this process was not started by mpirun (OMPI_COMM_WORLD_SIZE is unset)");
      return nullptr;
    }
    return new keras::distribute::MpiCommunicator(*options);
  } catch (const std::exception& e) {
    std::snprintf(why, why_size, "%s", e.what());
    return nullptr;
  }
}
