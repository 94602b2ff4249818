#pragma once
// Averages gradients across ranks in buckets, each bucket all-reduced as soon as all of its
// gradients are final, while the backward pass goes on (as PyTorch's DDP reducer does).
#include <chrono>
#include <map>
#include <memory>
#include <vector>

#include "../core/export.h"
#include "../core/variable.h"
#include "communicator.h"

namespace keras::distribute {

class KERASCPP_API GradientReducer {
 public:
  GradientReducer(std::shared_ptr<Communicator> comm, int64_t bucket_bytes);

  /// Starts a step over gradients shaped like `shapes` (the trainable variables, in order). Each
  /// gradient is multiplied by `scale` before the sum across ranks (this rank's share of the
  /// global batch, so that the sum is the gradient of the global batch's mean loss).
  void begin(const std::vector<Shape>& shapes, float scale);
  /// The same, for the gradients of `variables`.
  void begin(const std::vector<Variable*>& variables, float scale);
  /// Gradient `index` is final (GradientTape::on_gradient_ready); launches the buckets it completes.
  void ready(size_t index, const Tensor& grad);
  /// Waits for every bucket and returns the summed gradients, in the order of begin().
  std::vector<Tensor> finish();

  /// "steps", "buckets", "buckets_launched_during_backward" (overlap: launched before the backward
  /// pass ended), "backward_us" (begin to finish), "wait_us" (time finish() spent waiting).
  std::map<std::string, int64_t> counters() const { return counters_; }

 private:
  struct Bucket {
    std::vector<size_t> members;  // gradient indices, in the order they are packed
    int64_t elements = 0;
    size_t ready = 0;
    Tensor buffer;
    std::unique_ptr<Work> work;
  };
  void plan(const std::vector<Shape>& shapes);
  void launch_ready_buckets(bool during_backward);

  std::shared_ptr<Communicator> comm_;
  int64_t bucket_bytes_;
  std::vector<Shape> shapes_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;  // gradient index -> bucket
  std::vector<Tensor> grads_;
  size_t next_launch_ = 0;  // buckets are launched in order, the same on every rank
  float scale_ = 1.f;
  std::chrono::steady_clock::time_point began_;
  std::map<std::string, int64_t> counters_;
};

}  // namespace keras::distribute
