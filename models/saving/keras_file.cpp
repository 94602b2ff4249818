// Keras' model files: the .keras zip (metadata.json, config.json, model.weights.h5), the
// .weights.h5 of Keras 3, and the legacy HDF5 files of Keras 2, tf.keras and Keras 3 (full models
// and weights only, such as keras.applications downloads).
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <optional>

#include "core/check.h"
#include "core/logging.h"
#include "core/ops.h"
#include "layers/core/input_layer.h"
#include "models/saving/file_io.h"
#include "models/saving/h5_file.h"
#include "models/saving/saving.h"
#include "models/saving/zip_archive.h"
#include "models/sequential.h"

namespace keras {
namespace saving {
namespace {

// The Keras version whose file format kerascpp writes (the oldest it is checked against).
constexpr const char* kKerasFormatVersion = "3.8.0";
constexpr uint64_t kMaxJsonBytes = 64ull << 20;
constexpr uint64_t kMaxWeightsBytes = 64ull << 30;
constexpr double kMaxExpansion = 1000.0;
// A file's config may declare at most this many weight bytes per byte of the file's weights
// (Keras stores weights uncompressed; the slack covers HDF5's own compression if someone used it).
constexpr int64_t kWeightBytesPerFileByte = 16;
constexpr int64_t kWeightBudgetFloor = 64ll << 20;

std::string date_saved() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d@%H:%M:%S", &tm);
  return buf;
}

std::vector<float> host_floats(const Variable& v) {
  return ops::cast(ops::to_backend(v.value(), v.value().backend() ? *v.value().backend() : default_backend()),
                   DType::float32)
      .to_vector<float>();
}

// Values read from a file, assigned only once the whole file has been checked.
struct PendingAssignments {
  std::vector<std::pair<Variable*, std::vector<float>>> items;
  void add(Variable* v, std::vector<float> values) { items.emplace_back(v, std::move(values)); }
  void commit() {
    for (auto& [v, values] : items)
      v->assign(ops::to_backend(ops::cast(Tensor::from_vector(values, v->shape()), v->value().dtype()),
                                *v->value().backend()));
  }
};

// Keras 3 layout -------------------------------------------------------------------------------------
// One group per saveable object: "vars" holds its own variables as "0", "1", ...; a model's layers
// live under "layers/<snake_case class name>[_n]", numbered per container in model.layers order.

std::vector<Layer*> saving_layers(Model& model) {
  if (auto* seq = dynamic_cast<Sequential*>(&model)) return seq->layers();  // no InputLayer, as Keras
  std::vector<Layer*> out;
  for (const auto& l : model.ordered_layers())
    if (!l->is_operation()) out.push_back(l.get());  // NotEqual and other ops have no group
  return out;
}

// Keras names a layer's weights group after its Python class, in snake case.
std::string weights_group_of(const Layer& layer) { return serialization::to_snake_case(layer.python_class_name()); }

void write_layer_tree(Layer& layer, h5::Group& group) {
  h5::Group vars = group.create_group("vars");
  auto* model = dynamic_cast<Model*>(&layer);
  if (!model) {
    const auto variables = layer.variables_in_saving_order();
    // An RNN keeps its variables in its "cell" object.
    h5::Group own = layer.variables_subgroup().empty() || variables.empty()
                        ? vars
                        : group.create_group(layer.variables_subgroup()).create_group("vars");
    for (size_t i = 0; i < variables.size(); ++i)
      own.write_floats(std::to_string(i), variables[i]->shape(), host_floats(*variables[i]),
                       variables[i]->value().dtype() == DType::int32);
    for (auto& [name, inner] : layer.wrapped_layers()) {
      h5::Group g = group.create_group(name);
      write_layer_tree(*inner, g);
    }
    return;
  }
  h5::Group layers = group.create_group("layers");
  std::map<std::string, int> used;
  for (Layer* child : saving_layers(*model)) {
    std::string name = weights_group_of(*child);
    const int n = used[name]++;
    if (n > 0) name += fmt::format("_{}", n);
    h5::Group g = layers.create_group(name);
    write_layer_tree(*child, g);
  }
}

void read_layer_tree(Layer& layer, const h5::Group& group, PendingAssignments& out) {
  auto* model = dynamic_cast<Model*>(&layer);
  if (!model) {
    for (auto& [name, inner] : layer.wrapped_layers()) {
      KCPP_CHECK(group.has_group(name) || inner->weights().empty(), IOError,
                 "{}: layer \"{}\" wraps \"{}\" but the file has no '{}' group", group.path(), layer.name(),
                 inner->name(), name);
      if (group.has_group(name)) read_layer_tree(*inner, group.group(name), out);
    }
    const auto variables = layer.variables_in_saving_order();
    if (variables.empty()) return;
    const std::string sub = layer.variables_subgroup();
    const std::string vars_path = sub.empty() ? "vars" : sub + "/vars";
    const bool present = sub.empty() ? group.has_group("vars") : group.has_group(sub) && group.group(sub).has_group("vars");
    KCPP_CHECK(present, IOError, "{}: layer \"{}\" has {} weights but the file has no '{}' group", group.path(),
               layer.name(), variables.size(), vars_path);
    const h5::Group vars = sub.empty() ? group.group("vars") : group.group(sub).group("vars");
    const size_t stored = vars.members().size();
    KCPP_CHECK(stored == variables.size(), ValueError,
               "{}: layer \"{}\" expects {} variables, the file holds {}", vars.path(), layer.name(), variables.size(),
               stored);
    for (size_t i = 0; i < variables.size(); ++i)
      out.add(variables[i], vars.read_floats(std::to_string(i), variables[i]->shape()));
    return;
  }
  KCPP_CHECK(group.has_group("layers") || saving_layers(*model).empty() || model->weights().empty(), IOError,
             "{}: model \"{}\" has no 'layers' group", group.path(), model->name());
  if (!group.has_group("layers")) return;
  const h5::Group layers = group.group("layers");
  std::map<std::string, int> used;
  for (Layer* child : saving_layers(*model)) {
    std::string name = weights_group_of(*child);
    const int n = used[name]++;
    if (n > 0) name += fmt::format("_{}", n);
    const bool has_weights = !child->weights().empty();
    if (!layers.has_group(name)) {
      KCPP_CHECK(!has_weights, ValueError, "{}: no group '{}' for layer \"{}\" ({} weights)", layers.path(), name,
                 child->name(), child->weights().size());
      continue;
    }
    read_layer_tree(*child, layers.group(name), out);
  }
}

// An optimizer's variables in Keras' order: iteration, learning rate (unless a schedule computes
// it), the slots, then extra state (Nadam). A LossScaleOptimizer's own come first: its iteration
// and learning rate (0, unused), step_counter and dynamic_scale, then the inner optimizer's.
void write_optimizer_vars(optimizers::Optimizer& opt, h5::Group& vars) {
  int i = 0;
  auto write_plain = [&](optimizers::Optimizer& o) {
    vars.write_int64_scalar(std::to_string(i++), o.iterations());
    if (!o.has_schedule()) vars.write_float_scalar(std::to_string(i++), o.learning_rate());
    for (Variable* slot : o.variables()) vars.write_floats(std::to_string(i++), slot->shape(), host_floats(*slot));
    for (float extra : o.extra_state()) vars.write_float_scalar(std::to_string(i++), extra);
  };
  if (auto* scaled = dynamic_cast<optimizers::LossScaleOptimizer*>(&opt)) {
    vars.write_int64_scalar(std::to_string(i++), 0);
    vars.write_float_scalar(std::to_string(i++), 0.f);
    vars.write_int64_scalar(std::to_string(i++), scaled->step_counter());
    vars.write_float_scalar(std::to_string(i++), scaled->loss_scale());
    write_plain(scaled->inner_optimizer());
  } else {
    write_plain(opt);
  }
}

void write_optimizer(Model& model, h5::Group& root) {
  optimizers::Optimizer* opt = model.optimizer();
  if (!opt) return;
  opt->build_for(model.trainable_weights());
  h5::Group group = root.create_group("optimizer");
  h5::Group vars = group.create_group("vars");
  write_optimizer_vars(*opt, vars);
  // Keras also writes the wrapped optimizer's own variables in a group of their own.
  if (auto* scaled = dynamic_cast<optimizers::LossScaleOptimizer*>(opt)) {
    h5::Group inner = group.create_group("inner_optimizer").create_group("vars");
    write_optimizer_vars(scaled->inner_optimizer(), inner);
  }
}

// Restores the optimizer state when the file's matches the compiled optimizer, else warns as Keras.
void read_optimizer(Model& model, const h5::Group& root, PendingAssignments& out, std::function<void()>& after) {
  optimizers::Optimizer* opt = model.optimizer();
  if (!root.has_group("optimizer") || !root.group("optimizer").has_group("vars")) return;
  const h5::Group vars = root.group("optimizer").group("vars");
  const size_t stored = vars.members().size();
  if (!opt) {
    if (stored > 0) detail::log_info("the file holds an optimizer state; the model is not compiled, so it is skipped");
    return;
  }
  opt->build_for(model.trainable_weights());
  auto* scaled = dynamic_cast<optimizers::LossScaleOptimizer*>(opt);
  optimizers::Optimizer& plain = scaled ? scaled->inner_optimizer() : *opt;
  const bool has_lr = !plain.has_schedule();
  const auto slots = plain.variables();
  const auto extra = plain.extra_state();
  const size_t own = scaled ? 4 : 0;
  const size_t expected = own + 1 + (has_lr ? 1 : 0) + slots.size() + extra.size();
  if (stored != expected) {
    detail::log_warn(fmt::format(
        "Skipping variable loading for optimizer '{}', because it has {} variables whereas the saved optimizer has {} "
        "variables.",
        opt->get_config()["name"].get<std::string>(), expected, stored));
    return;
  }
  size_t i = 0;
  std::optional<std::pair<float, int64_t>> scale_state;
  if (scaled) {
    i = 2;  // the wrapper's own iteration and learning rate are unused
    const int64_t counter = vars.read_int_scalar(std::to_string(i++));
    const float scale = vars.read_floats(std::to_string(i++), Shape{})[0];
    KCPP_CHECK(counter >= 0 && scale > 0 && std::isfinite(scale), ValueError,
               "{}: expected a loss-scale step_counter >= 0 and a positive finite dynamic_scale, received {} and {}",
               vars.path(), counter, scale);
    scale_state = {scale, counter};
  }
  const int64_t iterations = vars.read_int_scalar(std::to_string(i++));
  KCPP_CHECK(iterations >= 0, ValueError, "{}: a negative iteration count {}", vars.path(), iterations);
  std::optional<float> lr;
  if (has_lr) lr = vars.read_floats(std::to_string(i++), Shape{})[0];
  for (Variable* slot : slots) out.add(slot, vars.read_floats(std::to_string(i++), slot->shape()));
  std::vector<float> extras;
  for (size_t k = 0; k < extra.size(); ++k) extras.push_back(vars.read_floats(std::to_string(i++), Shape{})[0]);
  after = [target = &plain, scaled, scale_state, iterations, lr, extras] {
    target->set_iterations(iterations);
    if (lr) target->set_learning_rate(*lr);
    if (!extras.empty()) target->set_extra_state(extras);
    if (scale_state) scaled->set_scale_state(scale_state->first, scale_state->second);
  };
}

std::vector<char> keras3_weights_image(Model& model, bool include_optimizer) {
  h5::File file = h5::File::create_image("model.weights.h5");
  h5::Group root = file.root();
  write_layer_tree(model, root);
  if (include_optimizer) write_optimizer(model, root);
  return file.image();
}

void load_keras3_weights(Model& model, const h5::File& file, bool with_optimizer) {
  PendingAssignments pending;
  std::function<void()> after;
  const h5::Group root = file.root();
  read_layer_tree(model, root, pending);
  if (with_optimizer) read_optimizer(model, root, pending, after);
  pending.commit();
  if (after) after();
}

// Legacy HDF5 layout ---------------------------------------------------------------------------------
// model_weights (or the root, for weights-only files): attribute layer_names; one group per layer
// with attribute weight_names; weights matched to layers in order, or by name.

std::vector<Variable*> legacy_weights(Layer& layer) {
  std::vector<Variable*> out = layer.trainable_weights();
  for (Variable* v : layer.non_trainable_weights()) out.push_back(v);
  return out;
}

void write_legacy_weights(Model& model, h5::Group& group) {
  std::vector<std::string> names;
  for (Layer* l : model.layers()) names.push_back(l->name());
  group.write_string_list_attribute("layer_names", names);
  group.write_string_attribute("backend", "tensorflow");
  group.write_string_attribute("keras_version", kKerasFormatVersion);
  for (Layer* l : model.layers()) {
    h5::Group g = group.create_group(l->name());
    std::vector<std::string> weight_names;
    const auto ws = legacy_weights(*l);
    for (size_t i = 0; i < ws.size(); ++i) {
      // "<layer>/<weight>_<i>": unique within the group even for nested models' repeated names.
      std::string wname = ws[i]->name();
      if (wname.find('/') == std::string::npos) wname = l->name() + "/" + wname;
      wname += fmt::format("_{}", i);
      const auto slash = wname.rfind('/');
      h5::Group parent = g;
      std::string path;
      for (size_t start = 0; start < slash;) {
        const size_t next = wname.find('/', start);
        const std::string part = wname.substr(start, next - start);
        path += (path.empty() ? "" : "/") + part;
        parent = g.has_group(path) ? g.group(path) : parent.create_group(part);
        start = next + 1;
      }
      parent.write_floats(wname.substr(slash + 1), ws[i]->shape(), host_floats(*ws[i]),
                          ws[i]->value().dtype() == DType::int32);
      weight_names.push_back(wname);
    }
    g.write_string_list_attribute("weight_names", weight_names);
  }
  h5::Group top = group.create_group("top_level_model_weights");
  top.write_string_list_attribute("weight_names", {});
}

void load_legacy_weights(Model& model, const h5::Group& group, const LoadWeightsOptions& o) {
  const auto layer_names = group.read_string_list_attribute("layer_names");
  // Stored layers that hold weights, in file order.
  std::vector<std::pair<std::string, std::vector<std::string>>> stored;
  for (const auto& name : layer_names) {
    KCPP_CHECK(group.has_group(name), IOError, "{}: layer_names lists '{}' but there is no such group", group.path(),
               name);
    auto weight_names = group.group(name).read_string_list_attribute("weight_names");
    if (!weight_names.empty()) stored.emplace_back(name, std::move(weight_names));
  }
  std::vector<Layer*> targets;
  for (Layer* l : model.layers())
    if (!legacy_weights(*l).empty()) targets.push_back(l);
  PendingAssignments pending;
  auto load_layer = [&](Layer& layer, const std::pair<std::string, std::vector<std::string>>& entry) {
    const auto ws = legacy_weights(layer);
    const h5::Group g = group.group(entry.first);
    if (ws.size() != entry.second.size()) {
      const std::string msg =
          fmt::format("Layer '{}' expected {} weight(s), but the saved weights (group '{}') have {} element(s).",
                      layer.name(), ws.size(), entry.first, entry.second.size());
      if (o.skip_mismatch) {
        detail::log_warn("Skipping loading of weights for layer: " + msg);
        return;
      }
      throw ValueError(msg);
    }
    std::vector<std::vector<float>> values;
    for (size_t i = 0; i < ws.size(); ++i) {
      if (o.skip_mismatch) {
        const auto info = g.dataset_info(entry.second[i]);
        if (info.dims != ws[i]->shape().dims()) {
          detail::log_warn(fmt::format("Skipping loading weights for layer '{}': weight {} has shape {} in the file",
                                       layer.name(), ws[i]->name(), Shape(info.dims).to_string()));
          return;
        }
      }
      values.push_back(g.read_floats(entry.second[i], ws[i]->shape()));
    }
    for (size_t i = 0; i < ws.size(); ++i) pending.add(ws[i], std::move(values[i]));
  };
  if (o.by_name) {
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < stored.size(); ++i) index[stored[i].first] = i;
    for (Layer* l : targets) {
      auto it = index.find(l->name());
      if (it != index.end()) load_layer(*l, stored[it->second]);
    }
  } else {
    KCPP_CHECK(stored.size() == targets.size(), ValueError,
               "Layer count mismatch when loading weights from file. Model expected {} layers with weights, found {} "
               "saved layers with weights.",
               targets.size(), stored.size());
    for (size_t i = 0; i < targets.size(); ++i) load_layer(*targets[i], stored[i]);
  }
  pending.commit();
}

// Whole-model files ----------------------------------------------------------------------------------

int64_t weight_budget_for(uint64_t weights_bytes) {
  const uint64_t limit = std::min<uint64_t>(weights_bytes, static_cast<uint64_t>(INT64_MAX / kWeightBytesPerFileByte));
  return std::max<int64_t>(kWeightBudgetFloor, static_cast<int64_t>(limit) * kWeightBytesPerFileByte);
}

Config parse_json(const std::vector<char>& bytes, const std::string& what) {
  try {
    return Config::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::exception& e) {
    throw IOError(fmt::format("{}: not valid JSON: {}", what, e.what()));
  }
}

Config parse_json(const std::string& text, const std::string& what) {
  return parse_json(std::vector<char>(text.begin(), text.end()), what);
}

std::shared_ptr<Model> load_keras_zip(const std::string& path, const models::LoadModelOptions& o) {
  const zip::Limits json_limits{kMaxJsonBytes, kMaxExpansion};
  const auto names = zip::member_names(path);
  auto has = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  KCPP_CHECK(has("config.json"), IOError, "{}: not a Keras 3 .keras file: no config.json member", path);
  if (has("metadata.json")) {
    const Config meta = parse_json(zip::read_member(path, "metadata.json", json_limits), path + ": metadata.json");
    if (meta.is_object() && meta.contains("keras_version") && meta["keras_version"].is_string())
      detail::log_debug(fmt::format("{}: saved by Keras {}", path, meta["keras_version"].get<std::string>()));
  }
  const Config config = parse_json(zip::read_member(path, "config.json", json_limits), path + ": config.json");
  std::vector<char> weights;
  if (has("model.weights.h5"))
    weights = zip::read_member(path, "model.weights.h5", {kMaxWeightsBytes, kMaxExpansion});
  std::shared_ptr<Model> model;
  {
    detail::WeightBudgetScope budget(weight_budget_for(weights.size()));
    model = models::model_from_config(config);
  }
  if (o.compile && config.contains("compile_config") && config["compile_config"].is_object() &&
      !config["compile_config"].empty())
    model->compile_from_config(config["compile_config"]);
  if (!weights.empty()) {
    const h5::File file = h5::File::open_image(std::move(weights), path + ": model.weights.h5");
    load_keras3_weights(*model, file, true);
  } else {
    KCPP_CHECK(model->weights().empty(), IOError, "{}: the model has weights but the file has no model.weights.h5",
               path);
  }
  return model;
}

std::shared_ptr<Model> load_legacy_h5(const std::string& path, const models::LoadModelOptions& o) {
  const h5::File file = h5::File::open(path);
  const h5::Group root = file.root();
  KCPP_CHECK(root.has_attribute("model_config"), IOError,
             "{}: no model_config attribute: this is a weights-only file; build the model in C++ and call "
             "load_weights()",
             path);
  Config config = parse_json(root.read_string_attribute("model_config"), path + ": model_config");
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  std::shared_ptr<Model> model;
  {
    detail::WeightBudgetScope budget(weight_budget_for(ec ? 0 : size));
    model = models::model_from_config(config);
  }
  const h5::Group weights = root.has_group("model_weights") ? root.group("model_weights") : root;
  load_legacy_weights(*model, weights, {});
  if (o.compile && root.has_attribute("training_config")) {
    Config tc = parse_json(root.read_string_attribute("training_config"), path + ": training_config");
    if (tc.is_object()) {
      Config cc = tc;
      if (cc.contains("optimizer_config")) {
        cc["optimizer"] = cc["optimizer_config"];
        cc.erase("optimizer_config");
      }
      try {
        model->compile_from_config(cc);
      } catch (const Error& e) {
        detail::log_warn(fmt::format("{}: the model is loaded uncompiled: its training_config could not be used: {}",
                                     path, e.what()));
      }
    }
  }
  if (root.has_group("optimizer_weights"))
    detail::log_info(fmt::format("{}: legacy optimizer weights are not restored (as in Keras 3)", path));
  return model;
}

}  // namespace
}  // namespace saving

namespace models {

void save_model(Model& model, const std::string& path) {
  using namespace saving;
  if (ends_with(path, ".keras")) {
    const Config meta{{"keras_version", kKerasFormatVersion}, {"date_saved", date_saved()}};
    const std::string meta_text = meta.dump();
    const std::string config_text = model.to_json();
    const std::vector<char> weights = keras3_weights_image(model, true);
    const std::string archive = zip::make_archive({{"metadata.json", meta_text},
                                                   {"config.json", config_text},
                                                   {"model.weights.h5", std::string_view(weights.data(), weights.size())}});
    write_file_atomically(path, archive);
    return;
  }
  if (ends_with(path, ".h5") || ends_with(path, ".hdf5")) {
    KCPP_CHECK(!ends_with(path, ".weights.h5"), ValueError,
               "save: '{}' names a weights file; call save_weights() for .weights.h5, or save to .keras or .h5", path);
    h5::File file = h5::File::create_image(path);
    h5::Group root = file.root();
    root.write_string_attribute("backend", "tensorflow");
    root.write_string_attribute("keras_version", kKerasFormatVersion);
    Config mc = serialization::serialize_layer(model);
    root.write_string_attribute("model_config",
                                Config{{"class_name", mc["class_name"]}, {"config", mc["config"]}}.dump());
    if (!model.get_compile_config().is_null()) {
      Config tc = model.get_compile_config();
      tc["optimizer_config"] = Config{{"class_name", tc["optimizer"]["class_name"]}, {"config", tc["optimizer"]["config"]}};
      tc.erase("optimizer");
      root.write_string_attribute("training_config", tc.dump());
    }
    h5::Group weights = root.create_group("model_weights");
    write_legacy_weights(model, weights);
    const auto bytes = file.image();
    write_file_atomically(path, std::string_view(bytes.data(), bytes.size()));
    return;
  }
  throw ValueError(fmt::format(
      "save: expected a path ending in .keras (Keras 3's format) or .h5 (the legacy HDF5 format), received '{}'", path));
}

void save_weights_legacy_h5(Model& model, const std::string& path) {
  using namespace saving;
  KCPP_CHECK((ends_with(path, ".h5") || ends_with(path, ".hdf5")) && !ends_with(path, ".weights.h5"), ValueError,
             "save_weights_legacy_h5: expected a path ending in .h5 (not .weights.h5), received '{}'", path);
  h5::File file = h5::File::create_image(path);
  h5::Group root = file.root();
  write_legacy_weights(model, root);
  const auto bytes = file.image();
  write_file_atomically(path, std::string_view(bytes.data(), bytes.size()));
}

std::shared_ptr<Model> load_model(const std::string& path, LoadModelOptions options) {
  using namespace saving;
  if (ends_with(path, ".keras")) return load_keras_zip(path, options);
  if (ends_with(path, ".h5") || ends_with(path, ".hdf5")) return load_legacy_h5(path, options);
  throw ValueError(fmt::format(
      "load_model: expected a .keras or .h5 file, received '{}' (a kerascpp weights file loads with load_weights)",
      path));
}

}  // namespace models

namespace saving {
void save_keras_weights(Model& model, const std::string& path) {
  const auto bytes = keras3_weights_image(model, true);
  write_file_atomically(path, std::string_view(bytes.data(), bytes.size()));
}

void load_keras_weights(Model& model, const std::string& path, const LoadWeightsOptions& o) {
  if (ends_with(path, ".keras")) {
    auto bytes = zip::read_member(path, "model.weights.h5", {kMaxWeightsBytes, kMaxExpansion});
    const h5::File file = h5::File::open_image(std::move(bytes), path + ": model.weights.h5");
    KCPP_CHECK(!o.by_name, NotImplementedError, "load_weights: by_name applies to legacy .h5 files only");
    load_keras3_weights(model, file, true);
    return;
  }
  const h5::File file = h5::File::open(path);
  const h5::Group root = file.root();
  // Legacy files (applications' downloads, tf.keras): layer_names at the root or under model_weights.
  if (root.has_attribute("layer_names")) return load_legacy_weights(model, root, o);
  if (root.has_group("model_weights")) return load_legacy_weights(model, root.group("model_weights"), o);
  KCPP_CHECK(!o.by_name, NotImplementedError,
             "load_weights: by_name applies to legacy .h5 files only ({} is in Keras 3's layout)", path);
  load_keras3_weights(model, file, true);
}
}  // namespace saving

}  // namespace keras
