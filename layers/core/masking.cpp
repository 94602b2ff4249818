#include "layers/core/masking.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

Masking::Masking(float mask_value, std::string name) : Layer("Masking", std::move(name)), mask_value_(mask_value) {}

void Masking::check_input(const PartialShape& s) const {
  if (s.size() < 3)
    throw input_error(fmt::format("expected a (batch, time, features...) input of rank >= 3, received shape {}",
                                  shape_to_string(s)));
}

Tensor Masking::compute_mask(const Tensor& x, const Tensor&) const {
  // A step is kept when any of its features differs from mask_value.
  std::vector<int64_t> feature_axes;
  for (int64_t a = 2; a < static_cast<int64_t>(x.rank()); ++a) feature_axes.push_back(a);
  const Tensor differs = ops::cast(ops::not_equal(x, ops::full({}, mask_value_, x.dtype(), x.backend())), x.dtype());
  return ops::greater(ops::max(differs, feature_axes), ops::zeros({}, x.dtype(), x.backend()));
}

Tensor Masking::call(const Tensor& x, bool) {
  const Tensor keep = ops::cast(compute_mask(x, {}), x.dtype());
  std::vector<int64_t> shape = x.shape().dims();
  for (size_t a = 2; a < shape.size(); ++a) shape[a] = 1;
  return ops::multiply(x, ops::reshape(keep, shape));
}

Config Masking::get_config() const {
  Config c = Layer::get_config();
  c["mask_value"] = mask_value_;
  return c;
}

std::shared_ptr<Layer> Masking::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Masking config");
  const std::string name = r.name();
  auto layer = std::make_shared<Masking>(static_cast<float>(r.number("mask_value", 0.0)), name);
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
