// Matrix products (cuBLAS), convolutions, batch-norm and softmax (cuDNN), pooling (kernels.cu).
#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>

#include "backends/cuda/cuda_backend.h"
#include "core/config.h"

namespace keras::cuda {

// Matmul ----------------------------------------------------------------------------------------------

void CudaBackend::matmul(const Tensor& a, const Tensor& b, const Tensor* bias, Tensor& y, const MatmulAttrs& at) {
  const int64_t m = y.dim(-2), n = y.dim(-1);
  const int64_t k = at.transpose_a ? a.dim(-2) : a.dim(-1);
  const int64_t batch = y.num_elements() / std::max<int64_t>(m * n, 1);
  if (y.num_elements() == 0) return;
  const float one = 1.f, zero = 0.f;
  // float32, or bfloat16 / float16 operands under mixed precision (accumulated in float32).
  const cudaDataType_t type = y.dtype() == DType::bfloat16 ? CUDA_R_16BF
                              : y.dtype() == DType::float16 ? CUDA_R_16F
                                                            : CUDA_R_32F;
  const bool low = type != CUDA_R_32F;
  const size_t es = dtype_size(y.dtype());
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
  const cublasOperation_t op_a = at.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = at.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int64_t lda = a.dim(-1), ldb = b.dim(-1);
  const cublasComputeType_t compute =
      !low && tensor_float_32_execution_enabled() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  const int64_t a_mat = a.dim(-1) * a.dim(-2), b_mat = b.dim(-1) * b.dim(-2);
  const int64_t a_batch = a.num_elements() / std::max<int64_t>(a_mat, 1);
  const int64_t b_batch = b.num_elements() / std::max<int64_t>(b_mat, 1);
  if (k == 0) {
    fill(y, 0);
  } else if ((a_batch == batch || a_batch == 1) && (b_batch == batch || b_batch == 1)) {
    KCPP_CUBLAS(cublasGemmStridedBatchedEx(
        cublas(), op_b, op_a, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &one, b.raw_data(), type,
        static_cast<int>(ldb), b_batch == 1 ? 0 : b_mat, a.raw_data(), type, static_cast<int>(lda),
        a_batch == 1 ? 0 : a_mat, &zero, y.raw_data(), type, static_cast<int>(n), m * n, static_cast<int>(batch),
        compute, CUBLAS_GEMM_DEFAULT));
  } else {
    // Batch dimensions that broadcast against each other: one product per output matrix.
    const Shape yb(std::vector<int64_t>(y.shape().dims().begin(), y.shape().dims().end() - 2));
    const Shape ab(std::vector<int64_t>(a.shape().dims().begin(), a.shape().dims().end() - 2));
    const Shape bb(std::vector<int64_t>(b.shape().dims().begin(), b.shape().dims().end() - 2));
    const auto ix = make_indexer(yb, {&ab, &bb});
    for (int64_t i = 0; i < batch; ++i) {
      int64_t rest = i, ia = 0, ib = 0;
      for (int d = ix.rank - 1; d >= 0; --d) {
        const int64_t idx = rest % ix.dims[d];
        rest /= ix.dims[d];
        ia += idx * ix.strides[0][d];
        ib += idx * ix.strides[1][d];
      }
      const auto* bp = static_cast<const char*>(b.raw_data()) + ib * b_mat * static_cast<int64_t>(es);
      const auto* ap = static_cast<const char*>(a.raw_data()) + ia * a_mat * static_cast<int64_t>(es);
      auto* yp = static_cast<char*>(y.raw_data()) + i * m * n * static_cast<int64_t>(es);
      KCPP_CUBLAS(cublasGemmEx(cublas(), op_b, op_a, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &one,
                               bp, type, static_cast<int>(ldb), ap, type, static_cast<int>(lda), &zero, yp, type,
                               static_cast<int>(n), compute, CUBLAS_GEMM_DEFAULT));
    }
  }
  if (low && (bias || at.activation != UnaryOp::identity)) {
    kernels::bias_activation_low(y.raw_data(), bias ? bias->raw_data() : nullptr, y.num_elements() / n, n,
                                 static_cast<int>(at.activation), type == CUDA_R_16BF, stream());
    KCPP_LAUNCHED();
  } else if (bias || at.activation != UnaryOp::identity) {
    kernels::bias_activation(static_cast<float*>(y.raw_data()),
                             bias ? static_cast<const float*>(bias->raw_data()) : nullptr, y.num_elements() / n, n,
                             static_cast<int>(at.activation), stream());
    KCPP_LAUNCHED();
  }
}

// cuDNN descriptors ----------------------------------------------------------------------------------------

namespace {

using TensorDesc = CudnnDescriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDesc = CudnnDescriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvDesc =
    CudnnDescriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor>;

cudnnDataType_t cudnn_type(DType d) {
  return d == DType::bfloat16 ? CUDNN_DATA_BFLOAT16 : d == DType::float16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
}

void set_nhwc(TensorDesc& t, int64_t n, int64_t h, int64_t w, int64_t c, DType dtype = DType::float32) {
  KCPP_CUDNN(cudnnSetTensor4dDescriptor(t.d, CUDNN_TENSOR_NHWC, cudnn_type(dtype), static_cast<int>(n),
                                        static_cast<int>(c), static_cast<int>(h), static_cast<int>(w)));
}

// One convolution problem in cuDNN's terms. `xs` is the (possibly padded) input of the forward
// convolution, `ys` its output, `w` the KRSC filter: out channels `k`, in channels per group `c`.
struct ConvProblem {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  std::string key;
};

// dtype: float32, or bfloat16 / float16 data with float32 accumulation (cuDNN's "pseudo" configs).
void describe(ConvProblem& p, const Shape& xs, const Shape& ys, int64_t k, int64_t c, int64_t r, int64_t s,
              const ConvAttrs& at, int64_t pad_h, int64_t pad_w, DType dtype) {
  set_nhwc(p.x, xs[0], xs[1], xs[2], xs[3], dtype);
  set_nhwc(p.y, ys[0], ys[1], ys[2], ys[3], dtype);
  KCPP_CUDNN(cudnnSetFilter4dDescriptor(p.w.d, cudnn_type(dtype), CUDNN_TENSOR_NHWC, static_cast<int>(k),
                                        static_cast<int>(c), static_cast<int>(r), static_cast<int>(s)));
  KCPP_CUDNN(cudnnSetConvolution2dDescriptor(p.conv.d, static_cast<int>(pad_h), static_cast<int>(pad_w),
                                             static_cast<int>(at.strides[0]), static_cast<int>(at.strides[1]),
                                             static_cast<int>(at.dilations[0]), static_cast<int>(at.dilations[1]),
                                             CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  KCPP_CUDNN(cudnnSetConvolutionGroupCount(p.conv.d, static_cast<int>(at.groups)));
  const bool tf32 = tensor_float_32_execution_enabled();
  const bool low = dtype != DType::float32;
  KCPP_CUDNN(cudnnSetConvolutionMathType(p.conv.d, low ? CUDNN_TENSOR_OP_MATH
                                                   : (tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH)));
  p.key = fmt::format("{}|{}|{}x{}x{}x{}|{}x{}|{}x{}|{}x{}|{}|{}|{}", xs.to_string(), ys.to_string(), k, c, r, s, pad_h,
                      pad_w, at.strides[0], at.strides[1], at.dilations[0], at.dilations[1], at.groups, tf32,
                      dtype_name(dtype));
}

// The descriptors of one problem, built once: at batch 1 a convolution's host time is the latency.
// Descriptors belong to no handle or device, so one cache serves every backend.
std::shared_ptr<const ConvProblem> problem_of(const Shape& xs, const Shape& ys, int64_t k, int64_t c, int64_t r,
                                              int64_t s, const ConvAttrs& at, int64_t pad_h, int64_t pad_w,
                                              DType dtype) {
  using Key = std::array<int64_t, 21>;
  const Key key{xs[0],          xs[1],          xs[2],           xs[3],           ys[0],     ys[1], ys[2],
                ys[3],          k,              c,               r,               s,         pad_h, pad_w,
                at.strides[0], at.strides[1], at.dilations[0], at.dilations[1], at.groups,
                tensor_float_32_execution_enabled() ? 1 : 0, static_cast<int64_t>(dtype)};
  static std::mutex mutex;
  static std::map<Key, std::shared_ptr<const ConvProblem>> problems;
  std::lock_guard lock(mutex);
  auto& p = problems[key];
  if (!p) {
    auto made = std::make_shared<ConvProblem>();
    describe(*made, xs, ys, k, c, r, s, at, pad_h, pad_w, dtype);
    p = std::move(made);
  }
  return p;
}

}  // namespace

// Convolutions -----------------------------------------------------------------------------------------------
//
// cuDNN pads symmetrically; Keras' "same" can pad one more at the end. Such inputs are padded
// explicitly (zeros) and the convolution then runs unpadded. Keras kernels (kh, kw, in, out) are
// transposed to cuDNN's KRSC layout: per call in training, once per weights' version at inference.

namespace {

enum Direction { kForward, kBackwardData, kBackwardFilter };

struct Geometry {
  bool explicit_pad;
  Shape padded;  // the forward input's shape after explicit padding
  int64_t pad_h, pad_w;
};

Geometry geometry_of(const Shape& x, const ConvAttrs& at) {
  Geometry g;
  g.explicit_pad = at.pad_begin[0] != at.pad_end[0] || at.pad_begin[1] != at.pad_end[1];
  if (g.explicit_pad) {
    g.padded = Shape{x[0], x[1] + at.pad_begin[0] + at.pad_end[0], x[2] + at.pad_begin[1] + at.pad_end[1], x[3]};
    g.pad_h = g.pad_w = 0;
  } else {
    g.padded = x;
    g.pad_h = at.pad_begin[0];
    g.pad_w = at.pad_begin[1];
  }
  return g;
}

// Finds (once per problem, by measurement) the fastest algorithm and its workspace size.
std::pair<int, size_t> choose(CudaBackend& be, Direction dir, const ConvProblem& p) {
  const std::string key = fmt::format("{}|{}", static_cast<int>(dir), p.key);
  {
    std::lock_guard lock(be.algo_mutex);
    auto it = be.algo_cache.find(key);
    if (it != be.algo_cache.end()) {
      // -1: searched before and nothing fits (a low-precision shape then takes the float32 fallback).
      KCPP_CHECK(it->second.first >= 0, BackendError, "cuDNN: no algorithm supports the convolution {}", p.key);
      return it->second;
    }
  }
  be.algorithm_searches.fetch_add(1);
  int returned = 0;
  std::pair<int, size_t> best{-1, 0};
  constexpr int kRequested = 8;
  if (dir == kForward) {
    cudnnConvolutionFwdAlgoPerf_t perf[kRequested];
    KCPP_CUDNN(
        cudnnFindConvolutionForwardAlgorithm(be.cudnn(), p.x.d, p.w.d, p.conv.d, p.y.d, kRequested, &returned, perf));
    for (int i = 0; i < returned && best.first < 0; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS) best = {static_cast<int>(perf[i].algo), perf[i].memory};
  } else if (dir == kBackwardData) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[kRequested];
    KCPP_CUDNN(cudnnFindConvolutionBackwardDataAlgorithm(be.cudnn(), p.w.d, p.y.d, p.conv.d, p.x.d, kRequested,
                                                         &returned, perf));
    for (int i = 0; i < returned && best.first < 0; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS) best = {static_cast<int>(perf[i].algo), perf[i].memory};
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[kRequested];
    KCPP_CUDNN(cudnnFindConvolutionBackwardFilterAlgorithm(be.cudnn(), p.x.d, p.y.d, p.conv.d, p.w.d, kRequested,
                                                           &returned, perf));
    for (int i = 0; i < returned && best.first < 0; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS) best = {static_cast<int>(perf[i].algo), perf[i].memory};
  }
  {
    std::lock_guard lock(be.algo_mutex);
    be.algo_cache[key] = best;  // a failed search is remembered too
  }
  KCPP_CHECK(best.first >= 0, BackendError, "cuDNN: no algorithm supports the convolution {}", p.key);
  return best;
}

}  // namespace

// The forward convolution x (N,H,W,Ci) * w (Keras layout, out channels co) -> y, and its two
// backward passes, expressed once; transposed convolutions reuse them with the roles swapped.
static void run_conv(CudaBackend& be, Direction dir, const Tensor& x, const Tensor& w_keras, const Tensor& y,
                     const ConvAttrs& at) {
  const Geometry g = geometry_of(x.shape(), at);
  const DType dtype = x.dtype();
  // Filter KRSC: k = forward output channels, c = forward input channels per group.
  const int64_t r = w_keras.dim(0), s = w_keras.dim(1);
  const int64_t k = y.dim(3), c = x.dim(3) / at.groups;
  const std::shared_ptr<const ConvProblem> problem = problem_of(g.padded, y.shape(), k, c, r, s, at, g.pad_h, g.pad_w, dtype);
  const ConvProblem& p = *problem;
  const auto [algo, ws_bytes] = choose(be, dir, p);
  auto ws = be.scratch(ws_bytes);
  const float one = 1.f, zero = 0.f;
  // Keras kernels (kh, kw, c, k) -> cuDNN (k, kh, kw, c). A transposed-conv kernel (kh, kw, F, C) is
  // already the conv layout of its forward problem (F channels in, C out).
  const std::vector<int64_t> perm{3, 0, 1, 2};
  const Shape krsc{k, r, s, c};
  Tensor xp = x;
  if (g.explicit_pad && dir != kBackwardData) {
    xp = Tensor::empty(g.padded, dtype, &be);
    be.pad(x, {{{0, 0}}, {{at.pad_begin[0], at.pad_end[0]}}, {{at.pad_begin[1], at.pad_end[1]}}, {{0, 0}}}, 0, xp);
  }
  if (dir == kForward || dir == kBackwardData) {
    const auto transposed = [&] {
      Tensor wt = Tensor::empty(krsc, dtype, &be);
      be.transpose(w_keras, perm, wt);
      return wt;
    };
    // Inference: transposed once while the weights are unchanged.
    const Tensor wt = dir == kForward && !at.training ? be.inference_weights({&w_keras}, "krsc", transposed)
                                                      : transposed();
    const void* w_data = wt.raw_data();
    if (dir == kForward) {
      KCPP_CUDNN(cudnnConvolutionForward(be.cudnn(), &one, p.x.d, xp.raw_data(), p.w.d, w_data, p.conv.d,
                                         static_cast<cudnnConvolutionFwdAlgo_t>(algo), ws ? ws->data() : nullptr,
                                         ws_bytes, &zero, p.y.d, y.raw_data()));
    } else {
      // x is the output here (dx); with explicit padding, compute the padded dx and crop it.
      Tensor dxp = g.explicit_pad ? Tensor::empty(g.padded, dtype, &be) : x;
      KCPP_CUDNN(cudnnConvolutionBackwardData(be.cudnn(), &one, p.w.d, w_data, p.y.d, y.raw_data(), p.conv.d,
                                              static_cast<cudnnConvolutionBwdDataAlgo_t>(algo),
                                              ws ? ws->data() : nullptr, ws_bytes, &zero, p.x.d, dxp.raw_data()));
      if (g.explicit_pad) {
        Tensor dx = x;
        be.slice(dxp, {0, at.pad_begin[0], at.pad_begin[1], 0}, dx);
      }
    }
  } else {
    Tensor dwt = Tensor::empty(krsc, dtype, &be);
    KCPP_CUDNN(cudnnConvolutionBackwardFilter(be.cudnn(), &one, p.x.d, xp.raw_data(), p.y.d, y.raw_data(), p.conv.d,
                                              static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo),
                                              ws ? ws->data() : nullptr, ws_bytes, &zero, p.w.d, dwt.raw_data()));
    // Back to the caller's layout: the inverse permutation.
    std::vector<int64_t> inverse(4);
    for (size_t i = 0; i < 4; ++i) inverse[static_cast<size_t>(perm[i])] = static_cast<int64_t>(i);
    Tensor dw = w_keras;
    be.transpose(dwt, inverse, dw);
  }
}

// A low-precision convolution cuDNN has no algorithm for (an odd channel count, say) runs on
// float32 copies and rounds its result back, as the frontend does for backends without one.
static void run_conv_any(CudaBackend& be, Direction dir, const Tensor& x, const Tensor& w_keras, const Tensor& y,
                         const ConvAttrs& at) {
  if (x.dtype() == DType::float32) return run_conv(be, dir, x, w_keras, y, at);
  try {
    run_conv(be, dir, x, w_keras, y, at);
    return;
  } catch (const BackendError&) {
  }
  auto wide = [&](const Tensor& t) {
    Tensor f = Tensor::empty(t.shape(), DType::float32, &be);
    be.cast(t, f);
    return f;
  };
  const Tensor xf = wide(x), wf = wide(w_keras), yf = wide(y);
  run_conv(be, dir, xf, wf, yf, at);
  // The output: y forward, x (dx) backward to the data, the kernel backward to the filter.
  const Tensor& out = dir == kForward ? y : dir == kBackwardData ? x : w_keras;
  const Tensor& out_f = dir == kForward ? yf : dir == kBackwardData ? xf : wf;
  Tensor target = out;
  be.cast(out_f, target);
}

static void bias_grad(CudaBackend& be, const Tensor& dy, Tensor& dbias) {
  // Sum over N, H, W of an NHWC tensor: a (M, C) column reduction (accumulated in double for every dtype).
  const int64_t c = dy.dim(3);
  be.reduce(ReduceOp::sum, dy.view(Shape{dy.num_elements() / c, c}), {0}, dbias);
}

// y += bias, then the activation, for a low-precision output (no folded batch norm or residual: see ops::conv).
static void low_bias_activation(CudaBackend& be, Tensor& y, const Tensor* bias, UnaryOp act, cudaStream_t stream) {
  kernels::bias_activation_low(y.raw_data(), bias ? bias->raw_data() : nullptr, y.num_elements() / y.dim(3), y.dim(3),
                               static_cast<int>(act), y.dtype() == DType::bfloat16, stream);
}

void CudaBackend::conv_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, const ConvAttrs& at) {
  const bool affine = at.batch_norm.defined();  // a folded batch-norm, in the same pass as bias and activation
  const bool residual = at.residual.defined();   // a residual block's Add, likewise
  KCPP_CHECK(!residual || (at.residual.shape() == y.shape() && at.residual.dtype() == y.dtype()), BackendError,
             "cuda conv_forward: expected a residual of shape {}, received {}", y.shape().to_string(),
             at.residual.to_string());
  run_conv_any(*this, kForward, x, w, y, at);
  if (y.dtype() != DType::float32) {
    KCPP_CHECK(!affine && !residual, BackendError,
               "cuda conv_forward: a folded batch norm or a residual runs in float32, received dtype {}",
               dtype_name(y.dtype()));
    if (bias || at.activation != UnaryOp::identity) {
      low_bias_activation(*this, y, bias, at.activation, stream());
      KCPP_LAUNCHED();
    }
    return;
  }
  Tensor affine_space;  // scale then shift: freed in stream order, after the kernels
  const float *scale = nullptr, *shift = nullptr;
  if (affine) {
    // Computed once while the batch norm's weights are unchanged (at inference, outside recordings).
    const FoldedBatchNorm& bn = at.batch_norm;
    const int64_t c = y.dim(3);
    auto data = [](const Tensor& t) { return t.defined() ? static_cast<const float*>(t.raw_data()) : nullptr; };
    affine_space = inference_weights({&bn.mean, &bn.variance, &bn.gamma, &bn.beta}, fmt::format("fold|{}", bn.epsilon),
                                     [&] {
                                       Tensor space = Tensor::empty(Shape{2 * c}, DType::float32, this);
                                       auto* p = static_cast<float*>(space.raw_data());
                                       kernels::fold_batch_norm(data(bn.mean), data(bn.variance), data(bn.gamma),
                                                                data(bn.beta), bn.epsilon, p, p + c, c, stream());
                                       KCPP_LAUNCHED();
                                       return space;
                                     });
    scale = static_cast<const float*>(affine_space.raw_data());
    shift = scale + c;
  }
  if (bias || affine || residual || at.activation != UnaryOp::identity) {
    kernels::bias_activation(static_cast<float*>(y.raw_data()),
                             bias ? static_cast<const float*>(bias->raw_data()) : nullptr, y.num_elements() / y.dim(3),
                             y.dim(3), static_cast<int>(at.activation), stream(), scale, shift,
                             residual ? static_cast<const float*>(at.residual.raw_data()) : nullptr);
    KCPP_LAUNCHED();
  }
}
void CudaBackend::conv_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, const ConvAttrs& at) {
  run_conv_any(*this, kBackwardData, dx, w, dy, at);
}
void CudaBackend::conv_backward_weights(const Tensor& dy, const Tensor& x, Tensor& dw, Tensor* dbias,
                                        const ConvAttrs& at) {
  run_conv_any(*this, kBackwardFilter, x, dw, dy, at);
  if (dbias) bias_grad(*this, dy, *dbias);
}

// A transposed convolution x -> y is the backward-data pass of the convolution y -> x whose
// filter, in Keras' conv layout, is the transposed-conv kernel (kh, kw, F, C).
void CudaBackend::conv_transpose_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y,
                                         const ConvAttrs& at) {
  run_conv_any(*this, kBackwardData, y, w, x, at);
  if (y.dtype() != DType::float32) {
    if (bias || at.activation != UnaryOp::identity) {
      low_bias_activation(*this, y, bias, at.activation, stream());
      KCPP_LAUNCHED();
    }
    return;
  }
  if (bias || at.activation != UnaryOp::identity) {
    kernels::bias_activation(static_cast<float*>(y.raw_data()),
                             bias ? static_cast<const float*>(bias->raw_data()) : nullptr, y.num_elements() / y.dim(3),
                             y.dim(3), static_cast<int>(at.activation), stream());
    KCPP_LAUNCHED();
  }
}
void CudaBackend::conv_transpose_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, const ConvAttrs& at) {
  run_conv_any(*this, kForward, dy, w, dx, at);
}
void CudaBackend::conv_transpose_backward_weights(const Tensor& dy, const Tensor& x, Tensor& dw, Tensor* dbias,
                                                  const ConvAttrs& at) {
  run_conv_any(*this, kBackwardFilter, dy, dw, x, at);
  if (dbias) bias_grad(*this, dy, *dbias);
}

// Pooling (kernels.cu: exact Keras semantics for asymmetric "same" padding) ---------------------------------

namespace {
kernels::PoolGeometry pool_geometry(const Tensor& x, const Tensor& y, const PoolAttrs& at) {
  return {x.dim(0),     x.dim(1),     x.dim(2),      x.dim(3),      y.dim(1),        y.dim(2),
          at.window[0], at.window[1], at.strides[0], at.strides[1], at.pad_begin[0], at.pad_begin[1]};
}
}  // namespace

size_t CudaBackend::pool_workspace_bytes(const Tensor& x, const Tensor& y, const PoolAttrs& at) {
  return at.mode == PoolMode::max ? static_cast<size_t>(y.num_elements()) * sizeof(int32_t) : 0;
}

void CudaBackend::pool_forward(const Tensor& x, Tensor& y, Tensor* workspace, const PoolAttrs& at) {
  KCPP_CHECK(x.num_elements() < (int64_t{1} << 31), NotImplementedError,
             "cuda backend: pooling inputs over 2^31 elements are not supported, received {}", x.shape().to_string());
  if (!y.num_elements()) return;
  kernels::pool_forward(at.mode == PoolMode::max, code_of(x.dtype()), x.raw_data(), y.raw_data(),
                        workspace ? static_cast<int32_t*>(workspace->raw_data()) : nullptr, pool_geometry(x, y, at),
                        stream());
  KCPP_LAUNCHED();
}

void CudaBackend::pool_backward(const Tensor& dy, const Tensor& x, const Tensor* workspace, Tensor& dx,
                                const PoolAttrs& at) {
  KCPP_CHECK(at.mode != PoolMode::max || workspace, ValueError,
             "pool_backward: max pooling needs the forward workspace");
  // Overlapping windows add up in float32; a float16/bfloat16 gradient is rounded once at the end.
  Tensor sums = dx.dtype() == DType::float32 ? dx : Tensor::empty(dx.shape(), DType::float32, this);
  fill(sums, 0);
  if (dy.num_elements()) {
    kernels::pool_backward(at.mode == PoolMode::max, code_of(dy.dtype()), dy.raw_data(),
                           workspace ? static_cast<const int32_t*>(workspace->raw_data()) : nullptr,
                           sums.data<float>(), pool_geometry(x, dy, at), stream());
    KCPP_LAUNCHED();
  }
  if (dx.dtype() != DType::float32) cast(sums, dx);
}

// Batch normalization over (M, C) channels-last rows ------------------------------------------------------------

// Batch normalization runs on the project's own kernels (kernels.cu): cuDNN's legacy NHWC float32
// path was 30-40x slower than memory bandwidth allows on H100.
void CudaBackend::batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& mean,
                                     Tensor& variance, Tensor& y, float epsilon, bool training) {
  const int64_t m = x.dim(0), c = x.dim(1);
  KCPP_CHECK(epsilon > 0, ValueError, "batch normalization: epsilon must be positive, received {}", epsilon);
  if (training) {
    const auto scratch = allocate(kernels::batch_norm_scratch_bytes(m, c));
    kernels::batch_norm_statistics(code_of(x.dtype()), x.raw_data(), mean.data<float>(), variance.data<float>(), scratch->data(), m, c,
                                   epsilon, stream());
  }
  kernels::batch_norm_apply(code_of(x.dtype()), x.raw_data(), mean.data<float>(), variance.data<float>(),
                            gamma.data<float>(), beta.data<float>(), y.raw_data(), m, c, epsilon, stream());
  KCPP_LAUNCHED();
}

void CudaBackend::batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                      const Tensor& variance, Tensor& dx, Tensor& dgamma, Tensor& dbeta,
                                      float epsilon) {
  const int64_t m = x.dim(0), c = x.dim(1);
  const auto scratch = allocate(kernels::batch_norm_scratch_bytes(m, c));
  kernels::batch_norm_backward(code_of(x.dtype()), dy.raw_data(), x.raw_data(), gamma.data<float>(),
                               mean.data<float>(), variance.data<float>(), dx.raw_data(), dgamma.data<float>(), dbeta.data<float>(),
                               scratch->data(), m, c, epsilon, stream());
  KCPP_LAUNCHED();
}

// Layer normalization: kernels.cu (cuDNN 9's layer norm is a graph-API fusion for a later step).
void CudaBackend::layer_norm_forward(const Tensor& x, const Tensor* gamma, const Tensor* beta, Tensor& y, Tensor* mean,
                                     Tensor* variance, float epsilon) {
  KCPP_CHECK(x.dtype() == DType::float32, TypeError, "layer_norm_forward: expected float32 data, received {}",
             dtype_name(x.dtype()));
  auto f = [](const Tensor* t) { return t ? t->data<float>() : nullptr; };
  auto w = [](Tensor* t) { return t ? t->data<float>() : nullptr; };
  kernels::layer_norm_forward(x.data<float>(), f(gamma), f(beta), y.data<float>(), w(mean), w(variance), x.dim(0),
                              x.dim(1), epsilon, stream());
  KCPP_LAUNCHED();
}

void CudaBackend::layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor* gamma, const Tensor& mean,
                                      const Tensor& variance, Tensor& dx, Tensor* dgamma, Tensor* dbeta,
                                      float epsilon) {
  KCPP_CHECK(x.dtype() == DType::float32 && dy.dtype() == DType::float32, TypeError,
             "layer_norm_backward: expected float32 data, received {} and {}", dtype_name(x.dtype()),
             dtype_name(dy.dtype()));
  const auto scratch = allocate(kernels::layer_norm_scratch_bytes(x.dim(0), x.dim(1)));
  kernels::layer_norm_backward(dy.data<float>(), x.data<float>(), gamma ? gamma->data<float>() : nullptr,
                               mean.data<float>(), variance.data<float>(), dx.data<float>(),
                               dgamma ? dgamma->data<float>() : nullptr, dbeta ? dbeta->data<float>() : nullptr,
                               scratch->data(), x.dim(0), x.dim(1), epsilon, stream());
  KCPP_LAUNCHED();
}

void CudaBackend::softmax(const Tensor& x, Tensor& y, bool log) {
  if (x.dtype() != DType::float32) {  // float16 / bfloat16: kernels.cu, in float
    kernels::softmax_rows(code_of(x.dtype()), x.raw_data(), y.raw_data(), x.dim(0), x.dim(1), log, stream());
    KCPP_LAUNCHED();
    return;
  }
  TensorDesc d;
  KCPP_CUDNN(cudnnSetTensor4dDescriptor(d.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, static_cast<int>(x.dim(0)),
                                        static_cast<int>(x.dim(1)), 1, 1));
  const float one = 1.f, zero = 0.f;
  KCPP_CUDNN(cudnnSoftmaxForward(cudnn(), log ? CUDNN_SOFTMAX_LOG : CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE,
                                 &one, d.d, x.raw_data(), &zero, d.d, y.raw_data()));
}

}  // namespace keras::cuda
