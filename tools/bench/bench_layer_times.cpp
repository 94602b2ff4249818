// Where a training step's time goes, layer by layer: runs each layer of an application model alone
// on random inputs of its built shape (forward, then backward of sum(y * probe)), finished on the
// device, and prints the totals per layer class and the slowest layers. A profiler for machines
// without one (the GPU machine has no Nsight Systems).
//
//   bench_layer_times [resnet50|inception_v3] [batch] [repeats] [float32|mixed_bfloat16|mixed_float16]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "kerascpp.h"

using namespace keras;
using Clock = std::chrono::steady_clock;

namespace {
std::vector<std::vector<int64_t>> input_shapes(const Layer& layer, int64_t batch) {
  const Config c = layer.get_build_config();
  if (c.is_null()) return {};
  const Config& s = c["input_shape"];
  const bool several = s.is_array() && !s.empty() && s[0].is_array();
  std::vector<std::vector<int64_t>> out;
  for (const Config& one : several ? s : Config::array({s})) {
    std::vector<int64_t> dims;
    for (const Config& d : one) dims.push_back(d.is_null() ? batch : d.get<int64_t>());
    out.push_back(dims);
  }
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "resnet50";
  const int64_t batch = argc > 2 ? std::atoll(argv[2]) : 32;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
  const std::string policy = argc > 4 ? argv[4] : "float32";
  auto model = [&] {
    mixed_precision::PolicyScope scope(policy);  // the layers take the policy they are made under
    return name == "inception_v3" ? applications::InceptionV3({.weights = ""})
                                  : applications::ResNet50({.weights = "", .input_shape = {224, 224, 3}});
  }();
  Backend& be = default_backend();
  struct Row {
    std::string layer, cls;
    double forward_ms, backward_ms;
  };
  std::vector<Row> rows;
  for (const auto& layer : model->ordered_layers()) {
    const auto shapes = input_shapes(*layer, batch);
    if (shapes.empty() || layer->class_name() == "InputLayer") continue;
    std::vector<Tensor> xs;
    for (const auto& s : shapes) {
      // In the compute dtype, as the layer before hands it over under a mixed policy.
      const Tensor x = ops::random_uniform(Shape(s), -1.f, 1.f, 7, &be);
      xs.push_back(layer->autocast() && layer->compute_dtype() != DType::float32 ? ops::cast(x, layer->compute_dtype()) : x);
    }
    double f_best = 1e30, b_best = 1e30;
    for (int r = 0; r < repeats + 1; ++r) {  // the first run chooses algorithms
      GradientTape tape;
      for (Tensor& x : xs) tape.watch(x);
      be.synchronize();
      auto t0 = Clock::now();
      // operator() reads the variables in the compute dtype; merges have none.
      const Tensor y = xs.size() == 1 ? (*layer)(xs[0], true) : layer->call_multi(xs, true)[0];
      be.synchronize();
      auto t1 = Clock::now();
      std::vector<Tensor> sources = xs;
      for (Variable* v : layer->trainable_weights()) sources.push_back(v->value());
      tape.gradient(y, sources, ops::ones_like(y));
      be.synchronize();
      auto t2 = Clock::now();
      if (r == 0) continue;
      f_best = std::min(f_best, std::chrono::duration<double, std::milli>(t1 - t0).count());
      b_best = std::min(b_best, std::chrono::duration<double, std::milli>(t2 - t1).count());
    }
    rows.push_back({layer->name(), layer->class_name(), f_best, b_best});
  }
  std::map<std::string, std::pair<double, double>> by_class;
  double f_total = 0, b_total = 0;
  for (const Row& r : rows) {
    by_class[r.cls].first += r.forward_ms;
    by_class[r.cls].second += r.backward_ms;
    f_total += r.forward_ms;
    b_total += r.backward_ms;
  }
  std::printf("{\"model\": \"%s\", \"backend\": \"%s\", \"policy\": \"%s\", \"batch\": %lld, \"forward_ms\": %.2f, "
              "\"backward_ms\": %.2f}\n",
              name.c_str(), be.name().c_str(), policy.c_str(), static_cast<long long>(batch), f_total, b_total);
  for (const auto& [cls, t] : by_class)
    std::printf("{\"class\": \"%s\", \"forward_ms\": %.2f, \"backward_ms\": %.2f}\n", cls.c_str(), t.first, t.second);
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.backward_ms > b.backward_ms; });
  for (size_t i = 0; i < std::min<size_t>(rows.size(), 12); ++i)
    std::printf("{\"layer\": \"%s\", \"class\": \"%s\", \"forward_ms\": %.3f, \"backward_ms\": %.3f}\n",
                rows[i].layer.c_str(), rows[i].cls.c_str(), rows[i].forward_ms, rows[i].backward_ms);
  return 0;
}
