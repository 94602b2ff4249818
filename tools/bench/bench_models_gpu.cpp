// The models of ../shared/bench/torch_gpu_ref.py written with kerascpp's layers and measured its way:
// the median of per-step times of train_on_batch (which reads the loss back, so every step ends
// with the device idle, as torch.cuda.synchronize() does there), after warm-up steps. Same batches,
// shapes and optimizer (Adam). Prints one JSON line per model, in the reference's keys.
//   bench_models_gpu [fmnist_cnn|imdb_lstm|video_qa|video_qa_bf16|resnet50|resnet50_bf16|inception_v3_bf16|
//                     resnet50_infer|all|mixed]   (all: the float32 cases; mixed: the mixed_bfloat16 ones)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "kerascpp.h"
#include "tools/bench/bench_models.h"

using namespace keras;

namespace {
using clock_type = std::chrono::steady_clock;

double median_step(const std::function<void()>& step, int warm, int n) {
  for (int i = 0; i < warm; ++i) step();
  default_backend().synchronize();
  std::vector<double> ts;
  for (int i = 0; i < n; ++i) {
    const auto t = clock_type::now();
    step();
    default_backend().synchronize();
    ts.push_back(std::chrono::duration<double>(clock_type::now() - t).count());
  }
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}

Tensor random_labels(int64_t n, int64_t classes, uint64_t seed) {
  return ops::cast(ops::floor(ops::random_uniform(Shape{n}, 0.f, static_cast<float>(classes) - 0.5f, seed)),
                   DType::int32);
}

// amp_bf16: the model was made under the mixed_bfloat16 policy (the rival's bfloat16 autocast).
// peak_mb: the most tensor memory in use since the model was made (weights, optimizer state, the
// batch and the steps), as torch.cuda.max_memory_allocated (tools/gpu/torch_peak_memory.py).
void report_train(const char* model, int64_t batch, double step, const char* extra = "") {
  const bool bf16 = mixed_precision::global_policy().name() == "mixed_bfloat16";
  std::printf(
      "{\"model\": \"%s\", \"framework\": \"kerascpp (%s)\", \"batch\": %ld, \"amp_bf16\": %s, "
      "\"train_samples_per_s\": %.1f, \"step_ms\": %.3f, \"peak_mb\": %.1f%s}\n",
      model, backend::backend_name().c_str(), static_cast<long>(batch), bf16 ? "true" : "false",
      static_cast<double>(batch) / step, step * 1e3, backend::get_memory_info().peak / 1e6, extra);
  std::fflush(stdout);
}

void fmnist_cnn() {
  utils::set_random_seed(0);
  Sequential m({layers::Input({28, 28, 1}), layers::Conv2D(32, {3, 3}, {.activation = "relu"}),
                layers::MaxPooling2D({2, 2}), layers::Conv2D(64, {3, 3}, {.activation = "relu"}),
                layers::MaxPooling2D({2, 2}), layers::Flatten(), layers::Dropout(0.5f), layers::Dense(10, {.activation = "softmax"})});
  m.compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy"});
  const Tensor x = ops::random_uniform(Shape{128, 28, 28, 1}, 0.f, 1.f, 1);
  const Tensor y = random_labels(128, 10, 2);
  report_train("fmnist_cnn", 128, median_step([&] { m.train_on_batch({x}, {y}); }, 5, 50));
}

void imdb_lstm() {
  utils::set_random_seed(0);
  Sequential m({layers::Input({200}, {.dtype = "int32"}), layers::Embedding(20000, 128), layers::LSTM(128),
                layers::Dense(1, {.activation = "sigmoid"})});
  m.compile({.optimizer = "adam", .loss = "binary_crossentropy"});
  const Tensor x = bench::random_ids(64, 200, 20000, 3);
  const Tensor y = ops::floor(ops::random_uniform(Shape{64, 1}, 0.f, 2.f, 4));
  report_train("imdb_lstm", 64, median_step([&] { m.train_on_batch({x}, {y}); }, 5, 30), ", \"seq\": 200");
}

void video_qa() {
  utils::set_random_seed(0);
  const int64_t frames = 8, size = 150, batch = 16;
  const auto model = bench::video_qa_model(frames, size);
  Model& m = *model;
  const Tensor xv = ops::random_uniform(Shape{batch, frames, size, size, 3}, 0.f, 1.f, 5);
  const Tensor xq = bench::random_ids(batch, 20, 10000, 6);
  const Tensor y = random_labels(batch, 1000, 7);
  report_train("video_qa", batch, median_step([&] { m.train_on_batch({xv, xq}, {y}); }, 3, 10),
               ", \"frames\": 8, \"size\": 150");
}

void resnet50_at(int64_t batch) {
  utils::set_random_seed(0);
  auto m = applications::ResNet50({.weights = ""});
  m->compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy"});
  const Tensor x = ops::random_uniform(Shape{batch, 224, 224, 3}, 0.f, 1.f, 8);
  const Tensor y = random_labels(batch, 1000, 9);
  report_train("resnet50", batch, median_step([&] { m->train_on_batch({x}, {y}); }, 5, 15),
               ", \"channels_last\": true");
}
void resnet50() { resnet50_at(128); }

// The rival's mixed-precision cases: its bfloat16 autocast is Keras' mixed_bfloat16 policy here.
template <void (*Run)()>
void under_mixed_bfloat16() {
  mixed_precision::PolicyScope policy("mixed_bfloat16");
  Run();
}
void resnet50_256() { resnet50_at(256); }

void inception_v3() {
  utils::set_random_seed(0);
  auto m = applications::InceptionV3({.weights = ""});
  m->compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy"});
  const Tensor x = ops::random_uniform(Shape{128, 299, 299, 3}, 0.f, 1.f, 11);
  const Tensor y = random_labels(128, 1000, 12);
  report_train("inception_v3", 128, median_step([&] { m->train_on_batch({x}, {y}); }, 5, 10),
               ", \"channels_last\": true");
}

void resnet50_infer() {
  utils::set_random_seed(0);
  auto m = applications::ResNet50({.weights = ""});
  const Tensor x = ops::random_uniform(Shape{1, 224, 224, 3}, 0.f, 1.f, 10);
  // Layer by layer first (KERASCPP_CUDA_GRAPHS=0), with the host's share: the time to queue one
  // pass, the device idle at the start (close to the latency: the host is the bound).
  setenv("KERASCPP_CUDA_GRAPHS", "0", 1);
  reload_settings();
  const double eager = median_step([&] { (*m)(x, false); }, 10, 50);
  std::vector<double> host;
  for (int i = 0; i < 20; ++i) {
    default_backend().synchronize();
    const auto start = clock_type::now();
    (*m)(x, false);
    host.push_back(std::chrono::duration<double>(clock_type::now() - start).count());
  }
  default_backend().synchronize();
  std::sort(host.begin(), host.end());
  setenv("KERASCPP_CUDA_GRAPHS", "1", 1);  // replayed from a recorded graph
  reload_settings();
  const double t = median_step([&] { (*m)(x, false); }, 10, 50);
  unsetenv("KERASCPP_CUDA_GRAPHS");
  reload_settings();
  std::printf(
      "{\"model\": \"resnet50_infer\", \"framework\": \"kerascpp (%s)\", \"batch\": 1, \"latency_ms\": %.3f, "
      "\"layer_by_layer_ms\": %.3f, \"host_queue_ms\": %.3f}\n",
      backend::backend_name().c_str(), t * 1e3, eager * 1e3, host[host.size() / 2] * 1e3);
  std::fflush(stdout);
}
}  // namespace

int main(int argc, char** argv) {
  // "all": the float32 cases; "mixed": the mixed_bfloat16 ones (a separate run, timed apart).
  const char* which = argc > 1 ? argv[1] : "all";
  const bool all = std::strcmp(which, "all") == 0, mixed = std::strcmp(which, "mixed") == 0;
  std::printf("{\"backend\": \"%s\", \"tf32\": %s}\n", backend::backend_name().c_str(),
              tensor_float_32_execution_enabled() ? "true" : "false");
  const std::vector<std::pair<const char*, void (*)()>> models{{"fmnist_cnn", fmnist_cnn},
                                                               {"imdb_lstm", imdb_lstm},
                                                               {"video_qa", video_qa},
                                                               {"video_qa_bf16", under_mixed_bfloat16<video_qa>},
                                                               {"resnet50", resnet50},
                                                               {"resnet50_bf16", under_mixed_bfloat16<resnet50_256>},
                                                               {"inception_v3_bf16", under_mixed_bfloat16<inception_v3>},
                                                               {"resnet50_infer", resnet50_infer}};
  for (const auto& [name, run] : models) {
    const bool bf16 = std::strstr(name, "_bf16") != nullptr;
    if (!(all && !bf16) && !(mixed && bf16) && std::strcmp(which, name) != 0) continue;
    try {
      backend::reset_memory_stats();
      run();
    } catch (const std::exception& e) {  // one model failing must not hide the others' figures
      std::printf("{\"model\": \"%s\", \"error\": \"%s\"}\n", name, e.what());
      std::fflush(stdout);
    }
  }
  return 0;
}
