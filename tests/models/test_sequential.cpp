#include <sstream>

#include "tests/support/test_support.h"

using namespace keras;

namespace {
Sequential classic_cnn() {
  return Sequential({
      layers::Input({28, 28, 1}),
      layers::Conv2D(32, {3, 3}, {.activation = "relu"}),
      layers::MaxPooling2D({2, 2}),
      layers::Conv2D(64, {3, 3}, {.activation = "relu"}),
      layers::MaxPooling2D({2, 2}),
      layers::Flatten(),
      layers::Dropout(0.5f),
      layers::Dense(10, {.activation = "softmax"}),
  });
}
}  // namespace

TEST_CASE("summary() prints Keras 3's table, character for character", "[cpu][models]") {
  utils::clear_session();
  Sequential model = classic_cnn();
  // Copied from keras-reference.md: Keras 3's output for this model, 76 columns (not a terminal).
  const std::string expected = R"(Model: "sequential"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ conv2d (Conv2D)                 │ (None, 26, 26, 32)     │           320 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ max_pooling2d (MaxPooling2D)    │ (None, 13, 13, 32)     │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_1 (Conv2D)               │ (None, 11, 11, 64)     │        18,496 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ max_pooling2d_1 (MaxPooling2D)  │ (None, 5, 5, 64)       │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ flatten (Flatten)               │ (None, 1600)           │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dropout (Dropout)               │ (None, 1600)           │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 10)             │        16,010 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 34,826 (136.04 KB)
 Trainable params: 34,826 (136.04 KB)
 Non-trainable params: 0 (0.00 B)
)";
  CHECK(model.summary_string(76) == expected);
  std::ostringstream out;
  model.summary(out);  // off a terminal: 76 columns
  CHECK(out.str() == expected);
  // After one training step the optimizer's variables are listed too (2 x params + iteration + learning rate).
  model.compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy"});
  model.train_on_batch(ops::zeros(Shape{2, 28, 28, 1}), Tensor::from_vector<int32_t>({1, 2}, Shape{2}));
  CHECK(model.summary_string(76).find(" Optimizer params: 69,654 (272.09 KB)\n") != std::string::npos);
}

TEST_CASE("Sequential builds eagerly from an Input and fails on the line that adds a bad layer", "[cpu][models]") {
  utils::clear_session();
  Sequential model({layers::Input({8}), layers::Dense(4)});
  CHECK(model.layers().size() == 1);
  CHECK(model.count_params() == 36);
  model.add(layers::Dense(2, {.name = "head"}));
  CHECK(model.get_layer("head").count_params() == 10);
  kt::require_throws_with<ValueError>([&] { model.get_layer("tail"); }, {"No such layer: tail", "dense", "head"});
  kt::require_throws_with<ValueError>(
      [&] {
        model.add(layers::Conv2D(3, {3, 3}));
      },
      {"Input 0 of layer \"conv2d\"", "expected ndim=4, found ndim=2"});
  kt::require_throws_with<ValueError>([&] { model.add(layers::Dense(2, {.name = "head"})); }, {"unique names", "head"});
  // Without an Input the model builds on first use.
  Sequential lazy({layers::Dense(3), layers::Dense(1)});
  CHECK_FALSE(lazy.layers()[0]->built());
  CHECK(lazy.predict(ops::ones(Shape{5, 7})).shape() == Shape{5, 1});
  CHECK(lazy.count_params() == 7 * 3 + 3 + 3 + 1);
  kt::require_throws_with<ValueError>(
      [&] {
        lazy.predict(ops::ones(Shape{5, 6}));
      },
      {"expected axis -1", "value 7", "(None, 6)"});
}

TEST_CASE("freezing a model or a layer freezes its weights in fit", "[cpu][models]") {
  utils::clear_session();
  Sequential model(
      {layers::Input({4}), layers::Dense(8, {.activation = "relu"}), layers::BatchNormalization(), layers::Dense(2)});
  model.compile({.optimizer = "sgd", .loss = "mse"});
  model.get_layer("dense").set_trainable(false);
  const auto frozen_before = model.get_layer("dense").get_weights();
  const auto head_before = model.get_layer("dense_1").get_weights();
  const Tensor x = kt::random_tensor(Shape{16, 4}, 1), y = kt::random_tensor(Shape{16, 2}, 2);
  model.fit(x, y, {.batch_size = 8, .epochs = 2, .verbose = 0});
  const auto frozen_after = model.get_layer("dense").get_weights();
  for (size_t i = 0; i < frozen_before.size(); ++i)
    CHECK(frozen_before[i].to_vector<float>() == frozen_after[i].to_vector<float>());
  CHECK(head_before[0].to_vector<float>() != model.get_layer("dense_1").get_weights()[0].to_vector<float>());
  CHECK(model.trainable_weights().size() == 4);  // BN gamma, beta and the head's kernel, bias
  model.set_trainable(false);
  CHECK(model.trainable_weights().empty());
  std::ostringstream out;
  model.summary(out);
  CHECK(out.str().find(" Trainable params: 0 (0.00 B)") != std::string::npos);
}
