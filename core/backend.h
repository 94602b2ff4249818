#pragma once
// The Backend interface: what every device plugin implements. The frontend (core/ops) validates
// arguments, infers shapes and dtypes, allocates outputs and records autograd; a backend only
// computes. Outputs are passed in already allocated with their final shape and dtype.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "device.h"
#include "export.h"
#include "op_kinds.h"
#include "scalar.h"
#include "tensor.h"

namespace keras {

/// Human-readable names, used in error messages and primitive-cache keys.
KERASCPP_API const char* unary_op_name(UnaryOp op);
KERASCPP_API const char* binary_op_name(BinaryOp op);
KERASCPP_API bool is_comparison(BinaryOp op);

struct UnaryAttrs {
  float alpha = 0.f;
  float beta = 0.f;
};

/// y = act(op(a) @ op(b) + bias). a: (..., M, K) or (..., K, M) when transpose_a; b: (..., K, N) or
/// (..., N, K) when transpose_b; batch dimensions broadcast; bias: (N,).
struct MatmulAttrs {
  bool transpose_a = false;
  bool transpose_b = false;
  UnaryOp activation = UnaryOp::identity;
  UnaryAttrs activation_attrs;
};

/// A BatchNormalization in inference mode, folded into the convolution before it: per output
/// channel, y = act((conv + bias) * scale + shift) with Keras' scale = gamma / sqrt(variance +
/// epsilon) and shift = beta - mean * scale, computed by the backend from the layer's own weights
/// (so a model's inference pass queues no op for it). gamma and beta may be undefined (1 and 0);
/// an undefined mean means no batch norm.
struct FoldedBatchNorm {
  Tensor mean, variance, gamma, beta;
  float epsilon = 1e-3f;
  bool defined() const { return mean.defined(); }
  bool empty() const { return !mean.defined() && !variance.defined() && !gamma.defined() && !beta.defined(); }
};

/// A 2-d convolution over NHWC tensors; 1-d convolutions use height 1. Kernels are Keras'
/// (kh, kw, in / groups, out) for conv, (kh, kw, out, in) for transposed conv. Pads are explicit:
/// the frontend turns "same"/"valid" into numbers.
struct ConvAttrs {
  std::array<int64_t, 2> strides{1, 1};
  std::array<int64_t, 2> dilations{1, 1};
  std::array<int64_t, 2> pad_begin{0, 0};
  std::array<int64_t, 2> pad_end{0, 0};
  int64_t groups = 1;
  UnaryOp activation = UnaryOp::identity;  // fused after bias in the forward pass
  bool training = true;  // false when no gradient will be asked for: backends may pick inference kernels
  /// Inference only, forward only, on backends with Capability::fused_conv_affine.
  FoldedBatchNorm batch_norm;
  /// Inference only, forward only, float32, on backends with Capability::fused_conv_residual: a tensor
  /// of y's shape added after the bias and batch norm, before the activation (a residual block's
  /// Add, so y = act(bn(conv(x) + bias) + residual)). Undefined: none.
  Tensor residual;
};

/// A 2-d pooling over NHWC tensors. Average pooling excludes padding, as Keras does.
struct PoolAttrs {
  PoolMode mode = PoolMode::max;
  std::array<int64_t, 2> window{2, 2};
  std::array<int64_t, 2> strides{2, 2};
  std::array<int64_t, 2> pad_begin{0, 0};
  std::array<int64_t, 2> pad_end{0, 0};
};

/// Keras' update rules; see keras-reference.md. Tensors are updated in place.
struct SGDAttrs {
  float learning_rate = 0.01f;
  float momentum = 0.f;
  bool nesterov = false;
  /// Defined: a float32 scalar on the variable's device holding the rate, read when the update runs
  /// (a recorded step then replays with each step's rate); learning_rate is unused.
  Tensor learning_rate_on_device;
};
struct AdamAttrs {
  float learning_rate = 0.001f;
  float beta_1 = 0.9f;
  float beta_2 = 0.999f;
  float epsilon = 1e-7f;
  int64_t step = 1;  // iterations + 1
  bool amsgrad = false;
  /// Defined: a float32 scalar on the variable's device holding the step size
  /// learning_rate * sqrt(1 - beta_2^step) / (1 - beta_1^step), read when the update runs;
  /// learning_rate and step are unused.
  Tensor step_size_on_device;
};

/// The key of a random op (see random.h): a value, or, when `on_device` is defined, an int64 scalar
/// on the op's device holding the key's bits, read when the op runs (a recorded step then replays
/// with new keys).
struct RandomKey {
  RandomKey(uint64_t v = 0) : value(v) {}  // NOLINT: a plain key converts
  uint64_t value = 0;
  Tensor on_device;
};

/// A family of operations a backend may lack; the frontend then composes others or refuses.
enum class Capability {
  fused_matmul_activation,
  fused_conv_activation,
  fused_rnn,          // rnn_forward/rnn_backward for LSTM and GRU with reset_after (cuDNN's cells)
  fused_conv_affine,  // ConvAttrs::batch_norm
  fused_gru_reset_before,  // rnn_forward/rnn_backward also for RnnCell::gru
  graph_capture,           // begin_capture/end_capture (CUDA graphs)
  fused_conv_max_pool,     // conv_max_pool_forward
  fused_conv_residual,     // ConvAttrs::residual
  fused_layer_norm,        // layer_norm_forward / layer_norm_backward
};

/// Families of ops a backend may compute in bfloat16 / float16 itself (Backend::computes_low_precision):
/// the data of one low-precision dtype in and out, float32 arithmetic inside, one rounding of each
/// result. Every other op, and every family a backend does not claim, runs on float32 copies that
/// are rounded back (ops_util.h: emulated_dtype), which gives the same numbers more slowly.
enum class OpFamily {
  matmul,       // matmul, so linear and its gradients; bias of the operands' dtype
  conv,         // conv_forward / backward, neither transposed nor with a channel affine; bias likewise
  elementwise,  // unary, binary (comparisons write bool) and where
  reduce,       // reduce (sum, mean, max, ...): float32 accumulation
  pool,         // pool_forward / pool_backward
  batch_norm,   // batch_norm_forward / backward: x, y, dy, dx low; gamma, beta, statistics float32
  softmax,      // softmax and log-softmax
};

/// Device work recorded once (Backend::begin_capture ... end_capture) and replayed as one launch.
class KERASCPP_API CapturedWork {
 public:
  virtual ~CapturedWork();
  /// Queues the recorded work again; it reads and writes the same device memory as when recorded.
  virtual void replay() = 0;
};

struct RnnAttrs {
  RnnCell cell = RnnCell::lstm;
  bool training = false;  // keep what rnn_backward needs in the workspace
};

/// Tensor memory a backend has handed out (allocator rounding included), in bytes.
struct MemoryInfo {
  int64_t current = 0;
  int64_t peak = 0;
};

/// The device plugin interface. Implementations must be thread-safe: a Dataset computes batches on
/// a background thread while the model trains on the same backend.
class KERASCPP_API Backend {
 public:
  virtual ~Backend();
  /// "cpu", "cuda", ...
  virtual std::string name() const = 0;
  virtual Device device() const = 0;
  virtual bool supports(Capability capability) const = 0;
  /// Whether ops of `family` compute `dtype` (float16 or bfloat16) natively (see OpFamily).
  virtual bool computes_low_precision(OpFamily family, DType dtype) const {
    (void)family;
    (void)dtype;
    return false;
  }

  // Memory and copies ---------------------------------------------------------------------------
  virtual std::shared_ptr<Storage> allocate(size_t nbytes) = 0;
  /// Called by Storage's destructor; never directly.
  virtual void deallocate(void* data, size_t nbytes) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void copy(void* dst, const void* src, size_t nbytes) = 0;
  /// Fills `y` with `value` converted to y's dtype.
  virtual void fill(Tensor& y, Scalar value) = 0;
  /// Waits for queued work; a no-op on synchronous backends.
  virtual void synchronize() {}
  /// How many threads the ops called from the calling thread may use; 0: the backend's default.
  /// The frontend's helper threads (the Dataset prefetcher) ask for 1, so the training thread
  /// keeps the cores.
  virtual void set_thread_parallelism(int threads) { (void)threads; }
  /// Makes this backend's device the calling thread's current one (cudaSetDevice), as a thread
  /// that works on one of several GPUs must before queueing work; a no-op on the CPU.
  virtual void make_current() {}
  /// The queue the calling thread's work on this backend runs on (a cudaStream_t for CUDA; a thread
  /// recording a step has one of its own), for collectives that must be ordered with it
  /// (distributed/); null on synchronous backends.
  virtual void* native_stream() const { return nullptr; }
  /// Counters for tests and benchmarks: "primitives_created", "allocations", ...
  virtual std::map<std::string, int64_t> counters() const { return {}; }
  /// Bytes of tensor memory in use now, and the most since the last reset_peak_memory() (as
  /// tf.config.experimental.get_memory_info); zeros where the backend does not count.
  virtual MemoryInfo memory_info() const { return {}; }
  /// The peak starts again from the bytes in use now.
  virtual void reset_peak_memory() {}

  // Elementwise ---------------------------------------------------------------------------------
  virtual void unary(UnaryOp op, const Tensor& x, Tensor& y, const UnaryAttrs& attrs) = 0;
  /// y has the broadcast shape of a and b; a and b have y's dtype, except comparisons and
  /// logical ops (y bool).
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y) = 0;
  /// y = condition ? a : b, with broadcasting.
  virtual void where(const Tensor& condition, const Tensor& a, const Tensor& b, Tensor& y) = 0;
  /// Converts x's elements to y's dtype (float to int truncates toward zero).
  virtual void cast(const Tensor& x, Tensor& y) = 0;

  // Reductions: y keeps the reduced axes with size 1 ----------------------------------------------
  virtual void reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& axes, Tensor& y) = 0;
  /// Population variance over `axes` (divides by the count, as keras.ops.var).
  virtual void variance(const Tensor& x, const std::vector<int64_t>& axes, Tensor& y) = 0;
  /// Index of the first maximum (or minimum) along `axis`; y int64 with that axis of size 1.
  virtual void arg_reduce(bool is_max, const Tensor& x, int64_t axis, Tensor& y) = 0;

  // Linear algebra and NN primitives --------------------------------------------------------------
  virtual void matmul(const Tensor& a, const Tensor& b, const Tensor* bias, Tensor& y, const MatmulAttrs& attrs) = 0;
  virtual void conv_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y,
                            const ConvAttrs& attrs) = 0;
  virtual void conv_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, const ConvAttrs& attrs) = 0;
  /// dbias may be null.
  virtual void conv_backward_weights(const Tensor& dy, const Tensor& x, Tensor& dw, Tensor* dbias,
                                     const ConvAttrs& attrs) = 0;
  virtual void conv_transpose_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y,
                                      const ConvAttrs& attrs) = 0;
  virtual void conv_transpose_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, const ConvAttrs& attrs) = 0;
  virtual void conv_transpose_backward_weights(const Tensor& dy, const Tensor& x, Tensor& dw, Tensor* dbias,
                                               const ConvAttrs& attrs) = 0;
  /// `workspace` (uint8, backend-defined size from pool_workspace_bytes) is written when not
  /// null and read by pool_backward for max pooling.
  virtual size_t pool_workspace_bytes(const Tensor& x, const Tensor& y, const PoolAttrs& attrs) = 0;
  virtual void pool_forward(const Tensor& x, Tensor& y, Tensor* workspace, const PoolAttrs& attrs) = 0;
  virtual void pool_backward(const Tensor& dy, const Tensor& x, const Tensor* workspace, Tensor& dx,
                             const PoolAttrs& attrs) = 0;
  /// Inference only (Capability::fused_conv_max_pool; the default throws NotImplementedError):
  /// y = max_pool(act(conv(x, w) + bias)) without writing the convolution's output, an
  /// inference fusion of Conv2D -> MaxPooling2D. `pool.mode` is max; y has the pooled shape.
  virtual void conv_max_pool_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y,
                                     const ConvAttrs& conv, const PoolAttrs& pool);
  /// Normalizes over all axes but the last. Training writes the batch mean and (biased) variance.
  virtual void batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& mean,
                                  Tensor& variance, Tensor& y, float epsilon, bool training) = 0;
  virtual void batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                   const Tensor& variance, Tensor& dx, Tensor& dgamma, Tensor& dbeta,
                                   float epsilon) = 0;
  /// Layer normalization of each row of x (rows, cols), float32 (Capability::fused_layer_norm; the
  /// defaults throw NotImplementedError): y = (x - mean) / sqrt(variance + epsilon) * gamma + beta
  /// with the row's mean and population variance. gamma and beta (cols,) may be null (1 and 0).
  /// mean and variance (rows,), when not null, get the statistics layer_norm_backward reads.
  virtual void layer_norm_forward(const Tensor& x, const Tensor* gamma, const Tensor* beta, Tensor& y, Tensor* mean,
                                  Tensor* variance, float epsilon);
  /// dx from dy; dgamma and dbeta (cols,) are written when not null.
  virtual void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor* gamma, const Tensor& mean,
                                   const Tensor& variance, Tensor& dx, Tensor* dgamma, Tensor* dbeta, float epsilon);
  /// Softmax (or log-softmax) along the last axis.
  virtual void softmax(const Tensor& x, Tensor& y, bool log) = 0;
  /// Per-row loss of softmax cross-entropy on logits (N, C); labels are int class ids (N,)
  /// when sparse, else probabilities (N, C). dlogits (may be null) gets softmax - target.
  virtual void softmax_cross_entropy(const Tensor& logits, const Tensor& labels, bool sparse, Tensor& loss,
                                     Tensor* dlogits) = 0;
  /// y[i, :] = table[ids[i], :]; throws ValueError naming the first id outside [0, vocab).
  virtual void embedding_forward(const Tensor& table, const Tensor& ids, Tensor& y) = 0;
  /// dtable (zeroed first) += scatter of dy rows by ids.
  virtual void embedding_backward(const Tensor& dy, const Tensor& ids, Tensor& dtable) = 0;

  // Data movement --------------------------------------------------------------------------------
  virtual void concat(const std::vector<Tensor>& inputs, int64_t axis, Tensor& y) = 0;
  /// y = x[starts : starts + y.shape] with unit steps.
  virtual void slice(const Tensor& x, const std::vector<int64_t>& starts, Tensor& y) = 0;
  /// Writes x into y at `starts` (the adjoint of slice); the rest of y is untouched.
  virtual void slice_assign(const Tensor& x, const std::vector<int64_t>& starts, Tensor& y) = 0;
  /// Constant padding; pads[i] = {before, after}.
  virtual void pad(const Tensor& x, const std::vector<std::array<int64_t, 2>>& pads, Scalar value, Tensor& y) = 0;
  virtual void transpose(const Tensor& x, const std::vector<int64_t>& perm, Tensor& y) = 0;
  /// y = take(x, indices, axis); throws ValueError naming the first index out of range.
  virtual void gather(const Tensor& x, const Tensor& indices, int64_t axis, Tensor& y) = 0;
  /// The adjoint of gather: dx (zeroed first) accumulates dy along `axis`.
  virtual void scatter_add(const Tensor& dy, const Tensor& indices, int64_t axis, Tensor& dx) = 0;

  // Random: counter-based from a 64-bit key (see random.h), so every backend draws the same values
  virtual void random(RandomDistribution dist, const RandomKey& key, float a, float b, Tensor& y) = 0;
  /// Writes 0 or 1 / (1 - rate) per element: dropout's scaled keep mask.
  virtual void dropout_mask(float rate, const RandomKey& key, Tensor& mask) = 0;

  // Optimizer updates, in place -------------------------------------------------------------------
  /// Keras SGD: m = momentum * m - lr * g; w += m (nesterov: w += momentum * m - lr * g).
  /// momentum_buffer is null when momentum is 0.
  virtual void sgd_update(Tensor& variable, const Tensor& gradient, Tensor* momentum_buffer, const SGDAttrs& attrs) = 0;
  /// Keras Adam; vhat is used when amsgrad.
  virtual void adam_update(Tensor& variable, const Tensor& gradient, Tensor& m, Tensor& v, Tensor* vhat,
                           const AdamAttrs& attrs) = 0;

  // Fused recurrences (Capability::fused_rnn; the defaults throw NotImplementedError) ---------------
  /// One layer, left to right, over x (N, T, C): kernel (C, G*U) and recurrent_kernel (U, G*U) in
  /// Keras' layouts, bias (G*U) added to the input projection, recurrent_bias (G*U, GRU with
  /// reset_after only, else null) to the recurrent one; h0 and c0 (LSTM, else null) (N, U). Writes
  /// y (N, T, U), h_last and c_last (N, U). With attrs.training, allocates *workspace (uint8) with
  /// what rnn_backward needs.
  virtual void rnn_forward(const RnnAttrs& attrs, const Tensor& x, const Tensor& h0, const Tensor* c0,
                           const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
                           const Tensor* recurrent_bias, Tensor& y, Tensor& h_last, Tensor* c_last, Tensor* workspace);
  /// Gradients for the inputs of rnn_forward from those of its outputs (dc_last: LSTM only). Writes
  /// every d* given (dc0 and drecurrent_bias where the forward had them).
  virtual void rnn_backward(const RnnAttrs& attrs, const Tensor& x, const Tensor& h0, const Tensor* c0,
                            const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
                            const Tensor* recurrent_bias, const Tensor& y, const Tensor& h_last, const Tensor* c_last,
                            const Tensor& workspace, const Tensor& dy, const Tensor& dh_last, const Tensor* dc_last,
                            Tensor& dx, Tensor& dh0, Tensor* dc0, Tensor& dkernel, Tensor& drecurrent_kernel,
                            Tensor& dbias, Tensor* drecurrent_bias);

  // Graph capture (Capability::graph_capture; the defaults throw NotImplementedError) -------------
  /// From here on, work queued by this thread is recorded instead of run, and memory allocated is
  /// kept for the recording (it is reused only by its replays).
  virtual void begin_capture();
  /// Ends the recording: the replayable work, or null where it cannot be replayed (an operation
  /// waited on the device or failed meanwhile); then nothing of it ran and its memory is free again.
  virtual std::unique_ptr<CapturedWork> end_capture();
  /// While this thread records: the work it queues until end_guarded_by_checks runs in each replay
  /// only where every id and label check recorded before begin_guarded_by_checks passed. A replay
  /// with a bad label then changes no weight before its error is thrown, as a step run op by op,
  /// whose check throws before the update is queued. Outside a recording they do nothing; they
  /// nest. Backends that record must implement both (the defaults do nothing).
  virtual void begin_guarded_by_checks();
  virtual void end_guarded_by_checks();
  /// From here until the next begin_guarded_by_checks on this thread, a backend whose checks wait
  /// for the device may leave them unread (the ops they guard read no memory outside their inputs)
  /// and throw the first failure there, before anything is updated: one wait per step instead of
  /// one per check, and none while the forward pass is queued. end_deferring_checks drops what was
  /// not read (the step failed otherwise). The defaults do nothing: checks throw where they run.
  virtual void begin_deferring_checks();
  virtual void end_deferring_checks();
};

/// For backend authors: reductions run as (outer, r, inner) loops, r the reduced extent.
struct ReduceLayout {
  int64_t outer = 1, r = 1, inner = 1;
};
/// When the sorted `axes` are contiguous, x's elements already lie as (outer, r, inner); else nullopt.
/// Empty axes (a scalar) give (numel, 1, 1).
KERASCPP_API std::optional<ReduceLayout> contiguous_reduce_layout(const Shape& x, const std::vector<int64_t>& axes);
/// Copies x with the reduced axes moved last (through the backend's transpose) into `moved`; the
/// layout is then (outer, r, 1).
KERASCPP_API ReduceLayout move_reduced_axes_last(const Tensor& x, const std::vector<int64_t>& axes, Tensor& moved);

/// The backend new tensors go to when none is named: chosen by the registry on first use.
KERASCPP_API Backend& default_backend();

}  // namespace keras
