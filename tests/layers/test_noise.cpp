// GaussianNoise, GaussianDropout, AlphaDropout and Dropout's noise_shape: the identity in inference,
// Keras' distributions in training (moments over many draws, against the formulas of Keras' docs
// and of the SELU paper), seeded draws, gradients, errors. Loading Keras' files and Keras' AlphaDropout
// constants: test_saving.cpp (keras-compat "noise"); recorded steps: test_step_graphs.cpp.
#include <cmath>

#include "tests/support/layer_test.h"

using namespace keras;

namespace {

struct Moments {
  double mean = 0, stddev = 0;
};
Moments moments_of(const std::vector<float>& v) {
  Moments m;
  for (float x : v) m.mean += x / static_cast<double>(v.size());
  for (float x : v) m.stddev += (x - m.mean) * (x - m.mean) / static_cast<double>(v.size());
  m.stddev = std::sqrt(m.stddev);
  return m;
}

// SELU's constants and AlphaDropout's affine map (Klambauer et al. 2017, section "New dropout").
constexpr double kAlphaP = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946;
double alpha_a(double rate) { return 1.0 / std::sqrt((1 - rate) * (1 + rate * kAlphaP * kAlphaP)); }
double alpha_b(double rate) { return -alpha_a(rate) * kAlphaP * rate; }

constexpr int64_t kDraws = 200 * 500;

}  // namespace

TEST_CASE("noise layers pass the layer test and are the identity in inference", "[cpu][layers]") {
  const std::vector<std::function<LayerRef()>> makes = {
      [] { return layers::GaussianNoise(0.2f); }, [] { return layers::GaussianDropout(0.3f); },
      [] { return layers::AlphaDropout(0.2f); },
      [] { return layers::AlphaDropout(0.2f, {.noise_shape = PartialShape{std::nullopt, 1, std::nullopt}}); },
      [] { return layers::Dropout(0.4f, {.noise_shape = PartialShape{std::nullopt, 1, std::nullopt}}); }};
  for (const auto& make : makes) {
    INFO(make()->class_name());
    kt::run_layer_test(make, {.input_shape = Shape{2, 4, 3}, .expected_output = {std::nullopt, 4, 3},
                              .training_is_random = true});
    const Tensor x = kt::random_tensor(Shape{3, 4, 3}, 30);
    CHECK((*make().get())(x, false).to_vector<float>() == x.to_vector<float>());
    CHECK(make()->supports_masking());
  }
}

TEST_CASE("GaussianNoise and GaussianDropout draw Keras' distributions in training, seeded", "[cpu][layers]") {
  const Tensor zeros = ops::zeros(Shape{200, 500}), ones = ops::ones(Shape{200, 500});
  // Additive N(0, stddev): within four standard errors of the mean, 1% of the deviation.
  const auto noise = moments_of(layers::GaussianNoise(0.3f)(zeros, true).to_vector<float>());
  CHECK(std::abs(noise.mean) < 4 * 0.3 / std::sqrt(kDraws));
  CHECK(noise.stddev == Approx(0.3).epsilon(0.01));
  // Multiplicative N(1, sqrt(rate / (1 - rate))), as Keras' docs give it.
  const auto drop = moments_of(layers::GaussianDropout(0.2f)(ones, true).to_vector<float>());
  CHECK(std::abs(drop.mean - 1) < 4 * 0.5 / std::sqrt(kDraws));
  CHECK(drop.stddev == Approx(std::sqrt(0.2 / 0.8)).epsilon(0.01));

  // A seed fixes the draws; each call of a layer draws anew.
  auto a = layers::GaussianNoise(0.5f, {.seed = 9}), b = layers::GaussianNoise(0.5f, {.seed = 9});
  const Tensor x = kt::random_tensor(Shape{4, 5}, 31);
  const auto first = a(x, true).to_vector<float>();
  CHECK(first == b(x, true).to_vector<float>());
  CHECK(first != a(x, true).to_vector<float>());
  CHECK(first != x.to_vector<float>());

  // Gradients: 1 through additive noise, the noise itself through multiplicative noise.
  Tensor w = kt::random_tensor(Shape{6, 7}, 32, 0.5f, 1.5f);
  GradientTape tape;
  tape.watch(w);
  const Tensor y = layers::GaussianDropout(0.4f)(w, true);
  const Tensor z = layers::GaussianNoise(0.4f)(w, true);
  const auto grads = tape.gradient(ops::sum(y) + ops::sum(z), {w});
  const auto yv = y.to_vector<float>(), wv = w.to_vector<float>(), gv = grads[0].to_vector<float>();
  for (size_t i = 0; i < wv.size(); ++i) CHECK(gv[i] == Approx(yv[i] / wv[i] + 1.0).epsilon(1e-5));
}

TEST_CASE("AlphaDropout keeps standardized inputs standardized, with the SELU paper's constants", "[cpu][layers]") {
  const double rate = 0.1;
  // On zeros the output is b where kept and a * alpha' + b where dropped.
  const auto on_zeros = layers::AlphaDropout(static_cast<float>(rate), {.seed = 4})(ops::zeros(Shape{200, 500}), true)
                            .to_vector<float>();
  const float kept = static_cast<float>(alpha_b(rate)), dropped = static_cast<float>(alpha_a(rate) * kAlphaP + alpha_b(rate));
  int64_t n_dropped = 0;
  for (float v : on_zeros) {
    REQUIRE((v == Approx(kept).margin(1e-6) || v == Approx(dropped).margin(1e-6)));
    n_dropped += v == Approx(dropped).margin(1e-6);
  }
  // The dropped fraction within four binomial standard errors of the rate.
  CHECK(std::abs(static_cast<double>(n_dropped) / kDraws - rate) < 4 * std::sqrt(rate * (1 - rate) / kDraws));
  // Zero mean and unit variance in, zero mean and unit variance out (the point of the layer).
  const Tensor standard = ops::random_normal(Shape{200, 500}, 0.f, 1.f, 33);
  const auto out = moments_of(layers::AlphaDropout(0.2f)(standard, true).to_vector<float>());
  CHECK(std::abs(out.mean) < 0.02);
  CHECK(out.stddev == Approx(1.0).epsilon(0.02));
  // Kept units are a * x + b; the gradient is a there and 0 where dropped.
  Tensor x = kt::random_tensor(Shape{8, 9}, 34);
  GradientTape tape;
  tape.watch(x);
  const Tensor y = layers::AlphaDropout(0.3f)(x, true);
  const auto g = tape.gradient(ops::sum(y), {x})[0].to_vector<float>();
  const auto xv = x.to_vector<float>(), yv = y.to_vector<float>();
  const double a = alpha_a(0.3), b = alpha_b(0.3);
  for (size_t i = 0; i < xv.size(); ++i) {
    if (g[i] == 0.f)
      CHECK(yv[i] == Approx(a * kAlphaP + b).margin(1e-5));
    else
      CHECK((g[i] == Approx(a).epsilon(1e-6) && yv[i] == Approx(a * xv[i] + b).margin(1e-5)));
  }
}

TEST_CASE("noise_shape shares the dropout of Dropout and AlphaDropout along its axes of size 1", "[cpu][layers]") {
  const PartialShape per_sequence{std::nullopt, 1, std::nullopt};
  const Tensor x = ops::ones(Shape{4, 6, 5});
  for (const bool alpha : {false, true}) {
    INFO((alpha ? "AlphaDropout" : "Dropout"));
    const LayerRef layer = alpha ? LayerRef(layers::AlphaDropout(0.5f, {.noise_shape = per_sequence}))
                                 : LayerRef(layers::Dropout(0.5f, {.noise_shape = per_sequence}));
    const auto y = (*layer.get())(x, true).to_vector<float>();
    int64_t changed = 0;
    for (int64_t n = 0; n < 4; ++n)
      for (int64_t c = 0; c < 5; ++c) {
        const float first = y[static_cast<size_t>(n * 30 + c)];
        for (int64_t t = 1; t < 6; ++t) CHECK(y[static_cast<size_t>((n * 6 + t) * 5 + c)] == first);
        changed += first != y[static_cast<size_t>(n * 30)];
      }
    CHECK(changed > 0);  // the features differ: a mask per (sample, feature)
    const Config config = layer->get_config();
    CHECK(config["noise_shape"] == Config::parse("[null, 1, null]"));
    CHECK(serialization::deserialize_layer(serialization::serialize_layer(*layer.get()))->get_config() == config);
  }
  kt::require_throws_with<ValueError>(
      [&] { layers::Dropout(0.5f, {.noise_shape = PartialShape{std::nullopt, 3, 1}})(x, true); },
      {"noise_shape", "(None, 3, 1)", "(4, 6, 5)"});
  kt::require_throws_with<ValueError>([&] { layers::AlphaDropout(0.5f, {.noise_shape = PartialShape{1, 1}})(x, true); },
                                      {"noise_shape", "rank 3"});
}

TEST_CASE("noise layers refuse bad rates and deviations, and read and write Keras' configs", "[cpu][layers]") {
  kt::require_throws_with<ValueError>([] { layers::GaussianNoise(-0.1f); }, {"stddev", "-0.1"});
  kt::require_throws_with<ValueError>([] { layers::GaussianDropout(1.f); }, {"rate", "[0, 1)", "1"});
  kt::require_throws_with<ValueError>([] { layers::AlphaDropout(-0.5f); }, {"rate", "-0.5"});
  // Configs as Keras 3 writes them (keys and values), and back.
  const Config noise = layers::GaussianNoise(0.25f, {.seed = 3, .name = "n"}).get_config();
  CHECK(noise["stddev"].get<double>() == 0.25);
  CHECK(noise["seed"] == 3);
  const Config alpha = layers::AlphaDropout(0.125f, {.name = "a"}).get_config();
  CHECK(alpha["rate"].get<double>() == 0.125);
  CHECK(alpha["seed"].is_null());
  CHECK(alpha["noise_shape"].is_null());
  for (const Config& c : {noise, alpha, layers::GaussianDropout(0.5f).get_config()}) {
    Config serialized = Config::object();
    serialized["class_name"] = c["name"].get<std::string>() == "n" ? "GaussianNoise"
                               : c["name"].get<std::string>() == "a" ? "AlphaDropout"
                                                                      : "GaussianDropout";
    serialized["config"] = c;
    CHECK(serialization::deserialize_layer(serialized)->get_config() == c);
  }
  Config bad = noise;
  bad["stddev"] = "high";
  Config wrapped = Config::object();
  wrapped["class_name"] = "GaussianNoise";
  wrapped["config"] = bad;
  kt::require_throws_with<ValueError>([&] { serialization::deserialize_layer(wrapped); }, {"stddev"});
}
