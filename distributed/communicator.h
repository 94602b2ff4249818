#pragma once
// Collectives across the processes (ranks) of a training job. The frontend uses only this
// interface; MPI and NCCL live in plugins (libkerascpp_comm_mpi.so, libkerascpp_comm_nccl.so), so
// libkerascpp.so itself needs neither.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "../core/errors.h"
#include "../core/export.h"
#include "../core/tensor.h"

namespace keras::distribute {

enum class ReduceOp { sum, mean, max, min };

/// A collective in flight.
class KERASCPP_API Work {
 public:
  virtual ~Work();
  /// True once the collective has finished (drives progress; never blocks).
  virtual bool test() = 0;
  /// Blocks until it finishes; throws DistributedError when the other ranks do not answer within
  /// the communicator's timeout (a rank failed or hangs).
  virtual void wait() = 0;
};

struct CommunicatorOptions {
  /// How long a collective waits for the other ranks before it fails (KERASCPP_DISTRIBUTED_TIMEOUT).
  std::chrono::milliseconds timeout{300'000};
};

/// Every rank calls the same collectives in the same order with tensors of the same shape and
/// dtype. Tensors are updated in place where the method says so.
class KERASCPP_API Communicator {
 public:
  virtual ~Communicator();
  /// "single", "in_process", "tcp", "mpi", "nccl".
  virtual std::string name() const = 0;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  std::chrono::milliseconds timeout() const { return options_.timeout; }

  /// Starts reducing `t` in place across ranks; `t` must stay alive and untouched until the work ends.
  virtual std::unique_ptr<Work> all_reduce_async(Tensor t, ReduceOp op) = 0;
  /// Reduces `t` in place across ranks.
  void all_reduce(Tensor& t, ReduceOp op = ReduceOp::sum) { all_reduce_async(t, op)->wait(); }
  /// Overwrites `t` on every rank with root's.
  virtual void broadcast(Tensor& t, int root = 0) = 0;
  /// Every rank's `t`, stacked: (world_size, ...t's shape).
  virtual Tensor all_gather(const Tensor& t) = 0;
  /// Reduces `t` (world_size * k, ...) across ranks; rank r keeps rows [r k, (r + 1) k).
  virtual Tensor reduce_scatter(const Tensor& t, ReduceOp op = ReduceOp::sum) = 0;
  /// Returns when every rank has reached it (or throws after the timeout).
  virtual void barrier() = 0;
  /// Ends the whole job because this rank failed: the other ranks stop too instead of waiting
  /// for it. Does not return.
  [[noreturn]] virtual void abort(const std::string& why) = 0;

  /// Whether its collectives on device tensors may be recorded into a training step's device graph
  /// (models/step_graphs.h): they are queued on the device's stream and never touch the host
  /// (NCCL; a single process' identity). Host-side ones (MPI, tcp, in process) are not.
  virtual bool records_in_step_graphs() const { return false; }
  /// After a replayed step, whose collectives were queued without the host: waits for `device`'s
  /// queued work, failing as a collective does when the other ranks do not answer within the
  /// timeout, so a failed rank cannot hang this one.
  virtual void wait_for_recorded_collectives(Backend& device) { (void)device; }

 protected:
  explicit Communicator(CommunicatorOptions options) : options_(options) {}
  CommunicatorOptions options_;
};

/// One process: every collective is the identity (sum, mean, max and min of one value).
KERASCPP_API std::shared_ptr<Communicator> make_single_process_communicator(CommunicatorOptions options = {});

/// The replicas of one process, one thread each (MirroredStrategy): `size` communicators, rank i
/// for replica i's thread. Collectives meet in host memory and combine in rank order, so every
/// replica gets the same bits; tensors may live on any backend (device tensors are staged through
/// the host). A handle: copies share the group.
class KERASCPP_API InProcessGroup {
 public:
  explicit InProcessGroup(int size, CommunicatorOptions options = {});
  int size() const;
  std::shared_ptr<Communicator> member(int rank) const;
  /// Ends every collective waiting or to come with DistributedError(why): a replica failed, and the
  /// others must not wait for it.
  void fail(const std::string& why);
  /// A fresh start after a failure, once no member is inside a collective any more.
  void reset();

  struct State;  // distributed/in_process_communicator.cpp

 private:
  std::shared_ptr<State> state_;
  std::vector<std::shared_ptr<Communicator>> members_;
};

/// Ranks started without MPI by a launcher that sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT
/// (torchrun's contract): rank 0 listens on MASTER_PORT, the others connect. Collectives go through
/// rank 0 (simple, for CPU processes on a node and as NCCL's bootstrap). Throws DistributedError
/// when the ranks cannot meet within the timeout.
KERASCPP_API std::shared_ptr<Communicator> make_tcp_communicator(CommunicatorOptions options = {});

/// A communicator by kind: "single", "tcp" (built in), or a plugin: "mpi" (CPU tensors, or device tensors staged
/// through the host; the process must be started by mpirun) or "nccl" (CUDA tensors, ordered on the backend's stream;
/// ranks exchange NCCL's id through `bootstrap`, usually the MPI communicator). Throws DistributedError naming the
/// plugin and why it cannot be used.
KERASCPP_API std::shared_ptr<Communicator> make_communicator(const std::string& kind, CommunicatorOptions options = {},
                                                             std::shared_ptr<Communicator> bootstrap = nullptr);

/// The sum of `x` over every rank, recorded for autograd: the gradient of each rank's `x` is the sum
/// over ranks of the gradients flowing into the result (SyncBatchNormalization's statistics).
KERASCPP_API Tensor all_reduce_sum(Communicator& comm, const Tensor& x);

/// The error every communicator throws when a collective outlives its timeout.
KERASCPP_API DistributedError timeout_error(const std::string& what, int rank, int world_size,
                                            std::chrono::milliseconds timeout);

/// The name of a reduction, for messages.
KERASCPP_API const char* reduce_op_name(ReduceOp op);

}  // namespace keras::distribute
