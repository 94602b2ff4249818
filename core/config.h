#pragma once
#include <string>
#include <vector>

#include "export.h"

namespace keras {

/// Settings read from the environment. This is the only place kerascpp reads environment
/// variables; everything else asks here.
struct KERASCPP_API Settings {
  /// KERASCPP_BACKEND: "cpu", "cuda", "auto" (default) or a path to a plugin library.
  std::string backend = "auto";
  /// KERASCPP_BACKEND_PATH: extra plugin folders, ':'-separated, searched first.
  std::vector<std::string> backend_path;
  /// KERASCPP_LOG_LEVEL: trace, debug, info (default), warn, error, critical, off.
  std::string log_level = "info";
  /// KERAS_HOME, else ~/.keras: where Keras keeps downloaded weights and data sets.
  std::string keras_home;
  /// KERASCPP_DATASETS_DIR: where data sets are looked for (Debian's packages use /usr/share/datasets).
  std::string datasets_dir = "/usr/share/datasets";
  /// KERASCPP_TF32: "0" starts with TensorFloat-32 off.
  bool tf32 = true;
};

/// TensorFloat-32 for float32 matrix products and convolutions on GPUs that have it (default on,
/// as in TensorFlow; KERASCPP_TF32=0 turns it off at start-up).
KERASCPP_API void enable_tensor_float_32_execution(bool enabled);
KERASCPP_API bool tensor_float_32_execution_enabled();

/// The configuration, read from the environment on first use.
KERASCPP_API const Settings& settings();
/// Reads the environment again (tests, or a program that changes its own environment).
KERASCPP_API void reload_settings();

}  // namespace keras
