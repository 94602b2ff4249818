#pragma once
// Rescaling and Lambda.
#include <functional>

#include "../layer.h"

namespace keras::layers {

/// x * scale + offset, as keras.layers.Rescaling (for example scale 1/255 on images).
class KERASCPP_API Rescaling : public Layer {
 public:
  KERASCPP_LAYER(Rescaling)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Rescaling(float scale, float offset = 0.f, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }

 private:
  float scale_, offset_;
};

/// A C++ callable as a layer. Its output shape is the input's unless `output_shape` says otherwise.
/// Never saved to a file as code: loading a model with a Lambda layer is refused.
class KERASCPP_API Lambda : public Layer {
 public:
  KERASCPP_LAYER(Lambda)
  explicit Lambda(std::function<Tensor(const Tensor&)> function,
                  std::function<PartialShape(const PartialShape&)> output_shape = nullptr, std::string name = "");
  Tensor call(const Tensor& x, bool training) override { return function_(x); }
  PartialShape compute_output_shape(const PartialShape& s) const override {
    return output_shape_ ? output_shape_(s) : s;
  }

 private:
  std::function<Tensor(const Tensor&)> function_;
  std::function<PartialShape(const PartialShape&)> output_shape_;
};

}  // namespace keras::layers
