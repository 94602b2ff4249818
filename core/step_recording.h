#pragma once
// Host work around recorded device steps (Backend::begin_capture). A replay reruns only the device
// work of a step; what the host changes each step (an optimizer's iteration count and rates, the
// keys of random ops, a metric's count) is done by host work registered here, which whoever
// replays the recording runs before each replay; what the host learns from a step (whether a
// loss-scaled step's gradients were finite) is read by work that runs after each replay.
#include <functional>
#include <vector>

#include "export.h"

namespace keras::detail {

/// Runs `work` now, or, while the calling thread records a step, keeps it for the recording's
/// replays instead. `work` may change host state and queue device work (fills of the tensors the
/// step reads), but must not read the device.
KERASCPP_API void each_step(std::function<void()> work);

/// Runs `work` now, or, while the calling thread records a step, keeps it to run after each of the
/// recording's replays instead. Unlike each_step's, this work may read the device (it waits for
/// the replay): it reads what the step computed, so it keeps the tensors it reads alive.
KERASCPP_API void after_each_step(std::function<void()> work);

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

 private:
  friend void each_step(std::function<void()> work);
  friend void after_each_step(std::function<void()> work);
  std::vector<std::function<void()>> work_, after_work_;
  StepRecordingScope* previous_;
};

}  // namespace keras::detail
