#pragma once
#include "../layers/core/input_layer.h"
#include "model.h"

namespace keras {

/// A plain stack of layers, each with one input and one output, as keras.Sequential.
///
///     Sequential model({layers::Input({784}), layers::Dense(64, {.activation = "relu"}), layers::Dense(10)});
class KERASCPP_API Sequential : public Model {
 public:
  explicit Sequential(std::vector<LayerRef> layers = {}, std::string name = "");
  /// Appends a layer; with a known input shape it is built at once, so a mismatch fails here.
  void add(LayerRef layer);
  /// Removes the last layer.
  void pop();

  std::vector<Layer*> layers() const override;
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& input_shape) const override;
  bool ends_with_softmax() const override;
  Tensor call_logits(const Tensor& x, bool training) override;

 protected:
  Tensor forward(const Tensor& x, bool training, bool want_logits) override;
  std::vector<PartialShape> layer_output_shapes() const override;
  void build(const PartialShape& input_shape) override;

 private:
  void build_from(const PartialShape& shape);
  std::shared_ptr<layers::InputLayer> input_;
  std::vector<std::shared_ptr<Layer>> layers_;
  std::vector<PartialShape> output_shapes_;
};

}  // namespace keras
