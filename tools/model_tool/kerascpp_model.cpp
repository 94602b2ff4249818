// kerascpp-model: saved Keras models from the command line.
//
//   kerascpp-model summary  FILE
//   kerascpp-model check    FILE
//   kerascpp-model convert  IN OUT             (.keras <-> .h5, or to .weights.h5)
//   kerascpp-model evaluate FILE --images IDX --labels IDX [--scale S] [--batch-size N]
//
// FILE is a .keras file or a legacy .h5 model saved by Python Keras (2 or 3, tf.keras) or kerascpp.
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "kerascpp.h"

using namespace keras;

namespace {

int usage(const char* why = nullptr) {
  if (why) std::cerr << "kerascpp-model: " << why << "\n\n";
  std::cerr << "usage:\n"
               "  kerascpp-model summary  FILE\n"
               "  kerascpp-model check    FILE\n"
               "  kerascpp-model convert  IN OUT\n"
               "  kerascpp-model evaluate FILE --images IDX --labels IDX [--scale S] [--batch-size N]\n"
               "FILE: .keras or .h5 (Python Keras 2/3, tf.keras, kerascpp). check reads a file without building\n"
               "the model; evaluate feeds an IDX image file (uint8, scaled by S, default 1/255) to the model and\n"
               "reports the accuracy of argmax predictions against the IDX labels, and the compiled metrics.\n";
  return 2;
}

int check(const std::string& path) {
  const auto r = models::inspect_file(path);
  std::cout << "file:            " << path << "\n"
            << "format:          " << r.format << "\n"
            << "keras version:   " << (r.keras_version.empty() ? "(not recorded)" : r.keras_version) << "\n";
  if (!r.model_class.empty()) std::cout << "model class:     " << r.model_class << "\n";
  if (!r.layer_classes.empty()) {
    std::map<std::string, int> counts;
    for (const auto& c : r.layer_classes) ++counts[c];
    std::cout << "layers:          " << r.layer_classes.size() << " (";
    bool first = true;
    for (const auto& [c, n] : counts) {
      std::cout << (first ? "" : ", ") << c << " x" << n;
      first = false;
    }
    std::cout << ")\n";
  }
  std::cout << "weight arrays:   " << r.weight_arrays << " (" << r.weight_values << " values)\n"
            << "optimizer state: " << r.optimizer_arrays << " arrays\n";
  for (const auto& p : r.problems) std::cout << "problem:         " << p << "\n";
  std::cout << (r.problems.empty() ? "ok: no problem found (the model itself is not built; load_model checks the rest)\n"
                                   : "not loadable as is\n");
  return r.problems.empty() ? 0 : 1;
}

int evaluate(const std::string& path, const std::map<std::string, std::string>& opts) {
  if (!opts.count("--images") || !opts.count("--labels")) return usage("evaluate needs --images and --labels");
  auto model = models::load_model(path);
  Tensor images = datasets::read_idx(opts.at("--images"));
  const Tensor labels = datasets::read_idx(opts.at("--labels"));
  const float scale = opts.count("--scale") ? std::stof(opts.at("--scale")) : 1.f / 255.f;
  const int64_t batch = opts.count("--batch-size") ? std::stoll(opts.at("--batch-size")) : 128;
  // Reshape to the model's input (for example (N, 28, 28) to (N, 28, 28, 1)).
  PartialShape want;
  if (auto* seq = dynamic_cast<Sequential*>(model.get()); seq && seq->input_layer())
    want = seq->input_layer()->batch_shape();
  else if (!model->inputs().empty())
    want = model->inputs()[0].shape();
  Tensor x = ops::cast(images, DType::float32) * scale;
  if (!want.empty()) {
    std::vector<int64_t> dims{x.dim(0)};
    for (size_t i = 1; i < want.size(); ++i) dims.push_back(want[i] ? *want[i] : -1);
    x = ops::reshape(x, dims);
  }
  const auto probs = model->predict(x, {.batch_size = batch}).to_vector<float>();
  const auto truth = ops::cast(labels, DType::int32).to_vector<int32_t>();
  const size_t classes = probs.size() / truth.size();
  int64_t right = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    const float* p = probs.data() + i * classes;
    right += std::max_element(p, p + classes) - p == truth[i];
  }
  std::cout << "samples:  " << truth.size() << "\n"
            << "accuracy: " << static_cast<double>(right) / static_cast<double>(truth.size()) << "\n";
  if (model->compiled())
    for (const auto& [name, value] : model->evaluate(x, labels, {.batch_size = batch, .verbose = 0}))
      std::cout << name << ": " << value << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string command = argv[1];
  try {
    if (command == "summary" && argc == 3) {
      auto model = models::load_model(argv[2], {.compile = false});
      model->summary();
      return 0;
    }
    if (command == "check" && argc == 3) return check(argv[2]);
    if (command == "convert" && argc == 4) {
      auto model = models::load_model(argv[2]);
      const std::string out = argv[3];
      if (out.size() > 11 && out.compare(out.size() - 11, 11, ".weights.h5") == 0)
        model->save_weights(out);
      else
        model->save(out);
      std::cout << "wrote " << out << "\n";
      return 0;
    }
    if (command == "evaluate") {
      std::map<std::string, std::string> opts;
      for (int i = 3; i + 1 < argc; i += 2) opts[argv[i]] = argv[i + 1];
      if ((argc - 3) % 2 != 0) return usage("options take one value each");
      return evaluate(argv[2], opts);
    }
  } catch (const std::exception& e) {
    std::cerr << "kerascpp-model: " << e.what() << "\n";
    return 1;
  }
  return usage("unknown command or wrong number of arguments");
}
