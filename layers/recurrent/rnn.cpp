#include "layers/recurrent/rnn.h"

#include "core/autograd.h"
#include "core/check.h"
#include "core/ops.h"
#include "layers/activations.h"

namespace keras::layers {

RecurrentLayer::RecurrentLayer(std::string class_name, int64_t units, RecurrentOptions options, int64_t gates)
    : Layer(class_name, options.name), units_(units), options_(std::move(options)), gates_(gates),
      seeds_(options_.seed) {
  set_activity_regularizer(options_.activity_regularizer);
  KCPP_CHECK(units > 0, ValueError, "{}: expected a positive number of units, received {}", class_name, units);
  KCPP_CHECK(options_.dropout >= 0.f && options_.dropout < 1.f && options_.recurrent_dropout >= 0.f &&
                 options_.recurrent_dropout < 1.f,
             ValueError, "{}: expected dropout and recurrent_dropout in [0, 1), received {} and {}", class_name,
             options_.dropout, options_.recurrent_dropout);
  activations::check_name(options_.activation);
  if (options_.recurrent_activation) activations::check_name(*options_.recurrent_activation);
}

void RecurrentLayer::check_input(const PartialShape& s) const {
  if (s.size() != 3)
    throw input_error(
        fmt::format("expected ndim=3, found ndim={}. Full shape received: {}", s.size(), shape_to_string(s)));
  if (!s[2]) throw input_error(fmt::format("the feature axis must be known, received shape {}", shape_to_string(s)));
  if (kernel_ && *s[2] != kernel_->shape()[0])
    throw input_error(fmt::format("expected axis -1 of input shape to have value {}, but received input with shape {}",
                                  kernel_->shape()[0], shape_to_string(s)));
}

void RecurrentLayer::build(const PartialShape& s) {
  const int64_t width = gates_ * units_;
  kernel_ = &add_weight("kernel", Shape{*s[2], width}, options_.kernel_initializer, true, options_.kernel_regularizer,
                        options_.kernel_constraint);
  recurrent_kernel_ = &add_weight("recurrent_kernel", Shape{units_, width}, options_.recurrent_initializer, true,
                                  options_.recurrent_regularizer, options_.recurrent_constraint);
  if (options_.use_bias)
    bias_ = &add_weight("bias", bias_shape(), bias_init(), true, options_.bias_regularizer, options_.bias_constraint);
}

void RecurrentLayer::build_multi(const std::vector<PartialShape>& shapes) {
  check_input(shapes.at(0));
  build(shapes.at(0));
}

PartialShape RecurrentLayer::compute_output_shape(const PartialShape& s) const {
  if (options_.return_sequences) return {s.at(0), s.at(1), units_};
  return {s.at(0), units_};
}

std::vector<PartialShape> RecurrentLayer::compute_output_shapes(const std::vector<PartialShape>& shapes) const {
  KCPP_CHECK(shapes.size() == 1 || shapes.size() == 1 + num_states(), ValueError,
             "Layer \"{}\" expects its sequence input and optionally {} initial state(s), but it received {} input "
             "tensors",
             name(), num_states(), shapes.size());
  check_input(shapes[0]);
  for (size_t k = 1; k < shapes.size(); ++k)
    KCPP_CHECK(shapes[k].size() == 2 && (!shapes[k][1] || *shapes[k][1] == units_), ValueError,
               "Layer \"{}\": initial state {} must have shape (batch, {}), received {}", name(), k - 1, units_,
               shape_to_string(shapes[k]));
  std::vector<PartialShape> out{compute_output_shape(shapes[0])};
  if (options_.return_state)
    for (size_t k = 0; k < num_states(); ++k) out.push_back({shapes[0].at(0), units_});
  return out;
}

Tensor RecurrentLayer::compute_mask(const Tensor&, const Tensor& mask) const {
  return options_.return_sequences ? mask : Tensor();
}

Tensor RecurrentLayer::activate(const Tensor& x) const { return activations::apply(options_.activation, x); }
Tensor RecurrentLayer::recurrent_activate(const Tensor& x) const {
  return activations::apply(options_.recurrent_activation.value_or("sigmoid"), x);
}

Tensor RecurrentLayer::project_inputs(const Tensor& x, const std::vector<Tensor>& gate_masks) {
  const Tensor bias = input_bias();
  if (gate_masks.size() <= 1) {
    const Tensor in = gate_masks.empty() ? x : ops::multiply(x, gate_masks[0]);
    return ops::linear(in, kernel_->value(), bias);
  }
  std::vector<Tensor> parts;
  for (int64_t g = 0; g < gates_; ++g) {
    const Tensor k = ops::slice(kernel_->value(), {0, g * units_}, {-1, units_});
    const Tensor b = bias.defined() ? ops::slice(bias, {g * units_}, {units_}) : Tensor();
    parts.push_back(ops::linear(ops::multiply(x, gate_masks[static_cast<size_t>(g)]), k, b));
  }
  return ops::concatenate(parts, -1);
}

Tensor RecurrentLayer::recurrent_product(const std::vector<Tensor>& h_in, int64_t first, int64_t count) const {
  const Tensor& u = recurrent_kernel_->value();
  if (!per_gate_recurrent_) {
    const Tensor cols = first == 0 && count == gates_ ? u : ops::slice(u, {0, first * units_}, {-1, count * units_});
    return ops::matmul(h_in[0], cols);
  }
  std::vector<Tensor> parts;
  for (int64_t g = first; g < first + count; ++g)
    parts.push_back(ops::matmul(h_in[static_cast<size_t>(g)], ops::slice(u, {0, g * units_}, {-1, units_})));
  return count == 1 ? parts[0] : ops::concatenate(parts, -1);
}

Tensor RecurrentLayer::call(const Tensor& x, bool training) { return run(x, Tensor(), {}, training).at(0); }
Tensor RecurrentLayer::call_masked(const Tensor& x, const Tensor& mask, bool training) {
  return run(x, mask, {}, training).at(0);
}
std::vector<Tensor> RecurrentLayer::call_multi(const std::vector<Tensor>& inputs, bool training) {
  return call_multi_masked(inputs, Tensor(), training);
}
std::vector<Tensor> RecurrentLayer::call_multi_masked(const std::vector<Tensor>& inputs, const Tensor& mask,
                                                      bool training) {
  KCPP_CHECK(!inputs.empty(), ValueError, "Layer \"{}\" received no inputs", name());
  prepare(inputs[0]);
  return run(inputs[0], mask, std::vector<Tensor>(inputs.begin() + 1, inputs.end()), training);
}

Config RecurrentLayer::get_build_config() const {
  const auto& shapes = build_shapes();
  if (shapes.size() < 2) return Layer::get_build_config();
  Config states = Config::array();
  for (size_t i = 1; i < shapes.size(); ++i) states.push_back(serialization::shape_to_config(shapes[i]));
  return Config{{"shapes_dict", {{"sequences_shape", serialization::shape_to_config(shapes[0])},
                                 {"initial_state_shape", states}}}};
}

void RecurrentLayer::reset_states() {
  NoGradScope no_grad;
  for (Tensor& s : states_) s = ops::zeros_like(s);
}

std::vector<Tensor> RecurrentLayer::run(const Tensor& x, const Tensor& mask, const std::vector<Tensor>& initial_state,
                                        bool training) {
  KCPP_CHECK(x.rank() == 3, ValueError, "Layer \"{}\": expected a (batch, time, features) input, received shape {}",
             name(), x.shape().to_string());
  const int64_t n = x.dim(0), steps = x.dim(1), width = gates_ * units_;
  KCPP_CHECK(steps > 0, ValueError, "Layer \"{}\": the input has no timesteps (shape {})", name(),
             x.shape().to_string());
  if (mask.defined())
    KCPP_CHECK(mask.shape() == Shape({n, steps}), ShapeError,
               "Layer \"{}\": expected a mask of shape {}, received {}", name(), Shape({n, steps}).to_string(),
               mask.shape().to_string());

  // The starting states: given, carried (stateful), or zeros.
  std::vector<Tensor> states;
  if (!initial_state.empty()) {
    KCPP_CHECK(initial_state.size() == num_states(), ValueError,
               "Layer \"{}\" expects {} initial state tensor(s), received {}", name(), num_states(),
               initial_state.size());
    for (size_t k = 0; k < initial_state.size(); ++k)
      KCPP_CHECK(initial_state[k].shape() == Shape({n, units_}), ShapeError,
                 "Layer \"{}\": initial state {} must have shape {}, received {}", name(), k,
                 Shape({n, units_}).to_string(), initial_state[k].shape().to_string());
    states = initial_state;
  } else if (options_.stateful && !states_.empty()) {
    KCPP_CHECK(states_[0].dim(0) == n, ValueError,
               "If an RNN is stateful, the batch size of the input sequences must be the same as the batch size of "
               "the initial state. \n- Expected batch size: {}\n- Received batch size: {}",
               states_[0].dim(0), n);
    states = states_;
  } else {
    for (size_t k = 0; k < num_states(); ++k) states.push_back(ops::zeros({n, units_}, x.dtype(), x.backend()));
  }

  // Dropout masks are drawn once per sequence and shared by every step, as Keras' DropoutRNNCell:
  // one input mask, or with recurrent dropout one mask per gate for the input and for h.
  const bool drop_inputs = training && options_.dropout > 0.f;
  per_gate_recurrent_ = training && options_.recurrent_dropout > 0.f;
  const size_t mask_count = per_gate_recurrent_ ? static_cast<size_t>(gates_) : 1;
  const auto draw = [&](const Shape& shape, float rate) {
    return ops::dropout(ops::ones(shape, x.dtype(), x.backend()), rate, seeds_);
  };
  std::vector<Tensor> input_masks, recurrent_masks;
  if (drop_inputs)
    for (size_t g = 0; g < mask_count; ++g) input_masks.push_back(draw(Shape{n, 1, x.dim(2)}, options_.dropout));
  if (per_gate_recurrent_)
    for (size_t g = 0; g < mask_count; ++g) recurrent_masks.push_back(draw(Shape{n, units_}, options_.recurrent_dropout));

  // LSTM and GRU run as one fused op where the backend has it and nothing needs the loop (masks,
  // per-gate recurrent dropout); Keras' cuDNN path has the same conditions.
  const Backend& be = *x.backend();
  if (const auto cell = fused_cell();
      cell && !mask.defined() && !per_gate_recurrent_ && is_floating(x.dtype()) &&
      be.supports(Capability::fused_rnn) &&
      (*cell != RnnCell::gru || be.supports(Capability::fused_gru_reset_before))) {
    const Tensor inputs = input_masks.empty() ? x : ops::multiply(x, input_masks[0]);
    last_call_fused_ = true;
    return run_fused(*cell, inputs, std::move(states));
  }
  last_call_fused_ = false;

  // The input projections of all steps in one matmul; the loop does only the recurrent part.
  const Tensor projected = project_inputs(x, input_masks);
  const Tensor zeros_out = zero_output_for_mask_ ? ops::zeros({n, units_}, x.dtype(), x.backend()) : Tensor();
  std::vector<Tensor> outputs;
  Tensor last;
  for (int64_t i = 0; i < steps; ++i) {
    const int64_t t = options_.go_backwards ? steps - 1 - i : i;
    const Tensor x_t = ops::reshape(ops::slice(projected, {0, t, 0}, {n, 1, width}), {n, width});
    std::vector<Tensor> h_in{states[0]};
    if (per_gate_recurrent_) {
      h_in.clear();
      for (const Tensor& m : recurrent_masks) h_in.push_back(ops::multiply(states[0], m));
    }
    std::vector<Tensor> next = step(x_t, states, h_in);
    Tensor out = next[0];
    if (mask.defined()) {
      // Masked steps keep the states and repeat the previous output (or give zeros).
      const Tensor keep = ops::slice(mask, {0, t}, {n, 1});
      out = ops::where(keep, out, zeros_out.defined() ? zeros_out : states[0]);
      for (size_t k = 0; k < next.size(); ++k) next[k] = ops::where(keep, next[k], states[k]);
    }
    if (options_.return_sequences) outputs.push_back(ops::reshape(out, {n, 1, units_}));
    last = out;
    states = std::move(next);
  }
  if (options_.stateful) {
    NoGradScope no_grad;
    states_.clear();
    for (const Tensor& s : states) states_.push_back(ops::copy(s));
  }
  std::vector<Tensor> result{options_.return_sequences ? ops::concatenate(outputs, 1) : last};
  if (options_.return_state) result.insert(result.end(), states.begin(), states.end());
  return result;
}

namespace detail {
Tensor reverse_time(const Tensor& x) {
  const int64_t steps = x.dim(1);
  std::vector<int64_t> reversed(static_cast<size_t>(steps));
  for (int64_t t = 0; t < steps; ++t) reversed[static_cast<size_t>(t)] = steps - 1 - t;
  return ops::take(x, Tensor::from_vector(reversed, Shape{steps}, x.backend()), 1);
}
}  // namespace detail

std::vector<Tensor> RecurrentLayer::run_fused(RnnCell cell, const Tensor& inputs, std::vector<Tensor> states) {
  // Reversed in time, the forward recurrence returns its outputs in processing order, as Keras.
  const Tensor seq = options_.go_backwards ? detail::reverse_time(inputs) : inputs;
  const Tensor zeros = bias_ ? Tensor() : ops::zeros({gates_ * units_}, inputs.dtype(), inputs.backend());
  const Tensor b = bias_ ? input_bias() : zeros;
  const Tensor rb = cell == RnnCell::gru_reset_after ? (bias_ ? recurrent_bias() : zeros) : Tensor();
  const ops::RnnResult r = ops::fused_rnn(cell, seq, states[0], cell == RnnCell::lstm ? states[1] : Tensor(),
                                          kernel_->value(), recurrent_kernel_->value(), b, rb);
  std::vector<Tensor> final_states{r.h};
  if (cell == RnnCell::lstm) final_states.push_back(r.c);
  if (options_.stateful) {
    NoGradScope no_grad;
    states_.clear();
    for (const Tensor& s : final_states) states_.push_back(ops::copy(s));
  }
  std::vector<Tensor> result{options_.return_sequences ? r.sequence : r.h};
  if (options_.return_state) result.insert(result.end(), final_states.begin(), final_states.end());
  return result;
}

Config RecurrentLayer::get_config() const {
  Config c = Layer::get_config();
  c["return_sequences"] = options_.return_sequences;
  c["return_state"] = options_.return_state;
  c["go_backwards"] = options_.go_backwards;
  c["stateful"] = options_.stateful;
  c["unroll"] = options_.unroll;
  c["zero_output_for_mask"] = zero_output_for_mask_;
  c["units"] = units_;
  c["activation"] = options_.activation.empty() ? "linear" : options_.activation;
  if (options_.recurrent_activation) c["recurrent_activation"] = *options_.recurrent_activation;
  c["use_bias"] = options_.use_bias;
  c["kernel_initializer"] = options_.kernel_initializer.serialized();
  c["recurrent_initializer"] = options_.recurrent_initializer.serialized();
  c["bias_initializer"] = options_.bias_initializer.serialized();
  if (options_.unit_forget_bias) c["unit_forget_bias"] = *options_.unit_forget_bias;
  c["kernel_regularizer"] = options_.kernel_regularizer.serialized();
  c["recurrent_regularizer"] = options_.recurrent_regularizer.serialized();
  c["bias_regularizer"] = options_.bias_regularizer.serialized();
  c["activity_regularizer"] = nullptr;
  c["kernel_constraint"] = options_.kernel_constraint.serialized();
  c["recurrent_constraint"] = options_.recurrent_constraint.serialized();
  c["bias_constraint"] = options_.bias_constraint.serialized();
  c["dropout"] = options_.dropout;
  c["recurrent_dropout"] = options_.recurrent_dropout;
  c["seed"] = options_.seed ? Config(*options_.seed) : Config(nullptr);
  if (options_.reset_after) c["reset_after"] = *options_.reset_after;
  return c;
}

RecurrentOptions RecurrentLayer::read_options(serialization::ConfigReader& r, bool gated) {
  RecurrentOptions o;
  if (gated) o.recurrent_activation = r.has("recurrent_activation") ? r.activation("recurrent_activation") : "sigmoid";
  o.name = r.name();
  o.return_sequences = r.boolean("return_sequences", false);
  o.return_state = r.boolean("return_state", false);
  o.go_backwards = r.boolean("go_backwards", false);
  o.stateful = r.boolean("stateful", false);
  o.unroll = r.boolean("unroll", false);
  r.boolean("zero_output_for_mask", false);  // set by Bidirectional itself
  o.activation = r.activation("activation");
  o.use_bias = r.boolean("use_bias", true);
  o.kernel_initializer = r.initializer("kernel_initializer", "glorot_uniform");
  o.recurrent_initializer = r.initializer("recurrent_initializer", "orthogonal");
  o.bias_initializer = r.initializer("bias_initializer", "zeros");
  o.kernel_regularizer = r.regularizer("kernel_regularizer");
  o.recurrent_regularizer = r.regularizer("recurrent_regularizer");
  o.bias_regularizer = r.regularizer("bias_regularizer");
  o.kernel_constraint = r.constraint("kernel_constraint");
  o.recurrent_constraint = r.constraint("recurrent_constraint");
  o.bias_constraint = r.constraint("bias_constraint");
  o.dropout = static_cast<float>(r.number("dropout", 0.0));
  o.recurrent_dropout = static_cast<float>(r.number("recurrent_dropout", 0.0));
  o.seed = r.seed();
  r.require("time_major", false);     // Keras 2
  r.integer("implementation", 2);     // Keras' kernel layout choice: the same numbers either way
  return o;
}

}  // namespace keras::layers
