#include "layers/regularization/spatial_dropout.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

SpatialDropout::SpatialDropout(std::string class_name, size_t rank, float rate, std::optional<uint64_t> seed,
                               std::string name)
    : Layer(std::move(class_name), std::move(name)), rank_(rank), rate_(rate), seed_(seed), seeds_(seed) {
  KCPP_CHECK(rate >= 0.f && rate < 1.f, ValueError, "{}: the rate must be in [0, 1), received {}", this->class_name(),
             rate);
}
void SpatialDropout::check_input(const PartialShape& s) const {
  if (s.size() != rank_)
    throw input_error(
        fmt::format("expected ndim={}, found ndim={}. Full shape received: {}", rank_, s.size(), shape_to_string(s)));
}
Tensor SpatialDropout::call(const Tensor& x, bool training) {
  if (!training || rate_ == 0.f) return x;
  // One mask value per (sample, channel), broadcast over the positions.
  std::vector<int64_t> mask_shape(x.rank(), 1);
  mask_shape.front() = x.dim(0);
  mask_shape.back() = x.dim(-1);
  return x * ops::dropout(ops::ones(Shape(mask_shape), x.dtype(), x.backend()), rate_, seeds_);
}

Config SpatialDropout::get_config() const {
  // Keras' spatial dropouts take no "trainable" or "noise_shape" argument.
  Config c = Layer::get_config();
  c.erase("trainable");
  c["rate"] = rate_;
  c["seed"] = seed_ ? Config(*seed_) : Config(nullptr);
  if (rank_ == 4) c["data_format"] = "channels_last";
  return c;
}
template <typename L>
std::shared_ptr<Layer> SpatialDropout::read_config(const Config& config) {
  const bool images = std::is_same_v<L, SpatialDropout2D>;
  serialization::ConfigReader r(config, images ? "SpatialDropout2D config" : "SpatialDropout1D config");
  const std::string name = r.name();
  if (images) r.require("data_format", "channels_last");
  r.require("noise_shape", nullptr);
  auto seed = r.seed();
  auto layer = std::make_shared<L>(static_cast<float>(r.number("rate")), seed, name);
  r.finish(*layer);
  return layer;
}
std::shared_ptr<Layer> SpatialDropout1D::from_config(const Config& config) { return read_config<SpatialDropout1D>(config); }
std::shared_ptr<Layer> SpatialDropout2D::from_config(const Config& config) { return read_config<SpatialDropout2D>(config); }

}  // namespace keras::layers
