#pragma once
// A CPU backend that records the way the CUDA backend records graphs, so the CPU-only CI can test
// what a recorded step must get right (models/step_graphs.h): between begin_capture and
// end_capture, the recording thread's ops are kept instead of run; reading the device or waiting
// for it fails the recording (as cudaStreamSynchronize does during a CUDA capture); memory
// allocated meanwhile stays the recording's until it is destroyed; other threads' ops run as
// usual. A replay runs the kept ops again on the same memory, with the same arguments: a host
// value baked into a step shows as a replay that differs from the step run op by op. A failed id
// or label check does not stop a replay (CUDA reads its checks after the graph ran): work guarded
// by begin_guarded_by_checks is skipped and the check's error thrown at the end. Op by op, checks
// deferred by begin_deferring_checks throw at the next begin_guarded_by_checks. Memory from
// before the recording is not kept alive by it (as on CUDA): a replay after the program freed such
// memory throws std::logic_error.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kerascpp.h"

namespace kt {

class RecordingBackend final : public keras::Backend {
 public:
  /// Computes with `inner` (a CPU backend).
  explicit RecordingBackend(keras::Backend& inner);
  ~RecordingBackend() override;
  std::string name() const override { return "recording-cpu"; }
  keras::Device device() const override { return inner_.device(); }
  /// graph_capture besides the inner backend's capabilities, except the fused recurrences, whose
  /// forward pass allocates its workspace while it computes.
  bool supports(keras::Capability c) const override;
  bool computes_low_precision(keras::OpFamily family, keras::DType dtype) const override {
    return inner_.computes_low_precision(family, dtype);
  }
  /// The inner backend's, with "recordings" (finished ones), "refused", "replays" and
  /// "deferred_check_failures" (thrown at a guard, op by op), "host_reads" (copies to the host) and
  /// "queued_ops" (ops the frontend queued, run or recorded: on CUDA, a kernel launch or more each).
  std::map<std::string, int64_t> counters() const override;
  keras::MemoryInfo memory_info() const override { return inner_.memory_info(); }
  void reset_peak_memory() override { inner_.reset_peak_memory(); }
  void set_thread_parallelism(int threads) override { inner_.set_thread_parallelism(threads); }
  /// Makes each replay take this much longer (to test choices made by timing replays).
  void set_replay_delay(std::chrono::milliseconds delay) { replay_delay_ = delay; }

  std::shared_ptr<keras::Storage> allocate(size_t nbytes) override;
  void deallocate(void* data, size_t nbytes) override;
  void copy_from_host(void* dst, const void* src, size_t nbytes) override;
  void copy_to_host(void* dst, const void* src, size_t nbytes) override;
  void copy(void* dst, const void* src, size_t nbytes) override;
  void fill(keras::Tensor& y, keras::Scalar value) override;
  void synchronize() override;

  void unary(keras::UnaryOp op, const keras::Tensor& x, keras::Tensor& y, const keras::UnaryAttrs& attrs) override;
  void binary(keras::BinaryOp op, const keras::Tensor& a, const keras::Tensor& b, keras::Tensor& y) override;
  void where(const keras::Tensor& c, const keras::Tensor& a, const keras::Tensor& b, keras::Tensor& y) override;
  void cast(const keras::Tensor& x, keras::Tensor& y) override;
  void reduce(keras::ReduceOp op, const keras::Tensor& x, const std::vector<int64_t>& axes, keras::Tensor& y) override;
  void variance(const keras::Tensor& x, const std::vector<int64_t>& axes, keras::Tensor& y) override;
  void arg_reduce(bool is_max, const keras::Tensor& x, int64_t axis, keras::Tensor& y) override;
  void matmul(const keras::Tensor& a, const keras::Tensor& b, const keras::Tensor* bias, keras::Tensor& y,
              const keras::MatmulAttrs& attrs) override;
  void conv_forward(const keras::Tensor& x, const keras::Tensor& w, const keras::Tensor* bias, keras::Tensor& y,
                    const keras::ConvAttrs& attrs) override;
  void conv_backward_data(const keras::Tensor& dy, const keras::Tensor& w, keras::Tensor& dx,
                          const keras::ConvAttrs& attrs) override;
  void conv_backward_weights(const keras::Tensor& dy, const keras::Tensor& x, keras::Tensor& dw, keras::Tensor* dbias,
                             const keras::ConvAttrs& attrs) override;
  void conv_transpose_forward(const keras::Tensor& x, const keras::Tensor& w, const keras::Tensor* bias,
                              keras::Tensor& y, const keras::ConvAttrs& attrs) override;
  void conv_transpose_backward_data(const keras::Tensor& dy, const keras::Tensor& w, keras::Tensor& dx,
                                    const keras::ConvAttrs& attrs) override;
  void conv_transpose_backward_weights(const keras::Tensor& dy, const keras::Tensor& x, keras::Tensor& dw,
                                       keras::Tensor* dbias, const keras::ConvAttrs& attrs) override;
  size_t pool_workspace_bytes(const keras::Tensor& x, const keras::Tensor& y, const keras::PoolAttrs& attrs) override {
    return inner_.pool_workspace_bytes(x, y, attrs);
  }
  void pool_forward(const keras::Tensor& x, keras::Tensor& y, keras::Tensor* workspace,
                    const keras::PoolAttrs& attrs) override;
  void pool_backward(const keras::Tensor& dy, const keras::Tensor& x, const keras::Tensor* workspace,
                     keras::Tensor& dx, const keras::PoolAttrs& attrs) override;
  void conv_max_pool_forward(const keras::Tensor& x, const keras::Tensor& w, const keras::Tensor* bias,
                             keras::Tensor& y, const keras::ConvAttrs& conv, const keras::PoolAttrs& pool) override;
  void batch_norm_forward(const keras::Tensor& x, const keras::Tensor& gamma, const keras::Tensor& beta,
                          keras::Tensor& mean, keras::Tensor& variance, keras::Tensor& y, float epsilon,
                          bool training) override;
  void layer_norm_forward(const keras::Tensor& x, const keras::Tensor* gamma, const keras::Tensor* beta,
                          keras::Tensor& y, keras::Tensor* mean, keras::Tensor* variance, float epsilon) override;
  void layer_norm_backward(const keras::Tensor& dy, const keras::Tensor& x, const keras::Tensor* gamma,
                           const keras::Tensor& mean, const keras::Tensor& variance, keras::Tensor& dx,
                           keras::Tensor* dgamma, keras::Tensor* dbeta, float epsilon) override;
  void batch_norm_backward(const keras::Tensor& dy, const keras::Tensor& x, const keras::Tensor& gamma,
                           const keras::Tensor& mean, const keras::Tensor& variance, keras::Tensor& dx,
                           keras::Tensor& dgamma, keras::Tensor& dbeta, float epsilon) override;
  void softmax(const keras::Tensor& x, keras::Tensor& y, bool log) override;
  void softmax_cross_entropy(const keras::Tensor& logits, const keras::Tensor& labels, bool sparse,
                             keras::Tensor& loss, keras::Tensor* dlogits) override;
  void embedding_forward(const keras::Tensor& table, const keras::Tensor& ids, keras::Tensor& y) override;
  void embedding_backward(const keras::Tensor& dy, const keras::Tensor& ids, keras::Tensor& dtable) override;
  void concat(const std::vector<keras::Tensor>& inputs, int64_t axis, keras::Tensor& y) override;
  void slice(const keras::Tensor& x, const std::vector<int64_t>& starts, keras::Tensor& y) override;
  void slice_assign(const keras::Tensor& x, const std::vector<int64_t>& starts, keras::Tensor& y) override;
  void pad(const keras::Tensor& x, const std::vector<std::array<int64_t, 2>>& pads, keras::Scalar value,
           keras::Tensor& y) override;
  void transpose(const keras::Tensor& x, const std::vector<int64_t>& perm, keras::Tensor& y) override;
  void gather(const keras::Tensor& x, const keras::Tensor& indices, int64_t axis, keras::Tensor& y) override;
  void scatter_add(const keras::Tensor& dy, const keras::Tensor& indices, int64_t axis, keras::Tensor& dx) override;
  void random(keras::RandomDistribution dist, const keras::RandomKey& key, float a, float b, keras::Tensor& y) override;
  void dropout_mask(float rate, const keras::RandomKey& key, keras::Tensor& mask) override;
  void sgd_update(keras::Tensor& variable, const keras::Tensor& gradient, keras::Tensor* momentum,
                  const keras::SGDAttrs& attrs) override;
  void adam_update(keras::Tensor& variable, const keras::Tensor& gradient, keras::Tensor& m, keras::Tensor& v,
                   keras::Tensor* vhat, const keras::AdamAttrs& attrs) override;

  void begin_capture() override;
  std::unique_ptr<keras::CapturedWork> end_capture() override;
  void begin_guarded_by_checks() override;
  void end_guarded_by_checks() override;
  void begin_deferring_checks() override;
  void end_deferring_checks() override;

 private:
  struct Pool {  // the memory of one recording
    std::vector<std::pair<void*, size_t>> released;  // freed by the program, kept for the replays
    bool closed = false;
  };
  class Recording;
  struct Kept {  // an op of a recording, or a mark of a guarded section
    std::function<void()> op;
    enum Kind { plain, checked, guard_begin, guard_end } kind = plain;  // checked: checks ids or labels
  };
  struct Outside {  // memory a recording uses but did not allocate
    std::weak_ptr<keras::Storage> storage;
    std::string what;
  };
  /// The tensor a kept op holds: itself, or, for memory allocated before the recording, an alias
  /// that does not keep it alive (remembered in outside_, checked before each replay).
  keras::Tensor keep(const keras::Tensor& t);
  bool recording_here() const { return recording_thread_.load() == std::this_thread::get_id(); }
  /// Runs `op` now, or keeps it when the calling thread records.
  void run(std::function<void()> op, Kept::Kind kind = Kept::plain);
  /// A read of the device or a wait: fails the recording, as it does on CUDA.
  void refuse_while_recording(const char* what);
  void release_pool(const std::shared_ptr<Pool>& pool);

  keras::Backend& inner_;
  std::mutex mutex_;
  std::atomic<std::thread::id> recording_thread_{};
  std::vector<Kept> ops_;
  std::vector<Outside> outside_;
  bool broken_ = false;
  std::shared_ptr<Pool> pool_;
  std::unordered_map<void*, std::shared_ptr<Pool>> pool_of_;
  std::atomic<int64_t> recordings_{0}, refused_{0}, replays_{0}, deferred_failures_{0}, host_reads_{0}, queued_{0};
  std::chrono::milliseconds replay_delay_{0};
};

}  // namespace kt
