// imdb_lstm, video_qa and resnet50_infer of ../shared/bench, measured the way keras_ref.py measures
// Keras: samples per second of fit() after one warm-up pass (median of three, two for video_qa) and
// of predict(); ResNet50's batch-1 latency as the median of eight calls. Prints one JSON line per
// model (transformer and resnet50_train: tools/bench/*_ref.py are their rivals).
//   bench_models_cpu [imdb_lstm|video_qa|resnet50_infer|transformer|resnet50_train|all]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "kerascpp.h"
#include "tools/bench/bench_models.h"

using namespace keras;

namespace {
using clock_type = std::chrono::steady_clock;
template <typename F>
double median_seconds(F f, int reps) {
  std::vector<double> ts;
  for (int i = 0; i < reps; ++i) {
    const auto t = clock_type::now();
    f();
    ts.push_back(std::chrono::duration<double>(clock_type::now() - t).count());
  }
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}

void imdb_lstm() {
  utils::set_random_seed(0);
  const int64_t n = 64 * 8;
  const Tensor x = bench::random_ids(n, 200, 20000, 1);
  const Tensor y = ops::floor(ops::random_uniform(Shape{n, 1}, 0.f, 2.f, 2));
  Sequential m({layers::Input({200}, {.dtype = "int32"}), layers::Embedding(20000, 128), layers::LSTM(128),
                layers::Dense(1, {.activation = "sigmoid"})});
  m.compile({.optimizer = "adam", .loss = "binary_crossentropy"});
  const FitOptions fit{.batch_size = 64, .epochs = 1, .verbose = 0, .shuffle = false};
  m.fit(x, y, fit);
  const double train = median_seconds([&] { m.fit(x, y, fit); }, 3);
  m.predict(x, {.batch_size = 64});
  const double infer = median_seconds([&] { m.predict(x, {.batch_size = 64}); }, 3);
  std::printf(
      "{\"model\": \"imdb_lstm\", \"framework\": \"kerascpp (%s)\", \"batch\": 64, \"seq\": 200, "
      "\"train_samples_per_s\": %.1f, \"infer_samples_per_s\": %.1f}\n",
      backend::backend_name().c_str(), n / train, n / infer);
}

void video_qa(int64_t frames = 4, int64_t size = 150, int64_t batch = 2) {
  utils::set_random_seed(0);
  const auto model = bench::video_qa_model(frames, size);
  Model& m = *model;
  const int64_t n = batch * 6;
  const Tensor xv = ops::random_uniform(Shape{n, frames, size, size, 3}, 0.f, 1.f, 3);
  const Tensor xq = bench::random_ids(n, 20, 10000, 4);
  const Tensor y = ops::floor(ops::random_uniform(Shape{n}, 0.f, 999.5f, 5));
  const FitOptions fit{.batch_size = batch, .epochs = 1, .verbose = 0, .shuffle = false};
  m.fit({xv, xq}, y, fit);
  const double train = median_seconds([&] { m.fit({xv, xq}, y, fit); }, 2);
  std::printf(
      "{\"model\": \"video_qa\", \"framework\": \"kerascpp (%s)\", \"batch\": %ld, \"frames\": %ld, \"size\": %ld, "
      "\"train_samples_per_s\": %.2f}\n",
      backend::backend_name().c_str(), static_cast<long>(batch), static_cast<long>(frames), static_cast<long>(size),
      n / train);
}
// A Transformer encoder block classifying sequences (Keras' "text classification with
// Transformer" example, with key_dim 16 so its attention matches PyTorch's nn.MultiheadAttention
// of width 32): tools/bench/transformer_ref.py has the same model in Keras and PyTorch.
void transformer() {
  utils::set_random_seed(0);
  const int64_t n = 32 * 16, seq = 200, vocab = 20000, width = 32;
  const Tensor x = bench::random_ids(n, seq, vocab, 7);
  const Tensor y = ops::floor(ops::random_uniform(Shape{n, 1}, 0.f, 2.f, 8));
  auto tokens = layers::Input({seq}, {.dtype = "int32"});
  auto e = layers::Embedding(vocab, width)(tokens);
  auto h = layers::LayerNormalization({.epsilon = 1e-6f})(
      layers::add({e, layers::MultiHeadAttention(2, width / 2)(e, e)}));
  auto ff = layers::Dense(width)(layers::Dense(width, {.activation = "relu"})(h));
  h = layers::LayerNormalization({.epsilon = 1e-6f})(layers::add({h, ff}));
  auto pooled = layers::Dense(20, {.activation = "relu"})(layers::GlobalAveragePooling1D()(h));
  Model m(tokens, layers::Dense(1, {.activation = "sigmoid"})(pooled));
  m.compile({.optimizer = "adam", .loss = "binary_crossentropy"});
  const FitOptions fit{.batch_size = 32, .epochs = 1, .verbose = 0, .shuffle = false};
  m.fit(x, y, fit);
  const double train = median_seconds([&] { m.fit(x, y, fit); }, 3);
  m.predict(x, {.batch_size = 32});
  const double infer = median_seconds([&] { m.predict(x, {.batch_size = 32}); }, 3);
  std::printf(
      "{\"model\": \"transformer\", \"framework\": \"kerascpp (%s)\", \"batch\": 32, \"seq\": 200, "
      "\"train_samples_per_s\": %.1f, \"infer_samples_per_s\": %.1f}\n",
      backend::backend_name().c_str(), n / train, n / infer);
}

// ResNet50 training at batch 16, where memory matters: Adam, sparse cross-entropy, fit() over three
// batches (median of three after a warm-up pass), as tools/bench/resnet50_train_ref.py measures Keras
// and PyTorch. peak_mb: the most tensor memory the backend handed out (the rivals' figure is their
// process' peak resident memory, which run_cpu_rivals.sh takes for all three).
void resnet50_train() {
  utils::set_random_seed(0);
  const int64_t batch = 16, n = batch * 3;
  auto m = applications::ResNet50({.weights = ""});
  m->compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy"});
  const Tensor x = ops::random_uniform(Shape{n, 224, 224, 3}, 0.f, 1.f, 9);
  const Tensor y = ops::floor(ops::random_uniform(Shape{n}, 0.f, 999.5f, 10));
  const FitOptions fit{.batch_size = batch, .epochs = 1, .verbose = 0, .shuffle = false};
  m->fit(x, y, fit);
  const double train = median_seconds([&] { m->fit(x, y, fit); }, 3);
  std::printf(
      "{\"model\": \"resnet50_train\", \"framework\": \"kerascpp (%s)\", \"batch\": %ld, "
      "\"train_samples_per_s\": %.2f, \"peak_mb\": %.0f}\n",
      backend::backend_name().c_str(), static_cast<long>(batch), n / train, backend::get_memory_info().peak / 1e6);
}

void resnet50_infer() {
  utils::set_random_seed(0);
  auto m = applications::ResNet50({.weights = ""});
  const Tensor x = ops::random_uniform(Shape{1, 224, 224, 3}, 0.f, 1.f, 6);
  m->predict(x);
  (*m)(x, false);
  const double t = median_seconds([&] { (*m)(x, false); }, 8);
  std::printf(
      "{\"model\": \"resnet50_infer\", \"framework\": \"kerascpp (%s)\", \"batch\": 1, \"latency_ms\": %.2f, "
      "\"infer_samples_per_s\": %.2f}\n",
      backend::backend_name().c_str(), t * 1000, 1 / t);
}
}  // namespace

int main(int argc, char** argv) {
  const char* which = argc > 1 ? argv[1] : "all";
  const bool all = std::strcmp(which, "all") == 0;
  if (all || std::strcmp(which, "imdb_lstm") == 0) imdb_lstm();
  if (all || std::strcmp(which, "video_qa") == 0) video_qa();
  if (all || std::strcmp(which, "resnet50_infer") == 0) resnet50_infer();
  if (all || std::strcmp(which, "transformer") == 0) transformer();
  if (all || std::strcmp(which, "resnet50_train") == 0) resnet50_train();
  return 0;
}
