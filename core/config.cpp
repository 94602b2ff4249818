#include "core/config.h"

#include <fmt/format.h>

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

// A malformed number keeps the default rather than failing at start-up; Settings::warnings says so.
int env_int(const char* name, int fallback, std::vector<std::string>& warnings) {
  const std::string v = env_or(name, "");
  if (v.empty()) return fallback;
  try {
    size_t used = 0;
    const int x = std::stoi(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  warnings.push_back(fmt::format("{}={} is not an integer; using {}", name, v, fallback));
  return fallback;
}
double env_double(const char* name, double fallback, std::vector<std::string>& warnings) {
  const std::string v = env_or(name, "");
  if (v.empty()) return fallback;
  try {
    size_t used = 0;
    const double x = std::stod(v, &used);
    if (used == v.size() && x > 0) return x;
  } catch (const std::exception&) {
  }
  warnings.push_back(fmt::format("{}={} is not a positive number; using {}", name, v, fallback));
  return fallback;
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
  c.conv_winograd = env_or("KERASCPP_CONV_WINOGRAD", "1") != "0";
  const std::string low = env_or("KERASCPP_NATIVE_LOW_PRECISION", "auto");
  if (low == "0")
    c.native_low_precision = Settings::LowPrecisionKernels::none;
  else if (low == "all")
    c.native_low_precision = Settings::LowPrecisionKernels::all;
  else if (low != "auto" && low != "1")
    c.warnings.push_back(
        fmt::format("KERASCPP_NATIVE_LOW_PRECISION={} is not one of 0, auto, all; using auto", low));
  const std::string graphs = env_or("KERASCPP_CUDA_GRAPHS", "auto");
  if (graphs == "1")
    c.cuda_graphs = Settings::StepRecording::on;
  else if (graphs == "0")
    c.cuda_graphs = Settings::StepRecording::off;
  else if (graphs != "auto")
    c.warnings.push_back(fmt::format("KERASCPP_CUDA_GRAPHS={} is not one of 0, 1, auto; using auto", graphs));
  c.cudnn_rnn_algo = env_or("KERASCPP_CUDNN_RNN_ALGO", "");
  c.cudnn_rnn_layout = env_or("KERASCPP_CUDNN_RNN_LAYOUT", "");
  c.datasets_dir = env_or("KERASCPP_DATASETS_DIR", "/usr/share/datasets");
  c.keras_home = env_or("KERAS_HOME", home.empty() ? std::string(".keras") : home + "/.keras");
  // mpirun's variables first, then torchrun-style ones.
  c.launched_by_mpi = !env_or("OMPI_COMM_WORLD_SIZE", "").empty();
  c.rank = env_int("OMPI_COMM_WORLD_RANK", env_int("RANK", 0, c.warnings), c.warnings);
  c.world_size = env_int("OMPI_COMM_WORLD_SIZE", env_int("WORLD_SIZE", 1, c.warnings), c.warnings);
  c.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", env_int("LOCAL_RANK", 0, c.warnings), c.warnings);
  c.master_addr = env_or("MASTER_ADDR", "127.0.0.1");
  c.master_port = env_int("MASTER_PORT", 29500, c.warnings);
  c.distributed_timeout_s = env_double("KERASCPP_DISTRIBUTED_TIMEOUT", 300, c.warnings);
  c.cuda_device = env_int("KERASCPP_CUDA_DEVICE", c.local_rank, c.warnings);
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
