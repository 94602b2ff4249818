#include "layers/regularization/spatial_dropout.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

SpatialDropout2D::SpatialDropout2D(float rate, std::optional<uint64_t> seed, std::string name)
    : Layer("SpatialDropout2D", std::move(name)), rate_(rate), seed_(seed), seeds_(seed) {
  KCPP_CHECK(rate >= 0.f && rate < 1.f, ValueError, "SpatialDropout2D: the rate must be in [0, 1), received {}", rate);
}
void SpatialDropout2D::check_input(const PartialShape& s) const {
  if (s.size() != 4)
    throw input_error(
        fmt::format("expected ndim=4, found ndim={}. Full shape received: {}", s.size(), shape_to_string(s)));
}
Tensor SpatialDropout2D::call(const Tensor& x, bool training) {
  if (!training || rate_ == 0.f) return x;
  // One mask value per (sample, channel), broadcast over height and width.
  const Tensor mask =
      ops::dropout(ops::ones(Shape{x.dim(0), 1, 1, x.dim(3)}, x.dtype(), x.backend()), rate_, seeds_);
  return x * mask;
}


Config SpatialDropout2D::get_config() const {
  // Keras' SpatialDropout2D takes no "trainable" or "noise_shape" argument.
  Config c = Layer::get_config();
  c.erase("trainable");
  c["rate"] = rate_;
  c["seed"] = seed_ ? Config(*seed_) : Config(nullptr);
  c["data_format"] = "channels_last";
  return c;
}
std::shared_ptr<Layer> SpatialDropout2D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "SpatialDropout2D config");
  const std::string name = r.name();
  r.require("data_format", "channels_last");
  r.require("noise_shape", nullptr);
  auto seed = r.seed();
  auto layer = std::make_shared<SpatialDropout2D>(static_cast<float>(r.number("rate")), seed, name);
  r.finish(*layer);
  return layer;
}

SpatialDropout1D::SpatialDropout1D(float rate, std::optional<uint64_t> seed, std::string name)
    : Layer("SpatialDropout1D", std::move(name)), rate_(rate), seed_(seed), seeds_(seed) {
  KCPP_CHECK(rate >= 0.f && rate < 1.f, ValueError, "SpatialDropout1D: the rate must be in [0, 1), received {}", rate);
}
void SpatialDropout1D::check_input(const PartialShape& s) const {
  if (s.size() != 3)
    throw input_error(
        fmt::format("expected ndim=3, found ndim={}. Full shape received: {}", s.size(), shape_to_string(s)));
}
Tensor SpatialDropout1D::call(const Tensor& x, bool training) {
  if (!training || rate_ == 0.f) return x;
  return x * ops::dropout(ops::ones(Shape{x.dim(0), 1, x.dim(2)}, x.dtype(), x.backend()), rate_, seeds_);
}
Config SpatialDropout1D::get_config() const {
  Config c = Layer::get_config();
  c.erase("trainable");
  c["rate"] = rate_;
  c["seed"] = seed_ ? Config(*seed_) : Config(nullptr);
  return c;
}
std::shared_ptr<Layer> SpatialDropout1D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "SpatialDropout1D config");
  const std::string name = r.name();
  r.require("noise_shape", nullptr);
  auto seed = r.seed();
  auto layer = std::make_shared<SpatialDropout1D>(static_cast<float>(r.number("rate")), seed, name);
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
