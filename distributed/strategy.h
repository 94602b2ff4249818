#pragma once
// Data-parallel training, as tf.keras' distribution strategies: build and compile the model inside
// strategy.scope(...), then fit, evaluate and predict as usual.
//
//     distribute::MultiWorkerMirroredStrategy strategy;  // mpirun -np 4 ./train
//     Model model = strategy.scope([] { return make_model(); });
//     model.compile({...});                                // compile() picks up the strategy
//     model.fit(x, y, {.batch_size = 256});                // 256 samples per step over all ranks
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../core/export.h"
#include "../core/random.h"
#include "../core/registry.h"
#include "../core/variable.h"
#include "communicator.h"
#include "gradient_reducer.h"

namespace keras::distribute {

struct StrategyOptions {
  /// "auto" (MultiWorkerMirroredStrategy: NCCL when the default backend is a GPU, otherwise MPI
  /// under mpirun, else tcp; MirroredStrategy: NCCL between GPUs, else in_process), "mpi", "tcp",
  /// "nccl", "in_process" (MirroredStrategy) or "single".
  std::string communicator = "auto";
  /// Gradients are summed in buckets of about this size, each as soon as it is complete.
  int64_t bucket_bytes = 25 << 20;
  /// How long a collective waits for the other replicas before failing; KERASCPP_DISTRIBUTED_TIMEOUT
  /// (default 300 s) when unset.
  std::optional<std::chrono::milliseconds> timeout;
};

/// The replicas of a model and how they stay identical. Models compiled inside scope() train with
/// it: every global batch is split across replicas, gradients are summed across them, losses and
/// metrics are aggregated, and only the chief (replica 0) prints and writes checkpoints.
/// A replica is a process (MultiWorkerMirroredStrategy) or a device driven by a thread of this
/// process (MirroredStrategy). A handle: copies share the replicas.
class KERASCPP_API Strategy {
 public:
  virtual ~Strategy();
  /// Keras' strategy.num_replicas_in_sync.
  int num_replicas_in_sync() const;
  /// The calling replica's index: the process' rank, or on a MirroredStrategy's replica thread its device's.
  int replica_id() const;
  /// Replica 0: the one that prints progress and writes files.
  bool is_chief() const { return replica_id() == 0; }
  /// The calling replica's communicator.
  Communicator& communicator() const;
  const StrategyOptions& options() const;

  /// Runs `fn` with this strategy current: models compiled inside train with it, and new tensors go
  /// to the first replica's device. Returns what fn returns.
  template <typename F>
  auto scope(F&& fn) -> decltype(fn()) {
    ScopeGuard guard(this);
    return fn();
  }

  // What Model uses; users rarely need these. ---------------------------------------------------
  /// Replicas this process drives: 1, or one per device of a MirroredStrategy.
  int local_replicas() const;
  /// The device of this process' replica `i`.
  Backend& replica_device(int i) const;
  /// True on the thread of one of this process' replicas (inside run_in_replicas).
  bool in_replica_context() const;
  /// Runs fn(i) for every local replica at once, each on its own thread with its device current
  /// (replica_id(), communicator() and reducer() are then replica i's). When one fails, the others'
  /// collectives fail instead of waiting for it; the first failure is rethrown once all returned.
  void run_in_replicas(const std::function<void(int)>& fn) const;
  /// Rows [begin, end) of a global batch of `n` samples that replica `replica` trains on (the
  /// calling replica's when omitted).
  std::pair<int64_t, int64_t> shard(int64_t n) const { return shard(n, replica_id()); }
  std::pair<int64_t, int64_t> shard(int64_t n, int replica) const;
  /// Copies replica 0's values into every replica's variables.
  void broadcast_variables(const std::vector<Variable*>& variables) const;
  /// Averages floating variables across replicas (per-replica BatchNormalization statistics).
  void average_variables(const std::vector<Variable*>& variables) const;
  /// Rank 0's `key` on every rank (a dataset's shuffle key).
  uint64_t broadcast_key(uint64_t key) const;
  /// Every replica's random streams from replica 0's: the global generator and `generators` take
  /// rank 0's states, moved apart per rank (dropout masks differ per replica), so a run resumed from
  /// rank 0's backup draws what the uninterrupted run drew. Collective.
  void spread_random_streams(const std::vector<random::SeedGenerator*>& generators) const;
  /// Sums `values` across replicas (metric states).
  std::vector<double> sum(const std::vector<double>& values) const;
  /// The calling replica's gradient reducer.
  GradientReducer& reducer() const;
  /// Replica 0's reducer counters (overlap of all-reduce and backward) plus "replicas".
  std::map<std::string, int64_t> counters() const;

  struct State;  // distributed/strategy.cpp

 protected:
  /// One replica per process.
  Strategy(std::shared_ptr<Communicator> comm, StrategyOptions options);
  /// One replica per device, in this process.
  Strategy(const std::vector<std::string>& devices, StrategyOptions options);

 private:
  struct KERASCPP_API ScopeGuard {
    explicit ScopeGuard(const Strategy* s);
    ~ScopeGuard();
    std::shared_ptr<Strategy> previous;
    std::optional<backend::DeviceScope> device;
  };
  int local_index() const;  // the calling thread's replica among this process' (0 off replica threads)
  std::shared_ptr<State> state_;
};

/// One process per device, as tf.distribute.MultiWorkerMirroredStrategy, started by mpirun
/// (`mpirun -np 8 ./train`, across nodes with a host file) or by a launcher that sets RANK,
/// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT (torchrun's contract). CPU processes
/// all-reduce through MPI (or tcp without mpirun); GPU processes through NCCL (its id shared over
/// MPI or tcp), each on the GPU of its local rank.
/// Started alone, it is a single replica. Throws DistributedError when the communicator cannot run.
class KERASCPP_API MultiWorkerMirroredStrategy : public Strategy {
 public:
  explicit MultiWorkerMirroredStrategy(StrategyOptions options = {});
};

/// Several devices in one process, as tf.distribute.MirroredStrategy: a replica of the model on
/// each device, each driven by a thread of its own; gradients are summed with NCCL between GPUs.
///
///     distribute::MirroredStrategy strategy;               // every visible GPU
///     Model model = strategy.scope([] { return make_model(); });
///     strategy.scope([&] { model.compile({...}); });
///     model.fit(x, y, {.batch_size = 512});                // 512 samples per step over all GPUs
///
/// The replicas other than the first are copies made from the model's config (as clone_model), so
/// custom layers must be registered; their optimizers are copies of the model's.
class KERASCPP_API MirroredStrategy : public Strategy {
 public:
  /// Every GPU of the default backend; on the CPU a single replica (the processor is one device).
  explicit MirroredStrategy(StrategyOptions options = {});
  /// These devices: {"cuda:0", "cuda:1"}, or logical CPU devices {"cpu:0", "cpu:1"}, which split
  /// the processor's cores between replicas. Throws BackendError for a device that is not there.
  explicit MirroredStrategy(const std::vector<std::string>& devices, StrategyOptions options = {});
};

/// The strategy of models compiled now: the innermost scope(), or null.
KERASCPP_API std::shared_ptr<Strategy> current_strategy();

}  // namespace keras::distribute
