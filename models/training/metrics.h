#pragma once
#include <memory>
#include <string>
#include <vector>

#include "../../core/export.h"
#include "../../core/tensor.h"
#include "../../layers/serialization.h"

namespace keras::metrics {

/// A stateful metric: accumulates over batches until reset_state() (called at each epoch start).
/// State stays on the device; result() reads it back.
class KERASCPP_API Metric {
 public:
  explicit Metric(std::string name) : name_(std::move(name)) {}
  virtual ~Metric();
  virtual void update_state(const Tensor& y_true, const Tensor& y_pred) = 0;
  virtual double result() const;
  virtual void reset_state();
  const std::string& name() const { return name_; }
  /// The accumulated state as numbers that add up across replicas (data-parallel training sums
  /// them), and setting it back.
  virtual std::vector<double> state() const;
  virtual void set_state(const std::vector<double>& state);
  /// Keras' class name ("SparseCategoricalAccuracy"); "" for a metric Keras does not know, which
  /// is then saved by its name.
  virtual std::string class_name() const { return ""; }
  /// Keras' config: name, dtype and the class's options.
  virtual Config get_config() const;
  /// Keras' serialized object {module, class_name, config, registered_name} (or the name, see class_name).
  Config serialized() const;

 protected:
  /// Adds `values` (any shape) to the running sum and their count to the count.
  void accumulate(const Tensor& values);
  /// Adds the scalar `value` times `weight` to the sum and `weight` to the count.
  void accumulate(const Tensor& value, double weight);

 private:
  void add_to_total(const Tensor& sum, double count);
  std::string name_;
  Tensor total_;
  double count_ = 0;
};

/// The running mean of the values given (the loss tracker is one).
class KERASCPP_API Mean : public Metric {
 public:
  std::string class_name() const override { return "Mean"; }
  explicit Mean(std::string name = "mean") : Metric(std::move(name)) {}
  void update_state(const Tensor& values, const Tensor& /*unused*/ = Tensor()) override { accumulate(values); }
  /// Adds a scalar `value` counted `weight` times (Keras' update_state(value, sample_weight=n)).
  void update_state(const Tensor& value, double weight) { accumulate(value, weight); }
};

/// argmax(y_pred) == y_true for integer labels.
class KERASCPP_API SparseCategoricalAccuracy : public Metric {
 public:
  std::string class_name() const override { return "SparseCategoricalAccuracy"; }
  explicit SparseCategoricalAccuracy(std::string name = "sparse_categorical_accuracy") : Metric(std::move(name)) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
};
/// argmax(y_pred) == argmax(y_true).
class KERASCPP_API CategoricalAccuracy : public Metric {
 public:
  std::string class_name() const override { return "CategoricalAccuracy"; }
  explicit CategoricalAccuracy(std::string name = "categorical_accuracy") : Metric(std::move(name)) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
};
/// (y_pred > threshold) == y_true.
class KERASCPP_API BinaryAccuracy : public Metric {
 public:
  std::string class_name() const override { return "BinaryAccuracy"; }
  explicit BinaryAccuracy(std::string name = "binary_accuracy", double threshold = 0.5)
      : Metric(std::move(name)), threshold_(threshold) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
  Config get_config() const override;

 private:
  double threshold_;
};
/// y_pred == y_true elementwise.
class KERASCPP_API Accuracy : public Metric {
 public:
  std::string class_name() const override { return "Accuracy"; }
  explicit Accuracy(std::string name = "accuracy") : Metric(std::move(name)) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
};
/// mean((y_true - y_pred)^2) and mean(|y_true - y_pred|) over all samples seen.
class KERASCPP_API MeanSquaredError : public Metric {
 public:
  std::string class_name() const override { return "MeanSquaredError"; }
  explicit MeanSquaredError(std::string name = "mean_squared_error") : Metric(std::move(name)) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
};
class KERASCPP_API MeanAbsoluteError : public Metric {
 public:
  std::string class_name() const override { return "MeanAbsoluteError"; }
  explicit MeanAbsoluteError(std::string name = "mean_absolute_error") : Metric(std::move(name)) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
};

/// Whether the true class is among the k highest predictions (class ids, or one-hot targets).
class KERASCPP_API SparseTopKCategoricalAccuracy : public Metric {
 public:
  std::string class_name() const override { return "SparseTopKCategoricalAccuracy"; }
  explicit SparseTopKCategoricalAccuracy(int k = 5, std::string name = "sparse_top_k_categorical_accuracy")
      : Metric(std::move(name)), k_(k) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
  Config get_config() const override;

 private:
  int k_;
};
class KERASCPP_API TopKCategoricalAccuracy : public Metric {
 public:
  std::string class_name() const override { return "TopKCategoricalAccuracy"; }
  explicit TopKCategoricalAccuracy(int k = 5, std::string name = "top_k_categorical_accuracy")
      : Metric(std::move(name)), k_(k) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
  Config get_config() const override;

 private:
  int k_;
};

/// Confusion counts at one or several thresholds, accumulated on the host.
class KERASCPP_API ConfusionMetric : public Metric {
 public:
  ConfusionMetric(std::string name, std::vector<double> thresholds);
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
  void reset_state() override;
  std::vector<double> state() const override;
  void set_state(const std::vector<double>& state) override;

 protected:
  std::vector<double> thresholds_, tp_, fp_, tn_, fn_;
};
/// tp / (tp + fp) at `threshold` (Keras' default 0.5).
class KERASCPP_API Precision : public ConfusionMetric {
 public:
  std::string class_name() const override { return "Precision"; }
  explicit Precision(double threshold = 0.5, std::string name = "precision")
      : ConfusionMetric(std::move(name), {threshold}) {}
  double result() const override;
  Config get_config() const override;
};
/// tp / (tp + fn) at `threshold`.
class KERASCPP_API Recall : public ConfusionMetric {
 public:
  std::string class_name() const override { return "Recall"; }
  explicit Recall(double threshold = 0.5, std::string name = "recall")
      : ConfusionMetric(std::move(name), {threshold}) {}
  double result() const override;
  Config get_config() const override;
};
/// Area under the ROC curve from `num_thresholds` evenly spaced thresholds, trapezoidal, as Keras' AUC().
class KERASCPP_API AUC : public ConfusionMetric {
 public:
  std::string class_name() const override { return "AUC"; }
  explicit AUC(int num_thresholds = 200, std::string name = "auc");
  double result() const override;
  Config get_config() const override;
};

/// By Keras name. "accuracy"/"acc" resolves, as Keras does, by the loss: sparse categorical,
/// categorical or binary accuracy, keeping the name "accuracy".
KERASCPP_API std::shared_ptr<Metric> get(const std::string& name, const std::string& loss_name);

/// A name (resolved as get() does) or Keras' serialized metric object. Options kerascpp cannot
/// honour (Precision's top_k, AUC's PR curve, ...) throw NotImplementedError naming them.
KERASCPP_API std::shared_ptr<Metric> deserialize(const Config& config, const std::string& loss_name = "");

}  // namespace keras::metrics
