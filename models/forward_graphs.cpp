#include "models/forward_graphs.h"

#include <string>

#include <fmt/format.h>

#include "core/config.h"
#include "core/logging.h"
#include "core/ops.h"

namespace keras::detail {

namespace {
// A model called inside another's recording (a nested model) is part of that recording.
thread_local bool recording_now = false;

std::vector<const void*> locations(const std::vector<const Tensor*>& state) {
  std::vector<const void*> out;
  out.reserve(state.size());
  for (const Tensor* t : state) out.push_back(t->raw_data());
  return out;
}
}  // namespace

bool ForwardGraphs::enabled() {
  return settings().cuda_graphs;
}

std::vector<Tensor> ForwardGraphs::run(const std::vector<Tensor>& x, const std::vector<const Tensor*>& state,
                                       const Forward& forward) {
  if (x.empty() || recording_now || !enabled()) return forward(x);
  Backend& be = *x[0].backend();
  std::string key = be.name();
  for (const Tensor& t : x) {
    if (t.backend() != &be || !be.supports(Capability::graph_capture)) return forward(x);
    key += fmt::format("|{}{}", t.shape().to_string(), dtype_name(t.dtype()));
  }
  Entry& e = entries_[key];
  if (e.refused) return forward(x);
  if (e.graph && locations(state) != e.state) {  // weights were replaced (set_weights, loading): record anew
    e = Entry{};
  }
  if (!e.graph) {
    if (++e.calls < 2) return forward(x);
    e.inputs.clear();
    for (const Tensor& t : x) e.inputs.push_back(ops::copy(t));
    std::vector<Tensor> outputs;
    be.begin_capture();
    recording_now = true;
    try {
      outputs = forward(e.inputs);
      recording_now = false;
    } catch (const std::exception& error) {
      recording_now = false;
      be.end_capture();
      e.refused = true;
      log_debug(fmt::format("inference graph not recorded ({}); the model runs layer by layer", error.what()));
      return forward(x);
    }
    e.graph = be.end_capture();
    if (!e.graph) {
      e.refused = true;
      return forward(x);
    }
    e.outputs = std::move(outputs);
    e.state = locations(state);
    ++recordings_;
  }
  for (size_t i = 0; i < x.size(); ++i) be.copy(e.inputs[i].raw_data(), x[i].raw_data(), x[i].nbytes());
  e.graph->replay();
  ++replays_;
  std::vector<Tensor> out;
  for (const Tensor& t : e.outputs) out.push_back(ops::copy(t));  // the next replay overwrites e.outputs
  return out;
}

}  // namespace keras::detail
