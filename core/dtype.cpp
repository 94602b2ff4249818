#include "core/dtype.h"

#include "core/check.h"

namespace keras {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::float32:
      return 4;
    case DType::float16:
      return 2;
    case DType::bfloat16:
      return 2;
    case DType::int32:
      return 4;
    case DType::int64:
      return 8;
    case DType::uint8:
      return 1;
    case DType::bool_:
      return 1;
  }
  KCPP_ASSERT(false);
}

std::string dtype_name(DType dtype) {
  switch (dtype) {
    case DType::float32:
      return "float32";
    case DType::float16:
      return "float16";
    case DType::bfloat16:
      return "bfloat16";
    case DType::int32:
      return "int32";
    case DType::int64:
      return "int64";
    case DType::uint8:
      return "uint8";
    case DType::bool_:
      return "bool";
  }
  KCPP_ASSERT(false);
}

DType dtype_from_name(const std::string& name) {
  for (DType d :
       {DType::float32, DType::float16, DType::bfloat16, DType::int32, DType::int64, DType::uint8, DType::bool_})
    if (dtype_name(d) == name) return d;
  throw ValueError(
      fmt::format("unknown dtype '{}': expected one of float32, float16, bfloat16, int32, int64, uint8, bool", name));
}

bool is_floating(DType dtype) { return dtype == DType::float32 || dtype == DType::float16 || dtype == DType::bfloat16; }

}  // namespace keras
