#pragma once
#include <array>

#include "../../core/ops.h"
#include "../layer.h"

namespace keras::layers {

struct Pooling2DOptions {
  std::optional<std::array<int64_t, 2>> strides;  // defaults to pool_size, as Keras
  std::string padding = "valid";
  std::string name;
};

/// Max (or average) over windows of channels_last images.
class KERASCPP_API Pooling2D : public Layer {
 public:
  Pooling2D(std::string class_name, bool is_max, std::array<int64_t, 2> pool_size, Pooling2DOptions options);
  Config get_config() const override;
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& input_shape) const override;
  bool is_max() const { return is_max_; }
  /// What call() passes to ops::max_pool / ops::average_pool.
  ops::PoolOptions pool_options() const;

 protected:
  void check_input(const PartialShape& input_shape) const override;

 private:
  bool is_max_;
  std::array<int64_t, 2> pool_size_, strides_;
  std::string padding_;
};

class KERASCPP_API MaxPooling2D : public Pooling2D {
 public:
  KERASCPP_LAYER(MaxPooling2D)
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit MaxPooling2D(std::array<int64_t, 2> pool_size = {2, 2}, Pooling2DOptions options = {})
      : Pooling2D("MaxPooling2D", true, pool_size, std::move(options)) {}
};

class KERASCPP_API AveragePooling2D : public Pooling2D {
 public:
  KERASCPP_LAYER(AveragePooling2D)
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit AveragePooling2D(std::array<int64_t, 2> pool_size = {2, 2}, Pooling2DOptions options = {})
      : Pooling2D("AveragePooling2D", false, pool_size, std::move(options)) {}
};

}  // namespace keras::layers
