// The kerascpp side of the differential check (run.sh): loads each model generate.py saved, predicts
// on Keras' inputs and compares with Keras' predictions, then (where Keras trained two steps, with
// a random optimizer and loss) trains two steps on Keras' targets and compares every weight. Prints one line per model that fails to
// load or differs, then a count; exits 1 where any did.
//   keras_diff DIR [MODEL]
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "kerascpp.h"

using namespace keras;

namespace {
Tensor input_of(const nlohmann::json& in) {
  const Shape shape(in["shape"].get<std::vector<int64_t>>());
  if (in["dtype"] == "int32") return Tensor::from_vector(in["values"].get<std::vector<int32_t>>(), shape);
  return Tensor::from_vector(in["values"].get<std::vector<float>>(), shape);
}

// Empty where the outputs match Keras' within float32 rounding; else why not.
std::string compare(const std::vector<Tensor>& outs, const nlohmann::json& expected) {
  if (outs.size() != expected.size())
    return fmt::format("{} outputs, Keras has {}", outs.size(), expected.size());
  for (size_t i = 0; i < outs.size(); ++i) {
    const auto shape = expected[i]["shape"].get<std::vector<int64_t>>();
    if (outs[i].shape().dims() != shape)
      return fmt::format("output {}: shape {}, Keras' ({})", i, outs[i].shape().to_string(), fmt::join(shape, ", "));
    const auto got = outs[i].to_vector<float>();
    const auto want = expected[i]["values"].get<std::vector<float>>();
    for (size_t k = 0; k < got.size(); ++k) {
      if (!(std::fabs(got[k] - want[k]) <= 1e-5 + 1e-3 * std::fabs(want[k])))
        return fmt::format("output {}: element {} is {}, Keras' {}", i, k, got[k], want[k]);
    }
  }
  return "";
}
// Every weighted layer of a model and of the models inside it, by name.
void collect_layers(Model& model, std::map<std::string, Layer*>& out) {
  for (Layer* l : model.layers()) {
    if (auto* m = dynamic_cast<Model*>(l))
      collect_layers(*m, out);
    else if (!l->weights().empty())
      out[l->name()] = l;
  }
}

// Empty where two train_on_batch steps on Keras' targets leave the weights Keras had after them.
std::string compare_step(Model& model, const std::vector<Tensor>& xs, const nlohmann::json& io) {
  std::vector<Tensor> ys;
  for (const auto& y : io["targets"]) ys.push_back(input_of(y));
  for (int step = 0; step < 2; ++step) model.train_on_batch(xs, ys);
  std::map<std::string, Layer*> layers;
  collect_layers(model, layers);
  for (const auto& [name, expected] : io["weights_after_step"].items()) {
    if (!layers.count(name)) return fmt::format("no layer {} after the step", name);
    auto vars = layers[name]->variables_in_saving_order();
    if (vars.empty()) vars = layers[name]->weights();
    if (vars.size() != expected.size()) return fmt::format("layer {}: {} weights, Keras' {}", name, vars.size(), expected.size());
    for (size_t i = 0; i < vars.size(); ++i) {
      const auto got = vars[i]->value().to_vector<float>();
      const auto want = expected[i].get<std::vector<float>>();
      if (got.size() != want.size()) return fmt::format("layer {} weight {}: {} values, Keras' {}", name, i, got.size(), want.size());
      for (size_t k = 0; k < got.size(); ++k)
        if (!(std::fabs(got[k] - want[k]) <= 1e-4 + 1e-3 * std::fabs(want[k])))
          return fmt::format("after two steps, layer {} weight {} element {} is {}, Keras' {}", name, i, k, got[k], want[k]);
    }
  }
  return "";
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: keras_diff DIR [MODEL]\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::ifstream manifest(dir + "/manifest.txt");
  std::string name;
  int ok = 0, differ = 0, refused = 0;
  while (std::getline(manifest, name)) {
    if (name.empty() || (argc > 2 && name != argv[2])) continue;
    std::ifstream f(dir + "/" + name + "_io.json");
    const auto io = nlohmann::json::parse(f);
    std::string kinds;
    for (const auto& l : io["layers"]) kinds += l.get<std::string>() + " ";
    try {
      utils::clear_session();
      auto model = models::load_model(dir + "/" + name + ".keras");
      std::vector<Tensor> xs;
      for (const auto& in : io["inputs"]) xs.push_back(input_of(in));
      std::string why = compare(model->predict_all(xs), io["predictions"]);
      if (why.empty() && io.contains("targets")) why = compare_step(*model, xs, io);
      if (why.empty()) {
        ++ok;
      } else {
        ++differ;
        std::printf("DIFFERS %s [%s] %s\n", name.c_str(), kinds.c_str(), why.c_str());
      }
    } catch (const std::exception& e) {
      ++refused;
      std::printf("REFUSED %s [%s] %s\n", name.c_str(), kinds.c_str(), std::string(e.what()).substr(0, 300).c_str());
    }
  }
  std::printf("keras_diff: %d as Keras, %d differ, %d refused\n", ok, differ, refused);
  return differ + refused > 0 ? 1 : 0;
}
