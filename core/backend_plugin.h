#pragma once
// The plugin ABI: each backend library exports one C entry point returning a descriptor.
#include <cstddef>
#include <cstdint>

#include "export.h"

namespace keras {
class Backend;
}

/// Bumped whenever the Backend class or this descriptor changes; the registry refuses mismatches.
#define KERASCPP_BACKEND_ABI_VERSION 9u
/// The symbol every plugin exports: `const KerascppBackendDescriptor* kerascpp_backend_descriptor()`.
#define KERASCPP_BACKEND_ENTRY_POINT "kerascpp_backend_descriptor"

extern "C" {
struct KerascppBackendDescriptor {
  uint32_t abi_version;  // KERASCPP_BACKEND_ABI_VERSION of the plugin's build
  const char* name;      // "cpu", "cuda": what KERASCPP_BACKEND names
  /// How well the backend can run here: 0 means it cannot (the reason is written to `why`),
  /// higher wins under "auto".
  int (*score)(char* why, size_t why_size);
  /// Creates the backend; called once, the object lives until the process ends.
  keras::Backend* (*create)();
};
typedef const KerascppBackendDescriptor* (*KerascppBackendEntryFn)();
}
