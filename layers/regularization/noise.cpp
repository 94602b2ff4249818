#include "layers/regularization/noise.h"

#include <cmath>

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

Config NoiseLayer::config_with_seed() const {
  Config c = Layer::get_config();
  c["seed"] = seed_ ? Config(*seed_) : Config(nullptr);
  return c;
}

namespace {
// GaussianNoise's and GaussianDropout's configs: one number and the seed.
template <typename L>
std::shared_ptr<Layer> read_noise_config(const Config& config, const char* owner, const char* key) {
  serialization::ConfigReader r(config, owner);
  NoiseOptions o;
  o.name = r.name();
  o.seed = r.seed();
  auto layer = std::make_shared<L>(static_cast<float>(r.number(key)), o);
  r.finish(*layer);
  return layer;
}
}  // namespace

GaussianNoise::GaussianNoise(float stddev, NoiseOptions o)
    : NoiseLayer("GaussianNoise", o.name, o.seed), stddev_(stddev) {
  KCPP_CHECK(stddev >= 0.f && std::isfinite(stddev), ValueError,
             "GaussianNoise: expected a finite stddev >= 0, received {}", stddev);
}
Tensor GaussianNoise::call(const Tensor& x, bool training) {
  if (!training || stddev_ == 0.f) return x;
  return x + ops::cast(ops::random_normal(x.shape(), 0.f, stddev_, seeds_, x.backend()), x.dtype());
}
Config GaussianNoise::get_config() const {
  Config c = config_with_seed();
  c["stddev"] = stddev_;
  return c;
}
std::shared_ptr<Layer> GaussianNoise::from_config(const Config& config) {
  return read_noise_config<GaussianNoise>(config, "GaussianNoise config", "stddev");
}

GaussianDropout::GaussianDropout(float rate, NoiseOptions o)
    : NoiseLayer("GaussianDropout", o.name, o.seed), rate_(rate) {
  KCPP_CHECK(rate >= 0.f && rate < 1.f, ValueError, "GaussianDropout: the rate must be in [0, 1), received {}", rate);
}
Tensor GaussianDropout::call(const Tensor& x, bool training) {
  if (!training || rate_ == 0.f) return x;
  const auto stddev = static_cast<float>(std::sqrt(static_cast<double>(rate_) / (1.0 - rate_)));
  return x * ops::cast(ops::random_normal(x.shape(), 1.f, stddev, seeds_, x.backend()), x.dtype());
}
Config GaussianDropout::get_config() const {
  Config c = config_with_seed();
  c["rate"] = rate_;
  return c;
}
std::shared_ptr<Layer> GaussianDropout::from_config(const Config& config) {
  return read_noise_config<GaussianDropout>(config, "GaussianDropout config", "rate");
}

AlphaDropout::AlphaDropout(float rate, DropoutOptions o)
    : NoiseLayer("AlphaDropout", o.name, o.seed), rate_(rate), noise_shape_(std::move(o.noise_shape)) {
  KCPP_CHECK(rate >= 0.f && rate < 1.f, ValueError, "AlphaDropout: the rate must be in [0, 1), received {}", rate);
}
Tensor AlphaDropout::call(const Tensor& x, bool training) {
  if (!training || rate_ == 0.f) return x;
  const Shape noise = noise_shape_ ? detail::concrete_noise_shape("AlphaDropout", *noise_shape_, x) : x.shape();
  // SELU's negative saturation -scale * alpha, and the affine map a * x + b that keeps the mean and
  // variance of standardized inputs (the paper's, as Keras computes it).
  const double alpha = 1.6732632423543772848170429916717, scale = 1.0507009873554804934193349852946;
  const double alpha_p = -alpha * scale, rate = rate_;
  const double a = std::pow((1 - rate) * (1 + rate * alpha_p * alpha_p), -0.5), b = -a * alpha_p * rate;
  const Tensor u = ops::random_uniform(noise, 0.f, 1.f, seeds_, x.backend());
  const Tensor kept = ops::cast(ops::greater_equal(u, ops::full_like(u, rate_)), x.dtype());
  const Tensor dropped = x * kept + (1.f - kept) * static_cast<float>(alpha_p);
  return dropped * static_cast<float>(a) + static_cast<float>(b);
}
Config AlphaDropout::get_config() const {
  Config c = config_with_seed();
  c["rate"] = rate_;
  c["noise_shape"] = noise_shape_ ? serialization::shape_to_config(*noise_shape_) : Config(nullptr);
  return c;
}
std::shared_ptr<Layer> AlphaDropout::from_config(const Config& config) {
  serialization::ConfigReader r(config, "AlphaDropout config");
  const DropoutOptions o = detail::read_dropout_options(r);
  auto layer = std::make_shared<AlphaDropout>(static_cast<float>(r.number("rate")), o);
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
