#pragma once
#include "../core/wrapper.h"

namespace keras::layers {

/// Applies a layer, or a whole Model, to every timestep of a (batch, time, ...) input; time may be
/// unknown. The steps are folded into the batch and run as one call (as tf.keras did), so a
/// wrapped CNN runs one large convolution per batch; a BatchNormalization training inside it
/// therefore takes its statistics over all steps at once, where Keras 3 takes them per step.
class KERASCPP_API TimeDistributed : public Wrapper {
 public:
  KERASCPP_LAYER(TimeDistributed)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit TimeDistributed(LayerRef layer, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& input_shape) const override;
  bool supports_masking() const override { return true; }
  std::vector<std::pair<std::string, Layer*>> wrapped_layers() override { return {{"layer", inner_[0].get()}}; }
  Layer& layer() const { return *inner_[0]; }

 protected:
  void build(const PartialShape& input_shape) override;
  void check_input(const PartialShape& input_shape) const override;
};

}  // namespace keras::layers
