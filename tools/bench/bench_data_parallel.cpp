// Data-parallel training measured on one device, and the scaling it predicts for a node.
//
//   bench_data_parallel [resnet50|mlp] [batch per replica] [steps] [communicator] [--busbw GB/s]
//                       [--mirrored cuda:0,cuda:1 | cpu:0,cpu:1 | all]
//
// Trains through MultiWorkerMirroredStrategy, or with --mirrored a MirroredStrategy over those
// devices in this process (the real reducer path: buckets all-reduced while the backward pass
// runs), and prints, as JSON: the step time, the backward time, how long the step
// waited for all-reduces after the backward pass, and the gradient bytes. From those and an
// all-reduce bus bandwidth (--busbw GB/s, NCCL's ring), it predicts the efficiency on N GPUs:
//   ring all-reduce time  T_ar = 2 (N - 1) / N * bytes / busbw
//   exposed communication = max(0, T_ar - T_backward) + the last bucket's own all-reduce
// (T_backward: the host-measured backward, or step - forward where the device runs behind the host).
//   efficiency = T_step / (T_step + exposed communication)
// Under mpirun with several CPU processes it reports the measured per-step time instead.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "distributed/strategy.h"
#include "kerascpp.h"

using namespace keras;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  const std::string model_name = argc > 1 ? argv[1] : "mlp";
  const int64_t batch = argc > 2 ? std::atoll(argv[2]) : 64;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 10;
  const std::string comm = argc > 4 ? argv[4] : "auto";
  double busbw_gbs = 300;  // conservative for 8x H100 SXM (NVLink 4): nccl-tests report 360-480 GB/s
  std::vector<std::string> devices;
  for (int i = 5; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--busbw") busbw_gbs = std::atof(argv[i + 1]);
    if (std::string(argv[i]) == "--mirrored") {
      std::string list = argv[i + 1];
      for (size_t at = 0; at <= list.size();) {
        const size_t comma = std::min(list.find(',', at), list.size());
        devices.push_back(list.substr(at, comma - at));
        at = comma + 1;
      }
    }
  }
  std::unique_ptr<distribute::Strategy> owned;
  if (devices == std::vector<std::string>{"all"})
    owned = std::make_unique<distribute::MirroredStrategy>(distribute::StrategyOptions{.communicator = comm});
  else if (!devices.empty())
    owned = std::make_unique<distribute::MirroredStrategy>(devices, distribute::StrategyOptions{.communicator = comm});
  else
    owned = std::make_unique<distribute::MultiWorkerMirroredStrategy>(distribute::StrategyOptions{.communicator = comm});
  distribute::Strategy& strategy = *owned;
  const int world = strategy.num_replicas_in_sync();
  std::shared_ptr<Model> model = strategy.scope([&]() -> std::shared_ptr<Model> {
    if (model_name == "resnet50")
      return applications::ResNet50({.weights = "", .input_shape = {224, 224, 3}, .classes = 1000});
    return std::make_shared<Sequential>(
        Sequential({layers::Input({256}), layers::Dense(1024, {.activation = "relu"}),
                    layers::Dense(1024, {.activation = "relu"}), layers::Dense(10, {.activation = "softmax"})}));
  });
  strategy.scope([&] {
    model->compile({.optimizer = optimizers::SGD({.learning_rate = 0.01f, .momentum = 0.9f}),
                    .loss = "sparse_categorical_crossentropy"});
  });
  const std::vector<int64_t> in =
      model_name == "resnet50" ? std::vector<int64_t>{224, 224, 3} : std::vector<int64_t>{256};
  std::vector<int64_t> xshape{batch * world};
  xshape.insert(xshape.end(), in.begin(), in.end());
  const Tensor x = ops::random_uniform(Shape(xshape), 0.f, 1.f, 1, &default_backend());
  const Tensor y = ops::cast(ops::random_uniform({batch * world}, 0.f, 9.99f, 2, &default_backend()), DType::int32);

  for (int i = 0; i < 3; ++i) model->train_on_batch(x, y);  // warm up: algorithms, caches
  auto before = strategy.counters();
  std::vector<double> t;
  for (int i = 0; i < steps; ++i) {
    const auto start = Clock::now();
    model->train_on_batch(x, y);  // reads the loss back: the step is finished
    t.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  const double step_ms = t[t.size() / 2];
  // The forward pass alone, finished: on a GPU the host only queues work, so the backward pass's
  // device time is estimated as step - forward (the optimizer update is counted in it).
  std::vector<double> f;
  for (int i = 0; i < std::max(steps / 2, 3); ++i) {
    const auto start = Clock::now();
    model->predict_on_batch(x);
    default_backend().synchronize();
    f.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(f.begin(), f.end());
  const double forward_ms = f[f.size() / 2];
  auto after = strategy.counters();
  const double n = std::max<int64_t>(after["steps"] - before["steps"], 1);
  const double backward_host_ms = (after["backward_us"] - before["backward_us"]) / n / 1000.0;
  const double backward_ms = std::max(backward_host_ms, step_ms - forward_ms);
  const double wait_ms = (after["wait_us"] - before["wait_us"]) / n / 1000.0;
  const double buckets = (after["buckets"] - before["buckets"]) / n;
  const double overlapped =
      (after["buckets_launched_during_backward"] - before["buckets_launched_during_backward"]) / n;
  const double bytes = static_cast<double>(model->count_params()) * 4.0;
  if (!strategy.is_chief()) return 0;
  std::printf(
      "{\"model\": \"%s\", \"backend\": \"%s\", \"communicator\": \"%s\", \"replicas\": %d, \"batch_per_replica\": "
      "%lld, "
      "\"step_ms\": %.2f, \"forward_ms\": %.2f, \"backward_ms\": %.2f, \"backward_host_ms\": %.2f, "
      "\"wait_after_backward_ms\": %.3f, \"buckets_per_step\": %.1f, "
      "\"buckets_launched_during_backward\": %.1f, \"gradient_mb\": %.1f, \"samples_per_s\": %.1f}\n",
      model_name.c_str(), default_backend().name().c_str(), strategy.communicator().name().c_str(), world,
      static_cast<long long>(batch), step_ms, forward_ms, backward_ms, backward_host_ms, wait_ms, buckets, overlapped,
      bytes / 1e6, 1000.0 * static_cast<double>(batch * world) / step_ms);
  if (world == 1 && strategy.local_replicas() == 1) {
    const double bucket_bytes = std::min<double>(bytes, strategy.options().bucket_bytes);
    for (int gpus : {2, 4, 8}) {
      const double ring = 2.0 * (gpus - 1) / gpus;
      const double t_ar = ring * bytes / (busbw_gbs * 1e9) * 1000.0;
      const double t_last = ring * bucket_bytes / (busbw_gbs * 1e9) * 1000.0;
      const double exposed = std::max(0.0, t_ar - backward_ms) + t_last;
      std::printf(
          "{\"predicted_gpus\": %d, \"busbw_gb_s\": %.0f, \"allreduce_ms\": %.2f, \"exposed_ms\": %.2f, "
          "\"efficiency\": %.3f}\n",
          gpus, busbw_gbs, t_ar, exposed, step_ms / (step_ms + exposed));
    }
  }
  return 0;
}
