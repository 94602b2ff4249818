// The main job: a CNN trained on Fashion-MNIST with the Keras API, then evaluated and reported.
//   build/bin/fashion_mnist [epochs]
#include <cstdio>
#include <cstdlib>

#include "kerascpp.h"

using namespace keras;

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::atoi(argv[1]) : 12;
  utils::set_random_seed(42);

  auto [train, test] = datasets::fashion_mnist::load_data();
  // Scale to [0, 1] and add the channel axis, as the Keras example does.
  const Tensor x_train = ops::reshape(ops::cast(train.x, DType::float32) * (1.f / 255.f), {-1, 28, 28, 1});
  const Tensor x_test = ops::reshape(ops::cast(test.x, DType::float32) * (1.f / 255.f), {-1, 28, 28, 1});

  Sequential model({
      layers::Input({28, 28, 1}),
      layers::Conv2D(32, {3, 3}, {.padding = "same", .activation = "relu"}),
      layers::BatchNormalization(),
      layers::MaxPooling2D({2, 2}),
      layers::Conv2D(64, {3, 3}, {.padding = "same", .activation = "relu"}),
      layers::BatchNormalization(),
      layers::MaxPooling2D({2, 2}),
      layers::Flatten(),
      layers::Dropout(0.3f),
      layers::Dense(128, {.activation = "relu"}),
      layers::Dropout(0.3f),
      layers::Dense(10, {.activation = "softmax"}),
  });
  model.summary();
  model.compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy", .metrics = {"accuracy"}});
  model.fit(x_train, train.y, {.batch_size = 128, .epochs = epochs, .validation_split = 0.1f});

  const auto scores = model.evaluate(x_test, test.y, {.batch_size = 256, .verbose = 0});
  std::printf("Test loss: %.4f\nTest accuracy: %.4f\n", scores.at("loss"), scores.at("accuracy"));
  return scores.at("accuracy") >= 0.91 ? 0 : 1;
}
