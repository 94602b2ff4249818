#include "layers/preprocessing/resizing.h"

#include <cmath>
#include <limits>
#include <numbers>

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {
namespace {
const std::vector<std::string> kInterpolations = {"bilinear", "nearest", "bicubic", "lanczos3", "lanczos5"};

double sinc(double t) { return t == 0.0 ? 1.0 : std::sin(std::numbers::pi * t) / (std::numbers::pi * t); }

// The interpolation kernel at distance d >= 0, in input pixels.
double kernel_at(const std::string& method, double d) {
  if (method == "bilinear") return std::max(0.0, 1.0 - d);
  if (method == "bicubic") {  // Keys' cubic with a = -0.5
    if (d < 1.0) return (1.5 * d - 2.5) * d * d + 1.0;
    if (d < 2.0) return ((-0.5 * d + 2.5) * d - 4.0) * d + 2.0;
    return 0.0;
  }
  const double radius = method == "lanczos3" ? 3.0 : 5.0;
  return d < radius ? sinc(d) * sinc(d / radius) : 0.0;
}

// (in, out): column o weighs input pixel i by the kernel at the distance between o's half-pixel
// center, mapped into the input, and i's; each column normalized to sum 1 over the image's pixels.
Tensor weight_matrix(const std::string& method, int64_t in, int64_t out, bool antialias, DType dtype,
                     Backend* backend) {
  const double inverse_scale = static_cast<double>(in) / static_cast<double>(out);
  const double widen = antialias ? std::max(inverse_scale, 1.0) : 1.0;  // downsampling spreads the kernel
  std::vector<float> m(static_cast<size_t>(in * out), 0.f);
  std::vector<double> column(static_cast<size_t>(in));
  for (int64_t o = 0; o < out; ++o) {
    const double sample = (static_cast<double>(o) + 0.5) * inverse_scale - 0.5;
    double total = 0.0;
    for (int64_t i = 0; i < in; ++i) {
      column[static_cast<size_t>(i)] = kernel_at(method, std::abs(sample - static_cast<double>(i)) / widen);
      total += column[static_cast<size_t>(i)];
    }
    if (std::abs(total) <= 1000.0 * std::numeric_limits<float>::epsilon()) continue;  // no pixel near: zeros
    for (int64_t i = 0; i < in; ++i)
      m[static_cast<size_t>(i * out + o)] = static_cast<float>(column[static_cast<size_t>(i)] / total);
  }
  return ops::cast(Tensor::from_vector(m, Shape{in, out}, backend), dtype);
}

// Nearest: output o takes input floor((o + 0.5) * in / out).
Tensor nearest_indices(int64_t in, int64_t out, Backend* backend) {
  std::vector<int64_t> idx(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o)
    idx[static_cast<size_t>(o)] = std::min<int64_t>(
        in - 1, static_cast<int64_t>(std::floor((static_cast<double>(o) + 0.5) * static_cast<double>(in) /
                                                static_cast<double>(out))));
  return Tensor::from_vector(idx, Shape{out}, backend);
}

// Keras' integer arithmetic for the crop or pad window: int(float(a * b) / c).
int64_t scaled(int64_t a, int64_t b, int64_t c) {
  return static_cast<int64_t>(static_cast<double>(a * b) / static_cast<double>(c));
}
}  // namespace

Resizing::Resizing(int64_t height, int64_t width, ResizingOptions o)
    : Layer("Resizing", o.name), height_(height), width_(width), o_(std::move(o)) {
  KCPP_CHECK(height > 0 && width > 0, ValueError, "Resizing: expected a positive height and width, received ({}, {})",
             height, width);
  KCPP_CHECK(std::find(kInterpolations.begin(), kInterpolations.end(), o_.interpolation) != kInterpolations.end(),
             ValueError, "Resizing: expected interpolation one of {}, received '{}'", fmt::join(kInterpolations, ", "),
             o_.interpolation);
  KCPP_CHECK(!(o_.crop_to_aspect_ratio && o_.pad_to_aspect_ratio), ValueError,
             "Resizing: expected only one of crop_to_aspect_ratio and pad_to_aspect_ratio, received both");
  KCPP_CHECK(o_.fill_mode == "constant", NotImplementedError,
             "Resizing: expected fill_mode 'constant' (Keras' only one), received '{}'", o_.fill_mode);
}

void Resizing::check_input(const PartialShape& s) const {
  if (s.size() != 3 && s.size() != 4)
    throw input_error(fmt::format("expected images (batch, height, width, channels) or one image (height, width, "
                                  "channels), received shape {}",
                                  shape_to_string(s)));
}

PartialShape Resizing::compute_output_shape(const PartialShape& s) const {
  PartialShape out = s;
  out[out.size() - 3] = height_;
  out[out.size() - 2] = width_;
  return out;
}

Tensor Resizing::resize_batch(const Tensor& images) const {
  Backend* be = images.backend();
  Tensor x = images;
  int64_t h = x.dim(1), w = x.dim(2);
  KCPP_CHECK(h > 0 && w > 0, ValueError, "Resizing: expected images of at least one pixel, received shape {}",
             x.shape().to_string());
  if (o_.crop_to_aspect_ratio) {
    const int64_t ch = std::max<int64_t>(std::min(h, scaled(w, height_, width_)), 1);
    const int64_t cw = std::max<int64_t>(std::min(w, scaled(h, width_, height_)), 1);
    x = ops::slice(x, {0, (h - ch) / 2, (w - cw) / 2, 0}, {x.dim(0), ch, cw, x.dim(3)});
  } else if (o_.pad_to_aspect_ratio) {
    const int64_t ph = std::max(h, scaled(w, height_, width_)), pw = std::max(w, scaled(h, width_, height_));
    // Keras pads the same amount on both sides, one axis only: an odd difference loses a row.
    const int64_t top = (ph - h) / 2, left = top > 0 ? 0 : (pw - w) / 2;
    if (top > 0 || left > 0) x = ops::pad(x, {{0, 0}, {top, top}, {left, left}, {0, 0}}, o_.fill_value);
  }
  h = x.dim(1);
  w = x.dim(2);
  // One axis at a time, moved last: take() for nearest, a matmul with the weight matrix otherwise.
  auto along_last = [&](const Tensor& t, int64_t in, int64_t out) {
    if (o_.interpolation == "nearest") return ops::take(t, nearest_indices(in, out, be), 3);
    return ops::linear(t, weight_matrix(o_.interpolation, in, out, o_.antialias, t.dtype(), be), Tensor());
  };
  // The same size maps each pixel to itself with every kernel (they vanish at nonzero integers).
  if (h != height_) x = ops::transpose(along_last(ops::transpose(x, {0, 2, 3, 1}), h, height_), {0, 3, 1, 2});
  if (w != width_) x = ops::transpose(along_last(ops::transpose(x, {0, 1, 3, 2}), w, width_), {0, 1, 3, 2});
  return x;
}

Tensor Resizing::call(const Tensor& x, bool training) {
  const DType dtype = x.dtype();
  KCPP_CHECK(dtype != DType::bool_, ValueError, "Resizing: expected numeric images, received dtype bool");
  const bool one_image = x.rank() == 3;
  Tensor images = one_image ? ops::expand_dims(x, 0) : x;
  // Integer images are interpolated in float32; nearest only picks pixels, in their own dtype.
  const bool widen = !is_floating(dtype) && o_.interpolation != "nearest";
  if (widen) images = ops::cast(images, DType::float32);
  Tensor y = resize_batch(images);
  if (widen) {
    // Keras rounds integer images and saturates them to their dtype.
    const float lo = dtype == DType::uint8 ? 0.f : dtype == DType::int32 ? -2147483648.f : -9.2233720e18f;
    const float hi = dtype == DType::uint8 ? 255.f : dtype == DType::int32 ? 2147483520.f : 9.2233715e18f;
    y = ops::cast(ops::clip(ops::round(y), lo, hi), dtype);
  }
  return one_image ? ops::squeeze(y, 0) : y;
}

Config Resizing::get_config() const {
  Config c = Layer::get_config();
  c["data_format"] = "channels_last";
  c["height"] = height_;
  c["width"] = width_;
  c["interpolation"] = o_.interpolation;
  c["crop_to_aspect_ratio"] = o_.crop_to_aspect_ratio;
  c["pad_to_aspect_ratio"] = o_.pad_to_aspect_ratio;
  c["fill_mode"] = o_.fill_mode;
  c["fill_value"] = o_.fill_value;
  c["antialias"] = o_.antialias;
  return c;
}

std::shared_ptr<Layer> Resizing::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Resizing config");
  ResizingOptions o;
  o.name = r.name();
  r.require("data_format", "channels_last");
  o.interpolation = r.string("interpolation", "bilinear");
  o.crop_to_aspect_ratio = r.boolean("crop_to_aspect_ratio", false);
  o.pad_to_aspect_ratio = r.boolean("pad_to_aspect_ratio", false);
  o.fill_mode = r.string("fill_mode", "constant");
  o.fill_value = static_cast<float>(r.number("fill_value", 0.0));
  o.antialias = r.boolean("antialias", false);
  auto layer = std::make_shared<Resizing>(r.integer("height"), r.integer("width"), std::move(o));
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
