#include "distributed/strategy.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

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

// The replicas this process drives, and the threads that drive them (MirroredStrategy).
struct Strategy::State {
  StrategyOptions options;
  struct Replica {
    std::shared_ptr<Communicator> comm;
    std::unique_ptr<GradientReducer> reducer;
    Backend* device = nullptr;
  };
  std::vector<Replica> replicas;
  std::optional<InProcessGroup> group;  // MirroredStrategy: how its replicas meet

  // One thread per replica, alive as long as the strategy; each works with its device current.
  struct Worker {
    std::thread thread;
    std::function<void()> task;
  };
  std::vector<Worker> workers;
  std::mutex run_mutex;  // one run_in_replicas at a time
  std::mutex mutex;
  std::condition_variable wake, finished;
  uint64_t generation = 0;
  int pending = 0;
  bool stopping = false;

  ~State() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    wake.notify_all();
    for (Worker& w : workers)
      if (w.thread.joinable()) w.thread.join();
  }
  void start_workers();
  void worker_loop(int index);
};

namespace {
// The replica whose thread this is (run_in_replicas), of which strategy.
thread_local const Strategy::State* current_state = nullptr;
thread_local int current_replica = 0;
}  // namespace

void Strategy::State::start_workers() {
  workers.resize(replicas.size());
  for (size_t i = 0; i < replicas.size(); ++i)
    workers[i].thread = std::thread([this, i] { worker_loop(static_cast<int>(i)); });
}

void Strategy::State::worker_loop(int index) {
  current_state = this;
  current_replica = index;
  Backend& device = *replicas[index].device;
  std::optional<backend::DeviceScope> scope;
  try {
    scope.emplace(device);
    // Logical CPU devices share the cores: each replica's ops get its share of them.
    if (device.device().type == DeviceType::cpu) {
      const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      device.set_thread_parallelism(std::max(1, cores / static_cast<int>(replicas.size())));
    }
  } catch (...) {  // make_current failed: the task reports it when it runs on this device
  }
  uint64_t seen = 0;
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mutex);
      wake.wait(lock, [&] { return stopping || generation != seen; });
      if (stopping) return;
      seen = generation;
      task = std::move(workers[index].task);
    }
    if (task) task();
    {
      std::lock_guard lock(mutex);
      --pending;
    }
    finished.notify_all();
  }
}

Strategy::ScopeGuard::ScopeGuard(const Strategy* s) {
  {
    std::lock_guard lock(scope_mutex);
    previous = current_slot();
    current_slot() = std::make_shared<Strategy>(*s);
  }
  // Models built in the scope of several local replicas live on the first one's device (a
  // replica's own thread keeps its device: that is where its copy of the model goes).
  if (s->local_replicas() > 1 && !s->in_replica_context()) device.emplace(s->replica_device(0));
}
Strategy::ScopeGuard::~ScopeGuard() {
  device.reset();
  std::lock_guard lock(scope_mutex);
  current_slot() = previous;
}

Strategy::~Strategy() = default;

Strategy::Strategy(std::shared_ptr<Communicator> comm, StrategyOptions options) : state_(std::make_shared<State>()) {
  KCPP_CHECK(comm, ValueError, "Strategy: the communicator is null");
  state_->options = std::move(options);
  State::Replica r;
  r.reducer = std::make_unique<GradientReducer>(comm, state_->options.bucket_bytes);
  r.comm = std::move(comm);
  r.device = &default_backend();
  state_->replicas.push_back(std::move(r));
}

int Strategy::local_index() const { return current_state == state_.get() ? current_replica : 0; }
int Strategy::num_replicas_in_sync() const { return state_->replicas[0].comm->world_size(); }
int Strategy::replica_id() const { return communicator().rank(); }
Communicator& Strategy::communicator() const { return *state_->replicas[local_index()].comm; }
GradientReducer& Strategy::reducer() const { return *state_->replicas[local_index()].reducer; }
const StrategyOptions& Strategy::options() const { return state_->options; }
int Strategy::local_replicas() const { return static_cast<int>(state_->replicas.size()); }
bool Strategy::in_replica_context() const { return current_state == state_.get(); }

Backend& Strategy::replica_device(int i) const {
  KCPP_CHECK(i >= 0 && i < local_replicas(), ValueError, "replica_device: index must be in [0, {}), received {}",
             local_replicas(), i);
  return *state_->replicas[i].device;
}

void Strategy::run_in_replicas(const std::function<void(int)>& fn) const {
  State& st = *state_;
  KCPP_CHECK(!in_replica_context(), ValueError, "run_in_replicas: called from a replica's own thread");
  if (st.workers.empty()) {  // one replica per process: this thread is the replica
    fn(0);
    return;
  }
  std::lock_guard run(st.run_mutex);
  const int n = local_replicas();
  std::vector<std::exception_ptr> errors(n);
  std::vector<std::chrono::steady_clock::time_point> when(n);
  {
    std::lock_guard lock(st.mutex);
    for (int i = 0; i < n; ++i)
      st.workers[i].task = [&, i] {
        try {
          fn(i);
        } catch (const std::exception& e) {
          errors[i] = std::current_exception();
          when[i] = std::chrono::steady_clock::now();
          // The others must not wait for this replica in a collective.
          if (st.group) st.group->fail(fmt::format("replica {} failed: {}", i, e.what()));
        } catch (...) {
          errors[i] = std::current_exception();
          when[i] = std::chrono::steady_clock::now();
          if (st.group) st.group->fail(fmt::format("replica {} failed", i));
        }
      };
    st.pending = n;
    ++st.generation;
  }
  st.wake.notify_all();
  {
    std::unique_lock lock(st.mutex);
    st.finished.wait(lock, [&] { return st.pending == 0; });
  }
  // The earliest failure is the cause; the others' errors follow from it.
  int first = -1;
  for (int i = 0; i < n; ++i)
    if (errors[i] && (first < 0 || when[i] < when[first])) first = i;
  if (first < 0) return;
  if (st.group) st.group->reset();  // every replica has left its collectives: usable again
  std::rethrow_exception(errors[first]);
}

std::pair<int64_t, int64_t> Strategy::shard(int64_t n, int replica) const {
  // Contiguous, as even as possible: the first n % world replicas get one more sample.
  const int64_t w = num_replicas_in_sync(), r = replica;
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

void Strategy::spread_random_streams(const std::vector<random::SeedGenerator*>& generators) const {
  if (num_replicas_in_sync() == 1) return;
  std::vector<int64_t> states{static_cast<int64_t>(random::global_state())};
  for (const random::SeedGenerator* g : generators) states.push_back(static_cast<int64_t>(g->state()));
  Tensor t = Tensor::from_vector(states, Shape{static_cast<int64_t>(states.size())}, &cpu());
  communicator().broadcast(t, 0);
  const auto root = t.to_vector<int64_t>();
  const int r = replica_id();
  const auto mine = [&](size_t k) {
    const auto s = static_cast<uint64_t>(root[k]);
    return r == 0 ? s : random::splitmix64(s ^ (0xD15EA5EULL * static_cast<uint64_t>(r + 1)));
  };
  random::set_global_state(mine(0));
  for (size_t k = 0; k < generators.size(); ++k) generators[k]->set_state(mine(k + 1));
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
  auto c = state_->replicas[0].reducer->counters();
  c["replicas"] = num_replicas_in_sync();
  return c;
}

namespace {
std::shared_ptr<Communicator> communicator_for(const StrategyOptions& o) {
  CommunicatorOptions co;
  co.timeout =
      o.timeout.value_or(std::chrono::milliseconds(static_cast<int64_t>(settings().distributed_timeout_s * 1000.0)));
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

Strategy::Strategy(const std::vector<std::string>& devices, StrategyOptions options)
    : state_(std::make_shared<State>()) {
  KCPP_CHECK(!devices.empty(), ValueError, "MirroredStrategy: expected at least one device, received none");
  State& st = *state_;
  st.options = std::move(options);
  std::vector<Backend*> backends;
  for (const std::string& d : devices) {
    Backend* b = &backend::get_backend(d);
    for (size_t j = 0; j < backends.size(); ++j)
      KCPP_CHECK(backends[j] != b, ValueError, "MirroredStrategy: devices {} and {} ('{}' and '{}') are the same device",
                 j, backends.size(), devices[j], d);
    KCPP_CHECK(backends.empty() || backends[0]->name() == b->name(), ValueError,
               "MirroredStrategy: every device must be of one backend; received '{}' and '{}'", devices[0], d);
    backends.push_back(b);
  }
  CommunicatorOptions co;
  co.timeout = st.options.timeout.value_or(
      std::chrono::milliseconds(static_cast<int64_t>(settings().distributed_timeout_s * 1000.0)));
  const int n = static_cast<int>(backends.size());
  const bool gpu = backends[0]->device().type != DeviceType::cpu;
  std::string kind = st.options.communicator;
  if (kind == "auto") kind = gpu && n > 1 ? "nccl" : "in_process";
  KCPP_CHECK(kind == "in_process" || kind == "nccl", ValueError,
             "MirroredStrategy: communicator must be 'auto', 'in_process' or 'nccl', received '{}'", kind);
  KCPP_CHECK(kind != "nccl" || gpu, ValueError, "MirroredStrategy: the NCCL communicator needs GPUs, received '{}'",
             devices[0]);
  st.group.emplace(n, co);
  for (int i = 0; i < n; ++i) {
    State::Replica r;
    r.comm = st.group->member(i);
    r.device = backends[i];
    st.replicas.push_back(std::move(r));
  }
  if (n > 1) st.start_workers();
  // NCCL's communicators are made together, one per replica thread, its id shared in process.
  if (kind == "nccl")
    run_in_replicas([&](int i) { st.replicas[i].comm = make_communicator("nccl", co, st.group->member(i)); });
  for (auto& r : st.replicas) r.reducer = std::make_unique<GradientReducer>(r.comm, st.options.bucket_bytes);
}

namespace {
std::vector<std::string> visible_devices() {
  const Backend& b = default_backend();
  if (b.device().type == DeviceType::cpu) return {"cpu"};
  const int count = backend::device_count(b.name());
  std::vector<std::string> out;
  for (int i = 0; i < std::max(count, 1); ++i) out.push_back(fmt::format("{}:{}", b.name(), i));
  return out;
}
}  // namespace

MirroredStrategy::MirroredStrategy(StrategyOptions options) : Strategy(visible_devices(), std::move(options)) {}
MirroredStrategy::MirroredStrategy(const std::vector<std::string>& devices, StrategyOptions options)
    : Strategy(devices, std::move(options)) {}

}  // namespace keras::distribute
