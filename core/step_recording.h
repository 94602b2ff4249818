#pragma once
// Host work around recorded device steps (Backend::begin_capture). A replay reruns only the device
// work of a step; what the host changes each step (an optimizer's iteration count and rates, the
// keys of random ops, a metric's count) is done by host work registered here, which whoever
// replays the recording runs before each replay; what the host learns from a step (whether a
// loss-scaled step's gradients were finite) is read by work that runs after each replay.
#include <functional>
#include <vector>

#include "export.h"

namespace keras {
class Backend;
}

namespace keras::detail {

/// Runs `work` now, or, while the calling thread records a step, keeps it for the recording's
/// replays instead. `work` may change host state and queue device work (fills of the tensors the
/// step reads), but must not read the device.
KERASCPP_API void each_step(std::function<void()> work);

/// Runs `work` now, or, while the calling thread records a step, keeps it to run after each of the
/// recording's replays instead. Unlike each_step's, this work may read the device (it waits for
/// the replay): it reads what the step computed, so it keeps the tensors it reads alive.
KERASCPP_API void after_each_step(std::function<void()> work);

/// While the calling thread records a step: keeps `undo` to run when a replay of the recording
/// fails (a recorded id or label check did not pass), newest first, before the error is thrown, so
/// the host state each_step's work changed is as before the step, as after a step run op by op
/// that failed. Outside a recording, nothing: such a step throws before its host work runs.
KERASCPP_API void on_failed_step(std::function<void()> undo);

/// Whether the calling thread is recording a step now.
KERASCPP_API bool recording_step();

/// While it lives, the calling thread records a step: each_step keeps its work here.
class KERASCPP_API StepRecordingScope {
 public:
  StepRecordingScope();
  ~StepRecordingScope();
  StepRecordingScope(const StepRecordingScope&) = delete;
  StepRecordingScope& operator=(const StepRecordingScope&) = delete;
  /// The work kept so far, in the order it was registered.
  std::vector<std::function<void()>> take_host_work() { return std::move(work_); }
  /// The work to run after each replay, in the order it was registered.
  std::vector<std::function<void()>> take_after_work() { return std::move(after_work_); }
  /// The work to run when a replay fails, in the order it was registered.
  std::vector<std::function<void()>> take_failed_work() { return std::move(failed_work_); }

 private:
  friend void each_step(std::function<void()> work);
  friend void after_each_step(std::function<void()> work);
  friend void on_failed_step(std::function<void()> undo);
  std::vector<std::function<void()>> work_, after_work_, failed_work_;
  StepRecordingScope* previous_;
};

/// Runs `update`, a layer's change to its own state in a training forward pass (BatchNormalization's
/// moving statistics), now, or, while a HeldStateUpdates lives on the calling thread, when it
/// applies them: after the step's labels and ids were checked.
KERASCPP_API void update_layer_state(std::function<void()> update);

/// While it lives, update_layer_state's work on the calling thread waits for apply(); what was not
/// applied when it ends (the step failed) is dropped, so a step whose labels fail their check
/// leaves the moving statistics as they were. Updates run in the order they were made.
class KERASCPP_API HeldStateUpdates {
 public:
  HeldStateUpdates();
  ~HeldStateUpdates();
  HeldStateUpdates(const HeldStateUpdates&) = delete;
  HeldStateUpdates& operator=(const HeldStateUpdates&) = delete;
  void apply();

 private:
  friend void update_layer_state(std::function<void()> update);
  std::vector<std::function<void()>> updates_;
  HeldStateUpdates* previous_;
};

/// While it lives, the calling thread's id and label checks on `device` may be read only where a
/// GuardedByChecks begins (Backend::begin_deferring_checks): a step made of a forward pass,
/// gradients, then a guarded update waits for the device once, not at each check.
class KERASCPP_API DeferredChecks {
 public:
  explicit DeferredChecks(Backend* device);
  ~DeferredChecks();
  DeferredChecks(const DeferredChecks&) = delete;
  DeferredChecks& operator=(const DeferredChecks&) = delete;

 private:
  Backend* device_;
};

/// While it lives, the work the calling thread queues on `device` in a recorded step runs in a
/// replay only where the step's id and label checks passed (Backend::begin_guarded_by_checks):
/// it wraps what a step changes (weights, optimizer slots, metric sums). Op by op, its
/// constructor throws the first failed check a DeferredChecks left unread.
class KERASCPP_API GuardedByChecks {
 public:
  explicit GuardedByChecks(Backend* device);
  ~GuardedByChecks();
  GuardedByChecks(const GuardedByChecks&) = delete;
  GuardedByChecks& operator=(const GuardedByChecks&) = delete;

 private:
  Backend* device_;
};

}  // namespace keras::detail
