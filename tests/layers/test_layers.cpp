#include <cmath>

#include "tests/support/layer_test.h"

using namespace keras;
using kt::LayerTestSpec;

TEST_CASE("Dense passes the layer test and computes x @ kernel + bias", "[cpu][layers]") {
  kt::run_layer_test(
      [] { return layers::Dense(4, {.activation = "tanh"}); },
      {.input_shape = Shape{3, 5}, .expected_output = {std::nullopt, 4}, .trainable_weights = 2, .params = 24});
  kt::run_layer_test(
      [] { return layers::Dense(2, {.use_bias = false}); },
      {.input_shape = Shape{2, 3, 5}, .expected_output = {std::nullopt, 3, 2}, .trainable_weights = 1, .params = 10});
  layers::Dense d(
      2, {.activation = "relu", .kernel_initializer = "ones", .bias_initializer = initializers::Constant(-1.f)});
  const Tensor y = d(Tensor::from_vector<float>({1, 2, -3, -4}, Shape{2, 2}));
  CHECK(y.to_vector<float>() == std::vector<float>{2, 2, 0, 0});  // relu(3 - 1), relu(-7 - 1)
}

TEST_CASE("Conv2D, pooling and global pooling pass the layer test", "[cpu][layers]") {
  kt::run_layer_test(
      [] {
        return layers::Conv2D(4, {3, 2}, {.strides = {2, 1}, .padding = "same", .activation = "tanh"});
      },
      {.input_shape = Shape{2, 7, 6, 3},
       .expected_output = {std::nullopt, 4, 6, 4},
       .trainable_weights = 2,
       .params = 3 * 2 * 3 * 4 + 4});
  kt::run_layer_test(
      [] {
        return layers::Conv2D(6, {3, 3}, {.dilation_rate = {2, 2}, .groups = 2});
      },
      {.input_shape = Shape{1, 9, 9, 4},
       .expected_output = {std::nullopt, 5, 5, 6},
       .trainable_weights = 2,
       .params = 3 * 3 * 2 * 6 + 6});
  kt::run_layer_test(
      [] {
        return layers::MaxPooling2D({2, 2});
      },
      {.input_shape = Shape{2, 5, 4, 3}, .expected_output = {std::nullopt, 2, 2, 3}, .check_input_gradient = false});
  kt::run_layer_test(
      [] {
        return layers::AveragePooling2D({3, 3}, {.strides = std::array<int64_t, 2>{2, 2}, .padding = "same"});
      },
      {.input_shape = Shape{2, 5, 4, 3}, .expected_output = {std::nullopt, 3, 2, 3}});
  kt::run_layer_test([] { return layers::GlobalAveragePooling2D(); },
                     {.input_shape = Shape{2, 3, 4, 5}, .expected_output = {std::nullopt, 5}});
  // keepdims (MobileNet's top): the pooled axes stay with length 1, in the config too.
  kt::run_layer_test([] { return layers::GlobalAveragePooling2D({.keepdims = true}); },
                     {.input_shape = Shape{2, 3, 4, 5}, .expected_output = {std::nullopt, 1, 1, 5}});
  kt::run_layer_test([] { return layers::GlobalMaxPooling1D({.keepdims = true}); },
                     {.input_shape = Shape{2, 3, 5}, .expected_output = {std::nullopt, 1, 5}});
  const Tensor x = kt::random_tensor(Shape{2, 3, 4, 5}, 9);
  auto pooled = layers::GlobalAveragePooling2D({.keepdims = true});
  kt::require_close(pooled(x).to_vector<float>(), ops::mean(x, {1, 2}).to_vector<float>(), 1e-6f, 0.f);
  CHECK(pooled.get_config()["keepdims"].get<bool>());
  CHECK(serialization::deserialize_layer(serialization::serialize_layer(pooled))->compute_output_shape({std::nullopt, 3, 4, 5}) ==
        PartialShape{std::nullopt, 1, 1, 5});
}

TEST_CASE("BatchNormalization passes the layer test and follows Keras' moving averages", "[cpu][layers]") {
  kt::run_layer_test([] { return layers::BatchNormalization(); }, {.input_shape = Shape{6, 3, 4},
                                                                   .expected_output = {std::nullopt, 3, 4},
                                                                   .trainable_weights = 2,
                                                                   .non_trainable_weights = 2,
                                                                   .params = 16});
  layers::BatchNormalization bn({.momentum = 0.9f});
  const Tensor x = Tensor::from_vector<float>({1, 10, 3, 20}, Shape{2, 2});  // means 2, 15; variances 1, 25
  bn(x, true);
  const auto w = bn.weights();  // gamma, beta, moving_mean, moving_variance
  kt::require_close(w[2]->value().to_vector<float>(), {0.2f, 1.5f}, 1e-6f, 1e-6f);
  kt::require_close(w[3]->value().to_vector<float>(), {0.9f + 0.1f * 1.f, 0.9f + 0.1f * 25.f}, 1e-5f, 1e-6f);
  // Frozen, it runs in inference mode even when training (Keras' rule) and leaves the statistics alone.
  bn.set_trainable(false);
  const Tensor y = bn(x, true);
  kt::require_close(w[2]->value().to_vector<float>(), {0.2f, 1.5f}, 1e-6f, 1e-6f);
  const float inv0 = 1.f / std::sqrt(1.0f + 0.001f), inv1 = 1.f / std::sqrt(3.4f + 0.001f);
  kt::require_close(y.to_vector<float>(),
                    {(1 - 0.2f) * inv0, (10 - 1.5f) * inv1, (3 - 0.2f) * inv0, (20 - 1.5f) * inv1}, 1e-5f, 1e-5f);
}

TEST_CASE("Flatten, Reshape, Activation and Dropout pass the layer test", "[cpu][layers]") {
  kt::run_layer_test([] { return layers::Flatten(); },
                     {.input_shape = Shape{2, 3, 4}, .expected_output = {std::nullopt, 12}});
  kt::run_layer_test(
      [] {
        return layers::Reshape({2, -1});
      },
      {.input_shape = Shape{2, 3, 4}, .expected_output = {std::nullopt, 2, 6}});
  kt::run_layer_test([] { return layers::Activation("softmax"); },
                     {.input_shape = Shape{2, 5}, .expected_output = {std::nullopt, 5}});
  kt::run_layer_test([] { return layers::Dropout(0.5f, {.seed = 3}); },
                     {.input_shape = Shape{4, 8}, .expected_output = {std::nullopt, 8}, .training_is_random = true});
  layers::Dropout drop(0.5f, {.seed = 3});
  const Tensor ones = ops::ones(Shape{1000});
  CHECK(drop(ones, false).to_vector<float>() == ones.to_vector<float>());  // identity at inference
  const double kept = ops::mean(ops::cast(ops::greater(drop(ones, true), ops::zeros(Shape{})), DType::float32)).item();
  CHECK(kept == Approx(0.5).margin(0.06));
  kt::require_throws_with<ValueError>([] { layers::Activation("swoosh"); }, {"unknown activation 'swoosh'", "relu"});
  kt::require_throws_with<ValueError>([] { layers::Dropout(1.5f); }, {"[0, 1)", "1.5"});
}

TEST_CASE("layers reject incompatible inputs with Keras' error texts", "[cpu][layers]") {
  utils::clear_session();
  layers::Dense dense(10);
  dense(ops::zeros(Shape{2, 784}));
  kt::require_throws_with<ValueError>(
      [&] {
        dense(ops::zeros(Shape{2, 100}));
      },
      {"Input 0 of layer \"dense\" is incompatible with the layer: expected axis -1 of input "
       "shape to have value 784, but received input with shape (None, 100)"});
  layers::Conv2D conv(4, {3, 3});
  kt::require_throws_with<ValueError>(
      [&] {
        conv(ops::zeros(Shape{2, 10}));
      },
      {"Input 0 of layer \"conv2d\"", "expected ndim=4, found ndim=2. Full shape received: (None, 10)"});
  layers::Dense d2(3);
  kt::require_throws_with<ValueError>([&] { d2(ops::zeros(Shape{5})); }, {"expected min_ndim=2, found ndim=1"});
}

TEST_CASE("layers get Keras' automatic names", "[cpu][layers]") {
  utils::clear_session();
  CHECK(layers::Dense(1).name() == "dense");
  CHECK(layers::Dense(1).name() == "dense_1");
  CHECK(layers::MaxPooling2D().name() == "max_pooling2d");
  CHECK(layers::BatchNormalization().name() == "batch_normalization");
  CHECK(layers::GlobalAveragePooling2D().name() == "global_average_pooling2d");
  CHECK(layers::Dense(1, {.name = "head"}).name() == "head");
  utils::clear_session();
  CHECK(layers::Dense(1).name() == "dense");
}

TEST_CASE("initializers follow Keras' variance scaling and are reproducible with a seed", "[cpu][layers]") {
  auto moments = [](const Tensor& t) {
    const auto v = t.to_vector<float>();
    double m = 0, s = 0;
    for (float x : v) m += x;
    m /= static_cast<double>(v.size());
    for (float x : v) s += (x - m) * (x - m);
    return std::pair{m, std::sqrt(s / static_cast<double>(v.size()))};
  };
  // glorot_uniform on (200, 300): limit sqrt(6 / 500), stddev limit / sqrt(3).
  const Tensor g = initializers::GlorotUniform(1)(Shape{200, 300});
  CHECK(ops::max(ops::abs(g)).item() <= std::sqrt(6.0 / 500));
  CHECK(moments(g).second == Approx(std::sqrt(6.0 / 500) / std::sqrt(3.0)).epsilon(0.02));
  CHECK(g.to_vector<float>() == initializers::GlorotUniform(1)(Shape{200, 300}).to_vector<float>());
  // he_normal on a conv kernel (3, 3, 16, 32): fan_in 144, stddev sqrt(2 / 144) after truncation.
  CHECK(moments(initializers::HeNormal(2)(Shape{3, 3, 16, 32})).second == Approx(std::sqrt(2.0 / 144)).epsilon(0.03));
  CHECK(initializers::compute_fans(Shape{3, 3, 16, 32}) == std::pair<double, double>{144, 288});
  // orthogonal: Q^T Q = I for a tall matrix, Q Q^T = I for a wide one.
  for (const Shape& s : {Shape{6, 4}, Shape{4, 6}}) {
    const Tensor q = initializers::Orthogonal(1.f, 3)(s);
    const Tensor gram =
        s[0] >= s[1] ? ops::matmul(q, q, {.transpose_a = true}) : ops::matmul(q, q, {.transpose_b = true});
    const int64_t k = std::min(s[0], s[1]);
    std::vector<float> eye(static_cast<size_t>(k * k), 0.f);
    for (int64_t i = 0; i < k; ++i) eye[static_cast<size_t>(i * k + i)] = 1.f;
    kt::require_close(gram.to_vector<float>(), eye, 1e-5f, 0);
  }
  CHECK(Initializer("zeros")(Shape{3}).to_vector<float>() == std::vector<float>{0, 0, 0});
  kt::require_throws_with<ValueError>([] { Initializer("xavier"); },
                                      {"unknown initializer 'xavier'", "glorot_uniform"});
}

TEST_CASE("the convolution variants pass the layer test", "[cpu][layers]") {
  kt::run_layer_test([] { return layers::Conv1D(4, 3, {.padding = "same", .activation = "tanh"}); },
                     {.input_shape = Shape{2, 7, 3},
                      .expected_output = {std::nullopt, 7, 4},
                      .trainable_weights = 2,
                      .params = 3 * 3 * 4 + 4});
  kt::run_layer_test(
      [] {
        return layers::Conv2DTranspose(2, {3, 3}, {.strides = {2, 2}});
      },
      {.input_shape = Shape{1, 3, 4, 3},
       .expected_output = {std::nullopt, 7, 9, 2},
       .trainable_weights = 2,
       .params = 9 * 2 * 3 + 2});
  kt::run_layer_test(
      [] {
        return layers::DepthwiseConv2D({3, 3}, {.depth_multiplier = 2});
      },
      {.input_shape = Shape{2, 5, 5, 3},
       .expected_output = {std::nullopt, 3, 3, 6},
       .trainable_weights = 2,
       .params = 9 * 3 * 2 + 6});
  kt::run_layer_test(
      [] {
        return layers::SeparableConv2D(4, {3, 3}, {.padding = "same"});
      },
      {.input_shape = Shape{1, 4, 4, 2},
       .expected_output = {std::nullopt, 4, 4, 4},
       .trainable_weights = 3,
       .params = 9 * 2 + 2 * 4 + 4});
  // The 1-d forms (Keras' numbers for them: the keras-compat "conv_1d_variants" fixture).
  kt::run_layer_test([] { return layers::Conv1DTranspose(2, 3, {.strides = 2, .output_padding = 1}); },
                     {.input_shape = Shape{2, 5, 3},
                      .expected_output = {std::nullopt, 4 * 2 + 3 + 1, 2},  // (in - 1) * s + k + output_padding
                      .trainable_weights = 2,
                      .params = 3 * 2 * 3 + 2});
  kt::run_layer_test([] { return layers::DepthwiseConv1D(3, {.strides = 2, .depth_multiplier = 3}); },
                     {.input_shape = Shape{2, 9, 2},
                      .expected_output = {std::nullopt, 4, 6},
                      .trainable_weights = 2,
                      .params = 3 * 2 * 3 + 6});
  kt::run_layer_test([] { return layers::SeparableConv1D(4, 3, {.padding = "same", .depth_multiplier = 2}); },
                     {.input_shape = Shape{1, 6, 3},
                      .expected_output = {std::nullopt, 6, 4},
                      .trainable_weights = 3,
                      .params = 3 * 3 * 2 + 6 * 4 + 4});
}

// Naive loops over Keras' kernel layouts, against the 1-d depthwise, separable and transposed layers.
TEST_CASE("the 1-d depthwise, separable and transposed convolutions match direct loops", "[cpu][layers]") {
  const int64_t n = 2, steps = 7, in = 3, mult = 2, k = 3;
  const Tensor x = kt::random_tensor(Shape{n, steps, in}, 5);
  const auto xs = x.to_vector<float>();
  auto at = [&](int64_t b, int64_t t, int64_t c) { return xs[static_cast<size_t>((b * steps + t) * in + c)]; };

  // DepthwiseConv1D, "valid", dilation 2: y[b, t, c * mult + m] = sum_i x[b, t + 2 i, c] w[i, c, m] + bias.
  layers::DepthwiseConv1D depthwise(k, {.depth_multiplier = mult, .dilation_rate = 2});
  const auto y = depthwise(x).to_vector<float>();
  const auto w = depthwise.weights()[0]->value().to_vector<float>();
  REQUIRE(y.size() == static_cast<size_t>(n * (steps - 4) * in * mult));
  std::vector<float> expected;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t t = 0; t < steps - 4; ++t)
      for (int64_t c = 0; c < in; ++c)
        for (int64_t m = 0; m < mult; ++m) {
          double sum = 0;
          for (int64_t i = 0; i < k; ++i) sum += at(b, t + 2 * i, c) * w[static_cast<size_t>((i * in + c) * mult + m)];
          expected.push_back(static_cast<float>(sum));  // the bias starts at zero
        }
  kt::require_close(y, expected, 1e-5f, 1e-5f);

  // SeparableConv1D, stride 2: the depthwise sums above at stride 2, then a pointwise (1, in * mult, filters).
  const int64_t filters = 4;
  layers::SeparableConv1D separable(filters, k, {.strides = 2, .depth_multiplier = mult});
  const auto ys = separable(x).to_vector<float>();
  const auto dw = separable.weights()[0]->value().to_vector<float>();
  const auto pw = separable.weights()[1]->value().to_vector<float>();
  const int64_t out = (steps - k) / 2 + 1;
  expected.clear();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t t = 0; t < out; ++t)
      for (int64_t f = 0; f < filters; ++f) {
        double sum = 0;
        for (int64_t c = 0; c < in; ++c)
          for (int64_t m = 0; m < mult; ++m) {
            double d = 0;
            for (int64_t i = 0; i < k; ++i)
              d += at(b, 2 * t + i, c) * dw[static_cast<size_t>((i * in + c) * mult + m)];
            sum += d * pw[static_cast<size_t>((c * mult + m) * filters + f)];
          }
        expected.push_back(static_cast<float>(sum));
      }
  kt::require_close(ys, expected, 1e-5f, 1e-5f);

  // Conv1DTranspose, "valid", stride 2: each input step scatters kernel (k, filters, in) from 2 t.
  layers::Conv1DTranspose transposed(filters, k, {.strides = 2});
  const auto yt = transposed(x).to_vector<float>();
  const auto wt = transposed.weights()[0]->value().to_vector<float>();
  const int64_t len = (steps - 1) * 2 + k;
  REQUIRE(yt.size() == static_cast<size_t>(n * len * filters));
  std::vector<double> scatter(static_cast<size_t>(n * len * filters), 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t t = 0; t < steps; ++t)
      for (int64_t i = 0; i < k; ++i)
        for (int64_t f = 0; f < filters; ++f)
          for (int64_t c = 0; c < in; ++c)
            scatter[static_cast<size_t>((b * len + 2 * t + i) * filters + f)] +=
                at(b, t, c) * wt[static_cast<size_t>((i * filters + f) * in + c)];
  kt::require_close(yt, std::vector<float>(scatter.begin(), scatter.end()), 1e-5f, 1e-5f);

  CHECK_THROWS_WITH(layers::SeparableConv1D(0, 3), Catch::Contains("filters must be positive, received 0"));
  CHECK_THROWS_WITH(layers::Conv1DTranspose(2, 3, {.strides = 2, .output_padding = 2}),
                    Catch::Contains("output_padding") && Catch::Contains("received (2)"));
  CHECK_THROWS_WITH(layers::DepthwiseConv1D(3, {.padding = "causal"}), Catch::Contains("'valid' or 'same'"));
  CHECK_THROWS_WITH(depthwise(ops::zeros(Shape{2, 7, 3, 1})), Catch::Contains("expected ndim=3, found ndim=4"));
}

// Options the differential check against Python Keras found missing; their values and one training
// step against Keras are in test_saving.cpp (keras-compat fixtures).
TEST_CASE("Keras' transposed strides beyond the kernel, output_padding, causal, other axes and bilinear pass the layer test",
          "[cpu][layers]") {
  // Keras: "valid" gives (in - 1) * s + max(k, s): 3 * 3 = 9 rows (the last hold the bias alone), 4 * 2 = 8 columns.
  kt::run_layer_test([] { return layers::Conv2DTranspose(3, {2, 1}, {.strides = {3, 2}}); },
                     {.input_shape = Shape{1, 3, 4, 2},
                      .expected_output = {std::nullopt, 9, 8, 3},
                      .trainable_weights = 2,
                      .params = 2 * 1 * 3 * 2 + 3});
  // "same" with output_padding p: (in - 1) * s + k - 2 * (k / 2) + p.
  kt::run_layer_test(
      [] {
        return layers::Conv2DTranspose(2, {3, 3}, {.strides = {2, 3}, .padding = "same", .output_padding = {{1, 2}}});
      },
      {.input_shape = Shape{1, 3, 4, 2},
       .expected_output = {std::nullopt, 2 * 2 + 1 + 1, 3 * 3 + 1 + 2, 2},
       .trainable_weights = 2,
       .params = 9 * 2 * 2 + 2});
  CHECK_THROWS_WITH(layers::Conv2DTranspose(2, {3, 3}, {.strides = {2, 2}, .output_padding = {{2, 0}}}),
                    Catch::Contains("output_padding") && Catch::Contains("received (2, 0)"));
  kt::run_layer_test([] { return layers::Conv1D(2, 3, {.padding = "causal", .dilation_rate = 2}); },
                     {.input_shape = Shape{2, 6, 3},
                      .expected_output = {std::nullopt, 6, 2},
                      .trainable_weights = 2,
                      .params = 3 * 3 * 2 + 2});
  CHECK_THROWS_WITH(layers::Conv2D(2, {3, 3}, {.padding = "causal"}), Catch::Contains("'valid' or 'same'"));
  kt::run_layer_test([] { return layers::LayerNormalization({.axis = {1, 2}}); },
                     {.input_shape = Shape{2, 3, 4},
                      .expected_output = {std::nullopt, 3, 4},
                      .trainable_weights = 2,
                      .params = 2 * 12});
  kt::run_layer_test([] { return layers::BatchNormalization({.axis = 1}); },
                     {.input_shape = Shape{4, 3, 5},
                      .expected_output = {std::nullopt, 3, 5},
                      .trainable_weights = 2,
                      .non_trainable_weights = 2,
                      .params = 4 * 3});
  kt::run_layer_test([] { return layers::UpSampling2D({2, 3}, "bilinear"); },
                     {.input_shape = Shape{1, 2, 3, 2}, .expected_output = {std::nullopt, 4, 9, 2}});
  // Half-pixel centers, clamped: a row [0, 4] doubled is [0, 1, 3, 4].
  layers::UpSampling2D up({1, 2}, "bilinear");
  kt::require_close(up(Tensor::from_vector<float>({0, 4}, Shape{1, 1, 2, 1}), false).to_vector<float>(), {0, 1, 3, 4},
                    0.f, 1e-6f);
  CHECK_THROWS_WITH(layers::UpSampling2D({2, 2}, "bicubic"), Catch::Contains("received 'bicubic'"));
}

TEST_CASE("GroupNormalization, UnitNormalization, RMSNormalization, PReLU and the 1-d reshaping layers pass the layer test",
          "[cpu][layers]") {
  kt::run_layer_test([] { return layers::GroupNormalization({.groups = 2}); },
                     {.input_shape = Shape{2, 3, 3, 4},
                      .expected_output = {std::nullopt, 3, 3, 4},
                      .trainable_weights = 2,
                      .params = 8});
  // Groups of 2 channels over 2 positions: sample [1, 3, 5, 7] in group 0, by hand.
  layers::GroupNormalization gn({.groups = 2, .epsilon = 1e-6f});
  const Tensor g = gn(Tensor::from_vector<float>({1, 3, 0, 0, 5, 7, 0, 0}, Shape{1, 2, 4}), false);
  const float inv = 1.f / std::sqrt(5.f + 1e-6f);  // mean 4, variance 5
  kt::require_close(g.to_vector<float>(), {-3 * inv, -1 * inv, 0, 0, 1 * inv, 3 * inv, 0, 0}, 1e-5f, 1e-5f);
  CHECK_THROWS_WITH(gn(ops::ones(Shape{1, 2, 3}), false), Catch::Contains("must divide the channels (3)"));

  kt::run_layer_test([] { return layers::UnitNormalization(); },
                     {.input_shape = Shape{2, 5}, .expected_output = {std::nullopt, 5}});
  kt::require_close(layers::UnitNormalization()(Tensor::from_vector<float>({3, 4}, Shape{1, 2}), false).to_vector<float>(),
                    {0.6f, 0.8f}, 1e-6f, 1e-6f);
  kt::run_layer_test([] { return layers::RMSNormalization(); },
                     {.input_shape = Shape{2, 5}, .expected_output = {std::nullopt, 5}, .trainable_weights = 1, .params = 5});
  kt::require_close(layers::RMSNormalization(1e-6f)(Tensor::from_vector<float>({3, 4}, Shape{1, 2}), false).to_vector<float>(),
                    {3.f / std::sqrt(12.5f), 4.f / std::sqrt(12.5f)}, 1e-5f, 1e-5f);
  kt::run_layer_test([] { return layers::PReLU({.alpha_initializer = "random_uniform", .shared_axes = {1}}); },
                     {.input_shape = Shape{2, 3, 4},
                      .expected_output = {std::nullopt, 3, 4},
                      .trainable_weights = 1,
                      .params = 4});
  kt::run_layer_test([] { return layers::ZeroPadding1D({1, 2}); },
                     {.input_shape = Shape{2, 3, 2}, .expected_output = {std::nullopt, 6, 2}});
  kt::run_layer_test([] { return layers::Cropping1D({1, 0}); },
                     {.input_shape = Shape{2, 3, 2}, .expected_output = {std::nullopt, 2, 2}});
  kt::run_layer_test([] { return layers::UpSampling1D(3); },
                     {.input_shape = Shape{2, 2, 2}, .expected_output = {std::nullopt, 6, 2}});
  kt::require_close(layers::UpSampling1D(2)(Tensor::from_vector<float>({1, 2}, Shape{1, 2, 1}), false).to_vector<float>(),
                    {1, 1, 2, 2}, 0.f, 0.f);
  kt::run_layer_test([] { return layers::SpatialDropout1D(0.5f, 3); },
                     {.input_shape = Shape{2, 4, 8}, .expected_output = {std::nullopt, 4, 8}, .training_is_random = true});
}

TEST_CASE("pooling, reshaping, normalization and regularization layers pass the layer test", "[cpu][layers]") {
  // Max-based layers: near-ties in random inputs defeat finite differences; their gradients are
  // checked against Python Keras in test_keras_fixtures.cpp instead.
  kt::run_layer_test(
      [] { return layers::MaxPooling1D(2); },
      {.input_shape = Shape{2, 7, 3}, .expected_output = {std::nullopt, 3, 3}, .check_input_gradient = false});
  kt::run_layer_test([] { return layers::GlobalAveragePooling1D(); },
                     {.input_shape = Shape{2, 7, 3}, .expected_output = {std::nullopt, 3}});
  kt::run_layer_test(
      [] { return layers::GlobalMaxPooling1D(); },
      {.input_shape = Shape{2, 7, 3}, .expected_output = {std::nullopt, 3}, .check_input_gradient = false});
  kt::run_layer_test([] { return layers::ZeroPadding2D(); },
                     {.input_shape = Shape{1, 2, 3, 2}, .expected_output = {std::nullopt, 4, 5, 2}});
  kt::run_layer_test(
      [] {
        return layers::Cropping2D({{{1, 1}, {0, 2}}});
      },
      {.input_shape = Shape{1, 4, 5, 2}, .expected_output = {std::nullopt, 2, 3, 2}});
  kt::run_layer_test([] { return layers::UpSampling2D(); },
                     {.input_shape = Shape{1, 2, 3, 2}, .expected_output = {std::nullopt, 4, 6, 2}});
  kt::run_layer_test(
      [] {
        return layers::Permute({2, 1});
      },
      {.input_shape = Shape{2, 3, 4}, .expected_output = {std::nullopt, 4, 3}});
  kt::run_layer_test([] { return layers::RepeatVector(3); },
                     {.input_shape = Shape{2, 4}, .expected_output = {std::nullopt, 3, 4}});
  kt::run_layer_test([] { return layers::Rescaling(1.f / 255.f); },
                     {.input_shape = Shape{2, 4}, .expected_output = {std::nullopt, 4}});
  kt::run_layer_test(
      [] { return layers::LayerNormalization(); },
      {.input_shape = Shape{3, 5}, .expected_output = {std::nullopt, 5}, .trainable_weights = 2, .params = 10});
  kt::run_layer_test(
      [] { return layers::SpatialDropout2D(0.5f, 3); },
      {.input_shape = Shape{2, 3, 3, 8}, .expected_output = {std::nullopt, 3, 3, 8}, .training_is_random = true});
  kt::run_layer_test([] { return layers::Lambda([](const Tensor& x) { return ops::square(x); }); },
                     {.input_shape = Shape{2, 4}, .expected_output = {std::nullopt, 4}});
  kt::run_layer_test([] { return layers::ReLU({.max_value = 6.f, .negative_slope = 0.1f, .threshold = 0.5f}); },
                     {.input_shape = Shape{2, 4}, .expected_output = {std::nullopt, 4}});
  kt::run_layer_test([] { return layers::LeakyReLU(); }, {.input_shape = Shape{2, 4}, .expected_output = {std::nullopt, 4}});
  kt::run_layer_test([] { return layers::ELU(0.5f); }, {.input_shape = Shape{2, 4}, .expected_output = {std::nullopt, 4}});
  kt::run_layer_test([] { return layers::Softmax(1); },
                     {.input_shape = Shape{2, 3, 4}, .expected_output = {std::nullopt, 3, 4}});
  // SpatialDropout2D drops whole channels: every position of a channel agrees.
  layers::SpatialDropout2D sd(0.5f, 9);
  const auto y = sd(ops::ones(Shape{1, 4, 4, 16}), true).to_vector<float>();
  for (int c = 0; c < 16; ++c)
    for (int p = 1; p < 16; ++p) CHECK(y[static_cast<size_t>(p * 16 + c)] == y[static_cast<size_t>(c)]);
  kt::require_throws_with<ValueError>([] { layers::Permute({1, 3}); }, {"consecutive and start from 1"});
  layers::Cropping2D crop({{{2, 2}, {0, 0}}});
  kt::require_throws_with<ValueError>([&] { crop(ops::zeros(Shape{1, 4, 4, 1})); }, {"removes all of axis 1"});
}

TEST_CASE("ReLU, LeakyReLU, ELU and Softmax layers give Keras' values and read Keras' configs", "[cpu][layers]") {
  utils::clear_session();
  const Tensor x = Tensor::from_vector<float>({-2.f, -0.5f, 0.2f, 0.7f, 3.f, 8.f}, Shape{1, 6});
  // Printed by Python Keras 3.15.1 for the same input.
  layers::ReLU relu({.max_value = 6.f, .negative_slope = 0.1f, .threshold = 0.5f});
  kt::require_close(relu(x).to_vector<float>(), {-0.25f, -0.1f, -0.03f, 0.7f, 3.f, 6.f}, 1e-6f, 1e-6f);
  kt::require_close(layers::LeakyReLU()(x).to_vector<float>(), {-0.6f, -0.15f, 0.2f, 0.7f, 3.f, 8.f}, 1e-6f, 1e-6f);
  kt::require_close(layers::ELU(0.5f)(x).to_vector<float>(), {-0.43233237f, -0.19673467f, 0.2f, 0.7f, 3.f, 8.f},
                    1e-6f, 1e-6f);
  kt::require_close(layers::ReLU({.max_value = 6.f})(x).to_vector<float>(), {0, 0, 0.2f, 0.7f, 3.f, 6.f}, 1e-6f, 0.f);
  // Softmax over axis 0 of a (2, 3) input, against exp / column sums.
  const Tensor m = Tensor::from_vector<float>({1.f, 2.f, 3.f, 0.f, 2.f, 5.f}, Shape{2, 3});
  const auto v = m.to_vector<float>();
  std::vector<float> expected(6);
  for (int c = 0; c < 3; ++c) {
    const double a = std::exp(v[static_cast<size_t>(c)]), b = std::exp(v[static_cast<size_t>(3 + c)]);
    expected[static_cast<size_t>(c)] = static_cast<float>(a / (a + b));
    expected[static_cast<size_t>(3 + c)] = static_cast<float>(b / (a + b));
  }
  kt::require_close(layers::Softmax(0)(m).to_vector<float>(), expected, 1e-6f, 1e-6f);
  // Keras' automatic names and configs (serialized by Python Keras 3.15.1).
  CHECK(relu.name() == "re_lu");
  utils::clear_session();
  CHECK(layers::LeakyReLU().name() == "leaky_re_lu");
  const auto loaded = serialization::deserialize_layer(Config::parse(
      R"({"module": "keras.layers", "class_name": "ReLU", "config": {"name": "re_lu_1", "trainable": true,
          "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null},
          "max_value": 6.0, "negative_slope": 0.1, "threshold": 0.5}, "registered_name": null})"));
  kt::require_close((*loaded)(x).to_vector<float>(), {-0.25f, -0.1f, -0.03f, 0.7f, 3.f, 6.f}, 1e-6f, 1e-6f);
  const auto keras2 = serialization::deserialize_layer(
      Config::parse(R"({"class_name": "LeakyReLU", "config": {"name": "leaky", "alpha": 0.1}})"));  // Keras 2's key
  kt::require_close((*keras2)(x).to_vector<float>(), {-0.2f, -0.05f, 0.2f, 0.7f, 3.f, 8.f}, 1e-6f, 1e-6f);
  kt::require_throws_with<ValueError>([] { layers::LeakyReLU(-1.f); }, {"negative_slope", "-1"});
}
