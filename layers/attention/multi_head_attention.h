#pragma once
#include <memory>
#include <optional>

#include "../layer.h"

namespace keras::layers {

/// The keyword arguments of an attention call, as Keras' `mha(query, value, key=..., ...)`; T is
/// KerasTensor in the Functional API and Tensor when called on values.
template <typename T>
struct AttentionArguments {
  T key;             // defaults to value
  T attention_mask;  // bool (batch, T, S): false where a query may not attend
  bool use_causal_mask = false;
  bool return_attention_scores = false;  // the call gets a second output (all_outputs()[1])
};

struct MultiHeadAttentionOptions {
  std::optional<int64_t> value_dim;  // std::nullopt: key_dim
  float dropout = 0;                 // on the attention probabilities, in training
  bool use_bias = true;
  std::vector<int64_t> output_shape;    // empty: the query's last dimension
  std::vector<int64_t> attention_axes;  // empty: every axis between the batch and the features
  std::optional<int64_t> sliding_window;  // a query attends to keys less than this many steps away
  /// Gated attention (Keras 3.15): the heads' outputs times sigmoid(a projection of the query),
  /// before the output projection.
  bool use_gate = false;
  Initializer kernel_initializer = "glorot_uniform";
  Initializer bias_initializer = "zeros";
  Regularizer kernel_regularizer;
  Regularizer bias_regularizer;
  Regularizer activity_regularizer;  // on each projection's output, as Keras
  Constraint kernel_constraint;
  Constraint bias_constraint;
  std::optional<uint64_t> seed;
  std::string name;
  std::string dtype;
  /// tf.keras 2's option, set when its files are read: masked scores get -1e9 added (false) or are
  /// replaced (true), fully masked rows are never zeroed, and the layer leaves its inputs' masks in
  /// place. std::nullopt: Keras 3's rules. Not written to files (Keras 3 has no such option).
  std::optional<bool> softmax_robust_masking;
};

/// Keras' MultiHeadAttention: query, key and value projected to `num_heads` heads, scaled
/// dot-product attention over the attention axes, and an output projection. Inputs carrying masks
/// (Embedding(mask_zero)) mask the attention as Keras does; the output carries the query's mask.
///     auto y = layers::MultiHeadAttention(4, 16)(x, x, {.use_causal_mask = true});
/// Weights are saved as Keras' query_dense, key_dense, value_dense and output_dense groups.
class KERASCPP_API MultiHeadAttention : public Layer {
 public:
  KERASCPP_LAYER(MultiHeadAttention)
  MultiHeadAttention(int64_t num_heads, int64_t key_dim, MultiHeadAttentionOptions options = {});
  Config get_config() const override;
  Config get_build_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);

  /// Functional API. Returns the attention output; with return_attention_scores, all_outputs()[1]
  /// holds the scores (batch, num_heads, T, S).
  KerasTensor operator()(const KerasTensor& query, const KerasTensor& value,
                         const AttentionArguments<KerasTensor>& args = {}) &;
  KerasTensor operator()(const KerasTensor& query, const KerasTensor& value,
                         const AttentionArguments<KerasTensor>& args = {}) &&;
  /// On values: the output, then the scores when asked for.
  std::vector<Tensor> operator()(const Tensor& query, const Tensor& value, const AttentionArguments<Tensor>& args = {},
                                 bool training = false);

  std::optional<CallSignature> call_signature() const override;
  std::vector<Tensor> call_with_arguments(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks,
                                          const CallArguments& args, bool training) override;
  std::vector<PartialShape> compute_output_shapes_for(const std::vector<PartialShape>& input_shapes,
                                                      const CallArguments& args) const override;
  Tensor compute_mask_multi(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks) const override {
    return masks.empty() ? Tensor() : masks[0];  // the query's
  }
  bool supports_masking() const override { return true; }
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& input_shape) const override;
  std::vector<Layer*> sublayers() const override;
  std::vector<std::pair<std::string, Layer*>> wrapped_layers() override;
  std::vector<random::SeedGenerator*> seed_generators() override;
  void set_dtype_policy(const mixed_precision::DTypePolicy& policy) override;

  int64_t num_heads() const { return num_heads_; }
  int64_t key_dim() const { return key_dim_; }
  int64_t value_dim() const { return value_dim_; }

 protected:
  /// GroupQueryAttention's (`grouped`): `num_key_value_heads` key and value heads, each serving
  /// num_heads / num_key_value_heads query heads.
  MultiHeadAttention(bool grouped, int64_t num_heads, int64_t num_key_value_heads, int64_t key_dim,
                     MultiHeadAttentionOptions options);
  void build_for_arguments(const std::vector<PartialShape>& input_shapes, const CallArguments& args) override;
  /// The options and call arguments both layers write.
  void write_common_config(Config& c) const;
  static void read_common_config(serialization::ConfigReader& r, MultiHeadAttentionOptions& o);
  bool grouped_;  // GroupQueryAttention: Keras' rules and file layout for that class
  int64_t num_key_value_heads_;
  MultiHeadAttentionOptions options_;

 private:
  /// The projections by the names of Keras' weights groups, in Keras' order (empty until built).
  std::vector<std::pair<std::string, Layer*>> projections() const;
  struct Roles {
    int query = 0, value = 1, key = -1, attention_mask = -1, value_mask = -1, key_mask = -1;
  };
  Roles roles(const CallArguments& args) const;
  PartialShape scores_shape(const PartialShape& query, const PartialShape& key) const;
  void check_step_masks(const CallArguments& args) const;

  int64_t num_heads_, key_dim_, value_dim_;
  std::vector<int64_t> axes_;  // the attention axes of the projected inputs, once built
  random::SeedGenerator seeds_;
  std::shared_ptr<Layer> query_, key_, value_, output_, gate_;
  Config shapes_dict_;  // Keras' build config
};

/// Keras' GroupQueryAttention: `num_query_heads` query heads of `head_dim` share
/// `num_key_value_heads` key and value heads (as in Llama and Mistral); otherwise MultiHeadAttention's
/// computation, masks (it leaves its inputs' masks in place), causal and sliding-window masks,
/// gate and dropout. value_dim, output_shape and attention_axes are MultiHeadAttention's only.
///     auto y = layers::GroupQueryAttention(16, 8, 2)(x, x, {.use_causal_mask = true});
class KERASCPP_API GroupQueryAttention : public MultiHeadAttention {
 public:
  KERASCPP_LAYER(GroupQueryAttention)
  GroupQueryAttention(int64_t head_dim, int64_t num_query_heads, int64_t num_key_value_heads,
                      MultiHeadAttentionOptions options = {});
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  std::optional<CallSignature> call_signature() const override;
  using MultiHeadAttention::operator();
};

}  // namespace keras::layers
