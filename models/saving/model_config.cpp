// Keras configs of whole models: Functional and Sequential get_config(), to_json(), and the models
// rebuilt from configs of both Keras dialects (Keras 3's "args"/"keras_history" nodes and Keras 2's
// nested [layer, node, tensor, kwargs] lists).
#include <optional>
#include <map>
#include <set>

#include "core/check.h"
#include "core/logging.h"
#include "layers/core/input_layer.h"
#include "layers/merging/merge.h"
#include "layers/recurrent/bidirectional.h"
#include "layers/recurrent/rnn.h"
#include "models/saving/saving.h"
#include "models/sequential.h"

namespace keras {

namespace {
Config tensor_ref(const std::string& layer, int64_t node, int64_t tensor) { return Config::array({layer, node, tensor}); }
}  // namespace

Config Model::get_config() const {
  Config c = Config::object();
  c["name"] = name();
  c["trainable"] = trainable();
  // Each layer's nodes in this model, numbered in graph order (Keras' node_index).
  std::map<const detail::SymbolicNode*, int64_t> node_index;
  std::map<const Layer*, std::vector<const detail::SymbolicNode*>> nodes_of;
  auto note = [&](const std::shared_ptr<detail::SymbolicNode>& node) {
    auto& list = nodes_of[node->layer.get()];
    node_index[node.get()] = static_cast<int64_t>(list.size());
    list.push_back(node.get());
  };
  for (const KerasTensor& in : inputs_) note(in.impl()->node);
  for (const auto& node : nodes_) note(node);
  const auto& order = ordered_layers_;

  auto history = [&](const KerasTensor& t) {
    const auto& node = t.impl()->node;
    // Keras counts a nested Functional model's construction node first (see functional_from_config).
    const int64_t offset = node->layer->class_name() == "Functional" ? 1 : 0;
    return tensor_ref(node->layer->name(), node_index.at(node.get()) + offset,
                      static_cast<int64_t>(t.impl()->output_index));
  };
  auto keras_tensor = [&](const KerasTensor& t) {
    return Config{{"class_name", "__keras_tensor__"},
                  {"config",
                   {{"shape", serialization::shape_to_config(t.shape())},
                    {"dtype", dtype_name(t.dtype())},
                    {"keras_history", history(t)}}}};
  };
  Config layers = Config::array();
  for (const auto& layer : order) {
    Config entry = serialization::serialize_layer(*layer);
    entry["name"] = layer->name();
    Config inbound = Config::array();
    for (const detail::SymbolicNode* node : nodes_of[layer.get()]) {
      if (node->inputs.empty()) continue;  // an input layer's own node
      // An RNN's inputs after its sequence are its initial states: Keras' initial_state argument.
      const bool states = node->inputs.size() > 1 && (dynamic_cast<const layers::RecurrentLayer*>(layer.get()) ||
                                                       dynamic_cast<const layers::Bidirectional*>(layer.get()));
      if (const auto signature = layer->call_signature()) {  // positional tensors, then keywords and flags
        Config positional = Config::array(), kwargs = Config::object();
        for (size_t i = 0; i < node->inputs.size(); ++i) {
          const std::string& keyword = node->arguments.input_keywords.at(i);
          if (keyword.empty())
            positional.push_back(keras_tensor(node->inputs[i]));
          else
            kwargs[keyword] = keras_tensor(node->inputs[i]);
        }
        for (const auto& [flag, value] : node->arguments.flags) kwargs[flag] = value;
        inbound.push_back(
            Config{{"args", signature->inputs_as_list ? Config::array({positional}) : positional}, {"kwargs", kwargs}});
        continue;
      }
      Config arg;
      Config kwargs = Config::object();
      if (node->inputs.size() == 1 || states) {
        arg = keras_tensor(node->inputs[0]);
      } else {
        arg = Config::array();
        for (const auto& in : node->inputs) arg.push_back(keras_tensor(in));
      }
      if (states) {
        kwargs["initial_state"] = Config::array();
        for (size_t i = 1; i < node->inputs.size(); ++i) kwargs["initial_state"].push_back(keras_tensor(node->inputs[i]));
      }
      Config args = Config::array({arg});
      for (const auto& constant : layer->call_constants()) args.push_back(constant);  // NotEqual's operand
      if (node->mask.defined()) kwargs["mask"] = keras_tensor(node->mask);
      inbound.push_back(Config{{"args", args}, {"kwargs", kwargs}});
    }
    entry["inbound_nodes"] = inbound;
    layers.push_back(std::move(entry));
  }
  c["layers"] = layers;
  Config ins = Config::array(), outs = Config::array();
  for (const auto& t : inputs_) ins.push_back(history(t));
  for (const auto& t : outputs_) outs.push_back(history(t));
  c["input_layers"] = single_input_ ? ins[0] : ins;
  c["output_layers"] = single_output_ ? outs[0] : outs;
  return c;
}

Config Sequential::get_config() const {
  Config c = Layer::get_config();
  Config list = Config::array();
  if (input_) list.push_back(serialization::serialize_layer(*input_));
  for (const auto& l : layers_) list.push_back(serialization::serialize_layer(*l));
  c["layers"] = list;
  if (input_) c["build_input_shape"] = serialization::shape_to_config(input_->batch_shape());
  return c;
}

std::string Model::to_json(int indent) const {
  Config out = serialization::serialize_layer(*this);
  out.erase("build_config");
  if (const auto* seq = dynamic_cast<const Sequential*>(this); seq && seq->input_layer())
    out["build_config"] = Config{{"input_shape", serialization::shape_to_config(seq->input_layer()->batch_shape())}};
  else if (!inputs_.empty())
    out["build_config"] = Config{{"input_shape", nullptr}};
  if (!compile_config_.is_null()) out["compile_config"] = compile_config_;
  return out.dump(indent);
}

void Model::compile_from_config(const Config& cc) {
  serialization::ConfigReader r(cc, "compile_config");
  CompileOptions o;
  if (r.has("optimizer")) o.optimizer = optimizers::deserialize(r.raw("optimizer"));
  KCPP_CHECK(r.has("loss"), ValueError, "compile_config: expected a \"loss\", received {}", cc.dump().substr(0, 200));
  auto loss_ref = [](const Config& l) {
    return l.is_string() ? LossRef(l.get<std::string>()) : LossRef(losses::deserialize(l));
  };
  const Config& loss = r.raw("loss");
  if (loss.is_array()) {
    std::vector<LossRef> refs;
    for (const auto& l : loss) refs.push_back(loss_ref(l));
    o.loss = LossList(std::move(refs));
  } else if (loss.is_object() && !loss.contains("class_name")) {  // Keras' dict: a loss per output name
    std::map<std::string, LossRef> by_output;
    for (const auto& [key, l] : loss.items())
      if (!l.is_null()) by_output.emplace(key, loss_ref(l));
    o.loss = LossList(std::move(by_output));
  } else {
    o.loss = loss_ref(loss);
  }
  if (r.has("loss_weights")) {
    const Config& w = r.raw("loss_weights");
    KCPP_CHECK(w.is_array() || w.is_object(), ValueError,
               "compile_config: \"loss_weights\" must be a list or a dict, received {}", w.dump().substr(0, 200));
    std::vector<float> in_order;
    std::map<std::string, float> by_output;
    for (const auto& [key, e] : w.items()) {
      KCPP_CHECK(e.is_number(), ValueError, "compile_config: expected numbers in \"loss_weights\", received {}",
                 e.dump().substr(0, 100));
      if (w.is_array()) in_order.push_back(e.get<float>());
      else by_output[key] = e.get<float>();
    }
    o.loss_weights = w.is_array() ? LossWeights(std::move(in_order)) : LossWeights(std::move(by_output));
  }
  if (r.has("metrics")) {
    // A list for every output, Keras' dict per output name, or (Keras 2) a list of lists per output.
    const Config& m = r.raw("metrics");
    auto metric_ref = [](const Config& e) {
      if (e.is_string()) return MetricRef(e.get<std::string>());
      return MetricRef(metrics::deserialize(e));
    };
    auto metric_list = [&](const Config& list) {
      std::vector<MetricRef> out;
      if (list.is_array()) {
        for (const auto& e : list)
          if (!e.is_null()) out.push_back(metric_ref(e));
      } else if (!list.is_null()) {
        out.push_back(metric_ref(list));
      }
      return out;
    };
    if (m.is_object() && !m.contains("class_name")) {
      MetricList::PerOutput by_output;
      for (const auto& [key, list] : m.items()) by_output[key] = metric_list(list);
      o.metrics = MetricList(std::move(by_output));
    } else if (m.is_array() && !m.empty() && std::all_of(m.begin(), m.end(), [](const Config& e) {
                 return e.is_array() || e.is_null();
               })) {
      KCPP_CHECK(m.size() == num_outputs(), ValueError,
                 "compile_config: \"metrics\" has {} lists, one per output, but the model has {} outputs", m.size(),
                 num_outputs());
      MetricList::PerOutput by_output;
      for (size_t i = 0; i < m.size(); ++i) by_output[output_name(i)] = metric_list(m[i]);
      o.metrics = MetricList(std::move(by_output));
    } else {
      o.metrics = MetricList(metric_list(m));
    }
  }
  // Metrics weighted by sample_weight are not supported yet: say so rather than drop them quietly.
  if (r.has("weighted_metrics") && !(r.raw("weighted_metrics").is_array() && r.raw("weighted_metrics").empty()))
    detail::log_warn(fmt::format("compile_config: weighted_metrics {} are not supported by kerascpp and are left out",
                                 cc["weighted_metrics"].dump().substr(0, 200)));
  for (const char* k : {"weighted_metrics", "run_eagerly", "steps_per_execution", "jit_compile", "auto_scale_loss"})
    if (cc.contains(k)) (void)r.raw(k);
  r.finish();
  compile(std::move(o));
}

namespace models {
namespace {

// Keras 3 nodes: {"args": [tensor or [tensors]], "kwargs": {...}}; a tensor is
// {"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, index]}}.
// Keras 2 nodes: [[layer, node, index, kwargs], ...].
struct TensorRef {
  std::string layer;
  int64_t node = 0, index = 0;
};

TensorRef parse_history(const Config& h, const std::string& what) {
  KCPP_CHECK(h.is_array() && h.size() >= 3 && h[0].is_string() && h[1].is_number_integer() &&
                 h[2].is_number_integer(),
             ValueError, "{}: expected [layer name, node index, tensor index], received {}", what,
             h.dump().substr(0, 200));
  return {h[0].get<std::string>(), h[1].get<int64_t>(), h[2].get<int64_t>()};
}

void collect_keras3_tensors(const Config& v, const std::string& what, std::vector<TensorRef>& out) {
  if (v.is_object() && v.value("class_name", "") == "__keras_tensor__") {
    KCPP_CHECK(v.contains("config") && v["config"].contains("keras_history"), ValueError,
               "{}: a __keras_tensor__ without keras_history", what);
    out.push_back(parse_history(v["config"]["keras_history"], what));
  } else if (v.is_array()) {
    for (const auto& e : v) collect_keras3_tensors(e, what, out);
  }
}

// One call: its input tensors, the mask passed explicitly (Keras 3 writes `mask=` for masked calls),
// and the non-tensor arguments after the tensors (NotEqual's operand).
struct NodeSpec {
  std::vector<TensorRef> inputs;
  std::optional<TensorRef> mask;
  Config constants = Config::array();
  // Other keyword arguments, for layers that take them (Layer::call_signature): tensors by keyword,
  // boolean flags, anything else by its text (refused where the layer is known).
  std::vector<std::pair<std::string, std::vector<TensorRef>>> keyword_tensors;
  std::map<std::string, bool> flags;
  std::vector<std::pair<std::string, std::string>> other_kwargs;
};

// Keras 2 writes a tensor as [layer name, node index, tensor index] (in call arguments too).
void collect_keras2_tensors(const Config& v, const std::string& what, std::vector<TensorRef>& out) {
  if (!v.is_array()) return;
  if (v.size() >= 3 && v[0].is_string() && v[1].is_number_integer() && v[2].is_number_integer()) {
    out.push_back(parse_history(v, what));
    return;
  }
  for (const auto& e : v) collect_keras2_tensors(e, what, out);
}

using TensorCollector = void (*)(const Config&, const std::string&, std::vector<TensorRef>&);

// The keyword arguments of a call: its explicit mask, an RNN's initial states (inputs after its
// sequence), other tensors by keyword, boolean flags, and anything else by its text.
void read_kwargs(const Config& kwargs, TensorCollector collect, const std::string& what, NodeSpec& out) {
  if (!kwargs.is_object()) return;
  for (const auto& [key, value] : kwargs.items()) {
    if (key == "training" || value.is_null()) continue;
    std::vector<TensorRef> tensors;
    collect(value, what, tensors);
    if (key == "mask") {
      KCPP_CHECK(tensors.size() == 1, NotImplementedError, "{}: expected one mask tensor, received {}", what,
                 value.dump().substr(0, 200));
      out.mask = tensors[0];
    } else if (key == "initial_state") {  // an RNN's: its states follow the sequence among the call's inputs
      out.inputs.insert(out.inputs.end(), tensors.begin(), tensors.end());
    } else if (!tensors.empty()) {
      out.keyword_tensors.emplace_back(key, tensors);
    } else if (value.is_boolean()) {
      out.flags[key] = value.get<bool>();
    } else {
      out.other_kwargs.emplace_back(key, value.dump().substr(0, 200));
    }
  }
}

NodeSpec parse_node(const Config& node, const std::string& what) {
  NodeSpec out;
  if (node.is_object()) {
    KCPP_CHECK(node.contains("args") && node["args"].is_array(), ValueError, "{}: expected \"args\" in {}", what,
               node.dump().substr(0, 200));
    for (const auto& arg : node["args"]) {
      const bool tensors = (arg.is_object() && arg.contains("class_name")) || arg.is_array();
      if (tensors)
        collect_keras3_tensors(arg, what, out.inputs);
      else
        out.constants.push_back(arg);
    }
    if (node.contains("kwargs")) read_kwargs(node["kwargs"], &collect_keras3_tensors, what, out);
  } else if (node.is_array()) {
    // Keras 2: one [layer, node, index, kwargs] per tensor of the first argument; the other
    // arguments (a MultiHeadAttention's value, an RNN's initial_state) are in kwargs, the same in each.
    for (const auto& e : node) out.inputs.push_back(parse_history(e, what));
    if (!node.empty() && node[0].is_array() && node[0].size() >= 4)
      read_kwargs(node[0][3], &collect_keras2_tensors, what, out);
  } else {
    throw ValueError(fmt::format("{}: unexpected inbound node {}", what, node.dump().substr(0, 200)));
  }
  KCPP_CHECK(!out.inputs.empty() || !out.keyword_tensors.empty(), ValueError,
             "{}: an inbound node without input tensors", what);
  return out;
}

// A call's inputs in the order kerascpp records them (the positional ones, which Keras may pass by
// name as `mha(query=q, value=v)`, then the keyword tensors) with their keywords, checked against
// what its layer takes: any other argument would be dropped silently and change what the model computes.
struct OrderedCall {
  std::vector<TensorRef> inputs;
  CallArguments args;
};
OrderedCall order_call(const NodeSpec& spec, const Layer& layer, const std::string& what) {
  for (const auto& [key, text] : spec.other_kwargs)
    throw NotImplementedError(fmt::format("{}: the call argument \"{}\" ({}) is not supported", what, key, text));
  OrderedCall out{spec.inputs, {}};
  const auto signature = layer.call_signature();
  if (!signature) {
    for (const auto& [key, tensors] : spec.keyword_tensors)
      throw NotImplementedError(fmt::format("{}: the call argument \"{}\" (a tensor) is not supported", what, key));
    for (const auto& [key, value] : spec.flags)
      KCPP_CHECK(!value, NotImplementedError, "{}: the call argument \"{}\" (true) is not supported", what, key);
    return out;
  }
  const auto& positional = signature->positional;
  auto add = [&](const std::vector<TensorRef>& tensors, const std::string& keyword) {
    out.inputs.insert(out.inputs.end(), tensors.begin(), tensors.end());
    out.args.input_keywords.insert(out.args.input_keywords.end(), tensors.size(), keyword);
  };
  out.args.input_keywords.assign(spec.inputs.size(), "");
  for (const std::string& name : positional)
    for (const auto& [key, tensors] : spec.keyword_tensors)
      if (key == name) add(tensors, "");
  for (const auto& [key, tensors] : spec.keyword_tensors) {
    if (std::find(positional.begin(), positional.end(), key) != positional.end()) continue;
    KCPP_CHECK(tensors.size() == 1, NotImplementedError, "{}: expected one tensor for the call argument \"{}\", received {}",
               what, key, tensors.size());
    add(tensors, key);
  }
  out.args.flags = spec.flags;
  return out;
}

std::vector<TensorRef> parse_endpoints(const Config& v, const std::string& what) {
  KCPP_CHECK(v.is_array() && !v.empty(), ValueError, "{}: expected a list of [layer, node, index], received {}", what,
             v.dump().substr(0, 200));
  if (v[0].is_string()) return {parse_history(v, what)};  // a single endpoint, not nested
  std::vector<TensorRef> out;
  for (const auto& e : v) out.push_back(parse_history(e, what));
  return out;
}

std::shared_ptr<Model> functional_from_config(const Config& config) {
  serialization::ConfigReader r(config, "Functional config");
  const std::string name = r.name();
  const Config& layer_list = r.raw("layers");
  KCPP_CHECK(layer_list.is_array(), ValueError, "Functional config: expected \"layers\" to be a list");
  struct Pending {
    std::string name;
    std::shared_ptr<Layer> layer;
    std::vector<NodeSpec> nodes;
    size_t done = 0;
  };
  std::vector<Pending> pending;
  std::map<std::string, size_t> by_name;
  // (layer, node) -> output tensor
  std::map<std::pair<std::string, int64_t>, std::vector<KerasTensor>> outputs;  // every output of each call
  for (const auto& entry : layer_list) {
    KCPP_CHECK(entry.is_object(), ValueError, "Functional config: expected layer objects in \"layers\"");
    std::shared_ptr<Layer> layer = serialization::deserialize_layer(entry);
    std::string layer_name = entry.contains("name") && entry["name"].is_string() ? entry["name"].get<std::string>()
                                                                                  : layer->name();
    KCPP_CHECK(!by_name.count(layer_name), ValueError, "Functional config: two layers are named \"{}\"", layer_name);
    const std::string what = fmt::format("Functional config, layer \"{}\"", layer_name);
    Pending p{layer_name, layer, {}, 0};
    if (entry.contains("inbound_nodes") && entry["inbound_nodes"].is_array())
      for (const auto& node : entry["inbound_nodes"]) p.nodes.push_back(parse_node(node, what));
    if (auto input = std::dynamic_pointer_cast<layers::InputLayer>(layer)) {
      KCPP_CHECK(p.nodes.empty(), ValueError, "{}: an InputLayer cannot have inbound nodes", what);
      outputs[{layer_name, 0}] = {layers::Input(input)};
    }
    by_name[layer_name] = pending.size();
    pending.push_back(std::move(p));
  }
  // Node indices of nested models: Keras counts a nested Functional model's own construction node
  // (Keras 3: Functional only; Keras 2: any nested network built from an Input), so references
  // to it are one higher than its call number; Keras 3 writes 0 for "its latest call".
  bool keras2 = false;
  for (const auto& entry : layer_list)
    if (entry.is_object() && entry.contains("inbound_nodes") && entry["inbound_nodes"].is_array() &&
        !entry["inbound_nodes"].empty() && entry["inbound_nodes"][0].is_array())
      keras2 = true;
  // Files from tf.keras 2 combine masks in merges as it did.
  if (keras2)
    for (const Pending& p : pending)
      if (auto merge = std::dynamic_pointer_cast<layers::Merge>(p.layer)) merge->use_keras2_mask_rule(true);
  auto offset_of = [&](const Layer& layer) -> int64_t {
    if (layer.class_name() == "Functional") return 1;
    if (const auto* seq = dynamic_cast<const Sequential*>(&layer); seq && keras2 && seq->input_layer()) return 1;
    return 0;
  };
  auto lookup = [&](const TensorRef& ref) -> const KerasTensor* {
    auto found = by_name.find(ref.layer);
    if (found == by_name.end()) return nullptr;
    const Pending& src = pending[found->second];
    int64_t call = ref.node - offset_of(*src.layer);
    if (call < 0) call = static_cast<int64_t>(src.done) - 1;  // Keras 3's "latest call"
    auto it = outputs.find({ref.layer, call});
    if (it == outputs.end()) return nullptr;
    KCPP_CHECK(ref.index >= 0 && static_cast<size_t>(ref.index) < it->second.size(), ValueError,
               "Functional config: output {} of \"{}\" is read, but that call has {} output(s)", ref.index, ref.layer,
               it->second.size());
    return &it->second[static_cast<size_t>(ref.index)];
  };

  // Calls each layer on its inputs once they exist, in passes, as Keras' functional_from_config.
  for (bool progress = true; progress;) {
    progress = false;
    for (size_t i = 0; i < pending.size(); ++i) {
      Pending& p = pending[i];
      while (p.done < p.nodes.size()) {
        const NodeSpec& spec = p.nodes[p.done];
        const std::string what = fmt::format("Functional config, layer \"{}\"", p.name);
        const auto [ordered, args] = order_call(spec, *p.layer, what);
        std::vector<TensorRef> refs = ordered;
        if (spec.mask) refs.push_back(*spec.mask);
        std::vector<KerasTensor> ins;
        for (const TensorRef& ref : refs) {
          KCPP_CHECK(by_name.count(ref.layer), ValueError,
                     "Functional config: layer \"{}\" reads from \"{}\", which is not in the config", p.layer->name(),
                     ref.layer);
          const KerasTensor* t = lookup(ref);
          if (!t) break;
          ins.push_back(*t);
        }
        if (ins.size() != refs.size()) break;
        KerasTensor mask;
        if (spec.mask) {
          mask = ins.back();
          ins.pop_back();
        }
        if (!spec.constants.empty()) p.layer->set_call_constants(spec.constants);
        KerasTensor out = p.layer->call_signature() ? p.layer->call_symbolic(ins, args)
                          : mask.defined()          ? (*p.layer)(ins.at(0), mask)
                          : ins.size() == 1         ? (*p.layer)(ins[0])
                                                    : (*p.layer)(ins);
        if (keras2) out.impl()->node->keras2_masks = true;
        outputs[{p.name, static_cast<int64_t>(p.done)}] = out.all_outputs();
        ++p.done;
        progress = true;
      }
    }
  }
  for (const auto& p : pending)
    KCPP_CHECK(p.done == p.nodes.size(), ValueError,
               "Functional config: the inputs of layer \"{}\" (call {}) are never produced: the graph is incomplete",
               p.layer->name(), p.done);
  auto endpoint = [&](const TensorRef& ref, const char* what) {
    const KerasTensor* t = lookup(ref);
    KCPP_CHECK(t != nullptr, ValueError, "Functional config: {} [\"{}\", {}, {}] is not produced by the graph", what,
               ref.layer, ref.node, ref.index);
    return *t;
  };
  std::vector<KerasTensor> ins, outs;
  const Config& in_refs = r.raw("input_layers");
  const Config& out_refs = r.raw("output_layers");
  for (const auto& ref : parse_endpoints(in_refs, "Functional config: input_layers"))
    ins.push_back(endpoint(ref, "input"));
  for (const auto& ref : parse_endpoints(out_refs, "Functional config: output_layers"))
    outs.push_back(endpoint(ref, "output"));
  // A flat [name, node, index] means the model was made from one tensor, not a list of one.
  const bool flat_in = in_refs.is_array() && !in_refs.empty() && in_refs[0].is_string();
  const bool flat_out = out_refs.is_array() && !out_refs.empty() && out_refs[0].is_string();
  auto model = std::make_shared<Model>(flat_in ? KerasTensorList(ins[0]) : KerasTensorList(ins),
                                       flat_out ? KerasTensorList(outs[0]) : KerasTensorList(outs), name);
  r.finish(*model);
  return model;
}

std::shared_ptr<Model> sequential_from_config(const Config& config) {
  // Keras 2.0 wrote a Sequential config as the bare list of layers.
  const Config wrapped = config.is_array() ? Config{{"layers", config}} : Config();
  serialization::ConfigReader r(config.is_array() ? wrapped : config, "Sequential config");
  const std::string name = r.name();
  const Config& layer_list = r.raw("layers");
  KCPP_CHECK(layer_list.is_array(), ValueError, "Sequential config: expected \"layers\" to be a list");
  auto model = std::make_shared<Sequential>(std::vector<LayerRef>{}, name);
  bool first = true;
  for (const auto& entry : layer_list) {
    KCPP_CHECK(entry.is_object(), ValueError, "Sequential config: expected layer objects in \"layers\"");
    // Keras 2 puts the input shape on the first layer: batch_input_shape in its config.
    if (first && entry.contains("config") && entry["config"].is_object() &&
        entry.value("class_name", "") != "InputLayer") {
      const Config& lc = entry["config"];
      const char* key = lc.contains("batch_input_shape") ? "batch_input_shape"
                        : lc.contains("batch_shape")     ? "batch_shape"
                                                         : nullptr;
      if (key && lc[key].is_array()) {
        const PartialShape batch = serialization::shape_from_config(lc[key], "Sequential config: " + std::string(key));
        KCPP_CHECK(!batch.empty(), ValueError, "Sequential config: an empty {}", key);
        model->add(layers::Input(PartialShape(batch.begin() + 1, batch.end())));
      }
    }
    first = false;
    model->add(serialization::deserialize_layer(entry));
  }
  const bool has_build_shape = r.has("build_input_shape");
  if (has_build_shape) (void)r.raw("build_input_shape");
  if (!model->input_layer() && has_build_shape) {
    const PartialShape batch = r.shape("build_input_shape");
    if (!batch.empty()) model->build_for(batch);
  }
  r.finish(*model);
  return model;
}

const bool registered = [] {
  register_layer_class("Functional", [](const Config& c) -> std::shared_ptr<Layer> { return functional_from_config(c); });
  register_layer_class("Model", [](const Config& c) -> std::shared_ptr<Layer> { return functional_from_config(c); });
  register_layer_class("Sequential", [](const Config& c) -> std::shared_ptr<Layer> { return sequential_from_config(c); });
  return true;
}();

}  // namespace

std::shared_ptr<Model> model_from_config(const Config& serialized) {
  (void)registered;
  std::shared_ptr<Layer> layer = serialization::deserialize_layer(serialized);
  auto model = std::dynamic_pointer_cast<Model>(layer);
  KCPP_CHECK(model != nullptr, ValueError, "model_from_config: expected a model (Sequential or Functional), received {}",
             layer->class_name());
  return model;  // not compiled, as Keras' model_from_json (load_model applies compile_config)
}

std::shared_ptr<Model> model_from_json(const std::string& json) {
  Config parsed;
  try {
    parsed = Config::parse(json);
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(fmt::format("model_from_json: the text is not valid JSON: {}", e.what()));
  }
  return model_from_config(parsed);
}

}  // namespace models
}  // namespace keras
