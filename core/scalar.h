#pragma once
#include <cstdint>
#include <type_traits>

namespace keras {

/// One number of any dtype, passed to backends by value (fill values, optimizer hyper-parameters).
/// Holds both a double and an int64 so integers beyond 2^53 survive.
class Scalar {
 public:
  Scalar() = default;
  template <typename T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
  Scalar(T v)  // NOLINT: implicit on purpose, like a number literal
      : f_(static_cast<double>(v)), i_(static_cast<int64_t>(v)), is_int_(std::is_integral_v<T>) {}
  double to_double() const { return is_int_ ? static_cast<double>(i_) : f_; }
  int64_t to_int() const { return is_int_ ? i_ : static_cast<int64_t>(f_); }
  float to_float() const { return static_cast<float>(to_double()); }
  bool is_integral() const { return is_int_; }

 private:
  double f_ = 0.0;
  int64_t i_ = 0;
  bool is_int_ = false;
};

}  // namespace keras
