#include "core/step_recording.h"

namespace keras::detail {

namespace {
thread_local StepRecordingScope* current_recording = nullptr;
}

void each_step(std::function<void()> work) {
  if (current_recording)
    current_recording->work_.push_back(std::move(work));
  else
    work();
}

void after_each_step(std::function<void()> work) {
  if (current_recording)
    current_recording->after_work_.push_back(std::move(work));
  else
    work();
}

bool recording_step() { return current_recording != nullptr; }

StepRecordingScope::StepRecordingScope() : previous_(current_recording) { current_recording = this; }
StepRecordingScope::~StepRecordingScope() { current_recording = previous_; }

}  // namespace keras::detail
