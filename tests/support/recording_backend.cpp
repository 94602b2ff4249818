#include "tests/support/recording_backend.h"

#include <cstdlib>
#include <stdexcept>
#include <utility>

namespace kt {

using namespace keras;

namespace {
Tensor value_of(const Tensor* t) { return t ? *t : Tensor(); }
Tensor* pointer_to(Tensor& t) { return t.defined() ? &t : nullptr; }

// Checks deferred op by op (begin_deferring_checks), per thread, as the CUDA backend keeps them.
struct Deferral {
  const void* owner = nullptr;
  int depth = 0;
  bool settled = false;  // read at the guard: checks after it throw where they run
  std::exception_ptr failed;
};
thread_local Deferral deferral;
}  // namespace

class RecordingBackend::Recording final : public CapturedWork {
 public:
  Recording(RecordingBackend& be, std::vector<Kept> ops, std::shared_ptr<Pool> pool, std::vector<Outside> outside)
      : be_(be), ops_(std::move(ops)), pool_(std::move(pool)), outside_(std::move(outside)) {}
  ~Recording() override { be_.release_pool(pool_); }
  void replay() override {
    // On CUDA such memory would be reused by then, and the replay would read or overwrite it.
    for (const Outside& o : outside_)
      if (o.storage.expired())
        throw std::logic_error("recording-cpu: a replay reads a " + o.what +
                               " tensor allocated before the recording and freed since");
    // As CUDA: a failed check does not stop the replay; guarded work is skipped where a check
    // before it failed; the first failure is thrown at the end.
    std::exception_ptr failed;
    int depth = 0;
    bool skipping = false;
    for (const Kept& k : ops_) {
      switch (k.kind) {
        case Kept::guard_begin:
          if (depth++ == 0) skipping = failed != nullptr;
          break;
        case Kept::guard_end:
          if (--depth == 0) skipping = false;
          break;
        case Kept::plain:
          if (!skipping) k.op();
          break;
        case Kept::checked:
          if (skipping) break;
          try {
            k.op();
          } catch (const ValueError&) {
            if (!failed) failed = std::current_exception();
          }
          break;
      }
    }
    if (be_.replay_delay_.count()) std::this_thread::sleep_for(be_.replay_delay_);
    be_.replays_.fetch_add(1);
    if (failed) std::rethrow_exception(failed);
  }

 private:
  RecordingBackend& be_;
  std::vector<Kept> ops_;
  std::shared_ptr<Pool> pool_;
  std::vector<Outside> outside_;
};

RecordingBackend::RecordingBackend(Backend& inner) : inner_(inner) {}
RecordingBackend::~RecordingBackend() = default;

bool RecordingBackend::supports(Capability c) const {
  if (c == Capability::graph_capture) return true;
  if (c == Capability::fused_rnn || c == Capability::fused_gru_reset_before) return false;
  return inner_.supports(c);
}

std::map<std::string, int64_t> RecordingBackend::counters() const {
  auto c = inner_.counters();
  c["recordings"] = recordings_.load();
  c["refused"] = refused_.load();
  c["replays"] = replays_.load();
  c["deferred_check_failures"] = deferred_failures_.load();
  c["host_reads"] = host_reads_.load();
  c["queued_ops"] = queued_.load();
  return c;
}

std::shared_ptr<Storage> RecordingBackend::allocate(size_t nbytes) {
  if (nbytes == 0) return std::make_shared<Storage>(nullptr, 0, this);
  void* p = std::aligned_alloc(64, (nbytes + 63) / 64 * 64);
  if (!p) throw std::bad_alloc();
  if (recording_here()) {
    std::lock_guard lock(mutex_);
    pool_of_[p] = pool_;
  }
  return std::make_shared<Storage>(p, nbytes, this);
}

void RecordingBackend::deallocate(void* data, size_t nbytes) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = pool_of_.find(data); it != pool_of_.end()) {
      if (!it->second->closed) {  // the recording's replays still use it
        it->second->released.emplace_back(data, nbytes);
        return;
      }
      pool_of_.erase(it);
    }
  }
  std::free(data);
}

void RecordingBackend::release_pool(const std::shared_ptr<Pool>& pool) {
  std::vector<std::pair<void*, size_t>> released;
  {
    std::lock_guard lock(mutex_);
    pool->closed = true;
    released.swap(pool->released);
    for (const auto& [p, n] : released) pool_of_.erase(p);
  }
  for (const auto& [p, n] : released) std::free(p);
}

Tensor RecordingBackend::keep(const Tensor& t) {
  if (!t.defined() || !recording_here()) return t;
  const std::shared_ptr<Storage>& storage = t.impl()->storage;
  if (!storage || !storage->data()) return t;
  {
    std::lock_guard lock(mutex_);
    if (auto it = pool_of_.find(storage->data()); it != pool_of_.end() && it->second == pool_) return t;
  }
  // Memory from before the recording: a CUDA graph holds only its address. So does the recording,
  // and each replay first checks that the program still holds it.
  auto alias = std::make_shared<keras::detail::TensorImpl>(*t.impl());
  alias->storage = std::make_shared<Storage>(storage->data(), storage->nbytes(), nullptr);
  alias->autograd = {};
  outside_.push_back({storage, t.shape().to_string() + " " + dtype_name(t.dtype())});
  return Tensor(alias);
}

void RecordingBackend::run(std::function<void()> op, Kept::Kind kind) {
  queued_.fetch_add(1);
  if (recording_here()) {
    ops_.push_back({std::move(op), kind});
    return;
  }
  if (kind != Kept::checked || deferral.owner != this || deferral.settled) {
    op();
    return;
  }
  try {  // a deferred check: the op's output is left as it was, the error kept for the guard
    op();
  } catch (const ValueError&) {
    if (!deferral.failed) deferral.failed = std::current_exception();
  }
}

void RecordingBackend::begin_guarded_by_checks() {
  if (recording_here()) {
    ops_.push_back({nullptr, Kept::guard_begin});
    return;
  }
  if (deferral.owner != this || deferral.settled) return;
  deferral.settled = true;
  if (std::exception_ptr failed = std::exchange(deferral.failed, nullptr)) {
    deferred_failures_.fetch_add(1);
    std::rethrow_exception(failed);
  }
}

void RecordingBackend::begin_deferring_checks() {
  if (deferral.owner && deferral.owner != this) return;  // another backend's step on this thread
  deferral.owner = this;
  ++deferral.depth;
}
void RecordingBackend::end_deferring_checks() {
  if (deferral.owner != this || --deferral.depth > 0) return;
  deferral = Deferral{};
}
void RecordingBackend::end_guarded_by_checks() {
  if (recording_here()) ops_.push_back({nullptr, Kept::guard_end});
}

void RecordingBackend::refuse_while_recording(const char* what) {
  if (!recording_here()) return;
  broken_ = true;
  throw BackendError(std::string("recording-cpu: ") + what + " while a step is being recorded");
}

void RecordingBackend::copy_from_host(void* dst, const void* src, size_t nbytes) {
  refuse_while_recording("a copy from the host (it waits for the device)");
  inner_.copy_from_host(dst, src, nbytes);
}
void RecordingBackend::copy_to_host(void* dst, const void* src, size_t nbytes) {
  refuse_while_recording("a read of the device");
  host_reads_.fetch_add(1);
  inner_.copy_to_host(dst, src, nbytes);
}
void RecordingBackend::synchronize() { refuse_while_recording("a wait for the device"); }
void RecordingBackend::copy(void* dst, const void* src, size_t nbytes) {
  run([this, dst, src, nbytes] { inner_.copy(dst, src, nbytes); });
}
void RecordingBackend::fill(Tensor& y, Scalar value) {
  run([this, y = keep(y), value]() mutable { inner_.fill(y, value); });
}

void RecordingBackend::unary(UnaryOp op, const Tensor& x, Tensor& y, const UnaryAttrs& attrs) {
  const Tensor x_kept = keep(x);
  const Tensor y_kept = keep(y);
  run([this, op, attrs, x = x_kept, y = y_kept]() mutable { inner_.unary(op, x, y, attrs); });
}
void RecordingBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y) {
  const Tensor a_kept = keep(a);
  const Tensor b_kept = keep(b);
  const Tensor y_kept = keep(y);
  run([this, op, a = a_kept, b = b_kept, y = y_kept]() mutable { inner_.binary(op, a, b, y); });
}
void RecordingBackend::where(const Tensor& c, const Tensor& a, const Tensor& b, Tensor& y) {
  const Tensor c_kept = keep(c);
  const Tensor a_kept = keep(a);
  const Tensor b_kept = keep(b);
  const Tensor y_kept = keep(y);
  run([this, c = c_kept, a = a_kept, b = b_kept, y = y_kept]() mutable { inner_.where(c, a, b, y); });
}
void RecordingBackend::cast(const Tensor& x, Tensor& y) {
  const Tensor x_kept = keep(x);
  const Tensor y_kept = keep(y);
  run([this, x = x_kept, y = y_kept]() mutable { inner_.cast(x, y); });
}
void RecordingBackend::reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& axes, Tensor& y) {
  const Tensor x_kept = keep(x);
  const Tensor y_kept = keep(y);
  run([this, op, axes, x = x_kept, y = y_kept]() mutable { inner_.reduce(op, x, axes, y); });
}
void RecordingBackend::variance(const Tensor& x, const std::vector<int64_t>& axes, Tensor& y) {
  const Tensor x_kept = keep(x);
  const Tensor y_kept = keep(y);
  run([this, axes, x = x_kept, y = y_kept]() mutable { inner_.variance(x, axes, y); });
}
void RecordingBackend::arg_reduce(bool is_max, const Tensor& x, int64_t axis, Tensor& y) {
  const Tensor x_kept = keep(x);
  const Tensor y_kept = keep(y);
  run([this, is_max, axis, x = x_kept, y = y_kept]() mutable { inner_.arg_reduce(is_max, x, axis, y); });
}
void RecordingBackend::matmul(const Tensor& a, const Tensor& b, const Tensor* bias, Tensor& y,
                              const MatmulAttrs& attrs) {
  const Tensor a_kept = keep(a);
  const Tensor b_kept = keep(b);
  const Tensor bias_kept = keep(value_of(bias));
  const Tensor y_kept = keep(y);
  run([this, attrs, a = a_kept, b = b_kept, bias = bias_kept, y = y_kept]() mutable { inner_.matmul(a, b, pointer_to(bias), y, attrs); });
}
void RecordingBackend::conv_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y,
                                    const ConvAttrs& conv_attrs) {
  ConvAttrs attrs = conv_attrs;  // a folded batch norm's weights are read by address, as on CUDA
  for (Tensor* t : {&attrs.batch_norm.mean, &attrs.batch_norm.variance, &attrs.batch_norm.gamma, &attrs.batch_norm.beta,
                    &attrs.residual})
    *t = keep(*t);
  const Tensor x_kept = keep(x);
  const Tensor w_kept = keep(w);
  const Tensor bias_kept = keep(value_of(bias));
  const Tensor y_kept = keep(y);
  run([this, attrs, x = x_kept, w = w_kept, bias = bias_kept, y = y_kept]() mutable { inner_.conv_forward(x, w, pointer_to(bias), y, attrs); });
}
void RecordingBackend::conv_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, const ConvAttrs& attrs) {
  const Tensor dy_kept = keep(dy);
  const Tensor w_kept = keep(w);
  const Tensor dx_kept = keep(dx);
  run([this, attrs, dy = dy_kept, w = w_kept, dx = dx_kept]() mutable { inner_.conv_backward_data(dy, w, dx, attrs); });
}
void RecordingBackend::conv_backward_weights(const Tensor& dy, const Tensor& x, Tensor& dw, Tensor* dbias,
                                             const ConvAttrs& attrs) {
  const Tensor dy_kept = keep(dy);
  const Tensor x_kept = keep(x);
  const Tensor dw_kept = keep(dw);
  const Tensor dbias_kept = keep(value_of(dbias));
  run([this, attrs, dy = dy_kept, x = x_kept, dw = dw_kept, dbias = dbias_kept]() mutable {
    inner_.conv_backward_weights(dy, x, dw, pointer_to(dbias), attrs);
  });
}
void RecordingBackend::conv_transpose_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y,
                                              const ConvAttrs& attrs) {
  const Tensor x_kept = keep(x);
  const Tensor w_kept = keep(w);
  const Tensor bias_kept = keep(value_of(bias));
  const Tensor y_kept = keep(y);
  run([this, attrs, x = x_kept, w = w_kept, bias = bias_kept, y = y_kept]() mutable { inner_.conv_transpose_forward(x, w, pointer_to(bias), y, attrs); });
}
void RecordingBackend::conv_transpose_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx,
                                                    const ConvAttrs& attrs) {
  const Tensor dy_kept = keep(dy);
  const Tensor w_kept = keep(w);
  const Tensor dx_kept = keep(dx);
  run([this, attrs, dy = dy_kept, w = w_kept, dx = dx_kept]() mutable { inner_.conv_transpose_backward_data(dy, w, dx, attrs); });
}
void RecordingBackend::conv_transpose_backward_weights(const Tensor& dy, const Tensor& x, Tensor& dw, Tensor* dbias,
                                                       const ConvAttrs& attrs) {
  const Tensor dy_kept = keep(dy);
  const Tensor x_kept = keep(x);
  const Tensor dw_kept = keep(dw);
  const Tensor dbias_kept = keep(value_of(dbias));
  run([this, attrs, dy = dy_kept, x = x_kept, dw = dw_kept, dbias = dbias_kept]() mutable {
    inner_.conv_transpose_backward_weights(dy, x, dw, pointer_to(dbias), attrs);
  });
}
void RecordingBackend::pool_forward(const Tensor& x, Tensor& y, Tensor* workspace, const PoolAttrs& attrs) {
  const Tensor x_kept = keep(x);
  const Tensor y_kept = keep(y);
  const Tensor workspace_kept = keep(value_of(workspace));
  run([this, attrs, x = x_kept, y = y_kept, ws = workspace_kept]() mutable { inner_.pool_forward(x, y, pointer_to(ws), attrs); });
}
void RecordingBackend::pool_backward(const Tensor& dy, const Tensor& x, const Tensor* workspace, Tensor& dx,
                                     const PoolAttrs& attrs) {
  const Tensor dy_kept = keep(dy);
  const Tensor x_kept = keep(x);
  const Tensor workspace_kept = keep(value_of(workspace));
  const Tensor dx_kept = keep(dx);
  run([this, attrs, dy = dy_kept, x = x_kept, ws = workspace_kept, dx = dx_kept]() mutable { inner_.pool_backward(dy, x, pointer_to(ws), dx, attrs); });
}
void RecordingBackend::conv_max_pool_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y,
                                             const ConvAttrs& conv, const PoolAttrs& pool) {
  const Tensor x_kept = keep(x);
  const Tensor w_kept = keep(w);
  const Tensor bias_kept = keep(value_of(bias));
  const Tensor y_kept = keep(y);
  run([this, conv, pool, x = x_kept, w = w_kept, bias = bias_kept, y = y_kept]() mutable { inner_.conv_max_pool_forward(x, w, pointer_to(bias), y, conv, pool); });
}
void RecordingBackend::batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& mean,
                                          Tensor& variance, Tensor& y, float epsilon, bool training) {
  const Tensor x_kept = keep(x);
  const Tensor gamma_kept = keep(gamma);
  const Tensor beta_kept = keep(beta);
  const Tensor mean_kept = keep(mean);
  const Tensor variance_kept = keep(variance);
  const Tensor y_kept = keep(y);
  run([this, epsilon, training, x = x_kept, gamma = gamma_kept, beta = beta_kept, mean = mean_kept, variance = variance_kept, y = y_kept]() mutable { inner_.batch_norm_forward(x, gamma, beta, mean, variance, y, epsilon, training); });
}
void RecordingBackend::batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                           const Tensor& variance, Tensor& dx, Tensor& dgamma, Tensor& dbeta,
                                           float epsilon) {
  const Tensor dy_kept = keep(dy);
  const Tensor x_kept = keep(x);
  const Tensor gamma_kept = keep(gamma);
  const Tensor mean_kept = keep(mean);
  const Tensor variance_kept = keep(variance);
  const Tensor dx_kept = keep(dx);
  const Tensor dgamma_kept = keep(dgamma);
  const Tensor dbeta_kept = keep(dbeta);
  run([this, epsilon, dy = dy_kept, x = x_kept, gamma = gamma_kept, mean = mean_kept, variance = variance_kept, dx = dx_kept, dgamma = dgamma_kept, dbeta = dbeta_kept]() mutable { inner_.batch_norm_backward(dy, x, gamma, mean, variance, dx, dgamma, dbeta, epsilon); });
}
void RecordingBackend::layer_norm_forward(const Tensor& x, const Tensor* gamma, const Tensor* beta, Tensor& y,
                                          Tensor* mean, Tensor* variance, float epsilon) {
  const Tensor x_kept = keep(x), gamma_kept = keep(value_of(gamma)), beta_kept = keep(value_of(beta));
  const Tensor y_kept = keep(y), mean_kept = keep(value_of(mean)), variance_kept = keep(value_of(variance));
  run([this, epsilon, x = x_kept, gamma = gamma_kept, beta = beta_kept, y = y_kept, mean = mean_kept,
       variance = variance_kept]() mutable {
    inner_.layer_norm_forward(x, pointer_to(gamma), pointer_to(beta), y, pointer_to(mean), pointer_to(variance),
                              epsilon);
  });
}
void RecordingBackend::layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor* gamma, const Tensor& mean,
                                           const Tensor& variance, Tensor& dx, Tensor* dgamma, Tensor* dbeta,
                                           float epsilon) {
  const Tensor dy_kept = keep(dy), x_kept = keep(x), gamma_kept = keep(value_of(gamma)), mean_kept = keep(mean);
  const Tensor variance_kept = keep(variance), dx_kept = keep(dx), dgamma_kept = keep(value_of(dgamma)),
               dbeta_kept = keep(value_of(dbeta));
  run([this, epsilon, dy = dy_kept, x = x_kept, gamma = gamma_kept, mean = mean_kept, variance = variance_kept,
       dx = dx_kept, dgamma = dgamma_kept, dbeta = dbeta_kept]() mutable {
    inner_.layer_norm_backward(dy, x, pointer_to(gamma), mean, variance, dx, pointer_to(dgamma), pointer_to(dbeta),
                               epsilon);
  });
}
void RecordingBackend::softmax(const Tensor& x, Tensor& y, bool log) {
  const Tensor x_kept = keep(x);
  const Tensor y_kept = keep(y);
  run([this, log, x = x_kept, y = y_kept]() mutable { inner_.softmax(x, y, log); });
}
void RecordingBackend::softmax_cross_entropy(const Tensor& logits, const Tensor& labels, bool sparse, Tensor& loss,
                                             Tensor* dlogits) {
  const Tensor logits_kept = keep(logits);
  const Tensor labels_kept = keep(labels);
  const Tensor loss_kept = keep(loss);
  const Tensor dlogits_kept = keep(value_of(dlogits));
  // The CPU checks sparse labels as it computes: in a replay, as CUDA's recorded check does.
  run([this, sparse, logits = logits_kept, labels = labels_kept, loss = loss_kept, d = dlogits_kept]() mutable {
    inner_.softmax_cross_entropy(logits, labels, sparse, loss, pointer_to(d));
  }, Kept::checked);
}
void RecordingBackend::embedding_forward(const Tensor& table, const Tensor& ids, Tensor& y) {
  const Tensor table_kept = keep(table);
  const Tensor ids_kept = keep(ids);
  const Tensor y_kept = keep(y);
  run([this, table = table_kept, ids = ids_kept, y = y_kept]() mutable { inner_.embedding_forward(table, ids, y); }, Kept::checked);
}
void RecordingBackend::embedding_backward(const Tensor& dy, const Tensor& ids, Tensor& dtable) {
  const Tensor dy_kept = keep(dy);
  const Tensor ids_kept = keep(ids);
  const Tensor dtable_kept = keep(dtable);
  run([this, dy = dy_kept, ids = ids_kept, dtable = dtable_kept]() mutable { inner_.embedding_backward(dy, ids, dtable); }, Kept::checked);
}
void RecordingBackend::concat(const std::vector<Tensor>& inputs, int64_t axis, Tensor& y) {
  std::vector<Tensor> inputs_kept;
  for (const Tensor& t : inputs) inputs_kept.push_back(keep(t));
  const Tensor y_kept = keep(y);
  run([this, axis, inputs = inputs_kept, y = y_kept]() mutable { inner_.concat(inputs, axis, y); });
}
void RecordingBackend::slice(const Tensor& x, const std::vector<int64_t>& starts, Tensor& y) {
  const Tensor x_kept = keep(x);
  const Tensor y_kept = keep(y);
  run([this, starts, x = x_kept, y = y_kept]() mutable { inner_.slice(x, starts, y); });
}
void RecordingBackend::slice_assign(const Tensor& x, const std::vector<int64_t>& starts, Tensor& y) {
  const Tensor x_kept = keep(x);
  const Tensor y_kept = keep(y);
  run([this, starts, x = x_kept, y = y_kept]() mutable { inner_.slice_assign(x, starts, y); });
}
void RecordingBackend::pad(const Tensor& x, const std::vector<std::array<int64_t, 2>>& pads, Scalar value,
                           Tensor& y) {
  const Tensor x_kept = keep(x);
  const Tensor y_kept = keep(y);
  run([this, pads, value, x = x_kept, y = y_kept]() mutable { inner_.pad(x, pads, value, y); });
}
void RecordingBackend::transpose(const Tensor& x, const std::vector<int64_t>& perm, Tensor& y) {
  const Tensor x_kept = keep(x);
  const Tensor y_kept = keep(y);
  run([this, perm, x = x_kept, y = y_kept]() mutable { inner_.transpose(x, perm, y); });
}
void RecordingBackend::gather(const Tensor& x, const Tensor& indices, int64_t axis, Tensor& y) {
  const Tensor x_kept = keep(x);
  const Tensor indices_kept = keep(indices);
  const Tensor y_kept = keep(y);
  run([this, axis, x = x_kept, indices = indices_kept, y = y_kept]() mutable { inner_.gather(x, indices, axis, y); }, Kept::checked);
}
void RecordingBackend::scatter_add(const Tensor& dy, const Tensor& indices, int64_t axis, Tensor& dx) {
  const Tensor dy_kept = keep(dy);
  const Tensor indices_kept = keep(indices);
  const Tensor dx_kept = keep(dx);
  run([this, axis, dy = dy_kept, indices = indices_kept, dx = dx_kept]() mutable { inner_.scatter_add(dy, indices, axis, dx); }, Kept::checked);
}
void RecordingBackend::random(RandomDistribution dist, const RandomKey& key, float a, float b, Tensor& y) {
  const Tensor y_kept = keep(y);
  run([this, dist, key, a, b, y = y_kept]() mutable { inner_.random(dist, key, a, b, y); });
}
void RecordingBackend::dropout_mask(float rate, const RandomKey& key, Tensor& mask) {
  const Tensor mask_kept = keep(mask);
  run([this, rate, key, mask = mask_kept]() mutable { inner_.dropout_mask(rate, key, mask); });
}
void RecordingBackend::sgd_update(Tensor& variable, const Tensor& gradient, Tensor* momentum, const SGDAttrs& attrs) {
  const Tensor variable_kept = keep(variable);
  const Tensor gradient_kept = keep(gradient);
  const Tensor momentum_kept = keep(value_of(momentum));
  run([this, attrs, variable = variable_kept, gradient = gradient_kept, m = momentum_kept]() mutable { inner_.sgd_update(variable, gradient, pointer_to(m), attrs); });
}
void RecordingBackend::adam_update(Tensor& variable, const Tensor& gradient, Tensor& m, Tensor& v, Tensor* vhat,
                                   const AdamAttrs& attrs) {
  const Tensor variable_kept = keep(variable);
  const Tensor gradient_kept = keep(gradient);
  const Tensor m_kept = keep(m);
  const Tensor v_kept = keep(v);
  const Tensor vhat_kept = keep(value_of(vhat));
  run([this, attrs, variable = variable_kept, gradient = gradient_kept, m = m_kept, v = v_kept, vh = vhat_kept]() mutable { inner_.adam_update(variable, gradient, m, v, pointer_to(vh), attrs); });
}

void RecordingBackend::begin_capture() {
  if (recording_thread_.load() != std::thread::id{})
    throw ValueError("recording-cpu: a step is already being recorded");
  ops_.clear();
  outside_.clear();
  broken_ = false;
  pool_ = std::make_shared<Pool>();
  recording_thread_.store(std::this_thread::get_id());
}

std::unique_ptr<CapturedWork> RecordingBackend::end_capture() {
  if (!recording_here()) throw ValueError("recording-cpu: end_capture without begin_capture on this thread");
  recording_thread_.store(std::thread::id{});
  auto ops = std::move(ops_);
  ops_.clear();
  auto pool = std::move(pool_);
  auto outside = std::move(outside_);
  outside_.clear();
  if (broken_) {  // as CUDA: nothing of it ran, its memory is free again
    refused_.fetch_add(1);
    release_pool(pool);
    return nullptr;
  }
  recordings_.fetch_add(1);
  return std::make_unique<Recording>(*this, std::move(ops), std::move(pool), std::move(outside));
}

}  // namespace kt
