#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "export.h"

namespace keras {

/// A concrete tensor shape: non-negative dimensions, row-major (last axis fastest).
/// Construction validates every dimension; the element count is overflow-checked.
class KERASCPP_API Shape {
 public:
  Shape() = default;
  /// Throws ValueError for a negative dimension or an element count that overflows int64.
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(std::vector<int64_t> dims);

  size_t rank() const { return dims_.size(); }
  int64_t operator[](size_t i) const { return dims_[i]; }
  /// Dimension at `axis`, where negative counts from the end; throws ValueError when out of range.
  int64_t dim(int64_t axis) const;
  /// Maps a possibly negative axis to [0, rank); throws ValueError naming the rank when out of range.
  size_t normalize_axis(int64_t axis) const;
  const std::vector<int64_t>& dims() const { return dims_; }
  /// Product of the dimensions (1 for a scalar).
  int64_t num_elements() const { return numel_; }
  /// Row-major strides in elements.
  std::vector<int64_t> strides() const;
  /// Python-tuple form: "(32, 4)", "(5,)", "()".
  std::string to_string() const;

  bool operator==(const Shape& other) const { return dims_ == other.dims_; }
  bool operator!=(const Shape& other) const { return dims_ != other.dims_; }

 private:
  void validate();
  std::vector<int64_t> dims_;
  int64_t numel_ = 1;
};

/// Multiplies with overflow checking; throws ValueError naming `what` on overflow.
KERASCPP_API int64_t checked_mul(int64_t a, int64_t b, const char* what);

/// NumPy broadcasting of two shapes; throws ShapeError naming both when incompatible.
KERASCPP_API Shape broadcast_shapes(const Shape& a, const Shape& b);

}  // namespace keras
