#pragma once
// Internal: CHECK for user input, ASSERT for invariants. Not installed.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "errors.h"

/// Throws `Exc` with a formatted message when `cond` is false. For bad user input.
#define KCPP_CHECK(cond, Exc, ...)                    \
  do {                                                \
    if (!(cond)) throw Exc(fmt::format(__VA_ARGS__)); \
  } while (0)

/// Throws InternalError when an invariant is broken; names the expression and place.
#define KCPP_ASSERT(cond)                                                                                             \
  do {                                                                                                                \
    if (!(cond)) throw ::keras::InternalError(fmt::format("internal error: {} at {}:{}", #cond, __FILE__, __LINE__)); \
  } while (0)
