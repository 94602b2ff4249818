#pragma once
#include <memory>

#include "../layer.h"
#include "../../core/backend.h"

namespace keras::distribute {
class Strategy;
}

namespace keras::layers {

/// Keras' defaults: axis -1, momentum 0.99, epsilon 1e-3, center, scale.
struct BatchNormalizationOptions {
  /// The features axis, kept apart (negative counts from the end; 1 for channels_first images).
  int64_t axis = -1;
  float momentum = 0.99f;
  float epsilon = 1e-3f;
  bool center = true;
  bool scale = true;
  Initializer beta_initializer = "zeros";
  Initializer gamma_initializer = "ones";
  Initializer moving_mean_initializer = "zeros";
  Initializer moving_variance_initializer = "ones";
  Regularizer beta_regularizer;
  Regularizer gamma_regularizer;
  Constraint beta_constraint;
  Constraint gamma_constraint;
  /// Keras 3's synchronized: in a data-parallel model (created inside a strategy's scope), training
  /// statistics are over the global batch, all replicas together, instead of each replica's part.
  bool synchronized = false;
  std::string name;
};

/// Normalizes over all axes but `axis` (the last by default). In training, batch statistics are used and the moving
/// ones updated (moving = momentum * moving + (1 - momentum) * batch); otherwise, and whenever the
/// layer is frozen (trainable false, as in Keras), the moving statistics are used.
class KERASCPP_API BatchNormalization : public Layer {
 public:
  KERASCPP_LAYER(BatchNormalization)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit BatchNormalization(BatchNormalizationOptions options = {});
  Tensor call(const Tensor& x, bool training) override;
  /// The float32 computation call() wraps.
  Tensor normalize(const Tensor& x, bool training);
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool supports_masking() const override { return true; }
  /// True when call() uses the moving statistics: outside training, or frozen (as Keras).
  bool uses_moving_statistics(bool training) const { return !training || !trainable(); }
  /// The inference transform (moving statistics, gamma, beta, epsilon) for folding into the
  /// convolution before it, which computes it in its own pass; undefined before the layer is built
  /// and where the layer normalizes another axis than a Conv2D output's channels.
  FoldedBatchNorm inference_fold() const;

 protected:
  void build(const PartialShape& input_shape) override;
  void check_input(const PartialShape& input_shape) const override;

 private:
  size_t axis_for(size_t rank) const;
  BatchNormalizationOptions options_;
  std::shared_ptr<distribute::Strategy> strategy_;  // synchronized: the scope it was created in
  Variable *gamma_ = nullptr, *beta_ = nullptr, *moving_mean_ = nullptr, *moving_variance_ = nullptr;
};

/// tf.keras 2's SyncBatchNormalization: a BatchNormalization with synchronized statistics.
inline BatchNormalization SyncBatchNormalization(BatchNormalizationOptions options = {}) {
  options.synchronized = true;
  return BatchNormalization(std::move(options));
}

}  // namespace keras::layers
