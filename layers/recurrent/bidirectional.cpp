#include "layers/recurrent/bidirectional.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

namespace {
std::shared_ptr<RecurrentLayer> as_recurrent(std::shared_ptr<Layer> layer, const char* what) {
  auto rnn = std::dynamic_pointer_cast<RecurrentLayer>(layer);
  KCPP_CHECK(rnn != nullptr, ValueError, "Bidirectional: expected {} to be a SimpleRNN, LSTM or GRU, received {} \"{}\"",
             what, layer ? layer->class_name() : "null", layer ? layer->name() : "");
  return rnn;
}

std::string without_prefix(const std::string& name, const std::string& prefix) {
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

// A fresh copy through the layer's config (no weights or state carried over), as Keras makes it.
std::shared_ptr<RecurrentLayer> copy_of(const RecurrentLayer& layer, const std::string& name, bool go_backwards) {
  Config c = serialization::serialize_layer(layer);
  c.erase("build_config");
  c["config"]["name"] = name;
  c["config"]["go_backwards"] = go_backwards;
  return as_recurrent(serialization::deserialize_layer(c), "the layer");
}
}  // namespace

Bidirectional::Bidirectional(LayerRef layer, BidirectionalOptions options, std::shared_ptr<Layer> backward_layer)
    : Wrapper("Bidirectional", options.name), merge_mode_(std::move(options.merge_mode)) {
  KCPP_CHECK(!merge_mode_ || *merge_mode_ == "concat" || *merge_mode_ == "sum" || *merge_mode_ == "mul" ||
                 *merge_mode_ == "ave",
             ValueError,
             "Invalid merge mode. Received: {}. Merge mode should be one of {{\"sum\", \"mul\", \"ave\", \"concat\", "
             "None}}",
             merge_mode_.value_or("None"));
  auto original = as_recurrent(layer.get(), "the layer");
  forward_ = copy_of(*original, "forward_" + without_prefix(original->name(), "forward_"), original->options().go_backwards);
  if (backward_layer) {
    backward_ = as_recurrent(std::move(backward_layer), "backward_layer");
    KCPP_CHECK(backward_->options().go_backwards != forward_->options().go_backwards, ValueError,
               "Bidirectional: backward_layer \"{}\" must have the opposite go_backwards of the forward layer",
               backward_->name());
    KCPP_CHECK(backward_->options().return_sequences == forward_->options().return_sequences &&
                   backward_->options().return_state == forward_->options().return_state,
               ValueError,
               "Bidirectional: forward and backward layers must agree on return_sequences and return_state");
  } else {
    backward_ = copy_of(*original, "backward_" + without_prefix(original->name(), "backward_"),
                        !original->options().go_backwards);
  }
  // Masked steps give zeros in returned sequences, so the two directions line up (as Keras).
  forward_->set_zero_output_for_mask(forward_->options().return_sequences);
  backward_->set_zero_output_for_mask(backward_->options().return_sequences);
  inner_ = {forward_, backward_};
}

void Bidirectional::check_input(const PartialShape& s) const {
  if (s.size() != 3)
    throw input_error(
        fmt::format("expected ndim=3, found ndim={}. Full shape received: {}", s.size(), shape_to_string(s)));
}

void Bidirectional::build(const PartialShape& s) {
  forward_->build_for(s);
  backward_->build_for(s);
}

std::vector<PartialShape> Bidirectional::compute_output_shapes(const std::vector<PartialShape>& shapes) const {
  const size_t states = forward_->num_states();
  KCPP_CHECK(shapes.size() == 1 || shapes.size() == 1 + 2 * states, ValueError,
             "Layer \"{}\" expects its sequence input and optionally {} initial states (forward, then backward), but "
             "it received {} input tensors",
             name(), 2 * states, shapes.size());
  const auto f = forward_->compute_output_shapes({shapes[0]});
  const auto b = backward_->compute_output_shapes({shapes[0]});
  std::vector<PartialShape> out;
  if (!merge_mode_) {
    out = {f[0], b[0]};
  } else {
    PartialShape merged = f[0];
    if (*merge_mode_ == "concat" && merged.back() && b[0].back()) merged.back() = *merged.back() + *b[0].back();
    out = {merged};
  }
  out.insert(out.end(), f.begin() + 1, f.end());
  out.insert(out.end(), b.begin() + 1, b.end());
  return out;
}

PartialShape Bidirectional::compute_output_shape(const PartialShape& s) const { return compute_output_shapes({s})[0]; }

Tensor Bidirectional::compute_mask(const Tensor&, const Tensor& mask) const {
  return forward_->options().return_sequences ? mask : Tensor();
}

std::vector<Tensor> Bidirectional::run(const Tensor& x, const Tensor& mask, const std::vector<Tensor>& initial_state,
                                       bool training) {
  const size_t states = forward_->num_states();
  KCPP_CHECK(initial_state.empty() || initial_state.size() == 2 * states, ValueError,
             "Layer \"{}\" expects {} initial states (forward, then backward), received {}", name(), 2 * states,
             initial_state.size());
  const auto half = [&](size_t first) {
    return initial_state.empty()
               ? std::vector<Tensor>{}
               : std::vector<Tensor>(initial_state.begin() + static_cast<std::ptrdiff_t>(first),
                                     initial_state.begin() + static_cast<std::ptrdiff_t>(first + states));
  };
  std::vector<Tensor> f = forward_->run(x, mask, half(0), training);
  std::vector<Tensor> b = backward_->run(x, mask, half(states), training);
  Tensor yf = f[0], yb = b[0];
  if (backward_->options().return_sequences) {
    yb = detail::reverse_time(yb);  // the backward layer returns its outputs in processing order
  }
  std::vector<Tensor> out;
  if (!merge_mode_)
    out = {yf, yb};
  else if (*merge_mode_ == "concat")
    out = {ops::concatenate({yf, yb}, -1)};
  else if (*merge_mode_ == "sum")
    out = {ops::add(yf, yb)};
  else if (*merge_mode_ == "mul")
    out = {ops::multiply(yf, yb)};
  else
    out = {ops::multiply(ops::add(yf, yb), 0.5f)};
  out.insert(out.end(), f.begin() + 1, f.end());
  out.insert(out.end(), b.begin() + 1, b.end());
  return out;
}

Tensor Bidirectional::call(const Tensor& x, bool training) { return run(x, Tensor(), {}, training).at(0); }
Tensor Bidirectional::call_masked(const Tensor& x, const Tensor& mask, bool training) {
  return run(x, mask, {}, training).at(0);
}
std::vector<Tensor> Bidirectional::call_multi(const std::vector<Tensor>& inputs, bool training) {
  return call_multi_masked(inputs, Tensor(), training);
}
std::vector<Tensor> Bidirectional::call_multi_masked(const std::vector<Tensor>& inputs, const Tensor& mask,
                                                     bool training) {
  KCPP_CHECK(!inputs.empty(), ValueError, "Layer \"{}\" received no inputs", name());
  prepare(inputs[0]);
  return run(inputs[0], mask, std::vector<Tensor>(inputs.begin() + 1, inputs.end()), training);
}

Config Bidirectional::get_config() const {
  Config c = Layer::get_config();
  c["merge_mode"] = merge_mode_ ? Config(*merge_mode_) : Config(nullptr);
  Config f = serialization::serialize_layer(*forward_), b = serialization::serialize_layer(*backward_);
  f.erase("build_config");
  b.erase("build_config");
  c["layer"] = f;
  c["backward_layer"] = b;
  return c;
}

std::shared_ptr<Layer> Bidirectional::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Bidirectional config");
  BidirectionalOptions o;
  o.name = r.name();
  const Config& mode = r.raw("merge_mode");
  KCPP_CHECK(mode.is_null() || mode.is_string(), ValueError,
             "Bidirectional config: expected \"merge_mode\" to be a string or null, received {}", mode.dump());
  o.merge_mode = mode.is_null() ? std::nullopt : std::optional<std::string>(mode.get<std::string>());
  auto inner = serialization::deserialize_layer(r.raw("layer"));
  std::shared_ptr<Layer> backward;
  if (r.has("backward_layer")) backward = serialization::deserialize_layer(r.raw("backward_layer"));
  auto layer = std::make_shared<Bidirectional>(LayerRef(inner), std::move(o), std::move(backward));
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
