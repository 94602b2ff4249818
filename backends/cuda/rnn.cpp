// Fused recurrences on cuDNN's RNN API: LSTM and GRU with reset_after (the cells Keras hands to
// cuDNN). cuDNN keeps one (U, C) row-major matrix and one bias per gate and weight kind; Keras keeps
// (C, G*U) kernels. The weights change every step, so they are repacked into cuDNN's weight space
// at each call (a few small copies against a whole sequence), and the weight gradients unpacked the
// same way.
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "backends/cuda/cuda_backend.h"
#include "core/config.h"

namespace keras::cuda {

namespace {

using RnnDescriptor = CudnnDescriptor<cudnnRNNDescriptor_t, cudnnCreateRNNDescriptor, cudnnDestroyRNNDescriptor>;
using RnnDataDescriptor =
    CudnnDescriptor<cudnnRNNDataDescriptor_t, cudnnCreateRNNDataDescriptor, cudnnDestroyRNNDataDescriptor>;
using DropoutDescriptor =
    CudnnDescriptor<cudnnDropoutDescriptor_t, cudnnCreateDropoutDescriptor, cudnnDestroyDropoutDescriptor>;
using PlainDescriptor = CudnnDescriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;

// Keras' gate k is cuDNN's linear layer gate_id[k] (input weights; recurrent ones are + gates).
// LSTM: both i, f, c, o. GRU: Keras z, r, h; cuDNN r, z, h.
constexpr std::array<int, 4> kLstmGates{0, 1, 2, 3};
constexpr std::array<int, 4> kGruGates{1, 0, 2, 0};

const char* algo_name(cudnnRNNAlgo_t a) {
  switch (a) {
    case CUDNN_RNN_ALGO_PERSIST_STATIC: return "static";
    case CUDNN_RNN_ALGO_PERSIST_DYNAMIC: return "dynamic";
    case CUDNN_RNN_ALGO_PERSIST_STATIC_SMALL_H: return "small_h";
    default: return "standard";
  }
}

// The algorithms to try, best first: KERASCPP_CUDNN_RNN_ALGO names one (standard, static, dynamic,
// small_h), with the standard one where cuDNN refuses it for the sizes. By default the standard one: on H200 the persistent kernels trained imdb_lstm (64 x 200
// steps, 128 units) 2.7x slower (tools/gpu/NOTES.md, run 23).
std::vector<cudnnRNNAlgo_t> candidate_algos() {
  const std::string& want = settings().cudnn_rnn_algo;
  for (const auto a : {CUDNN_RNN_ALGO_STANDARD, CUDNN_RNN_ALGO_PERSIST_STATIC, CUDNN_RNN_ALGO_PERSIST_DYNAMIC,
                       CUDNN_RNN_ALGO_PERSIST_STATIC_SMALL_H})
    if (want == algo_name(a) && a != CUDNN_RNN_ALGO_STANDARD) return {a, CUDNN_RNN_ALGO_STANDARD};
  return {CUDNN_RNN_ALGO_STANDARD};
}

// Sequences go to cuDNN as Keras' (N, T, C) lies, which cuDNN takes only as "unpacked" padded
// data; KERASCPP_CUDNN_RNN_LAYOUT=seq_major sends them time-major and packed (as PyTorch does),
// transposed on the way in and out. Not yet measured or run on a GPU (tools/gpu/NOTES.md): the
// default stays the layout checked there.
bool seq_major_layout() {
  return settings().cudnn_rnn_layout == "seq_major";
}

}  // namespace

// One layer, one direction, over x (N, T, C): cuDNN's descriptors, sizes and weight-space offsets,
// built once per problem (cuDNN prepares its kernels per descriptor) and cached by the backend.
struct RnnPlan {
  int64_t n, t, c, u, gates;
  bool lstm;
  cudnnRNNAlgo_t algo;
  bool seq_major;  // x and y as (T, N, features) instead of Keras' (N, T, features)
  DropoutDescriptor dropout;
  RnnDescriptor rnn;
  RnnDataDescriptor x, y;
  PlainDescriptor h;  // h0, h_last, c0, c_last: (layers = 1, N, U)
  size_t weight_bytes = 0, work_bytes = 0, reserve_bytes = 0;
  // Byte offsets in the weight space of each cuDNN linear layer's matrix and bias.
  std::vector<std::pair<size_t, size_t>> offsets;
  Tensor seq_lengths;  // int32 (N), all T, on the device: cuDNN reads it asynchronously

  // Throws BackendError where cuDNN refuses the algorithm for these sizes.
  RnnPlan(CudaBackend& be, RnnCell cell, int64_t n_, int64_t t_, int64_t c_, int64_t u_, bool training,
          cudnnRNNAlgo_t algo_, bool seq_major_)
      : n(n_),
        t(t_),
        c(c_),
        u(u_),
        gates(cell == RnnCell::lstm ? 4 : 3),
        lstm(cell == RnnCell::lstm),
        algo(algo_),
        seq_major(seq_major_) {
    KCPP_CUDNN(cudnnSetDropoutDescriptor(dropout.d, be.cudnn(), 0.f, nullptr, 0, 0));
    const bool tf32 = tensor_float_32_execution_enabled();
    KCPP_CUDNN(cudnnSetRNNDescriptor_v8(rnn.d, algo, lstm ? CUDNN_LSTM : CUDNN_GRU, CUDNN_RNN_DOUBLE_BIAS,
                                        CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT, CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT,
                                        tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH, static_cast<int32_t>(c),
                                        static_cast<int32_t>(u), static_cast<int32_t>(u), 1, dropout.d,
                                        seq_major ? CUDNN_RNN_PADDED_IO_DISABLED : CUDNN_RNN_PADDED_IO_ENABLED));
    if (algo == CUDNN_RNN_ALGO_PERSIST_DYNAMIC)
      KCPP_CUDNN(cudnnBuildRNNDynamic(be.cudnn(), rnn.d, static_cast<int>(n)));
    // Batch-major (Keras' (N, T, C) as it lies) is cuDNN's "unpacked" layout: padded IO, enabled above.
    const std::vector<int> lengths(static_cast<size_t>(n), static_cast<int>(t));
    const cudnnRNNDataLayout_t layout =
        seq_major ? CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED : CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED;
    KCPP_CUDNN(cudnnSetRNNDataDescriptor(x.d, CUDNN_DATA_FLOAT, layout,
                                         static_cast<int>(t), static_cast<int>(n), static_cast<int>(c), lengths.data(),
                                         nullptr));
    KCPP_CUDNN(cudnnSetRNNDataDescriptor(y.d, CUDNN_DATA_FLOAT, layout,
                                         static_cast<int>(t), static_cast<int>(n), static_cast<int>(u), lengths.data(),
                                         nullptr));
    const int dims[3] = {1, static_cast<int>(n), static_cast<int>(u)};
    const int strides[3] = {static_cast<int>(n * u), static_cast<int>(u), 1};
    KCPP_CUDNN(cudnnSetTensorNdDescriptor(h.d, CUDNN_DATA_FLOAT, 3, dims, strides));
    KCPP_CUDNN(cudnnGetRNNWeightSpaceSize(be.cudnn(), rnn.d, &weight_bytes));
    KCPP_CUDNN(cudnnGetRNNTempSpaceSizes(be.cudnn(), rnn.d, training ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE,
                                         x.d, &work_bytes, &reserve_bytes));
    auto probe = be.scratch(weight_bytes);
    char* base = static_cast<char*>(probe->data());
    for (int id = 0; id < 2 * gates; ++id) {
      PlainDescriptor m, b;
      void* m_addr = nullptr;
      void* b_addr = nullptr;
      KCPP_CUDNN(cudnnGetRNNWeightParams(be.cudnn(), rnn.d, 0, weight_bytes, base, id, m.d, &m_addr, b.d, &b_addr));
      offsets.emplace_back(static_cast<size_t>(static_cast<char*>(m_addr) - base),
                           static_cast<size_t>(static_cast<char*>(b_addr) - base));
    }
    seq_lengths = Tensor::empty(Shape{n}, DType::int32, &be);
    be.fill(seq_lengths, Scalar(static_cast<double>(t)));
  }

  int cudnn_gate(int keras_gate) const { return (lstm ? kLstmGates : kGruGates)[static_cast<size_t>(keras_gate)]; }
  float* matrix(void* space, int id) const {
    return reinterpret_cast<float*>(static_cast<char*>(space) + offsets[static_cast<size_t>(id)].first);
  }
  float* bias(void* space, int id) const {
    return reinterpret_cast<float*>(static_cast<char*>(space) + offsets[static_cast<size_t>(id)].second);
  }

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
  void pack(CudaBackend& be, void* space, const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias_in,
            const Tensor* recurrent_bias) const {
    KCPP_CUDA(cudaMemsetAsync(space, 0, weight_bytes, be.stream()));
    const size_t bytes = static_cast<size_t>(u) * sizeof(float);
    for (int g = 0; g < gates; ++g) {
      const int id = cudnn_gate(g), rid = id + static_cast<int>(gates);
      kernels::strided_copy(4, kernel.raw_data(), matrix(space, id), gate_columns(c), g * u, u * c, be.stream());
      kernels::strided_copy(4, recurrent_kernel.raw_data(), matrix(space, rid), gate_columns(u), g * u, u * u,
                            be.stream());
      KCPP_LAUNCHED();
      KCPP_CUDA(cudaMemcpyAsync(bias(space, id), static_cast<const float*>(bias_in.raw_data()) + g * u, bytes,
                                cudaMemcpyDeviceToDevice, be.stream()));
      if (recurrent_bias)
        KCPP_CUDA(cudaMemcpyAsync(bias(space, rid), static_cast<const float*>(recurrent_bias->raw_data()) + g * u,
                                  bytes, cudaMemcpyDeviceToDevice, be.stream()));
    }
  }

  // The inverse of pack, for gradients. LSTM: the input and recurrent biases are summed in every
  // gate, so their gradients are equal and the input bias' is Keras' bias gradient.
  void unpack(CudaBackend& be, void* space, Tensor& kernel, Tensor& recurrent_kernel, Tensor& bias_out,
              Tensor* recurrent_bias) const {
    const size_t bytes = static_cast<size_t>(u) * sizeof(float);
    for (int g = 0; g < gates; ++g) {
      const int id = cudnn_gate(g), rid = id + static_cast<int>(gates);
      kernels::strided_scatter(4, matrix(space, id), kernel.raw_data(), gate_columns(c), g * u, u * c, be.stream());
      kernels::strided_scatter(4, matrix(space, rid), recurrent_kernel.raw_data(), gate_columns(u), g * u, u * u,
                               be.stream());
      KCPP_LAUNCHED();
      KCPP_CUDA(cudaMemcpyAsync(static_cast<float*>(bias_out.raw_data()) + g * u, bias(space, id), bytes,
                                cudaMemcpyDeviceToDevice, be.stream()));
      if (recurrent_bias)
        KCPP_CUDA(cudaMemcpyAsync(static_cast<float*>(recurrent_bias->raw_data()) + g * u, bias(space, rid), bytes,
                                  cudaMemcpyDeviceToDevice, be.stream()));
    }
  }
};

std::shared_ptr<const RnnPlan> CudaBackend::rnn_plan(RnnCell cell, const Tensor& x, const Tensor& recurrent_kernel,
                                                     bool training, bool after_failure) {
  KCPP_CHECK(cell != RnnCell::gru, NotImplementedError,
             "cuda backend: cuDNN has no GRU with reset_after=False; the layer runs its step loop instead");
  const int64_t n = x.dim(0), t = x.dim(1), c = x.dim(2), u = recurrent_kernel.dim(0);
  const auto candidates = candidate_algos();
  const bool seq_major = seq_major_layout();
  const std::string key = fmt::format("{}|{}x{}x{}x{}|{}|{}|{}|{}", static_cast<int>(cell), n, t, c, u, training,
                                      tensor_float_32_execution_enabled(), algo_name(candidates.front()), seq_major);
  std::lock_guard lock(rnn_mutex_);
  auto& slot = rnn_plans_[key];
  size_t first = 0;
  if (slot && !after_failure) return slot;
  if (slot) {  // the cached plan's algorithm failed at run time: the next candidate from now on
    first = static_cast<size_t>(std::find(candidates.begin(), candidates.end(), slot->algo) - candidates.begin()) + 1;
    slot.reset();
  }
  std::string refused;
  for (size_t i = first; i < candidates.size(); ++i) {
    try {
      slot = std::make_shared<RnnPlan>(*this, cell, n, t, c, u, training, candidates[i], seq_major);
      return slot;
    } catch (const BackendError& e) {
      refused += fmt::format("\n  {}: {}", algo_name(candidates[i]), e.what());
    }
  }
  throw BackendError(fmt::format("cuDNN: no RNN algorithm accepts {} x {} steps x {} features, {} units:{}", n, t, c,
                                 u, refused));
}

namespace {
// (N, T, F) <-> (T, N, F) where the plan is time-major; else the tensor itself.
Tensor to_plan_layout(CudaBackend& be, const RnnPlan& p, const Tensor& v) {
  if (!p.seq_major) return v;
  Tensor out = Tensor::empty(Shape{v.dim(1), v.dim(0), v.dim(2)}, DType::float32, &be);
  be.transpose(v, {1, 0, 2}, out);
  return out;
}
Tensor plan_output(CudaBackend& be, const RnnPlan& p, Tensor& keras_layout) {
  return p.seq_major ? Tensor::empty(Shape{keras_layout.dim(1), keras_layout.dim(0), keras_layout.dim(2)},
                                     DType::float32, &be)
                     : keras_layout;
}
void from_plan_layout(CudaBackend& be, const RnnPlan& p, const Tensor& v, Tensor& keras_layout) {
  if (p.seq_major) be.transpose(v, {1, 0, 2}, keras_layout);
}

// Runs `call` with the cached plan; where cuDNN refuses its algorithm only at run time, once more
// with the next candidate.
template <typename Call>
void with_plan(CudaBackend& be, RnnCell cell, const Tensor& x, const Tensor& rk, bool training, Call&& call) {
  auto plan = be.rnn_plan(cell, x, rk, training, false);
  const cudnnStatus_t s = call(*plan);
  if (s == CUDNN_STATUS_SUCCESS) return;
  if (plan->algo != CUDNN_RNN_ALGO_STANDARD && (s == CUDNN_STATUS_NOT_SUPPORTED || s == CUDNN_STATUS_BAD_PARAM)) {
    plan = be.rnn_plan(cell, x, rk, training, true);
    const cudnnStatus_t again = call(*plan);
    if (again == CUDNN_STATUS_SUCCESS) return;
    throw BackendError(fmt::format("cuDNN: the RNN call failed: {}", cudnnGetErrorString(again)));
  }
  throw BackendError(fmt::format("cuDNN: the RNN call failed ({} algorithm): {}", algo_name(plan->algo),
                                 cudnnGetErrorString(s)));
}

}  // namespace

void CudaBackend::rnn_forward(const RnnAttrs& a, const Tensor& x, const Tensor& h0, const Tensor* c0,
                              const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
                              const Tensor* recurrent_bias, Tensor& y, Tensor& h_last, Tensor* c_last,
                              Tensor* workspace) {
  const bool training = a.training && workspace;
  with_plan(*this, a.cell, x, recurrent_kernel, training, [&](const RnnPlan& p) {
    auto weights = scratch(p.weight_bytes);
    p.pack(*this, weights->data(), kernel, recurrent_kernel, bias, recurrent_bias);
    auto work = scratch(std::max<size_t>(p.work_bytes, 1));
    void* reserve = nullptr;
    if (training) {
      *workspace =
          Tensor::empty(Shape{static_cast<int64_t>(std::max<size_t>(p.reserve_bytes, 1))}, DType::uint8, this);
      reserve = workspace->raw_data();
    }
    const Tensor xs = to_plan_layout(*this, p, x);
    Tensor ys = plan_output(*this, p, y);
    const cudnnStatus_t status = cudnnRNNForward(
        cudnn(), p.rnn.d, training ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE,
        static_cast<const int32_t*>(p.seq_lengths.raw_data()), p.x.d, xs.raw_data(), p.y.d, ys.raw_data(), p.h.d,
        h0.raw_data(), h_last.raw_data(), p.h.d, c0 ? c0->raw_data() : nullptr, c_last ? c_last->raw_data() : nullptr,
        p.weight_bytes, weights->data(), p.work_bytes, work->data(), training ? p.reserve_bytes : 0, reserve);
    if (status == CUDNN_STATUS_SUCCESS) from_plan_layout(*this, p, ys, y);
    return status;
  });
}

void CudaBackend::rnn_backward(const RnnAttrs& a, const Tensor& x, const Tensor& h0, const Tensor* c0,
                               const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
                               const Tensor* recurrent_bias, const Tensor& y, const Tensor& /*h_last*/,
                               const Tensor* /*c_last*/, const Tensor& workspace, const Tensor& dy,
                               const Tensor& dh_last, const Tensor* dc_last, Tensor& dx, Tensor& dh0, Tensor* dc0,
                               Tensor& dkernel, Tensor& drecurrent_kernel, Tensor& dbias, Tensor* drecurrent_bias) {
  // The forward's plan (same key), so the reserve space is laid out as cuDNN expects.
  const auto p = rnn_plan(a.cell, x, recurrent_kernel, true, false);
  KCPP_CHECK(workspace.num_elements() >= static_cast<int64_t>(p->reserve_bytes), ValueError,
             "rnn_backward: expected the forward's workspace of {} bytes, received {}", p->reserve_bytes,
             workspace.num_elements());
  auto weights = scratch(p->weight_bytes);
  p->pack(*this, weights->data(), kernel, recurrent_kernel, bias, recurrent_bias);
  auto work = scratch(std::max<size_t>(p->work_bytes, 1));
  // cuDNN updates the reserve space during the backward-data pass: work on a copy, so a graph can
  // be differentiated more than once.
  auto reserve = scratch(std::max<size_t>(p->reserve_bytes, 1));
  if (p->reserve_bytes) copy(reserve->data(), workspace.raw_data(), p->reserve_bytes);
  const auto* lengths = static_cast<const int32_t*>(p->seq_lengths.raw_data());
  // The forward already ran with this plan, so a refusal here cannot be retried: the next steps
  // get the next algorithm, and the error says how to choose one.
  auto check = [&](cudnnStatus_t s, const char* what) {
    if (s == CUDNN_STATUS_SUCCESS) return;
    if (p->algo != CUDNN_RNN_ALGO_STANDARD) rnn_plan(a.cell, x, recurrent_kernel, true, true);
    throw BackendError(fmt::format("cuDNN: {} failed with the {} RNN algorithm: {} (KERASCPP_CUDNN_RNN_ALGO=standard "
                                   "chooses another)",
                                   what, algo_name(p->algo), cudnnGetErrorString(s)));
  };
  const Tensor xs = to_plan_layout(*this, *p, x), ys = to_plan_layout(*this, *p, y), dys = to_plan_layout(*this, *p, dy);
  Tensor dxs = plan_output(*this, *p, dx);
  check(cudnnRNNBackwardData_v8(cudnn(), p->rnn.d, lengths, p->y.d, ys.raw_data(), dys.raw_data(), p->x.d, dxs.raw_data(),
                                p->h.d, h0.raw_data(), dh_last.raw_data(), dh0.raw_data(), p->h.d,
                                c0 ? c0->raw_data() : nullptr, dc_last ? dc_last->raw_data() : nullptr,
                                dc0 ? dc0->raw_data() : nullptr, p->weight_bytes, weights->data(), p->work_bytes,
                                work->data(), p->reserve_bytes, reserve->data()),
        "cudnnRNNBackwardData_v8");
  auto dweights = scratch(p->weight_bytes);
  KCPP_CUDA(cudaMemsetAsync(dweights->data(), 0, p->weight_bytes, stream()));
  from_plan_layout(*this, *p, dxs, dx);
  check(cudnnRNNBackwardWeights_v8(cudnn(), p->rnn.d, CUDNN_WGRAD_MODE_ADD, lengths, p->x.d, xs.raw_data(), p->h.d,
                                   h0.raw_data(), p->y.d, ys.raw_data(), p->weight_bytes, dweights->data(),
                                   p->work_bytes, work->data(), p->reserve_bytes, reserve->data()),
        "cudnnRNNBackwardWeights_v8");
  p->unpack(*this, dweights->data(), dkernel, drecurrent_kernel, dbias, drecurrent_bias);
}

}  // namespace keras::cuda
