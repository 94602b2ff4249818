#pragma once
// keras::ops: the frontend operations. Each validates its arguments (errors name the op, what was
// expected and what was received), infers the output shape and dtype, calls the Backend of its
// inputs, and records a gradient rule while a GradientTape is recording.
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "backend.h"
#include "export.h"
#include "random.h"
#include "scalar.h"
#include "tensor.h"

namespace keras {
class Variable;
}

namespace keras::ops {

// Creation and conversion ------------------------------------------------------------------------
KERASCPP_API Tensor zeros(const Shape& shape, DType dtype = DType::float32, Backend* backend = nullptr);
KERASCPP_API Tensor ones(const Shape& shape, DType dtype = DType::float32, Backend* backend = nullptr);
KERASCPP_API Tensor full(const Shape& shape, Scalar value, DType dtype = DType::float32, Backend* backend = nullptr);
KERASCPP_API Tensor zeros_like(const Tensor& x);
KERASCPP_API Tensor ones_like(const Tensor& x);
KERASCPP_API Tensor full_like(const Tensor& x, Scalar value);
/// 0, 1, ..., n - 1 as int64 (or `dtype`).
KERASCPP_API Tensor arange(int64_t n, DType dtype = DType::int64, Backend* backend = nullptr);
/// A new tensor with the same values (differentiable).
KERASCPP_API Tensor copy(const Tensor& x);
/// Copies src's values into dst's storage (same shape and dtype); not recorded.
KERASCPP_API void copy_into(const Tensor& src, Tensor& dst);
/// The same values on another backend (through the host when the devices differ).
KERASCPP_API Tensor to_backend(const Tensor& x, Backend& backend);
/// Converts the dtype; differentiable between floating dtypes.
KERASCPP_API Tensor cast(const Tensor& x, DType dtype);

// Elementwise --------------------------------------------------------------------------------------
KERASCPP_API Tensor unary(UnaryOp op, const Tensor& x, UnaryAttrs attrs = {});
KERASCPP_API Tensor negative(const Tensor& x);
KERASCPP_API Tensor abs(const Tensor& x);
KERASCPP_API Tensor sign(const Tensor& x);
KERASCPP_API Tensor square(const Tensor& x);
KERASCPP_API Tensor sqrt(const Tensor& x);
KERASCPP_API Tensor rsqrt(const Tensor& x);
KERASCPP_API Tensor reciprocal(const Tensor& x);
KERASCPP_API Tensor exp(const Tensor& x);
KERASCPP_API Tensor log(const Tensor& x);
KERASCPP_API Tensor log1p(const Tensor& x);
KERASCPP_API Tensor sin(const Tensor& x);
KERASCPP_API Tensor cos(const Tensor& x);
KERASCPP_API Tensor tanh(const Tensor& x);
KERASCPP_API Tensor sigmoid(const Tensor& x);
KERASCPP_API Tensor relu(const Tensor& x);
KERASCPP_API Tensor relu6(const Tensor& x);
/// Keras' default negative slope is 0.2.
KERASCPP_API Tensor leaky_relu(const Tensor& x, float negative_slope = 0.2f);
KERASCPP_API Tensor elu(const Tensor& x, float alpha = 1.f);
KERASCPP_API Tensor selu(const Tensor& x);
/// approximate=true (Keras' default) uses the tanh formula, else the exact erf one.
KERASCPP_API Tensor gelu(const Tensor& x, bool approximate = true);
KERASCPP_API Tensor softplus(const Tensor& x);
KERASCPP_API Tensor softsign(const Tensor& x);
KERASCPP_API Tensor silu(const Tensor& x);
/// Keras 3: relu6(x + 3) / 6.
KERASCPP_API Tensor hard_sigmoid(const Tensor& x);
KERASCPP_API Tensor erf(const Tensor& x);
KERASCPP_API Tensor floor(const Tensor& x);
KERASCPP_API Tensor round(const Tensor& x);
KERASCPP_API Tensor clip(const Tensor& x, float min_value, float max_value);
KERASCPP_API Tensor logical_not(const Tensor& x);

/// NumPy broadcasting; both operands must share a dtype (ShapeError / TypeError otherwise).
KERASCPP_API Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
KERASCPP_API Tensor add(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor subtract(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor multiply(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor divide(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor maximum(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor minimum(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor power(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor equal(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor not_equal(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor less(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor greater(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor greater_equal(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor less_equal(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor logical_and(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor logical_or(const Tensor& a, const Tensor& b);
/// A scalar operand takes the tensor's dtype.
KERASCPP_API Tensor add(const Tensor& a, Scalar b);
KERASCPP_API Tensor multiply(const Tensor& a, Scalar b);
/// condition (bool) ? a : b, broadcast.
KERASCPP_API Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);

// Reductions: empty `axes` reduces everything ---------------------------------------------------------
KERASCPP_API Tensor sum(const Tensor& x, std::vector<int64_t> axes = {}, bool keepdims = false);
KERASCPP_API Tensor mean(const Tensor& x, std::vector<int64_t> axes = {}, bool keepdims = false);
KERASCPP_API Tensor max(const Tensor& x, std::vector<int64_t> axes = {}, bool keepdims = false);
KERASCPP_API Tensor min(const Tensor& x, std::vector<int64_t> axes = {}, bool keepdims = false);
KERASCPP_API Tensor prod(const Tensor& x, std::vector<int64_t> axes = {}, bool keepdims = false);
/// Population variance, as keras.ops.var.
KERASCPP_API Tensor var(const Tensor& x, std::vector<int64_t> axes = {}, bool keepdims = false);
/// int64 indices of the first maximum / minimum along `axis`.
KERASCPP_API Tensor argmax(const Tensor& x, int64_t axis = -1, bool keepdims = false);
KERASCPP_API Tensor argmin(const Tensor& x, int64_t axis = -1, bool keepdims = false);

// Shapes and data movement ----------------------------------------------------------------------------
/// One dimension may be -1 (inferred). Shares storage; differentiable.
KERASCPP_API Tensor reshape(const Tensor& x, const std::vector<int64_t>& shape);
KERASCPP_API Tensor transpose(const Tensor& x, std::vector<int64_t> perm = {});
KERASCPP_API Tensor expand_dims(const Tensor& x, int64_t axis);
KERASCPP_API Tensor squeeze(const Tensor& x, std::optional<int64_t> axis = std::nullopt);
KERASCPP_API Tensor broadcast_to(const Tensor& x, const Shape& shape);
KERASCPP_API Tensor concatenate(const std::vector<Tensor>& xs, int64_t axis = 0);
/// Splits along `axis` into pieces of the given sizes (which must add up to the dimension).
KERASCPP_API std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis = 0);
/// x[starts : starts + sizes]; a size of -1 runs to the end.
KERASCPP_API Tensor slice(const Tensor& x, const std::vector<int64_t>& starts, const std::vector<int64_t>& sizes);
/// Constant padding: pads[i] = {before, after} for each axis.
KERASCPP_API Tensor pad(const Tensor& x, const std::vector<std::array<int64_t, 2>>& pads, Scalar value = 0);
/// numpy.take: int32/int64 `indices` along `axis`; out-of-range indices throw ValueError.
KERASCPP_API Tensor take(const Tensor& x, const Tensor& indices, int64_t axis = 0);

// Linear algebra and neural-network primitives ------------------------------------------------------
KERASCPP_API Tensor matmul(const Tensor& a, const Tensor& b, MatmulAttrs attrs = {});
/// act(x @ kernel + bias) in one fused primitive where the backend can; x (..., in), kernel
/// (in, units), bias (units,) or undefined.
KERASCPP_API Tensor linear(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                           UnaryOp activation = UnaryOp::identity);

/// Convolution options in Keras' terms.
struct ConvOptions {
  std::vector<int64_t> strides = {1};  // one value for every spatial axis, or one per axis
  std::string padding = "valid";       // "valid" or "same" ("causal" too for 1-d convolutions)
  std::vector<int64_t> dilation_rate = {1};
  /// Transposed convolutions: Keras' output_padding, extra rows (and columns) at the end of the
  /// output, each smaller than its stride. Empty: Keras' None.
  std::vector<int64_t> output_padding;
  int64_t groups = 1;
  UnaryOp activation = UnaryOp::identity;
  /// An inference-mode BatchNormalization applied to (conv + bias), before the activation: its
  /// moving mean and variance, gamma and beta, all (F,) (gamma and beta may be undefined). One pass
  /// with the convolution where the backend fuses it (FoldedBatchNorm), with no op of its own.
  FoldedBatchNorm batch_norm;
  /// A residual block's shortcut, of the output's shape: added after the bias and batch norm, before
  /// the activation (Keras' Conv2D -> BatchNormalization -> Add -> ReLU). One pass with the
  /// convolution at inference where the backend fuses it; op by op otherwise.
  Tensor residual;
};
/// channels_last convolution: x (N, W, C) with kernel (kw, C / groups, F), or x (N, H, W, C) with
/// kernel (kh, kw, C / groups, F); bias (F,) or undefined.
KERASCPP_API Tensor conv(const Tensor& x, const Tensor& kernel, const Tensor& bias, const ConvOptions& options = {});
/// Depthwise convolution: kernel (kh, kw, C, depth_multiplier); output channels C * multiplier.
KERASCPP_API Tensor depthwise_conv(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                                   const ConvOptions& options = {});
/// Transposed convolution: kernel (kh, kw, F, C) as Keras' Conv2DTranspose, with its output sizes
/// (conv_transpose_output_size).
KERASCPP_API Tensor conv_transpose(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                                   const ConvOptions& options = {});
/// Keras' output length of a transposed convolution along one axis (deconv_output_length):
/// "valid" (in - 1) * stride + max(extent, stride), "same" in * stride, where extent is the dilated
/// kernel; with an output_padding p, (in - 1) * stride + extent - 2 * (extent / 2) + p for "same"
/// and (in - 1) * stride + extent + p for "valid".
KERASCPP_API int64_t conv_transpose_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                                                const std::string& padding,
                                                std::optional<int64_t> output_padding = std::nullopt);

struct PoolOptions {
  std::vector<int64_t> pool_size = {2};
  std::vector<int64_t> strides = {};  // defaults to pool_size, as in Keras
  std::string padding = "valid";
};
/// x (N, W, C) or (N, H, W, C).
KERASCPP_API Tensor max_pool(const Tensor& x, const PoolOptions& options = {});
KERASCPP_API Tensor average_pool(const Tensor& x, const PoolOptions& options = {});
/// max_pool(conv(x, kernel, bias, conv_options), pool_options) for 2-d images. Where nothing is
/// differentiated and the backend has Capability::fused_conv_max_pool, one pass that never writes
/// the convolution's output (the inference fusion of Conv2D -> MaxPooling2D); otherwise the two ops.
KERASCPP_API Tensor conv_max_pool(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                                  const ConvOptions& conv_options, const PoolOptions& pool_options = {});

/// Training-mode batch normalization over all axes but the last: returns y, batch mean and batch
/// (biased) variance. Computed in float32 for float16/bfloat16 x too (as Keras' layer): y keeps x's
/// dtype; the statistics, and the gradients of gamma and beta, are float32.
struct BatchNormResult {
  Tensor y, mean, variance;
};
KERASCPP_API BatchNormResult batch_norm_training(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                                 float epsilon = 1e-3f);
/// Inference-mode batch normalization with given statistics.
KERASCPP_API Tensor batch_norm_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                         const Tensor& variance, float epsilon = 1e-3f);

/// Layer normalization over x's axes from `first_axis` to the last: (x - mean) / sqrt(variance +
/// epsilon) * gamma + beta, with each sample's mean and population variance over those axes. gamma
/// and beta are undefined (1 and 0) or of the normalized axes' shape. Computed in float32 for
/// float16/bfloat16 x too, as Keras' ops.layer_normalization; y keeps x's dtype. One fused op, forward
/// and backward, on backends with Capability::fused_layer_norm; composed of others elsewhere.
KERASCPP_API Tensor layer_normalization(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                        int64_t first_axis = -1, float epsilon = 1e-3f);

KERASCPP_API Tensor softmax(const Tensor& x, int64_t axis = -1);
KERASCPP_API Tensor log_softmax(const Tensor& x, int64_t axis = -1);
/// Per-sample cross-entropy of softmax(logits) (N, C) against int labels (N,) when sparse, or
/// probabilities (N, C); returns (N,). Differentiable in the logits.
KERASCPP_API Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels, bool sparse);
/// Rows of `table` (vocab, dim) for int ids of any shape: output ids.shape + (dim,).
KERASCPP_API Tensor embedding(const Tensor& table, const Tensor& ids);
/// A fused recurrence (Backend::rnn_forward) over x (N, T, C) from states h0 (and c0 for LSTM),
/// with Keras' kernel (C, G*U), recurrent_kernel (U, G*U), bias (G*U) and, for the GRU with
/// reset_after, recurrent_bias (G*U). Differentiable in all of them. Only for backends with
/// Capability::fused_rnn (NotImplementedError otherwise).
struct RnnResult {
  Tensor sequence;  // (N, T, U): every step's output
  Tensor h, c;      // (N, U): the final states (c for LSTM)
};
KERASCPP_API RnnResult fused_rnn(RnnCell cell, const Tensor& x, const Tensor& h0, const Tensor& c0,
                                 const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
                                 const Tensor& recurrent_bias = Tensor());
/// x * keep-mask / (1 - rate); the identity when rate is 0.
KERASCPP_API Tensor dropout(const Tensor& x, float rate, std::optional<uint64_t> seed = std::nullopt);
/// Dropout keyed by the next key of `seeds` (a layer's generator). In a recorded step the key is
/// drawn before each replay, so replays drop what steps run one by one would.
KERASCPP_API Tensor dropout(const Tensor& x, float rate, random::SeedGenerator& seeds);

// Random ---------------------------------------------------------------------------------------------
KERASCPP_API Tensor random_uniform(const Shape& shape, float minval = 0.f, float maxval = 1.f,
                                   std::optional<uint64_t> seed = std::nullopt, Backend* backend = nullptr);
KERASCPP_API Tensor random_normal(const Shape& shape, float mean = 0.f, float stddev = 1.f,
                                  std::optional<uint64_t> seed = std::nullopt, Backend* backend = nullptr);
/// Keyed by the next key of `seeds` (a layer's generator), recording-safe as dropout: GaussianNoise and the like.
KERASCPP_API Tensor random_uniform(const Shape& shape, float minval, float maxval, random::SeedGenerator& seeds,
                                   Backend* backend = nullptr);
KERASCPP_API Tensor random_normal(const Shape& shape, float mean, float stddev, random::SeedGenerator& seeds,
                                  Backend* backend = nullptr);
/// Normal values redrawn when more than two standard deviations from the mean, as Keras.
KERASCPP_API Tensor truncated_normal(const Shape& shape, float mean = 0.f, float stddev = 1.f,
                                     std::optional<uint64_t> seed = std::nullopt, Backend* backend = nullptr);

// Optimizer updates (in place, not recorded) -------------------------------------------------------
KERASCPP_API void sgd_update(Variable& variable, const Tensor& gradient, Variable* momentum, const SGDAttrs& attrs);
KERASCPP_API void adam_update(Variable& variable, const Tensor& gradient, Variable& m, Variable& v, Variable* vhat,
                              const AdamAttrs& attrs);

}  // namespace keras::ops

namespace keras {
/// Arithmetic operators on tensors, for readable custom training loops.
KERASCPP_API Tensor operator+(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor operator-(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor operator*(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor operator/(const Tensor& a, const Tensor& b);
KERASCPP_API Tensor operator-(const Tensor& a);
KERASCPP_API Tensor operator*(const Tensor& a, float b);
KERASCPP_API Tensor operator*(float a, const Tensor& b);
KERASCPP_API Tensor operator+(const Tensor& a, float b);
KERASCPP_API Tensor operator+(float a, const Tensor& b);
KERASCPP_API Tensor operator-(const Tensor& a, float b);
KERASCPP_API Tensor operator-(float a, const Tensor& b);
}  // namespace keras
