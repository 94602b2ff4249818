#pragma once
#include <string>
#include <vector>

#include "backend.h"
#include "export.h"

namespace keras::backend {

/// One plugin the registry found, usable or not.
struct PluginInfo {
  std::string name;    // descriptor name, or the file name when it could not be read
  std::string path;    // the library file
  int score = 0;       // 0: cannot run here
  std::string reason;  // why it cannot run or could not load; empty when usable
};

/// Folders searched for plugins, in order: KERASCPP_BACKEND_PATH, the installed plugin folder,
/// the folder of libkerascpp.so.
KERASCPP_API std::vector<std::string> plugin_search_path();

/// Every plugin in the search path, with its score or the reason it was rejected.
KERASCPP_API std::vector<PluginInfo> available_backends();

/// A backend by choice: "auto" (the highest score), a name ("cpu", "cuda"), a device ("cuda:1";
/// "cpu:1" is a logical CPU device: a backend of its own on the same processor) or a plugin path.
/// Throws BackendError naming the choice and what is available when it cannot be had.
KERASCPP_API Backend& get_backend(const std::string& choice);

/// How many devices the named backend drives here ("cuda": the visible GPUs); -1 for the CPU,
/// which has as many logical devices as asked. Throws BackendError as get_backend does.
KERASCPP_API int device_count(const std::string& name);

/// While it lives, the calling thread's new tensors go to `backend` (its default_backend()), and
/// its device is the current one, as `with tf.device("/GPU:1"):` does. Scopes nest.
class KERASCPP_API DeviceScope {
 public:
  explicit DeviceScope(Backend& backend);
  /// By device name, as get_backend takes it ("cuda:1", "cpu").
  explicit DeviceScope(const std::string& device);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  Backend* previous_;
};

/// Makes `choice` the default backend for new tensors (KERASCPP_BACKEND does this at start-up).
KERASCPP_API void set_default_backend(const std::string& choice);

/// The default backend's name.
KERASCPP_API std::string backend_name();

/// Tensor memory in use on a device ("cuda:0", "cpu"; empty: the default backend's) and its peak,
/// as tf.config.experimental.get_memory_info.
KERASCPP_API MemoryInfo get_memory_info(const std::string& device = "");
/// Starts the device's peak again from what is in use now, as tf.config.experimental.reset_memory_stats.
KERASCPP_API void reset_memory_stats(const std::string& device = "");

}  // namespace keras::backend
