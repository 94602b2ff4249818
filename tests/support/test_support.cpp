#include "tests/support/test_support.h"

#include <cmath>
#include <iostream>

namespace kt {

std::filesystem::path fixture_dir() {
  const std::filesystem::path built_in = KERASCPP_FIXTURE_DIR;
  if (std::filesystem::exists(built_in / "keras-saved")) return built_in;
  return std::filesystem::path("tests") / "fixtures";
}

int& skipped_count() {
  static int n = 0;
  return n;
}

void skip(const std::string& why) {
  ++skipped_count();
  WARN("skipped: " << why);
  std::cout << "skipped: " << why << "\n";
}

std::vector<float> random_values(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

keras::Tensor random_tensor(const keras::Shape& shape, uint32_t seed, float lo, float hi) {
  return keras::Tensor::from_vector(random_values(static_cast<size_t>(shape.num_elements()), seed, lo, hi), shape);
}

void require_close(const std::vector<float>& actual, const std::vector<float>& expected, float atol, float rtol) {
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    const float tol = atol + rtol * std::fabs(expected[i]);
    const bool ok = std::fabs(actual[i] - expected[i]) <= tol || (std::isnan(actual[i]) && std::isnan(expected[i]));
    if (!ok) {
      FAIL("element " << i << ": got " << actual[i] << ", expected " << expected[i] << " (tolerance " << tol << ")");
    }
  }
}

void check_gradients(const std::function<keras::Tensor(const std::vector<keras::Tensor>&)>& f,
                     std::vector<keras::Tensor> inputs, float eps, float atol, float rtol) {
  using keras::Tensor;
  // A fixed random weighting makes the check see the whole Jacobian, not just its column sums.
  Tensor probe;
  {
    keras::NoGradScope no_grad;
    const Tensor y = f(inputs);
    probe = random_tensor(y.shape(), 4242, 0.5f, 1.5f);
  }
  auto objective = [&](const std::vector<Tensor>& xs) { return keras::ops::sum(keras::ops::multiply(f(xs), probe)); };

  std::vector<Tensor> analytic;
  {
    keras::GradientTape tape;
    for (auto& x : inputs) tape.watch(x);
    const Tensor loss = objective(inputs);
    analytic = tape.gradient(loss, inputs);
  }
  keras::NoGradScope no_grad;
  for (size_t k = 0; k < inputs.size(); ++k) {
    std::vector<float> base = inputs[k].to_vector<float>();
    const std::vector<float> got = analytic[k].to_vector<float>();
    REQUIRE(analytic[k].shape() == inputs[k].shape());
    std::vector<float> numeric(base.size());
    for (size_t i = 0; i < base.size(); ++i) {
      auto eval = [&](float delta) {
        std::vector<float> v = base;
        v[i] += delta;
        std::vector<Tensor> xs = inputs;
        xs[k] = Tensor::from_vector(v, inputs[k].shape());
        return objective(xs).item();
      };
      numeric[i] = static_cast<float>((eval(eps) - eval(-eps)) / (2.0 * eps));
    }
    INFO("gradient of input " << k << " " << inputs[k].shape().to_string());
    require_close(got, numeric, atol, rtol);
  }
}

double max_abs_diff(const keras::Tensor& a, const keras::Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const auto x = keras::ops::cast(a, keras::DType::float32).to_vector<float>();
  const auto y = keras::ops::cast(b, keras::DType::float32).to_vector<float>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(x[i]) - static_cast<double>(y[i])));
  return m;
}

std::shared_ptr<keras::Model> residual_model_for_graphs() {
  using namespace keras;
  auto inner_in = layers::Input({12, 12, 8});
  auto inner = std::make_shared<Model>(inner_in, layers::Conv2D(8, {1, 1}, {.activation = "relu"})(inner_in), "inner");
  auto in = layers::Input({12, 12, 3});
  auto a = layers::Activation("relu")(layers::BatchNormalization()(layers::Conv2D(8, {3, 3}, {.padding = "same"})(in)));
  auto b = layers::Conv2D(8, {1, 1})(in);
  auto out =
      layers::Dense(5, {.activation = "softmax"})(layers::GlobalAveragePooling2D()((*inner)(layers::add({a, b}))));
  return std::make_shared<Model>(in, out);
}

keras::Backend* cpu_with_every_bfloat16_kernel(const std::string& device) {
  keras::Backend* all = nullptr;
  {
    ScopedEnv env("KERASCPP_NATIVE_LOW_PRECISION", "all");
    all = &keras::backend::get_backend(device);
  }
  if (!all->computes_low_precision(keras::OpFamily::matmul, keras::DType::bfloat16)) {
    skip("oneDNN runs no bfloat16 kernel on this processor (it needs AVX-512)");
    return nullptr;
  }
  return all;
}

}  // namespace kt
