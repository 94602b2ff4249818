#include "models/training/metrics.h"

#include "core/autograd.h"
#include "core/check.h"
#include "core/ops.h"
#include "core/step_recording.h"

namespace keras::metrics {

Metric::~Metric() = default;

void Metric::add_to_total(const Tensor& s, double count) {
  // In place once the sum exists, so a recorded training step keeps adding to the same buffer.
  if (total_.defined() && total_.backend() == s.backend())
    ops::copy_into(total_ + s, total_);
  else
    total_ = ops::copy(s);
  detail::each_step([this, count] { count_ += count; });
  detail::on_failed_step([this, count] { count_ -= count; });
}

void Metric::accumulate(const Tensor& values) {
  NoGradScope no_grad;
  add_to_total(ops::sum(ops::cast(values, DType::float32)), static_cast<double>(values.num_elements()));
}

void Metric::accumulate(const Tensor& value, double weight) {
  NoGradScope no_grad;
  KCPP_CHECK(value.num_elements() == 1, ShapeError, "{}: expected a scalar to weigh, received shape {}", name(),
             value.shape().to_string());
  add_to_total(ops::reshape(ops::cast(value, DType::float32), std::vector<int64_t>{}) * static_cast<float>(weight),
               weight);
}

double Metric::result() const { return count_ > 0 && total_.defined() ? total_.item() / count_ : 0.0; }

void Metric::reset_state() {
  if (total_.defined()) total_.backend()->fill(total_, 0);
  count_ = 0;
}

std::vector<double> Metric::state() const { return {total_.defined() ? total_.item() : 0.0, count_}; }

void Metric::set_state(const std::vector<double>& state) {
  KCPP_CHECK(state.size() == 2, ValueError, "{}: expected a state of 2 numbers (total, count), received {}", name(),
             state.size());
  if (total_.defined())
    total_.backend()->fill(total_, static_cast<float>(state[0]));
  else
    total_ = Tensor::scalar(static_cast<float>(state[0]));
  count_ = state[1];
}

Config Metric::get_config() const { return Config{{"name", name_}, {"dtype", "float32"}}; }

Config Metric::serialized() const {
  const std::string cls = class_name();
  if (cls.empty()) return name_;
  return serialization::keras_object("keras.metrics", cls, get_config());
}

Config BinaryAccuracy::get_config() const {
  Config c = Metric::get_config();
  c["threshold"] = threshold_;
  return c;
}
Config SparseTopKCategoricalAccuracy::get_config() const {
  Config c = Metric::get_config();
  c["k"] = k_;
  return c;
}
Config TopKCategoricalAccuracy::get_config() const {
  Config c = Metric::get_config();
  c["k"] = k_;
  return c;
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
  const Tensor predicted =
      ops::cast(ops::greater(y_pred, ops::full({}, static_cast<float>(threshold_), DType::float32, y_pred.backend())), DType::float32);
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

namespace {
// For each row, whether the target column's prediction has fewer than k strictly larger ones.
Tensor in_top_k(const Tensor& target_scores, const Tensor& y_pred, int k) {
  const Tensor larger = ops::sum(ops::cast(ops::greater(y_pred, target_scores), DType::float32), {-1});
  return ops::less(larger, ops::full({}, static_cast<float>(k), DType::float32, y_pred.backend()));
}
}  // namespace

void SparseTopKCategoricalAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  NoGradScope no_grad;
  const Tensor ids = ops::cast(labels_1d(y_true), DType::int64);
  const Tensor onehot =
      ops::cast(ops::equal(ops::expand_dims(ids, -1), ops::arange(y_pred.dim(-1), DType::int64, y_pred.backend())),
                DType::float32);
  accumulate(in_top_k(ops::sum(y_pred * onehot, {-1}, true), y_pred, k_));
}
void TopKCategoricalAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  NoGradScope no_grad;
  const Tensor ids = ops::argmax(y_true, -1);
  const Tensor onehot =
      ops::cast(ops::equal(ops::expand_dims(ids, -1), ops::arange(y_pred.dim(-1), DType::int64, y_pred.backend())),
                DType::float32);
  accumulate(in_top_k(ops::sum(y_pred * onehot, {-1}, true), y_pred, k_));
}

ConfusionMetric::ConfusionMetric(std::string name, std::vector<double> thresholds)
    : Metric(std::move(name)), thresholds_(std::move(thresholds)) {
  reset_state();
}
void ConfusionMetric::reset_state() {
  Metric::reset_state();
  tp_.assign(thresholds_.size(), 0);
  fp_ = tn_ = fn_ = tp_;
}
std::vector<double> ConfusionMetric::state() const {
  std::vector<double> out;
  for (const auto* v : {&tp_, &fp_, &tn_, &fn_}) out.insert(out.end(), v->begin(), v->end());
  return out;
}
void ConfusionMetric::set_state(const std::vector<double>& state) {
  const size_t n = thresholds_.size();
  KCPP_CHECK(state.size() == 4 * n, ValueError, "{}: expected a state of {} numbers (tp, fp, tn, fn), received {}",
             name(), 4 * n, state.size());
  size_t at = 0;
  for (auto* v : {&tp_, &fp_, &tn_, &fn_}) {
    v->assign(state.begin() + static_cast<std::ptrdiff_t>(at), state.begin() + static_cast<std::ptrdiff_t>(at + n));
    at += n;
  }
}
void ConfusionMetric::update_state(const Tensor& y_true, const Tensor& y_pred) {
  NoGradScope no_grad;
  const auto truth = ops::cast(y_true, DType::float32).to_vector<float>();
  const auto pred = ops::cast(y_pred, DType::float32).to_vector<float>();
  KCPP_CHECK(truth.size() == pred.size(), ShapeError, "{}: y_true {} and y_pred {} must have the same size", name(),
             y_true.shape().to_string(), y_pred.shape().to_string());
  for (size_t t = 0; t < thresholds_.size(); ++t)
    for (size_t i = 0; i < pred.size(); ++i) {
      const bool positive = truth[i] > 0.5f, predicted = pred[i] > thresholds_[t];
      (positive ? (predicted ? tp_ : fn_) : (predicted ? fp_ : tn_))[t] += 1;
    }
}
namespace {
Config threshold_config(const Metric& m, double threshold) {
  Config c = m.Metric::get_config();
  c["thresholds"] = threshold == 0.5 ? Config(nullptr) : Config(threshold);  // Keras writes what it was given
  c["top_k"] = nullptr;
  c["class_id"] = nullptr;
  return c;
}
}  // namespace
Config Precision::get_config() const { return threshold_config(*this, thresholds_[0]); }
Config Recall::get_config() const { return threshold_config(*this, thresholds_[0]); }

double Precision::result() const { return tp_[0] + fp_[0] > 0 ? tp_[0] / (tp_[0] + fp_[0]) : 0.0; }
double Recall::result() const { return tp_[0] + fn_[0] > 0 ? tp_[0] / (tp_[0] + fn_[0]) : 0.0; }

namespace {
std::vector<double> auc_thresholds(int n) {
  KCPP_CHECK(n > 1, ValueError, "AUC: num_thresholds must be > 1, received {}", n);
  std::vector<double> t{-1e-7};
  for (int i = 0; i < n - 2; ++i) t.push_back(static_cast<double>(i + 1) / (n - 1));
  t.push_back(1.0 + 1e-7);
  return t;
}
}  // namespace
AUC::AUC(int num_thresholds, std::string name) : ConfusionMetric(std::move(name), auc_thresholds(num_thresholds)) {}
Config AUC::get_config() const {
  Config c = Metric::get_config();
  c["num_thresholds"] = thresholds_.size();
  c["curve"] = "ROC";
  c["summation_method"] = "interpolation";
  c["multi_label"] = false;
  c["num_labels"] = nullptr;
  c["label_weights"] = nullptr;
  c["from_logits"] = false;
  return c;
}
double AUC::result() const {
  // ROC by the trapezoid rule over the thresholds, as Keras' "interpolation" summation for ROC.
  const size_t n = thresholds_.size();
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  double area = 0;
  for (size_t i = 0; i + 1 < n; ++i) {
    const double tpr0 = ratio(tp_[i], tp_[i] + fn_[i]), tpr1 = ratio(tp_[i + 1], tp_[i + 1] + fn_[i + 1]);
    const double fpr0 = ratio(fp_[i], fp_[i] + tn_[i]), fpr1 = ratio(fp_[i + 1], fp_[i + 1] + tn_[i + 1]);
    area += (fpr0 - fpr1) * (tpr0 + tpr1) / 2;
  }
  return area;
}

std::shared_ptr<Metric> get(const std::string& name, const std::string& loss_name) {
  if (name == "precision") return std::make_shared<Precision>();
  if (name == "recall") return std::make_shared<Recall>();
  if (name == "auc") return std::make_shared<AUC>();
  if (name == "top_k_categorical_accuracy") return std::make_shared<TopKCategoricalAccuracy>();
  if (name == "sparse_top_k_categorical_accuracy") return std::make_shared<SparseTopKCategoricalAccuracy>();
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
  throw ValueError(
      fmt::format("unknown metric '{}': expected one of accuracy, sparse_categorical_accuracy, categorical_accuracy, "
                  "binary_accuracy, mean_squared_error (mse), mean_absolute_error (mae)",
                  name));
}

std::shared_ptr<Metric> deserialize(const Config& config, const std::string& loss_name) {
  if (config.is_string()) return get(config.get<std::string>(), loss_name);
  KCPP_CHECK(config.is_object() && config.contains("class_name") && config["class_name"].is_string(), ValueError,
             "metric config: expected a name or an object with a class_name, received {}",
             config.dump().substr(0, 200));
  const std::string cls = config["class_name"].get<std::string>();
  static const Config empty = Config::object();
  serialization::ConfigReader r(config.contains("config") && config["config"].is_object() ? config["config"] : empty,
                                "metric " + cls);
  r.require("dtype", "float32");
  auto name = [&](const char* fallback) { return r.string("name", fallback); };
  // Precision and Recall: one threshold (a number, or a list of one), all classes.
  auto threshold = [&]() {
    r.require("top_k", nullptr);
    r.require("class_id", nullptr);
    if (!r.has("thresholds")) return 0.5;
    const Config& t = r.raw("thresholds");
    if (t.is_number()) return t.get<double>();
    KCPP_CHECK(t.is_array() && t.size() == 1 && t[0].is_number(), NotImplementedError,
               "metric {}: kerascpp supports one threshold, received thresholds={}", cls, t.dump());
    return t[0].get<double>();
  };
  std::shared_ptr<Metric> out;
  if (cls == "MeanMetricWrapper") {  // Keras 2: a metric function by name ("fn") under a display name
    const std::string n = r.string("name", ""), fn = r.string("fn", "");
    try {
      out = get(n, loss_name);
    } catch (const ValueError&) {
      out = get(fn, loss_name);
    }
  } else if (cls == "Mean") out = std::make_shared<Mean>(name("mean"));
  else if (cls == "SparseCategoricalAccuracy") out = std::make_shared<SparseCategoricalAccuracy>(name("sparse_categorical_accuracy"));
  else if (cls == "CategoricalAccuracy") out = std::make_shared<CategoricalAccuracy>(name("categorical_accuracy"));
  else if (cls == "Accuracy") out = std::make_shared<Accuracy>(name("accuracy"));
  else if (cls == "MeanSquaredError") out = std::make_shared<MeanSquaredError>(name("mean_squared_error"));
  else if (cls == "MeanAbsoluteError") out = std::make_shared<MeanAbsoluteError>(name("mean_absolute_error"));
  else if (cls == "BinaryAccuracy") {
    const std::string n = name("binary_accuracy");
    out = std::make_shared<BinaryAccuracy>(n, r.number("threshold", 0.5));
  } else if (cls == "SparseTopKCategoricalAccuracy" || cls == "TopKCategoricalAccuracy") {
    r.require("from_sorted_ids", false);
    const std::string n = name(cls == "TopKCategoricalAccuracy" ? "top_k_categorical_accuracy"
                                                                 : "sparse_top_k_categorical_accuracy");
    const int64_t k = r.integer("k", 5);
    KCPP_CHECK(k >= 1 && k <= 1'000'000, ValueError, "metric {}: expected k >= 1, received {}", cls, k);
    if (cls == "TopKCategoricalAccuracy") out = std::make_shared<TopKCategoricalAccuracy>(static_cast<int>(k), n);
    else out = std::make_shared<SparseTopKCategoricalAccuracy>(static_cast<int>(k), n);
  } else if (cls == "Precision" || cls == "Recall") {
    const std::string n = name(cls == "Precision" ? "precision" : "recall");
    const double t = threshold();
    KCPP_CHECK(t >= 0 && t <= 1, ValueError, "metric {}: expected a threshold in [0, 1], received {}", cls, t);
    if (cls == "Precision") out = std::make_shared<Precision>(t, n);
    else out = std::make_shared<Recall>(t, n);
  } else if (cls == "AUC") {
    const std::string n = name("auc");
    const int64_t thresholds = r.integer("num_thresholds", 200);
    KCPP_CHECK(thresholds > 1 && thresholds <= 1'000'000, ValueError,
               "metric AUC: expected num_thresholds in (1, 1000000], received {}", thresholds);
    r.require("curve", "ROC");
    r.require("summation_method", "interpolation");
    r.require("multi_label", false);
    r.require("num_labels", nullptr);
    r.require("label_weights", nullptr);
    r.require("thresholds", nullptr);
    r.require("from_logits", false);
    out = std::make_shared<AUC>(static_cast<int>(thresholds), n);
  } else {
    throw ValueError(fmt::format(
        "metric config: unknown metric class '{}': expected one of Mean, Accuracy, BinaryAccuracy, "
        "CategoricalAccuracy, SparseCategoricalAccuracy, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, "
        "MeanSquaredError, MeanAbsoluteError, Precision, Recall, AUC",
        cls));
  }
  r.finish();
  return out;
}

}  // namespace keras::metrics
