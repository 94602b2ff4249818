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


Config Rescaling::get_config() const {
  Config c = Layer::get_config();
  c["scale"] = scale_;
  c["offset"] = offset_;
  return c;
}
std::shared_ptr<Layer> Rescaling::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Rescaling config");
  const std::string name = r.name();
  KCPP_CHECK(!r.has("scale") || r.raw("scale").is_number(), NotImplementedError,
             "Rescaling config: a per-channel \"scale\" list is not supported yet, received {}", r.raw("scale").dump());
  const float scale = static_cast<float>(r.number("scale"));
  auto layer = std::make_shared<Rescaling>(scale, static_cast<float>(r.number("offset", 0.0)), name);
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
