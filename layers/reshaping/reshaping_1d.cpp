#include "layers/reshaping/reshaping_1d.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {
namespace {
std::string rank3_problem(const PartialShape& s) {
  return s.size() == 3 ? ""
                       : fmt::format("expected ndim=3, found ndim={}. Full shape received: {}", s.size(),
                                     shape_to_string(s));
}
// Keras' int or (before, after) pair.
std::array<int64_t, 2> read_pair(serialization::ConfigReader& r, const std::string& key, std::array<int64_t, 2> fallback) {
  if (!r.has(key)) return fallback;
  const auto v = r.ints(key, 2);
  return {v[0], v[1]};
}
std::optional<int64_t> plus(std::optional<int64_t> d, int64_t k) { return d ? std::optional<int64_t>(*d + k) : d; }
}  // namespace

ZeroPadding1D::ZeroPadding1D(std::array<int64_t, 2> padding, std::string name)
    : Layer("ZeroPadding1D", std::move(name)), padding_(padding) {
  KCPP_CHECK(padding[0] >= 0 && padding[1] >= 0, ValueError,
             "ZeroPadding1D: padding must be non-negative, received ({}, {})", padding[0], padding[1]);
}
void ZeroPadding1D::check_input(const PartialShape& s) const {
  if (const auto why = rank3_problem(s); !why.empty()) throw input_error(why);
}
PartialShape ZeroPadding1D::compute_output_shape(const PartialShape& s) const {
  return {s[0], plus(s[1], padding_[0] + padding_[1]), s[2]};
}
Tensor ZeroPadding1D::call(const Tensor& x, bool) { return ops::pad(x, {{0, 0}, padding_, {0, 0}}); }
Config ZeroPadding1D::get_config() const {
  Config c = Layer::get_config();
  c["padding"] = Config::array({padding_[0], padding_[1]});
  c["data_format"] = "channels_last";
  return c;
}
std::shared_ptr<Layer> ZeroPadding1D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "ZeroPadding1D config");
  r.require("data_format", "channels_last");
  const std::string name = r.name();
  auto layer = std::make_shared<ZeroPadding1D>(read_pair(r, "padding", {1, 1}), name);
  r.finish(*layer);
  return layer;
}

Cropping1D::Cropping1D(std::array<int64_t, 2> cropping, std::string name)
    : Layer("Cropping1D", std::move(name)), cropping_(cropping) {
  KCPP_CHECK(cropping[0] >= 0 && cropping[1] >= 0, ValueError,
             "Cropping1D: cropping must be non-negative, received ({}, {})", cropping[0], cropping[1]);
}
void Cropping1D::check_input(const PartialShape& s) const {
  if (const auto why = rank3_problem(s); !why.empty()) throw input_error(why);
  if (s[1] && *s[1] <= cropping_[0] + cropping_[1])
    throw input_error(fmt::format("cropping ({}, {}) leaves no steps of an input of shape {}", cropping_[0],
                                  cropping_[1], shape_to_string(s)));
}
PartialShape Cropping1D::compute_output_shape(const PartialShape& s) const {
  return {s[0], plus(s[1], -cropping_[0] - cropping_[1]), s[2]};
}
Tensor Cropping1D::call(const Tensor& x, bool) {
  return ops::slice(x, {0, cropping_[0], 0}, {x.dim(0), x.dim(1) - cropping_[0] - cropping_[1], x.dim(2)});
}
Config Cropping1D::get_config() const {
  Config c = Layer::get_config();
  c["cropping"] = Config::array({cropping_[0], cropping_[1]});
  return c;
}
std::shared_ptr<Layer> Cropping1D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Cropping1D config");
  const std::string name = r.name();
  auto layer = std::make_shared<Cropping1D>(read_pair(r, "cropping", {1, 1}), name);
  r.finish(*layer);
  return layer;
}

UpSampling1D::UpSampling1D(int64_t size, std::string name) : Layer("UpSampling1D", std::move(name)), size_(size) {
  KCPP_CHECK(size > 0, ValueError, "UpSampling1D: size must be positive, received {}", size);
}
void UpSampling1D::check_input(const PartialShape& s) const {
  if (const auto why = rank3_problem(s); !why.empty()) throw input_error(why);
}
PartialShape UpSampling1D::compute_output_shape(const PartialShape& s) const {
  return {s[0], s[1] ? std::optional<int64_t>(*s[1] * size_) : s[1], s[2]};
}
Tensor UpSampling1D::call(const Tensor& x, bool) {
  std::vector<int64_t> idx(static_cast<size_t>(x.dim(1) * size_));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i) / size_;
  return ops::take(x, Tensor::from_vector(idx, Shape{static_cast<int64_t>(idx.size())}, x.backend()), 1);
}
Config UpSampling1D::get_config() const {
  Config c = Layer::get_config();
  c["size"] = size_;
  return c;
}
std::shared_ptr<Layer> UpSampling1D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "UpSampling1D config");
  const std::string name = r.name();
  auto layer = std::make_shared<UpSampling1D>(r.integer("size", 2), name);
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
