#pragma once
#include <functional>
#include <optional>
#include <string>

#include "../core/export.h"
#include "../core/tensor.h"
#include "serialization.h"

namespace keras {

/// Makes a weight's initial value from its shape. Keras' names and defaults; `seed` makes it
/// reproducible (the same seed gives the same values).
class KERASCPP_API Initializer {
 public:
  using Fn = std::function<Tensor(const Shape& shape)>;
  /// By Keras name: "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
  /// "lecun_normal", "orthogonal", "zeros", "ones", "random_uniform", "random_normal",
  /// "truncated_normal". Throws ValueError naming the known ones.
  Initializer(const char* name);         // NOLINT: strings read like Keras
  Initializer(const std::string& name);  // NOLINT
  /// A custom initializer; it serializes as {"class_name": name} and loads only if registered.
  Initializer(std::string name, Fn fn);
  Tensor operator()(const Shape& shape) const { return fn_(shape); }
  const std::string& name() const { return name_; }
  /// Keras' serialized form: {"module": "keras.initializers", "class_name", "config", ...}.
  const Config& serialized() const { return serialized_; }
  Initializer& with_serialized(Config serialized);

 private:
  std::string name_;
  Fn fn_;
  Config serialized_;
};

namespace initializers {
/// Fan-in and fan-out as Keras computes them (kernels: receptive field times channels).
KERASCPP_API std::pair<double, double> compute_fans(const Shape& shape);
KERASCPP_API Initializer GlorotUniform(std::optional<uint64_t> seed = std::nullopt);
KERASCPP_API Initializer GlorotNormal(std::optional<uint64_t> seed = std::nullopt);
KERASCPP_API Initializer HeUniform(std::optional<uint64_t> seed = std::nullopt);
KERASCPP_API Initializer HeNormal(std::optional<uint64_t> seed = std::nullopt);
KERASCPP_API Initializer LecunUniform(std::optional<uint64_t> seed = std::nullopt);
KERASCPP_API Initializer LecunNormal(std::optional<uint64_t> seed = std::nullopt);
KERASCPP_API Initializer Orthogonal(float gain = 1.f, std::optional<uint64_t> seed = std::nullopt);
KERASCPP_API Initializer Zeros();
KERASCPP_API Initializer Ones();
KERASCPP_API Initializer Constant(float value);
/// Keras defaults: minval -0.05, maxval 0.05; mean 0, stddev 0.05.
KERASCPP_API Initializer RandomUniform(float minval = -0.05f, float maxval = 0.05f,
                                       std::optional<uint64_t> seed = std::nullopt);
KERASCPP_API Initializer RandomNormal(float mean = 0.f, float stddev = 0.05f,
                                      std::optional<uint64_t> seed = std::nullopt);
KERASCPP_API Initializer TruncatedNormal(float mean = 0.f, float stddev = 0.05f,
                                         std::optional<uint64_t> seed = std::nullopt);
/// Keras' VarianceScaling: mode "fan_in", "fan_out" or "fan_avg"; distribution "truncated_normal",
/// "untruncated_normal" or "uniform".
KERASCPP_API Initializer VarianceScaling(double scale = 1.0, const std::string& mode = "fan_in",
                                         const std::string& distribution = "truncated_normal",
                                         std::optional<uint64_t> seed = std::nullopt);
/// From a name ("he_normal") or Keras' serialized object (Keras 2 or 3); throws ValueError on unknown ones.
KERASCPP_API Initializer deserialize(const Config& config);
}  // namespace initializers

}  // namespace keras
