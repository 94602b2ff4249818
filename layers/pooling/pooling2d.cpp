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

Tensor Pooling2D::call(const Tensor& x, bool training) {
  const ops::PoolOptions o{
      .pool_size = {pool_size_[0], pool_size_[1]}, .strides = {strides_[0], strides_[1]}, .padding = padding_};
  return is_max_ ? ops::max_pool(x, o) : ops::average_pool(x, o);
}

GlobalAveragePooling2D::GlobalAveragePooling2D(std::string name) : Layer("GlobalAveragePooling2D", std::move(name)) {}
void GlobalAveragePooling2D::check_input(const PartialShape& s) const {
  if (s.size() != 4)
    throw input_error(
        fmt::format("expected ndim=4, found ndim={}. Full shape received: {}", s.size(), shape_to_string(s)));
}
Tensor GlobalAveragePooling2D::call(const Tensor& x, bool training) { return ops::mean(x, {1, 2}); }

}  // namespace keras::layers
