#pragma once
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../core/errors.h"
#include "../core/export.h"
#include "../core/random.h"
#include "../core/tensor.h"
#include "../core/variable.h"
#include "dtype_policy.h"
#include "initializers.h"
#include "keras_tensor.h"
#include "regularizers.h"
#include "serialization.h"

namespace keras {

/// A Keras shape: the batch axis first, std::nullopt for an unknown (None) dimension.
using PartialShape = std::vector<std::optional<int64_t>>;
/// "(None, 26, 26, 32)".
KERASCPP_API std::string shape_to_string(const PartialShape& shape);
/// The PartialShape of a concrete tensor.
KERASCPP_API PartialShape partial_shape_of(const Tensor& t);

namespace utils {
/// Forgets the automatic layer names handed out so far (dense, dense_1, ... start again), as
/// keras.utils.clear_session.
KERASCPP_API void clear_session();
}  // namespace utils

/// Lets a layer be called on symbolic tensors as a temporary (`layers::Dense(10)(x)`): the graph
/// then owns a moved copy. Put it in the public part of every layer class, yours included.
#define KERASCPP_LAYER(ClassName) \
  std::shared_ptr<::keras::Layer> into_shared() && override { return std::make_shared<ClassName>(std::move(*this)); }

/// The base of every layer. A layer builds its weights lazily, from the first input shape it sees,
/// then maps tensors with call(). Subclass it in your own code: implement call() and
/// compute_output_shape(), create weights in build() with add_weight(), and add KERASCPP_LAYER(You).
/// Layers with several inputs (merges) override call_multi() and compute_output_shapes().
class KERASCPP_API Layer : public std::enable_shared_from_this<Layer> {
 public:
  /// `class_name` is Keras' ("Dense"); an empty `name` takes the next automatic one ("dense_1").
  /// `python_class`: the Python class behind `class_name` where the two differ (keras.layers.
  /// GroupQueryAttention is GroupedQueryAttention); Keras' automatic names and weight groups follow it.
  Layer(std::string class_name, std::string name, std::string python_class = {});
  virtual ~Layer();
  Layer(Layer&&) noexcept;
  Layer& operator=(Layer&&) noexcept;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  const std::string& name() const { return name_; }
  const std::string& class_name() const { return class_name_; }
  /// The Python class's name, in snake case the base of automatic names and of the weights group in
  /// .keras files: class_name() unless they differ.
  const std::string& python_class_name() const { return python_class_.empty() ? class_name_ : python_class_; }
  bool built() const { return built_; }

  /// Keras' `trainable`: freezing a layer stops gradients to all its weights.
  bool trainable() const { return trainable_; }
  virtual void set_trainable(bool trainable);

  /// Keras' dtype_policy: the global policy when the layer was made, unless set. Under a mixed
  /// policy the layer casts floating inputs to the compute dtype and reads its variables (kept in
  /// float32) in it; set "float32" on a model's last layer to keep its outputs and loss in float32.
  const mixed_precision::DTypePolicy& dtype_policy() const { return dtype_policy_; }
  virtual void set_dtype_policy(const mixed_precision::DTypePolicy& policy) { dtype_policy_ = policy; }
  DType compute_dtype() const { return dtype_policy_.compute_dtype(); }
  /// Keras' layer.autocast: whether inputs and variables are cast to the compute dtype.
  bool autocast() const { return autocast_; }

  /// Builds the layer for x's shape on first use, checks the input, then runs call().
  Tensor operator()(const Tensor& x, bool training = false);
  /// Functional API: records a call on symbolic tensors, checking shapes now, so a mismatch fails
  /// on the line that caused it. A temporary layer is moved into the graph; a named one must be
  /// owned by a std::shared_ptr (create it with std::make_shared to share it between calls).
  KerasTensor operator()(const KerasTensor& x) &;
  KerasTensor operator()(const KerasTensor& x) &&;
  KerasTensor operator()(const std::vector<KerasTensor>& xs) &;
  KerasTensor operator()(const std::vector<KerasTensor>& xs) &&;
  /// Functional API with an explicit mask (bool, (batch, time)), as Keras' `layer(x, mask=m)`.
  KerasTensor operator()(const KerasTensor& x, const KerasTensor& mask) &;
  KerasTensor operator()(const KerasTensor& x, const KerasTensor& mask) &&;
  /// Several inputs: the default takes exactly one and runs call().
  virtual std::vector<Tensor> call_multi(const std::vector<Tensor>& inputs, bool training);
  /// call_multi() where the first input carries a mask (an RNN with return_state or initial_state);
  /// the default ignores the mask.
  virtual std::vector<Tensor> call_multi_masked(const std::vector<Tensor>& inputs, const Tensor& mask, bool training) {
    return call_multi(inputs, training);
  }
  /// call_multi() with the layer's autocasting, as models run a node with several inputs (or
  /// several outputs); `mask`, the first input's, reaches layers that support masking.
  std::vector<Tensor> invoke_multi(const std::vector<Tensor>& inputs, bool training, const Tensor& mask = Tensor());
  virtual std::vector<PartialShape> compute_output_shapes(const std::vector<PartialShape>& input_shapes) const;
  /// Builds for several input shapes (merges); returns the output shapes.
  std::vector<PartialShape> build_for_multi(const std::vector<PartialShape>& input_shapes);
  /// Moves the layer into a shared_ptr (see KERASCPP_LAYER).
  virtual std::shared_ptr<Layer> into_shared() &&;
  /// Builds the layer for `input_shape` (if not built) and returns its output shape; throws with
  /// Keras' texts when the input is incompatible.
  PartialShape build_for(const PartialShape& input_shape);

  /// The computation, written with keras::ops. `training` selects dropout and batch statistics.
  virtual Tensor call(const Tensor& x, bool training) = 0;
  virtual PartialShape compute_output_shape(const PartialShape& input_shape) const = 0;

  /// The layers this one contains (a model's layers, a wrapper's wrapped layers): their weights,
  /// penalties, constraints and random streams count as this layer's, and set_trainable reaches them.
  virtual std::vector<Layer*> sublayers() const { return {}; }
  /// Weights in creation order, then the sublayers' (each variable once, for shared layers);
  /// trainable first is not guaranteed, as in Keras.
  virtual std::vector<Variable*> weights();
  virtual std::vector<Variable*> trainable_weights();
  /// The layer's own variables in Keras' saving order: those created trainable first, then the others.
  std::vector<Variable*> variables_in_saving_order();
  virtual std::vector<Variable*> non_trainable_weights();
  virtual int64_t count_params() const;
  /// The random streams the layer draws from in training (Dropout's masks), in a fixed order: their
  /// positions are saved with a training backup so a resumed fit draws the same masks. The base
  /// collects the sublayers'; a layer with its own streams overrides it.
  virtual std::vector<random::SeedGenerator*> seed_generators();
  /// The sum of the weights' regularization penalties (an undefined tensor when there are none).
  virtual Tensor regularization_loss();
  /// Projects every constrained weight (after an optimizer step).
  virtual void apply_constraints();
  /// Whether in inference each sample's output depends on that sample alone, so a batch may run
  /// in slices (predict() does on the CPU). kerascpp's layers say so, except Lambda and stateful
  /// RNNs; a user's class says no unless it overrides this.
  virtual bool samples_independent() const;
  /// Keras' activity_regularizer: a penalty on the layer's output, divided by the batch size and
  /// added to the loss in training and evaluation (see ActivityLossScope). Any layer takes one.
  void set_activity_regularizer(Regularizer regularizer) { activity_regularizer_ = std::move(regularizer); }
  const Regularizer& activity_regularizer() const { return activity_regularizer_; }
  /// Adds the activity penalty of `output` to the ActivityLossScope in scope, if any.
  void record_activity_loss(const Tensor& output) const;
  /// Copies of the weights' values, and assignment from such a list (shapes must match).
  std::vector<Tensor> get_weights();
  void set_weights(const std::vector<Tensor>& values);

  /// Keras' get_config(): the constructor arguments as JSON ("name", "trainable", "dtype", then the
  /// layer's own keys). Override it in a custom layer and register a factory (register_layer_class)
  /// so files naming the layer load.
  virtual Config get_config() const;
  /// {"input_shape": ...} once built (a list of shapes for layers built from several inputs), else null.
  virtual Config get_build_config() const;
  /// The input shapes the layer was built for (several for merges), empty before.
  const std::vector<PartialShape>& build_shapes() const { return build_shapes_; }
  /// Builds from a build_config written by get_build_config() or Keras.
  void build_from_config(const Config& build_config);

  // Masking, as Keras' _keras_mask: a bool mask (batch, time) travels beside a sequence through a
  // model. A layer that supports masking receives it in call_masked() and passes compute_mask() on;
  // any other layer drops it with a warning, as Keras does.
  virtual bool supports_masking() const { return false; }
  /// The output's mask for input x carrying `mask` (undefined when none). The default passes the
  /// input's mask on; Embedding(mask_zero) and Masking make one, RNNs end it unless return_sequences.
  virtual Tensor compute_mask(const Tensor& x, const Tensor& mask) const { return mask; }
  /// The output's mask for a layer with several inputs, some carrying masks (undefined for those
  /// without). The default ends the masks; the merge layers combine them as Keras' do.
  virtual Tensor compute_mask_multi(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks) const {
    return Tensor();
  }
  /// call() for an input that carries a mask; the default ignores the mask.
  virtual Tensor call_masked(const Tensor& x, const Tensor& mask, bool training) { return call(x, training); }
  /// Builds and checks as operator(), runs with the mask, and returns the output and its mask.
  std::pair<Tensor, Tensor> call_with_mask(const Tensor& x, const Tensor& mask, bool training = false);

  /// A Keras op recorded in a Functional graph (NotEqual making a mask), not a layer: Keras leaves
  /// it out of model.layers and weights files but shows it in summaries.
  virtual bool is_operation() const { return false; }
  /// Non-tensor arguments of the call as Keras' configs write them after the tensors (NotEqual's
  /// operand), and their restoration when a config is read.
  virtual Config call_constants() const { return Config::array(); }
  virtual void set_call_constants(const Config& constants) {}

  /// Where Keras' weights files keep this layer's own variables, relative to its group: "" for
  /// "vars", or a sub-object such as an RNN's "cell" ("cell/vars").
  virtual std::string variables_subgroup() const { return ""; }
  /// Layers wrapped by this one, under the names Keras' files give them (Bidirectional's
  /// "forward_layer", TimeDistributed's "layer"); their variables are saved in those groups.
  virtual std::vector<std::pair<std::string, Layer*>> wrapped_layers() { return {}; }

  /// What a call takes beyond positional tensors: Keras' keyword arguments, as
  /// `call(query, value, key=None, attention_mask=None, use_causal_mask=False)`.
  struct CallSignature {
    std::vector<std::string> positional;       // the names of the positional tensor arguments ("query", "value")
    std::vector<std::string> tensor_keywords;  // optional tensors passed by keyword
    std::vector<std::string> flags;            // boolean keyword arguments
    bool inputs_as_list = false;               // Keras' call([query, value]) rather than call(query, value)
    /// Keras' MultiHeadAttention removes the masks of the tensors it reads when it runs: readers
    /// of those tensors that run after it see none.
    bool consumes_input_masks = false;
  };
  /// A layer that takes keyword arguments says which; it then runs through call_with_arguments(),
  /// with every input's mask. std::nullopt (the default): a plain call.
  virtual std::optional<CallSignature> call_signature() const { return std::nullopt; }
  /// The call of such a layer: `masks` holds each input's mask (undefined where it has none).
  virtual std::vector<Tensor> call_with_arguments(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks,
                                                  const CallArguments& args, bool training);
  /// The output shapes of such a call (return_attention_scores adds one); the default ignores `args`.
  virtual std::vector<PartialShape> compute_output_shapes_for(const std::vector<PartialShape>& input_shapes,
                                                              const CallArguments& args) const {
    return compute_output_shapes(input_shapes);
  }
  /// Builds for the inputs (the batch axis unknown), then runs call_with_arguments() with the
  /// layer's autocasting, as models run such a layer's node.
  std::vector<Tensor> invoke_with_arguments(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks,
                                            const CallArguments& args, bool training);
  /// Functional API for such a layer: records a call with its keyword arguments (the layer's own
  /// operator() overloads and model loading use it). Returns output 0; all_outputs() gives the rest.
  KerasTensor call_symbolic(const std::vector<KerasTensor>& inputs, const CallArguments& args);

  /// When the layer's last step is a softmax, the output before it: losses on probabilities then
  /// run as a fused, stable cross-entropy on logits (as Keras does with `_keras_logits`).
  virtual bool ends_with_softmax() const { return false; }
  virtual Tensor call_logits(const Tensor& x, bool training);
  /// As operator(), but returns call_logits(): the output before the final softmax.
  Tensor logits(const Tensor& x, bool training = false);

 protected:
  /// Creates the weights for `input_shape`; called once, before the first call().
  virtual void build(const PartialShape& input_shape) {}
  /// Embedding and the models turn autocasting off, as in Keras.
  void set_autocast(bool autocast) { autocast_ = autocast; }
  /// x cast to the compute dtype when the layer autocasts and x is floating of another dtype.
  Tensor autocast_input(const Tensor& x) const;
  /// The AutocastScope a call of this layer runs in (the compute dtype, or none without autocast).
  AutocastScope autocast_scope() const;
  /// Multi-input layers build from every input's shape; the default builds from the only one.
  virtual void build_multi(const std::vector<PartialShape>& input_shapes);
  /// Builds a layer that takes keyword arguments; the default builds from the shapes alone.
  virtual void build_for_arguments(const std::vector<PartialShape>& input_shapes, const CallArguments& args) {
    build_multi(input_shapes);
  }
  /// Checks the input shape before build and call; throw input_error() on mismatch.
  virtual void check_input(const PartialShape& input_shape) const {}
  /// Creates a weight on the default backend, initialized by `initializer`.
  Variable& add_weight(const std::string& name, const Shape& shape, const Initializer& initializer,
                       bool trainable = true, Regularizer regularizer = {}, Constraint constraint = {});
  /// Keras' incompatible-input error: `Input 0 of layer "dense" is incompatible with the layer: <what>`.
  ValueError input_error(const std::string& what) const;
  /// Builds for x's shape (batch axis unknown) and checks it.
  void prepare(const Tensor& x);
  KerasTensor record(std::shared_ptr<Layer> self, const std::vector<KerasTensor>& inputs,
                     const KerasTensor& mask = KerasTensor(), const CallArguments* args = nullptr);
  /// Checks the keywords and flags of a call against call_signature(); throws ValueError naming them.
  void check_call_arguments(size_t num_inputs, const CallArguments& args) const;
  /// Builds once for a call with keyword arguments and returns its output shapes.
  std::vector<PartialShape> build_for_call(const std::vector<PartialShape>& input_shapes, const CallArguments& args);

 private:
  std::string class_name_, python_class_, name_;
  bool trainable_ = true;
  bool built_ = false;
  mixed_precision::DTypePolicy dtype_policy_ = mixed_precision::global_policy();
  bool autocast_ = true;
  std::vector<PartialShape> build_shapes_;  // what the layer was built for (several for merges)
  std::deque<Variable> weights_;            // deque: stable addresses for Variable* handles
  std::vector<bool> declared_trainable_;    // each weight's own flag, restored on unfreezing
  std::vector<Regularizer> regularizers_;   // per weight, possibly empty
  std::vector<Constraint> constraints_;
  Regularizer activity_regularizer_;
  bool warned_mask_dropped_ = false;
};

/// Collects the activity penalties (Layer::activity_regularizer) of the layers a model runs on this
/// thread while it lives: Keras' per-call `losses`, which the training and evaluation loss include.
class KERASCPP_API ActivityLossScope {
 public:
  ActivityLossScope();
  ~ActivityLossScope();
  ActivityLossScope(const ActivityLossScope&) = delete;
  ActivityLossScope& operator=(const ActivityLossScope&) = delete;
  /// The sum of the penalties recorded; undefined when there were none.
  const Tensor& total() const { return total_; }
  void add(const Tensor& penalty);
  /// The innermost scope on this thread, or null.
  static ActivityLossScope* current();

 private:
  Tensor total_;
  ActivityLossScope* previous_;
};

namespace detail {
/// While alive, layers built on this thread may allocate at most `bytes` of weights in all: a model
/// read from a file cannot declare more weights than the file could hold (shape bombs).
class KERASCPP_API WeightBudgetScope {
 public:
  explicit WeightBudgetScope(int64_t bytes);
  ~WeightBudgetScope();
  WeightBudgetScope(const WeightBudgetScope&) = delete;
  WeightBudgetScope& operator=(const WeightBudgetScope&) = delete;

 private:
  int64_t bytes_;
  int64_t* previous_;
};
void charge_weight_budget(const std::string& layer, const std::string& weight, const Shape& shape);
}  // namespace detail

/// A shared handle to a layer, made from a layer object (moved in) or a shared_ptr, so lists
/// read like Keras: `Sequential({layers::Dense(64), layers::Dense(10)})`.
class KERASCPP_API LayerRef {
 public:
  template <typename L,
            typename = std::enable_if_t<std::is_base_of_v<Layer, std::decay_t<L>> && !std::is_lvalue_reference_v<L>>>
  LayerRef(L&& layer) : ptr_(std::make_shared<std::decay_t<L>>(std::move(layer))) {}  // NOLINT
  template <typename L, typename = std::enable_if_t<std::is_base_of_v<Layer, L>>>
  LayerRef(std::shared_ptr<L> layer) : ptr_(std::move(layer)) {}  // NOLINT
  /// A model input (`layers::Input(...)`): its InputLayer, so Sequential({layers::Input(...), ...}) works.
  LayerRef(const KerasTensor& input);  // NOLINT
  const std::shared_ptr<Layer>& get() const { return ptr_; }
  Layer* operator->() const { return ptr_.get(); }

 private:
  std::shared_ptr<Layer> ptr_;
};

}  // namespace keras
