#include <sstream>

#include "tests/support/test_support.h"

using namespace keras;

TEST_CASE("Functional models with several inputs and outputs compute what their layers compute", "[cpu][models]") {
  utils::clear_session();
  auto a = layers::Input({4}, {.name = "a"});
  auto b = layers::Input({3}, {.name = "b"});
  auto da = std::make_shared<layers::Dense>(5, layers::DenseOptions{.activation = "relu"});
  auto db = std::make_shared<layers::Dense>(5, layers::DenseOptions{.activation = "tanh"});
  auto merged = layers::concatenate({(*da)(a), (*db)(b)});
  CHECK(shape_to_string(merged.shape()) == "(None, 10)");
  auto head1 = layers::Dense(2, {.activation = "softmax", .name = "class"})(merged);
  auto head2 = layers::Dense(1, {.name = "value"})(layers::add({(*da)(a), (*db)(b)}));
  Model model({a, b}, {head1, head2}, "two_heads");
  CHECK(model.layers().size() == 8);  // a, b (InputLayers, as Keras 3), dense, dense_1, concatenate, class, add, value
  CHECK(model.count_params() == (4 * 5 + 5) + (3 * 5 + 5) + (10 * 2 + 2) + (5 + 1));
  const Tensor xa = kt::random_tensor(Shape{7, 4}, 1), xb = kt::random_tensor(Shape{7, 3}, 2);
  const auto out = model.predict_all({xa, xb}, {.batch_size = 3});
  REQUIRE(out.size() == 2);
  CHECK(out[0].shape() == Shape{7, 2});
  CHECK(out[1].shape() == Shape{7, 1});
  // The same layers applied by hand.
  const Tensor ha = (*da)(xa), hb = (*db)(xb);
  auto& cls = model.get_layer("class");
  auto& value = model.get_layer("value");
  kt::require_close(out[0].to_vector<float>(), cls(ops::concatenate({ha, hb}, 1)).to_vector<float>(), 1e-6f, 1e-5f);
  kt::require_close(out[1].to_vector<float>(), value(ha + hb).to_vector<float>(), 1e-6f, 1e-5f);
}

TEST_CASE("a shared layer keeps one set of weights and learns from every call", "[cpu][models]") {
  utils::clear_session();
  auto x1 = layers::Input({2}), x2 = layers::Input({2});
  auto shared =
      std::make_shared<layers::Dense>(1, layers::DenseOptions{.use_bias = false, .kernel_initializer = "zeros"});
  auto y = layers::add({(*shared)(x1), (*shared)(x2)});  // w.x1 + w.x2
  Model model({x1, x2}, y);
  CHECK(model.weights().size() == 1);
  model.compile({.optimizer = optimizers::SGD({.learning_rate = 0.05f}), .loss = "mse"});
  // Target: 2 x1 - x2 summed with the same weights on x2: w = (a, b) with w.(x1 + x2) = target.
  const Tensor a = kt::random_tensor(Shape{256, 2}, 3), b = kt::random_tensor(Shape{256, 2}, 4);
  const Tensor w_true = Tensor::from_vector<float>({1.5f, -0.5f}, Shape{2, 1});
  const Tensor target = ops::matmul(a + b, w_true);
  const History h = model.fit({a, b}, target, {.batch_size = 32, .epochs = 30, .verbose = 0});
  CHECK(h.history.at("loss").back() < 1e-3);
  kt::require_close(shared->kernel()->value().to_vector<float>(), {1.5f, -0.5f}, 2e-2f, 0);
}

TEST_CASE("models nest: a Sequential and a Functional model used as layers", "[cpu][models]") {
  utils::clear_session();
  auto inner_in = layers::Input({3});
  Model inner(inner_in, layers::Dense(4, {.activation = "relu"})(inner_in), "inner");
  auto stack = std::make_shared<Sequential>(std::vector<LayerRef>{layers::Dense(2)}, "stack");
  auto inner_ptr = std::make_shared<Model>(std::move(inner));
  auto x = layers::Input({3});
  auto y = (*stack)((*inner_ptr)(x));
  Model outer(x, y, "outer");
  CHECK(outer.count_params() == (3 * 4 + 4) + (4 * 2 + 2));
  const Tensor in = kt::random_tensor(Shape{5, 3}, 5);
  kt::require_close(outer.predict(in).to_vector<float>(), (*stack)((*inner_ptr)(in)).to_vector<float>(), 1e-6f, 1e-5f);
  // Training the outer model trains the nested ones' weights.
  const auto before = inner_ptr->get_weights();
  outer.compile({.optimizer = "sgd", .loss = "mse"});
  outer.fit(in, kt::random_tensor(Shape{5, 2}, 6), {.epochs = 1, .verbose = 0});
  CHECK(before[0].to_vector<float>() != inner_ptr->get_weights()[0].to_vector<float>());
}

TEST_CASE("the Functional API fails on the line that makes a bad graph, with Keras' texts", "[cpu][models]") {
  utils::clear_session();
  auto x = layers::Input({5});
  auto dense = std::make_shared<layers::Dense>(3);
  (*dense)(layers::Input({4}));  // built for 4 features
  kt::require_throws_with<ValueError>(
      [&] { (*dense)(x); },
      {"Input 0 of layer \"dense\" is incompatible with the layer: expected axis -1 of input shape "
       "to have value 4, but received input with shape (None, 5)"});
  kt::require_throws_with<ValueError>(
      [&] {
        layers::concatenate({x, layers::Input({2, 2})});
      },
      {"A `Concatenate` layer requires inputs with matching shapes", "(None, 5)", "(None, 2, 2)"});
  kt::require_throws_with<ValueError>(
      [&] {
        layers::add({x, layers::Input({4})});
      },
      {"incompatible shapes", "(None, 5)", "(None, 4)"});
  layers::Dense on_stack(2);
  kt::require_throws_with<ValueError>([&] { on_stack(x); }, {"not owned by a std::shared_ptr", "std::make_shared"});
  auto other = layers::Input({5});
  auto y = layers::add({x, other});
  kt::require_throws_with<ValueError>([&] { Model m(x, y); }, {"needs an input that is not in the model's inputs"});
  Model ok({x, other}, y);
  kt::require_throws_with<ValueError>([&] { ok.predict(ops::zeros(Shape{2, 5})); }, {"expects 2 input(s), received 1"});
}

TEST_CASE("multi-output fit weights the losses and names the metrics by output", "[cpu][models]") {
  utils::clear_session();
  auto x = layers::Input({4});
  auto h = layers::Dense(8, {.activation = "relu"})(x);
  auto left = layers::Dense(3, {.activation = "softmax", .name = "left"})(h);
  auto right = layers::Dense(3, {.activation = "softmax", .name = "right"})(h);
  Model model(x, {left, right});
  model.compile({.optimizer = "adam",
                 .loss = "sparse_categorical_crossentropy",
                 .metrics = {"accuracy"},
                 .loss_weights = {1.f, 0.5f}});
  const Tensor in = kt::random_tensor(Shape{12, 4}, 7);
  const Tensor y1 = Tensor::from_vector<int32_t>({0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2}, Shape{12});
  const Tensor y2 = Tensor::from_vector<int32_t>({2, 2, 1, 1, 0, 0, 2, 2, 1, 1, 0, 0}, Shape{12});
  // The logged loss is loss(left) + 0.5 loss(right), from the model's own predictions.
  const auto probs = model.predict_all(in);
  const double expected = ops::mean(losses::SparseCategoricalCrossentropy().per_sample(y1, probs[0])).item() +
                          0.5 * ops::mean(losses::SparseCategoricalCrossentropy().per_sample(y2, probs[1])).item();
  const auto logs = model.test_on_batch(in, {y1, y2});
  CHECK(logs.at("loss") == Approx(expected).epsilon(1e-5));
  CHECK(logs.count("left_accuracy"));
  CHECK(logs.count("right_accuracy"));
  // Keras also logs each output's own (unweighted) loss.
  CHECK(logs.at("left_loss") + 0.5 * logs.at("right_loss") == Approx(logs.at("loss")).epsilon(1e-5));
  const History hist = model.fit(in, {y1, y2}, {.batch_size = 4, .epochs = 2, .verbose = 0});
  CHECK(hist.history.count("left_accuracy"));
  kt::require_throws_with<ValueError>([&] { model.fit(in, y1, {.verbose = 0}); },
                                      {"has 2 output(s), received 1 target(s)"});
}

TEST_CASE("a Functional summary wraps cells and lists what each layer is connected to", "[cpu][models]") {
  utils::clear_session();
  auto x = layers::Input({8});
  auto h = layers::Dense(4, {.name = "hidden"})(x);
  Model model(x, {layers::Dense(2, {.name = "out"})(h), layers::Dense(3, {.name = "aux"})(h)}, "functional");
  const std::string text = model.summary_string(76);
  CHECK(text.find("Model: \"functional\"") == 0);
  CHECK(text.find("Connected to") != std::string::npos);
  // Cells wrap as rich wraps them in Keras: "input_layer" then "(InputLayer)" on the next line.
  CHECK(text.find(
            "\u2502 input_layer         \u2502 (None, 8)         \u2502          0 \u2502 -                 \u2502\n"
            "\u2502 (InputLayer)        \u2502") != std::string::npos);
  CHECK(text.find("hidden[0][0]") != std::string::npos);
  CHECK(text.find(" Total params: 61 (244.00 B)") != std::string::npos);
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    int columns = 0;
    for (unsigned char c : line) columns += (c & 0xC0) != 0x80;
    if (line.rfind("\u2502", 0) == 0 || line.rfind("\u250f", 0) == 0) CHECK(columns == 76);
  }
}

TEST_CASE("each output can have its own loss", "[cpu][models]") {
  utils::clear_session();
  auto x = layers::Input({3});
  auto h = layers::Dense(4, {.activation = "tanh"})(x);
  auto cls = layers::Dense(2, {.activation = "softmax", .name = "cls"})(h);
  auto reg = layers::Dense(1, {.name = "reg"})(h);
  Model model(x, {cls, reg});
  model.compile({.optimizer = "adam", .loss = {"sparse_categorical_crossentropy", "mse"}});
  const Tensor in = kt::random_tensor(Shape{6, 3}, 3);
  const Tensor labels = Tensor::from_vector<int32_t>({0, 1, 1, 0, 1, 0}, Shape{6});
  const Tensor target = kt::random_tensor(Shape{6, 1}, 4);
  const auto out = model.predict_all(in);
  const double ce = ops::mean(losses::SparseCategoricalCrossentropy().per_sample(labels, out[0])).item();
  const double mse = ops::mean(losses::MeanSquaredError().per_sample(target, out[1])).item();
  const auto logs = model.test_on_batch(in, {labels, target});
  CHECK(logs.at("cls_loss") == Approx(ce).epsilon(1e-5));
  CHECK(logs.at("reg_loss") == Approx(mse).epsilon(1e-5));
  CHECK(logs.at("loss") == Approx(ce + mse).epsilon(1e-5));
  kt::require_throws_with<ValueError>(
      [&] {
        model.compile({.loss = {"mse", "mse", "mse"}});
      },
      {"expected 1 loss or 2", "received 3"});
}

TEST_CASE("Conv2D -> BatchNormalization -> ReLU chains run folded at inference and give the layers' results",
          "[cpu][models]") {
  // A model folds the batch norm (and a following relu) into the convolution where the batch norm
  // uses its moving statistics; a convolution whose output is read elsewhere is not folded.
  utils::clear_session();
  auto x = layers::Input({9, 8, 16});
  auto conv_a = std::make_shared<layers::Conv2D>(16, std::array<int64_t, 2>{3, 3}, layers::Conv2DOptions{.padding = "same"});
  auto bn_a = std::make_shared<layers::BatchNormalization>();
  auto relu_a = std::make_shared<layers::Activation>("relu");
  auto conv_b = std::make_shared<layers::Conv2D>(8, std::array<int64_t, 2>{1, 1}, layers::Conv2DOptions{.use_bias = false});
  auto bn_b = std::make_shared<layers::BatchNormalization>(layers::BatchNormalizationOptions{.scale = false});
  auto conv_c = std::make_shared<layers::Conv2D>(8, std::array<int64_t, 2>{1, 1});
  auto bn_c = std::make_shared<layers::BatchNormalization>();
  auto a = (*relu_a)((*bn_a)((*conv_a)(x)));          // folded with the relu
  auto b = (*bn_b)((*conv_b)(a));                     // folded, no relu
  auto c_raw = (*conv_c)(a);
  auto c = layers::add({(*bn_c)(c_raw), c_raw});      // conv_c's output is read twice: not folded
  Model model(x, layers::concatenate({b, c}));
  // Statistics far from 0 and 1, so a wrong fold shows.
  for (auto* bn : {bn_a.get(), bn_b.get(), bn_c.get()}) {
    auto w = bn->get_weights();
    for (size_t i = 0; i < w.size(); ++i) w[i] = kt::random_tensor(w[i].shape(), 40 + static_cast<int>(i), 0.5f, 1.5f);
    bn->set_weights(w);
  }
  const Tensor in = kt::random_tensor(Shape{2, 9, 8, 16}, 7);
  auto layer_by_layer = [&](bool training) {
    const Tensor ya = (*relu_a)((*bn_a)((*conv_a)(in, training), training), training);
    const Tensor yb = (*bn_b)((*conv_b)(ya, training), training);
    const Tensor yc_raw = (*conv_c)(ya, training);
    return ops::concatenate({yb, (*bn_c)(yc_raw, training) + yc_raw}, -1);
  };
  kt::require_close(model.predict(in).to_vector<float>(), layer_by_layer(false).to_vector<float>(), 1e-4f, 1e-4f);
  kt::require_close(model(in, false).to_vector<float>(), layer_by_layer(false).to_vector<float>(), 1e-4f, 1e-4f);
  // Frozen batch norms use their moving statistics in training too (Keras), folded or not.
  for (auto* bn : {bn_a.get(), bn_b.get(), bn_c.get()}) bn->set_trainable(false);
  kt::require_close(model(in, true).to_vector<float>(), layer_by_layer(true).to_vector<float>(), 1e-4f, 1e-4f);
  // Gradients still reach the convolutions through a folded chain.
  GradientTape tape;
  const auto g = tape.gradient(ops::sum(model(in, true)), conv_a->trainable_weights());
  CHECK(ops::sum(ops::abs(g[0])).item() > 0.0);
  // A Sequential folds the same chains: the same layers, layer by layer.
  Sequential seq({layers::Input({9, 8, 16}), conv_a, bn_a, relu_a, conv_b, bn_b});
  const Tensor expected = (*bn_b)((*conv_b)((*relu_a)((*bn_a)((*conv_a)(in, false), false), false), false), false);
  kt::require_close(seq.predict(in).to_vector<float>(), expected.to_vector<float>(), 1e-4f, 1e-4f);
}

TEST_CASE("residual blocks (Conv2D -> BatchNormalization -> Add -> ReLU) run in the convolution's pass at inference "
          "and give the layers' results",
          "[cpu][models]") {
  // The shortcut is added in the convolution's pass where it is computed before the convolution
  // (ResNet's order); where it comes after, the chain folds only its batch norm.
  utils::clear_session();
  using layers::Conv2D, layers::Conv2DOptions, layers::BatchNormalization, layers::Activation;
  const auto conv = [](int64_t f, int64_t k) {
    return std::make_shared<Conv2D>(f, std::array<int64_t, 2>{k, k}, Conv2DOptions{.padding = "same"});
  };
  auto x = layers::Input({8, 8, 16});
  auto conv1 = conv(16, 3), conv_s = conv(24, 1), conv2 = conv(24, 1), conv3 = conv(24, 3), conv_s3 = conv(24, 1);
  auto bn1 = std::make_shared<BatchNormalization>(), bn_s = std::make_shared<BatchNormalization>(),
       bn2 = std::make_shared<BatchNormalization>(), bn3 = std::make_shared<BatchNormalization>();
  auto relu1 = std::make_shared<Activation>("relu"), relu2 = std::make_shared<Activation>("relu");
  auto r1 = (*relu1)(layers::add({(*bn1)((*conv1)(x)), x}));             // identity shortcut (Winograd)
  auto s = (*bn_s)((*conv_s)(r1));                                        // projection shortcut, computed first
  auto r2 = (*relu2)(layers::add({s, (*bn2)((*conv2)(r1))}));
  auto out = layers::add({(*bn3)((*conv3)(r2)), (*conv_s3)(r2)});         // shortcut computed after: no relu
  Model model(x, out);
  for (auto* bn : {bn1.get(), bn_s.get(), bn2.get(), bn3.get()}) {
    auto w = bn->get_weights();
    for (size_t i = 0; i < w.size(); ++i) w[i] = kt::random_tensor(w[i].shape(), 70 + static_cast<int>(i), 0.5f, 1.5f);
    bn->set_weights(w);
  }
  const Tensor in = kt::random_tensor(Shape{2, 8, 8, 16}, 8);
  auto layer_by_layer = [&](bool training) {
    const Tensor y1 = (*relu1)((*bn1)((*conv1)(in, training), training) + in, training);
    const Tensor ys = (*bn_s)((*conv_s)(y1, training), training);
    const Tensor y2 = (*relu2)(ys + (*bn2)((*conv2)(y1, training), training), training);
    return (*bn3)((*conv3)(y2, training), training) + (*conv_s3)(y2, training);
  };
  kt::require_close(model.predict(in).to_vector<float>(), layer_by_layer(false).to_vector<float>(), 1e-4f, 1e-4f);
  kt::require_close(model(in, false).to_vector<float>(), layer_by_layer(false).to_vector<float>(), 1e-4f, 1e-4f);
  // Frozen batch norms in training: the chains run op by op under the tape, with the same gradients.
  for (auto* bn : {bn1.get(), bn_s.get(), bn2.get(), bn3.get()}) bn->set_trainable(false);
  std::vector<Variable*> weights;
  for (auto* c : {conv1.get(), conv_s.get(), conv2.get()})
    for (Variable* v : c->trainable_weights()) weights.push_back(v);
  GradientTape tape_model;
  const auto g_model = tape_model.gradient(ops::sum(ops::square(model(in, true))), weights);
  GradientTape tape_layers;
  const auto g_layers = tape_layers.gradient(ops::sum(ops::square(layer_by_layer(true))), weights);
  REQUIRE(g_model.size() == g_layers.size());
  for (size_t i = 0; i < g_model.size(); ++i) {
    INFO("gradient " << i);
    kt::require_close(g_model[i].to_vector<float>(), g_layers[i].to_vector<float>(), 1e-3f, 1e-4f);
  }
}

TEST_CASE("Conv2D -> MaxPooling2D pairs run in one pass at inference and give the layers' results", "[cpu][models]") {
  // The first convolution's output is read only by its pooling: folded. The second one's is also
  // an output of the model: not folded. A Sequential folds its pairs the same way.
  utils::clear_session();
  auto x = layers::Input({12, 12, 1});
  auto conv_a = std::make_shared<layers::Conv2D>(16, std::array<int64_t, 2>{3, 3},
                                                 layers::Conv2DOptions{.padding = "same", .activation = "relu"});
  auto pool_a = std::make_shared<layers::MaxPooling2D>();
  auto conv_b = std::make_shared<layers::Conv2D>(16, std::array<int64_t, 2>{3, 3});
  auto pool_b = std::make_shared<layers::MaxPooling2D>();
  auto a = (*pool_a)((*conv_a)(x));
  auto b_raw = (*conv_b)(a);
  Model model(x, {(*pool_b)(b_raw), b_raw});
  const Tensor in = kt::random_tensor(Shape{3, 12, 12, 1}, 11);
  const Tensor ya = (*pool_a)((*conv_a)(in, false), false);
  const Tensor yb_raw = (*conv_b)(ya, false);
  Backend& be = default_backend();
  const int64_t before = be.counters()["fused_conv_max_pools"];
  const auto out = model.predict_all(in);
  kt::require_close(out.at(0).to_vector<float>(), (*pool_b)(yb_raw, false).to_vector<float>(), 1e-4f, 1e-4f);
  kt::require_close(out.at(1).to_vector<float>(), yb_raw.to_vector<float>(), 1e-4f, 1e-4f);
  const bool one_pass = be.name() == "cpu" && __builtin_cpu_supports("avx512f");
  if (one_pass) CHECK(be.counters()["fused_conv_max_pools"] - before == 1);  // conv_a only

  Sequential seq({layers::Input({12, 12, 1}), conv_a, pool_a, conv_b, pool_b, layers::Flatten(), layers::Dense(3)});
  const Tensor expected = seq.layers()[5]->operator()(
      seq.layers()[4]->operator()((*pool_b)((*conv_b)(ya, false), false), false), false);
  const int64_t before_seq = be.counters()["fused_conv_max_pools"];
  kt::require_close(seq.predict(in).to_vector<float>(), expected.to_vector<float>(), 1e-4f, 1e-4f);
  if (one_pass) CHECK(be.counters()["fused_conv_max_pools"] - before_seq == 1);
  // Training differentiates through the two ops (nothing fused) and the loss falls.
  seq.compile({.optimizer = "sgd", .loss = "mse"});
  const Tensor target = kt::random_tensor(Shape{3, 3}, 12);
  const int64_t before_fit = be.counters()["fused_conv_max_pools"];
  const double first = seq.train_on_batch(in, target).at("loss");
  for (int i = 0; i < 20; ++i) seq.train_on_batch(in, target);
  CHECK(be.counters()["fused_conv_max_pools"] == before_fit);
  CHECK(seq.test_on_batch(in, target).at("loss") < first);
}

TEST_CASE("a training pass of residual units keeps two activations per unit, and frees the rest as it goes",
          "[cpu][models][memory]") {
  // Each unit: x -> Conv2D -> BatchNormalization -> Add(., x) -> relu. The backward pass needs the
  // convolution's output (the batch norm's input) and the relu's output (its own rule, and the next
  // convolution's input); the batch norm's and the Add's outputs need not outlive the forward pass.
  utils::clear_session();
  constexpr int kUnits = 4;
  constexpr int64_t kAct = 4 * 32 * 32 * 16 * 4;  // bytes of one activation: a whole allocator bucket
  auto in = layers::Input({32, 32, 16});
  KerasTensor x = in;
  for (int u = 0; u < kUnits; ++u) {
    auto c = layers::Conv2D(16, {3, 3}, {.padding = "same", .use_bias = false})(x);
    auto b = layers::BatchNormalization()(c);
    x = layers::Activation("relu")(layers::add({b, x}));
  }
  Model model(in, layers::Dense(1)(layers::GlobalAveragePooling2D()(x)));
  const Tensor batch = kt::random_tensor(Shape{4, 32, 32, 16}, 3);
  Backend& be = *batch.backend();
  model(batch, true);  // builds and warms up

  const int64_t before = be.memory_info().current;
  be.reset_peak_memory();
  GradientTape tape;
  const Tensor loss = ops::mean(model(batch, true));
  const int64_t kept = be.memory_info().current - before, peak = be.memory_info().peak - before;
  // Small tensors (statistics, the pooled features) stay under half an activation.
  CHECK(kept >= 2 * kUnits * kAct);
  CHECK(kept <= 2 * kUnits * kAct + kAct / 2);
  // Within a unit, the batch norm's and the Add's outputs are alive until the relu has run.
  CHECK(peak <= kept + 2 * kAct + kAct / 2);
  const auto grads = tape.gradient(loss, model.trainable_weights());
  CHECK(grads.size() == model.trainable_weights().size());
}
