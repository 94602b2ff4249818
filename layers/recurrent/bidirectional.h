#pragma once
#include <optional>

#include "../core/wrapper.h"
#include "rnn.h"

namespace keras::layers {

struct BidirectionalOptions {
  /// "concat" (the default), "sum", "mul", "ave", or std::nullopt for both outputs separately.
  std::optional<std::string> merge_mode = "concat";
  std::string name;
};

/// Runs a recurrent layer forwards and a copy of it backwards over the sequence and merges their
/// outputs (the backward outputs re-reversed in time with return_sequences). The copies are named
/// "forward_<name>" and "backward_<name>", as in Keras.
class KERASCPP_API Bidirectional : public Wrapper {
 public:
  KERASCPP_LAYER(Bidirectional)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  /// `layer` must be a SimpleRNN, LSTM or GRU (ValueError otherwise); `backward_layer` a recurrent
  /// layer with go_backwards, or null for a reversed copy of `layer`.
  explicit Bidirectional(LayerRef layer, BidirectionalOptions options = {},
                         std::shared_ptr<Layer> backward_layer = nullptr);
  Tensor call(const Tensor& x, bool training) override;
  Tensor call_masked(const Tensor& x, const Tensor& mask, bool training) override;
  std::vector<Tensor> call_multi(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> call_multi_masked(const std::vector<Tensor>& inputs, const Tensor& mask, bool training) override;
  Tensor compute_mask_multi(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks) const override {
    return masks.empty() ? Tensor() : compute_mask(inputs.at(0), masks[0]);
  }
  PartialShape compute_output_shape(const PartialShape& input_shape) const override;
  std::vector<PartialShape> compute_output_shapes(const std::vector<PartialShape>& input_shapes) const override;
  bool supports_masking() const override { return true; }
  Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;
  std::vector<std::pair<std::string, Layer*>> wrapped_layers() override {
    return {{"forward_layer", forward_.get()}, {"backward_layer", backward_.get()}};
  }
  RecurrentLayer& forward_layer() const { return *forward_; }
  RecurrentLayer& backward_layer() const { return *backward_; }

 protected:
  void build(const PartialShape& input_shape) override;
  void check_input(const PartialShape& input_shape) const override;

 private:
  std::vector<Tensor> run(const Tensor& x, const Tensor& mask, const std::vector<Tensor>& initial_state,
                          bool training);
  std::optional<std::string> merge_mode_;
  std::shared_ptr<RecurrentLayer> forward_, backward_;
};

}  // namespace keras::layers
