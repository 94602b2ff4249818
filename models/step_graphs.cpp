#include "models/step_graphs.h"

#include <chrono>
#include <string>

#include <fmt/format.h>

#include "core/config.h"
#include "core/errors.h"
#include "core/logging.h"
#include "core/ops.h"
#include "core/step_recording.h"

namespace keras::detail {

namespace {
std::vector<const void*> locations(const std::vector<const Tensor*>& state) {
  std::vector<const void*> out;
  out.reserve(state.size());
  for (const Tensor* t : state) out.push_back(t->raw_data());
  return out;
}
}  // namespace

bool StepGraphs::enabled() {
  return settings().cuda_graphs != Settings::StepRecording::off;
}

namespace {
// Wall seconds of `f`, with the device idle before and done after.
template <typename F>
double timed(Backend& be, F&& f) {
  be.synchronize();
  const auto start = std::chrono::steady_clock::now();
  f();
  be.synchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

std::vector<Tensor> StepGraphs::run(const std::vector<Tensor>& x, const std::vector<const Tensor*>& state,
                                    const Step& step) {
  // A model called inside another's recording (a nested model) is part of that recording.
  if (x.empty() || !x[0].defined() || recording_step() || !enabled()) return step(x);
  Backend& be = *x[0].backend();
  if (!be.supports(Capability::graph_capture)) return step(x);
  std::string key = be.name();
  for (const Tensor& t : x) {
    if (!t.defined()) {
      key += "|-";
      continue;
    }
    if (t.backend() != &be) return step(x);
    key += fmt::format("|{}{}", t.shape().to_string(), dtype_name(t.dtype()));
  }
  Entry& e = entries_[key];
  if (e.refused) return step(x);
  if (e.graph && locations(state) != e.state) {  // weights were replaced (loading, a new optimizer): record anew
    e = Entry{};
  }
  const bool measure = settings().cuda_graphs == Settings::StepRecording::measure;
  if (!e.graph) {
    if (++e.calls < 2) return step(x);  // first: algorithms chosen, caches and optimizer slots filled
    if (measure && e.op_by_op_seconds < 0) {  // then, to compare with a replay: one step op by op, timed
      std::vector<Tensor> out;
      e.op_by_op_seconds = timed(be, [&] { out = step(x); });
      return out;
    }
    e.inputs.clear();
    for (const Tensor& t : x) e.inputs.push_back(t.defined() ? ops::copy(t) : Tensor());
    std::vector<Tensor> outputs;
    std::vector<std::function<void()>> host_work, after_work, failed_work;
    try {
      be.begin_capture();
    } catch (const std::exception& error) {  // another thread records on this device now: try next time
      log_debug(fmt::format("step not recorded now ({})", error.what()));
      --e.calls;
      return step(x);
    }
    try {
      StepRecordingScope recording;
      outputs = step(e.inputs);
      host_work = recording.take_host_work();
      after_work = recording.take_after_work();
      failed_work = recording.take_failed_work();
    } catch (const std::exception& error) {
      be.end_capture();
      e = Entry{};
      e.refused = true;
      ++refusals_;
      log_debug(fmt::format("step not recorded ({}); it runs op by op", error.what()));
      return step(x);
    }
    e.graph = be.end_capture();
    if (!e.graph) {
      e = Entry{};
      e.refused = true;
      ++refusals_;
      return step(x);
    }
    e.outputs = std::move(outputs);
    e.host_work = std::move(host_work);
    e.after_work = std::move(after_work);
    e.failed_work = std::move(failed_work);
    e.state = locations(state);
    ++recordings_;
  }
  for (const auto& work : e.host_work) work();
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i].defined()) be.copy(e.inputs[i].raw_data(), x[i].raw_data(), x[i].nbytes());
  // A failed check: the guarded device work did not run (Backend::begin_guarded_by_checks); the
  // host work is taken back too, so a caller that skips the batch finds the model as before it.
  // The replay writes the state (weights, slots, statistics) behind the frontend's back.
  for (const Tensor* t : state) t->mark_modified();
  const auto replay = [&] {
    try {
      e.graph->replay();
    } catch (const ValueError&) {
      for (auto it = e.failed_work.rbegin(); it != e.failed_work.rend(); ++it) (*it)();
      throw;
    }
  };
  if (measure && !e.measured) {
    const double seconds = timed(be, replay);
    for (const auto& work : e.after_work) work();
    e.measured = true;
    if (seconds > e.op_by_op_seconds) {  // this step is not bound by queueing: op by op from now on
      log_debug(fmt::format("a replayed step took {:.3g} ms, op by op {:.3g} ms: not replayed", seconds * 1e3,
                            e.op_by_op_seconds * 1e3));
      std::vector<Tensor> out;
      for (const Tensor& t : e.outputs) out.push_back(ops::copy(t));
      e = Entry{};
      e.refused = true;
      ++slower_;
      ++replays_;
      return out;
    }
  } else {
    replay();
    for (const auto& work : e.after_work) work();
  }
  ++replays_;
  std::vector<Tensor> out;
  for (const Tensor& t : e.outputs) out.push_back(ops::copy(t));  // the next replay overwrites e.outputs
  return out;
}

}  // namespace keras::detail
