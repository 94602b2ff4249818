// fmnist_cnn of ../shared/bench (Keras' simple convnet: Conv32-Pool-Conv64-Pool-Flatten-Dropout-Dense10,
// Adam, batch 128) measured the way keras_ref.py measures Keras: samples per second of fit() over 5,120
// images after one warm-up epoch (median of three), predict() over 4,096 images in batches of 1,000,
// and the process's peak resident memory. Prints one JSON line.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "kerascpp.h"

using namespace keras;

int main() {
  auto [train, test] = datasets::fashion_mnist::load_data();
  const Tensor x = ops::reshape(
      ops::cast(ops::slice(train.x, {0, 0, 0}, {128 * 40, -1, -1}), DType::float32) * (1.f / 255.f), {-1, 28, 28, 1});
  const Tensor y = ops::slice(train.y, {0}, {128 * 40});
  utils::set_random_seed(0);
  Sequential m({layers::Input({28, 28, 1}), layers::Conv2D(32, {3, 3}, {.activation = "relu"}),
                layers::MaxPooling2D({2, 2}), layers::Conv2D(64, {3, 3}, {.activation = "relu"}),
                layers::MaxPooling2D({2, 2}), layers::Flatten(), layers::Dropout(0.5f),
                layers::Dense(10, {.activation = "softmax"})});
  m.compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy", .metrics = {"accuracy"}});
  using clock = std::chrono::steady_clock;
  auto seconds = [](auto f) {
    const auto t = clock::now();
    f();
    return std::chrono::duration<double>(clock::now() - t).count();
  };
  m.fit(x, y, {.batch_size = 128, .epochs = 1, .verbose = 0, .shuffle = false});
  std::vector<double> fit_t;
  for (int i = 0; i < 3; ++i)
    fit_t.push_back(seconds([&] { m.fit(x, y, {.batch_size = 128, .epochs = 1, .verbose = 0, .shuffle = false}); }));
  const Tensor xp = ops::slice(x, {0, 0, 0, 0}, {4096, -1, -1, -1});
  m.predict(xp, {.batch_size = 1000});
  std::vector<double> pred_t;
  for (int i = 0; i < 3; ++i) pred_t.push_back(seconds([&] { m.predict(xp, {.batch_size = 1000}); }));
  std::sort(fit_t.begin(), fit_t.end());
  std::sort(pred_t.begin(), pred_t.end());
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf(
      "{\"model\": \"fmnist_cnn\", \"framework\": \"kerascpp (%s)\", \"batch\": 128, \"train_samples_per_s\": %.1f, "
      "\"infer_samples_per_s\": %.1f, \"peak_rss_mb\": %.1f}\n",
      backend::backend_name().c_str(), 5120 / fit_t[1], 4096 / pred_t[1], usage.ru_maxrss / 1024.0);
  return 0;
}
