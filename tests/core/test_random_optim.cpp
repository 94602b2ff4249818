#include <cmath>

#include "tests/support/test_support.h"

using namespace keras;

namespace {
std::pair<double, double> mean_std(const std::vector<float>& v) {
  double m = 0, s = 0;
  for (float x : v) m += x;
  m /= static_cast<double>(v.size());
  for (float x : v) s += (x - m) * (x - m);
  return {m, std::sqrt(s / static_cast<double>(v.size()))};
}
}  // namespace

TEST_CASE("random ops are reproducible from seeds and have the right moments", "[cpu][random]") {
  const auto a = ops::random_uniform(Shape{20000}, -2.f, 4.f, 7).to_vector<float>();
  CHECK(a == ops::random_uniform(Shape{20000}, -2.f, 4.f, 7).to_vector<float>());
  CHECK(a != ops::random_uniform(Shape{20000}, -2.f, 4.f, 8).to_vector<float>());
  CHECK(*std::min_element(a.begin(), a.end()) >= -2.f);
  CHECK(*std::max_element(a.begin(), a.end()) < 4.f);
  auto [um, us] = mean_std(a);
  CHECK(um == Approx(1.0).margin(0.05));
  CHECK(us == Approx(6 / std::sqrt(12.0)).margin(0.03));

  auto [nm, ns] = mean_std(ops::random_normal(Shape{20000}, 1.f, 2.f, 3).to_vector<float>());
  CHECK(nm == Approx(1.0).margin(0.05));
  CHECK(ns == Approx(2.0).margin(0.05));

  const auto t = ops::truncated_normal(Shape{20000}, 0.f, 1.f, 4).to_vector<float>();
  CHECK(*std::max_element(t.begin(), t.end()) <= 2.f);
  CHECK(*std::min_element(t.begin(), t.end()) >= -2.f);
  // A standard normal truncated to [-2, 2] has standard deviation 0.8796.
  CHECK(mean_std(t).second == Approx(0.8796).margin(0.02));

  // The global seed makes unseeded ops reproducible.
  utils::set_random_seed(123);
  const auto g1 = ops::random_normal(Shape{10}).to_vector<float>();
  utils::set_random_seed(123);
  CHECK(g1 == ops::random_normal(Shape{10}).to_vector<float>());
  kt::require_throws_with<ValueError>([] { ops::random_uniform(Shape{2}, 1.f, 1.f); }, {"minval < maxval"});
}

TEST_CASE("dropout keeps about 1 - rate of the values, scaled by 1 / (1 - rate)", "[cpu][random]") {
  const Tensor x = ops::ones(Shape{10000});
  const auto y = ops::dropout(x, 0.3f, 11).to_vector<float>();
  size_t kept = 0;
  for (float v : y) {
    CHECK((v == 0.f || std::fabs(v - 1.f / 0.7f) < 1e-6f));
    kept += v != 0.f;
  }
  CHECK(static_cast<double>(kept) / 10000 == Approx(0.7).margin(0.02));
  CHECK(ops::dropout(x, 0.f).is_same(x));
  kt::require_throws_with<ValueError>([&] { ops::dropout(x, 1.f); }, {"[0, 1)", "1"});
}

TEST_CASE("SGD updates follow Keras' rules (plain, momentum, nesterov)", "[cpu][optim]") {
  // Hand-computed from keras-reference.md: m = mu m - lr g; w += m (nesterov: w += mu m - lr g).
  for (bool nesterov : {false, true}) {
    Variable w(Tensor::from_vector<float>({1.f, -2.f}, Shape{2}), "w");
    Variable m(ops::zeros(Shape{2}), "m");
    const Tensor g = Tensor::from_vector<float>({0.5f, 1.f}, Shape{2});
    ops::sgd_update(w, g, &m, {.learning_rate = 0.1f, .momentum = 0.9f, .nesterov = nesterov});
    ops::sgd_update(w, g, &m, {.learning_rate = 0.1f, .momentum = 0.9f, .nesterov = nesterov});
    // step 1: m = -0.05, -0.1; step 2: m = -0.095, -0.19.
    const std::vector<float> plain = {1.f - 0.05f - 0.095f, -2.f - 0.1f - 0.19f};
    const std::vector<float> nest = {1.f + (0.9f * -0.05f - 0.05f) + (0.9f * -0.095f - 0.05f),
                                     -2.f + (0.9f * -0.1f - 0.1f) + (0.9f * -0.19f - 0.1f)};
    kt::require_close(w.value().to_vector<float>(), nesterov ? nest : plain, 1e-6f, 1e-6f);
    kt::require_close(m.value().to_vector<float>(), {-0.095f, -0.19f}, 1e-6f, 1e-6f);
  }
}

TEST_CASE("Adam updates follow Keras' rule with epsilon outside the square root", "[cpu][optim]") {
  Variable w(Tensor::from_vector<float>({1.f, 0.f}, Shape{2}), "w");
  Variable m(ops::zeros(Shape{2}), "m"), v(ops::zeros(Shape{2}), "v");
  const std::vector<float> grads[2] = {{0.1f, -1e-4f}, {0.3f, 2e-4f}};
  double wr[2] = {1.0, 0.0}, mr[2] = {0, 0}, vr[2] = {0, 0};
  for (int t = 1; t <= 2; ++t) {
    ops::adam_update(w, Tensor::from_vector(grads[t - 1], Shape{2}), m, v, nullptr, {.step = t});
    const double alpha = 0.001 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
    for (int i = 0; i < 2; ++i) {
      const double g = grads[t - 1][static_cast<size_t>(i)];
      mr[i] += (g - mr[i]) * 0.1;
      vr[i] += (g * g - vr[i]) * 0.001;
      wr[i] -= alpha * mr[i] / (std::sqrt(vr[i]) + 1e-7);
    }
  }
  kt::require_close(w.value().to_vector<float>(), {static_cast<float>(wr[0]), static_cast<float>(wr[1])}, 1e-7f, 1e-6f);
  // AMSGrad keeps the running maximum of v.
  Variable w2(ops::zeros(Shape{1}), "w2"), m2(ops::zeros(Shape{1}), "m2"), v2(ops::zeros(Shape{1}), "v2"),
      vh(ops::zeros(Shape{1}), "vh");
  ops::adam_update(w2, Tensor::from_vector<float>({1.f}, Shape{1}), m2, v2, &vh, {.step = 1, .amsgrad = true});
  ops::adam_update(w2, Tensor::from_vector<float>({0.f}, Shape{1}), m2, v2, &vh, {.step = 2, .amsgrad = true});
  CHECK(vh.value().item() == Approx(0.001).epsilon(1e-4));  // 1 - 0.999 in float32
  CHECK(v2.value().item() == Approx(0.000999).epsilon(1e-4));
  kt::require_throws_with<ShapeError>([&] { ops::adam_update(w, ops::zeros(Shape{3}), m, v, nullptr, {}); },
                                      {"'w'", "(2,)"});
}
