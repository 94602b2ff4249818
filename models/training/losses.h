#pragma once
#include <functional>
#include <memory>
#include <string>

#include "../../core/export.h"
#include "../../core/tensor.h"
#include "../../layers/serialization.h"

namespace keras::losses {

/// A loss: per-sample values (N,) from targets and predictions; the model averages them over the
/// batch (Keras' "sum_over_batch_size"), weighting samples when asked.
class KERASCPP_API Loss {
 public:
  explicit Loss(std::string name) : name_(std::move(name)) {}
  virtual ~Loss();
  virtual Tensor per_sample(const Tensor& y_true, const Tensor& y_pred) const = 0;
  /// Cross-entropies on probabilities can run on logits instead (see Layer::ends_with_softmax).
  virtual bool accepts_softmax_logits() const { return false; }
  virtual Tensor per_sample_from_logits(const Tensor& y_true, const Tensor& logits) const;
  const std::string& name() const { return name_; }
  /// Keras' serialized form: the loss's name, or an object where options matter (cross-entropies).
  virtual Config serialized() const { return name_; }

 private:
  std::string name_;
};

/// Integer class ids (any int or uint8 dtype, shape (N,) or (N, 1)) against (N, C) probabilities
/// (clipped to [1e-7, 1 - 1e-7], as Keras) or logits.
class KERASCPP_API SparseCategoricalCrossentropy : public Loss {
 public:
  explicit SparseCategoricalCrossentropy(bool from_logits = false);
  Tensor per_sample(const Tensor& y_true, const Tensor& y_pred) const override;
  Config serialized() const override;
  bool accepts_softmax_logits() const override { return !from_logits_; }
  Tensor per_sample_from_logits(const Tensor& y_true, const Tensor& logits) const override;

 private:
  bool from_logits_;
};

/// One-hot (or soft) targets (N, C) against probabilities or logits; label_smoothing as Keras.
class KERASCPP_API CategoricalCrossentropy : public Loss {
 public:
  explicit CategoricalCrossentropy(bool from_logits = false, float label_smoothing = 0.f);
  Tensor per_sample(const Tensor& y_true, const Tensor& y_pred) const override;
  Config serialized() const override;
  bool accepts_softmax_logits() const override { return !from_logits_; }
  Tensor per_sample_from_logits(const Tensor& y_true, const Tensor& logits) const override;

 private:
  Tensor smooth(const Tensor& y_true) const;
  bool from_logits_;
  float label_smoothing_;
};

/// Binary targets against probabilities (clipped) or logits; mean over the last axis.
class KERASCPP_API BinaryCrossentropy : public Loss {
 public:
  explicit BinaryCrossentropy(bool from_logits = false);
  Tensor per_sample(const Tensor& y_true, const Tensor& y_pred) const override;
  Config serialized() const override;

 private:
  bool from_logits_;
};

/// mean((y_true - y_pred)^2) over the last axis.
class KERASCPP_API MeanSquaredError : public Loss {
 public:
  MeanSquaredError() : Loss("mean_squared_error") {}
  Tensor per_sample(const Tensor& y_true, const Tensor& y_pred) const override;
};

/// mean(|y_true - y_pred|) over the last axis.
class KERASCPP_API MeanAbsoluteError : public Loss {
 public:
  MeanAbsoluteError() : Loss("mean_absolute_error") {}
  Tensor per_sample(const Tensor& y_true, const Tensor& y_pred) const override;
};

/// A loss from an elementwise formula averaged over the last axis (most of Keras' regression and
/// probability losses). The formula gets float32 y_true and y_pred of one shape.
class KERASCPP_API ElementwiseLoss : public Loss {
 public:
  ElementwiseLoss(std::string name, std::function<Tensor(const Tensor&, const Tensor&)> per_element,
                  bool sum_last_axis = false);
  Tensor per_sample(const Tensor& y_true, const Tensor& y_pred) const override;

 private:
  std::function<Tensor(const Tensor&, const Tensor&)> f_;
  bool sum_;
};
/// 100 mean(|(y - p) / max(|y|, eps)|).
KERASCPP_API std::shared_ptr<Loss> MeanAbsolutePercentageError();
/// mean((log(max(p, eps) + 1) - log(max(y, eps) + 1))^2).
KERASCPP_API std::shared_ptr<Loss> MeanSquaredLogarithmicError();
/// Quadratic within delta of the target, linear beyond (Keras' default delta 1).
KERASCPP_API std::shared_ptr<Loss> Huber(float delta = 1.f);
/// mean(log(cosh(p - y))), computed stably.
KERASCPP_API std::shared_ptr<Loss> LogCosh();
/// sum(y log(y / p)) with both clipped to [eps, 1].
KERASCPP_API std::shared_ptr<Loss> KLDivergence();
/// mean(p - y log(p + eps)).
KERASCPP_API std::shared_ptr<Loss> Poisson();
/// mean(max(1 - y p, 0)); labels in {0, 1} become {-1, 1}, as Keras.
KERASCPP_API std::shared_ptr<Loss> Hinge();
KERASCPP_API std::shared_ptr<Loss> SquaredHinge();
/// -sum(normalize(y) * normalize(p)) over the last axis.
KERASCPP_API std::shared_ptr<Loss> CosineSimilarity();

/// By Keras name: sparse_categorical_crossentropy, categorical_crossentropy, binary_crossentropy,
/// mean_squared_error (mse), mean_absolute_error (mae), mean_absolute_percentage_error (mape),
/// mean_squared_logarithmic_error (msle), huber, log_cosh, kl_divergence (kld), poisson, hinge,
/// squared_hinge, cosine_similarity.
KERASCPP_API std::shared_ptr<Loss> get(const std::string& name);
/// From a name or Keras' serialized loss object (class names as Keras: "SparseCategoricalCrossentropy").
KERASCPP_API std::shared_ptr<Loss> deserialize(const Config& config);

}  // namespace keras::losses
