#include "core/config.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <sstream>

namespace keras {
namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

Settings read_environment() {
  Settings c;
  c.backend = env_or("KERASCPP_BACKEND", "auto");
  std::stringstream paths(env_or("KERASCPP_BACKEND_PATH", ""));
  for (std::string p; std::getline(paths, p, ':');)
    if (!p.empty()) c.backend_path.push_back(p);
  c.log_level = env_or("KERASCPP_LOG_LEVEL", "info");
  const std::string home = env_or("HOME", "");
  c.tf32 = env_or("KERASCPP_TF32", "1") != "0";
  c.datasets_dir = env_or("KERASCPP_DATASETS_DIR", "/usr/share/datasets");
  c.keras_home = env_or("KERAS_HOME", home.empty() ? std::string(".keras") : home + "/.keras");
  return c;
}

std::mutex config_mutex;
Settings* current = nullptr;

}  // namespace

const Settings& settings() {
  std::lock_guard lock(config_mutex);
  if (!current) current = new Settings(read_environment());  // lives for the process
  return *current;
}

namespace {
std::atomic<int> tf32_override{-1};  // -1: follow the environment
}

void enable_tensor_float_32_execution(bool enabled) { tf32_override.store(enabled ? 1 : 0); }
bool tensor_float_32_execution_enabled() {
  const int o = tf32_override.load();
  return o < 0 ? settings().tf32 : o == 1;
}

void reload_settings() {
  std::lock_guard lock(config_mutex);
  if (!current) current = new Settings();
  *current = read_environment();
}

}  // namespace keras
