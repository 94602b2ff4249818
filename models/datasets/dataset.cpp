#include "models/datasets/dataset.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "core/check.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/registry.h"

namespace keras::data {

Dataset::~Dataset() = default;

TensorDataset::TensorDataset(std::vector<Tensor> x, std::vector<Tensor> y, Tensor sample_weight, int64_t batch_size,
                             bool shuffle)
    : x_(std::move(x)),
      y_(std::move(y)),
      weights_(std::move(sample_weight)),
      batch_size_(batch_size),
      shuffle_(shuffle),
      shuffle_key_(random::make_key(std::nullopt)) {
  KCPP_CHECK(!x_.empty() && batch_size_ > 0, ValueError, "TensorDataset: needs inputs and a positive batch size");
  n_ = x_[0].dim(0);
  order_.resize(static_cast<size_t>(n_));
  std::iota(order_.begin(), order_.end(), 0);
}

int64_t TensorDataset::num_batches() const { return (n_ + batch_size_ - 1) / batch_size_; }

void TensorDataset::on_epoch_begin(int epoch) {
  if (!shuffle_) return;
  std::iota(order_.begin(), order_.end(), 0);
  std::mt19937_64 gen(random::splitmix64(shuffle_key_ ^ random::splitmix64(static_cast<uint64_t>(epoch) + 1)));
  std::shuffle(order_.begin(), order_.end(), gen);
}

Batch TensorDataset::get_batch(int64_t index) {
  KCPP_CHECK(index >= 0 && index < num_batches(), ValueError, "TensorDataset: batch {} is out of range [0, {})", index,
             num_batches());
  const int64_t start = index * batch_size_, count = std::min(batch_size_, n_ - start);
  auto pick = [&](const Tensor& t) {
    if (!shuffle_) {
      std::vector<int64_t> starts(t.rank(), 0), sizes(t.rank(), -1);
      starts[0] = start;
      sizes[0] = count;
      return ops::slice(t, starts, sizes);
    }
    const std::vector<int64_t> ids(order_.begin() + start, order_.begin() + start + count);
    return ops::take(t, Tensor::from_vector(ids, Shape{count}, t.backend()), 0);
  };
  Batch b;
  for (const Tensor& t : x_) b.x.push_back(pick(t));
  for (const Tensor& t : y_) b.y.push_back(pick(t));
  if (weights_.defined()) b.sample_weight = pick(weights_);
  return b;
}

Prefetcher::Prefetcher(Dataset& dataset, int depth)
    : dataset_(dataset), depth_(static_cast<size_t>(std::max(depth, 1))), worker_([this] { run(); }) {}

Prefetcher::~Prefetcher() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  worker_.join();
}

void Prefetcher::run() {
  // The cores belong to the training thread. OpenMP's team size is per thread, and batches are often
  // built with CPU ops while the model trains on a GPU, so the CPU backend is told too.
  default_backend().set_thread_parallelism(1);
  if (default_backend().name() != "cpu") {
    try {
      backend::get_backend("cpu").set_thread_parallelism(1);
    } catch (const Error&) {  // no CPU plugin: no CPU ops on this thread either
    }
  }
  const int64_t total = dataset_.num_batches();
  for (int64_t i = 0; i < total; ++i) {
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || ready_.size() < depth_; });
      if (stop_) return;
    }
    Batch b;
    try {
      b = dataset_.get_batch(i);
    } catch (...) {
      std::lock_guard lock(mutex_);
      error_ = std::current_exception();
      changed_.notify_all();
      return;
    }
    std::lock_guard lock(mutex_);
    ready_.push_back(std::move(b));
    ++produced_;
    changed_.notify_all();
  }
}

Batch Prefetcher::next() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return !ready_.empty() || error_; });
  if (ready_.empty() && error_) std::rethrow_exception(error_);
  Batch b = std::move(ready_.front());
  ready_.pop_front();
  changed_.notify_all();
  return b;
}

}  // namespace keras::data
