#pragma once
// The recurrent layers' shared machinery: options, the time loop (masking, go_backwards, stateful
// states, dropout masks, initial states) and Keras' configs. SimpleRNN, LSTM and GRU supply the cell.
#include <optional>

#include "../../core/op_kinds.h"
#include "../../core/random.h"
#include "../layer.h"

namespace keras::layers {

/// Keras' keyword arguments of SimpleRNN, LSTM and GRU, with Keras' defaults. `unit_forget_bias`
/// (LSTM, default true) and `reset_after` (GRU, default true) belong to one layer each and are
/// refused elsewhere; SimpleRNN has no `recurrent_activation`.
struct RecurrentOptions {
  std::string activation = "tanh";
  std::optional<std::string> recurrent_activation;  // "sigmoid" for LSTM and GRU
  bool use_bias = true;
  Initializer kernel_initializer = "glorot_uniform";
  Initializer recurrent_initializer = "orthogonal";
  Initializer bias_initializer = "zeros";
  std::optional<bool> unit_forget_bias;
  std::optional<bool> reset_after;
  Regularizer kernel_regularizer;
  Regularizer recurrent_regularizer;
  Regularizer bias_regularizer;
  Regularizer activity_regularizer;  // a penalty on the output (Layer::set_activity_regularizer)
  Constraint kernel_constraint;
  Constraint recurrent_constraint;
  Constraint bias_constraint;
  /// Fraction of the input units / recurrent units dropped in training (one mask per sequence).
  float dropout = 0.f;
  float recurrent_dropout = 0.f;
  std::optional<uint64_t> seed;
  /// Return every step's output (batch, time, units) instead of the last one (batch, units).
  bool return_sequences = false;
  /// Also return the final states (h, and c for LSTM) as further outputs.
  bool return_state = false;
  /// Process the sequence in reverse and return the outputs in processing order.
  bool go_backwards = false;
  /// Each batch starts from the previous batch's final states (a fixed batch size); reset_states().
  bool stateful = false;
  /// Accepted for Keras compatibility; the loop is the same either way.
  bool unroll = false;
  std::string name;
};

/// The base of SimpleRNN, LSTM and GRU. Input (batch, time, features) with time possibly unknown;
/// output (batch, units), or (batch, time, units) with return_sequences. A mask (batch, time) from
/// Embedding(mask_zero) or Masking makes masked steps carry the states and the previous output
/// through, as Keras does. Called on [x, initial states...] it starts from those states.
class KERASCPP_API RecurrentLayer : public Layer {
 public:
  int64_t units() const { return units_; }
  const RecurrentOptions& options() const { return options_; }
  /// The number of state tensors (h; h and c for LSTM).
  virtual size_t num_states() const { return 1; }

  Tensor call(const Tensor& x, bool training) override;
  Tensor call_masked(const Tensor& x, const Tensor& mask, bool training) override;
  std::vector<Tensor> call_multi(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> call_multi_masked(const std::vector<Tensor>& inputs, const Tensor& mask, bool training) override;
  /// The outputs for x (and initial states), with x's mask: the layer's whole computation.
  std::vector<Tensor> run(const Tensor& x, const Tensor& mask, const std::vector<Tensor>& initial_state,
                          bool training);
  PartialShape compute_output_shape(const PartialShape& input_shape) const override;
  std::vector<PartialShape> compute_output_shapes(const std::vector<PartialShape>& input_shapes) const override;
  bool supports_masking() const override { return true; }
  Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;
  /// Built with initial states: Keras' {"shapes_dict": {"sequences_shape", "initial_state_shape"}}.
  Config get_build_config() const override;
  /// With initial states: the sequence's mask, as for one input (Keras 3 marks the output with it
  /// even where the call itself got none).
  Tensor compute_mask_multi(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks) const override {
    return masks.empty() ? Tensor() : compute_mask(inputs.at(0), masks[0]);
  }
  std::vector<random::SeedGenerator*> seed_generators() override { return {&seeds_}; }
  std::string variables_subgroup() const override { return "cell"; }
  /// Masked steps output zeros instead of the previous output (Bidirectional sets it with
  /// return_sequences, as Keras).
  void set_zero_output_for_mask(bool zero) { zero_output_for_mask_ = zero; }
  /// Whether the last call ran as one fused backend op (oneDNN's LSTM or GRU) rather than the
  /// step-by-step loop, for performance checks: masks, per-gate recurrent dropout in training and
  /// activations other than tanh and sigmoid need the loop.
  bool last_call_fused() const { return last_call_fused_; }
  bool samples_independent() const override { return !options_.stateful && Layer::samples_independent(); }
  /// Zeroes the states a stateful layer carries between batches (Keras' reset_states).
  void reset_states();
  /// The carried states of a stateful layer (empty before its first batch).
  const std::vector<Tensor>& states() const { return states_; }
  Config get_config() const override;

  Variable* kernel() { return kernel_; }
  Variable* recurrent_kernel() { return recurrent_kernel_; }
  Variable* bias() { return bias_; }

 protected:
  RecurrentLayer(std::string class_name, int64_t units, RecurrentOptions options, int64_t gates);
  void build(const PartialShape& input_shape) override;
  void build_multi(const std::vector<PartialShape>& input_shapes) override;
  void check_input(const PartialShape& input_shape) const override;
  /// The bias shape: (gates * units), GRU with reset_after (2, 3 * units).
  virtual Shape bias_shape() const { return Shape{gates_ * units_}; }
  virtual Initializer bias_init() const { return options_.bias_initializer; }
  /// The part of the bias added to the input projection (all of it but GRU's recurrent row).
  virtual Tensor input_bias() { return bias_ ? bias_->value() : Tensor(); }
  /// The bias added to the recurrent projection (GRU with reset_after), else undefined.
  virtual Tensor recurrent_bias() { return Tensor(); }
  /// The backend cell this layer's configuration is (LSTM and GRU with tanh and sigmoid), if any:
  /// such layers run as one fused op where the backend has one.
  virtual std::optional<RnnCell> fused_cell() const { return std::nullopt; }
  /// One step from the projected input x_t (batch, gates * units) and the states; returns the new
  /// states, the output being the first. h_in[g] is the previous output as gate g sees it (times
  /// gate g's recurrent dropout mask in training); use recurrent_product() to multiply it in.
  virtual std::vector<Tensor> step(const Tensor& x_t, const std::vector<Tensor>& states,
                                   const std::vector<Tensor>& h_in) = 0;
  /// h_in @ recurrent_kernel[:, gates first .. first + count): one matmul, or one per gate when
  /// the gates see differently dropped inputs.
  Tensor recurrent_product(const std::vector<Tensor>& h_in, int64_t first, int64_t count) const;
  /// Reads the keys every recurrent config shares, and recurrent_activation for gated cells.
  static RecurrentOptions read_options(serialization::ConfigReader& r, bool gated = false);
  Tensor activate(const Tensor& x) const;
  Tensor recurrent_activate(const Tensor& x) const;

  int64_t units_;
  RecurrentOptions options_;
  int64_t gates_;
  Variable* kernel_ = nullptr;
  Variable* recurrent_kernel_ = nullptr;
  Variable* bias_ = nullptr;
  bool zero_output_for_mask_ = false;

 private:
  /// The input projections of all steps at once: (batch, time, gates * units).
  Tensor project_inputs(const Tensor& x, const std::vector<Tensor>& gate_masks);
  /// The whole sequence as one backend op (Backend::rnn_forward); same numbers as the loop.
  std::vector<Tensor> run_fused(RnnCell cell, const Tensor& inputs, std::vector<Tensor> states);
  random::SeedGenerator seeds_;
  std::vector<Tensor> states_;
  bool per_gate_recurrent_ = false;  // this call drops the recurrent input per gate
  bool last_call_fused_ = false;  // stateful layers: the states carried to the next batch
};

namespace detail {
/// x (N, T, ...) with its time axis reversed (differentiable).
Tensor reverse_time(const Tensor& x);
}  // namespace detail

}  // namespace keras::layers
