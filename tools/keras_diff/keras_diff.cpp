// The kerascpp side of the differential check (run.sh): loads each model generate.py saved, predicts
// on Keras' inputs and compares with Keras' predictions. Prints one line per model that fails to
// load or differs, then a count; exits 1 where any did.
//   keras_diff DIR [MODEL]
#include <cmath>
#include <cstdio>
#include <fstream>
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
      const double d = std::fabs(got[k] - want[k]) / (1e-3 + std::fabs(want[k]));
      if (!(d <= 1e-3)) return fmt::format("output {}: element {} is {}, Keras' {}", i, k, got[k], want[k]);
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
      const std::string why = compare(model->predict_all(xs), io["predictions"]);
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
