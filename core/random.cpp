#include "core/random.h"

#include <atomic>
#include <random>

namespace keras {
namespace {
std::atomic<uint64_t>& global_generator() {
  static std::atomic<uint64_t> s{std::random_device{}() * 0x100000001ULL ^ std::random_device{}()};
  return s;
}
}  // namespace

namespace utils {
void set_random_seed(uint64_t seed) { global_generator().store(random::splitmix64(seed)); }
}  // namespace utils

namespace random {

SeedGenerator::SeedGenerator(std::optional<uint64_t> seed)
    : state_(seed ? splitmix64(*seed ^ 0x5EEDULL) : make_key(std::nullopt)) {}

uint64_t SeedGenerator::next() {
  state_ += 0x9E3779B97F4A7C15ULL;
  return splitmix64(state_);
}

uint64_t make_key(std::optional<uint64_t> seed) {
  if (seed) return splitmix64(*seed ^ 0xC0FFEEULL);
  return splitmix64(global_generator().fetch_add(0x9E3779B97F4A7C15ULL));
}

uint64_t global_state() { return global_generator().load(); }
void set_global_state(uint64_t state) { global_generator().store(state); }

}  // namespace random
}  // namespace keras
