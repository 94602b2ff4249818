#pragma once
#include <optional>

#include "../layer.h"

namespace keras::layers {

/// The flags of an Attention or AdditiveAttention call (Keras' keyword arguments).
struct AttentionFlags {
  bool use_causal_mask = false;
  bool return_attention_scores = false;  // the call gets a second output (all_outputs()[1])
};

struct AttentionOptions {
  bool use_scale = false;          // Attention: a trainable scalar scale; AdditiveAttention: one per feature
  std::string score_mode = "dot";  // Attention: "dot" or "concat"
  float dropout = 0;               // on the attention distribution, in training
  std::optional<uint64_t> seed;
  std::string name;
  std::string dtype;
};

/// The base of Keras' Attention (Luong) and AdditiveAttention (Bahdanau): called on
/// [query, value] or [query, value, key] of shapes (batch, T, dim) and (batch, S, dim); returns
/// (batch, T, dim). The value's mask hides steps from every query, the query's mask zeroes
/// outputs, as Keras.
class KERASCPP_API AttentionBase : public Layer {
 public:
  /// Functional API with flags: `layers::Attention()({query, value}, {.use_causal_mask = true})`.
  KerasTensor operator()(const std::vector<KerasTensor>& inputs, const AttentionFlags& flags) &;
  KerasTensor operator()(const std::vector<KerasTensor>& inputs, const AttentionFlags& flags) &&;
  using Layer::operator();

  std::optional<CallSignature> call_signature() const override;
  std::vector<Tensor> call_with_arguments(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks,
                                          const CallArguments& args, bool training) override;
  std::vector<PartialShape> compute_output_shapes_for(const std::vector<PartialShape>& input_shapes,
                                                      const CallArguments& args) const override;
  std::vector<PartialShape> compute_output_shapes(const std::vector<PartialShape>& input_shapes) const override {
    return compute_output_shapes_for(input_shapes, {});
  }
  std::vector<Tensor> call_multi(const std::vector<Tensor>& inputs, bool training) override {
    return call_with_arguments(inputs, std::vector<Tensor>(inputs.size()), {}, training);
  }
  Tensor compute_mask_multi(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks) const override {
    return masks.empty() ? Tensor() : masks[0];  // the query's
  }
  bool supports_masking() const override { return true; }
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& input_shape) const override;
  std::vector<random::SeedGenerator*> seed_generators() override { return {&seeds_}; }
  Config get_config() const override;

 protected:
  AttentionBase(const std::string& class_name, AttentionOptions options);
  /// The scores (batch, T, S) of query (batch, T, dim) against key (batch, S, dim).
  virtual Tensor scores(const Tensor& query, const Tensor& key) const = 0;
  void check_inputs(const std::vector<PartialShape>& shapes) const;

  AttentionOptions options_;
  random::SeedGenerator seeds_;
  Variable* scale_ = nullptr;
};

/// Keras' Attention: dot-product scores (optionally scaled), or "concat" scores
/// sum(tanh(query + key)) times a trainable weight.
class KERASCPP_API Attention : public AttentionBase {
 public:
  KERASCPP_LAYER(Attention)
  explicit Attention(AttentionOptions options = {});
  static std::shared_ptr<Layer> from_config(const Config& config);

 protected:
  void build_multi(const std::vector<PartialShape>& input_shapes) override;
  Tensor scores(const Tensor& query, const Tensor& key) const override;

 private:
  Variable* concat_score_weight_ = nullptr;
};

/// Keras' AdditiveAttention: scores sum(scale * tanh(query + key)), scale one trainable weight per
/// feature (use_scale, true by default).
class KERASCPP_API AdditiveAttention : public AttentionBase {
 public:
  KERASCPP_LAYER(AdditiveAttention)
  explicit AdditiveAttention(AttentionOptions options = {.use_scale = true});
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);

 protected:
  void build_multi(const std::vector<PartialShape>& input_shapes) override;
  Tensor scores(const Tensor& query, const Tensor& key) const override;
};

}  // namespace keras::layers
