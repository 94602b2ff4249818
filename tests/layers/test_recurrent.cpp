// Recurrent layers, Embedding, Masking, TimeDistributed and Bidirectional: against Python Keras 3
// (tests/fixtures/keras_recurrent.json, made by tools/fixtures/make_recurrent_fixtures.py), finite
// differences, and the identities Keras' semantics imply (masking = truncation, stateful = one
// long sequence, TimeDistributed = a loop over steps).
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/layer_test.h"
#include "tests/support/test_support.h"

using namespace keras;
using json = nlohmann::json;

namespace {

const json& fixtures() {
  static const json j = [] {
    std::ifstream in(kt::fixture_dir() / "keras_recurrent.json");
    REQUIRE(in.good());
    return json::parse(in);
  }();
  return j;
}

Tensor tensor_of(const json& t, DType dtype = DType::float32) {
  std::vector<int64_t> shape = t.at("shape").get<std::vector<int64_t>>();
  std::vector<float> values;
  for (double v : t.at("values")) values.push_back(static_cast<float>(v));
  Tensor f = Tensor::from_vector(values, Shape(shape));
  return dtype == DType::float32 ? f : ops::cast(f, dtype);
}
std::vector<float> values_of(const json& t) {
  std::vector<float> v;
  for (double d : t.at("values")) v.push_back(static_cast<float>(d));
  return v;
}

// Keras' outputs, and the gradients of sum_k(sum(y_k * probe_k)) for the input, the initial states
// and every trainable weight, given Keras' weights (and mask, and initial states).
void check_case(const char* name, Layer& layer, bool int_input = false) {
  INFO("fixture " << name);
  const json& c = fixtures().at(name);
  Tensor x = tensor_of(c.at("input"), int_input ? DType::int32 : DType::float32);
  std::vector<Tensor> states;
  if (c.contains("initial_state"))
    for (const auto& s : c.at("initial_state")) states.push_back(tensor_of(s));
  const Tensor mask = c.contains("mask") ? ops::cast(tensor_of(c.at("mask")), DType::bool_) : Tensor();
  auto run = [&]() -> std::vector<Tensor> {
    if (!states.empty()) {
      std::vector<Tensor> in{x};
      in.insert(in.end(), states.begin(), states.end());
      return layer.call_multi(in, false);
    }
    if (mask.defined()) return {layer.call_with_mask(x, mask).first};
    return layer.call_multi({x}, false);
  };
  run();  // builds
  std::vector<Tensor> w;
  for (const auto& t : c.at("weights")) w.push_back(tensor_of(t));
  layer.set_weights(w);

  GradientTape tape;
  if (!int_input) tape.watch(x);
  for (Tensor& s : states) tape.watch(s);
  const std::vector<Tensor> ys = run();
  REQUIRE(ys.size() == c.at("outputs").size());
  Tensor total;
  for (size_t k = 0; k < ys.size(); ++k) {
    INFO("output " << k);
    REQUIRE(ys[k].shape() == Shape(c.at("outputs")[k].at("shape").get<std::vector<int64_t>>()));
    kt::require_close(ys[k].to_vector<float>(), values_of(c.at("outputs")[k]), 1e-5f, 1e-4f);
    const Tensor term = ops::sum(ops::multiply(ys[k], tensor_of(c.at("probes")[k])));
    total = total.defined() ? ops::add(total, term) : term;
  }
  std::vector<Tensor> sources;
  if (!int_input) sources.push_back(x);
  sources.insert(sources.end(), states.begin(), states.end());
  for (Variable* v : layer.trainable_weights()) sources.push_back(v->value());
  const auto grads = tape.gradient(total, sources);
  size_t k = 0;
  if (!int_input) {
    INFO("input gradient");
    kt::require_close(grads[k++].to_vector<float>(), values_of(c.at("grad_input")), 1e-5f, 1e-4f);
  }
  for (size_t s = 0; s < states.size(); ++s) {
    INFO("initial state gradient " << s);
    kt::require_close(grads[k++].to_vector<float>(), values_of(c.at("grad_initial_state")[s]), 1e-5f, 1e-4f);
  }
  const auto& gw = c.at("grad_weights");
  REQUIRE(gw.size() == grads.size() - k);
  for (size_t i = 0; i < gw.size(); ++i) {
    INFO("weight gradient " << i << " (" << layer.trainable_weights()[i]->name() << ")");
    kt::require_close(grads[k + i].to_vector<float>(), values_of(gw[i]), 1e-4f, 1e-4f);
  }
}

}  // namespace

TEST_CASE("SimpleRNN, LSTM and GRU match Python Keras: outputs and gradients through time", "[cpu][keras][recurrent]") {
  using layers::RecurrentOptions;
  layers::SimpleRNN simple(4);
  check_case("simple_rnn", simple);
  layers::SimpleRNN simple_back(3, {.return_sequences = true, .go_backwards = true});
  check_case("simple_rnn_sequences_backwards", simple_back);
  layers::LSTM lstm(4);
  check_case("lstm", lstm);
  layers::LSTM lstm_back(3, {.return_sequences = true, .go_backwards = true});
  check_case("lstm_sequences_backwards", lstm_back);
  layers::LSTM lstm_state(3, {.return_sequences = true, .return_state = true});
  check_case("lstm_return_state", lstm_state);
  layers::LSTM lstm_init(3);
  check_case("lstm_initial_state", lstm_init);
  layers::GRU gru(4);
  check_case("gru", gru);
  layers::GRU gru_seq(3, {.return_sequences = true});
  check_case("gru_sequences", gru_seq);
  layers::GRU gru_before(3, {.reset_after = false, .return_sequences = true});
  check_case("gru_reset_before", gru_before);
}

TEST_CASE("masked steps carry the states and the previous output, as in Python Keras", "[cpu][keras][recurrent]") {
  layers::LSTM lstm(3, {.return_sequences = true});
  check_case("lstm_masked", lstm);
  layers::LSTM lstm_last(3);
  check_case("lstm_masked_last", lstm_last);
  layers::GRU gru(3, {.return_sequences = true, .go_backwards = true});
  check_case("gru_masked_backwards", gru);
  layers::Bidirectional bi(layers::LSTM(2, {.return_sequences = true}), {.merge_mode = "ave"});
  check_case("bidirectional_lstm_masked", bi);

  const json& m = fixtures().at("masking");
  layers::Masking masking(0.f);
  auto [y, mask] = masking.call_with_mask(tensor_of(m.at("input")), Tensor());
  kt::require_close(y.to_vector<float>(), values_of(m.at("output")), 0.f, 0.f);
  kt::require_close(ops::cast(mask, DType::float32).to_vector<float>(), values_of(m.at("mask")), 0.f, 0.f);
}

TEST_CASE("Bidirectional, TimeDistributed and Embedding match Python Keras", "[cpu][keras][recurrent]") {
  layers::Bidirectional concat(layers::LSTM(3, {.return_sequences = true}));
  check_case("bidirectional_lstm_concat", concat);
  CHECK(concat.forward_layer().name().rfind("forward_lstm", 0) == 0);
  CHECK(concat.backward_layer().name().rfind("backward_lstm", 0) == 0);
  CHECK(concat.backward_layer().options().go_backwards);
  layers::Bidirectional sum(layers::GRU(2), {.merge_mode = "sum"});
  check_case("bidirectional_gru_sum", sum);
  layers::Bidirectional states(layers::SimpleRNN(2, {.return_state = true}), {.merge_mode = "mul"});
  check_case("bidirectional_simple_rnn_state", states);
  layers::TimeDistributed dense(layers::Dense(3, {.activation = "tanh"}));
  check_case("time_distributed_dense", dense);
  layers::TimeDistributed conv(layers::Conv2D(2, {3, 3}));
  check_case("time_distributed_conv", conv);
  layers::Embedding embedding(7, 3);
  check_case("embedding", embedding, true);
}

TEST_CASE("a masked Embedding-LSTM model takes Python Keras' Adam step", "[cpu][keras][recurrent]") {
  const json& c = fixtures().at("masked_text_model");
  Sequential model({layers::Input({6}, {.dtype = "int32"}), layers::Embedding(9, 4, {.mask_zero = true}),
                    layers::LSTM(5), layers::Dense(3, {.activation = "softmax"})});
  std::vector<Tensor> w;
  for (const auto& t : c.at("weights")) w.push_back(tensor_of(t));
  model.set_weights(w);
  const Tensor tokens = tensor_of(c.at("tokens"), DType::int32);
  kt::require_close(model.predict(tokens).to_vector<float>(), values_of(c.at("predictions")), 1e-6f, 1e-4f);
  model.compile({.optimizer = optimizers::Adam({.learning_rate = 0.05f}), .loss = "sparse_categorical_crossentropy"});
  const Tensor labels = Tensor::from_vector(c.at("labels").get<std::vector<int32_t>>(), Shape{3});
  const auto logs = model.train_on_batch(tokens, labels);
  CHECK(logs.at("loss") == Approx(c.at("loss").get<double>()).epsilon(1e-5));
  const auto after = model.get_weights();
  for (size_t i = 0; i < after.size(); ++i) {
    INFO("weight " << i);
    kt::require_close(after[i].to_vector<float>(), values_of(c.at("weights_after_step")[i]), 1e-5f, 1e-4f);
  }
}

TEST_CASE("ConvLSTM2D matches Python Keras: outputs and gradients through time", "[cpu][keras][recurrent]") {
  layers::ConvLSTM2D plain(3, {3, 3});
  check_case("conv_lstm2d", plain);
  layers::ConvLSTM2D same(2, {3, 2}, {.padding = "same", .return_sequences = true, .go_backwards = true});
  check_case("conv_lstm2d_same_sequences_backwards", same);
  layers::ConvLSTM2D strided(2, {3, 3}, {.strides = {2, 2}, .return_state = true});
  check_case("conv_lstm2d_strides_state", strided);
  // Keras' weight shapes, the forget gate's bias at one, and the config round trip.
  CHECK(plain.get_weights()[0].shape() == Shape({3, 3, 2, 12}));
  CHECK(plain.get_weights()[1].shape() == Shape({3, 3, 3, 12}));
  utils::clear_session();
  layers::ConvLSTM2D fresh(2, {3, 3});
  fresh(kt::random_tensor(Shape{1, 2, 5, 5, 1}, 3));
  CHECK(fresh.name() == "conv_lstm2d");
  CHECK(fresh.get_weights()[2].to_vector<float>() == std::vector<float>{0, 0, 1, 1, 0, 0, 0, 0});
  const auto again = serialization::deserialize_layer(serialization::serialize_layer(same));
  CHECK(again->get_config() == same.get_config());
  CHECK(again->compute_output_shape({std::nullopt, std::nullopt, 6, 5, 2}) ==
        PartialShape{std::nullopt, std::nullopt, 6, 5, 2});
  kt::require_throws_with<ValueError>([&] { plain(kt::random_tensor(Shape{2, 3, 6, 5}, 1)); }, {"ndim=5", "ndim=4"});
}

TEST_CASE("the recurrent layers and wrappers pass the layer test", "[cpu][layers][recurrent]") {
  using kt::run_layer_test;
  const auto none = std::nullopt;
  run_layer_test([] { return layers::SimpleRNN(3); },
                 {.input_shape = Shape{2, 4, 5}, .expected_output = {none, 3}, .trainable_weights = 3, .params = 27});
  // LSTM: 4 * (units * (features + units) + units) parameters.
  run_layer_test([] { return layers::LSTM(3, {.return_sequences = true}); },
                 {.input_shape = Shape{2, 4, 5}, .expected_output = {none, 4, 3}, .trainable_weights = 3, .params = 108});
  run_layer_test([] { return layers::GRU(3); },
                 {.input_shape = Shape{2, 4, 5}, .expected_output = {none, 3}, .trainable_weights = 3, .params = 90});
  // ConvLSTM2D: 3*3*2*(4*3) kernel + 3*3*3*(4*3) recurrent kernel + 12 bias.
  run_layer_test([] { return layers::ConvLSTM2D(3, {3, 3}, {.padding = "same"}); },
                 {.input_shape = Shape{2, 3, 5, 4, 2}, .expected_output = {none, 5, 4, 3}, .trainable_weights = 3,
                  .params = 216 + 324 + 12});
  run_layer_test([] { return layers::GRU(3, {.reset_after = false, .go_backwards = true}); },
                 {.input_shape = Shape{2, 4, 5}, .expected_output = {none, 3}, .trainable_weights = 3, .params = 81});
  run_layer_test([] { return layers::Bidirectional(layers::LSTM(2, {.return_sequences = true})); },
                 {.input_shape = Shape{2, 3, 4}, .expected_output = {none, 3, 4}, .trainable_weights = 6, .params = 112});
  run_layer_test([] { return layers::TimeDistributed(layers::Dense(2)); },
                 {.input_shape = Shape{2, 3, 4}, .expected_output = {none, 3, 2}, .trainable_weights = 2, .params = 10});
  run_layer_test(
      [] {
        return layers::TimeDistributed(Sequential({layers::Input({4, 4, 1}), layers::Conv2D(2, {3, 3}),
                                                   layers::GlobalAveragePooling2D(), layers::Dense(3)}));
      },
      {.input_shape = Shape{2, 3, 4, 4, 1}, .expected_output = {none, 3, 3}, .trainable_weights = 4, .params = 29});
  run_layer_test([] { return layers::Embedding(10, 3); },
                 {.input_shape = Shape{2, 4},
                  .expected_output = {none, 4, 3},
                  .trainable_weights = 1,
                  .params = 30,
                  .check_input_gradient = false});
}

TEST_CASE("the video question-answering branches have Keras' parameter counts", "[cpu][recurrent]") {
  // keras-reference.md: LSTM(256) over 2,048 InceptionV3 features 2,360,320; Embedding(10000, 256)
  // 2,560,000; LSTM(128) over it 197,120.
  auto features = layers::Input({std::nullopt, 2048});
  layers::LSTM video_lstm(256);
  video_lstm.build_for({std::nullopt, std::nullopt, 2048});
  CHECK(video_lstm.count_params() == 2360320);
  auto question = layers::Input({100}, {.dtype = "int32"});
  auto embedded = layers::Embedding(10000, 256)(question);
  CHECK(embedded.producer().count_params() == 2560000);
  auto encoded = layers::LSTM(128)(embedded);
  CHECK(encoded.producer().count_params() == 197120);
  CHECK(shape_to_string(encoded.shape()) == "(None, 128)");
  CHECK(shape_to_string(features.shape()) == "(None, None, 2048)");
}

TEST_CASE("masking a right-padded sequence equals running the unpadded one", "[cpu][recurrent]") {
  // Keras' masking semantics: masked steps leave the state alone, so the last output of a padded
  // sequence is the last output of the sequence without its padding.
  for (const std::string kind : {"simple", "lstm", "gru"}) {
    INFO(kind);
    auto make = [&]() -> std::shared_ptr<layers::RecurrentLayer> {
      if (kind == "simple") return std::make_shared<layers::SimpleRNN>(3);
      if (kind == "lstm") return std::make_shared<layers::LSTM>(3);
      return std::make_shared<layers::GRU>(3);
    };
    auto rnn = make();
    const Tensor x = kt::random_tensor(Shape{1, 6, 2}, 11);
    const Tensor mask = ops::cast(Tensor::from_vector<float>({1, 1, 1, 1, 0, 0}, Shape{1, 6}), DType::bool_);
    const Tensor padded = (*rnn).call_with_mask(x, mask).first;
    const Tensor truncated = (*rnn)(ops::slice(x, {0, 0, 0}, {1, 4, 2}));
    kt::require_close(padded.to_vector<float>(), truncated.to_vector<float>(), 1e-6f, 1e-6f);
  }
  // Through a model: Embedding(mask_zero) masks id 0.
  Sequential model({layers::Input({5}, {.dtype = "int32"}), layers::Embedding(6, 3, {.mask_zero = true}),
                    layers::GRU(2)});
  Sequential unmasked({layers::Input({3}, {.dtype = "int32"}), layers::Embedding(6, 3), layers::GRU(2)});
  unmasked.set_weights(model.get_weights());
  const Tensor padded = model.predict(Tensor::from_vector<int32_t>({4, 2, 5, 0, 0}, Shape{1, 5}));
  const Tensor plain = unmasked.predict(Tensor::from_vector<int32_t>({4, 2, 5}, Shape{1, 3}));
  kt::require_close(padded.to_vector<float>(), plain.to_vector<float>(), 1e-6f, 1e-6f);
}

TEST_CASE("masks pass through merges as in Keras 3.15: Add keeps any input's steps, Concatenate joins them",
          "[cpu][recurrent]") {
  // Two masked id sequences (0 is padding), merged, then an LSTM. The reference runs the same LSTM
  // on the merged values with the mask Keras' compute_mask gives, spelled out by hand.
  const Tensor ids_a = Tensor::from_vector<int32_t>({3, 1, 0, 2, 0, 4, 4, 0}, Shape{2, 4});
  const Tensor ids_b = Tensor::from_vector<int32_t>({5, 0, 2, 2, 1, 1, 3, 0}, Shape{2, 4});
  auto bools = [](std::vector<float> v, Shape s) { return ops::cast(Tensor::from_vector(v, s), DType::bool_); };
  auto a = layers::Input({4}, {.dtype = "int32"}), b = layers::Input({4}, {.dtype = "int32"});
  auto emb = std::make_shared<layers::Embedding>(6, 3, layers::EmbeddingOptions{.mask_zero = true});
  auto plain_emb = std::make_shared<layers::Embedding>(6, 3);
  const auto ea = (*emb)(a), eb = (*emb)(b), pb = (*plain_emb)(b);
  const Tensor va = (*emb)(ids_a), vb = (*emb)(ids_b), vpb = (*plain_emb)(ids_b);
  auto reference = [&](layers::LSTM& lstm, const Tensor& merged, const Tensor& mask) {
    return mask.defined() ? lstm.call_with_mask(merged, mask).first : lstm(merged);
  };
  {
    INFO("Add: a step counts where either input keeps it");
    auto lstm = std::make_shared<layers::LSTM>(2);
    Model m({a, b}, (*lstm)(layers::add({ea, eb})));
    const Tensor either = bools({1, 1, 1, 1, 1, 1, 1, 0}, Shape{2, 4});
    kt::require_close(m.predict({ids_a, ids_b}).to_vector<float>(), reference(*lstm, va + vb, either).to_vector<float>(),
                      1e-6f, 1e-6f);
  }
  {
    INFO("Add with an unmasked input: no mask (Keras 3.15's Merge.compute_mask)");
    auto lstm = std::make_shared<layers::LSTM>(2);
    Model m({a, b}, (*lstm)(layers::add({ea, pb})));
    kt::require_close(m.predict({ids_a, ids_b}).to_vector<float>(), reference(*lstm, va + vpb, Tensor()).to_vector<float>(),
                      1e-6f, 1e-6f);
  }
  {
    INFO("Concatenate on the feature axis: a step counts where any input keeps it");
    auto lstm = std::make_shared<layers::LSTM>(2);
    Model m({a, b}, (*lstm)(layers::concatenate({ea, eb})));
    const Tensor any = bools({1, 1, 1, 1, 1, 1, 1, 0}, Shape{2, 4});
    kt::require_close(m.predict({ids_a, ids_b}).to_vector<float>(),
                      reference(*lstm, ops::concatenate({va, vb}, -1), any).to_vector<float>(), 1e-6f, 1e-6f);
  }
  {
    INFO("Concatenate with an unmasked input: every step counts, as Keras' ones_like");
    auto lstm = std::make_shared<layers::LSTM>(2);
    Model m({a, b}, (*lstm)(layers::concatenate({ea, pb})));
    kt::require_close(m.predict({ids_a, ids_b}).to_vector<float>(),
                      reference(*lstm, ops::concatenate({va, vpb}, -1), Tensor()).to_vector<float>(), 1e-6f, 1e-6f);
  }
  {
    INFO("Concatenate along time: the masks are joined");
    auto lstm = std::make_shared<layers::LSTM>(2);
    Model m({a, b}, (*lstm)(layers::concatenate({ea, eb}, 1)));
    const Tensor joined = bools({1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0}, Shape{2, 8});
    kt::require_close(m.predict({ids_a, ids_b}).to_vector<float>(),
                      reference(*lstm, ops::concatenate({va, vb}, 1), joined).to_vector<float>(), 1e-6f, 1e-6f);
  }
}

TEST_CASE("a stateful layer carries its states to the next batch until reset_states", "[cpu][recurrent]") {
  layers::LSTM whole(4);
  layers::LSTM stateful(4, {.stateful = true});
  const Tensor x = kt::random_tensor(Shape{2, 6, 3}, 12);
  whole(x);
  stateful(ops::slice(x, {0, 0, 0}, {2, 3, 3}));
  stateful.set_weights(whole.get_weights());
  stateful.reset_states();
  stateful(ops::slice(x, {0, 0, 0}, {2, 3, 3}));
  const Tensor second_half = stateful(ops::slice(x, {0, 3, 0}, {2, 3, 3}));
  kt::require_close(second_half.to_vector<float>(), whole(x).to_vector<float>(), 1e-6f, 1e-6f);
  stateful.reset_states();
  const Tensor fresh = stateful(ops::slice(x, {0, 3, 0}, {2, 3, 3}));
  layers::LSTM plain(4);
  plain(x);
  plain.set_weights(whole.get_weights());
  kt::require_close(fresh.to_vector<float>(), plain(ops::slice(x, {0, 3, 0}, {2, 3, 3})).to_vector<float>(), 1e-6f,
                    1e-6f);
  kt::require_throws_with<ValueError>([&] { stateful(ops::slice(x, {0, 0, 0}, {1, 3, 3})); },
                                      {"stateful", "Expected batch size: 2", "Received batch size: 1"});
}

TEST_CASE("TimeDistributed(Model) equals the model applied to each step", "[cpu][recurrent]") {
  auto cnn = std::make_shared<Sequential>(std::vector<LayerRef>{
      layers::Input({5, 5, 2}), layers::Conv2D(3, {3, 3}, {.activation = "relu"}), layers::Flatten(),
      layers::Dense(4)});
  layers::TimeDistributed td(cnn);
  const Tensor x = kt::random_tensor(Shape{2, 3, 5, 5, 2}, 13);
  const Tensor y = td(x);
  REQUIRE(y.shape() == Shape({2, 3, 4}));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 3; ++t) {
      const Tensor frame = ops::reshape(ops::slice(x, {b, t, 0, 0, 0}, {1, 1, 5, 5, 2}), {1, 5, 5, 2});
      kt::require_close(ops::slice(y, {b, t, 0}, {1, 1, 4}).to_vector<float>(), (*cnn)(frame).to_vector<float>(),
                        1e-6f, 1e-6f);
    }
  // An unknown number of steps: the symbolic shape keeps None.
  auto video = layers::Input({std::nullopt, 5, 5, 2});
  auto encoded = layers::TimeDistributed(cnn)(video);
  CHECK(shape_to_string(encoded.shape()) == "(None, None, 4)");
  // Freezing the wrapper freezes the wrapped model.
  td.set_trainable(false);
  CHECK(td.trainable_weights().empty());
  CHECK(cnn->trainable_weights().empty());
}

TEST_CASE("return_state gives every output in the Functional API", "[cpu][recurrent]") {
  auto x = layers::Input({4, 3});
  const auto outs = layers::LSTM(5, {.return_sequences = true, .return_state = true})(x).all_outputs();
  REQUIRE(outs.size() == 3);
  CHECK(shape_to_string(outs[0].shape()) == "(None, 4, 5)");
  CHECK(shape_to_string(outs[1].shape()) == "(None, 5)");
  // An encoder-decoder: the decoder starts from the encoder's states.
  auto decoder_in = layers::Input({2, 3});
  auto decoded = layers::LSTM(5)({decoder_in, outs[1], outs[2]});
  Model model({x, decoder_in}, {decoded, outs[1]});
  const Tensor a = kt::random_tensor(Shape{2, 4, 3}, 14), b = kt::random_tensor(Shape{2, 2, 3}, 15);
  const auto ys = model.predict_all({a, b});
  REQUIRE(ys.size() == 2);
  auto& encoder = static_cast<layers::LSTM&>(outs[0].producer());
  auto& decoder = static_cast<layers::LSTM&>(decoded.producer());
  const auto enc = encoder.run(a, Tensor(), {}, false);
  const auto dec = decoder.run(b, Tensor(), {enc[1], enc[2]}, false);
  kt::require_close(ys[0].to_vector<float>(), dec[0].to_vector<float>(), 1e-6f, 1e-6f);
  kt::require_close(ys[1].to_vector<float>(), enc[1].to_vector<float>(), 1e-6f, 1e-6f);
}

TEST_CASE("dropout and recurrent_dropout act only in training, with one mask per sequence", "[cpu][recurrent]") {
  layers::LSTM lstm(8, {.dropout = 0.5f, .recurrent_dropout = 0.3f, .seed = 3});
  layers::LSTM plain(8);
  const Tensor x = kt::random_tensor(Shape{4, 5, 6}, 16);
  plain(x);
  lstm(x);
  lstm.set_weights(plain.get_weights());
  kt::require_close(lstm(x, false).to_vector<float>(), plain(x).to_vector<float>(), 0.f, 0.f);
  const Tensor a = lstm(x, true), b = lstm(x, true);
  CHECK(ops::max(ops::abs(a - plain(x))).item() > 1e-3f);
  CHECK(ops::max(ops::abs(a - b)).item() > 1e-3f);  // a new mask each call
  // Dropping every input but with rate < 1 keeps the expectation: the mean output over many
  // samples of one constant sequence stays near the undropped output for a linear cell.
  layers::SimpleRNN linear(1, {.activation = "linear", .kernel_initializer = "ones", .recurrent_initializer = "zeros",
                               .dropout = 0.5f});
  const Tensor ones = ops::ones({4000, 1, 1});
  const float mean = ops::mean(linear(ones, true)).item();
  CHECK(mean == Approx(1.f).margin(0.05));
}

TEST_CASE("recurrent layers refuse bad input with Keras' texts", "[cpu][recurrent]") {
  layers::LSTM lstm(3);
  kt::require_throws_with<ValueError>([&] { lstm(kt::random_tensor(Shape{2, 5}, 1)); },
                                      {"Input 0 of layer \"lstm", "expected ndim=3, found ndim=2",
                                       "Full shape received: (None, 5)"});
  lstm(kt::random_tensor(Shape{2, 4, 5}, 1));
  kt::require_throws_with<ValueError>([&] { lstm(kt::random_tensor(Shape{2, 4, 6}, 1)); },
                                      {"expected axis -1 of input shape to have value 5"});
  kt::require_throws_with<ValueError>([] { layers::SimpleRNN(3, {.reset_after = false}); }, {"reset_after"});
  kt::require_throws_with<ValueError>([] { layers::LSTM(0); }, {"positive number of units", "0"});
  kt::require_throws_with<ValueError>([] { layers::GRU(2, {.dropout = 1.f}); }, {"dropout", "[0, 1)"});
  kt::require_throws_with<ValueError>([] { layers::Bidirectional(layers::Dense(3)); },
                                      {"SimpleRNN, LSTM or GRU", "Dense"});
  kt::require_throws_with<ValueError>([] { layers::Bidirectional(layers::LSTM(3), {.merge_mode = "max"}); },
                                      {"Invalid merge mode", "max"});
  layers::Embedding embedding(5, 2);
  kt::require_throws_with<ValueError>([&] { embedding(Tensor::from_vector<int32_t>({1, 5}, Shape{1, 2})); }, {"5"});
  layers::LSTM init(3);
  kt::require_throws_with<ShapeError>(
      [&] {
        init.call_multi({kt::random_tensor(Shape{2, 4, 5}, 1), ops::zeros({2, 4}), ops::zeros({2, 3})}, false);
      },
      {"initial state 0", "(2, 3)", "(2, 4)"});
}

TEST_CASE("a small video question-answering model trains: the loss falls", "[cpu][recurrent][training]") {
  utils::set_random_seed(5);
  auto frame_cnn = std::make_shared<Sequential>(std::vector<LayerRef>{
      layers::Input({12, 12, 3}), layers::Conv2D(4, {3, 3}, {.activation = "relu"}),
      layers::BatchNormalization(), layers::GlobalAveragePooling2D()});
  frame_cnn->set_trainable(false);
  auto video = layers::Input({std::nullopt, 12, 12, 3}, {.name = "video"});
  auto encoded_video = layers::LSTM(8)(layers::TimeDistributed(frame_cnn)(video));
  auto question = layers::Input({6}, {.name = "question", .dtype = "int32"});
  auto encoded_question = layers::LSTM(8)(layers::Embedding(20, 8, {.mask_zero = true})(question));
  auto x = layers::Dense(16, {.activation = "relu"})(layers::concatenate({encoded_video, encoded_question}));
  Model model({video, question}, layers::Dense(5, {.activation = "softmax"})(x));
  model.compile({.optimizer = optimizers::Adam({.learning_rate = 0.01f}), .loss = "categorical_crossentropy"});
  const int64_t n = 32;
  const Tensor videos = kt::random_tensor(Shape{n, 3, 12, 12, 3}, 21, 0.f, 1.f);
  std::vector<int32_t> words;
  std::vector<int64_t> answers;
  std::mt19937 rng(3);
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 6; ++k) words.push_back(static_cast<int32_t>(1 + rng() % 19));
    answers.push_back(words.back() % 5);
  }
  const Tensor questions = Tensor::from_vector(words, Shape{n, 6});
  const Tensor labels = utils::to_categorical(Tensor::from_vector(answers, Shape{n}), 5);
  const std::vector<Variable*> frozen = frame_cnn->weights();
  const Tensor kernel_before = ops::copy(frozen[0]->value());
  const History h = model.fit({videos, questions}, labels, {.batch_size = 8, .epochs = 15, .verbose = 0});
  const auto& loss = h.history.at("loss");
  CHECK(loss.back() < 0.6 * loss.front());
  CHECK(ops::max(ops::abs(frozen[0]->value() - kernel_before)).item() == 0.f);  // the frozen CNN stays put
}

TEST_CASE("pad_sequences pads and truncates as keras.utils.pad_sequences", "[cpu][recurrent]") {
  const std::vector<std::vector<int64_t>> seqs{{1, 2, 3}, {4, 5}, {6, 7, 8, 9, 10}};
  // Keras: pre padding and pre truncating by default; maxlen the longest sequence.
  CHECK(utils::pad_sequences(seqs).to_vector<int32_t>() ==
        std::vector<int32_t>{0, 0, 1, 2, 3, 0, 0, 0, 4, 5, 6, 7, 8, 9, 10});
  const Tensor post = utils::pad_sequences(seqs, {.maxlen = 4, .padding = "post", .truncating = "post", .value = -1});
  CHECK(post.shape() == Shape({3, 4}));
  CHECK(post.to_vector<int32_t>() == std::vector<int32_t>{1, 2, 3, -1, 4, 5, -1, -1, 6, 7, 8, 9});
  CHECK(utils::pad_sequences(seqs, {.maxlen = 2}).to_vector<int32_t>() == std::vector<int32_t>{2, 3, 4, 5, 9, 10});
  kt::require_throws_with<ValueError>([&] { utils::pad_sequences(seqs, {.padding = "middle"}); },
                                      {"padding", "middle"});
}

TEST_CASE("the fused recurrences give the generic loop's outputs and gradients", "[cpu][recurrent]") {
  // An all-true mask sends a layer down the generic loop; without it, LSTM and GRU run as one fused
  // backend op where the backend has one (oneDNN here).
  struct Case {
    std::string what;
    std::function<std::shared_ptr<layers::RecurrentLayer>()> make;
  };
  const std::vector<Case> cases{
      {"lstm", [] { return std::make_shared<layers::LSTM>(5); }},
      {"lstm sequences backwards",
       [] { return std::make_shared<layers::LSTM>(4, layers::RecurrentOptions{.return_sequences = true,
                                                                              .go_backwards = true}); }},
      {"gru reset_after", [] { return std::make_shared<layers::GRU>(5, layers::RecurrentOptions{.return_sequences = true}); }},
      {"gru reset_before", [] { return std::make_shared<layers::GRU>(3, layers::RecurrentOptions{.reset_after = false}); }},
      {"gru without bias",
       [] { return std::make_shared<layers::GRU>(3, layers::RecurrentOptions{.use_bias = false, .return_state = true}); }},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto rnn = c.make();
    Tensor x = kt::random_tensor(Shape{3, 6, 4}, 31);
    (*rnn)(x);
    const Tensor all = ops::cast(ops::ones({3, 6}), DType::bool_);
    auto run = [&](bool fused) {
      GradientTape tape;
      tape.watch(x);
      const std::vector<Tensor> ys = rnn->run(x, fused ? Tensor() : all, {}, true);
      Tensor total;
      for (size_t k = 0; k < ys.size(); ++k) {
        const Tensor term = ops::sum(ops::multiply(ys[k], kt::random_tensor(ys[k].shape(), 40 + k)));
        total = total.defined() ? total + term : term;
      }
      std::vector<Tensor> sources{x};
      for (Variable* v : rnn->trainable_weights()) sources.push_back(v->value());
      auto grads = tape.gradient(total, sources);
      grads.insert(grads.begin(), ys.begin(), ys.end());
      return grads;
    };
    const auto fused = run(true), generic = run(false);
    REQUIRE(fused.size() == generic.size());
    for (size_t i = 0; i < fused.size(); ++i) {
      INFO("output or gradient " << i);
      kt::require_close(fused[i].to_vector<float>(), generic[i].to_vector<float>(), 1e-5f, 1e-4f);
    }
  }
  // The fused path really runs where the backend has it, and not where something needs the loop.
  layers::LSTM lstm(3);
  const Tensor x = kt::random_tensor(Shape{2, 5, 3}, 50);
  lstm(x);
  CHECK(lstm.last_call_fused() == default_backend().supports(Capability::fused_rnn));
  lstm.call_with_mask(x, ops::cast(ops::ones({2, 5}), DType::bool_));
  CHECK_FALSE(lstm.last_call_fused());
  layers::LSTM hard(3, {.recurrent_activation = "hard_sigmoid"});
  hard(x);
  CHECK_FALSE(hard.last_call_fused());
  // GRU with reset_after=False is fused only where the backend has that cell (oneDNN, not cuDNN).
  layers::GRU before(3, {.reset_after = false});
  before(x);
  CHECK(before.last_call_fused() == (default_backend().supports(Capability::fused_rnn) &&
                                     default_backend().supports(Capability::fused_gru_reset_before)));
}

TEST_CASE("a masked sequence tagger: losses and metrics skip masked steps, as in Python Keras",
          "[cpu][keras][recurrent]") {
  const json& c = fixtures().at("masked_tagger");
  Sequential model({layers::Input({5}, {.dtype = "int32"}), layers::Embedding(7, 3, {.mask_zero = true}),
                    layers::GRU(4, {.return_sequences = true}), layers::Dense(3, {.activation = "softmax"})});
  std::vector<Tensor> w;
  for (const auto& t : c.at("weights")) w.push_back(tensor_of(t));
  model.set_weights(w);
  model.compile({.optimizer = optimizers::Adam({.learning_rate = 0.05f}),
                 .loss = "sparse_categorical_crossentropy",
                 .metrics = {"accuracy"}});
  const Tensor tokens = tensor_of(c.at("tokens"), DType::int32), labels = tensor_of(c.at("labels"), DType::int32);
  const auto logs = model.evaluate(tokens, labels, {.verbose = 0});
  CHECK(logs.at("loss") == Approx(c.at("eval_loss").get<double>()).epsilon(1e-5));
  CHECK(logs.at("accuracy") == Approx(c.at("eval_accuracy").get<double>()).epsilon(1e-6));  // 4 of 9 valid steps
  const auto step = model.train_on_batch(tokens, labels);
  CHECK(step.at("loss") == Approx(c.at("loss").get<double>()).epsilon(1e-5));
  const auto after = model.get_weights();
  for (size_t i = 0; i < after.size(); ++i) {
    INFO("weight " << i);
    kt::require_close(after[i].to_vector<float>(), values_of(c.at("weights_after_step")[i]), 1e-5f, 1e-4f);
  }
}
