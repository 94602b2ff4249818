#pragma once
// keras.layers.Normalization: (x - mean) / sqrt(variance), with the statistics given or learned from
// data by adapt(), as Keras' preprocessing layer.
#include <optional>

#include "../layer.h"

namespace keras::layers {

struct NormalizationOptions {
  /// The axes kept: a mean and variance per position along them (Keras' `axis`, default the last).
  /// Empty: one mean and variance for all values (Keras' axis=None).
  std::vector<int64_t> axis = {-1};
  /// Statistics given instead of adapt(): one value, one per position of the last kept axis, or one
  /// per position of all kept axes (row-major). Both or neither.
  std::optional<std::vector<float>> mean, variance;
  /// mean + x * sqrt(variance): undoes the normalization.
  bool invert = false;
  std::string name;
};

class KERASCPP_API Normalization : public Layer {
 public:
  KERASCPP_LAYER(Normalization)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Normalization(NormalizationOptions options = {});

  /// Learns the mean and (population) variance of `data` over every axis not kept, as Keras' adapt()
  /// on an array: the layer is built for data's shape first, or checked against it.
  void adapt(const Tensor& data);
  /// The same over batches (Keras' adapt() on a dataset), merged as Keras merges them.
  void adapt(const std::vector<Tensor>& batches);

  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  bool supports_masking() const override { return true; }

 protected:
  void build(const PartialShape& s) override;
  void check_input(const PartialShape& s) const override;

 private:
  std::vector<int64_t> keep_axes(size_t rank) const;  // non-negative, sorted
  Shape broadcast_shape(const PartialShape& s) const;  // kept axes' sizes, 1 elsewhere
  void check_adapt_shape(const Tensor& batch) const;
  void assign_statistics(const Tensor& mean, const Tensor& variance);
  NormalizationOptions o_;
  PartialShape built_shape_;
  Variable *mean_ = nullptr, *variance_ = nullptr, *count_ = nullptr;  // adapted statistics (Keras' weights)
  Tensor given_mean_, given_variance_;  // or the given ones, in the broadcast shape
};

}  // namespace keras::layers
