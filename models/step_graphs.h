#pragma once
// Model steps replayed from a recorded device graph (CUDA graphs): a model called again and again
// on inputs of the same shapes (serving, batch-1 latency, every training step of an epoch) queues
// one launch instead of every layer's kernels, since such steps are bound by the host's queueing,
// not by the GPU.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/export.h"
#include "core/tensor.h"

namespace keras::detail {

class KERASCPP_API StepGraphs {
 public:
  using Step = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
  /// KERASCPP_CUDA_GRAPHS=1 or auto (the default) turns it on where the backend records graphs (CUDA);
  /// 0 turns it off. tools/gpu/NOTES.md has what it brings on an H200.
  static bool enabled();
  /// Runs step(x): the first call per input signature runs it as is (choosing algorithms, building
  /// optimizer slots, filling caches), the second records it and every later one replays the
  /// recording, while `state` (the tensors it reads and writes besides x: weights, optimizer
  /// slots) still lies where it did. The host work a step registers with each_step
  /// (core/step_recording.h) runs before each replay, and what it registers with after_each_step
  /// after it. A replay whose id or label checks fail throws their error after running the undo
  /// work the step registered with on_failed_step. A step that cannot be recorded (it reads a
  /// value back, say) runs as is from then on. Undefined tensors of x are allowed (an absent
  /// sample weight) and are part of the signature.
  /// Under KERASCPP_CUDA_GRAPHS=auto, the second call runs op by op and timed, the third records,
  /// and its replay is timed too: a recording no faster is dropped (a step bound by the device, not
  /// by queueing, gains nothing and would hold its memory).
  std::vector<Tensor> run(const std::vector<Tensor>& x, const std::vector<const Tensor*>& state, const Step& step);
  /// Recordings made and replays run, for tests and benchmarks.
  int64_t recordings() const { return recordings_; }
  int64_t replays() const { return replays_; }
  /// Signatures that could not be recorded, and recordings dropped as slower (auto).
  int64_t refusals() const { return refusals_; }
  int64_t dropped_as_slower() const { return slower_; }

 private:
  struct Entry {
    int calls = 0;
    bool refused = false;
    double op_by_op_seconds = -1;  // auto: a step op by op, timed
    bool measured = false;         // auto: the first replay was timed
    std::unique_ptr<CapturedWork> graph;
    std::vector<Tensor> inputs, outputs;  // where the recording reads x and leaves its results
    std::vector<const void*> state;
    std::vector<std::function<void()>> host_work;   // run before each replay
    std::vector<std::function<void()>> after_work;  // and after it
    std::vector<std::function<void()>> failed_work;  // when a replay fails: undoes host_work
  };
  std::map<std::string, Entry> entries_;
  int64_t recordings_ = 0, replays_ = 0, refusals_ = 0, slower_ = 0;
};

}  // namespace keras::detail
