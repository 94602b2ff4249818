#include "layers/core/lambda_rescaling.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

Rescaling::Rescaling(float scale, float offset, std::string name)
    : Layer("Rescaling", std::move(name)), scale_(scale), offset_(offset) {}
Tensor Rescaling::call(const Tensor& x, bool training) {
  const Tensor xf = is_floating(x.dtype()) ? x : ops::cast(x, DType::float32);
  return offset_ == 0.f ? xf * scale_ : xf * scale_ + offset_;
}

Lambda::Lambda(std::function<Tensor(const Tensor&)> function,
               std::function<PartialShape(const PartialShape&)> output_shape, std::string name)
    : Layer("Lambda", std::move(name)), function_(std::move(function)), output_shape_(std::move(output_shape)) {
  KCPP_CHECK(function_, ValueError, "Lambda: the function is empty");
}

}  // namespace keras::layers
