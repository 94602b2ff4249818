// A plugin that cannot run on this machine (as the CUDA plugin on a machine without a GPU).
#include <cstdio>

#include "core/backend_plugin.h"

namespace {
int score(char* why, size_t n) {
  std::snprintf(why, n, "no fake accelerator found");
  return 0;
}
keras::Backend* create(int) { return nullptr; }
int count() { return 1; }
const KerascppBackendDescriptor kDescriptor{KERASCPP_BACKEND_ABI_VERSION, "fake", &score, &create, &count};
}  // namespace

extern "C" KERASCPP_API const KerascppBackendDescriptor* kerascpp_backend_descriptor() { return &kDescriptor; }
