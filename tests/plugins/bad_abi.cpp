// A plugin built for another ABI version: the registry must refuse it.
#include "core/backend_plugin.h"

namespace {
int score(char*, size_t) { return 100; }
keras::Backend* create(int) { return nullptr; }
int count() { return 1; }
const KerascppBackendDescriptor kDescriptor{999, "badabi", &score, &create, &count};
}  // namespace

extern "C" KERASCPP_API const KerascppBackendDescriptor* kerascpp_backend_descriptor() { return &kDescriptor; }
