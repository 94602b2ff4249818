#pragma once
#include <memory>
#include <string>

#include "../../core/export.h"
#include "../../core/tensor.h"

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

 private:
  std::string name_;
};

/// Integer class ids (any int or uint8 dtype, shape (N,) or (N, 1)) against (N, C) probabilities
/// (clipped to [1e-7, 1 - 1e-7], as Keras) or logits.
class KERASCPP_API SparseCategoricalCrossentropy : public Loss {
 public:
  explicit SparseCategoricalCrossentropy(bool from_logits = false);
  Tensor per_sample(const Tensor& y_true, const Tensor& y_pred) const override;
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

/// By Keras name: sparse_categorical_crossentropy, categorical_crossentropy, binary_crossentropy,
/// mean_squared_error (mse), mean_absolute_error (mae).
KERASCPP_API std::shared_ptr<Loss> get(const std::string& name);

}  // namespace keras::losses
