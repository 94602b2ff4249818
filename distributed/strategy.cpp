#include "distributed/strategy.h"

#include <mutex>

#include "core/autograd.h"
#include "core/backend.h"
#include "core/check.h"
#include "core/config.h"
#include "core/logging.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/registry.h"

namespace keras::distribute {
namespace {
std::mutex scope_mutex;
std::shared_ptr<Strategy>& current_slot() {
  static std::shared_ptr<Strategy> s;
  return s;
}
Backend& cpu() { return backend::get_backend("cpu"); }
}  // namespace

std::shared_ptr<Strategy> current_strategy() {
  std::lock_guard lock(scope_mutex);
  return current_slot();
}

Strategy::ScopeGuard::ScopeGuard(const Strategy* s) {
  std::lock_guard lock(scope_mutex);
  previous = current_slot();
  current_slot() = std::make_shared<Strategy>(*s);
}
Strategy::ScopeGuard::~ScopeGuard() {
  std::lock_guard lock(scope_mutex);
  current_slot() = previous;
}

Strategy::~Strategy() = default;

Strategy::Strategy(std::shared_ptr<Communicator> comm, StrategyOptions options) : state_(std::make_shared<State>()) {
  KCPP_CHECK(comm, ValueError, "Strategy: the communicator is null");
  state_->comm = std::move(comm);
  state_->options = std::move(options);
  state_->reducer = std::make_unique<GradientReducer>(state_->comm, state_->options.bucket_bytes);
}

std::pair<int64_t, int64_t> Strategy::shard(int64_t n) const {
  // Contiguous, as even as possible: the first n % world replicas get one more sample.
  const int64_t w = num_replicas_in_sync(), r = replica_id();
  const int64_t base = n / w, extra = n % w;
  const int64_t begin = r * base + std::min(r, extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}

void Strategy::broadcast_variables(const std::vector<Variable*>& variables) const {
  NoGradScope no_grad;
  for (Variable* v : variables) {
    Tensor t = ops::copy(v->value());
    communicator().broadcast(t, 0);
    v->assign(t);
  }
}

void Strategy::average_variables(const std::vector<Variable*>& variables) const {
  NoGradScope no_grad;
  for (Variable* v : variables) {
    if (!is_floating(v->value().dtype())) continue;
    Tensor t = ops::copy(v->value());
    communicator().all_reduce(t, ReduceOp::mean);
    v->assign(t);
  }
}

uint64_t Strategy::broadcast_key(uint64_t key) const {
  if (num_replicas_in_sync() == 1) return key;
  Tensor t = Tensor::from_vector(std::vector<int64_t>{static_cast<int64_t>(key)}, Shape{1}, &cpu());
  communicator().broadcast(t, 0);
  return static_cast<uint64_t>(t.to_vector<int64_t>()[0]);
}

void Strategy::decorrelate_random_state() const {
  if (num_replicas_in_sync() == 1) return;
  random::set_global_state(random::splitmix64(random::global_state() ^ (0xD15EA5EULL * (replica_id() + 1))));
}

std::vector<double> Strategy::sum(const std::vector<double>& values) const {
  if (num_replicas_in_sync() == 1 || values.empty()) return values;
  // Tensors have no float64: each value travels as a float32 pair (value, remainder), about 48 bits.
  std::vector<float> split;
  for (double v : values) {
    const float hi = static_cast<float>(v);
    split.push_back(hi);
    split.push_back(static_cast<float>(v - static_cast<double>(hi)));
  }
  Tensor t = Tensor::from_vector(split, Shape{static_cast<int64_t>(split.size())}, &cpu());
  communicator().all_reduce(t, ReduceOp::sum);
  const auto summed = t.to_vector<float>();
  std::vector<double> out(values.size());
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<double>(summed[2 * i]) + static_cast<double>(summed[2 * i + 1]);
  return out;
}

std::map<std::string, int64_t> Strategy::counters() const {
  auto c = reducer().counters();
  c["replicas"] = num_replicas_in_sync();
  return c;
}

namespace {
std::shared_ptr<Communicator> communicator_for(const StrategyOptions& o) {
  CommunicatorOptions co;
  co.timeout =
      o.timeout.value_or(std::chrono::milliseconds(static_cast<int64_t>(settings().distributed_timeout_s * 1000.0)));
  for (const std::string& w : settings().warnings) keras::detail::log_warn(w);
  const bool gpu = default_backend().device().type != DeviceType::cpu;
  const int world = settings().world_size;
  const bool mpi = settings().launched_by_mpi;
  // Processes meet through MPI under mpirun, else through MASTER_ADDR:MASTER_PORT (tcp).
  std::string kind = o.communicator;
  if (kind == "auto") kind = world <= 1 ? "single" : gpu ? "nccl" : mpi ? "mpi" : "tcp";
  KCPP_CHECK(
      kind == "single" || kind == "tcp" || kind == "mpi" || kind == "nccl", ValueError,
      "MultiWorkerMirroredStrategy: communicator must be 'auto', 'single', 'tcp', 'mpi' or 'nccl', received '{}'",
      kind);
  if (kind == "single") {
    KCPP_CHECK(world <= 1, DistributedError,
               "MultiWorkerMirroredStrategy: communicator 'single' in a job of {} processes (rank {})", world,
               settings().rank);
    return make_single_process_communicator(co);
  }
  if (kind != "nccl") return make_communicator(kind, co);
  KCPP_CHECK(gpu, DistributedError,
             "MultiWorkerMirroredStrategy: the NCCL communicator needs a GPU backend, but the default backend is {}",
             default_backend().name());
  // NCCL's id travels through the bootstrap.
  std::shared_ptr<Communicator> bootstrap = world <= 1 ? make_single_process_communicator(co)
                                            : mpi      ? make_communicator("mpi", co)
                                                       : make_tcp_communicator(co);
  return make_communicator("nccl", co, bootstrap);
}
}  // namespace

MultiWorkerMirroredStrategy::MultiWorkerMirroredStrategy(StrategyOptions options)
    : Strategy(communicator_for(options), options) {}

}  // namespace keras::distribute
