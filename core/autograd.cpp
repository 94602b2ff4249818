#include "core/autograd.h"

#include <algorithm>
#include <atomic>
#include <unordered_map>

#include "core/check.h"
#include "core/ops.h"
#include "core/variable.h"

namespace keras {
namespace detail {
namespace {
thread_local std::vector<uint64_t> active_tapes;  // ids of this thread's recording tapes
thread_local int no_grad_depth = 0;
std::atomic<uint64_t> next_sequence{1};
std::atomic<uint64_t> next_tape_id{1};
}  // namespace

bool is_recording() { return !active_tapes.empty() && no_grad_depth == 0; }

bool needs_recording(const std::vector<Tensor>& inputs) {
  if (!is_recording()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && (t.impl()->autograd.requires_grad || t.impl()->autograd.grad_fn)) return true;
  return false;
}

bool needs_grad(const Tensor& t) {
  return is_recording() && t.defined() && (t.impl()->autograd.requires_grad || t.impl()->autograd.grad_fn);
}

void record(const char* name, const std::vector<Tensor>& inputs, std::vector<Tensor*> outputs,
            Node::BackwardFn backward) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    Edge e;
    if (t.defined()) {
      const AutogradMeta& m = t.impl()->autograd;
      if (m.grad_fn) {
        e.node = m.grad_fn;
        e.output_index = m.output_index;
        e.needs_grad = true;
      } else if (m.requires_grad) {
        e.leaf = t.impl_ptr();
        e.needs_grad = true;
      }
    }
    node->inputs.push_back(std::move(e));
  }
  node->backward = std::move(backward);
  node->sequence = next_sequence.fetch_add(1, std::memory_order_relaxed);
  node->tape = active_tapes.size() == 1 ? active_tapes.front() : 0;
  for (uint32_t i = 0; i < outputs.size(); ++i) {
    node->output_shapes.push_back(outputs[i]->shape());
    node->output_dtypes.push_back(outputs[i]->dtype());
    outputs[i]->impl()->autograd.grad_fn = node;
    outputs[i]->impl()->autograd.output_index = i;
  }
}

}  // namespace detail

GradientTape::GradientTape(bool persistent)
    : persistent_(persistent), id_(detail::next_tape_id.fetch_add(1, std::memory_order_relaxed)) {
  detail::active_tapes.push_back(id_);
}
GradientTape::~GradientTape() { stop_recording(); }

void GradientTape::stop_recording() {
  if (active_) {
    auto& tapes = detail::active_tapes;  // tapes may stop in any order (on the thread that made them)
    if (auto it = std::find(tapes.begin(), tapes.end(), id_); it != tapes.end()) tapes.erase(it);
    active_ = false;
  }
}

void GradientTape::watch(Tensor& tensor) {
  KCPP_CHECK(tensor.defined(), ValueError, "GradientTape::watch: the tensor is undefined");
  if (!tensor.impl()->autograd.grad_fn) tensor.set_requires_grad(true);
}

std::vector<Tensor> GradientTape::gradient(const Tensor& target, const std::vector<Tensor>& sources,
                                           const Tensor& output_gradient) {
  using detail::Node;
  KCPP_CHECK(target.defined(), ValueError, "GradientTape::gradient: the target is undefined");
  KCPP_CHECK(is_floating(target.dtype()), TypeError,
             "GradientTape::gradient: the target must be floating-point, received dtype {}",
             dtype_name(target.dtype()));
  KCPP_CHECK(persistent_ || !used_, ValueError,
             "GradientTape::gradient: this tape has computed its gradients once and freed what the ops kept for "
             "them; make it with GradientTape(/*persistent=*/true) to ask for gradients more than once");
  NoGradScope no_grad;  // the backward pass itself is not recorded

  // Gradients flowing into each node output, and into each leaf.
  std::unordered_map<Node*, std::vector<Tensor>> node_grads;
  std::unordered_map<const detail::TensorImpl*, Tensor> leaf_grads;
  auto accumulate = [](Tensor& slot, const Tensor& g) { slot = slot.defined() ? ops::add(slot, g) : g; };

  if (output_gradient.defined())
    KCPP_CHECK(output_gradient.shape() == target.shape() && output_gradient.dtype() == target.dtype(), ShapeError,
               "GradientTape::gradient: output_gradient must match the target {}, received {}", target.to_string(),
               output_gradient.to_string());
  for (const Tensor& s : sources) KCPP_CHECK(s.defined(), ValueError, "GradientTape::gradient: a source is undefined");
  used_ = true;  // a call refused above leaves the tape as it was
  const Tensor seed = output_gradient.defined() ? output_gradient : ops::ones_like(target);
  const auto& root = target.impl()->autograd;
  std::vector<std::shared_ptr<Node>> order;
  if (root.grad_fn) {
    // Collect reachable nodes, then run them newest first.
    std::vector<Node*> stack{root.grad_fn.get()};
    std::unordered_map<Node*, std::shared_ptr<Node>> seen{{root.grad_fn.get(), root.grad_fn}};
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      for (const auto& e : n->inputs)
        if (e.node && seen.emplace(e.node.get(), e.node).second) stack.push_back(e.node.get());
    }
    for (auto& [ptr, sp] : seen) order.push_back(sp);
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a->sequence > b->sequence; });
    node_grads[root.grad_fn.get()].resize(root.grad_fn->output_shapes.size());
    node_grads[root.grad_fn.get()][root.output_index] = seed;
  } else if (root.requires_grad) {
    leaf_grads[target.impl()] = seed;
  }

  // For on_gradient_ready: how many recorded uses of each leaf source are still to run; a leaf's
  // gradient is final when none is left.
  std::unordered_map<const detail::TensorImpl*, std::vector<size_t>> leaf_sources;
  std::unordered_map<const detail::TensorImpl*, int> pending_uses;
  std::vector<bool> reported(sources.size(), false);
  auto report = [&](size_t i, const Tensor& g) {
    if (reported[i]) return;
    reported[i] = true;
    on_ready_(i, g.defined() ? g : ops::zeros_like(sources[i]));
  };
  if (on_ready_) {
    for (size_t i = 0; i < sources.size(); ++i)
      if (sources[i].defined() && !sources[i].impl()->autograd.grad_fn) leaf_sources[sources[i].impl()].push_back(i);
    for (const auto& n : order)
      for (const auto& e : n->inputs)
        if (auto leaf = e.leaf.lock(); leaf && leaf_sources.count(leaf.get())) ++pending_uses[leaf.get()];
  }
  auto used_once_more = [&](const Node& n) {
    if (!on_ready_) return;
    for (const auto& e : n.inputs) {
      auto leaf = e.leaf.lock();
      if (!leaf) continue;
      auto it = pending_uses.find(leaf.get());
      if (it == pending_uses.end() || --it->second > 0) continue;
      auto g = leaf_grads.find(leaf.get());
      for (size_t i : leaf_sources[leaf.get()]) report(i, g == leaf_grads.end() ? Tensor() : g->second);
    }
  };

  // The output gradients of nodes whose outputs are sources (intermediate tensors can be sources
  // too); every other gradient is freed as soon as its node has run.
  std::unordered_map<Node*, std::vector<Tensor>> kept;
  for (const Tensor& s : sources)
    if (s.defined() && s.impl()->autograd.grad_fn) kept.emplace(s.impl()->autograd.grad_fn.get(), std::vector<Tensor>{});
  for (const auto& n : order) {
    auto it = node_grads.find(n.get());
    if (it == node_grads.end()) {
      used_once_more(*n);
      continue;
    }
    std::vector<Tensor> grads = std::move(it->second);
    node_grads.erase(it);
    if (!n->backward) {  // freed by another tape's gradient(): nothing flows past it
      used_once_more(*n);
      continue;
    }
    grads.resize(n->output_shapes.size());
    for (size_t i = 0; i < grads.size(); ++i)
      if (!grads[i].defined()) grads[i] = ops::zeros(n->output_shapes[i], n->output_dtypes[i], target.backend());
    if (auto k = kept.find(n.get()); k != kept.end()) k->second = grads;
    std::vector<Tensor> input_grads = n->backward(grads);
    KCPP_ASSERT(input_grads.size() == n->inputs.size());
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const auto& e = n->inputs[i];
      if (!e.needs_grad || !input_grads[i].defined()) continue;
      if (e.node) {
        auto& slot = node_grads[e.node.get()];
        slot.resize(e.node->output_shapes.size());
        accumulate(slot[e.output_index], input_grads[i]);
      } else if (auto leaf = e.leaf.lock()) {
        accumulate(leaf_grads[leaf.get()], input_grads[i]);
      }
    }
    used_once_more(*n);
    if (!persistent_ && n->tape == id_) {  // recorded by this tape alone: nobody can ask for it again
      n->backward = nullptr;
      n->inputs.clear();
    }
  }

  std::vector<Tensor> out;
  out.reserve(sources.size());
  for (const Tensor& s : sources) {
    Tensor g;
    const auto& m = s.impl()->autograd;
    if (m.grad_fn) {
      auto it = kept.find(m.grad_fn.get());
      if (it != kept.end() && m.output_index < it->second.size()) g = it->second[m.output_index];
    } else {
      auto it = leaf_grads.find(s.impl());
      if (it != leaf_grads.end()) g = it->second;
    }
    out.push_back(g.defined() ? g : ops::zeros_like(s));
  }
  if (on_ready_)  // sources the backward pass never reached, and intermediate tensors
    for (size_t i = 0; i < out.size(); ++i) report(i, out[i]);
  on_ready_ = nullptr;
  return out;
}

std::vector<Tensor> GradientTape::gradient(const Tensor& target, const std::vector<Variable*>& sources) {
  std::vector<Tensor> tensors;
  tensors.reserve(sources.size());
  for (const Variable* v : sources) {
    KCPP_CHECK(v, ValueError, "GradientTape::gradient: a variable pointer is null");
    tensors.push_back(v->value());
  }
  return gradient(target, tensors);
}

NoGradScope::NoGradScope() { ++detail::no_grad_depth; }
NoGradScope::~NoGradScope() { --detail::no_grad_depth; }

Variable::Variable(const Tensor& initial_value, std::string name, bool trainable)
    : name_(std::move(name)), trainable_(trainable) {
  KCPP_CHECK(initial_value.defined(), ValueError, "Variable '{}': the initial value is undefined", name_);
  NoGradScope no_grad;
  value_ = ops::copy(initial_value);
  if (is_floating(value_.dtype())) value_.set_requires_grad(trainable_);
}

void Variable::set_trainable(bool trainable) {
  trainable_ = trainable;
  if (is_floating(value_.dtype())) value_.set_requires_grad(trainable);
}

namespace {
thread_local std::optional<DType> autocast_dtype;
}  // namespace

AutocastScope::AutocastScope(std::optional<DType> dtype) : previous_(autocast_dtype) { autocast_dtype = dtype; }
AutocastScope::~AutocastScope() { autocast_dtype = previous_; }
std::optional<DType> AutocastScope::current() { return autocast_dtype; }

Tensor Variable::value() const {
  if (autocast_dtype && autocast_ && value_.defined() && is_floating(value_.dtype()) &&
      value_.dtype() != *autocast_dtype)
    return ops::cast(value_, *autocast_dtype);
  return value_;
}

void Variable::assign(const Tensor& new_value) {
  KCPP_CHECK(new_value.shape() == value_.shape(), ShapeError,
             "Variable '{}': cannot assign a value of shape {} to a variable of shape {}", name_,
             new_value.shape().to_string(), value_.shape().to_string());
  KCPP_CHECK(new_value.dtype() == value_.dtype(), TypeError,
             "Variable '{}': cannot assign a value of dtype {} to a variable of dtype {}", name_,
             dtype_name(new_value.dtype()), dtype_name(value_.dtype()));
  ops::copy_into(new_value, value_);
}

}  // namespace keras
