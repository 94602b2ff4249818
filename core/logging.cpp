// The only file that touches spdlog.
#include "core/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <map>
#include <mutex>

#include "core/check.h"
#include "core/config.h"

namespace keras {
namespace {

spdlog::level::level_enum to_spdlog(LogLevel l) {
  switch (l) {
    case LogLevel::trace:
      return spdlog::level::trace;
    case LogLevel::debug:
      return spdlog::level::debug;
    case LogLevel::info:
      return spdlog::level::info;
    case LogLevel::warn:
      return spdlog::level::warn;
    case LogLevel::error:
      return spdlog::level::err;
    case LogLevel::critical:
      return spdlog::level::critical;
    case LogLevel::off:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

struct LogState {
  std::shared_ptr<spdlog::logger> logger;
  LogLevel level = LogLevel::info;
  std::mutex mutex;
  std::map<int, std::function<void(LogLevel, const std::string&)>> listeners;
  int next_id = 1;
};

LogState& state() {
  static LogState* s = [] {
    auto* st = new LogState();
    st->logger = spdlog::stderr_color_mt("kerascpp");
    st->logger->set_pattern("[kerascpp] [%l] %v");
    try {
      st->level = log_level_from_name(settings().log_level);
    } catch (const ValueError& e) {
      st->logger->warn("{}; using info", e.what());
    }
    st->logger->set_level(to_spdlog(st->level));
    return st;
  }();
  return *s;
}

}  // namespace

LogLevel log_level_from_name(const std::string& name) {
  static const std::map<std::string, LogLevel> names = {{"trace", LogLevel::trace},       {"debug", LogLevel::debug},
                                                        {"info", LogLevel::info},         {"warn", LogLevel::warn},
                                                        {"warning", LogLevel::warn},      {"error", LogLevel::error},
                                                        {"critical", LogLevel::critical}, {"off", LogLevel::off}};
  auto it = names.find(name);
  KCPP_CHECK(it != names.end(), ValueError,
             "KERASCPP_LOG_LEVEL: expected one of trace, debug, info, warn, error, critical, off; "
             "received '{}'",
             name);
  return it->second;
}

void set_log_level(LogLevel level) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.level = level;
  s.logger->set_level(to_spdlog(level));
}

int add_log_listener(std::function<void(LogLevel, const std::string&)> listener) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.listeners[s.next_id] = std::move(listener);
  return s.next_id++;
}

void remove_log_listener(int id) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.listeners.erase(id);
}

namespace detail {
void log(LogLevel level, const std::string& message) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  if (level < s.level || s.level == LogLevel::off) return;
  s.logger->log(to_spdlog(level), message);
  for (auto& [id, listener] : s.listeners) listener(level, message);
}
}  // namespace detail

}  // namespace keras
