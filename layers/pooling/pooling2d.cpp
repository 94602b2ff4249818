#include "layers/pooling/pooling2d.h"

#include "core/check.h"
#include "core/ops.h"
#include "layers/convolutional/conv2d.h"

namespace keras::layers {

Pooling2D::Pooling2D(std::string class_name, bool is_max, std::array<int64_t, 2> pool_size, Pooling2DOptions o)
    : Layer(std::move(class_name), o.name),
      is_max_(is_max),
      pool_size_(pool_size),
      strides_(o.strides.value_or(pool_size)),
      padding_(o.padding) {
  KCPP_CHECK(pool_size[0] > 0 && pool_size[1] > 0 && strides_[0] > 0 && strides_[1] > 0, ValueError,
             "{}: pool_size and strides must be positive", this->class_name());
  KCPP_CHECK(padding_ == "valid" || padding_ == "same", ValueError,
             "{}: padding must be 'valid' or 'same', received '{}'", this->class_name(), padding_);
}

void Pooling2D::check_input(const PartialShape& s) const {
  if (s.size() != 4)
    throw input_error(
        fmt::format("expected ndim=4, found ndim={}. Full shape received: {}", s.size(), shape_to_string(s)));
}

PartialShape Pooling2D::compute_output_shape(const PartialShape& s) const {
  return {s[0], conv_output_length(s[1], pool_size_[0], padding_, strides_[0], 1),
          conv_output_length(s[2], pool_size_[1], padding_, strides_[1], 1), s[3]};
}

ops::PoolOptions Pooling2D::pool_options() const {
  return {.pool_size = {pool_size_[0], pool_size_[1]}, .strides = {strides_[0], strides_[1]}, .padding = padding_};
}

Tensor Pooling2D::call(const Tensor& x, bool training) {
  return is_max_ ? ops::max_pool(x, pool_options()) : ops::average_pool(x, pool_options());
}

Config Pooling2D::get_config() const {
  Config c = Layer::get_config();
  c["pool_size"] = Config::array({pool_size_[0], pool_size_[1]});
  c["padding"] = padding_;
  c["strides"] = Config::array({strides_[0], strides_[1]});
  c["data_format"] = "channels_last";
  return c;
}

namespace {
template <typename P>
std::shared_ptr<Layer> pooling2d_from_config(const Config& config, const char* owner) {
  serialization::ConfigReader r(config, owner);
  Pooling2DOptions o;
  o.name = r.name();
  r.require("data_format", "channels_last");
  const auto pool = r.has("pool_size") ? r.ints("pool_size", 2) : std::vector<int64_t>{2, 2};
  if (r.has("strides")) {
    const auto s = r.ints("strides", 2);
    o.strides = std::array<int64_t, 2>{s[0], s[1]};
  }
  o.padding = r.string("padding", "valid");
  auto layer = std::make_shared<P>(std::array<int64_t, 2>{pool[0], pool[1]}, o);
  r.finish(*layer);
  return layer;
}
}  // namespace

std::shared_ptr<Layer> MaxPooling2D::from_config(const Config& c) {
  return pooling2d_from_config<MaxPooling2D>(c, "MaxPooling2D config");
}
std::shared_ptr<Layer> AveragePooling2D::from_config(const Config& c) {
  return pooling2d_from_config<AveragePooling2D>(c, "AveragePooling2D config");
}

}  // namespace keras::layers
