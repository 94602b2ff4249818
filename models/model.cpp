#include "models/model.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <unordered_map>

#include "core/registry.h"
#include "core/autograd.h"
#include "core/check.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/step_recording.h"
#include "distributed/strategy.h"
#include "layers/activations/activation_layers.h"
#include "layers/convolutional/conv2d.h"
#include "layers/pooling/pooling2d.h"
#include "layers/core/input_layer.h"
#include "layers/core/simple_layers.h"
#include "layers/normalization/batch_normalization.h"
#include "models/datasets/dataset.h"
#include "models/step_graphs.h"
#include "models/saving/file_io.h"
#include "models/saving/keras_file.h"
#include "models/saving/saving.h"
#include "models/saving/weights_file.h"

namespace keras {

OptimizerRef::OptimizerRef(const char* name) : ptr_(optimizers::get(name)) {}
OptimizerRef::OptimizerRef(const std::string& name) : ptr_(optimizers::get(name)) {}
LossRef::LossRef(const char* name) : ptr_(losses::get(name)), given_name_(name) {}
LossRef::LossRef(const std::string& name) : ptr_(losses::get(name)), given_name_(name) {}
Config LossRef::serialized() const {
  // Keras' full name for one given by name: Keras 3.15 cannot read its own legacy .h5 with "mse".
  if (!given_name_.empty() && ptr_) return ptr_->name();
  return ptr_ ? ptr_->serialized() : Config(nullptr);
}

// A model leaves casting to its layers, each by its own policy (Keras' Functional does not convert inputs).
Model::Model(std::string class_name, std::string name) : Layer(std::move(class_name), std::move(name)) {
  set_autocast(false);
}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;

// The Functional graph ------------------------------------------------------------------------------------

Model::Model(KerasTensorList inputs, KerasTensorList outputs, std::string name)
    : Layer("Functional", std::move(name)),
      inputs_(inputs.items()),
      outputs_(outputs.items()),
      single_input_(inputs.single()),
      single_output_(outputs.single()) {
  set_autocast(false);
  build_graph();
  find_folded_chains();
}

bool Model::is_plain_relu(const Layer& l) {
  // Sequential's forward asks on every call: the layers' own fields, not their configs.
  if (const auto* a = dynamic_cast<const layers::Activation*>(&l)) return a->activation() == "relu";
  const auto* r = dynamic_cast<const layers::ReLU*>(&l);
  if (!r) return false;
  const layers::ReLUOptions& o = r->options();
  return !o.max_value && o.negative_slope == 0.f && o.threshold == 0.f;
}

bool Model::foldable_conv(const Layer& l) {
  const auto* conv = dynamic_cast<const layers::Conv2D*>(&l);
  return conv && l.class_name() == "Conv2D" && conv->can_fold_batch_norm();
}

bool Model::foldable_max_pool(const Layer& conv, const Layer& pool) {
  const auto* c = dynamic_cast<const layers::Conv2D*>(&conv);
  return c && conv.class_name() == "Conv2D" && c->can_fold_max_pool() && pool.class_name() == "MaxPooling2D" &&
         dynamic_cast<const layers::Pooling2D*>(&pool) && !pool.activity_regularizer() && pool.built();
}

bool Model::foldable_batch_norm(const Layer& l) {
  return l.class_name() == "BatchNormalization" && dynamic_cast<const layers::BatchNormalization*>(&l) &&
         !l.activity_regularizer();
}

void Model::find_folded_chains() {
  // Who reads each symbolic tensor: the nodes, and the model's outputs.
  std::unordered_map<const detail::KerasTensorImpl*, std::vector<const detail::SymbolicNode*>> readers;
  std::set<const detail::KerasTensorImpl*> model_outputs;
  for (const auto& node : nodes_)
    for (const KerasTensor& t : node->all_inputs()) readers[t.impl().get()].push_back(node.get());
  for (const KerasTensor& t : outputs_) model_outputs.insert(t.impl().get());
  // The single node reading `node`'s single output, when nothing else does: one with a single
  // input, or (`add`) the Add of two tensors, a residual block's sum.
  auto sole_reader = [&](const detail::SymbolicNode& node, bool add = false) -> const detail::SymbolicNode* {
    if (node.outputs.size() != 1) return nullptr;
    const auto out = node.outputs[0].lock();
    if (!out || model_outputs.count(out.get())) return nullptr;
    const auto it = readers.find(out.get());
    if (it == readers.end() || it->second.size() != 1) return nullptr;
    const detail::SymbolicNode* r = it->second[0];
    const bool shape = add ? r->layer->class_name() == "Add" && r->inputs.size() == 2 && r->outputs.size() == 1
                           : r->inputs.size() == 1;
    return shape && !r->mask.defined() && !r->layer->activity_regularizer() ? r : nullptr;
  };
  for (const auto& node : nodes_) {
    if (!foldable_conv(*node->layer) || node->inputs.size() != 1) continue;
    const detail::SymbolicNode* bn = sole_reader(*node);
    if (!bn || !foldable_batch_norm(*bn->layer)) continue;
    const detail::SymbolicNode* act = sole_reader(*bn);
    FoldedChain chain{bn, act && is_plain_relu(*act->layer) ? act : nullptr};
    if (const detail::SymbolicNode* add = sole_reader(*bn, true)) {
      chain.add = add;
      chain.shortcut = add->inputs[0].impl() == bn->outputs[0].lock() ? 1 : 0;
      const detail::SymbolicNode* after = sole_reader(*add);
      chain.add_relu = after && is_plain_relu(*after->layer) ? after : nullptr;
    }
    folded_chains_[node.get()] = chain;
  }
  for (const auto& node : nodes_) {
    if (node->inputs.size() != 1 || folded_chains_.count(node.get())) continue;
    const detail::SymbolicNode* pool = sole_reader(*node);
    if (pool && foldable_max_pool(*node->layer, *pool->layer)) pooled_convs_[node.get()] = pool;
  }
}

void Model::build_graph() {
  KCPP_CHECK(!inputs_.empty() && !outputs_.empty(), ValueError, "Model \"{}\": inputs and outputs must not be empty",
             name());
  std::set<const detail::KerasTensorImpl*> input_set;
  for (const KerasTensor& t : inputs_) {
    KCPP_CHECK(t.defined() && t.impl()->node && t.impl()->node->inputs.empty(), ValueError,
               "Model \"{}\": every input must come from layers::Input, received {}", name(), t.to_string());
    input_set.insert(t.impl().get());
  }
  // Depth-first from the outputs: each node after the nodes it reads.
  std::set<const detail::SymbolicNode*> done, active;
  std::function<void(const KerasTensor&)> visit = [&](const KerasTensor& t) {
    KCPP_CHECK(t.defined() && t.impl()->node, ValueError, "Model \"{}\": {} was not produced by a layer", name(),
               t.to_string());
    if (input_set.count(t.impl().get())) return;
    const auto& node = t.impl()->node;
    if (done.count(node.get())) return;
    KCPP_CHECK(node->inputs.size() > 0, ValueError,
               "Model \"{}\": the graph needs an input that is not in the model's inputs: {} (from layer \"{}\"). "
               "Pass every layers::Input the outputs depend on.",
               name(), t.to_string(), node->layer->name());
    KCPP_CHECK(!active.count(node.get()), ValueError, "Model \"{}\": the graph has a cycle", name());
    active.insert(node.get());
    for (const KerasTensor& in : node->all_inputs()) visit(in);
    active.erase(node.get());
    done.insert(node.get());
    nodes_.push_back(node);
  };
  for (const KerasTensor& t : outputs_) visit(t);
  order_layers_as_keras();
  built_for_graph_ = true;
}

// Keras' map_graph: layers sorted by depth (farthest from the outputs first), ties broken by the
// order a depth-first walk from the outputs meets them. File layouts depend on this order.
void Model::order_layers_as_keras() {
  std::set<const detail::KerasTensorImpl*> input_set;
  for (const KerasTensor& t : inputs_) input_set.insert(t.impl().get());
  std::map<const Layer*, int64_t> traversal;
  std::map<const Layer*, std::shared_ptr<Layer>> owner;
  std::set<const detail::SymbolicNode*> finished;
  std::vector<const detail::SymbolicNode*> post_order;
  std::function<void(const KerasTensor&)> walk = [&](const KerasTensor& t) {
    const auto& node = t.impl()->node;
    if (finished.count(node.get())) return;
    const Layer* layer = node->layer.get();
    if (!traversal.count(layer)) {
      traversal[layer] = static_cast<int64_t>(traversal.size());
      owner[layer] = node->layer;
    }
    if (!node->inputs.empty() && !input_set.count(t.impl().get()))
      for (const KerasTensor& in : node->all_inputs()) walk(in);
    finished.insert(node.get());
    post_order.push_back(node.get());
  };
  for (const KerasTensor& t : outputs_) walk(t);
  std::map<const detail::SymbolicNode*, int64_t> node_depth;
  std::map<const Layer*, int64_t> layer_depth;
  for (auto it = post_order.rbegin(); it != post_order.rend(); ++it) {
    const detail::SymbolicNode* node = *it;
    int64_t depth = std::max(node_depth[node], layer_depth[node->layer.get()]);
    layer_depth[node->layer.get()] = depth;
    node_depth[node] = depth;
    for (const KerasTensor& in : node->all_inputs()) {
      const auto* parent = in.impl()->node.get();
      node_depth[parent] = std::max(depth + 1, node_depth[parent]);
    }
  }
  for (const KerasTensor& t : inputs_) {  // inputs the outputs do not use
    const Layer* layer = t.impl()->node->layer.get();
    if (!layer_depth.count(layer)) {
      layer_depth[layer] = 0;
      traversal[layer] = -1;
      owner[layer] = t.impl()->node->layer;
    }
  }
  ordered_layers_.clear();
  for (const auto& [layer, l] : owner) ordered_layers_.push_back(l);
  std::stable_sort(ordered_layers_.begin(), ordered_layers_.end(), [&](const auto& a, const auto& b) {
    const int64_t da = layer_depth[a.get()], db = layer_depth[b.get()];
    return da != db ? da > db : traversal[a.get()] < traversal[b.get()];
  });
}

std::vector<Layer*> Model::layers() const {
  std::vector<Layer*> out;
  for (const auto& l : ordered_layers_)
    if (!l->is_operation()) out.push_back(l.get());
  return out;
}

std::vector<Tensor> Model::forward(const std::vector<Tensor>& x, bool training, const std::vector<bool>& logits,
                                   std::vector<Tensor>* output_masks) {
  KCPP_CHECK(x.size() == inputs_.size(), ValueError,
             "Model \"{}\" expects {} input(s), but it received {} input tensors", name(), inputs_.size(), x.size());
  std::unordered_map<const detail::KerasTensorImpl*, Tensor> values;
  for (size_t i = 0; i < x.size(); ++i) {
    auto& input_layer = static_cast<layers::InputLayer&>(inputs_[i].producer());
    input_layer(x[i]);  // checks the shape against the declared one
    values[inputs_[i].impl().get()] = x[i];
  }
  // Outputs that the loss wants as logits: the node producing them runs call_logits.
  std::set<const detail::SymbolicNode*> logits_nodes;
  for (size_t i = 0; i < outputs_.size(); ++i)
    if (i < logits.size() && logits[i]) logits_nodes.insert(outputs_[i].impl()->node.get());
  // Masks (Embedding(mask_zero), Masking) travel beside the values, as Keras' _keras_mask.
  std::unordered_map<const detail::KerasTensorImpl*, Tensor> masks;
  std::set<const detail::SymbolicNode*> folded;  // batch norms, relus and poolings run inside a convolution
  // A value goes once its last reader has run, so the pass holds only what the tape keeps: a batch
  // norm's output, read by a relu that keeps its own output, is freed then, not at the end.
  std::unordered_map<const detail::KerasTensorImpl*, size_t> last_read;
  for (size_t i = 0; i < nodes_.size(); ++i)
    for (const KerasTensor& t : nodes_[i]->all_inputs()) last_read[t.impl().get()] = i;
  for (const KerasTensor& t : outputs_) last_read[t.impl().get()] = nodes_.size();
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (i > 0)
      for (const KerasTensor& t : nodes_[i - 1]->all_inputs())
        if (last_read.at(t.impl().get()) == i - 1) {
          values.erase(t.impl().get());
          masks.erase(t.impl().get());
        }
    const auto& node = nodes_[i];
    if (folded.count(node.get())) continue;
    std::vector<Tensor> in;
    for (const KerasTensor& t : node->inputs) in.push_back(values.at(t.impl().get()));
    Layer& layer = *node->layer;
    if (const auto chain = folded_chains_.find(node.get()); chain != folded_chains_.end()) {
      auto& bn = static_cast<layers::BatchNormalization&>(*chain->second.batch_norm->layer);
      const FoldedBatchNorm fold = bn.uses_moving_statistics(training) ? bn.inference_fold() : FoldedBatchNorm();
      if (fold.defined()) {
        const FoldedChain& c = chain->second;
        // The shortcut of a residual block, where it is computed already, float32 and without a mask.
        Tensor shortcut;
        if (c.add && layer.compute_dtype() == DType::float32 && c.add->layer->compute_dtype() == DType::float32 &&
            (!c.add_relu || c.add_relu->layer->compute_dtype() == DType::float32)) {
          const auto* s = c.add->inputs[c.shortcut].impl().get();
          if (auto v = values.find(s); v != values.end() && v->second.dtype() == DType::float32 && !masks.count(s))
            shortcut = v->second;
        }
        const detail::SymbolicNode* relu = shortcut.defined() ? c.add_relu : c.relu;
        const detail::SymbolicNode* last = relu ? relu : shortcut.defined() ? c.add : c.batch_norm;
        if (auto out = last->outputs[0].lock())
          values[out.get()] = static_cast<layers::Conv2D&>(layer).call_with_batch_norm(in.at(0), fold,
                                                                                       relu ? "relu" : "", shortcut);
        folded.insert(c.batch_norm);
        if (shortcut.defined()) folded.insert(c.add);
        if (relu) folded.insert(relu);
        continue;
      }
    }
    if (const auto pooled = pooled_convs_.find(node.get());
        pooled != pooled_convs_.end() && !logits_nodes.count(pooled->second)) {
      if (auto out = pooled->second->outputs[0].lock())
        values[out.get()] = static_cast<layers::Conv2D&>(layer).call_with_max_pool(
            in.at(0), static_cast<const layers::Pooling2D&>(*pooled->second->layer).pool_options());
      folded.insert(pooled->second);
      continue;
    }
    std::vector<Tensor> out;
    Tensor out_mask;
    // Each input's mask (undefined where none), and whether there is any.
    auto input_masks = [&] {
      std::pair<std::vector<Tensor>, bool> result{{}, false};
      for (const KerasTensor& t : node->inputs) {
        auto found = masks.find(t.impl().get());
        result.first.push_back(found == masks.end() ? Tensor() : found->second);
        result.second = result.second || found != masks.end();
      }
      return result;
    };
    if (logits_nodes.count(node.get())) {
      out = {layer.logits(in.at(0), training)};
      auto found = masks.find(node->inputs[0].impl().get());
      if (found != masks.end() && layer.supports_masking()) out_mask = layer.compute_mask(in[0], found->second);
    } else if (const auto signature = layer.call_signature()) {
      // Layers with keyword arguments (attention) read every input's mask.
      const auto [in_masks, any_mask] = input_masks();
      out = layer.invoke_with_arguments(in, in_masks, node->arguments, training);
      if (any_mask) out_mask = layer.compute_mask_multi(in, in_masks);
      if (signature->consumes_input_masks)
        for (const KerasTensor& t : node->inputs) masks.erase(t.impl().get());
    } else if (in.size() == 1 && node->outputs.size() == 1) {
      Tensor mask;
      if (node->mask.defined()) {
        mask = values.at(node->mask.impl().get());
      } else if (auto found = masks.find(node->inputs[0].impl().get()); found != masks.end()) {
        mask = found->second;
      }
      auto [y, m] = layer.call_with_mask(in[0], mask, training);
      out = {y};
      out_mask = m;
    } else {
      // The call's explicit mask, or the input's where there is one input (an RNN returning its
      // states). As Keras 3, a call given initial states along with its sequence gets no implicit
      // mask; as tf.keras 2, it does.
      Tensor first_mask;
      if (node->mask.defined()) {
        first_mask = values.at(node->mask.impl().get());
      } else if (auto found = masks.find(node->inputs[0].impl().get());
                 (in.size() == 1 || node->keras2_masks) && found != masks.end()) {
        first_mask = found->second;
      }
      out = layer.invoke_multi(in, training, first_mask);
      // Merges combine their inputs' masks, as Keras'; other layers with several inputs end them.
      const auto [in_masks, any_mask] = input_masks();
      if (any_mask) out_mask = layer.compute_mask_multi(in, in_masks);
    }
    if (layer.activity_regularizer())  // on the layer's real output, also where the loss takes logits
      for (const Tensor& o : out) layer.record_activity_loss(logits_nodes.count(node.get()) ? ops::softmax(o) : o);
    for (size_t k = 0; k < node->outputs.size() && k < out.size(); ++k)
      if (auto impl = node->outputs[k].lock()) {
        values[impl.get()] = out[k];
        if (k == 0 && out_mask.defined()) masks[impl.get()] = out_mask;
      }
  }
  std::vector<Tensor> result;
  if (output_masks) output_masks->clear();
  for (const KerasTensor& t : outputs_) {
    result.push_back(values.at(t.impl().get()));
    auto m = masks.find(t.impl().get());
    if (output_masks) output_masks->push_back(m == masks.end() ? Tensor() : m->second);
  }
  return result;
}

bool Model::output_ends_with_softmax(size_t i) const { return outputs_.at(i).producer().ends_with_softmax(); }
std::string Model::output_name(size_t i) const { return outputs_.at(i).producer().name(); }

Tensor Model::call(const Tensor& x, bool training) {
  KCPP_CHECK(num_outputs() == 1, ValueError, "Model \"{}\" has {} outputs; call call_multi()", name(), num_outputs());
  return training || detail::is_recording() ? forward({x}, training, {}).at(0) : inference_forward({x}).at(0);
}
std::vector<Tensor> Model::call_multi(const std::vector<Tensor>& inputs, bool training) {
  return training || detail::is_recording() ? forward(inputs, training, {}) : inference_forward(inputs);
}

void Model::forget_recorded_passes() {
  inference_graphs_.reset();
  train_graphs_.reset();
  evaluate_graphs_.reset();
  test_graphs_.reset();
  graph_safe_.reset();
}

bool Model::graph_safe() {
  if (!graph_safe_) {
    // A replay runs no host code: layers that change host state per call, or report activity
    // losses, must run as they are.
    bool safe = true;
    try {
      for (const auto& layer : layers()) {
        const Config c = layer->get_config();
        safe = safe && !layer->activity_regularizer() &&
               !(c.contains("stateful") && c["stateful"].is_boolean() && c["stateful"].get<bool>());
      }
    } catch (const std::exception&) {  // a layer without a config: do not guess
      safe = false;
    }
    graph_safe_ = safe;
  }
  return *graph_safe_;
}

std::vector<Tensor> Model::run_recorded(std::unique_ptr<detail::StepGraphs>& graphs, const std::vector<Tensor>& inputs,
                                        bool with_optimizer, const RecordedStep& step) {
  if (!detail::StepGraphs::enabled() || !graph_safe()) return step(inputs);
  if (!graphs) graphs = std::make_unique<detail::StepGraphs>();
  // What the step reads and updates in place besides its inputs.
  std::vector<const Tensor*> state;
  for (Variable* v : weights()) state.push_back(&v->stored());
  if (with_optimizer && optimizer_->built())
    for (Variable* v : optimizer_->variables()) state.push_back(&v->stored());
  return graphs->run(inputs, state, step);
}

std::vector<Tensor> Model::inference_forward(const std::vector<Tensor>& x) {
  return run_recorded(inference_graphs_, x, false, [this](const std::vector<Tensor>& in) {
    std::vector<Tensor> masks;
    std::vector<Tensor> out = forward(in, false, {}, &masks);
    for (const Tensor& m : masks)  // masks would not be refreshed by a replay: not recorded
      KCPP_CHECK(!detail::recording_step() || !m.defined(), NotImplementedError, "outputs with masks are not recorded");
    return out;
  });
}
Tensor Model::call_logits(const Tensor& x, bool training) { return forward({x}, training, {true}).at(0); }
bool Model::ends_with_softmax() const { return num_outputs() == 1 && output_ends_with_softmax(0); }

PartialShape Model::compute_output_shape(const PartialShape& s) const { return compute_output_shapes({s}).at(0); }
std::vector<PartialShape> Model::compute_output_shapes(const std::vector<PartialShape>& shapes) const {
  KCPP_CHECK(shapes.size() == inputs_.size(), ValueError,
             "Model \"{}\" expects {} input(s), but it received {} input tensors", name(), inputs_.size(),
             shapes.size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    const auto& declared = inputs_[i].shape();
    bool ok = declared.size() == shapes[i].size();
    for (size_t d = 1; ok && d < declared.size(); ++d)
      ok = !declared[d] || !shapes[i][d] || *declared[d] == *shapes[i][d];
    KCPP_CHECK(ok, ValueError, "Input {} of model \"{}\" is incompatible: expected shape={}, found shape={}", i, name(),
               shape_to_string(declared), shape_to_string(shapes[i]));
  }
  std::vector<PartialShape> out;
  for (const KerasTensor& t : outputs_) out.push_back(t.shape());
  return out;
}

Layer& Model::get_layer(const std::string& name) const {
  std::vector<std::string> names;
  for (Layer* l : layers()) {
    if (l->name() == name) return *l;
    names.push_back(l->name());
  }
  throw ValueError(fmt::format("No such layer: {}. Existing layers are: [{}].", name, fmt::join(names, ", ")));
}

// Training ----------------------------------------------------------------------------------------------------

namespace {
// The output index of a key in one of compile()'s dicts, with Keras' error for a key that is no output.
size_t output_index(const std::vector<std::string>& names, const std::string& key, const char* argument) {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == key) return i;
  throw ValueError(fmt::format("In the dict argument `{}`, key '{}' does not correspond to any model output. "
                               "Expected one of [{}]",
                               argument, key, fmt::join(names, ", ")));
}
}  // namespace

void Model::compile(CompileOptions o) {
  train_graphs_.reset();  // recorded steps use the old optimizer and metrics
  evaluate_graphs_.reset();
  const size_t n = num_outputs();
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) names.push_back(output_name(i));
  // Losses: one for all, one per output, or per output name (outputs left out get none).
  losses_.assign(n, nullptr);
  if (!o.loss.by_output().empty()) {
    for (const auto& [key, ref] : o.loss.by_output()) losses_[output_index(names, key, "loss")] = ref.get();
  } else {
    KCPP_CHECK(!o.loss.items().empty() && o.loss.items()[0].get(), ValueError,
               "compile: a loss is required (for example .loss = \"sparse_categorical_crossentropy\")");
    KCPP_CHECK(o.loss.items().size() == 1 || o.loss.items().size() == n, ValueError,
               "compile: expected 1 loss or {} (one per output), received {}", n, o.loss.items().size());
    for (size_t i = 0; i < n; ++i) losses_[i] = o.loss.items()[o.loss.items().size() == 1 ? 0 : i].get();
  }
  KCPP_CHECK(std::any_of(losses_.begin(), losses_.end(), [](const auto& l) { return l != nullptr; }), ValueError,
             "compile: a loss is required for at least one output");
  loss_weights_.assign(n, 1.f);
  if (!o.loss_weights.by_output().empty()) {
    for (const auto& [key, w] : o.loss_weights.by_output()) loss_weights_[output_index(names, key, "loss_weights")] = w;
  } else if (!o.loss_weights.in_order().empty()) {
    KCPP_CHECK(o.loss_weights.in_order().size() == n, ValueError,
               "compile: expected {} loss_weights (one per output), received {}", n, o.loss_weights.in_order().size());
    loss_weights_ = o.loss_weights.in_order();
  }
  optimizer_ = o.optimizer.get();
  // Keras: under mixed_float16 the optimizer is wrapped so small float16 gradients survive.
  if (o.auto_scale_loss && dtype_policy().name() == "mixed_float16" && optimizer_ &&
      !dynamic_cast<optimizers::LossScaleOptimizer*>(optimizer_.get()))
    optimizer_ = std::make_shared<optimizers::LossScaleOptimizer>(optimizer_);
  output_loss_trackers_.clear();
  if (n > 1)
    for (size_t i = 0; i < n; ++i)
      output_loss_trackers_.push_back(
          losses_[i] ? std::make_unique<metrics::Mean>(fmt::format("{}_loss", output_name(i))) : nullptr);
  // Metrics: the same list for every output (objects copied for the second and later), or per output name.
  std::vector<std::vector<MetricRef>> refs(n);
  for (const auto& [key, list] : o.metrics.by_output()) refs[output_index(names, key, "metrics")] = list;
  if (!o.metrics.all().empty()) refs.assign(n, o.metrics.all());
  metrics_.assign(n, {});
  metric_names_.clear();
  for (size_t i = 0; i < n; ++i)
    for (const MetricRef& r : refs[i]) {
      const std::string loss_name = losses_[i] ? losses_[i]->name() : "";
      std::shared_ptr<metrics::Metric> m = r.object();
      if (!m) {
        m = metrics::get(r.name(), loss_name);
      } else if (i > 0 && o.metrics.by_output().empty()) {
        KCPP_CHECK(!m->class_name().empty(), ValueError,
                   "compile: metric object '{}' is given for {} outputs, but kerascpp can only copy Keras' metric "
                   "classes; give each output its own object with the dict form",
                   m->name(), n);
        m = metrics::deserialize(m->serialized(), loss_name);
      }
      // Several outputs: Keras prefixes each metric with its output's name.
      const std::string base = r.object() ? m->name() : r.name();
      metric_names_.push_back(n > 1 ? fmt::format("{}_{}", output_name(i), base) : base);
      metrics_[i].push_back(std::move(m));
    }
  loss_tracker_ = std::make_unique<metrics::Mean>("loss");
  strategy_ = distribute::current_strategy();  // compiled inside strategy.scope(...): train with it
  replicas_synced_ = false;

  // compile_config in the form the user gave, as Keras keeps it.
  compile_config_ = Config::object();
  compile_config_["optimizer"] = o.optimizer.get()->serialized();  // as passed, before any loss-scale wrap (Keras)
  if (!o.loss.by_output().empty()) {
    Config dict = Config::object();
    for (const auto& [key, ref] : o.loss.by_output()) dict[key] = ref.serialized();
    compile_config_["loss"] = dict;
  } else if (o.loss.items().size() == 1) {
    compile_config_["loss"] = o.loss.items()[0].serialized();
  } else {
    Config list = Config::array();
    for (const auto& ref : o.loss.items()) list.push_back(ref.serialized());
    compile_config_["loss"] = list;
  }
  if (!o.loss_weights.by_output().empty())
    compile_config_["loss_weights"] = Config(o.loss_weights.by_output());
  else
    compile_config_["loss_weights"] = o.loss_weights.empty() ? Config(nullptr) : Config(o.loss_weights.in_order());
  auto metric_list = [](const std::vector<MetricRef>& list) {
    Config out = Config::array();
    for (const MetricRef& r : list) out.push_back(r.serialized());
    return out;
  };
  if (!o.metrics.by_output().empty()) {
    Config dict = Config::object();
    for (const auto& [key, list] : o.metrics.by_output()) dict[key] = metric_list(list);
    compile_config_["metrics"] = dict;
  } else {
    compile_config_["metrics"] = o.metrics.empty() ? Config(nullptr) : metric_list(o.metrics.all());
  }
  compile_config_["weighted_metrics"] = nullptr;
  compile_config_["run_eagerly"] = false;
  compile_config_["steps_per_execution"] = 1;
  compile_config_["jit_compile"] = false;
}


void Model::save(const std::string& path) { models::save_model(*this, path); }

void Model::save_weights(const std::string& path) {
  if (saving::ends_with(path, ".weights.h5")) return saving::save_keras_weights(*this, path);
  KCPP_CHECK(!saving::ends_with(path, ".h5") && !saving::ends_with(path, ".keras"), ValueError,
             "save_weights: the filename must end in `.weights.h5` for Keras' format (received '{}'); use save() "
             "for .keras and .h5 model files",
             path);
  saving::write_weights_file(path, weights());
}

void Model::load_weights(const std::string& path, LoadWeightsOptions options) {
  if (saving::ends_with(path, ".h5") || saving::ends_with(path, ".hdf5") || saving::ends_with(path, ".keras"))
    return saving::load_keras_weights(*this, path, options);
  saving::read_weights_file(path, weights());
}

void Model::require_compiled(const char* what) const {
  KCPP_CHECK(compiled(), ValueError, "You must call `compile()` before using the model: {} on model \"{}\"", what,
             name());
}

std::vector<bool> Model::logits_mask() const {
  std::vector<bool> mask(num_outputs(), false);
  for (size_t i = 0; i < mask.size() && i < losses_.size(); ++i)
    mask[i] = losses_[i] && losses_[i]->accepts_softmax_logits() && output_ends_with_softmax(i);
  return mask;
}

namespace {
// Outputs with steps (N, T, ..., C): losses and metrics see every step as a sample, and skip masked
// steps, as Keras' losses and metrics skip them (apply_mask) and average over the valid ones.
struct Folded {
  Tensor y_true, y_pred, weights;
};
Folded fold_steps(const Tensor& y_true, const Tensor& y_pred_in, const Tensor& weights, const Tensor& mask) {
  // Losses compute in float32 whatever the layers' compute dtype, as Keras' Loss converts y_pred.
  const Tensor y_pred = is_floating(y_pred_in.dtype()) ? ops::cast(y_pred_in, DType::float32) : y_pred_in;
  if (y_pred.rank() < 3) return {y_true, y_pred, weights};
  const int64_t n = y_pred.dim(0), rows = y_pred.num_elements() / y_pred.dim(-1);
  Tensor yt;
  if (y_true.rank() == y_pred.rank())
    yt = ops::reshape(y_true, {rows, y_true.dim(-1)});
  else if (y_true.rank() + 1 == y_pred.rank())
    yt = ops::reshape(y_true, {rows});  // sparse labels (N, T)
  else
    throw ShapeError(
        fmt::format("targets {} do not match the sequence output {}: expected {} or its shape without "
                    "the last axis",
                    y_true.shape().to_string(), y_pred.shape().to_string(), y_pred.shape().to_string()));
  KCPP_CHECK(yt.dim(0) == rows, ShapeError, "targets {} do not match the sequence output {}",
             y_true.shape().to_string(), y_pred.shape().to_string());
  Folded f{yt, ops::reshape(y_pred, {rows, y_pred.dim(-1)}), Tensor()};
  if (weights.defined())  // one weight per sample, repeated over its steps
    f.weights = ops::reshape(ops::broadcast_to(ops::reshape(weights, {n, 1}), Shape{n, rows / n}), {rows});
  if (!mask.defined() || mask.num_elements() != rows) return f;
  const auto keep = ops::cast(mask, DType::uint8).to_vector<uint8_t>();
  std::vector<int64_t> valid;
  for (int64_t r = 0; r < rows; ++r)
    if (keep[static_cast<size_t>(r)]) valid.push_back(r);
  const Tensor idx = Tensor::from_vector(valid, Shape{static_cast<int64_t>(valid.size())}, y_pred.backend());
  f.y_true = ops::take(f.y_true, idx, 0);
  f.y_pred = ops::take(f.y_pred, idx, 0);
  if (f.weights.defined()) f.weights = ops::take(f.weights, idx, 0);
  return f;
}
}  // namespace

Tensor Model::total_loss(const std::vector<Tensor>& y, const std::vector<Tensor>& out,
                         const std::vector<Tensor>& masks, const Tensor& w,
                         std::vector<Tensor>& per_output) {
  KCPP_CHECK(y.size() == out.size(), ValueError, "Model \"{}\" has {} output(s) but received {} target(s)", name(),
             out.size(), y.size());
  const auto logits = logits_mask();
  Tensor total;
  per_output.assign(out.size(), Tensor());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!losses_[i]) continue;  // an output left out of a loss dict
    const auto& loss = *losses_[i];
    const Folded f = fold_steps(y[i], out[i], w, i < masks.size() ? masks[i] : Tensor());
    const Tensor per_sample =
        logits[i] ? loss.per_sample_from_logits(f.y_true, f.y_pred) : loss.per_sample(f.y_true, f.y_pred);
    KCPP_CHECK(per_sample.rank() == 1, ShapeError, "loss {}: expected per-sample values (N,), received {}", loss.name(),
               per_sample.shape().to_string());
    // Keras' "sum_over_batch_size": weighted sum over the number of samples (valid steps); no valid
    // step gives 0, as Keras' divide_no_nan.
    const float count = static_cast<float>(std::max<int64_t>(per_sample.dim(0), 1));
    Tensor l =
        f.weights.defined() ? ops::sum(per_sample * f.weights) * (1.f / count) : ops::sum(per_sample) * (1.f / count);
    per_output[i] = l;  // unweighted, as Keras logs it
    if (loss_weights_[i] != 1.f) l = l * loss_weights_[i];
    total = total.defined() ? total + l : l;
  }
  return total;
}

void Model::update_metrics(const std::vector<Tensor>& y, const std::vector<Tensor>& out,
                           const std::vector<Tensor>& masks, const std::vector<Tensor>& per_output_losses) {
  NoGradScope no_grad;
  for (size_t i = 0; i < per_output_losses.size() && i < output_loss_trackers_.size(); ++i)
    if (per_output_losses[i].defined()) output_loss_trackers_[i]->update_state(per_output_losses[i]);
  const auto logits = logits_mask();
  for (size_t i = 0; i < out.size(); ++i) {
    const Folded f = fold_steps(y[i], out[i], Tensor(), i < masks.size() ? masks[i] : Tensor());
    if (f.y_pred.dim(0) == 0) continue;  // every step masked
    const Tensor predictions = logits[i] ? ops::softmax(f.y_pred) : f.y_pred;
    for (auto& m : metrics_[i]) m->update_state(f.y_true, predictions);
  }
}

std::map<std::string, double> Model::results() const {
  std::map<std::string, double> logs{{"loss", loss_tracker_->result()}};
  for (const auto& t : output_loss_trackers_)
    if (t) logs[t->name()] = t->result();
  size_t k = 0;
  for (const auto& per_output : metrics_)
    for (const auto& m : per_output) logs[metric_names_[k++]] = m->result();
  return logs;
}

// A real communicator takes the data-parallel path even with one rank (so one GPU tests NCCL's path).
bool Model::data_parallel() const {
  return strategy_ && (strategy_->num_replicas_in_sync() > 1 || strategy_->communicator().name() != "single");
}
bool Model::is_chief() const { return !strategy_ || strategy_->is_chief(); }

std::vector<metrics::Metric*> Model::all_metrics() const {
  std::vector<metrics::Metric*> out{loss_tracker_.get()};
  for (const auto& t : output_loss_trackers_)
    if (t) out.push_back(t.get());
  for (const auto& per_output : metrics_)
    for (const auto& m : per_output) out.push_back(m.get());
  return out;
}

std::map<std::string, double> Model::global_results() {
  if (mirrored() && !replicas_.empty()) {
    // The replicas are this process' own: their states are read directly.
    const auto trackers = all_metrics();
    std::vector<std::vector<double>> local;
    for (const metrics::Metric* m : trackers) local.push_back(m->state());
    for (const auto& r : replicas_) {
      const auto theirs = r->all_metrics();
      for (size_t k = 0; k < trackers.size(); ++k) {
        auto total = trackers[k]->state();
        const auto add = theirs[k]->state();
        for (size_t j = 0; j < total.size(); ++j) total[j] += add[j];
        trackers[k]->set_state(total);
      }
    }
    auto logs = results();
    for (size_t k = 0; k < trackers.size(); ++k) trackers[k]->set_state(local[k]);
    return logs;
  }
  if (!data_parallel() || mirrored()) return results();
  // Sum every replica's metric state, read the results, then put this replica's own state back so
  // it keeps accumulating only its own batches.
  const auto trackers = all_metrics();
  std::vector<std::vector<double>> local;
  std::vector<double> flat;
  for (const metrics::Metric* m : trackers) {
    local.push_back(m->state());
    flat.insert(flat.end(), local.back().begin(), local.back().end());
  }
  const std::vector<double> total = strategy_->sum(flat);
  auto at = total.begin();
  for (size_t k = 0; k < trackers.size(); ++k) {
    const auto n = static_cast<std::ptrdiff_t>(local[k].size());
    trackers[k]->set_state(std::vector<double>(at, at + n));
    at += n;
  }
  auto logs = results();
  for (size_t k = 0; k < trackers.size(); ++k) trackers[k]->set_state(local[k]);
  return logs;
}

void Model::reset_metrics() {
  for (const auto& r : replicas_) r->reset_metrics();
  loss_tracker_->reset_state();
  for (auto& t : output_loss_trackers_)
    if (t) t->reset_state();
  for (auto& per_output : metrics_)
    for (auto& m : per_output) m->reset_state();
}

namespace {
Tensor rows(const Tensor& t, int64_t start, int64_t count) {
  std::vector<int64_t> starts(t.rank(), 0), sizes(t.rank(), -1);
  starts[0] = start;
  sizes[0] = count;
  return ops::slice(t, starts, sizes);
}
std::vector<Tensor> rows(const std::vector<Tensor>& ts, int64_t start, int64_t count) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(rows(t, start, count));
  return out;
}
Tensor on_device(const Tensor& t) { return ops::to_backend(t, default_backend()); }
// In host memory: what a MirroredStrategy's replica threads cut their rows from (slicing a tensor
// of another GPU would queue work on that GPU from the wrong thread).
std::vector<Tensor> on_host(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts)
    out.push_back(!t.defined() || t.device().type == DeviceType::cpu ? t
                                                                      : ops::to_backend(t, backend::get_backend("cpu")));
  return out;
}
// Integer inputs (uint8 images) become float32, as Keras' data adapters do, except where a layer
// reads ids (the model's input is declared int, as for Embedding).
Tensor as_input(const Tensor& t, bool keep_dtype) {
  return keep_dtype || is_floating(t.dtype()) ? on_device(t) : on_device(ops::cast(t, DType::float32));
}
std::vector<Tensor> targets_on_device(const std::vector<Tensor>& ys) {
  std::vector<Tensor> out;
  for (const Tensor& y : ys) out.push_back(on_device(y));
  return out;
}
std::vector<std::pair<std::string, double>> as_items(const std::map<std::string, double>& logs) {
  return {logs.begin(), logs.end()};
}
}  // namespace

void Model::check_data(const char* what, const TensorList& x, const TensorList* y) const {
  KCPP_CHECK(x.size() == num_inputs() || (num_inputs() == 0 && x.size() == 1), ValueError,
             "{}: model \"{}\" expects {} input(s), received {}", what, name(), std::max<size_t>(num_inputs(), 1),
             x.size());
  for (const Tensor& t : x.items())
    KCPP_CHECK(t.defined() && t.rank() >= 1, ValueError, "{}: every input must be a defined tensor with a batch axis",
               what);
  const int64_t n = x[0].dim(0);
  for (const Tensor& t : x.items())
    KCPP_CHECK(t.dim(0) == n, ValueError, "{}: all inputs must have the same number of samples, received {} and {}",
               what, x[0].shape().to_string(), t.shape().to_string());
  if (!y) return;
  KCPP_CHECK(y->size() == std::max<size_t>(num_outputs(), 1), ValueError,
             "{}: model \"{}\" has {} output(s), received {} target(s)", what, name(),
             std::max<size_t>(num_outputs(), 1), y->size());
  for (const Tensor& t : y->items())
    KCPP_CHECK(t.defined() && t.rank() >= 1 && t.dim(0) == n, ValueError,
               "{}: x and y must have the same number of samples, received x {} and y {}", what,
               x[0].shape().to_string(), t.defined() ? t.shape().to_string() : "undefined");
}

std::vector<Tensor> Model::device_inputs(const std::vector<Tensor>& x) const {
  std::vector<Tensor> out;
  for (size_t i = 0; i < x.size(); ++i) {
    const bool int_input = i < inputs_.size() && !is_floating(inputs_[i].dtype());
    out.push_back(as_input(x[i], int_input));
  }
  return out;
}

std::map<std::string, double> Model::train_on_batch(const TensorList& x, const TensorList& y) {
  require_compiled("train_on_batch");
  check_data("train_on_batch", x, &y);
  reset_metrics();
  if (mirrored()) {  // the replicas move their rows to their devices themselves
    train_step(x.items(), y.items(), Tensor());
    return global_results();
  }
  train_step(device_inputs(x.items()), targets_on_device(y.items()), Tensor());
  return results();
}

void Model::train_step(const std::vector<Tensor>& x_global, const std::vector<Tensor>& y_global,
                       const Tensor& weights_global) {
  if (mirrored()) {
    mirrored_train_step(x_global, y_global, weights_global);
    return;
  }
  if (!data_parallel()) {
    // x, y and the sample weights are the step's inputs; the weights, the optimizer's slots and
    // the metrics' sums are updated in place, so it returns nothing.
    std::vector<Tensor> inputs = x_global;
    inputs.insert(inputs.end(), y_global.begin(), y_global.end());
    inputs.push_back(weights_global);
    const auto nx = static_cast<std::ptrdiff_t>(x_global.size()), ny = static_cast<std::ptrdiff_t>(y_global.size());
    run_recorded(train_graphs_, inputs, true, [&](const std::vector<Tensor>& in) {
      train_on_shard({in.begin(), in.begin() + nx}, {in.begin() + nx, in.begin() + nx + ny}, in.back(), 1.f);
      return std::vector<Tensor>{};
    });
    return;
  }
  // Data parallel: this replica trains on its rows of the global batch; gradients are summed across
  // replicas, each scaled by its share, so every replica applies the global batch's gradient.
  const int64_t n = x_global[0].dim(0);
  const auto [begin, end] = strategy_->shard(n);
  if (!replicas_synced_) {
    if (!built() || trainable_weights().empty()) {
      NoGradScope no_grad;
      forward(rows(x_global, begin, end - begin), false, {});  // builds the layers, so there are weights to copy
    }
    strategy_->broadcast_variables(weights());
    replicas_synced_ = true;
  }
  const auto shard_step = [&, begin = begin, end = end](const std::vector<Tensor>& xg, const std::vector<Tensor>& yg,
                                                        const Tensor& wg) {
    train_on_shard(rows(xg, begin, end - begin), rows(yg, begin, end - begin),
                   wg.defined() ? rows(wg, begin, end - begin) : Tensor(),
                   static_cast<float>(end - begin) / static_cast<float>(n));
  };
  distribute::Communicator& comm = strategy_->communicator();
  if (!comm.records_in_step_graphs()) {  // collectives through the host: op by op
    shard_step(x_global, y_global, weights_global);
    return;
  }
  // Collectives queued on the device (NCCL) are recorded with the step; after each replay the host
  // waits for them within the communicator's timeout, so a failed rank cannot hang this one.
  std::vector<Tensor> inputs = x_global;
  inputs.insert(inputs.end(), y_global.begin(), y_global.end());
  inputs.push_back(weights_global);
  const auto nx = static_cast<std::ptrdiff_t>(x_global.size()), ny = static_cast<std::ptrdiff_t>(y_global.size());
  run_recorded(train_graphs_, inputs, true, [&](const std::vector<Tensor>& in) {
    shard_step({in.begin(), in.begin() + nx}, {in.begin() + nx, in.begin() + nx + ny}, in.back());
    if (detail::recording_step()) {
      Backend* device = in[0].backend();
      detail::after_each_step([&comm, device] { comm.wait_for_recorded_collectives(*device); });
    }
    return std::vector<Tensor>{};
  });
}

void Model::train_on_shard(const std::vector<Tensor>& x, const std::vector<Tensor>& y, const Tensor& sample_weight,
                           float share) {
  if (data_parallel() && x[0].dim(0) == 0) {  // a last batch smaller than the replicas: nothing here
    const auto vars = trainable_weights();
    auto& reducer = strategy_->reducer();
    reducer.begin(vars, 0.f);
    for (size_t i = 0; i < vars.size(); ++i) reducer.ready(i, ops::zeros_like(vars[i]->value()));
    optimizer_->apply_gradients(reducer.finish(), vars);
    apply_constraints();
    return;
  }
  GradientTape tape;
  ActivityLossScope activity;
  detail::DeferredChecks checks(x[0].backend());  // ids and labels: read once, before the update
  detail::HeldStateUpdates layer_state;           // moving statistics: applied with the update
  std::vector<Tensor> masks;
  const std::vector<Tensor> out = forward(x, true, logits_mask(), &masks);
  std::vector<Tensor> per_output;
  Tensor loss = total_loss(y, out, masks, sample_weight, per_output);
  // Keras adds the weights' penalties and the layers' activity penalties to the loss it reports.
  if (const Tensor extra = additional_losses(activity); extra.defined()) loss = loss + extra;
  const auto vars = trainable_weights();
  std::vector<Tensor> grads;
  if (data_parallel()) {
    auto& reducer = strategy_->reducer();
    reducer.begin(vars, 1.f);
    tape.on_gradient_ready([&reducer](size_t i, const Tensor& g) { reducer.ready(i, g); });
    // The gradients of this replica's share of the global batch's loss: scaling the loss is free,
    // scaling the gradients a pass over them.
    tape.gradient(optimizer_->scale_loss(share == 1.f ? loss : loss * share), vars);
    grads = reducer.finish();
  } else {
    grads = tape.gradient(optimizer_->scale_loss(loss), vars);  // LossScaleOptimizer: unscaled in apply_gradients
  }
  tape.stop_recording();
  // Recorded, what follows changes the model only where the step's id and label checks passed.
  detail::GuardedByChecks guard(x[0].backend());
  layer_state.apply();
  optimizer_->apply_gradients(grads, vars);
  apply_constraints();
  // Weighed by the batch's samples, as Keras 3 does, so an uneven last batch counts by its size.
  loss_tracker_->update_state(loss, static_cast<double>(x[0].dim(0)));
  update_metrics(y, out, masks, per_output);
}

// MirroredStrategy -------------------------------------------------------------------------------------

bool Model::mirrored() const { return strategy_ && strategy_->local_replicas() > 1; }

std::vector<Variable*> Model::replica_weights(int i) {
  if (i == 0) return weights();
  KCPP_CHECK(mirrored(), ValueError, "replica_weights: model \"{}\" was not compiled in a MirroredStrategy's scope",
             name());
  KCPP_CHECK(i > 0 && i < strategy_->local_replicas(), ValueError,
             "replica_weights: replica must be in [0, {}), received {}", strategy_->local_replicas(), i);
  KCPP_CHECK(static_cast<size_t>(i) <= replicas_.size(), ValueError,
             "replica_weights: replica {} of model \"{}\" does not exist before the first training step", i, name());
  return replica(i).weights();
}

void Model::compile_as_replica_of(const Model& primary) {
  losses_ = primary.losses_;  // stateless
  loss_weights_ = primary.loss_weights_;
  metric_names_ = primary.metric_names_;
  compile_config_ = primary.compile_config_;
  strategy_ = primary.strategy_;
  const auto copy_metric = [&](const metrics::Metric& m, size_t output) {
    const std::string loss_name = primary.losses_[output] ? primary.losses_[output]->name() : "";
    KCPP_CHECK(!m.class_name().empty(), ValueError,
               "MirroredStrategy: each replica needs its own copy of metric '{}', but kerascpp can only copy Keras' "
               "metric classes",
               m.name());
    return metrics::deserialize(m.serialized(), loss_name);
  };
  metrics_.assign(primary.metrics_.size(), {});
  for (size_t i = 0; i < primary.metrics_.size(); ++i)
    for (const auto& m : primary.metrics_[i]) metrics_[i].push_back(copy_metric(*m, i));
  output_loss_trackers_.clear();
  for (const auto& t : primary.output_loss_trackers_)
    output_loss_trackers_.push_back(t ? std::make_unique<metrics::Mean>(t->name()) : nullptr);
  loss_tracker_ = std::make_unique<metrics::Mean>("loss");
  optimizer_ = optimizers::deserialize(primary.optimizer_->serialized());
}

void Model::sync_replicas(const std::vector<Tensor>& x_global, bool for_training) {
  const int n = strategy_->local_replicas();
  const std::vector<Tensor> x_host = on_host(x_global);
  const auto first_rows = [&](int64_t count) {
    return device_inputs(rows(x_host, 0, std::min<int64_t>(count, x_host[0].dim(0))));
  };
  if (!built() || trainable_weights().empty())
    strategy_->run_in_replicas([&](int i) {
      if (i != 0) return;
      NoGradScope no_grad;
      forward(first_rows(1), false, {});  // builds the layers, so there are weights to copy
    });
  if (replicas_.size() + 1 != static_cast<size_t>(n)) {
    // Copies made from the config, each on its device by its thread, one at a time (the strategy's
    // scope is process-wide). Their initial values are overwritten below: the random state is kept.
    std::vector<std::shared_ptr<Model>> made(static_cast<size_t>(n - 1));  // kept only if every copy is made
    const Config config = serialization::serialize_layer(*this);
    struct KeepRandomState {  // also when a copy fails
      uint64_t state = random::global_state();
      ~KeepRandomState() { random::set_global_state(state); }
    } keep;
    for (int k = 1; k < n; ++k)
      strategy_->run_in_replicas([&](int i) {
        if (i != k) return;
        std::shared_ptr<Model> copy;
        try {
          copy = strategy_->scope([&] {
            std::shared_ptr<Model> m = models::model_from_config(config);
            m->compile_as_replica_of(*this);
            return m;
          });
        } catch (const std::exception& e) {
          throw ValueError(fmt::format(
              "MirroredStrategy: model \"{}\" could not be copied to {} from its config (custom layers must be "
              "registered with keras::register_layer_class, as for clone_model): {}",
              name(), strategy_->replica_device(k).device().to_string(), e.what()));
        }
        if (!copy->built() || copy->trainable_weights().size() != trainable_weights().size()) {
          NoGradScope no_grad;
          copy->forward(first_rows(1), false, {});
        }
        const auto mine = weights(), theirs = copy->weights();
        KCPP_CHECK(theirs.size() == mine.size(), ValueError,
                   "MirroredStrategy: the copy of model \"{}\" made from its config has {} weights, the model {}",
                   name(), theirs.size(), mine.size());
        for (size_t w = 0; w < mine.size(); ++w)
          KCPP_CHECK(theirs[w]->shape() == mine[w]->shape() && theirs[w]->trainable() == mine[w]->trainable(),
                     ValueError,
                     "MirroredStrategy: the copy of model \"{}\" made from its config differs at weight {} ('{}'): "
                     "shape {}{} there, {}{} in the model",
                     name(), w, mine[w]->name(), theirs[w]->shape().to_string(),
                     theirs[w]->trainable() ? "" : " (frozen)", mine[w]->shape().to_string(),
                     mine[w]->trainable() ? "" : " (frozen)");
        made[static_cast<size_t>(k) - 1] = std::move(copy);
      });
    replicas_ = std::move(made);
  }
  if (!for_training) {  // inference: the weights are all it needs
    strategy_->run_in_replicas([&](int i) { strategy_->broadcast_variables(replica(i).weights()); });
    return;
  }
  // Replica 0's weights, optimizer slots and step everywhere: the replicas start identical.
  if (!optimizer_->built()) optimizer_->build_for(trainable_weights());
  const int64_t iterations = optimizer_->iterations();
  const std::vector<float> extra = optimizer_->extra_state();
  // Read here: replica 0 is this model, whose optimizer its thread sets while the others copy.
  const auto* scaled = dynamic_cast<const optimizers::LossScaleOptimizer*>(optimizer_.get());
  const float scale = scaled ? scaled->loss_scale() : 1.f;
  const int64_t step_counter = scaled ? scaled->step_counter() : 0;
  strategy_->run_in_replicas([&](int i) {
    Model& m = replica(i);
    strategy_->broadcast_variables(m.weights());
    if (!m.optimizer_->built()) m.optimizer_->build_for(m.trainable_weights());
    strategy_->broadcast_variables(m.optimizer_->variables());
    m.optimizer_->set_iterations(iterations);
    m.optimizer_->set_extra_state(extra);
    if (scaled)
      static_cast<optimizers::LossScaleOptimizer&>(*m.optimizer_).set_scale_state(scale, step_counter);
  });
  seed_replicas();
  replicas_synced_ = true;
}

void Model::seed_replicas() {
  const auto own = seed_generators();
  for (size_t k = 0; k < replicas_.size(); ++k) {
    const auto theirs = replicas_[k]->seed_generators();
    for (size_t g = 0; g < std::min(own.size(), theirs.size()); ++g)
      theirs[g]->set_state(random::splitmix64(own[g]->state() ^ (0xD15EA5EULL * (k + 2))));
  }
}

void Model::mirrored_train_step(const std::vector<Tensor>& x_global, const std::vector<Tensor>& y_global,
                                const Tensor& weights_global) {
  std::lock_guard lock(*replicas_mutex_);
  if (!replicas_synced_) sync_replicas(x_global, true);
  // Callbacks change the rate of this model's optimizer (LearningRateScheduler, ReduceLROnPlateau).
  if (!optimizer_->has_schedule())
    for (const auto& r : replicas_)
      if (r->optimizer_->has_schedule() || r->optimizer_->learning_rate() != optimizer_->learning_rate())
        r->optimizer_->set_learning_rate(optimizer_->learning_rate());
  // Each replica cuts its rows from the batch in host memory and moves them to its device: the
  // host's cores slice for every replica at once, and a GPU's batch never goes through another GPU.
  const std::vector<Tensor> x = on_host(x_global), y = on_host(y_global);
  const Tensor w = on_host({weights_global})[0];
  const int64_t total = x[0].dim(0);
  strategy_->run_in_replicas([&](int i) {
    const auto [begin, end] = strategy_->shard(total, i);
    std::vector<Tensor> ys;
    for (const Tensor& t : rows(y, begin, end - begin)) ys.push_back(on_device(t));
    Model& m = replica(i);
    m.train_on_shard(m.device_inputs(rows(x, begin, end - begin)), ys,
                     w.defined() ? on_device(rows(w, begin, end - begin)) : Tensor(),
                     static_cast<float>(end - begin) / static_cast<float>(total));
  });
}

std::map<std::string, double> Model::test_on_batch(const TensorList& x, const TensorList& y) {
  require_compiled("test_on_batch");
  check_data("test_on_batch", x, &y);
  reset_metrics();
  // Recorded like an evaluation step: the metrics' sums are updated in place.
  std::vector<Tensor> inputs = device_inputs(x.items());
  const auto nx = static_cast<std::ptrdiff_t>(inputs.size());
  for (const Tensor& t : targets_on_device(y.items())) inputs.push_back(t);
  run_recorded(test_graphs_, inputs, false, [&](const std::vector<Tensor>& in) {
    NoGradScope no_grad;
    const std::vector<Tensor> xb(in.begin(), in.begin() + nx), yb(in.begin() + nx, in.end());
    ActivityLossScope activity;
    detail::DeferredChecks checks(xb[0].backend());
    std::vector<Tensor> masks;
    const auto out = forward(xb, false, logits_mask(), &masks);
    std::vector<Tensor> per_output;
    Tensor loss = total_loss(yb, out, masks, Tensor(), per_output);
    if (const Tensor extra = additional_losses(activity); extra.defined()) loss = loss + extra;
    detail::GuardedByChecks guard(xb[0].backend());
    loss_tracker_->update_state(loss);
    update_metrics(yb, out, masks, per_output);
    return std::vector<Tensor>{};
  });
  return results();
}

Tensor Model::additional_losses(const ActivityLossScope& activity) {
  Tensor extra = regularization_loss();
  if (activity.total().defined()) extra = extra.defined() ? extra + activity.total() : activity.total();
  return extra;
}

Tensor Model::predict_on_batch(const TensorList& x) {
  check_data("predict_on_batch", x, nullptr);
  NoGradScope no_grad;
  return inference_forward(device_inputs(x.items())).at(0);
}

History Model::fit(const TensorList& x, const TensorList& y, FitOptions o) {
  require_compiled("fit");
  check_data("fit", x, &y);
  KCPP_CHECK(o.validation_split >= 0.f && o.validation_split < 1.f, ValueError,
             "fit: validation_split must be in [0, 1), received {}", o.validation_split);
  KCPP_CHECK(o.epochs >= 0 && o.initial_epoch >= 0, ValueError, "fit: epochs and initial_epoch must be non-negative");
  const int64_t batch = o.batch_size.value_or(32);
  KCPP_CHECK(batch > 0, ValueError, "fit: batch_size must be positive, received {}", batch);

  std::vector<Tensor> x_train = x.items(), y_train = y.items(), x_val, y_val;
  if (o.validation_data) {
    check_data("fit (validation_data)", o.validation_data->first, &o.validation_data->second);
    x_val = o.validation_data->first.items();
    y_val = o.validation_data->second.items();
  } else if (o.validation_split > 0.f) {
    const int64_t total = x[0].dim(0);
    const int64_t split_at = static_cast<int64_t>(std::ceil(static_cast<double>(total) * (1.0 - o.validation_split)));
    x_train = rows(x.items(), 0, split_at);
    y_train = rows(y.items(), 0, split_at);
    x_val = rows(x.items(), split_at, total - split_at);
    y_val = rows(y.items(), split_at, total - split_at);
  }
  // Per-sample weights: sample_weight times class_weight of each label (of the first output).
  Tensor weights = o.sample_weight;
  if (!o.class_weight.empty()) {
    const Tensor& y0 = y_train[0];
    const Tensor ids = y0.rank() == 2 && y0.dim(1) > 1 ? ops::argmax(y0, -1) : y0;
    const auto labels = ops::cast(ids, DType::int64).to_vector<int64_t>();
    std::vector<float> cw(labels.size());
    for (size_t i = 0; i < labels.size(); ++i) {
      auto it = o.class_weight.find(labels[i]);
      cw[i] = it == o.class_weight.end() ? 1.f : it->second;
    }
    const Tensor c = Tensor::from_vector(cw, Shape{static_cast<int64_t>(cw.size())},
                                         weights.defined() ? weights.backend() : nullptr);
    weights = weights.defined() ? weights * c : c;
  }
  const int64_t n = x_train[0].dim(0);
  if (weights.defined())
    KCPP_CHECK(weights.rank() == 1 && weights.dim(0) >= n, ValueError,
               "fit: sample_weight must have shape ({},), received {}", n, weights.shape().to_string());
  data::TensorDataset dataset(x_train, y_train, weights, batch, o.shuffle);
  return fit_dataset(dataset, x_val, y_val, batch, o);
}

History Model::fit(data::Dataset& dataset, FitOptions o) {
  require_compiled("fit");
  KCPP_CHECK(dataset.num_batches() > 0, ValueError, "fit: the dataset has no batches");
  std::vector<Tensor> x_val, y_val;
  if (o.validation_data) {
    check_data("fit (validation_data)", o.validation_data->first, &o.validation_data->second);
    x_val = o.validation_data->first.items();
    y_val = o.validation_data->second.items();
  }
  KCPP_CHECK(o.validation_split == 0.f, ValueError,
             "fit: validation_split is not supported with a Dataset; pass validation_data");
  return fit_dataset(dataset, x_val, y_val, o.batch_size.value_or(32), o);
}

History Model::fit_dataset(data::Dataset& dataset, const std::vector<Tensor>& x_val, const std::vector<Tensor>& y_val,
                           int64_t val_batch, const FitOptions& o) {
  std::vector<std::shared_ptr<callbacks::Callback>> cbs;
  bool batch_logs = false;
  for (const auto& c : o.callbacks) {
    KCPP_CHECK(c.get(), ValueError, "fit: a callback is null");
    c.get()->set_model(this);
    batch_logs |= c.get()->needs_batch_logs();
    cbs.push_back(c.get());
  }
  callbacks::Logs no_logs;
  stop_training = false;
  resume_epoch.reset();
  if (data_parallel() && !mirrored()) {
    // Every replica cuts its part from the same global batches: rank 0's shuffle.
    if (const auto key = dataset.shuffle_key()) dataset.set_shuffle_key(strategy_->broadcast_key(*key));
  }
  const int verbose = is_chief() ? o.verbose : 0;
  auto history = std::make_shared<History>();  // Keras' History callback, last so it sees final logs
  history->set_model(this);
  cbs.push_back(history);
  for (auto& c : cbs) c->on_train_begin(no_logs);
  const int first_epoch = resume_epoch.value_or(o.initial_epoch);
  resume_epoch.reset();
  const int64_t steps = dataset.num_batches();
  for (int epoch = first_epoch; epoch < o.epochs && !stop_training; ++epoch) {
    if (verbose && o.epochs > 1) std::cout << "Epoch " << epoch + 1 << "/" << o.epochs << std::endl;
    utils::Progbar bar(steps, verbose, std::cout);
    reset_metrics();
    // Weights set or loaded since (callbacks, BackupAndRestore, the user between fits) reach every
    // replica: the first step of each epoch copies replica 0's state again.
    if (mirrored()) replicas_synced_ = false;
    // Processes: each replica's dropout streams from rank 0's, per epoch (what a backup restores).
    if (data_parallel() && !mirrored()) strategy_->spread_random_streams(seed_generators());
    dataset.on_epoch_begin(epoch);
    for (auto& c : cbs) c->on_epoch_begin(epoch, no_logs);
    int64_t steps_done = 0;
    {
      data::Prefetcher batches(dataset);  // the next batches are read while this one trains
      for (int64_t s = 0; s < steps && !stop_training; ++s) {
        for (auto& c : cbs) c->on_train_batch_begin(static_cast<int>(s), no_logs);
        data::Batch b = batches.next();
        KCPP_CHECK(b.y.size() == std::max<size_t>(num_outputs(), 1), ValueError,
                   "fit: batch {} holds {} target(s), the model has {} output(s)", s, b.y.size(),
                   std::max<size_t>(num_outputs(), 1));
        if (mirrored())  // the replicas move their rows to their devices themselves
          train_step(b.x, b.y, b.sample_weight);
        else
          train_step(device_inputs(b.x), targets_on_device(b.y),
                     b.sample_weight.defined() ? on_device(b.sample_weight) : Tensor());
        steps_done = s + 1;
        if (batch_logs) {
          callbacks::Logs logs = global_results();
          for (auto& c : cbs) c->on_train_batch_end(static_cast<int>(s), logs);
        }
        // MultiWorker: this process' replica's; Mirrored: every replica's, read in process.
        if (verbose == 1 && s + 1 < steps)
          bar.update_reading(s + 1, [&] { return as_items(mirrored() ? global_results() : results()); });
      }
    }
    dataset.on_epoch_end();
    std::map<std::string, double> logs = global_results();
    // Per-replica BatchNormalization statistics: replicas agree on their mean, as tf.keras reads them.
    if (mirrored() && !replicas_.empty())
      strategy_->run_in_replicas([&](int i) { strategy_->average_variables(replica(i).non_trainable_weights()); });
    else if (data_parallel() && !mirrored())
      strategy_->average_variables(non_trainable_weights());
    if (!x_val.empty() && !stop_training)
      for (const auto& [k, v] : run_evaluation(x_val, y_val, val_batch, nullptr)) logs[fmt::format("val_{}", k)] = v;
    for (auto& c : cbs) c->on_epoch_end(epoch, logs);
    bar.update(steps_done, as_items(logs), true);
  }
  for (auto& c : cbs) c->on_train_end(no_logs);
  return *history;
}

std::map<std::string, double> Model::run_evaluation(const std::vector<Tensor>& x, const std::vector<Tensor>& y,
                                                    int64_t batch, utils::Progbar* bar) {
  reset_metrics();
  // MirroredStrategy: each replica evaluates its rows of every batch on its device.
  const bool sharded = mirrored();
  std::unique_lock<std::mutex> lock;
  std::vector<Tensor> x_host, y_host;
  if (sharded) {
    lock = std::unique_lock(*replicas_mutex_);
    sync_replicas(x, false);
    x_host = on_host(x);
    y_host = on_host(y);
  }
  const int64_t n = x[0].dim(0), steps = (n + batch - 1) / batch;
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t start = s * batch, count = std::min(batch, n - start);
    if (sharded) {
      strategy_->run_in_replicas([&](int i) {
        const auto [begin, end] = strategy_->shard(count, i);
        if (begin == end) return;
        Model& m = replica(i);
        m.evaluate_batch(m.device_inputs(rows(x_host, start + begin, end - begin)),
                         targets_on_device(rows(y_host, start + begin, end - begin)));
      });
    } else {
      evaluate_step(device_inputs(rows(x, start, count)), targets_on_device(rows(y, start, count)));
    }
    if (bar && s + 1 < steps) bar->update_reading(s + 1, [&] { return as_items(sharded ? global_results() : results()); });
  }
  auto logs = sharded ? global_results() : results();
  if (bar) bar->update(steps, as_items(logs), true);
  return logs;
}

void Model::evaluate_step(const std::vector<Tensor>& xb, const std::vector<Tensor>& yb) {
  // Like a training step: the metrics' sums are updated in place.
  std::vector<Tensor> inputs = xb;
  inputs.insert(inputs.end(), yb.begin(), yb.end());
  const auto nx = static_cast<std::ptrdiff_t>(xb.size());
  run_recorded(evaluate_graphs_, inputs, false, [&](const std::vector<Tensor>& in) {
    evaluate_batch({in.begin(), in.begin() + nx}, {in.begin() + nx, in.end()});
    return std::vector<Tensor>{};
  });
}

void Model::evaluate_batch(const std::vector<Tensor>& xb, const std::vector<Tensor>& yb) {
  NoGradScope no_grad;
  const auto logits = logits_mask();
  const int64_t count = xb[0].dim(0);
  ActivityLossScope activity;
  detail::DeferredChecks checks(xb[0].backend());
  std::vector<Tensor> masks;
  const auto out = forward(xb, false, logits, &masks);
  // Per-sample losses, so the tracker's mean is over samples whatever the batch sizes; outputs with
  // steps count their valid steps.
  Tensor per_sample;
  std::vector<Tensor> per_output(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!losses_[i]) continue;  // an output left out of a loss dict
    const Folded f = fold_steps(yb[i], out[i], Tensor(), i < masks.size() ? masks[i] : Tensor());
    Tensor l = logits[i] ? losses_[i]->per_sample_from_logits(f.y_true, f.y_pred)
                         : losses_[i]->per_sample(f.y_true, f.y_pred);
    per_output[i] = l;
    if (loss_weights_[i] != 1.f) l = l * loss_weights_[i];
    // Keras weighs each batch's loss by its number of samples, whatever its steps and masks.
    if (l.dim(0) != count) l = ops::full({count}, l.dim(0) ? ops::mean(l).item() : 0.f, DType::float32, l.backend());
    per_sample = per_sample.defined() ? per_sample + l : l;
  }
  // Keras' evaluation loss includes the weights' and activity penalties too, once per batch.
  if (const Tensor extra = additional_losses(activity); extra.defined()) per_sample = per_sample + extra;
  detail::GuardedByChecks guard(xb[0].backend());
  loss_tracker_->update_state(per_sample);
  update_metrics(yb, out, masks, per_output);
}

std::map<std::string, double> Model::evaluate(const TensorList& x, const TensorList& y, EvaluateOptions o) {
  require_compiled("evaluate");
  check_data("evaluate", x, &y);
  const int64_t batch = o.batch_size.value_or(32);
  KCPP_CHECK(batch > 0, ValueError, "evaluate: batch_size must be positive, received {}", batch);
  utils::Progbar bar((x[0].dim(0) + batch - 1) / batch, o.verbose, std::cout);
  return run_evaluation(x.items(), y.items(), batch, &bar);
}

std::vector<Tensor> Model::predict_all(const TensorList& x, PredictOptions o) {
  check_data("predict", x, nullptr);
  NoGradScope no_grad;
  const int64_t batch = o.batch_size.value_or(32);
  KCPP_CHECK(batch > 0, ValueError, "predict: batch_size must be positive, received {}", batch);
  const int64_t n = x[0].dim(0);
  KCPP_CHECK(n > 0, ValueError, "predict: x has no samples ({})", x[0].shape().to_string());
  // On the CPU a batch runs through the network in slices of 64 samples, so each layer's output is
  // still in cache for the next (about 1.4x the samples/s on fmnist_cnn at batch_size 1000). The
  // results are the same where every layer treats samples independently.
  const int64_t step =
      backend::backend_name() == "cpu" && samples_independent() ? std::min<int64_t>(batch, 64) : batch;
  std::vector<std::vector<Tensor>> parts;
  if (mirrored()) {
    // MirroredStrategy: each replica predicts its rows of every batch on its device.
    std::lock_guard lock(*replicas_mutex_);
    sync_replicas(x.items(), false);
    const std::vector<Tensor> x_host = on_host(x.items());
    const int replicas = strategy_->local_replicas();
    for (int64_t start = 0; start < n; start += batch) {
      const int64_t count = std::min(batch, n - start);
      std::vector<std::vector<Tensor>> outs(static_cast<size_t>(replicas));
      strategy_->run_in_replicas([&](int i) {
        const auto [begin, end] = strategy_->shard(count, i);
        if (begin == end) return;
        NoGradScope no_grad_here;
        Model& m = replica(i);
        outs[i] = m.forward(m.device_inputs(rows(x_host, start + begin, end - begin)), false, {});
      });
      for (const auto& out : outs) {
        if (out.empty()) continue;
        if (parts.empty()) parts.resize(out.size());
        for (size_t k = 0; k < out.size(); ++k) parts[k].push_back(ops::to_backend(out[k], default_backend()));
      }
    }
  }
  for (int64_t start = parts.empty() ? 0 : n; start < n; start += step) {
    const auto out = forward(device_inputs(rows(x.items(), start, std::min(step, n - start))), false, {});
    if (parts.empty()) parts.resize(out.size());
    for (size_t i = 0; i < out.size(); ++i) parts[i].push_back(out[i]);
  }
  std::vector<Tensor> result;
  for (auto& p : parts) result.push_back(p.size() == 1 ? p[0] : ops::concatenate(p, 0));
  return result;
}

bool Model::samples_independent() const {
  for (const Layer* l : layers())
    if (!l->samples_independent()) return false;
  return true;
}

Tensor Model::predict(const TensorList& x, PredictOptions o) { return predict_all(x, o).at(0); }

// summary() ------------------------------------------------------------------------------------------------

namespace {
std::string thousands(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}
std::string readable_size(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB"};
  int u = 0;
  while (bytes >= 1024 && u < 3) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{:.2f} {}", bytes, units[u]);
}
// Column widths as Keras sets them and rich then shrinks them: positions times the line length,
// plus one space of padding on each side, reduced evenly (round half to even) to fit the line.
std::vector<int> column_widths(int line_length, const std::vector<double>& positions) {
  std::vector<int> w;
  int current = 0;
  for (double p : positions) {
    const int pos = static_cast<int>(p * line_length);
    w.push_back(pos - current + 2);
    current = pos;
  }
  int total = std::accumulate(w.begin(), w.end(), 0) + static_cast<int>(w.size()) + 1;
  int excess = total - line_length, remaining_ratio = static_cast<int>(w.size());
  for (auto& width : w) {
    if (excess <= 0) break;
    const int d = static_cast<int>(std::nearbyint(static_cast<double>(excess) / remaining_ratio));
    width -= d;
    excess -= d;
    --remaining_ratio;
  }
  return w;
}
// Display columns of UTF-8 text (every character here is one column wide).
int display_width(const std::string& t) {
  int n = 0;
  for (unsigned char c : t) n += (c & 0xC0) != 0x80;
  return n;
}
// Pads to `width` columns with one space of padding each side.
std::string cell(const std::string& text, int width, bool right) {
  const std::string pad(static_cast<size_t>(std::max(0, width - 2 - display_width(text))), ' ');
  return right ? fmt::format(" {}{} ", pad, text) : fmt::format(" {}{} ", text, pad);
}
// Wraps text into lines of at most `width` columns at spaces; a word longer than the width is cut
// with an ellipsis, as rich (which Keras prints its summary with) does for overflow="ellipsis".
std::vector<std::string> wrap(const std::string& text, int width) {
  std::vector<std::string> lines;
  std::string line;
  auto flush = [&] {
    if (!line.empty()) lines.push_back(line);
    line.clear();
  };
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find(' ', i);
    if (j == std::string::npos) j = text.size();
    std::string word = text.substr(i, j - i);
    i = j + 1;
    if (!line.empty() && display_width(line) + 1 + display_width(word) <= width) {
      line += " " + word;
      continue;
    }
    flush();
    if (display_width(word) > width) word = word.substr(0, static_cast<size_t>(std::max(width - 1, 0))) + "\u2026";
    line = word;
  }
  flush();
  if (lines.empty()) lines.push_back("");
  return lines;
}
// One table row: every cell wrapped, the row as tall as its tallest cell.
std::string row(const std::vector<std::string>& cells, const std::vector<int>& w, const std::vector<bool>& right,
                const char* bar) {
  std::vector<std::vector<std::string>> wrapped;
  size_t height = 1;
  for (size_t c = 0; c < cells.size(); ++c) {
    wrapped.push_back(wrap(cells[c], w[c] - 2));
    height = std::max(height, wrapped.back().size());
  }
  std::string out;
  for (size_t h = 0; h < height; ++h) {
    out += bar;
    for (size_t c = 0; c < cells.size(); ++c) {
      out += cell(h < wrapped[c].size() ? wrapped[c][h] : "", w[c], right[c]);
      out += bar;
    }
    out += "\n";
  }
  return out;
}
std::string rule(const std::vector<int>& w, const char* left, const char* fill, const char* mid, const char* right) {
  std::string s = left;
  for (size_t i = 0; i < w.size(); ++i) {
    for (int k = 0; k < w[i]; ++k) s += fill;
    s += i + 1 < w.size() ? mid : right;
  }
  return s + "\n";
}
}  // namespace

bool Model::is_functional() const {
  if (inputs_.size() != 1 || outputs_.size() != 1) return true;
  std::set<const Layer*> layers_seen;
  std::set<const detail::KerasTensorImpl*> consumed;
  for (const auto& node : nodes_) {
    if (node->inputs.size() != 1 || !layers_seen.insert(node->layer.get()).second) return true;
    if (!consumed.insert(node->inputs[0].impl().get()).second) return true;  // a tensor feeding two layers
  }
  return false;
}

std::vector<Model::SummaryRow> Model::summary_rows() const {
  // Each call of a layer is its node: "shared[1][0]" is the output of the second call of "shared".
  // Keras numbers a nested Functional model's construction node first.
  std::map<const detail::SymbolicNode*, int64_t> node_index;
  std::map<const Layer*, int64_t> calls;
  for (const KerasTensor& t : inputs_) node_index[t.impl()->node.get()] = calls[&t.producer()]++;
  for (const auto& node : nodes_)
    node_index[node.get()] = calls[node->layer.get()]++ + (node->layer->class_name() == "Functional" ? 1 : 0);
  std::vector<SummaryRow> rows;
  // Rows in model.layers order (Keras'); a shared layer lists the inputs of every call.
  for (const auto& layer : ordered_layers_) {
    SummaryRow row{layer.get(), "?", ""};
    std::vector<std::string> from;
    bool first = true;
    for (const KerasTensor& t : inputs_)
      if (&t.producer() == layer.get()) {
        row.shape = shape_to_string(t.shape());
        row.connected_to.assign(1, '-');  // not = "-": GCC 12 warns falsely (-Wrestrict)
      }
    for (const auto& node : nodes_) {
      if (node->layer != layer) continue;
      if (first) {
        const auto impl = node->outputs.at(0).lock();
        row.shape = impl ? shape_to_string(impl->shape) : "?";
        first = false;
      }
      for (const KerasTensor& in : node->all_inputs())
        from.push_back(fmt::format("{}[{}][{}]", in.producer().name(), node_index.at(in.impl()->node.get()),
                                   in.impl()->output_index));
    }
    if (!from.empty()) row.connected_to = fmt::format("{}", fmt::join(from, ", "));
    rows.push_back(std::move(row));
  }
  return rows;
}

namespace {
// rich prints on a console line_length wide and crops what does not fit (wide functional tables).
std::string crop_lines(const std::string& text, int width) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    int columns = 0;
    size_t cut = 0;
    while (cut < line.size() && columns < width) {
      const unsigned char c = static_cast<unsigned char>(line[cut]);
      cut += c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;  // one column per code point here
      ++columns;
    }
    out += line.substr(0, std::min(cut, line.size()));
    if (end == std::string::npos) break;
    out += '\n';
    start = end + 1;
  }
  return out;
}
}  // namespace

std::string Model::summary_string(int line_length, int console_width) {
  const bool functional = is_functional();
  const auto w =
      functional ? column_widths(line_length, {0.3, 0.56, 0.74, 1.0}) : column_widths(line_length, {0.45, 0.80, 1.0});
  std::ostringstream s;
  s << "Model: \"" << name() << "\"\n";
  s << rule(w, "\u250f", "\u2501", "\u2533", "\u2513");
  std::vector<std::string> header{"Layer (type)", "Output Shape", "Param #"};
  std::vector<bool> right{false, false, true};
  if (functional) {
    header.push_back("Connected to");
    right.push_back(false);
  }
  s << row(header, w, right, "\u2503");
  s << rule(w, "\u2521", "\u2501", "\u2547", "\u2529");
  const auto rows = summary_rows();
  for (size_t i = 0; i < rows.size(); ++i) {
    Layer* l = rows[i].layer;
    std::vector<std::string> cells{fmt::format("{} ({})", l->name(), l->class_name()), rows[i].shape,
                                   l->built() ? thousands(l->count_params()) : "0 (unbuilt)"};
    if (functional) cells.push_back(rows[i].connected_to);
    s << row(cells, w, right, "\u2502");
    if (i + 1 < rows.size()) s << rule(w, "\u251c", "\u2500", "\u253c", "\u2524");
  }
  s << rule(w, "\u2514", "\u2500", "\u2534", "\u2518");
  int64_t trainable = 0, frozen = 0, optimizer_params = 0;
  for (Variable* v : weights()) (v->trainable() ? trainable : frozen) += v->value().num_elements();
  const bool show_optimizer = optimizer_ && optimizer_->built();
  if (show_optimizer) {
    // Keras counts the iteration counter, the learning rate (unless a schedule computes it), the slots
    // and any extra state (Nadam's momentum product), and adds them to the total.
    for (Variable* v : optimizer_->variables()) optimizer_params += v->value().num_elements();
    optimizer_params +=
        1 + (optimizer_->has_schedule() ? 0 : 1) + static_cast<int64_t>(optimizer_->extra_state().size());
    // A LossScaleOptimizer's own: its iteration and learning rate, step_counter and dynamic_scale.
    if (dynamic_cast<const optimizers::LossScaleOptimizer*>(optimizer_.get())) optimizer_params += 4;
  }
  const int64_t total = trainable + frozen + optimizer_params;
  s << " Total params: " << thousands(total) << " (" << readable_size(4.0 * static_cast<double>(total)) << ")\n";
  s << " Trainable params: " << thousands(trainable) << " (" << readable_size(4.0 * static_cast<double>(trainable))
    << ")\n";
  s << " Non-trainable params: " << thousands(frozen) << " (" << readable_size(4.0 * static_cast<double>(frozen))
    << ")\n";
  if (show_optimizer)
    s << " Optimizer params: " << thousands(optimizer_params) << " ("
      << readable_size(4.0 * static_cast<double>(optimizer_params)) << ")\n";
  return crop_lines(s.str(), console_width);
}

void Model::summary(std::ostream& out, std::optional<int> line_length) {
  const int default_length = is_functional() ? 108 : 88;
  int length = default_length;
  int columns = 80;  // what Python assumes off a terminal
  winsize ws{};
  if (&out == &std::cout && isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    columns = ws.ws_col;
  length = line_length ? *line_length : std::min(default_length, columns - 4);
  out << summary_string(length, columns);
  out.flush();
}

}  // namespace keras
