#pragma once
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../layers/layer.h"
#include "training/losses.h"
#include "training/metrics.h"
#include "training/optimizers.h"
#include "training/progbar.h"

namespace keras {

/// An optimizer by Keras name ("adam") or as an object (`optimizers::Adam({.learning_rate = 1e-4})`).
class KERASCPP_API OptimizerRef {
 public:
  OptimizerRef(const char* name);  // NOLINT
  OptimizerRef(const std::string& name);  // NOLINT
  template <typename O, typename = std::enable_if_t<std::is_base_of_v<optimizers::Optimizer, std::decay_t<O>> && !std::is_lvalue_reference_v<O>>>
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
  LossRef(const char* name);  // NOLINT
  LossRef(const std::string& name);  // NOLINT
  template <typename L, typename = std::enable_if_t<std::is_base_of_v<losses::Loss, std::decay_t<L>> && !std::is_lvalue_reference_v<L>>>
  LossRef(L&& l) : ptr_(std::make_shared<std::decay_t<L>>(std::move(l))) {}  // NOLINT
  LossRef(std::shared_ptr<losses::Loss> l) : ptr_(std::move(l)) {}  // NOLINT
  const std::shared_ptr<losses::Loss>& get() const { return ptr_; }

 private:
  std::shared_ptr<losses::Loss> ptr_;
};

/// Keras' compile() keyword arguments.
struct CompileOptions {
  OptimizerRef optimizer = "rmsprop";
  LossRef loss;
  std::vector<std::string> metrics;
};

/// Keras' fit() keyword arguments and defaults.
struct FitOptions {
  std::optional<int64_t> batch_size;  // 32 when unset
  int epochs = 1;
  int verbose = 1;                     // 0 silent, 1 progress bar, 2 one line per epoch
  float validation_split = 0.f;        // the last samples, taken before shuffling
  std::optional<std::pair<Tensor, Tensor>> validation_data;
  bool shuffle = true;
  int initial_epoch = 0;
  std::map<int64_t, float> class_weight;
  Tensor sample_weight;
};

struct EvaluateOptions {
  std::optional<int64_t> batch_size;
  int verbose = 1;
};

struct PredictOptions {
  std::optional<int64_t> batch_size;
  int verbose = 0;
};

/// What fit() returns: each logged value per epoch (loss, metrics, val_ ones), as keras.callbacks.History.
struct History {
  std::map<std::string, std::vector<double>> history;
  std::vector<int> epoch;
};

/// A model: layers plus training. Sequential is the first kind; Functional graphs come next.
class KERASCPP_API Model : public Layer {
 public:
  Model(std::string class_name, std::string name);
  ~Model() override;
  Model(Model&&) noexcept;

  /// The layers, in order (the InputLayer excluded, as Keras' model.layers).
  virtual std::vector<Layer*> layers() const = 0;
  /// Throws ValueError naming the model and the layer names when none is called `name`.
  Layer& get_layer(const std::string& name) const;

  void compile(CompileOptions options);
  bool compiled() const { return optimizer_ != nullptr; }
  optimizers::Optimizer* optimizer() const { return optimizer_.get(); }

  /// Trains on x (N, ...) and y (N, ...) held on any backend; batches move to the default backend.
  History fit(const Tensor& x, const Tensor& y, FitOptions options = {});
  /// Loss and metrics over x and y, by name.
  std::map<std::string, double> evaluate(const Tensor& x, const Tensor& y, EvaluateOptions options = {});
  /// Outputs for x, in batches, without recording gradients.
  Tensor predict(const Tensor& x, PredictOptions options = {});
  /// One optimizer step on one batch; returns the logs (loss and metrics of this batch).
  std::map<std::string, double> train_on_batch(const Tensor& x, const Tensor& y);
  std::map<std::string, double> test_on_batch(const Tensor& x, const Tensor& y);
  Tensor predict_on_batch(const Tensor& x);

  /// Keras 3's summary table. `line_length` defaults to min(88, terminal columns - 4) (76 off a terminal).
  void summary(std::ostream& out = std::cout, std::optional<int> line_length = std::nullopt);
  std::string summary_string(int line_length);

  std::vector<Variable*> weights() override;
  std::vector<Variable*> trainable_weights() override;
  std::vector<Variable*> non_trainable_weights() override;
  int64_t count_params() const override;
  void set_trainable(bool trainable) override;

 protected:
  /// Forward pass for training: the outputs, or the logits when the loss takes them instead.
  virtual Tensor forward(const Tensor& x, bool training, bool want_logits) = 0;
  /// The shape each layer outputs, for summary(); empty when the model is not built.
  virtual std::vector<PartialShape> layer_output_shapes() const = 0;

 private:
  /// One optimizer step on a batch already on the device; updates the loss tracker and metrics.
  void train_step(const Tensor& x, const Tensor& y, const Tensor& sample_weight);
  Tensor batch_loss(const Tensor& y, const Tensor& out, bool logits, const Tensor& weights);
  void update_metrics(const Tensor& y, const Tensor& out, bool logits);
  std::map<std::string, double> results() const;
  void reset_metrics();
  std::map<std::string, double> run_evaluation(const Tensor& x, const Tensor& y, int64_t batch_size,
                                               utils::Progbar* bar);
  void require_compiled(const char* what) const;

  std::shared_ptr<optimizers::Optimizer> optimizer_;
  std::shared_ptr<losses::Loss> loss_;
  std::vector<std::shared_ptr<metrics::Metric>> metrics_;
  std::unique_ptr<metrics::Mean> loss_tracker_;
};

}  // namespace keras
