#include "layers/initializers.h"

#include <cmath>
#include <map>

#include "core/check.h"
#include "core/ops.h"

namespace keras {
namespace initializers {

std::pair<double, double> compute_fans(const Shape& shape) {
  const auto& d = shape.dims();
  if (d.empty()) return {1, 1};
  if (d.size() == 1) return {static_cast<double>(d[0]), static_cast<double>(d[0])};
  if (d.size() == 2) return {static_cast<double>(d[0]), static_cast<double>(d[1])};
  double receptive = 1;
  for (size_t i = 0; i + 2 < d.size(); ++i) receptive *= static_cast<double>(d[i]);
  return {static_cast<double>(d[d.size() - 2]) * receptive, static_cast<double>(d.back()) * receptive};
}

namespace {
enum class Mode { fan_in, fan_out, fan_avg };
enum class Distribution { truncated_normal, untruncated_normal, uniform };

Config seed_config(std::optional<uint64_t> seed) {
  return Config{{"seed", seed ? Config(*seed) : Config(nullptr)}};
}
Initializer configured(Initializer init, const char* class_name, Config config) {
  return std::move(init.with_serialized(serialization::keras_object("keras.initializers", class_name, std::move(config))));
}

// Keras' VarianceScaling: uniform within +-sqrt(3 scale / n), or a normal (truncated at two
// standard deviations, its stddev corrected so the result has variance scale / n).
Initializer variance_scaling(const char* name, double scale, Mode mode, Distribution dist,
                             std::optional<uint64_t> seed) {
  return Initializer(name, [=](const Shape& shape) {
    const auto [fan_in, fan_out] = compute_fans(shape);
    const double n =
        std::max(1.0, mode == Mode::fan_in ? fan_in : mode == Mode::fan_out ? fan_out : (fan_in + fan_out) / 2);
    if (dist == Distribution::uniform) {
      const float limit = static_cast<float>(std::sqrt(3.0 * scale / n));
      return ops::random_uniform(shape, -limit, limit, seed);
    }
    if (dist == Distribution::untruncated_normal)
      return ops::random_normal(shape, 0.f, static_cast<float>(std::sqrt(scale / n)), seed);
    const float stddev = static_cast<float>(std::sqrt(scale / n) / 0.87962566103423978);
    return ops::truncated_normal(shape, 0.f, stddev, seed);
  });
}
Initializer named_scaling(const char* name, const char* class_name, double scale, Mode mode, Distribution dist,
                          std::optional<uint64_t> seed) {
  return configured(variance_scaling(name, scale, mode, dist, seed), class_name, seed_config(seed));
}
}  // namespace

Initializer GlorotUniform(std::optional<uint64_t> s) {
  return named_scaling("glorot_uniform", "GlorotUniform", 1, Mode::fan_avg, Distribution::uniform, s);
}
Initializer GlorotNormal(std::optional<uint64_t> s) {
  return named_scaling("glorot_normal", "GlorotNormal", 1, Mode::fan_avg, Distribution::truncated_normal, s);
}
Initializer HeUniform(std::optional<uint64_t> s) {
  return named_scaling("he_uniform", "HeUniform", 2, Mode::fan_in, Distribution::uniform, s);
}
Initializer HeNormal(std::optional<uint64_t> s) {
  return named_scaling("he_normal", "HeNormal", 2, Mode::fan_in, Distribution::truncated_normal, s);
}
Initializer LecunUniform(std::optional<uint64_t> s) {
  return named_scaling("lecun_uniform", "LecunUniform", 1, Mode::fan_in, Distribution::uniform, s);
}
Initializer LecunNormal(std::optional<uint64_t> s) {
  return named_scaling("lecun_normal", "LecunNormal", 1, Mode::fan_in, Distribution::truncated_normal, s);
}
Initializer VarianceScaling(double scale, const std::string& mode, const std::string& distribution,
                            std::optional<uint64_t> seed) {
  KCPP_CHECK(scale > 0, ValueError, "VarianceScaling: expected a positive scale, received {}", scale);
  Mode m;
  if (mode == "fan_in")
    m = Mode::fan_in;
  else if (mode == "fan_out")
    m = Mode::fan_out;
  else if (mode == "fan_avg")
    m = Mode::fan_avg;
  else
    throw ValueError(fmt::format("VarianceScaling: expected mode fan_in, fan_out or fan_avg, received '{}'", mode));
  Distribution d;
  if (distribution == "truncated_normal" || distribution == "normal")
    d = Distribution::truncated_normal;
  else if (distribution == "untruncated_normal")
    d = Distribution::untruncated_normal;
  else if (distribution == "uniform")
    d = Distribution::uniform;
  else
    throw ValueError(fmt::format(
        "VarianceScaling: expected distribution truncated_normal, untruncated_normal or uniform, received '{}'",
        distribution));
  Config c{{"scale", scale}, {"mode", mode}, {"distribution", distribution}};
  c["seed"] = seed ? Config(*seed) : Config(nullptr);
  return configured(variance_scaling("variance_scaling", scale, m, d, seed), "VarianceScaling", std::move(c));
}
Initializer Zeros() {
  return configured(Initializer("zeros", [](const Shape& s) { return ops::zeros(s); }), "Zeros", Config::object());
}
Initializer Ones() {
  return configured(Initializer("ones", [](const Shape& s) { return ops::ones(s); }), "Ones", Config::object());
}
Initializer Constant(float v) {
  return configured(Initializer("constant", [v](const Shape& s) { return ops::full(s, v); }), "Constant",
                    Config{{"value", v}});
}
Initializer RandomUniform(float lo, float hi, std::optional<uint64_t> seed) {
  Config c{{"minval", lo}, {"maxval", hi}};
  c["seed"] = seed ? Config(*seed) : Config(nullptr);
  return configured(
      Initializer("random_uniform", [=](const Shape& s) { return ops::random_uniform(s, lo, hi, seed); }),
      "RandomUniform", std::move(c));
}
Initializer RandomNormal(float mean, float stddev, std::optional<uint64_t> seed) {
  Config c{{"mean", mean}, {"stddev", stddev}};
  c["seed"] = seed ? Config(*seed) : Config(nullptr);
  return configured(
      Initializer("random_normal", [=](const Shape& s) { return ops::random_normal(s, mean, stddev, seed); }),
      "RandomNormal", std::move(c));
}
Initializer TruncatedNormal(float mean, float stddev, std::optional<uint64_t> seed) {
  Config c{{"mean", mean}, {"stddev", stddev}};
  c["seed"] = seed ? Config(*seed) : Config(nullptr);
  return configured(
      Initializer("truncated_normal", [=](const Shape& s) { return ops::truncated_normal(s, mean, stddev, seed); }),
      "TruncatedNormal", std::move(c));
}

Initializer Orthogonal(float gain, std::optional<uint64_t> seed) {
  Config c{{"gain", gain}};
  c["seed"] = seed ? Config(*seed) : Config(nullptr);
  return configured(Initializer("orthogonal", [=](const Shape& shape) {
    KCPP_CHECK(shape.rank() >= 2, ValueError, "orthogonal initializer: expected a shape of rank >= 2, received {}",
               shape.to_string());
    const int64_t cols = shape.dims().back(), rows = shape.num_elements() / std::max<int64_t>(cols, 1);
    // QR of a normal matrix (the taller orientation), signs fixed by R's diagonal, as Keras.
    const bool flip = rows < cols;
    const int64_t m = flip ? cols : rows, n = flip ? rows : cols;
    const auto a = ops::to_backend(ops::random_normal(Shape{m, n}, 0.f, 1.f, seed), default_backend());
    std::vector<double> q(static_cast<size_t>(m * n));
    const auto av = ops::cast(a, DType::float32).to_vector<float>();
    for (size_t i = 0; i < q.size(); ++i) q[i] = av[i];
    // Modified Gram-Schmidt on the columns of q (m x n, m >= n).
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t k = 0; k < j; ++k) {
        double dot = 0;
        for (int64_t i = 0; i < m; ++i) dot += q[static_cast<size_t>(i * n + k)] * q[static_cast<size_t>(i * n + j)];
        for (int64_t i = 0; i < m; ++i) q[static_cast<size_t>(i * n + j)] -= dot * q[static_cast<size_t>(i * n + k)];
      }
      double norm = 0;
      for (int64_t i = 0; i < m; ++i) norm += q[static_cast<size_t>(i * n + j)] * q[static_cast<size_t>(i * n + j)];
      norm = std::sqrt(norm);
      // R's diagonal is positive in Gram-Schmidt, so no sign correction is needed.
      for (int64_t i = 0; i < m; ++i) q[static_cast<size_t>(i * n + j)] /= norm > 0 ? norm : 1;
    }
    std::vector<float> out(static_cast<size_t>(rows * cols));
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        out[static_cast<size_t>(i * cols + j)] =
            gain * static_cast<float>(flip ? q[static_cast<size_t>(j * n + i)] : q[static_cast<size_t>(i * n + j)]);
    return Tensor::from_vector(out, shape);
  }), "Orthogonal", std::move(c));
}

Initializer deserialize(const Config& config) {
  if (config.is_string()) return Initializer(config.get<std::string>());
  KCPP_CHECK(config.is_object() && config.contains("class_name") && config["class_name"].is_string(), ValueError,
             "initializer config: expected a name or an object with a class_name, received {}", config.dump());
  const std::string cls = config["class_name"].get<std::string>();
  static const Config empty = Config::object();
  serialization::ConfigReader r(config.contains("config") ? config["config"] : empty, "initializer " + cls);
  Initializer out = [&]() -> Initializer {
    if (cls == "GlorotUniform") return GlorotUniform(r.seed());
    if (cls == "GlorotNormal") return GlorotNormal(r.seed());
    if (cls == "HeUniform") return HeUniform(r.seed());
    if (cls == "HeNormal") return HeNormal(r.seed());
    if (cls == "LecunUniform") return LecunUniform(r.seed());
    if (cls == "LecunNormal") return LecunNormal(r.seed());
    if (cls == "Orthogonal") return Orthogonal(static_cast<float>(r.number("gain", 1.0)), r.seed());
    if (cls == "Zeros") return Zeros();
    if (cls == "Ones") return Ones();
    if (cls == "Constant") return Constant(static_cast<float>(r.number("value", 0.0)));
    if (cls == "RandomUniform")
      return RandomUniform(static_cast<float>(r.number("minval", -0.05)), static_cast<float>(r.number("maxval", 0.05)),
                           r.seed());
    if (cls == "RandomNormal")
      return RandomNormal(static_cast<float>(r.number("mean", 0.0)), static_cast<float>(r.number("stddev", 0.05)),
                          r.seed());
    if (cls == "TruncatedNormal")
      return TruncatedNormal(static_cast<float>(r.number("mean", 0.0)), static_cast<float>(r.number("stddev", 0.05)),
                             r.seed());
    if (cls == "VarianceScaling")
      return VarianceScaling(r.number("scale", 1.0), r.string("mode", "fan_in"),
                             r.string("distribution", "truncated_normal"), r.seed());
    throw ValueError(fmt::format(
        "unknown initializer class '{}': expected one of GlorotUniform, GlorotNormal, HeUniform, HeNormal, "
        "LecunUniform, LecunNormal, Orthogonal, Zeros, Ones, Constant, RandomUniform, RandomNormal, "
        "TruncatedNormal, VarianceScaling",
        cls));
  }();
  r.finish();
  return out;
}

}  // namespace initializers

namespace {
Initializer by_name(const std::string& name) {
  using namespace initializers;
  static const std::map<std::string, std::function<Initializer()>> known = {
      {"glorot_uniform", [] { return GlorotUniform(); }},
      {"glorot_normal", [] { return GlorotNormal(); }},
      {"he_uniform", [] { return HeUniform(); }},
      {"he_normal", [] { return HeNormal(); }},
      {"lecun_uniform", [] { return LecunUniform(); }},
      {"lecun_normal", [] { return LecunNormal(); }},
      {"orthogonal", [] { return Orthogonal(); }},
      {"zeros", [] { return Zeros(); }},
      {"ones", [] { return Ones(); }},
      {"random_uniform", [] { return RandomUniform(); }},
      {"random_normal", [] { return RandomNormal(); }},
      {"truncated_normal", [] { return TruncatedNormal(); }}};
  // Keras also accepts the class names ("GlorotUniform") and a few aliases as strings.
  static const std::map<std::string, std::string> aliases = {
      {"GlorotUniform", "glorot_uniform"}, {"GlorotNormal", "glorot_normal"}, {"HeUniform", "he_uniform"},
      {"HeNormal", "he_normal"},           {"LecunUniform", "lecun_uniform"}, {"LecunNormal", "lecun_normal"},
      {"Orthogonal", "orthogonal"},        {"Zeros", "zeros"},                {"Ones", "ones"},
      {"RandomUniform", "random_uniform"}, {"RandomNormal", "random_normal"}, {"TruncatedNormal", "truncated_normal"},
      {"zero", "zeros"},                   {"one", "ones"},                   {"uniform", "random_uniform"},
      {"normal", "random_normal"}};
  auto alias = aliases.find(name);
  auto it = known.find(alias != aliases.end() ? alias->second : name);
  if (it == known.end()) {
    std::vector<std::string> names;
    for (const auto& [k, v] : known) names.push_back(k);
    throw ValueError(fmt::format("unknown initializer '{}': expected one of {}", name, fmt::join(names, ", ")));
  }
  return it->second();
}
}  // namespace

Initializer::Initializer(std::string name, Fn fn) : name_(std::move(name)), fn_(std::move(fn)) {
  serialized_ = Config{{"module", nullptr}, {"class_name", name_}, {"config", Config::object()}, {"registered_name", name_}};
}
Initializer& Initializer::with_serialized(Config serialized) {
  serialized_ = std::move(serialized);
  return *this;
}

Initializer::Initializer(const char* name) : Initializer(by_name(name)) {}
Initializer::Initializer(const std::string& name) : Initializer(by_name(name)) {}

}  // namespace keras
