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
