#pragma once
// The plugin ABI: each backend library exports one C entry point returning a descriptor.
#include <cstddef>
#include <cstdint>

#include "export.h"

namespace keras {
class Backend;
}

/// Bumped whenever the Backend class or this descriptor changes; the registry refuses mismatches.
#define KERASCPP_BACKEND_ABI_VERSION 18u
/// The symbol every plugin exports: `const KerascppBackendDescriptor* kerascpp_backend_descriptor()`.
#define KERASCPP_BACKEND_ENTRY_POINT "kerascpp_backend_descriptor"

extern "C" {
struct KerascppBackendDescriptor {
  uint32_t abi_version;  // KERASCPP_BACKEND_ABI_VERSION of the plugin's build
  const char* name;      // "cpu", "cuda": what KERASCPP_BACKEND names
  /// How well the backend can run here: 0 means it cannot (the reason is written to `why`),
  /// higher wins under "auto".
  int (*score)(char* why, size_t why_size);
  /// Creates the backend of device `index` (a GPU ordinal; the CPU's logical devices) or, for -1,
  /// of the device a bare name means (for CUDA, KERASCPP_CUDA_DEVICE or the local rank). Called once
  /// per device; the objects live until the process ends.
  keras::Backend* (*create)(int index);
  /// How many devices it can drive here; -1: any number of logical devices (the CPU).
  int (*device_count)();
};
typedef const KerascppBackendDescriptor* (*KerascppBackendEntryFn)();
}
