#include "models/training/losses.h"

#include <cmath>

#include "core/check.h"
#include "core/ops.h"

namespace keras::losses {
namespace {
constexpr float kEpsilon = 1e-7f;  // Keras' backend epsilon

Tensor class_ids(const Tensor& y_true, const Tensor& y_pred, const char* loss) {
  Tensor ids = y_true;
  if (ids.rank() == 2 && ids.dim(1) == 1) ids = ops::reshape(ids, {ids.dim(0)});
  KCPP_CHECK(ids.rank() == 1 && y_pred.rank() == 2 && ids.dim(0) == y_pred.dim(0), ShapeError,
             "{}: expected labels of shape ({},) for predictions {}, received {}", loss,
             y_pred.rank() ? y_pred.dim(0) : 0, y_pred.shape().to_string(), y_true.shape().to_string());
  return ids.dtype() == DType::int32 || ids.dtype() == DType::int64 ? ids : ops::cast(ids, DType::int32);
}
Tensor last_axis_mean(const Tensor& t) { return t.rank() <= 1 ? t : ops::mean(t, {-1}); }
void check_same(const Tensor& a, const Tensor& b, const char* loss) {
  KCPP_CHECK(a.shape() == b.shape(), ShapeError, "{}: y_true {} and y_pred {} must have the same shape", loss,
             a.shape().to_string(), b.shape().to_string());
}
}  // namespace

Loss::~Loss() = default;
Tensor Loss::per_sample_from_logits(const Tensor&, const Tensor&) const {
  throw NotImplementedError(fmt::format("loss {} has no logits form", name_));
}

SparseCategoricalCrossentropy::SparseCategoricalCrossentropy(bool from_logits)
    : Loss("sparse_categorical_crossentropy"), from_logits_(from_logits) {}
Tensor SparseCategoricalCrossentropy::per_sample_from_logits(const Tensor& y_true, const Tensor& logits) const {
  return ops::softmax_cross_entropy(logits, class_ids(y_true, logits, "sparse_categorical_crossentropy"), true);
}
Tensor SparseCategoricalCrossentropy::per_sample(const Tensor& y_true, const Tensor& y_pred) const {
  if (from_logits_) return per_sample_from_logits(y_true, y_pred);
  const Tensor ids = class_ids(y_true, y_pred, "sparse_categorical_crossentropy");
  // -log(clip(p)) at the label: the one-hot mask picks it.
  const Tensor onehot = ops::cast(ops::equal(ops::expand_dims(ops::cast(ids, DType::int64), -1),
                                             ops::arange(y_pred.dim(1), DType::int64, y_pred.backend())),
                                  DType::float32);
  return ops::negative(ops::sum(onehot * ops::log(ops::clip(y_pred, kEpsilon, 1.f - kEpsilon)), {-1}));
}

CategoricalCrossentropy::CategoricalCrossentropy(bool from_logits, float label_smoothing)
    : Loss("categorical_crossentropy"), from_logits_(from_logits), label_smoothing_(label_smoothing) {
  KCPP_CHECK(label_smoothing >= 0 && label_smoothing <= 1, ValueError,
             "categorical_crossentropy: label_smoothing must be in [0, 1], received {}", label_smoothing);
}
Tensor CategoricalCrossentropy::smooth(const Tensor& y_true) const {
  if (label_smoothing_ == 0.f) return y_true;
  const float c = static_cast<float>(y_true.dim(-1));
  return y_true * (1.f - label_smoothing_) + label_smoothing_ / c;
}
Tensor CategoricalCrossentropy::per_sample_from_logits(const Tensor& y_true, const Tensor& logits) const {
  check_same(y_true, logits, "categorical_crossentropy");
  return ops::softmax_cross_entropy(logits, smooth(ops::cast(y_true, DType::float32)), false);
}
Tensor CategoricalCrossentropy::per_sample(const Tensor& y_true, const Tensor& y_pred) const {
  if (from_logits_) return per_sample_from_logits(y_true, y_pred);
  check_same(y_true, y_pred, "categorical_crossentropy");
  // Keras renormalizes the probabilities before clipping.
  const Tensor p = y_pred / ops::sum(y_pred, {-1}, true);
  return ops::negative(
      ops::sum(smooth(ops::cast(y_true, DType::float32)) * ops::log(ops::clip(p, kEpsilon, 1.f - kEpsilon)), {-1}));
}

BinaryCrossentropy::BinaryCrossentropy(bool from_logits) : Loss("binary_crossentropy"), from_logits_(from_logits) {}
Tensor BinaryCrossentropy::per_sample(const Tensor& y_true_in, const Tensor& y_pred) const {
  const Tensor y = ops::cast(y_true_in, DType::float32);
  check_same(y, y_pred, "binary_crossentropy");
  if (from_logits_) {
    // max(z, 0) - z y + log(1 + exp(-|z|)): stable for large |z|.
    return last_axis_mean(ops::relu(y_pred) - y_pred * y + ops::log1p(ops::exp(ops::negative(ops::abs(y_pred)))));
  }
  const Tensor p = ops::clip(y_pred, kEpsilon, 1.f - kEpsilon);
  return last_axis_mean(ops::negative(y * ops::log(p) + (1.f - y) * ops::log(1.f - p)));
}

Tensor MeanSquaredError::per_sample(const Tensor& y_true, const Tensor& y_pred) const {
  const Tensor y = ops::cast(y_true, DType::float32);
  check_same(y, y_pred, "mean_squared_error");
  return last_axis_mean(ops::square(y - y_pred));
}
Tensor MeanAbsoluteError::per_sample(const Tensor& y_true, const Tensor& y_pred) const {
  const Tensor y = ops::cast(y_true, DType::float32);
  check_same(y, y_pred, "mean_absolute_error");
  return last_axis_mean(ops::abs(y - y_pred));
}

ElementwiseLoss::ElementwiseLoss(std::string name, std::function<Tensor(const Tensor&, const Tensor&)> f,
                                 bool sum_last_axis)
    : Loss(std::move(name)), f_(std::move(f)), sum_(sum_last_axis) {}
Tensor ElementwiseLoss::per_sample(const Tensor& y_true, const Tensor& y_pred) const {
  const Tensor y = ops::cast(y_true, DType::float32);
  check_same(y, y_pred, name().c_str());
  const Tensor e = f_(y, y_pred);
  if (e.rank() <= 1) return e;
  return sum_ ? ops::sum(e, {-1}) : ops::mean(e, {-1});
}

namespace {
Tensor hinge_labels(const Tensor& y) {
  // {0, 1} labels become {-1, 1}; others are used as given.
  const bool binary = ops::max(ops::abs(y * 2.f - 1.f)).item() == 1.0;
  return binary ? y * 2.f - 1.f : y;
}
Tensor l2_normalize(const Tensor& x) {
  return x * ops::rsqrt(ops::maximum(ops::sum(ops::square(x), {-1}, true),
                                     ops::full({}, 1e-12f, DType::float32, x.backend())));
}
}  // namespace

std::shared_ptr<Loss> MeanAbsolutePercentageError() {
  return std::make_shared<ElementwiseLoss>("mean_absolute_percentage_error", [](const Tensor& y, const Tensor& p) {
    return ops::abs((y - p) / ops::maximum(ops::abs(y), ops::full({}, kEpsilon, DType::float32, y.backend()))) * 100.f;
  });
}
std::shared_ptr<Loss> MeanSquaredLogarithmicError() {
  return std::make_shared<ElementwiseLoss>("mean_squared_logarithmic_error", [](const Tensor& y, const Tensor& p) {
    const Tensor eps = ops::full({}, kEpsilon, DType::float32, y.backend());
    return ops::square(ops::log1p(ops::maximum(p, eps)) - ops::log1p(ops::maximum(y, eps)));
  });
}
std::shared_ptr<Loss> Huber(float delta) {
  return std::make_shared<ElementwiseLoss>("huber_loss", [delta](const Tensor& y, const Tensor& p) {
    const Tensor err = ops::abs(p - y);
    const Tensor quadratic = ops::minimum(err, ops::full({}, delta, DType::float32, y.backend()));
    return ops::square(quadratic) * 0.5f + (err - quadratic) * delta;
  });
}
std::shared_ptr<Loss> LogCosh() {
  return std::make_shared<ElementwiseLoss>("log_cosh", [](const Tensor& y, const Tensor& p) {
    const Tensor x = p - y;
    return x + ops::softplus(x * -2.f) - static_cast<float>(std::log(2.0));
  });
}
std::shared_ptr<Loss> KLDivergence() {
  return std::make_shared<ElementwiseLoss>(
      "kl_divergence",
      [](const Tensor& y, const Tensor& p) {
        const Tensor yc = ops::clip(y, kEpsilon, 1.f), pc = ops::clip(p, kEpsilon, 1.f);
        return yc * ops::log(yc / pc);
      },
      true);
}
std::shared_ptr<Loss> Poisson() {
  return std::make_shared<ElementwiseLoss>(
      "poisson", [](const Tensor& y, const Tensor& p) { return p - y * ops::log(p + kEpsilon); });
}
std::shared_ptr<Loss> Hinge() {
  return std::make_shared<ElementwiseLoss>(
      "hinge", [](const Tensor& y, const Tensor& p) { return ops::relu(1.f - hinge_labels(y) * p); });
}
std::shared_ptr<Loss> SquaredHinge() {
  return std::make_shared<ElementwiseLoss>("squared_hinge", [](const Tensor& y, const Tensor& p) {
    return ops::square(ops::relu(1.f - hinge_labels(y) * p));
  });
}
std::shared_ptr<Loss> CosineSimilarity() {
  return std::make_shared<ElementwiseLoss>(
      "cosine_similarity",
      [](const Tensor& y, const Tensor& p) { return ops::negative(l2_normalize(y) * l2_normalize(p)); }, true);
}

std::shared_ptr<Loss> get(const std::string& name) {
  if (name == "mean_absolute_percentage_error" || name == "mape") return MeanAbsolutePercentageError();
  if (name == "mean_squared_logarithmic_error" || name == "msle") return MeanSquaredLogarithmicError();
  if (name == "huber" || name == "huber_loss") return Huber();
  if (name == "log_cosh" || name == "logcosh") return LogCosh();
  if (name == "kl_divergence" || name == "kld" || name == "kullback_leibler_divergence") return KLDivergence();
  if (name == "poisson") return Poisson();
  if (name == "hinge") return Hinge();
  if (name == "squared_hinge") return SquaredHinge();
  if (name == "cosine_similarity") return CosineSimilarity();
  if (name == "sparse_categorical_crossentropy") return std::make_shared<SparseCategoricalCrossentropy>();
  if (name == "categorical_crossentropy") return std::make_shared<CategoricalCrossentropy>();
  if (name == "binary_crossentropy") return std::make_shared<BinaryCrossentropy>();
  if (name == "mean_squared_error" || name == "mse") return std::make_shared<MeanSquaredError>();
  if (name == "mean_absolute_error" || name == "mae") return std::make_shared<MeanAbsoluteError>();
  throw ValueError(
      fmt::format("unknown loss '{}': expected one of sparse_categorical_crossentropy, categorical_crossentropy, "
                  "binary_crossentropy, mean_squared_error (mse), mean_absolute_error (mae)",
                  name));
}

Config SparseCategoricalCrossentropy::serialized() const {
  return serialization::keras_object("keras.losses", "SparseCategoricalCrossentropy",
                                     Config{{"name", name()},
                                            {"reduction", "sum_over_batch_size"},
                                            {"from_logits", from_logits_},
                                            {"ignore_class", nullptr}});
}
Config CategoricalCrossentropy::serialized() const {
  return serialization::keras_object("keras.losses", "CategoricalCrossentropy",
                                     Config{{"name", name()},
                                            {"reduction", "sum_over_batch_size"},
                                            {"from_logits", from_logits_},
                                            {"label_smoothing", label_smoothing_},
                                            {"axis", -1}});
}
Config BinaryCrossentropy::serialized() const {
  return serialization::keras_object("keras.losses", "BinaryCrossentropy",
                                     Config{{"name", name()},
                                            {"reduction", "sum_over_batch_size"},
                                            {"from_logits", from_logits_},
                                            {"label_smoothing", 0.0},
                                            {"axis", -1}});
}

std::shared_ptr<Loss> deserialize(const Config& config) {
  if (config.is_string()) return get(config.get<std::string>());
  KCPP_CHECK(config.is_object() && config.contains("class_name") && config["class_name"].is_string(), ValueError,
             "loss config: expected a name or an object with a class_name, received {}", config.dump().substr(0, 200));
  const std::string cls = config["class_name"].get<std::string>();
  static const Config empty = Config::object();
  serialization::ConfigReader r(config.contains("config") && config["config"].is_object() ? config["config"] : empty,
                                "loss " + cls);
  (void)r.string("name", "");
  r.require("reduction", "sum_over_batch_size");
  std::shared_ptr<Loss> out;
  if (cls == "SparseCategoricalCrossentropy") {
    r.require("ignore_class", nullptr);
    out = std::make_shared<SparseCategoricalCrossentropy>(r.boolean("from_logits", false));
  } else if (cls == "CategoricalCrossentropy") {
    r.require("axis", -1);
    const bool logits = r.boolean("from_logits", false);
    out = std::make_shared<CategoricalCrossentropy>(logits, static_cast<float>(r.number("label_smoothing", 0.0)));
  } else if (cls == "BinaryCrossentropy") {
    r.require("axis", -1);
    r.require("label_smoothing", 0.0);
    out = std::make_shared<BinaryCrossentropy>(r.boolean("from_logits", false));
  } else if (cls == "Huber") {
    out = Huber(static_cast<float>(r.number("delta", 1.0)));
  } else {
    // The other losses take no options: their class name in snake case is their Keras name.
    out = get(serialization::to_snake_case(cls));
  }
  r.finish();
  return out;
}

}  // namespace keras::losses
