#include "distributed/communicator.h"

#include <dlfcn.h>

#include <filesystem>
#include <mutex>

#include "core/autograd.h"
#include "core/check.h"
#include "core/logging.h"
#include "core/ops.h"
#include "core/registry.h"
#include "distributed/communicator_plugin.h"

namespace keras::distribute {

Work::~Work() = default;
Communicator::~Communicator() = default;

DistributedError timeout_error(const std::string& what, int rank, int world_size, std::chrono::milliseconds timeout) {
  return DistributedError(fmt::format(
      "{} on rank {} of {}: the other ranks did not answer within {} s (a rank failed or hangs; the timeout is "
      "CommunicatorOptions::timeout or KERASCPP_DISTRIBUTED_TIMEOUT)",
      what, rank, world_size, std::chrono::duration<double>(timeout).count()));
}

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return "sum";
    case ReduceOp::mean:
      return "mean";
    case ReduceOp::max:
      return "max";
    case ReduceOp::min:
      return "min";
  }
  return "?";
}

namespace {

class DoneWork final : public Work {
 public:
  bool test() override { return true; }
  void wait() override {}
};

class SingleProcessCommunicator final : public Communicator {
 public:
  explicit SingleProcessCommunicator(CommunicatorOptions o) : Communicator(o) {}
  std::string name() const override { return "single"; }
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::unique_ptr<Work> all_reduce_async(Tensor, ReduceOp) override { return std::make_unique<DoneWork>(); }
  void broadcast(Tensor&, int root) override {
    KCPP_CHECK(root == 0, ValueError, "broadcast: root must be a rank in [0, 1), received {}", root);
  }
  Tensor all_gather(const Tensor& t) override {
    std::vector<int64_t> dims{1};
    for (int64_t d : t.shape().dims()) dims.push_back(d);
    return ops::reshape(ops::copy(t), dims);
  }
  Tensor reduce_scatter(const Tensor& t, ReduceOp) override { return ops::copy(t); }
  void barrier() override {}
  bool records_in_step_graphs() const override { return true; }  // identities, or device copies
  [[noreturn]] void abort(const std::string& why) override {
    keras::detail::log(LogLevel::error, "aborting: " + why);
    std::abort();
  }
};

}  // namespace

Tensor all_reduce_sum(Communicator& comm, const Tensor& x) {
  Tensor y;
  {
    NoGradScope no_grad;
    y = ops::copy(x);
    comm.all_reduce(y, ReduceOp::sum);
  }
  if (keras::detail::needs_recording({x})) {
    Communicator* c = &comm;  // the communicator outlives the step that records this
    keras::detail::record("all_reduce_sum", {x}, {&y}, [c](const std::vector<Tensor>& g) {
      Tensor dx = ops::copy(g[0]);
      c->all_reduce(dx, ReduceOp::sum);
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

std::shared_ptr<Communicator> make_single_process_communicator(CommunicatorOptions options) {
  return std::make_shared<SingleProcessCommunicator>(options);
}

std::shared_ptr<Communicator> make_communicator(const std::string& kind, CommunicatorOptions options,
                                                std::shared_ptr<Communicator> bootstrap) {
  if (kind == "single") return make_single_process_communicator(options);
  if (kind == "tcp") return make_tcp_communicator(options);
  KCPP_CHECK(kind == "mpi" || kind == "nccl", ValueError,
             "make_communicator: expected 'single', 'tcp', 'mpi' or 'nccl', received '{}'", kind);
  // Plugins stay loaded for the life of the process, as backends do.
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  const std::string file = "libkerascpp_comm_" + kind + ".so";
  std::vector<std::string> tried;
  for (const std::string& folder : backend::plugin_search_path()) {
    const std::string path = (std::filesystem::path(folder) / file).string();
    if (!std::filesystem::exists(path)) continue;
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!handle) {
      tried.push_back(fmt::format("{}: cannot load: {}", path, dlerror()));
      continue;
    }
    auto abi = reinterpret_cast<KerascppCommAbiFn>(dlsym(handle, KERASCPP_COMM_ABI_ENTRY_POINT));
    auto create = reinterpret_cast<KerascppCommCreateFn>(dlsym(handle, KERASCPP_COMM_ENTRY_POINT));
    if (!abi || !create) {
      tried.push_back(fmt::format("{}: missing entry point", path));
      continue;
    }
    if (abi() != KERASCPP_COMM_ABI_VERSION) {
      tried.push_back(fmt::format("{}: ABI version {}, expected {}", path, abi(), KERASCPP_COMM_ABI_VERSION));
      continue;
    }
    char why[512] = {0};
    Communicator* c = create(&options, bootstrap.get(), why, sizeof why);
    if (!c) throw DistributedError(fmt::format("the {} communicator ({}) cannot run: {}", kind, path, why));
    keras::detail::log_info(
        fmt::format("distributed: {} communicator, rank {} of {}", kind, c->rank(), c->world_size()));
    // The NCCL communicator keeps using its bootstrap: keep it alive as long as the result.
    std::shared_ptr<Communicator> owned(c);
    if (!bootstrap) return owned;
    return std::shared_ptr<Communicator>(owned.get(), [owned, bootstrap](Communicator*) mutable {
      owned.reset();
      bootstrap.reset();
    });
  }
  throw DistributedError(fmt::format("no usable {} communicator plugin ({}) in {}{}{}", kind, file,
                                     fmt::join(backend::plugin_search_path(), ":"), tried.empty() ? "" : ": ",
                                     fmt::join(tried, "; ")));
}

}  // namespace keras::distribute
