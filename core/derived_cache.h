#pragma once
// Data a backend derives from tensors' contents (weights reordered for its kernels, a folded batch
// norm's scale and shift), kept per set of source storages and valid while each keeps its
// Storage::version. Header-only: the backends use it, the frontend does not.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "core/tensor.h"

namespace keras {

/// Tensors some data is derived from, as they are now, and a key naming them and `what` (undefined
/// tensors are skipped).
struct DerivedSources {
  std::string key;
  std::vector<std::shared_ptr<Storage>> storages;
  std::vector<uint64_t> versions;
};
inline DerivedSources derived_sources(const std::vector<const Tensor*>& sources, const std::string& what) {
  DerivedSources l{what, {}, {}};
  for (const Tensor* t : sources) {
    if (!t->defined()) {
      l.key += "|-";
      continue;
    }
    const std::shared_ptr<Storage>& s = t->impl()->storage;
    l.storages.push_back(s);
    l.versions.push_back(s->version());
    l.key += fmt::format("|{}+{}", static_cast<const void*>(s.get()), t->impl()->offset);
  }
  return l;
}

inline size_t derived_bytes(const std::shared_ptr<Storage>& s) { return s ? s->nbytes() : 0; }
inline size_t derived_bytes(const Tensor& t) { return t.defined() ? t.nbytes() : 0; }

/// `Derived`: a block of memory (std::shared_ptr<Storage>) or a Tensor.
template <typename Derived>
class DerivedCache {
 public:
  /// Above `max_bytes` of derived data for live sources, everything is dropped and kept anew.
  explicit DerivedCache(size_t max_bytes) : max_bytes_(max_bytes) {}

  /// What was kept for these sources at these versions, or nothing (a null or undefined Derived).
  Derived find(const DerivedSources& l) const {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(l.key);
    if (it == entries_.end() || it->second.versions != l.versions) return {};
    for (size_t i = 0; i < l.storages.size(); ++i)
      if (it->second.sources[i].lock() != l.storages[i]) return {};
    return it->second.derived;
  }

  /// Keeps `derived` for the sources, unless one was written since `l` was described. A new entry
  /// first drops those whose sources are gone (per-call casts would otherwise pile up).
  void keep(const DerivedSources& l, Derived derived) {
    for (size_t i = 0; i < l.storages.size(); ++i)
      if (l.storages[i]->version() != l.versions[i]) return;
    std::lock_guard lock(mutex_);
    if (!entries_.count(l.key)) {
      std::erase_if(entries_, [](const auto& e) { return e.second.expired(); });
      bytes_ = 0;
      for (const auto& [k, e] : entries_) bytes_ += derived_bytes(e.derived);
      if (bytes_ > max_bytes_) {
        entries_.clear();
        bytes_ = 0;
      }
    }
    Entry& e = entries_[l.key];
    bytes_ -= derived_bytes(e.derived);
    e = {std::vector<std::weak_ptr<Storage>>(l.storages.begin(), l.storages.end()), l.versions, std::move(derived)};
    bytes_ += derived_bytes(e.derived);
  }

  size_t size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

 private:
  struct Entry {
    std::vector<std::weak_ptr<Storage>> sources;
    std::vector<uint64_t> versions;  // each source's when kept
    Derived derived;
    bool expired() const {
      return std::any_of(sources.begin(), sources.end(), [](const auto& s) { return s.expired(); });
    }
  };
  size_t max_bytes_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  size_t bytes_ = 0;
};

}  // namespace keras
