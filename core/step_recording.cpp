#include "core/step_recording.h"

#include "core/backend.h"

namespace keras::detail {

namespace {
thread_local StepRecordingScope* current_recording = nullptr;
thread_local HeldStateUpdates* current_held = nullptr;
}  // namespace

void update_layer_state(std::function<void()> update) {
  if (current_held)
    current_held->updates_.push_back(std::move(update));
  else
    update();
}

HeldStateUpdates::HeldStateUpdates() : previous_(current_held) { current_held = this; }
HeldStateUpdates::~HeldStateUpdates() { current_held = previous_; }
void HeldStateUpdates::apply() {
  // Released first: an update made while applying (none so far) runs at once.
  current_held = previous_;
  std::vector<std::function<void()>> updates = std::move(updates_);
  updates_.clear();
  for (const auto& u : updates) u();
  current_held = this;
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

void on_failed_step(std::function<void()> undo) {
  if (current_recording) current_recording->failed_work_.push_back(std::move(undo));
}

bool recording_step() { return current_recording != nullptr; }

DeferredChecks::DeferredChecks(Backend* device) : device_(device) {
  if (device_) device_->begin_deferring_checks();
}
DeferredChecks::~DeferredChecks() {
  if (device_) device_->end_deferring_checks();
}

GuardedByChecks::GuardedByChecks(Backend* device) : device_(device) {
  if (device_) device_->begin_guarded_by_checks();
}
GuardedByChecks::~GuardedByChecks() {
  if (device_) device_->end_guarded_by_checks();
}

StepRecordingScope::StepRecordingScope() : previous_(current_recording) { current_recording = this; }
StepRecordingScope::~StepRecordingScope() { current_recording = previous_; }

}  // namespace keras::detail
