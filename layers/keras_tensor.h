#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../core/dtype.h"
#include "../core/export.h"

namespace keras {

class Layer;
using PartialShape = std::vector<std::optional<int64_t>>;

namespace detail {
struct SymbolicNode;
struct KerasTensorImpl {
  PartialShape shape;
  DType dtype = DType::float32;
  std::shared_ptr<SymbolicNode> node;  // the layer call that produced it
  size_t output_index = 0;
  std::vector<std::shared_ptr<KerasTensorImpl>> siblings;  // output 0 holds the call's other outputs
};
}  // namespace detail

/// A symbolic tensor of the Functional API: a shape (None for unknown dimensions) and the layer
/// call that produced it. Calling a layer on KerasTensors records the graph a Model runs.
class KERASCPP_API KerasTensor {
 public:
  KerasTensor() = default;
  explicit KerasTensor(std::shared_ptr<detail::KerasTensorImpl> impl) : impl_(std::move(impl)) {}
  const PartialShape& shape() const;
  DType dtype() const;
  /// The layer that produced this tensor (an InputLayer for model inputs).
  Layer& producer() const;
  bool defined() const { return impl_ != nullptr; }
  const std::shared_ptr<detail::KerasTensorImpl>& impl() const { return impl_; }
  /// Every output of the layer call that returned this tensor, this one first: an RNN with
  /// return_state gives {output, h} or {output, h, c}; Bidirectional adds both directions' states.
  ///     auto outs = layers::LSTM(8, {.return_state = true})(x).all_outputs();
  std::vector<KerasTensor> all_outputs() const;
  /// "<KerasTensor shape=(None, 10), dtype=float32, source=dense>"
  std::string to_string() const;

 private:
  std::shared_ptr<detail::KerasTensorImpl> impl_;
};

/// Keyword arguments of one layer call beyond its positional tensors, as Keras writes them in a
/// config's "kwargs" (MultiHeadAttention's key, attention_mask, use_causal_mask).
struct KERASCPP_API CallArguments {
  /// One entry per input of the call: "" for a positional input, else the keyword that passed it.
  std::vector<std::string> input_keywords;
  /// The boolean keyword arguments given to the call.
  std::map<std::string, bool> flags;
  /// Whether the flag `name` was given as true.
  bool flag(const std::string& name) const;
  /// The position among the call's inputs of the one passed as `keyword`, or -1.
  int index_of(const std::string& keyword) const;
  bool empty() const { return input_keywords.empty() && flags.empty(); }
};

namespace detail {
/// One layer call in a Functional graph.
struct SymbolicNode {
  std::shared_ptr<Layer> layer;
  std::vector<KerasTensor> inputs;
  std::vector<std::weak_ptr<KerasTensorImpl>> outputs;
  /// A mask passed explicitly (Keras 3 configs write `mask=` for every masked call); when
  /// undefined, the input's own mask travels implicitly.
  KerasTensor mask;
  /// The keyword arguments of a layer that takes them (Layer::call_signature).
  CallArguments arguments;
  /// Read from a tf.keras 2 file: an RNN given initial states still gets its sequence's mask.
  bool keras2_masks = false;
  /// The inputs, then the explicit mask: every tensor the call reads.
  std::vector<KerasTensor> all_inputs() const {
    std::vector<KerasTensor> all = inputs;
    if (mask.defined()) all.push_back(mask);
    return all;
  }
};
}  // namespace detail

}  // namespace keras
