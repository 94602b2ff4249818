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
  std::string to_string() const { return type == DeviceType::cpu ? "cpu" : "cuda:" + std::to_string(index); }
};

}  // namespace keras
