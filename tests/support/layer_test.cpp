#include "tests/support/layer_test.h"

namespace kt {

void run_layer_test(const std::function<keras::LayerRef()>& make, const LayerTestSpec& spec) {
  using namespace keras;
  const LayerRef ref = make();
  Layer& layer = *ref.get();
  INFO("layer " << layer.name() << " (" << layer.class_name() << ")");
  CHECK_FALSE(layer.built());
  const Tensor x = random_tensor(spec.input_shape, 5);
  const Tensor y = layer(x, false);
  CHECK(layer.built());
  // The output shape agrees with compute_output_shape and with the expectation.
  PartialShape in = partial_shape_of(x);
  in[0] = std::nullopt;
  const PartialShape computed = layer.compute_output_shape(in);
  CHECK(shape_to_string(computed) == shape_to_string(spec.expected_output));
  PartialShape actual = partial_shape_of(y);
  actual[0] = std::nullopt;
  CHECK(shape_to_string(actual) == shape_to_string(spec.expected_output));
  CHECK(layer.trainable_weights().size() == spec.trainable_weights);
  CHECK(layer.non_trainable_weights().size() == spec.non_trainable_weights);
  CHECK(layer.count_params() == spec.params);

  // Config round trip: the serialized layer rebuilds an equal layer (same config, same weight
  // shapes from build_config) that computes the same outputs with the same weights.
  const Config serialized = serialization::serialize_layer(layer);
  CHECK(serialized["class_name"] == layer.class_name());
  if (layer.class_name() == "Lambda") {
    require_throws_with<ValueError>([&] { serialization::deserialize_layer(serialized); }, {"Lambda"});
  } else {
    const auto clone = serialization::deserialize_layer(Config::parse(serialized.dump()));  // through text
    CHECK(clone->get_config() == layer.get_config());
    CHECK(clone->built());
    CHECK(clone->get_build_config() == layer.get_build_config());
    REQUIRE(clone->weights().size() == layer.weights().size());
    clone->set_weights(layer.get_weights());
    require_close((*clone)(x, false).to_vector<float>(), y.to_vector<float>(), 1e-6f, 1e-6f);
  }

  // One training step on sum(y^2): every trainable weight moves; freezing stops them.
  auto step = [&] {
    std::vector<Tensor> before;
    for (Variable* v : layer.weights()) before.push_back(ops::copy(v->value()));
    GradientTape tape;
    const Tensor loss = ops::sum(ops::square(layer(x, true)));
    const auto vars = layer.trainable_weights();
    const auto grads = tape.gradient(loss, vars);
    for (size_t i = 0; i < vars.size(); ++i) ops::sgd_update(*vars[i], grads[i], nullptr, {.learning_rate = 0.01f});
    std::vector<bool> moved;
    const auto all = layer.weights();
    for (size_t i = 0; i < all.size(); ++i) moved.push_back(ops::max(ops::abs(all[i]->value() - before[i])).item() > 0);
    return moved;
  };
  const auto trainable = layer.trainable_weights();
  const auto moved = step();
  const auto all = layer.weights();
  for (size_t i = 0; i < all.size(); ++i) {
    const bool is_trainable = std::find(trainable.begin(), trainable.end(), all[i]) != trainable.end();
    INFO("weight " << all[i]->name());
    if (is_trainable) CHECK(moved[i]);
  }
  layer.set_trainable(false);
  CHECK(layer.trainable_weights().empty());
  for (bool m : step()) CHECK_FALSE(m);
  layer.set_trainable(true);
  CHECK(layer.trainable_weights().size() == spec.trainable_weights);

  if (spec.check_input_gradient) {
    const bool training = !spec.training_is_random;
    check_gradients([&](const std::vector<Tensor>& v) { return layer(v[0], training); },
                    {random_tensor(spec.input_shape, 6)}, 1e-2f, 5e-3f, 5e-2f);
  }
}

}  // namespace kt
