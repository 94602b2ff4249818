#include "layers/reshaping/reshaping.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {
namespace {
std::optional<int64_t> plus(std::optional<int64_t> d, int64_t k) {
  return d ? std::optional<int64_t>(*d + k) : std::nullopt;
}
std::optional<int64_t> times(std::optional<int64_t> d, int64_t k) {
  return d ? std::optional<int64_t>(*d * k) : std::nullopt;
}
std::string ndim_error(size_t want, const PartialShape& s) {
  return fmt::format("expected ndim={}, found ndim={}. Full shape received: {}", want, s.size(), shape_to_string(s));
}
}  // namespace

ZeroPadding2D::ZeroPadding2D(std::array<std::array<int64_t, 2>, 2> padding, std::string name)
    : Layer("ZeroPadding2D", std::move(name)), padding_(padding) {
  for (const auto& p : padding_)
    KCPP_CHECK(p[0] >= 0 && p[1] >= 0, ValueError, "ZeroPadding2D: padding must be non-negative, received ({}, {})",
               p[0], p[1]);
}
void ZeroPadding2D::check_input(const PartialShape& s) const {
  if (s.size() != 4) throw input_error(ndim_error(4, s));
}
PartialShape ZeroPadding2D::compute_output_shape(const PartialShape& s) const {
  return {s[0], plus(s[1], padding_[0][0] + padding_[0][1]), plus(s[2], padding_[1][0] + padding_[1][1]), s[3]};
}
Tensor ZeroPadding2D::call(const Tensor& x, bool training) {
  return ops::pad(x, {{{0, 0}}, padding_[0], padding_[1], {{0, 0}}});
}

Cropping2D::Cropping2D(std::array<std::array<int64_t, 2>, 2> cropping, std::string name)
    : Layer("Cropping2D", std::move(name)), cropping_(cropping) {
  for (const auto& c : cropping_)
    KCPP_CHECK(c[0] >= 0 && c[1] >= 0, ValueError, "Cropping2D: cropping must be non-negative, received ({}, {})", c[0],
               c[1]);
}
void Cropping2D::check_input(const PartialShape& s) const {
  if (s.size() != 4) throw input_error(ndim_error(4, s));
  for (int i = 0; i < 2; ++i)
    if (s[static_cast<size_t>(i + 1)] &&
        *s[static_cast<size_t>(i + 1)] <= cropping_[static_cast<size_t>(i)][0] + cropping_[static_cast<size_t>(i)][1])
      throw input_error(fmt::format("cropping ({}, {}) removes all of axis {} in shape {}",
                                    cropping_[static_cast<size_t>(i)][0], cropping_[static_cast<size_t>(i)][1], i + 1,
                                    shape_to_string(s)));
}
PartialShape Cropping2D::compute_output_shape(const PartialShape& s) const {
  return {s[0], plus(s[1], -(cropping_[0][0] + cropping_[0][1])), plus(s[2], -(cropping_[1][0] + cropping_[1][1])),
          s[3]};
}
Tensor Cropping2D::call(const Tensor& x, bool training) {
  return ops::slice(
      x, {0, cropping_[0][0], cropping_[1][0], 0},
      {-1, x.dim(1) - cropping_[0][0] - cropping_[0][1], x.dim(2) - cropping_[1][0] - cropping_[1][1], -1});
}

UpSampling2D::UpSampling2D(std::array<int64_t, 2> size, std::string interpolation, std::string name)
    : Layer("UpSampling2D", std::move(name)), size_(size), interpolation_(std::move(interpolation)) {
  KCPP_CHECK(size[0] > 0 && size[1] > 0, ValueError, "UpSampling2D: size must be positive, received ({}, {})", size[0],
             size[1]);
  KCPP_CHECK(interpolation_ == "nearest" || interpolation_ == "bilinear", NotImplementedError,
             "UpSampling2D: expected interpolation 'nearest' or 'bilinear', received '{}'", interpolation_);
}
void UpSampling2D::check_input(const PartialShape& s) const {
  if (s.size() != 4) throw input_error(ndim_error(4, s));
}
PartialShape UpSampling2D::compute_output_shape(const PartialShape& s) const {
  return {s[0], times(s[1], size_[0]), times(s[2], size_[1]), s[3]};
}
Tensor UpSampling2D::call(const Tensor& x, bool training) {
  // One axis at a time, gathering rows (or columns): differentiable through take.
  auto indices = [&](const std::vector<int64_t>& idx) {
    return Tensor::from_vector(idx, Shape{static_cast<int64_t>(idx.size())}, x.backend());
  };
  auto scale_axis = [&](const Tensor& t, int64_t axis, int64_t k) {
    const int64_t n = t.dim(axis);
    std::vector<int64_t> lo(static_cast<size_t>(n * k)), hi(lo.size());
    std::vector<float> w(lo.size());
    for (int64_t o = 0; o < n * k; ++o) {
      const auto i = static_cast<size_t>(o);
      if (interpolation_ == "nearest") {
        lo[i] = o / k;
        continue;
      }
      // Half-pixel centers: output o samples input (o + 0.5) / k - 0.5, clamped to the edge pixels.
      const double src = std::clamp((static_cast<double>(o) + 0.5) / static_cast<double>(k) - 0.5, 0.0,
                                    static_cast<double>(n - 1));
      lo[i] = static_cast<int64_t>(std::floor(src));
      hi[i] = std::min(lo[i] + 1, n - 1);
      w[i] = static_cast<float>(src - std::floor(src));
    }
    const Tensor a = ops::take(t, indices(lo), axis);
    if (interpolation_ == "nearest") return a;
    std::vector<int64_t> ws(t.rank(), 1);
    ws[static_cast<size_t>(axis)] = n * k;
    const Tensor weight = ops::cast(Tensor::from_vector(w, Shape(ws), x.backend()), t.dtype());
    return a + (ops::take(t, indices(hi), axis) - a) * weight;
  };
  return scale_axis(scale_axis(x, 1, size_[0]), 2, size_[1]);
}

Permute::Permute(std::vector<int64_t> dims, std::string name)
    : Layer("Permute", std::move(name)), dims_(std::move(dims)) {
  std::vector<int64_t> sorted = dims_;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> expected(dims_.size());
  std::iota(expected.begin(), expected.end(), 1);
  KCPP_CHECK(sorted == expected, ValueError,
             "Invalid permutation argument `dims` for Permute Layer. The set of indices in `dims` must be consecutive "
             "and start from 1. Received dims=({})",
             fmt::join(dims_, ", "));
}
void Permute::check_input(const PartialShape& s) const {
  if (s.size() != dims_.size() + 1) throw input_error(ndim_error(dims_.size() + 1, s));
}
PartialShape Permute::compute_output_shape(const PartialShape& s) const {
  PartialShape out{s[0]};
  for (int64_t d : dims_) out.push_back(s[static_cast<size_t>(d)]);
  return out;
}
Tensor Permute::call(const Tensor& x, bool training) {
  std::vector<int64_t> perm{0};
  perm.insert(perm.end(), dims_.begin(), dims_.end());
  return ops::transpose(x, perm);
}

RepeatVector::RepeatVector(int64_t n, std::string name) : Layer("RepeatVector", std::move(name)), n_(n) {
  KCPP_CHECK(n > 0, ValueError, "RepeatVector: n must be positive, received {}", n);
}
void RepeatVector::check_input(const PartialShape& s) const {
  if (s.size() != 2) throw input_error(ndim_error(2, s));
}
Tensor RepeatVector::call(const Tensor& x, bool training) {
  return ops::broadcast_to(ops::expand_dims(x, 1), Shape{x.dim(0), n_, x.dim(1)});
}


namespace {
using Pairs = std::array<std::array<int64_t, 2>, 2>;
// Keras' padding/cropping argument: an int, (rows, cols), or ((top, bottom), (left, right)).
Pairs read_pairs(serialization::ConfigReader& r, const std::string& key, const Pairs& fallback) {
  if (!r.has(key)) return fallback;
  const Config& v = r.raw(key);
  auto as_int = [&](const Config& e) {
    KCPP_CHECK(e.is_number_integer() && e.get<int64_t>() >= 0, ValueError,
               "\"{}\": expected non-negative integers, received {}", key, v.dump());
    return e.get<int64_t>();
  };
  if (v.is_number_integer()) {
    const int64_t p = as_int(v);
    return {{{p, p}, {p, p}}};
  }
  KCPP_CHECK(v.is_array() && v.size() == 2, ValueError,
             "\"{}\": expected an integer, 2 integers or 2 pairs of integers, received {}", key, v.dump());
  Pairs out{};
  for (size_t i = 0; i < 2; ++i) {
    if (v[i].is_array()) {
      KCPP_CHECK(v[i].size() == 2, ValueError, "\"{}\": expected pairs of integers, received {}", key, v.dump());
      out[i] = {as_int(v[i][0]), as_int(v[i][1])};
    } else {
      out[i] = {as_int(v[i]), as_int(v[i])};
    }
  }
  return out;
}
Config pairs_config(const Pairs& p) { return Config::array({{p[0][0], p[0][1]}, {p[1][0], p[1][1]}}); }
}  // namespace

Config ZeroPadding2D::get_config() const {
  Config c = Layer::get_config();
  c["padding"] = pairs_config(padding_);
  c["data_format"] = "channels_last";
  return c;
}
std::shared_ptr<Layer> ZeroPadding2D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "ZeroPadding2D config");
  r.require("data_format", "channels_last");
  const std::string name = r.name();
  auto layer = std::make_shared<ZeroPadding2D>(read_pairs(r, "padding", {{{1, 1}, {1, 1}}}), name);
  r.finish(*layer);
  return layer;
}

Config Cropping2D::get_config() const {
  Config c = Layer::get_config();
  c["cropping"] = pairs_config(cropping_);
  c["data_format"] = "channels_last";
  return c;
}
std::shared_ptr<Layer> Cropping2D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Cropping2D config");
  r.require("data_format", "channels_last");
  const std::string name = r.name();
  auto layer = std::make_shared<Cropping2D>(read_pairs(r, "cropping", {{{0, 0}, {0, 0}}}), name);
  r.finish(*layer);
  return layer;
}

Config UpSampling2D::get_config() const {
  Config c = Layer::get_config();
  c["size"] = Config::array({size_[0], size_[1]});
  c["data_format"] = "channels_last";
  c["interpolation"] = interpolation_;
  return c;
}
std::shared_ptr<Layer> UpSampling2D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "UpSampling2D config");
  r.require("data_format", "channels_last");
  const std::string interpolation = r.string("interpolation", "nearest");
  const std::string name = r.name();
  const auto size = r.has("size") ? r.ints("size", 2) : std::vector<int64_t>{2, 2};
  auto layer = std::make_shared<UpSampling2D>(std::array<int64_t, 2>{size[0], size[1]}, interpolation, name);
  r.finish(*layer);
  return layer;
}

Config Permute::get_config() const {
  Config c = Layer::get_config();
  c["dims"] = dims_;
  return c;
}
std::shared_ptr<Layer> Permute::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Permute config");
  const std::string name = r.name();
  auto layer = std::make_shared<Permute>(r.int_list("dims"), name);
  r.finish(*layer);
  return layer;
}

Config RepeatVector::get_config() const {
  Config c = Layer::get_config();
  c["n"] = n_;
  return c;
}
std::shared_ptr<Layer> RepeatVector::from_config(const Config& config) {
  serialization::ConfigReader r(config, "RepeatVector config");
  const std::string name = r.name();
  auto layer = std::make_shared<RepeatVector>(r.integer("n"), name);
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
