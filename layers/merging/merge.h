#pragma once
// Layers that combine several inputs: Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum.
#include <array>

#include "../layer.h"

namespace keras::layers {

/// The base of the merge layers: several inputs of compatible shapes, one output.
class KERASCPP_API Merge : public Layer {
 public:
  using Layer::Layer;
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  std::vector<Tensor> call_multi(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<PartialShape> compute_output_shapes(const std::vector<PartialShape>& shapes) const override;
  /// Keras 3.15's Merge.compute_mask: a step is kept where any input keeps it, and an input
  /// without a mask ends the mask. With the Keras 2 rule (tf.keras, and files it wrote): a step is
  /// kept where every input that has a mask keeps it.
  Tensor compute_mask_multi(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks) const override;
  /// Combines masks as tf.keras 2 did (set when a Keras 2 file is read).
  void use_keras2_mask_rule(bool keras2) { keras2_mask_rule_ = keras2; }

 protected:
  /// Combines the inputs (already checked).
  virtual Tensor merge(const std::vector<Tensor>& inputs) const = 0;
  /// The elementwise merges broadcast non-batch axes, as Keras; Concatenate overrides this.
  virtual PartialShape merged_shape(const std::vector<PartialShape>& shapes) const;
  size_t min_inputs_ = 2;
  bool keras2_mask_rule_ = false;
};

/// Elementwise sum, difference (exactly two inputs), product, mean, maximum or minimum.
class KERASCPP_API Add : public Merge {
 public:
  KERASCPP_LAYER(Add)
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Add(std::string name = "") : Merge("Add", std::move(name)) {}

 protected:
  Tensor merge(const std::vector<Tensor>& inputs) const override;
};
class KERASCPP_API Subtract : public Merge {
 public:
  KERASCPP_LAYER(Subtract)
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Subtract(std::string name = "") : Merge("Subtract", std::move(name)) {}
  std::vector<PartialShape> compute_output_shapes(const std::vector<PartialShape>& shapes) const override;

 protected:
  Tensor merge(const std::vector<Tensor>& inputs) const override;
};
class KERASCPP_API Multiply : public Merge {
 public:
  KERASCPP_LAYER(Multiply)
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Multiply(std::string name = "") : Merge("Multiply", std::move(name)) {}

 protected:
  Tensor merge(const std::vector<Tensor>& inputs) const override;
};
class KERASCPP_API Average : public Merge {
 public:
  KERASCPP_LAYER(Average)
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Average(std::string name = "") : Merge("Average", std::move(name)) {}

 protected:
  Tensor merge(const std::vector<Tensor>& inputs) const override;
};
class KERASCPP_API Maximum : public Merge {
 public:
  KERASCPP_LAYER(Maximum)
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Maximum(std::string name = "") : Merge("Maximum", std::move(name)) {}

 protected:
  Tensor merge(const std::vector<Tensor>& inputs) const override;
};
class KERASCPP_API Minimum : public Merge {
 public:
  KERASCPP_LAYER(Minimum)
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Minimum(std::string name = "") : Merge("Minimum", std::move(name)) {}

 protected:
  Tensor merge(const std::vector<Tensor>& inputs) const override;
};

/// Joins the inputs along `axis`; all other axes must match.
class KERASCPP_API Concatenate : public Merge {
 public:
  KERASCPP_LAYER(Concatenate)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Concatenate(int64_t axis = -1, std::string name = "");
  /// Keras' Concatenate.compute_mask: the masks (all-true for inputs without one) widened to the
  /// inputs' shapes, joined along the axis, and kept where any entry of the last axis is.
  Tensor compute_mask_multi(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks) const override;

 protected:
  Tensor merge(const std::vector<Tensor>& inputs) const override;
  PartialShape merged_shape(const std::vector<PartialShape>& shapes) const override;

 private:
  int64_t axis_;
};

/// Dot products between two samples' vectors along `axes` (one per input, excluding the batch
/// axis), optionally of L2-normalized inputs (cosine proximity): (N, d) . (N, d) -> (N, 1);
/// (N, m, d) . (N, n, d) with axes {2, 2} -> (N, m, n).
class KERASCPP_API Dot : public Merge {
 public:
  KERASCPP_LAYER(Dot)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Dot(std::array<int64_t, 2> axes, bool normalize = false, std::string name = "");
  std::vector<PartialShape> compute_output_shapes(const std::vector<PartialShape>& shapes) const override;
  /// As Keras' Dot: the masks end here.
  Tensor compute_mask_multi(const std::vector<Tensor>&, const std::vector<Tensor>&) const override { return Tensor(); }

 protected:
  Tensor merge(const std::vector<Tensor>& inputs) const override;

 private:
  std::array<int64_t, 2> resolved(const std::vector<size_t>& ranks) const;
  std::array<int64_t, 2> axes_;
  bool normalize_;
};

/// Keras' functional shorthands: `layers::concatenate({a, b})`, `layers::add({a, b})`, ...
KERASCPP_API KerasTensor concatenate(const std::vector<KerasTensor>& inputs, int64_t axis = -1);
KERASCPP_API KerasTensor add(const std::vector<KerasTensor>& inputs);
KERASCPP_API KerasTensor subtract(const std::vector<KerasTensor>& inputs);
KERASCPP_API KerasTensor multiply(const std::vector<KerasTensor>& inputs);
KERASCPP_API KerasTensor average(const std::vector<KerasTensor>& inputs);
KERASCPP_API KerasTensor maximum(const std::vector<KerasTensor>& inputs);
KERASCPP_API KerasTensor minimum(const std::vector<KerasTensor>& inputs);
KERASCPP_API KerasTensor dot(const std::vector<KerasTensor>& inputs, std::array<int64_t, 2> axes,
                             bool normalize = false);

}  // namespace keras::layers
