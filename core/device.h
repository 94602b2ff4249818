#pragma once
#include <string>

namespace keras {

/// Where a tensor's storage lives.
enum class DeviceType { cpu, cuda };

/// A device: its type and index (the GPU ordinal; 0 for the CPU).
struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;
  bool operator==(const Device&) const = default;
  /// "cpu" (the CPU's logical devices after the first: "cpu:1", ...), "cuda:0", ...
  std::string to_string() const {
    if (type == DeviceType::cpu) return index == 0 ? "cpu" : "cpu:" + std::to_string(index);
    return "cuda:" + std::to_string(index);
  }
};

}  // namespace keras
