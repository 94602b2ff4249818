// kerascpp against Python Keras 3: tests/fixtures/keras_reference.json holds Keras' answers for fixed
// weights and inputs (made by tools/fixtures/make_keras_fixtures.sh).
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

using namespace keras;
using json = nlohmann::json;

namespace {

const json& fixtures() {
  static const json j = [] {
    // The source tree's path, or tests/fixtures from the working directory when the tests run on
    // another machine (the GPU one) from a copy of the repository.
    std::ifstream in(KERASCPP_FIXTURE_DIR "/keras_reference.json");
    if (!in.good()) in = std::ifstream("tests/fixtures/keras_reference.json");
    REQUIRE(in.good());
    return json::parse(in);
  }();
  return j;
}

Tensor tensor_of(const json& t) {
  std::vector<int64_t> shape = t.at("shape").get<std::vector<int64_t>>();
  std::vector<float> values;
  for (double v : t.at("values")) values.push_back(static_cast<float>(v));
  return Tensor::from_vector(values, Shape(shape));
}
std::vector<float> values_of(const json& t) {
  std::vector<float> v;
  for (double d : (t.is_object() ? t.at("values") : t)) v.push_back(static_cast<float>(d));
  return v;
}

// Output and gradients of sum(y * probe) for a layer given Keras' weights.
void check_layer_case(const char* name, Layer& layer, bool training = false) {
  INFO("fixture " << name);
  const json& c = fixtures().at(name);
  Tensor x = tensor_of(c.at("input"));
  layer(x, false);  // build
  std::vector<Tensor> w;
  for (const auto& t : c.at("weights")) w.push_back(tensor_of(t));
  layer.set_weights(w);
  GradientTape tape;
  tape.watch(x);
  const Tensor y = layer(x, training);
  kt::require_close(y.to_vector<float>(), values_of(c.at("output")), 1e-5f, 1e-4f);
  std::vector<Tensor> sources{x};
  for (Variable* v : layer.trainable_weights()) sources.push_back(v->value());
  const auto grads = tape.gradient(y, sources, tensor_of(c.at("probe")));
  kt::require_close(grads[0].to_vector<float>(), values_of(c.at("grad_input")), 1e-5f, 1e-4f);
  const auto& gw = c.at("grad_weights");
  REQUIRE(gw.size() == grads.size() - 1);
  for (size_t i = 0; i < gw.size(); ++i) {
    INFO("weight gradient " << i);
    kt::require_close(grads[i + 1].to_vector<float>(), values_of(gw[i]), 1e-4f, 1e-4f);
  }
}

}  // namespace

TEST_CASE("layers match Python Keras: outputs and gradients", "[cpu][keras]") {
  layers::Dense dense(4, {.activation = "tanh"});
  check_layer_case("dense_tanh", dense);
  layers::Conv2D conv(3, {3, 2}, {.strides = {2, 1}, .padding = "same", .activation = "relu"});
  check_layer_case("conv2d_same_strided_relu", conv);
  layers::Conv2D dilated(4, {2, 2}, {.dilation_rate = {2, 1}});
  check_layer_case("conv2d_valid_dilated", dilated);
  layers::MaxPooling2D maxpool({2, 3}, {.strides = std::array<int64_t, 2>{2, 2}, .padding = "same"});
  check_layer_case("max_pooling2d_same", maxpool);
  layers::AveragePooling2D avgpool({3, 3}, {.strides = std::array<int64_t, 2>{2, 2}, .padding = "same"});
  check_layer_case("average_pooling2d_same", avgpool);
  layers::BatchNormalization bn_train;
  check_layer_case("batch_normalization_training", bn_train, true);
  layers::BatchNormalization bn_infer;
  check_layer_case("batch_normalization_inference", bn_infer);

  const json& m = fixtures().at("batch_normalization_moving");
  layers::BatchNormalization bn;
  bn(tensor_of(m.at("input")), true);
  kt::require_close(bn.weights()[2]->value().to_vector<float>(), values_of(m.at("moving_mean")), 1e-6f, 1e-5f);
  kt::require_close(bn.weights()[3]->value().to_vector<float>(), values_of(m.at("moving_variance")), 1e-6f, 1e-5f);
}

TEST_CASE("more layers match Python Keras: convolutions, normalization, reshaping, pooling", "[cpu][keras]") {
  layers::Conv1D conv1d(3, 3, {.strides = 2, .padding = "same", .activation = "tanh"});
  check_layer_case("conv1d_same_strided", conv1d);
  layers::Conv2DTranspose deconv(3, {3, 3}, {.strides = {2, 2}, .padding = "same"});
  check_layer_case("conv2d_transpose_same", deconv);
  layers::Conv2DTranspose deconv_valid(2, {2, 3}, {.strides = {1, 2}});
  check_layer_case("conv2d_transpose_valid", deconv_valid);
  layers::DepthwiseConv2D depthwise({3, 3}, {.padding = "same", .depth_multiplier = 2});
  check_layer_case("depthwise_conv2d", depthwise);
  layers::SeparableConv2D separable(4, {3, 3}, {.strides = {2, 2}, .activation = "relu"});
  check_layer_case("separable_conv2d", separable);
  layers::LayerNormalization layer_norm;
  check_layer_case("layer_normalization", layer_norm);
  layers::UpSampling2D up({2, 3});
  check_layer_case("up_sampling2d", up);
  layers::ZeroPadding2D pad({{{1, 2}, {0, 1}}});
  check_layer_case("zero_padding2d", pad);
  layers::Cropping2D crop({{{1, 0}, {1, 2}}});
  check_layer_case("cropping2d", crop);
  layers::GlobalMaxPooling2D gmax;
  check_layer_case("global_max_pooling2d", gmax);
  layers::MaxPooling1D max1d(3, {.strides = 2, .padding = "same"});
  check_layer_case("max_pooling1d", max1d);
  layers::AveragePooling1D avg1d(2);
  check_layer_case("average_pooling1d", avg1d);
  layers::Permute permute({2, 1});
  check_layer_case("permute", permute);
  layers::RepeatVector repeat(3);
  check_layer_case("repeat_vector", repeat);
  layers::Rescaling rescale(0.5f, -1.f);
  check_layer_case("rescaling", rescale);
}

TEST_CASE("Dot matches Python Keras: outputs and both input gradients", "[cpu][keras]") {
  const std::vector<std::tuple<const char*, std::array<int64_t, 2>, bool>> cases = {{"dot_2d", {1, 1}, false},
                                                                                    {"dot_3d", {2, 2}, false},
                                                                                    {"dot_3d_axes_1", {1, 1}, false},
                                                                                    {"dot_normalized", {1, 1}, true}};
  for (const auto& [name, axes, normalize] : cases) {
    INFO(name);
    const json& c = fixtures().at(name);
    Tensor a = tensor_of(c.at("a")), b = tensor_of(c.at("b"));
    layers::Dot dot(axes, normalize);
    GradientTape tape;
    tape.watch(a);
    tape.watch(b);
    const Tensor y = dot.call_multi({a, b}, false).at(0);
    kt::require_close(y.to_vector<float>(), values_of(c.at("output")), 1e-5f, 1e-4f);
    const auto g = tape.gradient(y, {a, b}, tensor_of(c.at("probe")));
    kt::require_close(g[0].to_vector<float>(), values_of(c.at("grad_a")), 1e-5f, 1e-4f);
    kt::require_close(g[1].to_vector<float>(), values_of(c.at("grad_b")), 1e-5f, 1e-4f);
  }
  auto x = layers::Input({3, 4});
  kt::require_throws_with<ValueError>(
      [&] {
        layers::dot({x, layers::Input({3, 5})}, {2, 2});
      },
      {"Incompatible input shapes", "4", "5"});
  CHECK(shape_to_string(layers::dot({x, layers::Input({6, 4})}, {2, 2}).shape()) == "(None, 3, 6)");
}

TEST_CASE("losses match Python Keras", "[cpu][keras]") {
  const json& l = fixtures().at("losses");
  const Tensor probs = tensor_of(l.at("probs")), logits = tensor_of(l.at("logits")), onehot = tensor_of(l.at("onehot"));
  const Tensor ids = Tensor::from_vector(l.at("ids").get<std::vector<int64_t>>(), Shape{4});
  auto mean = [](const Tensor& t) { return ops::mean(t).item(); };
  CHECK(mean(losses::SparseCategoricalCrossentropy().per_sample(ids, probs)) ==
        Approx(l.at("sparse_categorical_crossentropy").get<double>()).epsilon(1e-5));
  CHECK(mean(losses::SparseCategoricalCrossentropy(true).per_sample(ids, logits)) ==
        Approx(l.at("sparse_categorical_crossentropy_logits").get<double>()).epsilon(1e-5));
  CHECK(mean(losses::CategoricalCrossentropy(false, 0.1f).per_sample(onehot, probs)) ==
        Approx(l.at("categorical_crossentropy_smoothing").get<double>()).epsilon(1e-5));
  CHECK(mean(losses::BinaryCrossentropy().per_sample(tensor_of(l.at("y_binary")), tensor_of(l.at("p_binary")))) ==
        Approx(l.at("binary_crossentropy").get<double>()).epsilon(1e-5));
  CHECK(mean(losses::BinaryCrossentropy(true).per_sample(tensor_of(l.at("y_binary")), tensor_of(l.at("z_binary")))) ==
        Approx(l.at("binary_crossentropy_logits").get<double>()).epsilon(1e-5));
  CHECK(mean(losses::MeanSquaredError().per_sample(tensor_of(l.at("y_reg")), tensor_of(l.at("p_reg")))) ==
        Approx(l.at("mean_squared_error").get<double>()).epsilon(1e-5));
  CHECK(mean(losses::MeanAbsoluteError().per_sample(tensor_of(l.at("y_reg")), tensor_of(l.at("p_reg")))) ==
        Approx(l.at("mean_absolute_error").get<double>()).epsilon(1e-5));
  const Tensor yr = tensor_of(l.at("y_reg")), pr = tensor_of(l.at("p_reg"));
  const std::vector<std::tuple<const char*, std::shared_ptr<losses::Loss>, Tensor, Tensor>> more = {
      {"mean_absolute_percentage_error", losses::get("mape"), yr, pr},
      {"mean_squared_logarithmic_error", losses::get("msle"), yr, pr},
      {"huber", losses::get("huber"), yr * 3.f, pr},
      {"log_cosh", losses::get("log_cosh"), yr, pr},
      {"kl_divergence", losses::get("kld"), onehot * 0.9f + 0.02f, probs},
      {"poisson", losses::get("poisson"), ops::abs(yr), ops::abs(pr)},
      {"hinge", losses::get("hinge"), tensor_of(l.at("y_binary")), tensor_of(l.at("z_binary"))},
      {"squared_hinge", losses::get("squared_hinge"), tensor_of(l.at("y_binary")), tensor_of(l.at("z_binary"))},
      {"cosine_similarity", losses::get("cosine_similarity"), yr, pr},
  };
  for (const auto& [name, loss, y, p] : more) {
    INFO(name);
    CHECK(mean(loss->per_sample(y, p)) == Approx(l.at(name).get<double>()).epsilon(1e-4).margin(1e-6));
  }
}

TEST_CASE("Precision, Recall, AUC and top-k accuracy match Python Keras over two batches", "[cpu][keras]") {
  const json& m = fixtures().at("metrics");
  auto two_batches = [&](metrics::Metric& metric) {
    metric.update_state(tensor_of(m.at("y_true_1")), tensor_of(m.at("y_pred_1")));
    metric.update_state(tensor_of(m.at("y_true_2")), tensor_of(m.at("y_pred_2")));
    return metric.result();
  };
  metrics::Precision precision;
  CHECK(two_batches(precision) == Approx(m.at("precision").get<double>()).epsilon(1e-6));
  metrics::Recall recall;
  CHECK(two_batches(recall) == Approx(m.at("recall").get<double>()).epsilon(1e-6));
  metrics::AUC auc;
  CHECK(two_batches(auc) == Approx(m.at("auc").get<double>()).epsilon(1e-5));
  metrics::AUC auc10(10);
  CHECK(two_batches(auc10) == Approx(m.at("auc_10").get<double>()).epsilon(1e-5));
  metrics::SparseTopKCategoricalAccuracy top2(2);
  top2.update_state(Tensor::from_vector(m.at("ids").get<std::vector<int64_t>>(), Shape{4}), tensor_of(m.at("scores")));
  CHECK(top2.result() == Approx(m.at("sparse_top_2").get<double>()));
  precision.reset_state();
  CHECK(precision.result() == 0.0);
}

TEST_CASE("regularizers and constraints match Python Keras", "[cpu][keras]") {
  const json& r = fixtures().at("regularization");
  const Tensor w = tensor_of(r.at("weight"));
  CHECK(regularizers::L1L2(0.01f, 0.02f)(w).item() == Approx(r.at("l1l2").get<double>()).epsilon(1e-5));
  kt::require_close(constraints::MaxNorm(0.8f)(w).to_vector<float>(), values_of(r.at("max_norm")), 1e-6f, 1e-5f);
  kt::require_close(constraints::UnitNorm()(w).to_vector<float>(), values_of(r.at("unit_norm")), 1e-6f, 1e-5f);
  kt::require_close(constraints::MinMaxNorm(0.5f, 0.9f, 0.7f)(w).to_vector<float>(), values_of(r.at("min_max_norm")),
                    1e-6f, 1e-5f);
  kt::require_close(constraints::NonNeg()(w).to_vector<float>(), values_of(r.at("non_neg")), 0, 0);
}

TEST_CASE("optimizers match Python Keras over three steps", "[cpu][keras]") {
  const json& o = fixtures().at("optimizers");
  const std::vector<std::pair<std::string, std::function<std::shared_ptr<optimizers::Optimizer>()>>> cases = {
      {"sgd_nesterov",
       [] {
         return std::make_shared<optimizers::SGD>(
             optimizers::SGDOptions{.learning_rate = 0.1f, .momentum = 0.9f, .nesterov = true});
       }},
      {"adam", [] { return std::make_shared<optimizers::Adam>(optimizers::AdamOptions{.learning_rate = 0.01f}); }},
      {"adam_amsgrad",
       [] {
         return std::make_shared<optimizers::Adam>(optimizers::AdamOptions{.learning_rate = 0.01f, .amsgrad = true});
       }},
      {"rmsprop_centered_momentum",
       [] {
         return std::make_shared<optimizers::RMSprop>(
             optimizers::RMSpropOptions{.learning_rate = 0.01f, .momentum = 0.5f, .centered = true});
       }},
      {"sgd_clipnorm",
       [] {
         return std::make_shared<optimizers::SGD>(
             optimizers::SGDOptions{.learning_rate = 0.5f, .common = {.clipnorm = 0.3f}});
       }},
      {"sgd_weight_decay",
       [] {
         return std::make_shared<optimizers::SGD>(
             optimizers::SGDOptions{.learning_rate = 0.1f, .common = {.weight_decay = 0.05f}});
       }},
      {"adamw", [] { return std::make_shared<optimizers::AdamW>(optimizers::AdamWOptions{.learning_rate = 0.01f}); }},
      {"adagrad",
       [] { return std::make_shared<optimizers::Adagrad>(optimizers::AdagradOptions{.learning_rate = 0.1f}); }},
      {"adadelta",
       [] { return std::make_shared<optimizers::Adadelta>(optimizers::AdadeltaOptions{.learning_rate = 1.f}); }},
      {"adamax",
       [] { return std::make_shared<optimizers::Adamax>(optimizers::AdamaxOptions{.learning_rate = 0.01f}); }},
      {"nadam", [] { return std::make_shared<optimizers::Nadam>(optimizers::NadamOptions{.learning_rate = 0.01f}); }},
      {"sgd_exponential_decay",
       [] {
         return std::make_shared<optimizers::SGD>(
             optimizers::SGDOptions{.learning_rate = optimizers::schedules::ExponentialDecay(0.1, 2, 0.5)});
       }},
      {"sgd_piecewise",
       [] {
         return std::make_shared<optimizers::SGD>(optimizers::SGDOptions{
             .learning_rate = optimizers::schedules::PiecewiseConstantDecay({0, 1}, {0.1, 0.05, 0.01})});
       }},
      {"sgd_cosine_warmup",
       [] {
         return std::make_shared<optimizers::SGD>(
             optimizers::SGDOptions{.learning_rate = optimizers::schedules::CosineDecay(0.0, 4, 0.1, 0.2, 2)});
       }},
      {"sgd_inverse_time",
       [] {
         return std::make_shared<optimizers::SGD>(
             optimizers::SGDOptions{.learning_rate = optimizers::schedules::InverseTimeDecay(0.1, 1, 0.5, true)});
       }},
  };
  for (const auto& [name, make] : cases) {
    INFO(name);
    Variable w(Tensor::from_vector(values_of(o.at("initial")), Shape{6}), "w");
    auto opt = make();
    for (const auto& g : o.at("gradients")) opt->apply_gradients({Tensor::from_vector(values_of(g), Shape{6})}, {&w});
    kt::require_close(w.value().to_vector<float>(), values_of(o.at(name)), 1e-6f, 1e-5f);
  }
}

TEST_CASE("one training step of a small model matches Python Keras", "[cpu][keras]") {
  const json& t = fixtures().at("train_step");
  utils::clear_session();
  Sequential model({layers::Input({6, 6, 1}), layers::Conv2D(2, {3, 3}, {.activation = "relu"}), layers::Flatten(),
                    layers::Dense(3, {.activation = "softmax"})});
  std::vector<Tensor> w;
  for (const auto& v : t.at("weights")) w.push_back(tensor_of(v));
  model.set_weights(w);
  model.compile({.optimizer = optimizers::Adam({.learning_rate = 0.05f}),
                 .loss = "sparse_categorical_crossentropy",
                 .metrics = {"accuracy"}});
  const Tensor x = tensor_of(t.at("x"));
  const Tensor y = Tensor::from_vector(t.at("y").get<std::vector<int32_t>>(), Shape{5});
  const auto logs = model.train_on_batch(x, y);
  CHECK(logs.at("loss") == Approx(t.at("loss").get<double>()).epsilon(1e-5));
  CHECK(logs.at("accuracy") == Approx(t.at("accuracy").get<double>()));
  const auto after = model.get_weights();
  for (size_t i = 0; i < after.size(); ++i) {
    INFO("weight " << i);
    kt::require_close(after[i].to_vector<float>(), values_of(t.at("weights_after")[i]), 1e-5f, 1e-4f);
  }
  kt::require_close(model.predict(x).to_vector<float>(), values_of(t.at("predict_after")), 1e-5f, 1e-4f);
}

TEST_CASE("summary() matches the text Python Keras prints", "[cpu][keras]") {
  utils::clear_session();
  Sequential model({layers::Input({28, 28, 1}), layers::Conv2D(32, {3, 3}, {.activation = "relu"}),
                    layers::MaxPooling2D({2, 2}), layers::Conv2D(64, {3, 3}, {.activation = "relu"}),
                    layers::MaxPooling2D({2, 2}), layers::Flatten(), layers::Dropout(0.5f),
                    layers::Dense(10, {.activation = "softmax"})});
  std::string expected = fixtures().at("summary_76").get<std::string>();
  while (!expected.empty() && expected.back() == '\n') expected.pop_back();
  std::string actual = model.summary_string(76);
  while (!actual.empty() && actual.back() == '\n') actual.pop_back();
  CHECK(actual == expected);
}

TEST_CASE("Functional summaries match Python Keras: a chain and a two-input graph", "[cpu][keras]") {
  auto trimmed = [](std::string t) {
    while (!t.empty() && t.back() == '\n') t.pop_back();
    return t;
  };
  utils::clear_session();
  auto x = layers::Input({8});
  auto y = layers::Dense(4, {.name = "hidden"})(x);
  Model chain(x, layers::Dense(2, {.name = "out"})(y), "functional");
  CHECK(trimmed(chain.summary_string(76)) == trimmed(fixtures().at("summary_functional_chain_76").get<std::string>()));
  utils::clear_session();
  auto a = layers::Input({4}, {.name = "a"});
  auto b = layers::Input({3}, {.name = "b"});
  Model graph({a, b},
              layers::Dense(2, {.name = "out"})(layers::concatenate({layers::Dense(5)(a), layers::Dense(5)(b)})),
              "functional");
  CHECK(trimmed(graph.summary_string(76)) ==
        trimmed(fixtures().at("summary_functional_two_inputs_76").get<std::string>()));
}
