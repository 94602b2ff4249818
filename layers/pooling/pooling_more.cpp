#include "layers/pooling/pooling_more.h"

#include "core/check.h"
#include "core/ops.h"
#include "layers/convolutional/conv2d.h"

namespace keras::layers {

Pooling1D::Pooling1D(std::string class_name, bool is_max, int64_t pool_size, Pooling1DOptions o)
    : Layer(std::move(class_name), o.name),
      is_max_(is_max),
      pool_size_(pool_size),
      strides_(o.strides.value_or(pool_size)),
      padding_(o.padding) {
  KCPP_CHECK(pool_size > 0 && strides_ > 0, ValueError, "{}: pool_size and strides must be positive",
             this->class_name());
  KCPP_CHECK(padding_ == "valid" || padding_ == "same", ValueError,
             "{}: padding must be 'valid' or 'same', received '{}'", this->class_name(), padding_);
}
void Pooling1D::check_input(const PartialShape& s) const {
  if (s.size() != 3)
    throw input_error(
        fmt::format("expected ndim=3, found ndim={}. Full shape received: {}", s.size(), shape_to_string(s)));
}
PartialShape Pooling1D::compute_output_shape(const PartialShape& s) const {
  return {s[0], conv_output_length(s[1], pool_size_, padding_, strides_, 1), s[2]};
}
Tensor Pooling1D::call(const Tensor& x, bool training) {
  const ops::PoolOptions o{.pool_size = {pool_size_}, .strides = {strides_}, .padding = padding_};
  return is_max_ ? ops::max_pool(x, o) : ops::average_pool(x, o);
}

GlobalPooling::GlobalPooling(std::string class_name, bool is_max, size_t rank, GlobalPoolingOptions o)
    : Layer(std::move(class_name), std::move(o.name)), is_max_(is_max), rank_(rank), keepdims_(o.keepdims) {}
PartialShape GlobalPooling::compute_output_shape(const PartialShape& s) const {
  if (!keepdims_) return {s[0], s.back()};
  PartialShape out(s.size(), int64_t{1});
  out.front() = s.front();
  out.back() = s.back();
  return out;
}
void GlobalPooling::check_input(const PartialShape& s) const {
  if (s.size() != rank_)
    throw input_error(
        fmt::format("expected ndim={}, found ndim={}. Full shape received: {}", rank_, s.size(), shape_to_string(s)));
}
Tensor GlobalPooling::call(const Tensor& x, bool training) {
  std::vector<int64_t> axes;
  for (size_t i = 1; i + 1 < x.rank(); ++i) axes.push_back(static_cast<int64_t>(i));
  return is_max_ ? ops::max(x, axes, keepdims_) : ops::mean(x, axes, keepdims_);
}
Tensor GlobalPooling::call_masked(const Tensor& x, const Tensor& mask, bool training) {
  if (!mask.defined() || !supports_masking()) return call(x, training);
  // The sum of the unmasked steps over their count (a sequence with none gives 0 / 0, as Keras).
  const Tensor keep = ops::expand_dims(mask, 2);
  const Tensor summed = ops::sum(ops::where(keep, x, ops::zeros_like(x)), {1}, keepdims_);
  return summed / ops::sum(ops::cast(keep, x.dtype()), {1}, keepdims_);
}


Config Pooling1D::get_config() const {
  Config c = Layer::get_config();
  c["pool_size"] = Config::array({pool_size_});
  c["padding"] = padding_;
  c["strides"] = Config::array({strides_});
  c["data_format"] = "channels_last";
  return c;
}

Config GlobalPooling::get_config() const {
  Config c = Layer::get_config();
  c["data_format"] = "channels_last";
  c["keepdims"] = keepdims_;
  return c;
}

namespace {
template <typename P>
std::shared_ptr<Layer> pooling1d_from_config(const Config& config, const char* owner) {
  serialization::ConfigReader r(config, owner);
  Pooling1DOptions o;
  o.name = r.name();
  r.require("data_format", "channels_last");
  const int64_t pool = r.has("pool_size") ? r.ints("pool_size", 1)[0] : 2;
  if (r.has("strides")) o.strides = r.ints("strides", 1)[0];
  o.padding = r.string("padding", "valid");
  auto layer = std::make_shared<P>(pool, o);
  r.finish(*layer);
  return layer;
}
template <typename P>
std::shared_ptr<Layer> global_from_config(const Config& config, const char* owner) {
  serialization::ConfigReader r(config, owner);
  r.require("data_format", "channels_last");
  GlobalPoolingOptions o;
  o.name = r.name();
  o.keepdims = r.boolean("keepdims", false);
  auto layer = std::make_shared<P>(std::move(o));
  r.finish(*layer);
  return layer;
}
}  // namespace

std::shared_ptr<Layer> MaxPooling1D::from_config(const Config& c) {
  return pooling1d_from_config<MaxPooling1D>(c, "MaxPooling1D config");
}
std::shared_ptr<Layer> AveragePooling1D::from_config(const Config& c) {
  return pooling1d_from_config<AveragePooling1D>(c, "AveragePooling1D config");
}
std::shared_ptr<Layer> GlobalAveragePooling1D::from_config(const Config& c) {
  return global_from_config<GlobalAveragePooling1D>(c, "GlobalAveragePooling1D config");
}
std::shared_ptr<Layer> GlobalMaxPooling1D::from_config(const Config& c) {
  return global_from_config<GlobalMaxPooling1D>(c, "GlobalMaxPooling1D config");
}
std::shared_ptr<Layer> GlobalAveragePooling2D::from_config(const Config& c) {
  return global_from_config<GlobalAveragePooling2D>(c, "GlobalAveragePooling2D config");
}
std::shared_ptr<Layer> GlobalMaxPooling2D::from_config(const Config& c) {
  return global_from_config<GlobalMaxPooling2D>(c, "GlobalMaxPooling2D config");
}

}  // namespace keras::layers
