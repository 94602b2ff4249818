#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "export.h"

namespace keras {

/// Element types. bfloat16 and float16 are storage types for the GPU backend's mixed precision.
enum class DType : uint8_t { float32, float16, bfloat16, int32, int64, uint8, bool_ };

/// Bytes per element.
KERASCPP_API size_t dtype_size(DType dtype);
/// Keras' name: "float32", "int64", "bool", ...
KERASCPP_API std::string dtype_name(DType dtype);
/// Parses Keras' name; throws ValueError naming the accepted names.
KERASCPP_API DType dtype_from_name(const std::string& name);
/// True for float32, float16 and bfloat16.
KERASCPP_API bool is_floating(DType dtype);

/// The DType of a C++ element type (float, int32_t, int64_t, uint8_t, bool).
template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::float32;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::int32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::int64;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::uint8;
}
template <>
constexpr DType dtype_of<bool>() {
  return DType::bool_;
}

}  // namespace keras
