// Normalization: adapt() against numpy's mean and population variance computed here in double, the
// kept axes, the given statistics, invert, Keras' epsilon floor, batched adapt, errors, configs and
// saving. Resizing: TensorFlow's documented example, linear images (which bilinear interpolation
// reproduces exactly), integer images, crop and pad windows. Python Keras' own files:
// test_saving.cpp (keras-compat "normalization" and "resizing").
#include <cmath>
#include <filesystem>

#include <unistd.h>

#include "tests/support/layer_test.h"

using namespace keras;

namespace {
// Mean and population variance of `values` (rows x cols, row-major) per column, in double.
std::pair<std::vector<double>, std::vector<double>> column_moments(const std::vector<float>& values, int64_t cols) {
  const auto rows = static_cast<int64_t>(values.size()) / cols;
  std::vector<double> mean(static_cast<size_t>(cols)), var(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) mean[static_cast<size_t>(c)] += values[static_cast<size_t>(r * cols + c)] / double(rows);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const double d = values[static_cast<size_t>(r * cols + c)] - mean[static_cast<size_t>(c)];
      var[static_cast<size_t>(c)] += d * d / double(rows);
    }
  return {mean, var};
}

// Columns of very different scales and offsets, as tabular features are.
Tensor features(int64_t rows, uint32_t seed) {
  const Tensor raw = kt::random_tensor(Shape{rows, 3}, seed);
  return raw * Tensor::from_vector<float>({1.f, 10.f, 0.1f}, Shape{3}) + Tensor::from_vector<float>({0.f, 5.f, -2.f}, Shape{3});
}
}  // namespace

TEST_CASE("Normalization adapts as numpy's mean and var per feature, normalizes and inverts", "[cpu][layers]") {
  utils::clear_session();
  const Tensor data = features(50, 3);
  layers::Normalization norm;
  norm.adapt(data);
  // Keras' weights: mean, variance and an int32 count (never updated), none trainable.
  const auto weights = norm.weights();
  REQUIRE(weights.size() == 3);
  CHECK(weights[0]->name() == "normalization/mean");
  CHECK(weights[1]->name() == "normalization/variance");
  CHECK(weights[2]->value().dtype() == DType::int32);
  CHECK(weights[2]->value().shape() == Shape{});
  CHECK(norm.trainable_weights().empty());

  const auto [mean, var] = column_moments(data.to_vector<float>(), 3);
  std::vector<float> expected_mean, expected_var;
  for (size_t c = 0; c < 3; ++c) {
    expected_mean.push_back(static_cast<float>(mean[c]));
    expected_var.push_back(static_cast<float>(var[c]));
  }
  kt::require_close(weights[0]->value().to_vector<float>(), expected_mean, 1e-5f, 1e-5f);
  kt::require_close(weights[1]->value().to_vector<float>(), expected_var, 1e-5f, 1e-5f);

  const Tensor x = features(7, 4);
  const auto xv = x.to_vector<float>();
  std::vector<float> expected(xv.size());
  for (size_t i = 0; i < xv.size(); ++i)
    expected[i] = static_cast<float>((xv[i] - mean[i % 3]) / std::sqrt(var[i % 3]));
  const Tensor y = norm(x);
  kt::require_close(y.to_vector<float>(), expected, 1e-4f, 1e-4f);
  // Mean 0 and variance 1 on the data it adapted to.
  const auto [m2, v2] = column_moments(norm(data).to_vector<float>(), 3);
  for (size_t c = 0; c < 3; ++c) {
    CHECK(std::fabs(m2[c]) < 1e-5);
    CHECK(std::fabs(v2[c] - 1.0) < 1e-4);
  }
  // invert undoes it with the same statistics.
  layers::Normalization inverse({.invert = true});
  inverse.adapt(data);
  kt::require_close(inverse(y).to_vector<float>(), xv, 1e-4f, 1e-4f);
  // Integer inputs give float outputs.
  CHECK(norm(Tensor::from_vector<int32_t>({1, 2, 3}, Shape{1, 3})).dtype() == DType::float32);
}

TEST_CASE("Normalization keeps any axes, or none, and floors the divisor at Keras' epsilon", "[cpu][layers]") {
  utils::clear_session();
  // axis=None (no axis kept): one mean and variance for everything.
  const Tensor data = features(20, 5);
  layers::Normalization all({.axis = {}});
  all.adapt(data);
  REQUIRE(all.weights()[0]->value().shape() == Shape{});
  const auto values = data.to_vector<float>();
  const auto [m, v] = column_moments(values, 1);
  CHECK(all.weights()[0]->value().item() == Approx(m[0]).epsilon(1e-5));
  CHECK(all.weights()[1]->value().item() == Approx(v[0]).epsilon(1e-5));

  // Two kept axes of a (N, 4, 3) input: statistics of shape (4, 3), over the batch only.
  const Tensor seq = kt::random_tensor(Shape{6, 4, 3}, 7, -2.f, 3.f);
  layers::Normalization two({.axis = {1, -1}});
  two.adapt(seq);
  REQUIRE(two.weights()[0]->value().shape() == Shape{4, 3});
  const auto [m12, v12] = column_moments(seq.to_vector<float>(), 12);
  std::vector<float> expected;
  for (double d : m12) expected.push_back(static_cast<float>(d));
  kt::require_close(two.weights()[0]->value().to_vector<float>(), expected, 1e-5f, 1e-5f);
  expected.clear();
  for (double d : v12) expected.push_back(static_cast<float>(d));
  kt::require_close(two.weights()[1]->value().to_vector<float>(), expected, 1e-5f, 1e-5f);

  // A constant feature has variance 0: the divisor is 1e-7, so it normalizes to 0, not NaN.
  const Tensor constant = Tensor::from_vector<float>({1, 7, 2, 7, 3, 7}, Shape{3, 2});
  layers::Normalization floor;
  floor.adapt(constant);
  const auto out = floor(constant).to_vector<float>();
  CHECK(out[1] == 0.f);
  CHECK(out[3] == 0.f);
  CHECK(out[0] == Approx(-1.0 / std::sqrt(2.0 / 3.0)).epsilon(1e-5));
}

TEST_CASE("Normalization takes given statistics, and adapt() over batches merges as Keras' dataset path",
          "[cpu][layers]") {
  utils::clear_session();
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 5, 6, 7}, Shape{2, 3});
  // One value for all features, or one per feature.
  layers::Normalization scalar({.mean = std::vector<float>{3.f}, .variance = std::vector<float>{4.f}});
  kt::require_close(scalar(x).to_vector<float>(), {-1.f, -0.5f, 0.f, 1.f, 1.5f, 2.f}, 1e-6f, 0.f);
  CHECK(scalar.weights().empty());  // no weights when the statistics are given, as Keras
  layers::Normalization per_feature({.mean = std::vector<float>{1.f, 2.f, 3.f},
                                     .variance = std::vector<float>{1.f, 4.f, 16.f},
                                     .invert = true});
  kt::require_close(per_feature(x).to_vector<float>(), {2.f, 6.f, 15.f, 6.f, 14.f, 31.f}, 1e-6f, 0.f);

  // Batches of 16, 16 and 8 rows: the running merge equals the statistics of all 40 rows at once.
  const Tensor data = features(40, 11);
  layers::Normalization whole, batched;
  whole.adapt(data);
  batched.adapt({ops::slice(data, {0, 0}, {16, 3}), ops::slice(data, {16, 0}, {16, 3}), ops::slice(data, {32, 0}, {8, 3})});
  for (size_t i = 0; i < 2; ++i)
    kt::require_close(batched.weights()[i]->value().to_vector<float>(), whole.weights()[i]->value().to_vector<float>(),
                      1e-5f, 1e-5f);
}

TEST_CASE("Normalization refuses what Keras refuses, naming what it expected", "[cpu][layers]") {
  utils::clear_session();
  kt::require_throws_with<ValueError>(
      [] { layers::Normalization({.mean = std::vector<float>{1.f}}); }, {"both mean and variance", "no variance"});
  kt::require_throws_with<ValueError>(
      [] { layers::Normalization({.mean = std::vector<float>{1.f, 2.f}, .variance = std::vector<float>{1.f}}); },
      {"same", "2 and 1"});
  layers::Normalization wrong_size({.mean = std::vector<float>{1.f, 2.f}, .variance = std::vector<float>{1.f, 1.f}});
  kt::require_throws_with<ValueError>([&] { wrong_size(ops::zeros(Shape{2, 3})); }, {"1, 3 or 3", "received 2"});
  layers::Normalization bad_axis({.axis = {2}});
  kt::require_throws_with<ValueError>([&] { bad_axis(ops::zeros(Shape{2, 3})); }, {"[-2, 2)", "axis 2"});
  layers::Normalization adapted;
  adapted.adapt(ops::zeros(Shape{4, 3}));
  kt::require_throws_with<ValueError>([&] { adapted.adapt(ops::zeros(Shape{4, 5})); }, {"(None, 3)", "(4, 5)"});
  kt::require_throws_with<ValueError>([&] { adapted(ops::zeros(Shape{2, 5})); }, {"expected size 3", "received 5"});
  kt::require_throws_with<ValueError>([&] { adapted(ops::zeros(Shape{2, 4, 3})); },
                                      {"expected an input of rank 2", "(None, 3)", "(None, 4, 3)"});
  layers::Normalization given({.mean = std::vector<float>{0.f}, .variance = std::vector<float>{1.f}});
  kt::require_throws_with<ValueError>([&] { given.adapt(ops::zeros(Shape{2, 3})); }, {"given its mean and variance"});
  kt::require_throws_with<ValueError>([&] { adapted.adapt(std::vector<Tensor>{}); }, {"at least one batch"});
}

TEST_CASE("Normalization's config is Keras', and an adapted model saves and loads", "[cpu][layers][saving]") {
  utils::clear_session();
  layers::Normalization given({.axis = {}, .mean = std::vector<float>{2.f}, .variance = std::vector<float>{9.f}, .invert = true});
  const Config c = given.get_config();
  CHECK(c["axis"] == Config::array());
  CHECK(c["invert"] == true);
  CHECK(c["mean"] == Config::parse("[2.0]"));
  auto restored = layers::Normalization::from_config(c);
  CHECK(restored->get_config() == c);
  // Keras' form of an adapted layer: null statistics, the axis as a list.
  const Config keras = Config::parse(R"({"name": "n", "trainable": true, "axis": [-1], "invert": false,
      "mean": null, "variance": null})");
  CHECK(layers::Normalization::from_config(keras)->get_config()["mean"].is_null());

  const Tensor data = features(30, 21);
  auto norm = std::make_shared<layers::Normalization>();
  norm->adapt(data);
  Sequential model({layers::Input({3}), norm, layers::Dense(2)});
  const Tensor before = model.predict(data);
  const auto path = std::filesystem::temp_directory_path() / ("kerascpp_normalization" + std::to_string(::getpid()) + ".keras");
  model.save(path.string());
  auto loaded = models::load_model(path.string());
  std::filesystem::remove(path);
  kt::require_close(loaded->predict(data).to_vector<float>(), before.to_vector<float>(), 0.f, 0.f);
  const auto w = loaded->layers()[0]->weights();
  REQUIRE(w.size() == 3);
  CHECK(w[2]->value().dtype() == DType::int32);
  CHECK(model.count_params() == 3 + 3 + 1 + 3 * 2 + 2);  // Keras counts the statistics and the count too
}

TEST_CASE("Resizing reproduces tf.image.resize's example and linear images, crops, pads and rounds integers",
          "[cpu][layers]") {
  // tf.image.resize's docstring: a 5x5 identity image resized to 3x5 (bilinear, half-pixel centers).
  std::vector<float> eye(25, 0.f);
  for (int i = 0; i < 5; ++i) eye[static_cast<size_t>(i * 6)] = 1.f;
  const Tensor identity = Tensor::from_vector(eye, Shape{1, 5, 5, 1});
  kt::require_close(layers::Resizing(3, 5)(identity).to_vector<float>(),
                    {0.6666667f, 0.3333333f, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0.3333335f, 0.6666665f}, 1e-6f, 0);

  // A linear image a * row + b * col: bilinear gives it back at each output pixel's center mapped
  // into the input ((o + 0.5) * in / out - 0.5), down and up, as long as that stays inside.
  const int64_t h = 7, w = 9;
  std::vector<float> ramp;
  for (int64_t r = 0; r < h; ++r)
    for (int64_t c = 0; c < w; ++c) ramp.push_back(3.f * static_cast<float>(r) - 0.5f * static_cast<float>(c));
  const Tensor image = Tensor::from_vector(ramp, Shape{h, w, 1});  // one image, no batch axis
  for (const auto& [oh, ow] : std::vector<std::pair<int64_t, int64_t>>{{4, 5}, {12, 4}, {3, 16}}) {
    const Tensor y = layers::Resizing(oh, ow)(image);
    REQUIRE(y.shape() == Shape{oh, ow, 1});
    std::vector<float> expected;
    for (int64_t r = 0; r < oh; ++r)
      for (int64_t c = 0; c < ow; ++c) {
        auto at = [](int64_t o, int64_t in, int64_t out) {
          return std::clamp((static_cast<double>(o) + 0.5) * static_cast<double>(in) / static_cast<double>(out) - 0.5,
                            0.0, static_cast<double>(in - 1));
        };
        expected.push_back(static_cast<float>(3.0 * at(r, h, oh) - 0.5 * at(c, w, ow)));
      }
    kt::require_close(y.to_vector<float>(), expected, 1e-5f, 1e-5f);
  }

  // crop_to_aspect_ratio: the centered 7x7 window (columns 1..7) of the 7x9 ramp, resized to 7x7,
  // is that window itself. pad_to_aspect_ratio to 9x9: a row of fill_value above and below.
  const Tensor cropped = layers::Resizing(7, 7, {.crop_to_aspect_ratio = true})(image);
  kt::require_close(cropped.to_vector<float>(), ops::slice(image, {0, 1, 0}, {7, 7, 1}).to_vector<float>(), 0, 0);
  const auto padded = layers::Resizing(9, 9, {.pad_to_aspect_ratio = true, .fill_value = -2.f})(image).to_vector<float>();
  REQUIRE(padded.size() == 81);
  for (size_t c = 0; c < 9; ++c) {
    CHECK(padded[c] == -2.f);
    CHECK(padded[72 + c] == -2.f);
    CHECK(padded[9 + c] == ramp[c]);
  }

  // Integer images: interpolated, rounded half to even and clipped to the dtype, as Keras.
  const Tensor bytes = Tensor::from_vector(std::vector<uint8_t>{0, 255, 10, 20}, Shape{1, 1, 4, 1});
  const Tensor up = layers::Resizing(1, 8)(bytes);
  CHECK(up.dtype() == DType::uint8);
  // Columns sample -0.25 (clamped to 0), 0.25, 0.75, ..., 3.25 (clamped to 3): 0, 63.75, 191.25,
  // 193.75, 71.25, 12.5, 17.5, 20.
  CHECK(up.to_vector<uint8_t>() == std::vector<uint8_t>{0, 64, 191, 194, 71, 12, 18, 20});
  const Tensor nearest = layers::Resizing(1, 2, {.interpolation = "nearest"})(bytes);
  CHECK(nearest.to_vector<uint8_t>() == std::vector<uint8_t>{255, 20});

  kt::require_throws_with<ValueError>([] { layers::Resizing(2, 2, {.interpolation = "area"}); },
                                      {"expected interpolation one of", "received 'area'"});
  kt::require_throws_with<ValueError>(
      [] { layers::Resizing(2, 2, {.crop_to_aspect_ratio = true, .pad_to_aspect_ratio = true}); },
      {"only one of crop_to_aspect_ratio and pad_to_aspect_ratio"});
  kt::require_throws_with<ValueError>([] { layers::Resizing(0, 2); }, {"positive height and width", "(0, 2)"});
  kt::require_throws_with<ValueError>([&] { layers::Resizing(2, 2)(ops::zeros(Shape{4, 4})); },
                                      {"(batch, height, width, channels)", "(None, 4)"});
  kt::run_layer_test([] { return layers::Resizing(3, 5, {.interpolation = "bicubic"}); },
                     {.input_shape = Shape{2, 6, 4, 3}, .expected_output = {std::nullopt, 3, 5, 3}});
}
