#include "distributed/gradient_reducer.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::distribute {

GradientReducer::GradientReducer(std::shared_ptr<Communicator> comm, int64_t bucket_bytes)
    : comm_(std::move(comm)), bucket_bytes_(bucket_bytes) {
  KCPP_CHECK(comm_, ValueError, "GradientReducer: the communicator is null");
  KCPP_CHECK(bucket_bytes_ > 0, ValueError, "GradientReducer: bucket_bytes must be positive, received {}",
             bucket_bytes_);
}

// Buckets hold consecutive gradients from the last variable backwards: the backward pass makes the
// last layers' gradients first, so the first bucket fills first.
void GradientReducer::plan(const std::vector<Shape>& shapes) {
  shapes_ = shapes;
  buckets_.clear();
  bucket_of_.assign(shapes.size(), 0);
  int64_t bytes = 0;
  for (size_t k = shapes.size(); k-- > 0;) {
    const int64_t b = shapes[k].num_elements() * 4;
    if (buckets_.empty() || (bytes + b > bucket_bytes_ && !buckets_.back().members.empty())) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().members.push_back(k);
    buckets_.back().elements += shapes[k].num_elements();
    bucket_of_[k] = buckets_.size() - 1;
    bytes += b;
  }
}

void GradientReducer::begin(const std::vector<Shape>& shapes, float scale) {
  if (shapes != shapes_) plan(shapes);
  for (auto& b : buckets_) {
    b.ready = 0;
    b.buffer = Tensor();
    b.work.reset();
  }
  grads_.assign(shapes.size(), Tensor());
  next_launch_ = 0;
  scale_ = scale;
  began_ = std::chrono::steady_clock::now();
}

void GradientReducer::begin(const std::vector<Variable*>& variables, float scale) {
  std::vector<Shape> shapes;
  for (const Variable* v : variables) shapes.push_back(v->value().shape());
  begin(shapes, scale);
}

void GradientReducer::ready(size_t index, const Tensor& grad) {
  KCPP_ASSERT(index < grads_.size() && !grads_[index].defined());
  KCPP_CHECK(grad.shape() == shapes_[index], ShapeError, "GradientReducer: gradient {} has shape {}, expected {}",
             index, grad.shape().to_string(), shapes_[index].to_string());
  grads_[index] = grad;
  ++buckets_[bucket_of_[index]].ready;
  launch_ready_buckets(true);
}

void GradientReducer::launch_ready_buckets(bool during_backward) {
  for (auto& b : buckets_)
    if (b.work) b.work->test();  // MPI progresses inside its calls: give it some
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].ready == buckets_[next_launch_].members.size()) {
    Bucket& b = buckets_[next_launch_++];
    std::vector<Tensor> flat;
    for (size_t k : b.members) flat.push_back(ops::reshape(grads_[k], {shapes_[k].num_elements()}));
    b.buffer = flat.size() == 1 ? ops::copy(flat[0]) : ops::concatenate(flat, 0);
    if (scale_ != 1.f) b.buffer = b.buffer * scale_;
    b.work = comm_->all_reduce_async(b.buffer, ReduceOp::sum);
    ++counters_["buckets"];
    if (during_backward) ++counters_["buckets_launched_during_backward"];
  }
}

std::vector<Tensor> GradientReducer::finish() {
  for (size_t k = 0; k < grads_.size(); ++k)
    KCPP_CHECK(grads_[k].defined(), ValueError, "GradientReducer: gradient {} of {} was never reported", k,
               grads_.size());
  const auto backward_end = std::chrono::steady_clock::now();
  launch_ready_buckets(false);
  std::vector<Tensor> out(grads_.size());
  for (auto& b : buckets_) {
    b.work->wait();
    // Each gradient is a view into the bucket (no copy): its storage, at the gradient's offset.
    const size_t elem = dtype_size(b.buffer.dtype());
    size_t offset = b.buffer.impl()->offset;
    for (size_t k : b.members) {
      auto view = std::make_shared<detail::TensorImpl>();
      view->shape = shapes_[k];
      view->dtype = b.buffer.dtype();
      view->storage = b.buffer.impl()->storage;
      view->offset = offset;
      out[k] = Tensor(std::move(view));
      offset += static_cast<size_t>(shapes_[k].num_elements()) * elem;
    }
    b.work.reset();
    b.buffer = Tensor();
  }
  const auto end = std::chrono::steady_clock::now();
  using us = std::chrono::microseconds;
  ++counters_["steps"];
  counters_["backward_us"] += std::chrono::duration_cast<us>(backward_end - began_).count();
  counters_["wait_us"] += std::chrono::duration_cast<us>(end - backward_end).count();
  grads_.clear();
  return out;
}

}  // namespace keras::distribute
