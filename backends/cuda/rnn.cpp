// Fused recurrences on cuDNN's RNN API: LSTM and GRU with reset_after (the cells Keras hands to
// cuDNN). cuDNN keeps one (U, C) row-major matrix and one bias per gate and weight kind; Keras keeps
// (C, G*U) kernels. The weights change every step, so they are repacked into cuDNN's weight space
// at each call (a few small copies against a whole sequence), and the weight gradients unpacked the
// same way.
#include <array>
#include <vector>

#include "backends/cuda/cuda_backend.h"
#include "core/config.h"

namespace keras::cuda {

namespace {

struct RnnDescriptor {
  cudnnRNNDescriptor_t d = nullptr;
  RnnDescriptor() { KCPP_CUDNN(cudnnCreateRNNDescriptor(&d)); }
  ~RnnDescriptor() { cudnnDestroyRNNDescriptor(d); }
  RnnDescriptor(const RnnDescriptor&) = delete;
  RnnDescriptor& operator=(const RnnDescriptor&) = delete;
};
struct RnnDataDescriptor {
  cudnnRNNDataDescriptor_t d = nullptr;
  RnnDataDescriptor() { KCPP_CUDNN(cudnnCreateRNNDataDescriptor(&d)); }
  ~RnnDataDescriptor() { cudnnDestroyRNNDataDescriptor(d); }
  RnnDataDescriptor(const RnnDataDescriptor&) = delete;
  RnnDataDescriptor& operator=(const RnnDataDescriptor&) = delete;
};
struct DropoutDescriptor {
  cudnnDropoutDescriptor_t d = nullptr;
  DropoutDescriptor() { KCPP_CUDNN(cudnnCreateDropoutDescriptor(&d)); }
  ~DropoutDescriptor() { cudnnDestroyDropoutDescriptor(d); }
  DropoutDescriptor(const DropoutDescriptor&) = delete;
  DropoutDescriptor& operator=(const DropoutDescriptor&) = delete;
};
struct PlainDescriptor {
  cudnnTensorDescriptor_t d = nullptr;
  PlainDescriptor() { KCPP_CUDNN(cudnnCreateTensorDescriptor(&d)); }
  ~PlainDescriptor() { cudnnDestroyTensorDescriptor(d); }
  PlainDescriptor(const PlainDescriptor&) = delete;
  PlainDescriptor& operator=(const PlainDescriptor&) = delete;
};

// Keras' gate k is cuDNN's linear layer gate_id[k] (input weights; recurrent ones are + gates).
// LSTM: both i, f, c, o. GRU: Keras z, r, h; cuDNN r, z, h.
constexpr std::array<int, 4> kLstmGates{0, 1, 2, 3};
constexpr std::array<int, 4> kGruGates{1, 0, 2, 0};

// One layer, one direction, over x (N, T, C), with everything cuDNN needs for it.
struct RnnProblem {
  int64_t n, t, c, u, gates;
  bool lstm;
  DropoutDescriptor dropout;
  RnnDescriptor rnn;
  RnnDataDescriptor x, y;
  PlainDescriptor h;  // h0, h_last, c0, c_last: (layers = 1, N, U)
  size_t weight_bytes = 0, work_bytes = 0, reserve_bytes = 0;
  Tensor seq_lengths;  // int32 (N), all T, on the device: cuDNN reads it asynchronously

  RnnProblem(CudaBackend& be, RnnCell cell, const Tensor& xs, const Tensor& recurrent_kernel, bool training)
      : n(xs.dim(0)), t(xs.dim(1)), c(xs.dim(2)), u(recurrent_kernel.dim(0)), lstm(cell == RnnCell::lstm) {
    KCPP_CHECK(cell != RnnCell::gru, NotImplementedError,
               "cuda backend: cuDNN has no GRU with reset_after=False; the layer runs its step loop instead");
    gates = lstm ? 4 : 3;
    KCPP_CUDNN(cudnnSetDropoutDescriptor(dropout.d, be.cudnn(), 0.f, nullptr, 0, 0));
    const bool tf32 = tensor_float_32_execution_enabled();
    KCPP_CUDNN(cudnnSetRNNDescriptor_v8(rnn.d, CUDNN_RNN_ALGO_STANDARD, lstm ? CUDNN_LSTM : CUDNN_GRU,
                                        CUDNN_RNN_DOUBLE_BIAS, CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT,
                                        CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT, tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH,
                                        static_cast<int32_t>(c), static_cast<int32_t>(u), static_cast<int32_t>(u), 1,
                                        dropout.d, CUDNN_RNN_PADDED_IO_DISABLED));
    const std::vector<int> lengths(static_cast<size_t>(n), static_cast<int>(t));
    KCPP_CUDNN(cudnnSetRNNDataDescriptor(x.d, CUDNN_DATA_FLOAT, CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED,
                                         static_cast<int>(t), static_cast<int>(n), static_cast<int>(c), lengths.data(),
                                         nullptr));
    KCPP_CUDNN(cudnnSetRNNDataDescriptor(y.d, CUDNN_DATA_FLOAT, CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED,
                                         static_cast<int>(t), static_cast<int>(n), static_cast<int>(u), lengths.data(),
                                         nullptr));
    const int dims[3] = {1, static_cast<int>(n), static_cast<int>(u)};
    const int strides[3] = {static_cast<int>(n * u), static_cast<int>(u), 1};
    KCPP_CUDNN(cudnnSetTensorNdDescriptor(h.d, CUDNN_DATA_FLOAT, 3, dims, strides));
    KCPP_CUDNN(cudnnGetRNNWeightSpaceSize(be.cudnn(), rnn.d, &weight_bytes));
    KCPP_CUDNN(cudnnGetRNNTempSpaceSizes(be.cudnn(), rnn.d, training ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE,
                                         x.d, &work_bytes, &reserve_bytes));
    seq_lengths = Tensor::empty(Shape{n}, DType::int32, &be);
    be.fill(seq_lengths, Scalar(static_cast<double>(t)));
  }

  // The matrix and bias of cuDNN linear layer `id` inside a weight space.
  std::pair<float*, float*> gate(CudaBackend& be, void* space, int id) const {
    PlainDescriptor m, b;
    void* m_addr = nullptr;
    void* b_addr = nullptr;
    KCPP_CUDNN(cudnnGetRNNWeightParams(be.cudnn(), rnn.d, 0, weight_bytes, space, id, m.d, &m_addr, b.d, &b_addr));
    return {static_cast<float*>(m_addr), static_cast<float*>(b_addr)};
  }
  int cudnn_gate(int keras_gate) const { return (lstm ? kLstmGates : kGruGates)[static_cast<size_t>(keras_gate)]; }

  // Keras' kernel (rows, G*U), gate g: the (U, rows) row-major matrix cuDNN keeps, and back.
  kernels::Indexer gate_columns(int64_t rows) const {
    kernels::Indexer ix;
    ix.rank = 2;
    ix.dims[0] = u;
    ix.dims[1] = rows;
    ix.strides[0][0] = 1;
    ix.strides[0][1] = gates * u;
    return ix;
  }

  // Writes Keras' weights into a weight space; a null recurrent_bias (LSTM) leaves cuDNN's zero.
  void pack(CudaBackend& be, void* space, const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
            const Tensor* recurrent_bias) const {
    KCPP_CUDA(cudaMemsetAsync(space, 0, weight_bytes, be.stream()));
    for (int g = 0; g < gates; ++g) {
      const int id = cudnn_gate(g);
      const auto [w, bw] = gate(be, space, id);
      const auto [r, br] = gate(be, space, id + static_cast<int>(gates));
      kernels::strided_copy(4, kernel.raw_data(), w, gate_columns(c), g * u, u * c, be.stream());
      kernels::strided_copy(4, recurrent_kernel.raw_data(), r, gate_columns(u), g * u, u * u, be.stream());
      KCPP_LAUNCHED();
      const size_t bytes = static_cast<size_t>(u) * sizeof(float);
      KCPP_CUDA(cudaMemcpyAsync(bw, static_cast<const float*>(bias.raw_data()) + g * u, bytes,
                                cudaMemcpyDeviceToDevice, be.stream()));
      if (recurrent_bias)
        KCPP_CUDA(cudaMemcpyAsync(br, static_cast<const float*>(recurrent_bias->raw_data()) + g * u, bytes,
                                  cudaMemcpyDeviceToDevice, be.stream()));
    }
  }

  // The inverse of pack, for gradients. LSTM: the input and recurrent biases are summed in every
  // gate, so their gradients are equal and the input bias' is Keras' bias gradient.
  void unpack(CudaBackend& be, const void* space, Tensor& kernel, Tensor& recurrent_kernel, Tensor& bias,
              Tensor* recurrent_bias) const {
    for (int g = 0; g < gates; ++g) {
      const int id = cudnn_gate(g);
      const auto [w, bw] = gate(be, const_cast<void*>(space), id);
      const auto [r, br] = gate(be, const_cast<void*>(space), id + static_cast<int>(gates));
      kernels::strided_scatter(4, w, kernel.raw_data(), gate_columns(c), g * u, u * c, be.stream());
      kernels::strided_scatter(4, r, recurrent_kernel.raw_data(), gate_columns(u), g * u, u * u, be.stream());
      KCPP_LAUNCHED();
      const size_t bytes = static_cast<size_t>(u) * sizeof(float);
      KCPP_CUDA(cudaMemcpyAsync(static_cast<float*>(bias.raw_data()) + g * u, bw, bytes, cudaMemcpyDeviceToDevice,
                                be.stream()));
      if (recurrent_bias)
        KCPP_CUDA(cudaMemcpyAsync(static_cast<float*>(recurrent_bias->raw_data()) + g * u, br, bytes,
                                  cudaMemcpyDeviceToDevice, be.stream()));
    }
  }
};

}  // namespace

void CudaBackend::rnn_forward(const RnnAttrs& a, const Tensor& x, const Tensor& h0, const Tensor* c0,
                              const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
                              const Tensor* recurrent_bias, Tensor& y, Tensor& h_last, Tensor* c_last,
                              Tensor* workspace) {
  const bool training = a.training && workspace;
  const RnnProblem p(*this, a.cell, x, recurrent_kernel, training);
  auto weights = scratch(p.weight_bytes);
  p.pack(*this, weights->data(), kernel, recurrent_kernel, bias, recurrent_bias);
  auto work = scratch(std::max<size_t>(p.work_bytes, 1));
  void* reserve = nullptr;
  if (training) {
    *workspace = Tensor::empty(Shape{static_cast<int64_t>(std::max<size_t>(p.reserve_bytes, 1))}, DType::uint8, this);
    reserve = workspace->raw_data();
  }
  KCPP_CUDNN(cudnnRNNForward(cudnn_, p.rnn.d, training ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE,
                             static_cast<const int32_t*>(p.seq_lengths.raw_data()), p.x.d, x.raw_data(), p.y.d,
                             y.raw_data(), p.h.d, h0.raw_data(), h_last.raw_data(), p.h.d,
                             c0 ? c0->raw_data() : nullptr, c_last ? c_last->raw_data() : nullptr, p.weight_bytes,
                             weights->data(), p.work_bytes, work->data(), training ? p.reserve_bytes : 0, reserve));
}

void CudaBackend::rnn_backward(const RnnAttrs& a, const Tensor& x, const Tensor& h0, const Tensor* c0,
                               const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
                               const Tensor* recurrent_bias, const Tensor& y, const Tensor& /*h_last*/,
                               const Tensor* /*c_last*/, const Tensor& workspace, const Tensor& dy,
                               const Tensor& dh_last, const Tensor* dc_last, Tensor& dx, Tensor& dh0, Tensor* dc0,
                               Tensor& dkernel, Tensor& drecurrent_kernel, Tensor& dbias, Tensor* drecurrent_bias) {
  const RnnProblem p(*this, a.cell, x, recurrent_kernel, true);
  KCPP_CHECK(workspace.num_elements() >= static_cast<int64_t>(p.reserve_bytes), ValueError,
             "rnn_backward: expected the forward's workspace of {} bytes, received {}", p.reserve_bytes,
             workspace.num_elements());
  auto weights = scratch(p.weight_bytes);
  p.pack(*this, weights->data(), kernel, recurrent_kernel, bias, recurrent_bias);
  auto work = scratch(std::max<size_t>(p.work_bytes, 1));
  // cuDNN updates the reserve space during the backward-data pass: work on a copy, so a graph can
  // be differentiated more than once.
  auto reserve = scratch(std::max<size_t>(p.reserve_bytes, 1));
  if (p.reserve_bytes) copy(reserve->data(), workspace.raw_data(), p.reserve_bytes);
  KCPP_CUDNN(cudnnRNNBackwardData_v8(
      cudnn_, p.rnn.d, static_cast<const int32_t*>(p.seq_lengths.raw_data()), p.y.d, y.raw_data(), dy.raw_data(), p.x.d,
      dx.raw_data(), p.h.d, h0.raw_data(), dh_last.raw_data(), dh0.raw_data(), p.h.d, c0 ? c0->raw_data() : nullptr,
      dc_last ? dc_last->raw_data() : nullptr, dc0 ? dc0->raw_data() : nullptr, p.weight_bytes, weights->data(),
      p.work_bytes, work->data(), p.reserve_bytes, reserve->data()));
  auto dweights = scratch(p.weight_bytes);
  KCPP_CUDA(cudaMemsetAsync(dweights->data(), 0, p.weight_bytes, stream_));
  KCPP_CUDNN(cudnnRNNBackwardWeights_v8(cudnn_, p.rnn.d, CUDNN_WGRAD_MODE_ADD,
                                        static_cast<const int32_t*>(p.seq_lengths.raw_data()), p.x.d, x.raw_data(),
                                        p.h.d, h0.raw_data(), p.y.d, y.raw_data(), p.weight_bytes, dweights->data(),
                                        p.work_bytes, work->data(), p.reserve_bytes, reserve->data()));
  p.unpack(*this, dweights->data(), dkernel, drecurrent_kernel, dbias, drecurrent_bias);
}

}  // namespace keras::cuda
