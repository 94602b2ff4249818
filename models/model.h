#pragma once
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "../layers/layer.h"
#include "datasets/dataset.h"
#include "training/callbacks.h"
#include "training/losses.h"
#include "training/metrics.h"
#include "training/optimizers.h"
#include "training/progbar.h"

namespace keras::detail {
class StepGraphs;
}  // namespace keras::detail

namespace keras {

namespace distribute {
class Strategy;
}

/// An optimizer by Keras name ("adam") or as an object (`optimizers::Adam({.learning_rate = 1e-4})`).
class KERASCPP_API OptimizerRef {
 public:
  OptimizerRef(const char* name);         // NOLINT
  OptimizerRef(const std::string& name);  // NOLINT
  template <typename O, typename = std::enable_if_t<std::is_base_of_v<optimizers::Optimizer, std::decay_t<O>> &&
                                                    !std::is_lvalue_reference_v<O>>>
  OptimizerRef(O&& o) : ptr_(std::make_shared<std::decay_t<O>>(std::move(o))) {}  // NOLINT
  OptimizerRef(std::shared_ptr<optimizers::Optimizer> o) : ptr_(std::move(o)) {}  // NOLINT
  const std::shared_ptr<optimizers::Optimizer>& get() const { return ptr_; }

 private:
  std::shared_ptr<optimizers::Optimizer> ptr_;
};

/// A loss by Keras name or as an object.
class KERASCPP_API LossRef {
 public:
  LossRef() = default;
  LossRef(const char* name);         // NOLINT
  LossRef(const std::string& name);  // NOLINT
  template <typename L, typename = std::enable_if_t<std::is_base_of_v<losses::Loss, std::decay_t<L>> &&
                                                    !std::is_lvalue_reference_v<L>>>
  LossRef(L&& l) : ptr_(std::make_shared<std::decay_t<L>>(std::move(l))) {}  // NOLINT
  LossRef(std::shared_ptr<losses::Loss> l) : ptr_(std::move(l)) {}           // NOLINT
  const std::shared_ptr<losses::Loss>& get() const { return ptr_; }
  /// As compile_config keeps it: the loss's name when given by name, else the loss object.
  Config serialized() const;

 private:
  std::shared_ptr<losses::Loss> ptr_;
  std::string given_name_;
};

/// A metric by Keras name ("accuracy", resolved by the output's loss) or as an object
/// (`metrics::AUC(50)`, or a shared_ptr to one's own Metric subclass).
class KERASCPP_API MetricRef {
 public:
  MetricRef(const char* name) : name_(name) {}                // NOLINT
  MetricRef(std::string name) : name_(std::move(name)) {}     // NOLINT
  template <typename M, typename = std::enable_if_t<std::is_base_of_v<metrics::Metric, std::decay_t<M>> &&
                                                    !std::is_lvalue_reference_v<M>>>
  MetricRef(M&& m) : ptr_(std::make_shared<std::decay_t<M>>(std::move(m))) {}  // NOLINT
  MetricRef(std::shared_ptr<metrics::Metric> m) : ptr_(std::move(m)) {}        // NOLINT
  /// The name given, or "" for an object.
  const std::string& name() const { return name_; }
  const std::shared_ptr<metrics::Metric>& object() const { return ptr_; }
  /// As compile_config keeps it: the name, or Keras' serialized object.
  Config serialized() const { return ptr_ ? ptr_->serialized() : Config(name_); }

 private:
  std::string name_;
  std::shared_ptr<metrics::Metric> ptr_;
};

/// compile()'s metrics: one list for every output (`.metrics = {"accuracy", metrics::AUC()}`), or
/// Keras' dict form, a list per output name (`.metrics = {{"cls", {"accuracy"}}, {"reg", {"mae"}}}`).
class KERASCPP_API MetricList {
 public:
  using PerOutput = std::map<std::string, std::vector<MetricRef>>;
  MetricList() = default;
  MetricList(std::initializer_list<MetricRef> all) : all_(all) {}                              // NOLINT
  MetricList(std::vector<MetricRef> all) : all_(std::move(all)) {}                             // NOLINT
  MetricList(std::initializer_list<PerOutput::value_type> by_output) : by_output_(by_output) {}  // NOLINT
  MetricList(PerOutput by_output) : by_output_(std::move(by_output)) {}                          // NOLINT
  const std::vector<MetricRef>& all() const { return all_; }
  const PerOutput& by_output() const { return by_output_; }
  bool empty() const { return all_.empty() && by_output_.empty(); }

 private:
  std::vector<MetricRef> all_;
  PerOutput by_output_;
};

/// One tensor or several (a model's inputs or targets): fit(x, y) and fit({x1, x2}, y) both read.
class KERASCPP_API TensorList {
 public:
  TensorList() = default;
  TensorList(const Tensor& t) : items_{t} {}                     // NOLINT
  TensorList(std::initializer_list<Tensor> ts) : items_(ts) {}   // NOLINT
  TensorList(std::vector<Tensor> ts) : items_(std::move(ts)) {}  // NOLINT
  const std::vector<Tensor>& items() const { return items_; }
  size_t size() const { return items_.size(); }
  const Tensor& operator[](size_t i) const { return items_[i]; }
  bool empty() const { return items_.empty(); }

 private:
  std::vector<Tensor> items_;
};

/// One symbolic tensor or several, for Model(inputs, outputs).
class KERASCPP_API KerasTensorList {
 public:
  KerasTensorList(const KerasTensor& t) : items_{t}, single_(true) {}      // NOLINT
  KerasTensorList(std::initializer_list<KerasTensor> ts) : items_(ts) {}   // NOLINT
  KerasTensorList(std::vector<KerasTensor> ts) : items_(std::move(ts)) {}  // NOLINT
  const std::vector<KerasTensor>& items() const { return items_; }
  /// One tensor rather than a list of one (Keras' configs keep the difference).
  bool single() const { return single_; }

 private:
  std::vector<KerasTensor> items_;
  bool single_ = false;
};

/// One loss for every output, or one per output: `.loss = "mse"` or `.loss = {"mse", "binary_crossentropy"}`.
class KERASCPP_API LossList {
 public:
  LossList() = default;
  LossList(const char* name) : items_{LossRef(name)} {}         // NOLINT
  LossList(const std::string& name) : items_{LossRef(name)} {}  // NOLINT
  LossList(LossRef loss) : items_{std::move(loss)} {}           // NOLINT
  template <typename L, typename = std::enable_if_t<std::is_base_of_v<losses::Loss, std::decay_t<L>> &&
                                                    !std::is_lvalue_reference_v<L>>>
  LossList(L&& l) : items_{LossRef(std::forward<L>(l))} {}             // NOLINT
  LossList(std::initializer_list<LossRef> losses) : items_(losses) {}  // NOLINT
  explicit LossList(std::vector<LossRef> losses) : items_(std::move(losses)) {}
  /// Keras' dict form, a loss per output name: `.loss = {{"cls", "sparse_categorical_crossentropy"},
  /// {"reg", "mse"}}`. Outputs left out get no loss.
  LossList(std::initializer_list<std::pair<const std::string, LossRef>> by_output)  // NOLINT
      : by_output_(by_output) {}
  explicit LossList(std::map<std::string, LossRef> by_output) : by_output_(std::move(by_output)) {}
  const std::vector<LossRef>& items() const { return items_; }
  const std::map<std::string, LossRef>& by_output() const { return by_output_; }
  bool empty() const { return items_.empty() && by_output_.empty(); }

 private:
  std::vector<LossRef> items_;
  std::map<std::string, LossRef> by_output_;
};

/// compile()'s loss_weights: one per output in order, or per output name (Keras' dict form).
class KERASCPP_API LossWeights {
 public:
  LossWeights() = default;
  LossWeights(std::initializer_list<float> in_order) : in_order_(in_order) {}         // NOLINT
  LossWeights(std::vector<float> in_order) : in_order_(std::move(in_order)) {}        // NOLINT
  LossWeights(std::initializer_list<std::pair<const std::string, float>> by_output)  // NOLINT
      : by_output_(by_output) {}
  LossWeights(std::map<std::string, float> by_output) : by_output_(std::move(by_output)) {}  // NOLINT
  const std::vector<float>& in_order() const { return in_order_; }
  const std::map<std::string, float>& by_output() const { return by_output_; }
  bool empty() const { return in_order_.empty() && by_output_.empty(); }

 private:
  std::vector<float> in_order_;
  std::map<std::string, float> by_output_;
};

/// Keras' compile() keyword arguments.
struct CompileOptions {
  OptimizerRef optimizer = "rmsprop";
  LossList loss;  // one for all outputs, as Keras does with a single loss, one per output, or per output name
  MetricList metrics;
  LossWeights loss_weights;  // one per output or per output name; 1 where not given
  /// Under the "mixed_float16" policy, wrap the optimizer in a LossScaleOptimizer (Keras' default).
  bool auto_scale_loss = true;
};

/// Keras' fit() keyword arguments and defaults.
struct FitOptions {
  std::optional<int64_t> batch_size;  // 32 when unset
  int epochs = 1;
  int verbose = 1;               // 0 silent, 1 progress bar, 2 one line per epoch
  float validation_split = 0.f;  // the last samples, taken before shuffling
  std::optional<std::pair<TensorList, TensorList>> validation_data;
  bool shuffle = true;
  int initial_epoch = 0;
  std::map<int64_t, float> class_weight;
  Tensor sample_weight;
  std::vector<callbacks::CallbackRef> callbacks;
};

struct EvaluateOptions {
  std::optional<int64_t> batch_size;
  int verbose = 1;
};

struct PredictOptions {
  std::optional<int64_t> batch_size;
  int verbose = 0;
};

/// What fit() returns: keras.callbacks.History.
using History = callbacks::History;

/// Keras' load_weights() keyword arguments (legacy .h5 files).
struct LoadWeightsOptions {
  bool by_name = false;        // match stored layers to this model's by name instead of by order
  bool skip_mismatch = false;  // skip layers whose weight count or shapes differ (by_name), with a warning
};

/// A model: layers plus training. `Model(inputs, outputs)` is Keras' Functional API: the graph
/// recorded by calling layers on symbolic tensors, run in topological order, with several inputs
/// and outputs, shared layers and nested models. Sequential derives from it.
class KERASCPP_API Model : public Layer {
 public:
  KERASCPP_LAYER(Model)
  Model(KerasTensorList inputs, KerasTensorList outputs, std::string name = "");
  ~Model() override;
  Model(Model&&) noexcept;

  /// The layers in order, the InputLayers first, as Keras 3's model.layers of a functional model
  /// (Sequential's leaves its InputLayer out, as Keras').
  virtual std::vector<Layer*> layers() const;
  /// Throws ValueError naming the model and the layer names when none is called `name`.
  Layer& get_layer(const std::string& name) const;

  void compile(CompileOptions options);
  /// Keras' compile_config (optimizer, loss, loss_weights, metrics, ...); null before compile().
  Config get_compile_config() const { return compile_config_; }
  /// Compiles from a compile_config written by Keras or kerascpp.
  void compile_from_config(const Config& compile_config);
  /// Keras' get_config(): layers (with their inbound nodes), input_layers, output_layers.
  Config get_config() const override;
  /// Keras' model.to_json(): the serialized model with its build and compile configs.
  std::string to_json(int indent = -1) const;
  /// Set by a callback (EarlyStopping, TerminateOnNaN) to end fit() after the current batch.
  bool stop_training = false;
  /// Set by a callback's on_train_begin (BackupAndRestore) to start fit() at that epoch instead of
  /// initial_epoch, as Keras' model._initial_epoch; fit() consumes it.
  std::optional<int> resume_epoch;
  /// Saves the whole model: ".keras" (Keras 3) or ".h5" (legacy HDF5); see models::save_model.
  void save(const std::string& path);
  /// ".weights.h5": Keras 3's weights file (Python Keras loads it); any other name: kerascpp's own
  /// file (models/saving/weights_file.h). Saving is atomic.
  void save_weights(const std::string& path);
  /// Keras 3 .weights.h5, legacy .h5 (applications' weight files, tf.keras) and .keras files, or
  /// kerascpp's own file. Every shape is checked before anything is assigned.
  void load_weights(const std::string& path, LoadWeightsOptions options = {});
  /// Every layer once, input layers included, in Keras' order (Functional models; empty for Sequential).
  const std::vector<std::shared_ptr<Layer>>& ordered_layers() const { return ordered_layers_; }
  bool compiled() const { return optimizer_ != nullptr; }
  /// Keras' model.distribute_strategy: the strategy whose scope compile() ran in, or null.
  distribute::Strategy* distribute_strategy() const { return strategy_.get(); }
  /// False on the replicas of a data-parallel job other than rank 0: they neither print nor write files.
  bool is_chief() const;
  optimizers::Optimizer* optimizer() const { return optimizer_.get(); }
  /// Compiled inside a MirroredStrategy's scope: the weights of its replica `i` (0: this model's
  /// own; the others appear at the first training step), as Keras' experimental_local_results.
  std::vector<Variable*> replica_weights(int i);

  /// Trains on inputs x (N, ...) and targets y (N, ...), one tensor per model input and output,
  /// held on any backend; batches move to the default backend.
  History fit(const TensorList& x, const TensorList& y, FitOptions options = {});
  /// Trains on a Dataset's batches (read ahead on a background thread); validation through
  /// options.validation_data.
  History fit(data::Dataset& dataset, FitOptions options = {});
  /// Loss and metrics over x and y, by name.
  std::map<std::string, double> evaluate(const TensorList& x, const TensorList& y, EvaluateOptions options = {});
  /// Outputs for x, in batches, without recording gradients (the first output; see predict_all).
  Tensor predict(const TensorList& x, PredictOptions options = {});
  std::vector<Tensor> predict_all(const TensorList& x, PredictOptions options = {});
  /// One optimizer step on one batch; returns the logs (loss and metrics of this batch).
  std::map<std::string, double> train_on_batch(const TensorList& x, const TensorList& y);
  std::map<std::string, double> test_on_batch(const TensorList& x, const TensorList& y);
  Tensor predict_on_batch(const TensorList& x);

  // Layer interface: a model is a layer (nest it in another model, or in TimeDistributed).
  Tensor call(const Tensor& x, bool training) override;
  std::vector<Tensor> call_multi(const std::vector<Tensor>& inputs, bool training) override;
  PartialShape compute_output_shape(const PartialShape& input_shape) const override;
  std::vector<PartialShape> compute_output_shapes(const std::vector<PartialShape>& input_shapes) const override;
  bool ends_with_softmax() const override;
  Tensor call_logits(const Tensor& x, bool training) override;
  /// The symbolic inputs and outputs of a Functional model (empty for Sequential).
  const std::vector<KerasTensor>& inputs() const { return inputs_; }
  const std::vector<KerasTensor>& outputs() const { return outputs_; }

  /// Keras 3's summary table. `line_length` defaults to min(88, terminal columns - 4) (76 off a terminal).
  void summary(std::ostream& out = std::cout, std::optional<int> line_length = std::nullopt);
  /// The table laid out for `line_length` columns, cropped to `console_width` as rich crops it.
  std::string summary_string(int line_length, int console_width = 80);

  /// The layers(): a model's weights, penalties and random streams are its layers'.
  std::vector<Layer*> sublayers() const override { return layers(); }
  bool samples_independent() const override;

 protected:
  /// For Sequential: a model without a graph.
  Model(std::string class_name, std::string name);
  /// The outputs; where logits[i], output i before its final softmax. `output_masks`, where given,
  /// receives each output's mask (undefined where none): losses and metrics skip masked steps. Kept by
  /// the caller, not the model, so threads may run one model at once.
  virtual std::vector<Tensor> forward(const std::vector<Tensor>& x, bool training, const std::vector<bool>& logits,
                                      std::vector<Tensor>* output_masks = nullptr);
  virtual size_t num_inputs() const { return inputs_.size(); }
  virtual size_t num_outputs() const { return outputs_.size(); }
  /// Whether output i comes from a layer that ends with a softmax.
  virtual bool output_ends_with_softmax(size_t i) const;
  virtual std::string output_name(size_t i) const;
  /// Summary rows: layer, output shape, and (Functional) what it is connected to.
  struct SummaryRow {
    Layer* layer;
    std::string shape, connected_to;
  };
  virtual std::vector<SummaryRow> summary_rows() const;
  /// Keras prints graphs that are a single chain like Sequential models (no Connected to column).
  virtual bool is_functional() const;

 private:
  History fit_dataset(data::Dataset& dataset, const std::vector<Tensor>& x_val, const std::vector<Tensor>& y_val,
                      int64_t val_batch, const FitOptions& o);
  /// One optimizer step on a batch already on the device; updates the loss tracker and metrics.
  void train_step(const std::vector<Tensor>& x, const std::vector<Tensor>& y, const Tensor& sample_weight);
  /// The step on this replica's rows, `share` of the global batch.
  void train_on_shard(const std::vector<Tensor>& x, const std::vector<Tensor>& y, const Tensor& sample_weight,
                      float share);
  /// The weighted sum over outputs of each output's mean loss; `per_output` receives each output's
  /// unweighted loss (undefined where an output has none), for the per-output trackers.
  Tensor total_loss(const std::vector<Tensor>& y, const std::vector<Tensor>& out, const std::vector<Tensor>& masks,
                    const Tensor& weights, std::vector<Tensor>& per_output);
  /// Adds a step to the per-output loss trackers (from total_loss) and the metrics. Called after
  /// everything that checks labels, so a recorded step can guard it (detail::GuardedByChecks).
  void update_metrics(const std::vector<Tensor>& y, const std::vector<Tensor>& out, const std::vector<Tensor>& masks,
                      const std::vector<Tensor>& per_output_losses = {});
  std::vector<bool> logits_mask() const;
  /// What Keras adds to the compiled loss: the weights' penalties and the activity penalties recorded.
  Tensor additional_losses(const ActivityLossScope& activity);
  std::map<std::string, double> results() const;
  void reset_metrics();
  std::map<std::string, double> run_evaluation(const std::vector<Tensor>& x, const std::vector<Tensor>& y,
                                               int64_t batch_size, utils::Progbar* bar);
  /// Loss and metrics of one batch already on the device, added to the trackers.
  void evaluate_batch(const std::vector<Tensor>& x, const std::vector<Tensor>& y);
  /// evaluate_batch, replayed from a recorded graph where StepGraphs is on.
  void evaluate_step(const std::vector<Tensor>& x, const std::vector<Tensor>& y);
  void require_compiled(const char* what) const;
  void check_data(const char* what, const TensorList& x, const TensorList* y) const;
  void build_graph();

  // The Functional graph.
  std::vector<KerasTensor> inputs_, outputs_;
  bool single_input_ = false, single_output_ = false;         // made from one tensor, not a list
  std::vector<std::shared_ptr<detail::SymbolicNode>> nodes_;  // topological order, inputs excluded
  /// Every layer once, input layers included, in Keras' order (model.layers, configs, saved files).
  std::vector<std::shared_ptr<Layer>> ordered_layers_;
  void order_layers_as_keras();
  // Conv2D -> BatchNormalization (-> relu) chains whose inner outputs nothing else reads: where the
  // batch norm uses its moving statistics, forward() runs each as one convolution with the batch
  // norm folded in (Conv2D::call_with_batch_norm). Found once; the graph does not change.
  struct FoldedChain {
    const detail::SymbolicNode* batch_norm = nullptr;
    const detail::SymbolicNode* relu = nullptr;  // null when the chain ends at the batch norm
    // A residual block: Add(batch norm, shortcut), then maybe a relu. The shortcut is added in the
    // convolution's pass where its value is at hand (computed before) and float32.
    const detail::SymbolicNode* add = nullptr;
    size_t shortcut = 0;  // which of the Add's inputs
    const detail::SymbolicNode* add_relu = nullptr;
  };
  std::unordered_map<const detail::SymbolicNode*, FoldedChain> folded_chains_;
  // Conv2D -> MaxPooling2D pairs likewise (Conv2D::call_with_max_pool): convolution node -> pooling node.
  std::unordered_map<const detail::SymbolicNode*, const detail::SymbolicNode*> pooled_convs_;
  void find_folded_chains();
  // Inference calls and training steps replayed from recorded device graphs (models/step_graphs.h).
  std::unique_ptr<detail::StepGraphs> inference_graphs_, train_graphs_, evaluate_graphs_, test_graphs_;
  std::optional<bool> graph_safe_;  // no stateful layer, no activity regularizer
  bool graph_safe();
  using RecordedStep = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
  /// step(inputs), replayed from `graphs` where recording is on and the model allows it
  /// (models/step_graphs.h); the weights (and the optimizer's slots) are the state it reads.
  std::vector<Tensor> run_recorded(std::unique_ptr<detail::StepGraphs>& graphs, const std::vector<Tensor>& inputs,
                                   bool with_optimizer, const RecordedStep& step);
  std::vector<Tensor> inference_forward(const std::vector<Tensor>& x);

 protected:
  // The pieces of a foldable chain (Sequential folds the same chains in its layer list).
  static bool foldable_conv(const Layer& layer);
  static bool foldable_batch_norm(const Layer& layer);
  static bool is_plain_relu(const Layer& layer);  // Activation("relu") or ReLU() with Keras' defaults
  static bool foldable_max_pool(const Layer& conv, const Layer& pool);  // Conv2D -> MaxPooling2D
  /// The layers changed (Sequential::add, pop): recorded inference passes no longer apply.
  void forget_recorded_passes();

 private:
  std::vector<float> loss_weights_;

 private:
  std::vector<std::string> metric_names_;  // as logged, in metrics_ order
  bool built_for_graph_ = false;
  /// Inputs on the device; integer inputs become float32 unless the model declares them int.
  std::vector<Tensor> device_inputs(const std::vector<Tensor>& x) const;

  std::shared_ptr<optimizers::Optimizer> optimizer_;
  std::vector<std::shared_ptr<losses::Loss>> losses_;                   // per output
  std::vector<std::unique_ptr<metrics::Mean>> output_loss_trackers_;    // "<output>_loss" with several outputs
  std::vector<std::vector<std::shared_ptr<metrics::Metric>>> metrics_;  // per output
  std::unique_ptr<metrics::Mean> loss_tracker_;
  Config compile_config_;

  // Data-parallel training (distributed/strategy.h).
  std::shared_ptr<distribute::Strategy> strategy_;
  bool replicas_synced_ = false;  // rank 0's weights copied to every replica
  bool data_parallel() const;
  // MirroredStrategy: this model is replica 0; the others are copies on the other devices, each
  // trained by its device's thread.
  std::vector<std::shared_ptr<Model>> replicas_;
  std::shared_ptr<std::mutex> replicas_mutex_ = std::make_shared<std::mutex>();  // calls from several threads
  bool mirrored() const;
  Model& replica(int i) { return i == 0 ? *this : *replicas_.at(static_cast<size_t>(i) - 1); }
  void mirrored_train_step(const std::vector<Tensor>& x, const std::vector<Tensor>& y, const Tensor& sample_weight);
  /// Makes the replicas (once) and copies this model's weights to them; for_training also the
  /// optimizer's state and the dropout streams.
  void sync_replicas(const std::vector<Tensor>& x, bool for_training);
  /// A replica's compiled state: this model's losses, fresh copies of its metrics and optimizer.
  void compile_as_replica_of(const Model& primary);
  /// Each replica's dropout streams: this model's, moved apart per replica (at every epoch, so a
  /// resumed run draws what an uninterrupted one does).
  void seed_replicas();
  /// Every replica's loss and metrics together (collective: every rank calls it at the same point).
  std::map<std::string, double> global_results();
  /// Metric states, in results() order, for summing across replicas.
  std::vector<metrics::Metric*> all_metrics() const;
};

}  // namespace keras
