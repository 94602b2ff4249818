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
#include "../core/variable.h"
#include "communicator.h"
#include "gradient_reducer.h"

namespace keras::distribute {

struct StrategyOptions {
  /// "auto" (NCCL when the default backend is a GPU; otherwise MPI under mpirun, else tcp), "mpi",
  /// "tcp", "nccl", or "single".
  std::string communicator = "auto";
  /// Gradients are summed in buckets of about this size, each as soon as it is complete.
  int64_t bucket_bytes = 25 << 20;
  /// How long a collective waits for the other ranks before failing; KERASCPP_DISTRIBUTED_TIMEOUT
  /// (default 300 s) when unset.
  std::optional<std::chrono::milliseconds> timeout;
};

/// The replicas of a model and how they stay identical. Models compiled inside scope() train with
/// it: every global batch is split across replicas, gradients are summed across them, losses and
/// metrics are aggregated, and only the chief (rank 0) prints and writes checkpoints.
/// A handle: copies share one communicator.
class KERASCPP_API Strategy {
 public:
  virtual ~Strategy();
  /// Keras' strategy.num_replicas_in_sync.
  int num_replicas_in_sync() const { return state_->comm->world_size(); }
  /// This replica's index (the process' rank).
  int replica_id() const { return state_->comm->rank(); }
  /// Rank 0: the replica that prints progress and writes files.
  bool is_chief() const { return state_->comm->rank() == 0; }
  Communicator& communicator() const { return *state_->comm; }
  const StrategyOptions& options() const { return state_->options; }

  /// Runs `fn` with this strategy current: models compiled inside train with it. Returns what fn returns.
  template <typename F>
  auto scope(F&& fn) -> decltype(fn()) {
    ScopeGuard guard(this);
    return fn();
  }

  // What Model uses; users rarely need these. ---------------------------------------------------
  /// Rows [begin, end) of a global batch of `n` samples that this replica trains on.
  std::pair<int64_t, int64_t> shard(int64_t n) const;
  /// Copies rank 0's values into every replica's variables.
  void broadcast_variables(const std::vector<Variable*>& variables) const;
  /// Averages floating variables across replicas (per-replica BatchNormalization statistics).
  void average_variables(const std::vector<Variable*>& variables) const;
  /// Rank 0's `key` on every rank (a dataset's shuffle key).
  uint64_t broadcast_key(uint64_t key) const;
  /// Makes the global random state differ per rank again (dropout masks per replica).
  void decorrelate_random_state() const;
  /// Sums `values` across replicas (metric states).
  std::vector<double> sum(const std::vector<double>& values) const;
  GradientReducer& reducer() const { return *state_->reducer; }
  /// The reducer's counters (overlap of all-reduce and backward) plus "replicas".
  std::map<std::string, int64_t> counters() const;

 protected:
  Strategy(std::shared_ptr<Communicator> comm, StrategyOptions options);

 private:
  struct KERASCPP_API ScopeGuard {
    explicit ScopeGuard(const Strategy* s);
    ~ScopeGuard();
    std::shared_ptr<Strategy> previous;
  };
  struct State {
    std::shared_ptr<Communicator> comm;
    StrategyOptions options;
    std::unique_ptr<GradientReducer> reducer;
  };
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

/// The strategy of models compiled now: the innermost scope(), or null.
KERASCPP_API std::shared_ptr<Strategy> current_strategy();

}  // namespace keras::distribute
