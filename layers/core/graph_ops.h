#pragma once
#include "../layer.h"

namespace keras::layers {

/// keras.ops.not_equal(x, operand) recorded in a Functional graph: Keras 3 writes one into every
/// config whose Embedding(mask_zero) makes a mask, and passes its bool output as `mask=` to the
/// masked calls. An operation, not a layer: it has no weights and is not in model.layers().
class KERASCPP_API NotEqual : public Layer {
 public:
  KERASCPP_LAYER(NotEqual)
  Config get_config() const override { return Config{{"name", name()}}; }
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit NotEqual(double operand = 0.0, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool is_operation() const override { return true; }
  Config call_constants() const override { return Config::array({operand_}); }
  void set_call_constants(const Config& constants) override;

 private:
  double operand_;
};

}  // namespace keras::layers

namespace keras::layers {

/// keras.ops.any / keras.ops.all recorded in a Functional graph: Keras 3 writes
/// NotEqual(x, mask_value) -> Any(axis=-1) into every config with a Masking layer and passes the
/// result as `mask=` to the next masked call. `axis` empty: every axis.
class KERASCPP_API BoolReduction : public Layer {
 public:
  KERASCPP_LAYER(BoolReduction)
  enum class Kind { any, all };
  BoolReduction(Kind kind, std::vector<int64_t> axes, bool keepdims, std::string name = "");
  Config get_config() const override;
  static std::shared_ptr<Layer> any_from_config(const Config& config);
  static std::shared_ptr<Layer> all_from_config(const Config& config);
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;
  bool is_operation() const override { return true; }

 private:
  std::vector<int64_t> normalized_axes(size_t rank) const;
  Kind kind_;
  std::vector<int64_t> axes_;
  bool keepdims_;
};

}  // namespace keras::layers

namespace keras::layers {

/// keras.ops.logical_or / logical_and recorded in a Functional graph: Keras 3 writes LogicalOr
/// where a merge (Add, Concatenate) combines its inputs' masks and passes the result as `mask=`.
class KERASCPP_API LogicalBinary : public Layer {
 public:
  KERASCPP_LAYER(LogicalBinary)
  enum class Kind { logical_or, logical_and };
  explicit LogicalBinary(Kind kind, std::string name = "");
  Config get_config() const override { return Config{{"name", name()}}; }
  static std::shared_ptr<Layer> or_from_config(const Config& config);
  static std::shared_ptr<Layer> and_from_config(const Config& config);
  std::vector<Tensor> call_multi(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<PartialShape> compute_output_shapes(const std::vector<PartialShape>& input_shapes) const override;
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool is_operation() const override { return true; }
  /// Keras writes the operands as two arguments (x1, x2), not a list.
  std::optional<CallSignature> call_signature() const override { return CallSignature{{"x1", "x2"}, {}, {}}; }
  std::vector<Tensor> call_with_arguments(const std::vector<Tensor>& inputs, const std::vector<Tensor>&,
                                          const CallArguments&, bool training) override {
    return call_multi(inputs, training);
  }

 private:
  Kind kind_;
};

}  // namespace keras::layers

namespace keras::layers {

/// keras.ops.expand_dims and keras.ops.zeros_like recorded in a Functional graph: Keras 3 writes
/// them where Concatenate combines its inputs' masks (ExpandDims(mask) or ZerosLike(input, bool),
/// LogicalOr, Concatenate, Any).
class KERASCPP_API ExpandDims : public Layer {
 public:
  KERASCPP_LAYER(ExpandDims)
  explicit ExpandDims(int64_t axis, std::string name = "");
  Config get_config() const override { return Config{{"name", name()}, {"axis", axis_}}; }
  static std::shared_ptr<Layer> from_config(const Config& config);
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;
  bool is_operation() const override { return true; }

 private:
  int64_t position(size_t rank) const;
  int64_t axis_;
};

class KERASCPP_API ZerosLike : public Layer {
 public:
  KERASCPP_LAYER(ZerosLike)
  /// `dtype` empty: the input's.
  explicit ZerosLike(std::string dtype = "", std::string name = "");
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool is_operation() const override { return true; }

 private:
  std::string dtype_;
};

}  // namespace keras::layers
