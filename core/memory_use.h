#pragma once
// Bytes a backend's allocator has handed out and not yet taken back, and the most it ever had:
// what tf.config.experimental.get_memory_info reports as "current" and "peak". Header-only: the
// backends use it and report it through Backend::memory_info().
#include <atomic>
#include <cstdint>

namespace keras {

class MemoryUse {
 public:
  void add(int64_t bytes) {
    const int64_t now = now_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    int64_t peak = peak_.load(std::memory_order_relaxed);
    while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
  }
  void remove(int64_t bytes) { now_.fetch_sub(bytes, std::memory_order_relaxed); }
  int64_t now() const { return now_.load(std::memory_order_relaxed); }
  int64_t peak() const { return peak_.load(std::memory_order_relaxed); }
  /// The peak starts again from what is in use now.
  void reset_peak() { peak_.store(now(), std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_{0}, peak_{0};
};

}  // namespace keras
