#include "models/training/losses.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::losses {
namespace {
constexpr float kEpsilon = 1e-7f;  // Keras' backend epsilon

Tensor class_ids(const Tensor& y_true, const Tensor& y_pred, const char* loss) {
  Tensor ids = y_true;
  if (ids.rank() == 2 && ids.dim(1) == 1) ids = ops::reshape(ids, {ids.dim(0)});
  KCPP_CHECK(ids.rank() == 1 && y_pred.rank() == 2 && ids.dim(0) == y_pred.dim(0), ShapeError,
             "{}: expected labels of shape ({},) for predictions {}, received {}", loss, y_pred.rank() ? y_pred.dim(0) : 0,
             y_pred.shape().to_string(), y_true.shape().to_string());
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
                                             ops::to_backend(ops::arange(y_pred.dim(1)), *y_pred.backend())),
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
  return ops::negative(ops::sum(smooth(ops::cast(y_true, DType::float32)) * ops::log(ops::clip(p, kEpsilon, 1.f - kEpsilon)), {-1}));
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

std::shared_ptr<Loss> get(const std::string& name) {
  if (name == "sparse_categorical_crossentropy") return std::make_shared<SparseCategoricalCrossentropy>();
  if (name == "categorical_crossentropy") return std::make_shared<CategoricalCrossentropy>();
  if (name == "binary_crossentropy") return std::make_shared<BinaryCrossentropy>();
  if (name == "mean_squared_error" || name == "mse") return std::make_shared<MeanSquaredError>();
  if (name == "mean_absolute_error" || name == "mae") return std::make_shared<MeanAbsoluteError>();
  throw ValueError(fmt::format(
      "unknown loss '{}': expected one of sparse_categorical_crossentropy, categorical_crossentropy, "
      "binary_crossentropy, mean_squared_error (mse), mean_absolute_error (mae)",
      name));
}

}  // namespace keras::losses
