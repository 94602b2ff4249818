#pragma once
#include <optional>
// Data pipelines for fit(): keras.utils.PyDataset's analogue, and the background prefetching
// fit() uses for every dataset (in-memory tensors included).
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "../../core/export.h"
#include "../../core/tensor.h"

namespace keras::data {

/// One batch: the model's inputs and targets, and optional per-sample weights.
struct Batch {
  std::vector<Tensor> x, y;
  Tensor sample_weight;
};

/// A source of batches by index, as keras.utils.PyDataset: subclass it to stream data from disk or
/// generate it. get_batch() runs on a background thread while the model trains on the previous
/// batch, so it must not touch the model.
class KERASCPP_API Dataset {
 public:
  virtual ~Dataset();
  /// Batches per epoch.
  virtual int64_t num_batches() const = 0;
  virtual Batch get_batch(int64_t index) = 0;
  /// Called before each epoch (0-based, as fit() counts them), as Keras' PyDataset.on_epoch_begin.
  virtual void on_epoch_begin(int epoch) {}
  /// Called between epochs (reshuffle here).
  virtual void on_epoch_end() {}
  /// The key its shuffles derive from, where it shuffles; data-parallel fit() gives every replica
  /// rank 0's so they agree on each global batch. A dataset that shuffles otherwise must shuffle
  /// the same way on every replica itself.
  virtual std::optional<uint64_t> shuffle_key() const { return std::nullopt; }
  virtual void set_shuffle_key(uint64_t /*key*/) {}
};

/// In-memory tensors (first axis = samples) in batches, reshuffled every epoch when asked.
class KERASCPP_API TensorDataset : public Dataset {
 public:
  TensorDataset(std::vector<Tensor> x, std::vector<Tensor> y, Tensor sample_weight, int64_t batch_size, bool shuffle);
  int64_t num_batches() const override;
  Batch get_batch(int64_t index) override;
  /// Shuffles with a key derived from the dataset's key and the epoch: a fit resumed at epoch k
  /// sees the order an uninterrupted fit saw at epoch k.
  void on_epoch_begin(int epoch) override;
  std::optional<uint64_t> shuffle_key() const override { return shuffle_key_; }
  void set_shuffle_key(uint64_t key) override { shuffle_key_ = key; }

 private:
  std::vector<Tensor> x_, y_;
  Tensor weights_;
  int64_t batch_size_, n_;
  bool shuffle_;
  std::vector<int64_t> order_;
  uint64_t shuffle_key_;
};

/// Reads a dataset's batches [0, num_batches) on a background thread, `depth` ahead. An exception
/// in get_batch() is rethrown by next(). Destroying it stops the thread.
class KERASCPP_API Prefetcher {
 public:
  Prefetcher(Dataset& dataset, int depth = 2);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;
  Batch next();

 private:
  void run();
  Dataset& dataset_;
  size_t depth_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> ready_;
  std::exception_ptr error_;
  int64_t produced_ = 0;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace keras::data
