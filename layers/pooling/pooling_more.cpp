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

GlobalPooling::GlobalPooling(std::string class_name, bool is_max, size_t rank, std::string name)
    : Layer(std::move(class_name), std::move(name)), is_max_(is_max), rank_(rank) {}
void GlobalPooling::check_input(const PartialShape& s) const {
  if (s.size() != rank_)
    throw input_error(
        fmt::format("expected ndim={}, found ndim={}. Full shape received: {}", rank_, s.size(), shape_to_string(s)));
}
Tensor GlobalPooling::call(const Tensor& x, bool training) {
  std::vector<int64_t> axes;
  for (size_t i = 1; i + 1 < x.rank(); ++i) axes.push_back(static_cast<int64_t>(i));
  return is_max_ ? ops::max(x, axes) : ops::mean(x, axes);
}

}  // namespace keras::layers
