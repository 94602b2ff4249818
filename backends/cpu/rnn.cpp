// Fused recurrences on oneDNN: LSTM, GRU and linear-before-reset GRU (Keras' reset_after=True),
// forward and backward, one primitive per layer and sequence shape instead of a loop of small ops.
// Keras' kernels (C, G*U) are oneDNN's ldigo layout with L = D = 1 and the same gate orders, so
// they are only reordered into the primitive's preferred layout.
#include <cstring>

#include "backends/cpu/cpu_backend.h"

namespace keras::cpu {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using md = dnnl::memory::desc;

struct RnnShapes {
  int64_t t, n, c, u, gates, bias_gates;
  md src_layer, src_iter, w_layer_user, w_iter_user, bias, dst_layer, dst_iter;
  md w_layer_any, w_iter_any;
};

struct RnnOperands {
  std::vector<std::shared_ptr<Storage>> buffers;  // the weights and bias in the primitive's layouts
  std::unordered_map<int, dnnl::memory> args;
};

namespace {

using dir = dnnl::rnn_direction;

RnnShapes shapes_of(RnnCell cell, const Tensor& x, const Tensor& recurrent_kernel) {
  RnnShapes s;
  s.n = x.dim(0);
  s.t = x.dim(1);
  s.c = x.dim(2);
  s.u = recurrent_kernel.dim(0);
  s.gates = cell == RnnCell::lstm ? 4 : 3;
  s.bias_gates = cell == RnnCell::gru ? 3 : 4;  // linear-before-reset GRU keeps the candidate's recurrent bias apart
  s.src_layer = md({s.t, s.n, s.c}, dt::f32, tag::ntc);  // Keras' (N, T, C) as it lies in memory
  s.dst_layer = md({s.t, s.n, s.u}, dt::f32, tag::ntc);
  s.src_iter = md({1, 1, s.n, s.u}, dt::f32, tag::ldnc);
  s.dst_iter = s.src_iter;
  s.w_layer_user = md({1, 1, s.c, s.gates, s.u}, dt::f32, tag::ldigo);
  s.w_iter_user = md({1, 1, s.u, s.gates, s.u}, dt::f32, tag::ldigo);
  s.w_layer_any = md({1, 1, s.c, s.gates, s.u}, dt::f32, tag::any);
  s.w_iter_any = md({1, 1, s.u, s.gates, s.u}, dt::f32, tag::any);
  s.bias = md({1, 1, s.bias_gates, s.u}, dt::f32, tag::ldgo);
  return s;
}

std::string key_of(const char* what, const RnnAttrs& a, const RnnShapes& s) {
  return fmt::format("{}|{}|{}|{}x{}x{}x{}", what, static_cast<int>(a.cell), a.training, s.t, s.n, s.c, s.u);
}

// The forward primitive descriptor of each cell, kept as the backward's hint.
struct RnnForward {
  dnnl::lstm_forward::primitive_desc lstm;
  dnnl::gru_forward::primitive_desc gru;
  dnnl::lbr_gru_forward::primitive_desc lbr;
  RnnCell cell;
  const dnnl::rnn_primitive_desc_base& base() const {
    if (cell == RnnCell::lstm) return lstm;
    if (cell == RnnCell::gru) return gru;
    return lbr;
  }
};

std::shared_ptr<RnnForward> forward_pd(const dnnl::engine& engine, RnnCell cell, bool training, const RnnShapes& s) {
  auto f = std::make_shared<RnnForward>();
  f->cell = cell;
  const auto prop = training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  const auto l2r = dir::unidirectional_left2right;
  if (cell == RnnCell::lstm)
    f->lstm = KCPP_DNNL(dnnl::lstm_forward::primitive_desc(
        dnnl::lstm_forward::desc(prop, l2r, s.src_layer, s.src_iter, s.src_iter, s.w_layer_any, s.w_iter_any, s.bias,
                                 s.dst_layer, s.dst_iter, s.dst_iter),
        user_scratchpad(), engine));
  else if (cell == RnnCell::gru)
    f->gru = KCPP_DNNL(dnnl::gru_forward::primitive_desc(
        dnnl::gru_forward::desc(prop, l2r, s.src_layer, s.src_iter, s.w_layer_any, s.w_iter_any, s.bias, s.dst_layer,
                                s.dst_iter),
        user_scratchpad(), engine));
  else
    f->lbr = KCPP_DNNL(dnnl::lbr_gru_forward::primitive_desc(
        dnnl::lbr_gru_forward::desc(prop, l2r, s.src_layer, s.src_iter, s.w_layer_any, s.w_iter_any, s.bias,
                                    s.dst_layer, s.dst_iter),
        user_scratchpad(), engine));
  return f;
}

// oneDNN's bias from Keras': the same (G*U) for LSTM and GRU; for the linear-before-reset GRU,
// [input z + recurrent z, input r + recurrent r, input h, recurrent h].
void onednn_bias(RnnCell cell, const Tensor& bias, const Tensor* recurrent_bias, int64_t u, float* out) {
  const float* b = bias.data<float>();
  if (cell != RnnCell::gru_reset_after) {
    std::memcpy(out, b, sizeof(float) * static_cast<size_t>(bias.num_elements()));
    return;
  }
  const float* rb = recurrent_bias->data<float>();
  for (int64_t i = 0; i < 2 * u; ++i) out[i] = b[i] + rb[i];
  for (int64_t i = 0; i < u; ++i) {
    out[2 * u + i] = b[2 * u + i];
    out[3 * u + i] = rb[2 * u + i];
  }
}

}  // namespace

// The forward primitive of a cell and shape (cached); the backward needs the training one as hint.
const CachedPrimitive& CpuBackend::forward_primitive(RnnCell cell, bool training, const RnnShapes& s) {
  return cached(key_of("rnnfwd", RnnAttrs{cell, training}, s), [&] {
    CachedPrimitive c;
    auto f = forward_pd(engine_, cell, training, s);
    if (cell == RnnCell::lstm) c.primitive = dnnl::lstm_forward(f->lstm);
    else if (cell == RnnCell::gru) c.primitive = dnnl::gru_forward(f->gru);
    else c.primitive = dnnl::lbr_gru_forward(f->lbr);
    c.extra = f;
    return c;
  });
}

// The operands forward and backward share: the data and states, and the weights and bias in the
// primitive's layouts (buffers kept alive by `operands`).
std::unordered_map<int, dnnl::memory>& CpuBackend::bind_rnn_operands(
    const RnnAttrs& a, const RnnShapes& s, const dnnl::rnn_primitive_desc_base& pd, const Tensor& x, const Tensor& h0,
    const Tensor* c0, const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
    const Tensor* recurrent_bias, const Tensor& y, const Tensor& h_last, const Tensor* c_last, RnnOperands& o) {
  const md wl = pd.weights_layer_desc(), wi = pd.weights_iter_desc();
  if (a.training) {
    o.buffers = {scratch(wl.get_size()), scratch(wi.get_size())};
    reorder(s.w_layer_user, kernel.raw_data(), wl, o.buffers[0]->data());
    reorder(s.w_iter_user, recurrent_kernel.raw_data(), wi, o.buffers[1]->data());
  } else {  // inference: reordered once while the weights are unchanged
    o.buffers = {reordered_weights(kernel, s.w_layer_user, wl), reordered_weights(recurrent_kernel, s.w_iter_user, wi)};
  }
  o.buffers.push_back(scratch(s.bias.get_size()));
  void* wl_buf = o.buffers[0]->data();
  void* wi_buf = o.buffers[1]->data();
  void* b_buf = o.buffers[2]->data();
  onednn_bias(a.cell, bias, recurrent_bias, s.u, static_cast<float*>(b_buf));
  o.args = {{DNNL_ARG_SRC_LAYER, dnnl::memory(s.src_layer, engine_, x.raw_data())},
            {DNNL_ARG_SRC_ITER, dnnl::memory(s.src_iter, engine_, h0.raw_data())},
            {DNNL_ARG_WEIGHTS_LAYER, dnnl::memory(wl, engine_, wl_buf)},
            {DNNL_ARG_WEIGHTS_ITER, dnnl::memory(wi, engine_, wi_buf)},
            {DNNL_ARG_BIAS, dnnl::memory(s.bias, engine_, b_buf)},
            {DNNL_ARG_DST_LAYER, dnnl::memory(s.dst_layer, engine_, y.raw_data())},
            {DNNL_ARG_DST_ITER, dnnl::memory(s.dst_iter, engine_, h_last.raw_data())}};
  if (a.cell == RnnCell::lstm) {
    o.args.emplace(DNNL_ARG_SRC_ITER_C, dnnl::memory(s.src_iter, engine_, c0->raw_data()));
    o.args.emplace(DNNL_ARG_DST_ITER_C, dnnl::memory(s.dst_iter, engine_, c_last->raw_data()));
  }
  return o.args;
}

void CpuBackend::rnn_forward(const RnnAttrs& a, const Tensor& x, const Tensor& h0, const Tensor* c0,
                             const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
                             const Tensor* recurrent_bias, Tensor& y, Tensor& h_last, Tensor* c_last,
                             Tensor* workspace) {
  const RnnShapes s = shapes_of(a.cell, x, recurrent_kernel);
  const auto& p = forward_primitive(a.cell, a.training, s);
  const auto& pd = std::static_pointer_cast<RnnForward>(p.extra)->base();
  RnnOperands operands;
  auto& args = bind_rnn_operands(a, s, pd, x, h0, c0, kernel, recurrent_kernel, bias, recurrent_bias, y, h_last, c_last,
                                 operands);
  if (a.training) {
    const md ws = pd.workspace_desc();
    *workspace = Tensor::empty(Shape{static_cast<int64_t>(ws.get_size())}, DType::uint8, this);
    args.emplace(DNNL_ARG_WORKSPACE, dnnl::memory(ws, engine_, workspace->raw_data()));
  }
  execute(p, std::move(args));  // with a scratchpad (the gates of every step) from the caching allocator
}

void CpuBackend::rnn_backward(const RnnAttrs& a, const Tensor& x, const Tensor& h0, const Tensor* c0,
                              const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
                              const Tensor* recurrent_bias, const Tensor& y, const Tensor& h_last,
                              const Tensor* c_last, const Tensor& workspace, const Tensor& dy, const Tensor& dh_last,
                              const Tensor* dc_last, Tensor& dx, Tensor& dh0, Tensor* dc0, Tensor& dkernel,
                              Tensor& drecurrent_kernel, Tensor& dbias, Tensor* drecurrent_bias) {
  const RnnShapes s = shapes_of(a.cell, x, recurrent_kernel);
  const auto& fwd = forward_primitive(a.cell, true, s);  // the backward's hint
  const auto hint = std::static_pointer_cast<RnnForward>(fwd.extra);
  const auto bwd_prop = dnnl::prop_kind::backward;
  const auto l2r = dir::unidirectional_left2right;
  const auto& p = cached(key_of("rnnbwd", a, s), [&] {
    CachedPrimitive c;
    std::shared_ptr<dnnl::rnn_primitive_desc_base> pd;
    if (a.cell == RnnCell::lstm) {
      auto d = KCPP_DNNL(dnnl::lstm_backward::primitive_desc(
          dnnl::lstm_backward::desc(bwd_prop, l2r, s.src_layer, s.src_iter, s.src_iter, s.w_layer_any, s.w_iter_any,
                                    s.bias, s.dst_layer, s.dst_iter, s.dst_iter, s.src_layer, s.src_iter, s.src_iter,
                                    s.w_layer_any, s.w_iter_any, s.bias, s.dst_layer, s.dst_iter, s.dst_iter),
          user_scratchpad(), engine_, hint->lstm));
      c.primitive = dnnl::lstm_backward(d);
      pd = std::make_shared<dnnl::lstm_backward::primitive_desc>(d);
    } else if (a.cell == RnnCell::gru) {
      auto d = KCPP_DNNL(dnnl::gru_backward::primitive_desc(
          dnnl::gru_backward::desc(bwd_prop, l2r, s.src_layer, s.src_iter, s.w_layer_any, s.w_iter_any, s.bias,
                                   s.dst_layer, s.dst_iter, s.src_layer, s.src_iter, s.w_layer_any, s.w_iter_any,
                                   s.bias, s.dst_layer, s.dst_iter),
          user_scratchpad(), engine_, hint->gru));
      c.primitive = dnnl::gru_backward(d);
      pd = std::make_shared<dnnl::gru_backward::primitive_desc>(d);
    } else {
      auto d = KCPP_DNNL(dnnl::lbr_gru_backward::primitive_desc(
          dnnl::lbr_gru_backward::desc(bwd_prop, l2r, s.src_layer, s.src_iter, s.w_layer_any, s.w_iter_any, s.bias,
                                       s.dst_layer, s.dst_iter, s.src_layer, s.src_iter, s.w_layer_any, s.w_iter_any,
                                       s.bias, s.dst_layer, s.dst_iter),
          user_scratchpad(), engine_, hint->lbr));
      c.primitive = dnnl::lbr_gru_backward(d);
      pd = std::make_shared<dnnl::lbr_gru_backward::primitive_desc>(d);
    }
    c.extra = pd;
    return c;
  });
  const auto& pd = *std::static_pointer_cast<dnnl::rnn_primitive_desc_base>(p.extra);
  const md dwl = pd.diff_weights_layer_desc(), dwi = pd.diff_weights_iter_desc();
  RnnOperands operands;
  auto& args = bind_rnn_operands(a, s, pd, x, h0, c0, kernel, recurrent_kernel, bias, recurrent_bias, y, h_last, c_last,
                                 operands);
  auto dwl_buf = scratch(dwl.get_size()), dwi_buf = scratch(dwi.get_size()), db_buf = scratch(s.bias.get_size());
  // oneDNN accumulates into the weight and bias gradients.
  std::memset(dwl_buf->data(), 0, dwl.get_size());
  std::memset(dwi_buf->data(), 0, dwi.get_size());
  std::memset(db_buf->data(), 0, s.bias.get_size());
  args.insert({
      {DNNL_ARG_WORKSPACE, dnnl::memory(pd.workspace_desc(), engine_, workspace.raw_data())},
      {DNNL_ARG_DIFF_DST_LAYER, dnnl::memory(s.dst_layer, engine_, dy.raw_data())},
      {DNNL_ARG_DIFF_DST_ITER, dnnl::memory(s.dst_iter, engine_, dh_last.raw_data())},
      {DNNL_ARG_DIFF_SRC_LAYER, dnnl::memory(s.src_layer, engine_, dx.raw_data())},
      {DNNL_ARG_DIFF_SRC_ITER, dnnl::memory(s.src_iter, engine_, dh0.raw_data())},
      {DNNL_ARG_DIFF_WEIGHTS_LAYER, dnnl::memory(dwl, engine_, dwl_buf->data())},
      {DNNL_ARG_DIFF_WEIGHTS_ITER, dnnl::memory(dwi, engine_, dwi_buf->data())},
      {DNNL_ARG_DIFF_BIAS, dnnl::memory(s.bias, engine_, db_buf->data())}});
  if (a.cell == RnnCell::lstm) {
    args.emplace(DNNL_ARG_DIFF_DST_ITER_C, dnnl::memory(s.dst_iter, engine_, dc_last->raw_data()));
    args.emplace(DNNL_ARG_DIFF_SRC_ITER_C, dnnl::memory(s.src_iter, engine_, dc0->raw_data()));
  }
  execute(p, std::move(args));  // with a scratchpad (the gates of every step) from the caching allocator
  reorder(dwl, dwl_buf->data(), s.w_layer_user, dkernel.raw_data());
  reorder(dwi, dwi_buf->data(), s.w_iter_user, drecurrent_kernel.raw_data());
  const float* g = static_cast<const float*>(db_buf->data());
  float* db = dbias.data<float>();
  if (a.cell != RnnCell::gru_reset_after) {
    std::memcpy(db, g, sizeof(float) * static_cast<size_t>(dbias.num_elements()));
    return;
  }
  // The fused z and r biases take the same gradient as each of their two Keras parts.
  float* drb = drecurrent_bias->data<float>();
  const int64_t u = s.u;
  for (int64_t i = 0; i < 2 * u; ++i) db[i] = drb[i] = g[i];
  for (int64_t i = 0; i < u; ++i) {
    db[2 * u + i] = g[2 * u + i];
    drb[2 * u + i] = g[3 * u + i];
  }
}

}  // namespace keras::cpu
