#include "layers/regularization/noise.h"

#include <cmath>

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

namespace detail {
Shape concrete_noise_shape(const std::string& layer, const PartialShape& noise_shape, const Tensor& x) {
  KCPP_CHECK(noise_shape.size() == x.rank(), ValueError,
             "{}: expected a noise_shape of the input's rank {} (input {}), received {}", layer, x.rank(),
             x.shape().to_string(), shape_to_string(noise_shape));
  std::vector<int64_t> dims;
  for (size_t i = 0; i < noise_shape.size(); ++i) {
    const int64_t d = noise_shape[i].value_or(x.dim(static_cast<int64_t>(i)));
    KCPP_CHECK(d == 1 || d == x.dim(static_cast<int64_t>(i)), ValueError,
               "{}: noise_shape {} does not broadcast onto the input's shape {} (axis {})", layer,
               shape_to_string(noise_shape), x.shape().to_string(), i);
    dims.push_back(d);
  }
  return Shape(dims);
}
}  // namespace detail

namespace {
Config seed_config(const std::optional<uint64_t>& seed) { return seed ? Config(*seed) : Config(nullptr); }
}  // namespace

GaussianNoise::GaussianNoise(float stddev, NoiseOptions o)
    : Layer("GaussianNoise", o.name), stddev_(stddev), seed_(o.seed), seeds_(o.seed) {
  KCPP_CHECK(stddev >= 0.f && std::isfinite(stddev), ValueError,
             "GaussianNoise: expected a finite stddev >= 0, received {}", stddev);
}
Tensor GaussianNoise::call(const Tensor& x, bool training) {
  if (!training || stddev_ == 0.f) return x;
  return x + ops::cast(ops::random_normal(x.shape(), 0.f, stddev_, seeds_, x.backend()), x.dtype());
}
Config GaussianNoise::get_config() const {
  Config c = Layer::get_config();
  c["stddev"] = stddev_;
  c["seed"] = seed_config(seed_);
  return c;
}
std::shared_ptr<Layer> GaussianNoise::from_config(const Config& config) {
  serialization::ConfigReader r(config, "GaussianNoise config");
  NoiseOptions o;
  o.name = r.name();
  o.seed = r.seed();
  auto layer = std::make_shared<GaussianNoise>(static_cast<float>(r.number("stddev")), o);
  r.finish(*layer);
  return layer;
}

GaussianDropout::GaussianDropout(float rate, NoiseOptions o)
    : Layer("GaussianDropout", o.name), rate_(rate), seed_(o.seed), seeds_(o.seed) {
  KCPP_CHECK(rate >= 0.f && rate < 1.f, ValueError, "GaussianDropout: the rate must be in [0, 1), received {}", rate);
}
Tensor GaussianDropout::call(const Tensor& x, bool training) {
  if (!training || rate_ == 0.f) return x;
  const auto stddev = static_cast<float>(std::sqrt(static_cast<double>(rate_) / (1.0 - rate_)));
  return x * ops::cast(ops::random_normal(x.shape(), 1.f, stddev, seeds_, x.backend()), x.dtype());
}
Config GaussianDropout::get_config() const {
  Config c = Layer::get_config();
  c["rate"] = rate_;
  c["seed"] = seed_config(seed_);
  return c;
}
std::shared_ptr<Layer> GaussianDropout::from_config(const Config& config) {
  serialization::ConfigReader r(config, "GaussianDropout config");
  NoiseOptions o;
  o.name = r.name();
  o.seed = r.seed();
  auto layer = std::make_shared<GaussianDropout>(static_cast<float>(r.number("rate")), o);
  r.finish(*layer);
  return layer;
}

AlphaDropout::AlphaDropout(float rate, AlphaDropoutOptions o)
    : Layer("AlphaDropout", o.name), rate_(rate), o_(std::move(o)), seeds_(o_.seed) {
  KCPP_CHECK(rate >= 0.f && rate < 1.f, ValueError, "AlphaDropout: the rate must be in [0, 1), received {}", rate);
}
Tensor AlphaDropout::call(const Tensor& x, bool training) {
  if (!training || rate_ == 0.f) return x;
  const Shape noise = o_.noise_shape ? detail::concrete_noise_shape("AlphaDropout", *o_.noise_shape, x) : x.shape();
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
  Config c = Layer::get_config();
  c["rate"] = rate_;
  c["seed"] = seed_config(o_.seed);
  c["noise_shape"] = o_.noise_shape ? serialization::shape_to_config(*o_.noise_shape) : Config(nullptr);
  return c;
}
std::shared_ptr<Layer> AlphaDropout::from_config(const Config& config) {
  serialization::ConfigReader r(config, "AlphaDropout config");
  AlphaDropoutOptions o;
  o.name = r.name();
  o.seed = r.seed();
  if (r.has("noise_shape")) o.noise_shape = r.shape("noise_shape");
  auto layer = std::make_shared<AlphaDropout>(static_cast<float>(r.number("rate")), o);
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
