#pragma once
#include <cstdint>
#include <optional>

#include "export.h"

namespace keras {

namespace utils {
/// Seeds kerascpp's global generator, like keras.utils.set_random_seed: unseeded random ops and
/// initializers become reproducible from this point on.
KERASCPP_API void set_random_seed(uint64_t seed);
}  // namespace utils

namespace random {

/// A stream of 64-bit keys for random ops, like keras.random.SeedGenerator. Each random op takes
/// one key; backends expand a key into values with a counter-based hash, so CPU and GPU agree.
class KERASCPP_API SeedGenerator {
 public:
  /// Seeded from the global generator when `seed` is empty.
  explicit SeedGenerator(std::optional<uint64_t> seed = std::nullopt);
  /// The next key; advances the stream.
  uint64_t next();
  /// The stream's position, saved and restored to resume training exactly (BackupAndRestore).
  uint64_t state() const { return state_; }
  void set_state(uint64_t state) { state_ = state; }

 private:
  uint64_t state_;
};

/// The global generator's position (saved with a training backup) and its restoration.
KERASCPP_API uint64_t global_state();
KERASCPP_API void set_global_state(uint64_t state);

/// A key for one random op: derived from `seed` when given (same seed, same values, as Keras'
/// integer seed arguments), else the next key of the global generator.
KERASCPP_API uint64_t make_key(std::optional<uint64_t> seed);

/// SplitMix64: the mixing function both backends use to turn (key, counter) into bits.
constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace random
}  // namespace keras
