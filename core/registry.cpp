#include "core/registry.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>

#include "core/backend_plugin.h"
#include "core/check.h"
#include "core/config.h"
#include "core/logging.h"

#ifndef KERASCPP_PLUGIN_DIR
#define KERASCPP_PLUGIN_DIR ""
#endif

namespace fs = std::filesystem;

namespace keras {

Backend::~Backend() = default;

void Backend::conv_max_pool_forward(const Tensor&, const Tensor&, const Tensor*, Tensor&, const ConvAttrs&,
                                    const PoolAttrs&) {
  throw NotImplementedError(
      fmt::format("backend '{}' has no fused convolution and max pooling (Capability::fused_conv_max_pool)", name()));
}
void Backend::rnn_forward(const RnnAttrs&, const Tensor&, const Tensor&, const Tensor*, const Tensor&, const Tensor&,
                          const Tensor&, const Tensor*, Tensor&, Tensor&, Tensor*, Tensor*) {
  throw NotImplementedError(fmt::format("backend '{}' has no fused recurrences (Capability::fused_rnn)", name()));
}
void Backend::rnn_backward(const RnnAttrs&, const Tensor&, const Tensor&, const Tensor*, const Tensor&, const Tensor&,
                           const Tensor&, const Tensor*, const Tensor&, const Tensor&, const Tensor*, const Tensor&,
                           const Tensor&, const Tensor&, const Tensor*, Tensor&, Tensor&, Tensor*, Tensor&, Tensor&,
                           Tensor&, Tensor*) {
  throw NotImplementedError(fmt::format("backend '{}' has no fused recurrences (Capability::fused_rnn)", name()));
}
void Backend::layer_norm_forward(const Tensor&, const Tensor*, const Tensor*, Tensor&, Tensor*, Tensor*, float) {
  throw NotImplementedError(fmt::format("backend '{}' has no fused layer normalization (Capability::fused_layer_norm)", name()));
}
void Backend::layer_norm_backward(const Tensor&, const Tensor&, const Tensor*, const Tensor&, const Tensor&, Tensor&,
                                  Tensor*, Tensor*, float) {
  throw NotImplementedError(fmt::format("backend '{}' has no fused layer normalization (Capability::fused_layer_norm)", name()));
}
void Backend::begin_capture() {
  throw NotImplementedError(fmt::format("backend '{}' cannot record graphs (Capability::graph_capture)", name()));
}
std::unique_ptr<CapturedWork> Backend::end_capture() {
  throw NotImplementedError(fmt::format("backend '{}' cannot record graphs (Capability::graph_capture)", name()));
}
void Backend::begin_guarded_by_checks() {}
void Backend::end_guarded_by_checks() {}
void Backend::begin_deferring_checks() {}
void Backend::end_deferring_checks() {}
CapturedWork::~CapturedWork() = default;

namespace backend {
namespace {

constexpr const char* kPrefix = "libkerascpp_backend_";

struct Loaded {
  PluginInfo info;
  const KerascppBackendDescriptor* descriptor = nullptr;
  Backend* default_instance = nullptr;  // created on first use, never destroyed (plugins stay loaded)
  std::map<int, Backend*> by_device;     // device index -> backend, the default one included
};

thread_local Backend* scoped_backend = nullptr;  // DeviceScope's choice for this thread

struct Registry {
  std::mutex mutex;
  std::map<std::string, Loaded> by_path;  // canonical path -> plugin
  std::atomic<Backend*> default_backend{nullptr};
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: tensors may outlive static teardown
  return *r;
}

std::string library_folder() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&library_folder), &info) && info.dli_fname)
    return fs::path(info.dli_fname).parent_path().string();
  return "";
}

// Loads one plugin file (once); records why it is unusable instead of throwing.
Loaded& load(Registry& r, const std::string& file) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(file, ec);
  const std::string key = ec ? file : canonical.string();
  auto it = r.by_path.find(key);
  if (it != r.by_path.end()) return it->second;
  Loaded& l = r.by_path[key];
  l.info.path = key;
  l.info.name = fs::path(key).filename().string();
  void* handle = dlopen(key.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    l.info.reason = fmt::format("cannot load: {}", dlerror());
    return l;
  }
  auto entry = reinterpret_cast<KerascppBackendEntryFn>(dlsym(handle, KERASCPP_BACKEND_ENTRY_POINT));
  if (!entry) {
    l.info.reason = fmt::format("missing entry point '{}'", KERASCPP_BACKEND_ENTRY_POINT);
    return l;
  }
  const KerascppBackendDescriptor* d = entry();
  if (!d) {
    l.info.reason = "entry point returned no descriptor";
    return l;
  }
  if (d->name) l.info.name = d->name;
  if (d->abi_version != KERASCPP_BACKEND_ABI_VERSION) {
    l.info.reason = fmt::format("ABI version {}, expected {}", d->abi_version, KERASCPP_BACKEND_ABI_VERSION);
    return l;
  }
  if (!d->name || !d->score || !d->create) {
    l.info.reason = "incomplete descriptor (name, score or create missing)";
    return l;
  }
  char why[512] = {0};
  l.info.score = d->score(why, sizeof why);
  if (l.info.score <= 0) {
    l.info.score = 0;
    l.info.reason = why[0] ? why : "cannot run on this machine";
  }
  l.descriptor = d;
  return l;
}

std::vector<std::string> plugin_files(const std::string& folder) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kPrefix, 0) == 0 && entry.path().extension() == ".so") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<Loaded*> scan(Registry& r) {
  std::vector<Loaded*> found;
  for (const auto& folder : plugin_search_path())
    for (const auto& file : plugin_files(folder)) {
      Loaded* l = &load(r, file);
      if (std::find(found.begin(), found.end(), l) == found.end()) found.push_back(l);
    }
  return found;
}

std::string describe(const std::vector<Loaded*>& plugins) {
  if (plugins.empty()) return fmt::format("none (searched: {})", fmt::join(plugin_search_path(), ", "));
  std::vector<std::string> parts;
  for (const Loaded* l : plugins)
    parts.push_back(l->info.reason.empty() ? fmt::format("{} (score {})", l->info.name, l->info.score)
                                           : fmt::format("{} (unusable: {})", l->info.name, l->info.reason));
  return fmt::format("{}", fmt::join(parts, ", "));
}

// index -1: the device a bare name means.
Backend& instantiate(Loaded& l, int index) {
  if (index < 0 && l.default_instance) return *l.default_instance;
  if (index >= 0)
    if (auto it = l.by_device.find(index); it != l.by_device.end()) return *it->second;
  if (index >= 0) {
    const int count = l.descriptor->device_count ? l.descriptor->device_count() : 1;
    KCPP_CHECK(count < 0 || index < count, BackendError,
               "backend '{}': no device {}; this machine has {} (valid: {}:0 to {}:{})", l.info.name, index, count,
               l.info.name, l.info.name, count - 1);
  }
  Backend* created = l.descriptor->create(index);
  KCPP_CHECK(created, BackendError, "backend plugin {} failed to create its backend for device {}", l.info.path,
             index);
  // The default device may already have a backend under its index: one backend per device.
  Backend*& slot = l.by_device[created->device().index];
  if (!slot) slot = created;
  if (index < 0) l.default_instance = slot;
  return *slot;
}

// "cuda:1" -> ("cuda", 1); "cuda" -> ("cuda", -1).
std::pair<std::string, int> split_device(const std::string& choice) {
  const auto colon = choice.rfind(':');
  if (colon == std::string::npos) return {choice, -1};
  const std::string digits = choice.substr(colon + 1);
  KCPP_CHECK(!digits.empty() && digits.size() < 6 &&
                 std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }),
             BackendError, "backend '{}': expected a name or a device such as 'cuda:1', received '{}'", choice, choice);
  return {choice.substr(0, colon), std::stoi(digits)};
}

Loaded& find(Registry& r, const std::string& choice, const std::string& name);

Backend& select(Registry& r, const std::string& choice) {
  const bool is_path = choice.find('/') != std::string::npos || fs::path(choice).extension() == ".so";
  if (is_path) {
    Loaded& l = load(r, choice);
    KCPP_CHECK(l.info.reason.empty(), BackendError, "KERASCPP_BACKEND='{}': plugin {} is unusable: {}", choice,
               l.info.path, l.info.reason);
    return instantiate(l, -1);
  }
  const auto [name, index] = split_device(choice);
  return instantiate(find(r, choice, name), index);
}

// The plugin a name chooses ("auto": the highest score).
Loaded& find(Registry& r, const std::string& choice, const std::string& name) {
  std::vector<Loaded*> plugins = scan(r);
  for (const Loaded* l : plugins)
    if (!l->info.reason.empty())
      detail::log_debug(fmt::format("backend candidate {} rejected: {}", l->info.path, l->info.reason));
  if (name == "auto") {
    Loaded* best = nullptr;
    for (Loaded* l : plugins)
      if (l->info.reason.empty() && (!best || l->info.score > best->info.score)) best = l;
    KCPP_CHECK(best, BackendError, "KERASCPP_BACKEND=auto: no usable backend; found: {}", describe(plugins));
    return *best;
  }
  for (Loaded* l : plugins)
    if (l->info.name == name) {
      KCPP_CHECK(l->info.reason.empty(), BackendError,
                 "KERASCPP_BACKEND='{}': backend '{}' cannot run here: {}; available: {}", choice, name,
                 l->info.reason, describe(plugins));
      return *l;
    }
  throw BackendError(
      fmt::format("KERASCPP_BACKEND='{}': no backend named '{}'; expected 'auto', a plugin path, or one of: {}", choice,
                  name, describe(plugins)));
}

}  // namespace

std::vector<std::string> plugin_search_path() {
  std::vector<std::string> folders = settings().backend_path;
  if (std::string(KERASCPP_PLUGIN_DIR).size()) folders.push_back(KERASCPP_PLUGIN_DIR);
  const std::string own = library_folder();
  if (!own.empty()) folders.push_back(own);
  return folders;
}

std::vector<PluginInfo> available_backends() {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<PluginInfo> out;
  for (const Loaded* l : scan(r)) out.push_back(l->info);
  return out;
}

Backend& get_backend(const std::string& choice) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  return select(r, choice);
}

int device_count(const std::string& name) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  const Loaded& l = find(r, name, split_device(name).first);
  return l.descriptor->device_count ? l.descriptor->device_count() : 1;
}

DeviceScope::DeviceScope(Backend& backend) : previous_(scoped_backend) {
  backend.make_current();
  scoped_backend = &backend;
}
DeviceScope::DeviceScope(const std::string& device) : DeviceScope(get_backend(device)) {}
DeviceScope::~DeviceScope() {
  scoped_backend = previous_;
  try {
    default_backend().make_current();
  } catch (...) {  // a destructor must not throw; the next call on that device reports the failure
  }
}

void set_default_backend(const std::string& choice) {
  Backend& b = get_backend(choice);
  auto& r = registry();
  r.default_backend.store(&b, std::memory_order_release);
  detail::log_info(fmt::format("using backend '{}' on {}", b.name(), b.device().to_string()));
}

std::string backend_name() { return default_backend().name(); }

MemoryInfo get_memory_info(const std::string& device) {
  return (device.empty() ? default_backend() : get_backend(device)).memory_info();
}
void reset_memory_stats(const std::string& device) {
  (device.empty() ? default_backend() : get_backend(device)).reset_peak_memory();
}

}  // namespace backend

Backend& default_backend() {
  if (backend::scoped_backend) return *backend::scoped_backend;
  auto& r = backend::registry();
  if (Backend* b = r.default_backend.load(std::memory_order_acquire)) return *b;
  static std::once_flag once;
  std::call_once(once, [] {
    // The first use of a backend: settings that could not be read are reported here, once.
    for (const std::string& w : settings().warnings) detail::log_warn(w);
    if (!backend::registry().default_backend.load()) backend::set_default_backend(settings().backend);
  });
  return *r.default_backend.load();
}

}  // namespace keras
