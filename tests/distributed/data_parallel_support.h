#pragma once
// What the data-parallel tests share: a small classifier, deterministic data, and the comparisons of a
// replicated model with the same model trained on one device.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "core/ops.h"
#include "distributed/strategy.h"
#include "kerascpp.h"

namespace dp_test {
using namespace keras;

inline std::vector<float> values(const Tensor& t) { return ops::cast(t, DType::float32).to_vector<float>(); }

// A small classifier of 5 features into 3 classes.
inline Sequential make_mlp() {
  return Sequential({layers::Input({5}), layers::Dense(16, {.activation = "relu"}),
                     layers::Dense(8, {.activation = "tanh"}), layers::Dense(3, {.activation = "softmax"})});
}

// Deterministic data: n samples of 5 features and labels in [0, 3).
inline std::pair<Tensor, Tensor> make_data(int64_t n) {
  std::vector<float> x(static_cast<size_t>(n * 5));
  std::vector<int32_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < 5; ++j)
      x[static_cast<size_t>(i * 5 + j)] = std::sin(0.37f * static_cast<float>(i * 5 + j + 1));
    y[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7) % 3);
  }
  return {Tensor::from_vector(x, Shape{n, 5}), Tensor::from_vector(y, Shape{n})};
}

inline void copy_weights(Model& from, Model& to) {
  auto a = from.weights(), b = to.weights();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) b[i]->assign(a[i]->value());
}

inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

// Every weight, flattened into one float32 tensor on the default backend.
inline Tensor flat_weights(const std::vector<Variable*>& vars) {
  std::vector<Tensor> parts;
  for (const Variable* v : vars)
    parts.push_back(ops::to_backend(ops::reshape(ops::cast(v->value(), DType::float32), {-1}), default_backend()));
  return ops::concatenate(parts, 0);
}
inline Tensor flat_weights(Model& m) { return flat_weights(m.weights()); }
inline std::vector<float> flat(const std::vector<Variable*>& vars) { return values(flat_weights(vars)); }

// A seeded classifier with dropout, built and compiled (Adam) in the strategy's scope: the same
// weights and random streams each time, for runs that are interrupted and resumed.
inline std::shared_ptr<Sequential> make_dropout_classifier(distribute::Strategy& strategy) {
  utils::set_random_seed(42);
  utils::clear_session();
  auto m = strategy.scope([] {
    return std::make_shared<Sequential>(std::vector<LayerRef>{layers::Input({5}), layers::Dense(12, {.activation = "relu"}),
                                                              layers::Dropout(0.3),
                                                              layers::Dense(3, {.activation = "softmax"})});
  });
  strategy.scope([&] {
    m->compile({.optimizer = optimizers::Adam({.learning_rate = 0.01f}), .loss = "sparse_categorical_crossentropy"});
  });
  return m;
}

// The model built and compiled in the strategy's scope, and the same model on one device, starting
// from the first's weights.
struct Twins {
  Sequential replicated, single;
};
inline Twins twins(distribute::Strategy& strategy, const std::function<Sequential()>& make,
                   const std::function<void(Model&)>& compile) {
  Twins t{strategy.scope(make), make()};
  strategy.scope([&] { compile(t.replicated); });
  compile(t.single);
  copy_weights(t.replicated, t.single);
  return t;
}

}  // namespace dp_test
