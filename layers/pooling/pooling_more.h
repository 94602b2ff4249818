#pragma once
// 1-d pooling and the global poolings.
#include "../layer.h"

namespace keras::layers {

struct Pooling1DOptions {
  std::optional<int64_t> strides;  // defaults to pool_size
  std::string padding = "valid";
  std::string name;
};

/// Max (or average) over windows of (N, steps, channels).
class KERASCPP_API Pooling1D : public Layer {
 public:
  Pooling1D(std::string class_name, bool is_max, int64_t pool_size, Pooling1DOptions options);
  Config get_config() const override;
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;

 protected:
  void check_input(const PartialShape& s) const override;

 private:
  bool is_max_;
  int64_t pool_size_, strides_;
  std::string padding_;
};
class KERASCPP_API MaxPooling1D : public Pooling1D {
 public:
  KERASCPP_LAYER(MaxPooling1D)
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit MaxPooling1D(int64_t pool_size = 2, Pooling1DOptions options = {})
      : Pooling1D("MaxPooling1D", true, pool_size, std::move(options)) {}
};
class KERASCPP_API AveragePooling1D : public Pooling1D {
 public:
  KERASCPP_LAYER(AveragePooling1D)
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit AveragePooling1D(int64_t pool_size = 2, Pooling1DOptions options = {})
      : Pooling1D("AveragePooling1D", false, pool_size, std::move(options)) {}
};

struct GlobalPoolingOptions {
  bool keepdims = false;  // keep the pooled axes with length 1, as Keras' keepdims
  std::string name;
};

/// Mean or max over every axis between the batch and the channels: (N, ..., C) -> (N, C), or
/// (N, 1, ..., 1, C) with keepdims. GlobalAveragePooling1D averages the unmasked steps of a masked
/// sequence, as Keras' (the others take no mask, as Keras').
class KERASCPP_API GlobalPooling : public Layer {
 public:
  GlobalPooling(std::string class_name, bool is_max, size_t rank, GlobalPoolingOptions options);
  Config get_config() const override;
  Tensor call(const Tensor& x, bool training) override;
  bool supports_masking() const override { return !is_max_ && rank_ == 3; }
  Tensor call_masked(const Tensor& x, const Tensor& mask, bool training) override;
  Tensor compute_mask(const Tensor&, const Tensor&) const override { return {}; }
  PartialShape compute_output_shape(const PartialShape& s) const override;

 protected:
  void check_input(const PartialShape& s) const override;

 private:
  bool is_max_;
  size_t rank_;
  bool keepdims_;
};

#define KERASCPP_GLOBAL_POOLING(ClassName, is_max, rank)                                                   \
  class KERASCPP_API ClassName : public GlobalPooling {                                                   \
   public:                                                                                                 \
    KERASCPP_LAYER(ClassName)                                                                              \
    static std::shared_ptr<Layer> from_config(const Config& config);                                      \
    explicit ClassName(std::string name = "") : GlobalPooling(#ClassName, is_max, rank, {.name = std::move(name)}) {} \
    explicit ClassName(GlobalPoolingOptions options) : GlobalPooling(#ClassName, is_max, rank, std::move(options)) {} \
  };
KERASCPP_GLOBAL_POOLING(GlobalAveragePooling1D, false, 3)
KERASCPP_GLOBAL_POOLING(GlobalMaxPooling1D, true, 3)
KERASCPP_GLOBAL_POOLING(GlobalAveragePooling2D, false, 4)
KERASCPP_GLOBAL_POOLING(GlobalMaxPooling2D, true, 4)
#undef KERASCPP_GLOBAL_POOLING

}  // namespace keras::layers
