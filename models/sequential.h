#pragma once
#include "../layers/core/input_layer.h"
#include "model.h"

namespace keras {

/// A plain stack of layers, each with one input and one output, as keras.Sequential.
///
///     Sequential model({layers::Input({784}), layers::Dense(64, {.activation = "relu"}), layers::Dense(10)});
class KERASCPP_API Sequential : public Model {
 public:
  KERASCPP_LAYER(Sequential)
  explicit Sequential(std::vector<LayerRef> layers = {}, std::string name = "");
  /// Appends a layer; with a known input shape it is built at once, so a mismatch fails here.
  void add(LayerRef layer);
  /// Removes the last layer.
  void pop();

  std::vector<Layer*> layers() const override;
  Config get_config() const override;
  /// The declared input (null when the model was built without one).
  const std::shared_ptr<layers::InputLayer>& input_layer() const { return input_; }
  PartialShape compute_output_shape(const PartialShape& input_shape) const override;
  std::vector<PartialShape> compute_output_shapes(const std::vector<PartialShape>& input_shapes) const override;

 protected:
  std::vector<Tensor> forward(const std::vector<Tensor>& x, bool training, const std::vector<bool>& logits,
                              std::vector<Tensor>* output_masks = nullptr) override;
  size_t num_inputs() const override { return 1; }
  size_t num_outputs() const override { return 1; }
  bool output_ends_with_softmax(size_t i) const override;
  std::string output_name(size_t i) const override;
  std::vector<SummaryRow> summary_rows() const override;
  bool is_functional() const override { return false; }
  void build(const PartialShape& input_shape) override;

 private:
  void build_from(const PartialShape& shape);
  std::shared_ptr<layers::InputLayer> input_;
  std::vector<std::shared_ptr<Layer>> layers_;
  std::vector<PartialShape> output_shapes_;
};

}  // namespace keras
