#include "core/shape.h"

#include "core/check.h"

namespace keras {

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t out;
  KCPP_CHECK(!__builtin_mul_overflow(a, b, &out), ValueError, "{}: element count overflows int64 ({} * {})", what, a,
             b);
  return out;
}

Shape::Shape(std::initializer_list<int64_t> dims) : dims_(dims) { validate(); }
Shape::Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) { validate(); }

void Shape::validate() {
  numel_ = 1;
  for (int64_t d : dims_) {
    if (d < 0) {
      // Format by hand: to_string() is fine with negative values.
      throw ValueError(fmt::format("invalid shape {}: dimensions must be non-negative, received {}", to_string(), d));
    }
    int64_t out;
    if (__builtin_mul_overflow(numel_, d, &out))
      throw ValueError(fmt::format("invalid shape {}: element count overflows int64", to_string()));
    numel_ = out;
  }
}

size_t Shape::normalize_axis(int64_t axis) const {
  const int64_t r = static_cast<int64_t>(rank());
  KCPP_CHECK(axis >= -r && axis < r, ValueError, "axis {} is out of range for a tensor of rank {} (shape {})", axis, r,
             to_string());
  return static_cast<size_t>(axis < 0 ? axis + r : axis);
}

int64_t Shape::dim(int64_t axis) const { return dims_[normalize_axis(axis)]; }

std::vector<int64_t> Shape::strides() const {
  std::vector<int64_t> s(dims_.size(), 1);
  for (size_t i = dims_.size(); i-- > 1;) s[i - 1] = s[i] * dims_[i];
  return s;
}

std::string Shape::to_string() const {
  std::string s = "(";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[i]);
  }
  if (dims_.size() == 1) s += ",";
  return s + ")";
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const size_t r = std::max(a.rank(), b.rank());
  std::vector<int64_t> out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i < r - a.rank() ? 1 : a[i - (r - a.rank())];
    const int64_t db = i < r - b.rank() ? 1 : b[i - (r - b.rank())];
    KCPP_CHECK(da == db || da == 1 || db == 1, ShapeError,
               "shapes {} and {} cannot be broadcast together (axis {}: {} vs {})", a.to_string(), b.to_string(),
               static_cast<int64_t>(i) - static_cast<int64_t>(r), da, db);
    out[i] = da == 1 ? db : da;
  }
  return Shape(std::move(out));
}

}  // namespace keras
