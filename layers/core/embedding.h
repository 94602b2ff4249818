#pragma once
#include "../layer.h"

namespace keras::layers {

/// Keras' Embedding keyword arguments (defaults as Keras: uniform in [-0.05, 0.05], no mask).
struct EmbeddingOptions {
  Initializer embeddings_initializer = "uniform";
  Regularizer embeddings_regularizer;
  Regularizer activity_regularizer;  // a penalty on the output (Layer::set_activity_regularizer)
  Constraint embeddings_constraint;
  /// Id 0 is padding: the output carries a mask (ids != 0) that RNNs and losses honour.
  bool mask_zero = false;
  std::string name;
};

/// Maps integer ids (any shape; float inputs holding integers are accepted) to rows of
/// `embeddings` (input_dim, output_dim): output shape input shape + (output_dim,). An id outside
/// [0, input_dim) is a ValueError on every backend.
class KERASCPP_API Embedding : public Layer {
 public:
  KERASCPP_LAYER(Embedding)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  Embedding(int64_t input_dim, int64_t output_dim, EmbeddingOptions options = {});
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& input_shape) const override;
  bool supports_masking() const override { return true; }
  Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;
  Variable* embeddings() { return embeddings_; }

 protected:
  void build(const PartialShape& input_shape) override;

 private:
  int64_t input_dim_, output_dim_;
  EmbeddingOptions options_;
  Variable* embeddings_ = nullptr;
};

}  // namespace keras::layers
