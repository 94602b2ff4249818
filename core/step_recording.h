#pragma once
// Host work around recorded device steps (Backend::begin_capture). A replay reruns only the device
// work of a step; what the host changes each step (an optimizer's iteration count and rates, the
// keys of random ops, a metric's count) is done by host work registered here, which whoever
// replays the recording runs before each replay.
#include <functional>
#include <vector>

#include "export.h"

namespace keras::detail {

/// Runs `work` now, or, while the calling thread records a step, keeps it for the recording's
/// replays instead. `work` may change host state and queue device work (fills of the tensors the
/// step reads), but must not read the device.
KERASCPP_API void each_step(std::function<void()> work);

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

 private:
  friend void each_step(std::function<void()> work);
  std::vector<std::function<void()>> work_;
  StepRecordingScope* previous_;
};

}  // namespace keras::detail
