#include "models/training/metrics.h"

#include "core/autograd.h"
#include "core/check.h"
#include "core/ops.h"

namespace keras::metrics {

Metric::~Metric() = default;

void Metric::accumulate(const Tensor& values) {
  NoGradScope no_grad;
  const Tensor s = ops::sum(ops::cast(values, DType::float32));
  total_ = total_.defined() && total_.backend() == s.backend() ? total_ + s : s;
  count_ += static_cast<double>(values.num_elements());
}

double Metric::result() const { return count_ > 0 && total_.defined() ? total_.item() / count_ : 0.0; }

void Metric::reset_state() {
  total_ = Tensor();
  count_ = 0;
}

namespace {
Tensor labels_1d(const Tensor& y) { return y.rank() == 2 && y.dim(1) == 1 ? ops::reshape(y, {y.dim(0)}) : y; }
}  // namespace

void SparseCategoricalAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  NoGradScope no_grad;
  accumulate(ops::equal(ops::argmax(y_pred, -1), ops::cast(labels_1d(y_true), DType::int64)));
}
void CategoricalAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  NoGradScope no_grad;
  accumulate(ops::equal(ops::argmax(y_pred, -1), ops::argmax(y_true, -1)));
}
void BinaryAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  NoGradScope no_grad;
  const Tensor predicted = ops::cast(ops::greater(y_pred, ops::full({}, threshold_, DType::float32, y_pred.backend())), DType::float32);
  accumulate(ops::equal(predicted, ops::cast(y_true, DType::float32)));
}
void Accuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  NoGradScope no_grad;
  accumulate(ops::equal(ops::cast(y_true, DType::float32), ops::cast(y_pred, DType::float32)));
}
void MeanSquaredError::update_state(const Tensor& y_true, const Tensor& y_pred) {
  NoGradScope no_grad;
  accumulate(ops::square(ops::cast(y_true, DType::float32) - y_pred));
}
void MeanAbsoluteError::update_state(const Tensor& y_true, const Tensor& y_pred) {
  NoGradScope no_grad;
  accumulate(ops::abs(ops::cast(y_true, DType::float32) - y_pred));
}

std::shared_ptr<Metric> get(const std::string& name, const std::string& loss_name) {
  if (name == "accuracy" || name == "acc") {
    if (loss_name == "sparse_categorical_crossentropy") return std::make_shared<SparseCategoricalAccuracy>(name);
    if (loss_name == "categorical_crossentropy") return std::make_shared<CategoricalAccuracy>(name);
    if (loss_name == "binary_crossentropy") return std::make_shared<BinaryAccuracy>(name);
    return std::make_shared<Accuracy>(name);
  }
  if (name == "sparse_categorical_accuracy") return std::make_shared<SparseCategoricalAccuracy>();
  if (name == "categorical_accuracy") return std::make_shared<CategoricalAccuracy>();
  if (name == "binary_accuracy") return std::make_shared<BinaryAccuracy>();
  if (name == "mse" || name == "mean_squared_error") return std::make_shared<MeanSquaredError>(name);
  if (name == "mae" || name == "mean_absolute_error") return std::make_shared<MeanAbsoluteError>(name);
  throw ValueError(fmt::format(
      "unknown metric '{}': expected one of accuracy, sparse_categorical_accuracy, categorical_accuracy, "
      "binary_accuracy, mean_squared_error (mse), mean_absolute_error (mae)",
      name));
}

}  // namespace keras::metrics
