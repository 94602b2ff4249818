// models::inspect_file: a Keras file's structure, read without building the model.
#include <filesystem>
#include <functional>

#include "core/check.h"
#include "models/saving/file_io.h"
#include "models/saving/h5_file.h"
#include "models/saving/saving.h"
#include "models/saving/zip_archive.h"

namespace keras::models {
namespace {

constexpr int kMaxDepth = 64;
constexpr int64_t kMaxObjects = 1'000'000;

void collect_classes(const Config& c, FileReport& report, int depth) {
  if (depth > kMaxDepth) return;
  if (c.is_object()) {
    if (c.contains("class_name") && c["class_name"].is_string() && c.contains("config") && c["config"].is_object() &&
        c["config"].contains("name")) {
      const std::string cls = c["class_name"].get<std::string>();
      report.layer_classes.push_back(cls);
      if (cls == "Lambda")
        report.problems.push_back("a Lambda layer (its code is never loaded from a file)");
      else if (!serialization::is_registered(cls) &&
               std::find(report.unknown_classes.begin(), report.unknown_classes.end(), cls) ==
                   report.unknown_classes.end())
        report.unknown_classes.push_back(cls);
    }
    for (auto it = c.begin(); it != c.end(); ++it)
      if (it.key() == "layers" || it.key() == "config" || it.key() == "layer") collect_classes(it.value(), report, depth + 1);
  } else if (c.is_array()) {
    for (const auto& e : c) collect_classes(e, report, depth + 1);
  }
}

void count_datasets(const saving::h5::Group& g, FileReport& report, bool optimizer, int depth, int64_t& seen,
                    int64_t file_bytes) {
  KCPP_CHECK(depth <= kMaxDepth, IOError, "{}: groups nest deeper than {}", g.path(), kMaxDepth);
  for (const std::string& name : g.members()) {
    KCPP_CHECK(++seen <= kMaxObjects, IOError, "{}: more than {} objects", g.path(), kMaxObjects);
    if (g.has_group(name)) {
      count_datasets(g.group(name), report, optimizer || name == "optimizer" || name == "optimizer_weights", depth + 1,
                     seen, file_bytes);
    } else if (g.has_dataset(name)) {
      const auto info = g.dataset_info(name);
      int64_t n = 1;
      for (int64_t d : info.dims) n = d == 0 || n <= INT64_MAX / d ? n * d : INT64_MAX;
      // Keras stores weights uncompressed: a dataset far larger than the file is a shape bomb.
      if (n / 16 > file_bytes + (1 << 20))
        report.problems.push_back(fmt::format("dataset {}/{} declares {} values, more than the file can hold",
                                              g.path(), name, n));
      if (optimizer) {
        ++report.optimizer_arrays;
      } else {
        ++report.weight_arrays;
        report.weight_values = n > INT64_MAX - report.weight_values ? INT64_MAX : report.weight_values + n;
      }
    }
  }
}

void read_config(const std::string& text, const std::string& what, FileReport& report) {
  Config config;
  try {
    config = Config::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw IOError(fmt::format("{}: not valid JSON: {}", what, e.what()));
  }
  if (config.is_object() && config.contains("class_name") && config["class_name"].is_string())
    report.model_class = config["class_name"].get<std::string>();
  if (config.is_object() && config.contains("config")) collect_classes(config["config"], report, 0);
  if (!report.model_class.empty() && report.model_class != "Sequential" && report.model_class != "Functional" &&
      report.model_class != "Model" && !serialization::is_registered(report.model_class))
    report.unknown_classes.push_back(report.model_class);
}

}  // namespace

FileReport inspect_file(const std::string& path) {
  FileReport report;
  int64_t seen = 0;
  if (saving::ends_with(path, ".keras")) {
    report.format = ".keras";
    const saving::zip::Limits json_limits{64ull << 20, 1000.0};
    const auto names = saving::zip::member_names(path);
    auto has = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
    KCPP_CHECK(has("config.json"), IOError, "{}: no config.json member: not a Keras 3 .keras file", path);
    if (has("metadata.json")) {
      const auto bytes = saving::zip::read_member(path, "metadata.json", json_limits);
      try {
        const Config meta = Config::parse(bytes.begin(), bytes.end());
        if (meta.is_object() && meta.contains("keras_version") && meta["keras_version"].is_string())
          report.keras_version = meta["keras_version"].get<std::string>();
      } catch (const nlohmann::json::exception& e) {
        throw IOError(fmt::format("{}: metadata.json is not valid JSON: {}", path, e.what()));
      }
    }
    const auto config = saving::zip::read_member(path, "config.json", json_limits);
    read_config(std::string(config.begin(), config.end()), path + ": config.json", report);
    if (has("model.weights.h5")) {
      auto weights = saving::zip::read_member(path, "model.weights.h5", {64ull << 30, 1000.0});
      const auto bytes = static_cast<int64_t>(weights.size());
      const auto file = saving::h5::File::open_image(std::move(weights), path + ": model.weights.h5");
      count_datasets(file.root(), report, false, 0, seen, bytes);
    }
  } else {
    const auto file = saving::h5::File::open(path);
    const auto root = file.root();
    if (root.has_attribute("keras_version")) report.keras_version = root.read_string_attribute("keras_version");
    if (root.has_attribute("model_config")) {
      report.format = "legacy .h5 model";
      read_config(root.read_string_attribute("model_config"), path + ": model_config", report);
    } else if (root.has_attribute("layer_names")) {
      report.format = "legacy .h5 weights";
    } else {
      report.format = "Keras 3 .weights.h5";
    }
    std::error_code ec;
    const auto bytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
    count_datasets(root, report, false, 0, seen, ec ? 0 : bytes);
  }
  for (const auto& cls : report.unknown_classes)
    report.problems.push_back(fmt::format("layer class '{}' is not registered (register_layer_class)", cls));
  return report;
}

}  // namespace keras::models
