#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "export.h"
#include "tensor.h"

namespace keras {

class Variable;

namespace detail {

/// Where an op input's gradient goes: the node that produced it, or a leaf tensor.
struct Edge {
  std::shared_ptr<Node> node;  // null for a leaf
  uint32_t output_index = 0;
  std::weak_ptr<TensorImpl> leaf;  // set for a leaf that requires grad
  bool needs_grad = false;
};

/// One recorded op: how to turn output gradients into input gradients. The closure keeps only
/// what the rule needs.
struct Node {
  using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_outputs)>;
  const char* name = "";
  std::vector<Edge> inputs;
  std::vector<Shape> output_shapes;  // zeros stand in for outputs that got no gradient
  std::vector<DType> output_dtypes;
  BackwardFn backward;  // null once a non-persistent tape has run it (its saved tensors are freed)
  uint64_t sequence = 0;  // creation order: a valid topological order
  uint64_t tape = 0;      // the one tape that recorded it; 0 when nested tapes recorded it together
};

/// True inside a GradientTape and outside any NoGradScope.
KERASCPP_API bool is_recording();

/// Records an op when recording and some input requires grad. `backward` gets one gradient per
/// output (zeros for unused outputs) and returns one per input (undefined where not needed).
/// Marks `outputs` as produced by the new node.
KERASCPP_API void record(const char* name, const std::vector<Tensor>& inputs, std::vector<Tensor*> outputs,
                         Node::BackwardFn backward);

/// True when the op with these inputs would be recorded.
KERASCPP_API bool needs_recording(const std::vector<Tensor>& inputs);
/// True when a recorded op must produce t's gradient (t requires grad or comes from a recorded
/// op): a backward rule skips the work for inputs that need none (the input batch of a first
/// convolution, a frozen kernel).
KERASCPP_API bool needs_grad(const Tensor& t);

}  // namespace detail

/// Records the ops run while it lives, so gradients can be asked for, like tf.GradientTape.
/// Trainable variables are watched automatically; other tensors with watch().
///
///     GradientTape tape;
///     Tensor loss = ops::mean(ops::square(ops::subtract(model_output, y)));
///     std::vector<Tensor> grads = tape.gradient(loss, model.trainable_variables());
///
/// As in TensorFlow, a tape computes gradients once unless it is persistent: its gradient() frees
/// what each op kept for its backward pass as soon as that op has run, so a training step's peak
/// memory is the activations, not the activations and all their gradients. A persistent tape keeps
/// everything until its tensors go, and gradient() may be called on it again.
class KERASCPP_API GradientTape {
 public:
  explicit GradientTape(bool persistent = false);
  ~GradientTape();
  GradientTape(const GradientTape&) = delete;
  GradientTape& operator=(const GradientTape&) = delete;

  /// Makes later ops on `tensor` recorded (for tensors that are not trainable variables).
  void watch(Tensor& tensor);
  /// Stops recording now (ops after this are not recorded even while the tape lives).
  void stop_recording();
  /// Called by the next gradient() with (source index, gradient) as soon as a source's gradient is
  /// final, while the backward pass goes on: data-parallel training starts all-reducing early
  /// gradients here. Every source is reported once (zeros for those the target does not reach).
  void on_gradient_ready(std::function<void(size_t, const Tensor&)> callback) { on_ready_ = std::move(callback); }

  /// d target / d source for each source; a non-scalar target is summed first, as TensorFlow does,
  /// unless `output_gradient` (the target's shape) gives the upstream gradient to start from.
  /// A source the target does not depend on gets zeros, as does one reached only through ops whose
  /// backward pass another tape's gradient() already ran and freed. Sources must be floating tensors.
  /// A second call on a tape that is not persistent throws ValueError.
  std::vector<Tensor> gradient(const Tensor& target, const std::vector<Tensor>& sources,
                               const Tensor& output_gradient = Tensor());
  std::vector<Tensor> gradient(const Tensor& target, const std::vector<Variable*>& sources);

 private:
  bool active_ = true;
  bool persistent_ = false;
  bool used_ = false;  // gradient() has run (once is all a non-persistent tape allows)
  uint64_t id_ = 0;
  std::function<void(size_t, const Tensor&)> on_ready_;
};

/// Disables recording while it lives, like torch.no_grad; nests.
class KERASCPP_API NoGradScope {
 public:
  NoGradScope();
  ~NoGradScope();
  NoGradScope(const NoGradScope&) = delete;
  NoGradScope& operator=(const NoGradScope&) = delete;
};

}  // namespace keras
