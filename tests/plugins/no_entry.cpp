// A library named like a plugin that exports no entry point.
#include "core/export.h"

extern "C" KERASCPP_API int kerascpp_not_the_entry_point() { return 1; }
