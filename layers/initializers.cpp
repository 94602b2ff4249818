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
enum class Mode { fan_in, fan_avg };
// Keras' VarianceScaling: uniform within +-sqrt(3 scale / n), or a normal truncated at two standard
// deviations whose stddev is corrected so the result has variance scale / n.
Initializer variance_scaling(const char* name, double scale, Mode mode, bool uniform, std::optional<uint64_t> seed) {
  return Initializer(name, [=](const Shape& shape) {
    const auto [fan_in, fan_out] = compute_fans(shape);
    const double n = std::max(1.0, mode == Mode::fan_in ? fan_in : (fan_in + fan_out) / 2);
    if (uniform) {
      const float limit = static_cast<float>(std::sqrt(3.0 * scale / n));
      return ops::random_uniform(shape, -limit, limit, seed);
    }
    const float stddev = static_cast<float>(std::sqrt(scale / n) / 0.87962566103423978);
    return ops::truncated_normal(shape, 0.f, stddev, seed);
  });
}
}  // namespace

Initializer GlorotUniform(std::optional<uint64_t> s) {
  return variance_scaling("glorot_uniform", 1, Mode::fan_avg, true, s);
}
Initializer GlorotNormal(std::optional<uint64_t> s) {
  return variance_scaling("glorot_normal", 1, Mode::fan_avg, false, s);
}
Initializer HeUniform(std::optional<uint64_t> s) { return variance_scaling("he_uniform", 2, Mode::fan_in, true, s); }
Initializer HeNormal(std::optional<uint64_t> s) { return variance_scaling("he_normal", 2, Mode::fan_in, false, s); }
Initializer LecunUniform(std::optional<uint64_t> s) {
  return variance_scaling("lecun_uniform", 1, Mode::fan_in, true, s);
}
Initializer LecunNormal(std::optional<uint64_t> s) {
  return variance_scaling("lecun_normal", 1, Mode::fan_in, false, s);
}
Initializer Zeros() {
  return Initializer("zeros", [](const Shape& s) { return ops::zeros(s); });
}
Initializer Ones() {
  return Initializer("ones", [](const Shape& s) { return ops::ones(s); });
}
Initializer Constant(float v) {
  return Initializer("constant", [v](const Shape& s) { return ops::full(s, v); });
}
Initializer RandomUniform(float lo, float hi, std::optional<uint64_t> seed) {
  return Initializer("random_uniform", [=](const Shape& s) { return ops::random_uniform(s, lo, hi, seed); });
}
Initializer RandomNormal(float mean, float stddev, std::optional<uint64_t> seed) {
  return Initializer("random_normal", [=](const Shape& s) { return ops::random_normal(s, mean, stddev, seed); });
}
Initializer TruncatedNormal(float mean, float stddev, std::optional<uint64_t> seed) {
  return Initializer("truncated_normal", [=](const Shape& s) { return ops::truncated_normal(s, mean, stddev, seed); });
}

Initializer Orthogonal(float gain, std::optional<uint64_t> seed) {
  return Initializer("orthogonal", [=](const Shape& shape) {
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
  });
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
  auto it = known.find(name);
  if (it == known.end()) {
    std::vector<std::string> names;
    for (const auto& [k, v] : known) names.push_back(k);
    throw ValueError(fmt::format("unknown initializer '{}': expected one of {}", name, fmt::join(names, ", ")));
  }
  return it->second();
}
}  // namespace

Initializer::Initializer(const char* name) : Initializer(by_name(name)) {}
Initializer::Initializer(const std::string& name) : Initializer(by_name(name)) {}

}  // namespace keras
