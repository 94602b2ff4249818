#pragma once
#include <functional>
#include <string>

#include "export.h"

namespace keras {

enum class LogLevel { trace, debug, info, warn, error, critical, off };

/// Sets the threshold at run time (KERASCPP_LOG_LEVEL sets it at start-up).
KERASCPP_API void set_log_level(LogLevel level);
/// Parses "trace", "debug", "info", "warn", "error", "critical", "off"; throws ValueError otherwise.
KERASCPP_API LogLevel log_level_from_name(const std::string& name);

/// Receives every message at or above the threshold, besides stderr. Returns an id for removal.
KERASCPP_API int add_log_listener(std::function<void(LogLevel, const std::string&)> listener);
KERASCPP_API void remove_log_listener(int id);

namespace detail {
/// The library's log calls; messages go to stderr through spdlog.
KERASCPP_API void log(LogLevel level, const std::string& message);
inline void log_debug(const std::string& m) { log(LogLevel::debug, m); }
inline void log_info(const std::string& m) { log(LogLevel::info, m); }
inline void log_warn(const std::string& m) { log(LogLevel::warn, m); }
}  // namespace detail

}  // namespace keras
