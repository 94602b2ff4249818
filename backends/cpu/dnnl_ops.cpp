// oneDNN primitives: matmul, convolution, transposed convolution, pooling, batch-norm, softmax.
// Every primitive is cached by its shapes and attributes, so a steady training step creates none.
#include "backends/cpu/cpu_backend.h"

#include <limits>

namespace keras::cpu {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using dims = dnnl::memory::dims;
using md = dnnl::memory::desc;

dnnl::algorithm post_op_algorithm(UnaryOp op) {
  switch (op) {
    case UnaryOp::relu:
      return dnnl::algorithm::eltwise_relu;
    case UnaryOp::sigmoid:
      return dnnl::algorithm::eltwise_logistic;
    case UnaryOp::tanh:
      return dnnl::algorithm::eltwise_tanh;
    case UnaryOp::relu6:
      return dnnl::algorithm::eltwise_clip_v2;
    default:
      throw InternalError(fmt::format("internal error: no fused post-op for {}", unary_op_name(op)));
  }
}

dnnl::primitive_attr activation_attr(UnaryOp op) {
  dnnl::primitive_attr attr;
  if (op != UnaryOp::identity) {
    dnnl::post_ops po;
    po.append_eltwise(1.f, post_op_algorithm(op), 0.f, op == UnaryOp::relu6 ? 6.f : 0.f);
    attr.set_post_ops(po);
  }
  return attr;
}

// A convolution's post-ops: with `affine_channels`, y * scale + shift per output channel (binary
// post-ops 0 and 1, a folded batch norm), then the activation.
// A forward convolution's post-ops, in Keras' order: the folded batch norm's scale and shift per
// channel (affine_channels > 0), the residual (a tensor of the output's layout), the activation.
dnnl::primitive_attr conv_post_ops(UnaryOp op, int64_t affine_channels, const md* residual = nullptr) {
  if (affine_channels == 0 && !residual) return activation_attr(op);
  dnnl::post_ops po;
  if (affine_channels > 0) {
    const md channel({1, affine_channels, 1, 1}, dt::f32, tag::nchw);
    po.append_binary(dnnl::algorithm::binary_mul, channel);
    po.append_binary(dnnl::algorithm::binary_add, channel);
  }
  if (residual) po.append_binary(dnnl::algorithm::binary_add, *residual);
  if (op != UnaryOp::identity) po.append_eltwise(1.f, post_op_algorithm(op), 0.f, op == UnaryOp::relu6 ? 6.f : 0.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(po);
  return attr;
}

std::string key_of(const dims& d) { return fmt::format("{}", fmt::join(d, "x")); }

void* ptr(const Tensor& t) { return t.raw_data(); }

// oneDNN's data type of a tensor: float32, or bfloat16 under mixed precision.
dt onednn_type(const Tensor& t) { return t.dtype() == DType::bfloat16 ? dt::bf16 : dt::f32; }

md nhwc(const Tensor& t) { return md({t.dim(0), t.dim(3), t.dim(1), t.dim(2)}, onednn_type(t), tag::nhwc); }

// Keras' kernel layouts as oneDNN weights descriptors (dims in oneDNN's logical order, strides
// describing the Keras memory layout).
md keras_conv_weights(const Tensor& w, int64_t groups) {
  const int64_t kh = w.dim(0), kw = w.dim(1), ig = w.dim(2), o = w.dim(3);
  if (groups == 1) return md({o, ig, kh, kw}, onednn_type(w), dims{1, o, kw * ig * o, ig * o});
  const int64_t og = o / groups;
  return md({groups, og, ig, kh, kw}, onednn_type(w), dims{og, 1, o, kw * ig * o, ig * o});
}
md keras_deconv_weights(const Tensor& w) {
  const int64_t kh = w.dim(0), kw = w.dim(1), o = w.dim(2), i = w.dim(3);
  return md({o, i, kh, kw}, onednn_type(w), dims{i, 1, kw * o * i, o * i});
}
md any_like(const md& m) { return md(m.dims(), m.data_type(), tag::any); }

}  // namespace

// Matmul ------------------------------------------------------------------------------------------

namespace {
// A reference kernel in bfloat16 is slower than the float32 emulation: only optimized ones count.
template <typename Pd>
bool optimized(const Pd& pd) {
  return std::string(pd.impl_info_str()).rfind("ref", 0) != 0;
}
template <typename F>
bool probe(F&& make) {
  try {
    return make();
  } catch (const dnnl::error&) {
    return false;
  }
}
}  // namespace

uint32_t probe_bf16_families(const dnnl::engine& engine, bool only_fast) {
  // Without AVX512_BF16 (or AMX) oneDNN emulates bfloat16 products with AVX-512 code at a quarter of
  // float32's speed (a 2048^3 matmul: 62 against 273 GFLOP/s on an Ice Lake Xeon), so matmuls and
  // convolutions are faster on float32 copies there. The memory-bound families still gain from
  // reading half the bytes (batch norm fwd+bwd 2.0x, softmax 1.9x faster than the copies there).
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto bf16_isa = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
  const bool fast_products = !only_fast || (isa & bf16_isa) == bf16_isa;
  const dims one{1, 1}, zero{0, 0};
  const md x({1, 16, 4, 4}, dt::bf16, tag::nhwc);
  const bool matmul = fast_products && probe([&] {
    const md a({4, 4}, dt::bf16, tag::ab);
    return optimized(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, a, a), engine));
  });
  const bool conv = fast_products && probe([&] {
    const md w({16, 16, 3, 3}, dt::bf16, tag::any), y({1, 16, 2, 2}, dt::bf16, tag::nhwc);
    const auto fwd = dnnl::convolution_forward::primitive_desc(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, x, w,
                                        y, one, zero, zero),
        engine);
    return optimized(fwd) &&
           optimized(dnnl::convolution_backward_data::primitive_desc(
               dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, x, w, y, one, zero, zero),
               engine, fwd)) &&
           optimized(dnnl::convolution_backward_weights::primitive_desc(
               dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, x, w, y, one, zero, zero),
               engine, fwd));
  });
  const bool pool = probe([&] {
    const md y({1, 16, 2, 2}, dt::bf16, tag::nhwc);
    const dims two{2, 2};
    bool all = true;
    for (const auto alg : {dnnl::algorithm::pooling_max, dnnl::algorithm::pooling_avg_exclude_padding}) {
      const auto fwd = dnnl::pooling_forward::primitive_desc(
          dnnl::pooling_forward::desc(dnnl::prop_kind::forward_training, alg, x, y, two, two, zero, zero), engine);
      all = all && optimized(fwd) &&
            optimized(dnnl::pooling_backward::primitive_desc(
                dnnl::pooling_backward::desc(alg, x, y, two, two, zero, zero), engine, fwd));
    }
    return all;
  });
  const bool batch_norm = probe([&] {
    const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    const auto fwd = dnnl::batch_normalization_forward::primitive_desc(
        dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_training, x, 1e-3f, flags), engine);
    return optimized(fwd) &&
           optimized(dnnl::batch_normalization_backward::primitive_desc(
               dnnl::batch_normalization_backward::desc(dnnl::prop_kind::backward, x, x, 1e-3f, flags), engine, fwd));
  });
  const bool softmax = probe([&] {
    const md rows({4, 16}, dt::bf16, tag::nc);
    return optimized(dnnl::softmax_v2_forward::primitive_desc(
        dnnl::softmax_v2_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::softmax_accurate, rows,
                                       rows, 1),
        engine));
  });
  auto bit = [](bool on, OpFamily f) { return on ? 1u << static_cast<int>(f) : 0u; };
  return bit(matmul, OpFamily::matmul) | bit(conv, OpFamily::conv) | bit(pool, OpFamily::pool) |
         bit(batch_norm, OpFamily::batch_norm) | bit(softmax, OpFamily::softmax) |
         bit(true, OpFamily::elementwise) | bit(true, OpFamily::reduce);
}

bool probe_bf16_eltwise(const dnnl::engine& engine) {
  return probe([&] {
    const md v({64}, dt::bf16, tag::a);
    return optimized(dnnl::eltwise_forward::primitive_desc(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::eltwise_tanh, v, 0.f, 0.f),
        engine));
  });
}

namespace {
dt matmul_type(const Tensor& t) { return onednn_type(t); }
}  // namespace

void CpuBackend::matmul(const Tensor& a, const Tensor& b, const Tensor* bias, Tensor& y, const MatmulAttrs& at) {
  const size_t nd = y.rank();
  // Pad batch dimensions with leading ones; describe transposes with strides.
  auto describe = [nd](const Tensor& t, bool transpose) {
    dims d(nd, 1), s(nd, 0);
    const auto own = t.shape().strides();
    const size_t off = nd - t.rank();
    for (size_t i = 0; i < t.rank(); ++i) {
      d[off + i] = t.shape()[i];
      s[off + i] = own[i];
    }
    for (size_t i = 0; i < off; ++i) s[i] = t.num_elements();
    if (transpose) {
      std::swap(d[nd - 1], d[nd - 2]);
      std::swap(s[nd - 1], s[nd - 2]);
    }
    return std::pair{d, s};
  };
  const auto [ad, as] = describe(a, at.transpose_a);
  const auto [bd, bs] = describe(b, at.transpose_b);
  const dims yd(y.shape().dims().begin(), y.shape().dims().end());
  const dt type = matmul_type(y);
  const std::string key = fmt::format("matmul|{}|{}|{}|{}|{}|{}|{}|{}", key_of(ad), key_of(as), key_of(bd),
                                      key_of(bs), key_of(yd), bias != nullptr, static_cast<int>(at.activation),
                                      static_cast<int>(type));
  const md a_md(ad, matmul_type(a), as), b_md(bd, matmul_type(b), bs), y_md(yd, type, y.shape().strides());
  dims bias_dims(nd, 1);
  bias_dims[nd - 1] = y.dim(-1);
  const md bias_md(bias_dims, bias ? matmul_type(*bias) : dt::f32, Shape(bias_dims).strides());
  const auto& p = cached(key, [&] {
    CachedPrimitive c;
    auto d = bias ? dnnl::matmul::desc(a_md, b_md, bias_md, y_md) : dnnl::matmul::desc(a_md, b_md, y_md);
    c.primitive = KCPP_DNNL(dnnl::matmul(dnnl::matmul::primitive_desc(d, user_scratchpad(activation_attr(at.activation)), engine_)));
    return c;
  });
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory(a_md, engine_, ptr(a))},
                                             {DNNL_ARG_WEIGHTS, dnnl::memory(b_md, engine_, ptr(b))},
                                             {DNNL_ARG_DST, dnnl::memory(y_md, engine_, ptr(y))}};
  if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(bias_md, engine_, ptr(*bias)));
  execute(p, std::move(args));
}

// Convolution and transposed convolution ---------------------------------------------------------------

namespace {

struct ConvDescriptors {
  md x, w_any, bias, y;
  dims strides, dilations, pad_l, pad_r;
  bool has_bias;
  dnnl::primitive_attr attr;
  bool training;
};

// Convolutions and transposed convolutions share one shape of oneDNN API: a forward primitive
// descriptor (the backward passes' hint) and backward-data / backward-weights primitives.
template <typename F, typename D, typename W>
CachedPrimitive make_conv_primitive(const dnnl::engine& engine, dnnl::algorithm alg, int direction,
                                    const ConvDescriptors& d) {
  CachedPrimitive c;
  // Inference-only forward passes may get faster kernels; training ones are the backward passes' hint.
  const auto prop = d.training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  auto fd = d.has_bias
                ? typename F::desc(prop, alg, d.x, d.w_any, d.bias, d.y, d.strides, d.dilations, d.pad_l, d.pad_r)
                : typename F::desc(prop, alg, d.x, d.w_any, d.y, d.strides, d.dilations, d.pad_l, d.pad_r);
  auto fpd = KCPP_DNNL(typename F::primitive_desc(fd, user_scratchpad(d.attr), engine));
  if (direction == kForward) {
    c.weights_md = fpd.weights_desc();
    c.src_md = fpd.src_desc();
    c.dst_md = fpd.dst_desc();
    c.primitive = F(fpd);
  } else if (direction == kBackwardData) {
    auto pd = KCPP_DNNL(typename D::primitive_desc(
        typename D::desc(alg, d.x, d.w_any, d.y, d.strides, d.dilations, d.pad_l, d.pad_r), user_scratchpad(),
        engine, fpd));
    c.weights_md = pd.weights_desc();
    c.primitive = D(pd);
  } else {
    auto wd = d.has_bias ? typename W::desc(alg, d.x, d.w_any, d.bias, d.y, d.strides, d.dilations, d.pad_l, d.pad_r)
                         : typename W::desc(alg, d.x, d.w_any, d.y, d.strides, d.dilations, d.pad_l, d.pad_r);
    auto pd = KCPP_DNNL(typename W::primitive_desc(wd, user_scratchpad(), engine, fpd));
    c.weights_md = pd.diff_weights_desc();
    c.src_md = pd.src_desc();
    c.dst_md = pd.diff_dst_desc();
    c.primitive = W(pd);
  }
  return c;
}
}  // namespace

// The per-channel y * scale + shift of a folded batch norm (FoldedBatchNorm).
static void channel_affine_of(const FoldedBatchNorm& bn, std::vector<float>& scale, std::vector<float>& shift) {
  // Keras' formula, in the frontend's order of float operations (ops::conv without the fused pass).
  const auto n = static_cast<size_t>(bn.mean.num_elements());
  const auto* mean = static_cast<const float*>(bn.mean.raw_data());
  const auto* variance = static_cast<const float*>(bn.variance.raw_data());
  const auto* gamma = bn.gamma.defined() ? static_cast<const float*>(bn.gamma.raw_data()) : nullptr;
  const auto* beta = bn.beta.defined() ? static_cast<const float*>(bn.beta.raw_data()) : nullptr;
  scale.resize(n);
  shift.resize(n);
  for (size_t k = 0; k < n; ++k) {
    scale[k] = 1.f / std::sqrt(variance[k] + bn.epsilon);
    if (gamma) scale[k] *= gamma[k];
    shift[k] = -(mean[k] * scale[k]);
    if (beta) shift[k] += beta[k];
  }
}

// a, b, out by direction: forward (x, w, y); backward data (dy, w, dx); backward weights (dy, x, dw).
void CpuBackend::conv_common(bool transposed, int direction, const Tensor& a, const Tensor& b, const Tensor* bias,
                             Tensor& out, Tensor* dbias, const ConvAttrs& at, BlockedOutput* keep_blocked) {
  const Tensor& x = direction == kForward ? a : direction == kBackwardData ? out : b;
  const Tensor& w = direction == kBackwardWeights ? out : b;
  const Tensor& y = direction == kForward ? out : a;
  const md x_md = nhwc(x), y_md = nhwc(y);
  const md w_user = transposed ? keras_deconv_weights(w) : keras_conv_weights(w, at.groups);
  const md w_any = any_like(w_user);
  const bool has_bias = direction == kForward ? bias != nullptr : dbias != nullptr;
  const Tensor* bias_tensor = direction == kForward ? bias : dbias;
  const md bias_md({y.dim(3)}, bias_tensor ? onednn_type(*bias_tensor) : dt::f32, tag::a);
  const dims strides{at.strides[0], at.strides[1]};
  const dims dil{at.dilations[0] - 1, at.dilations[1] - 1};
  const dims pl{at.pad_begin[0], at.pad_begin[1]}, pr{at.pad_end[0], at.pad_end[1]};
  const bool affine = direction == kForward && at.batch_norm.defined();
  std::vector<float> scale, shift;  // the folded batch norm's per-channel transform
  if (affine) channel_affine_of(at.batch_norm, scale, shift);
  const bool residual = direction == kForward && at.residual.defined();
  KCPP_CHECK(!residual || (at.residual.shape() == y.shape() && at.residual.dtype() == DType::float32 &&
                           y.dtype() == DType::float32),
             BackendError, "cpu conv_forward: expected a float32 residual of shape {}, received {}",
             y.shape().to_string(), at.residual.to_string());
  const md residual_md = y_md;
  const std::string key = fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", transposed ? "deconv" : "conv",
                                      direction, key_of(x_md.dims()), key_of(w_user.dims()), key_of(y_md.dims()),
                                      key_of(strides), key_of(dil), key_of(pl), key_of(pr), has_bias,
                                      static_cast<int>(at.activation), at.groups, direction != kForward || at.training,
                                      affine, residual, static_cast<int>(x_md.data_type()));

  const bool training = direction != kForward || at.training;
  const ConvDescriptors d{x_md,     w_any,
                          bias_md,  y_md,
                          strides,  dil,
                          pl,       pr,
                          has_bias,
                          direction == kForward ? conv_post_ops(at.activation, affine ? y.dim(3) : 0,
                                                                residual ? &residual_md : nullptr)
                                                : dnnl::primitive_attr(),
                          training};
  // A 3x3, stride-1 convolution: Winograd F(4x4, 3x3) where oneDNN has it (AVX-512), about 2x faster
  // than the direct kernels at Keras' usual channel counts, for the forward pass and the weights'
  // gradient (its backward-data kernel is no faster: that one stays direct). Activations go through
  // oneDNN's blocked layout and back. Off with KERASCPP_CONV_WINOGRAD=0. Few channels (a first layer
  // on grey or RGB images) stay direct: Winograd is slower there.
  if (!transposed && direction != kBackwardData && at.groups == 1 && winograd_enabled_ && x.dtype() == DType::float32 &&
      w.dim(0) == 3 &&
      w.dim(1) == 3 && w.dim(2) >= 16 && w.dim(3) >= 16 && strides == dims{1, 1} && dil == dims{0, 0}) {
    const auto& wp = cached("wino|" + key, [&] {
      CachedPrimitive c;
      // Winograd takes no binary post-ops: a folded batch norm and a residual are applied after it,
      // in one pass.
      const ConvDescriptors any{any_like(x_md), w_any, bias_md, any_like(y_md), strides, dil, pl, pr,
                                has_bias, affine || residual ? dnnl::primitive_attr() : d.attr, training};
      try {
        c = make_conv_primitive<dnnl::convolution_forward, dnnl::convolution_backward_data,
                                dnnl::convolution_backward_weights>(engine_, dnnl::algorithm::convolution_winograd,
                                                                    direction, any);
      } catch (const BackendError&) {
        c = CachedPrimitive{};  // not implemented for this shape or CPU: the direct kernels below
      }
      return c;
    });
    if (wp.primitive) {
      conv_blocked(wp, direction == kBackwardWeights, x_md, w_user, bias_md, y_md, x, w,
                   direction == kForward ? bias : dbias, y, !training, affine || residual ? nullptr : keep_blocked);
      if (affine || residual)
        apply_channel_affine(out, affine ? scale.data() : nullptr, affine ? shift.data() : nullptr,
                             residual ? static_cast<const float*>(at.residual.raw_data()) : nullptr, at.activation);
      return;
    }
  }
  const auto& p = cached(key, [&] {
    if (transposed)
      return make_conv_primitive<dnnl::deconvolution_forward, dnnl::deconvolution_backward_data,
                                 dnnl::deconvolution_backward_weights>(engine_, dnnl::algorithm::deconvolution_direct,
                                                                       direction, d);
    return make_conv_primitive<dnnl::convolution_forward, dnnl::convolution_backward_data,
                               dnnl::convolution_backward_weights>(engine_, dnnl::algorithm::convolution_direct,
                                                                   direction, d);
  });

  // Weights in the primitive's preferred layout: reordered from (or back to) Keras' layout, once
  // for inference.
  const bool same_layout = p.weights_md == w_user;
  std::shared_ptr<Storage> w_scratch;
  void* w_ptr = ptr(w);
  if (!same_layout) {
    if (!training) {
      w_scratch = reordered_weights(w, w_user, p.weights_md);
    } else {
      w_scratch = scratch(p.weights_md.get_size());
      if (direction != kBackwardWeights) reorder(w_user, ptr(w), p.weights_md, w_scratch->data());
    }
    w_ptr = w_scratch->data();
  }
  dnnl::memory xm(x_md, engine_, ptr(x)), ym(y_md, engine_, ptr(y)), wm(p.weights_md, engine_, w_ptr);
  std::unordered_map<int, dnnl::memory> args;
  if (direction == kForward) {
    args = {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}};
    if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(bias_md, engine_, ptr(*bias)));
    if (affine) {
      const md channel({1, y.dim(3), 1, 1}, dt::f32, tag::nchw);
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                   dnnl::memory(channel, engine_, scale.data()));
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1,
                   dnnl::memory(channel, engine_, shift.data()));
    }
    if (residual)
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(affine ? 2 : 0) | DNNL_ARG_SRC_1,
                   dnnl::memory(residual_md, engine_, ptr(at.residual)));
  } else if (direction == kBackwardData) {
    args = {{DNNL_ARG_DIFF_DST, ym}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, xm}};
  } else {
    args = {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_DST, ym}, {DNNL_ARG_DIFF_WEIGHTS, wm}};
    if (dbias) args.emplace(DNNL_ARG_DIFF_BIAS, dnnl::memory(bias_md, engine_, ptr(*dbias)));
  }
  execute(p, std::move(args));
  if (!same_layout && direction == kBackwardWeights) reorder(p.weights_md, w_ptr, w_user, ptr(w));
}

std::shared_ptr<Storage> CpuBackend::reordered_weights(const Tensor& w, const md& from, const md& to) {
  // predict() runs the same weights call after call, and reordering them costs as much as a small
  // batch's convolution (ResNet50 at batch 1: a fifth of the pass). The reorder is kept per storage
  // and layout, and redone when the frontend marks the storage modified (assign, optimizer update,
  // replay). Memory of another owner (a recorder's alias of a graph's buffer) is never kept.
  const DerivedSources sources = derived_sources({&w}, md_key(to));
  const bool keepable = w.impl()->storage->owner() == this;
  if (keepable)
    if (auto kept = reordered_weights_.find(sources)) {
      weight_reuses_.fetch_add(1);
      return kept;
    }
  // Into new memory: another thread may still be reading the old.
  auto reordered = scratch(to.get_size());
  reorder(from, ptr(w), to, reordered->data());
  weight_reorders_.fetch_add(1);
  if (keepable) reordered_weights_.keep(sources, reordered);
  return reordered;
}

void CpuBackend::conv_blocked(const CachedPrimitive& p, bool backward_weights, const dnnl::memory::desc& x_md,
                              const dnnl::memory::desc& w_user, const dnnl::memory::desc& bias_md,
                              const dnnl::memory::desc& y_md, const Tensor& x, const Tensor& w, const Tensor* bias,
                              const Tensor& y, bool reuse_weight_transform, BlockedOutput* keep_blocked) {
  // Each operand in the primitive's layout, through scratch memory where it differs from ours.
  auto operand = [&](const md& ours, const md& theirs, void* data, bool copy_in, std::shared_ptr<Storage>& keep) {
    if (ours == theirs) return data;
    keep = scratch(theirs.get_size());
    if (copy_in) reorder(ours, data, theirs, keep->data());
    return keep->data();
  };
  std::shared_ptr<Storage> xs, ys, ws;
  void* x_ptr = operand(x_md, p.src_md, ptr(x), true, xs);
  // Forward: y is the output. Backward weights: y is dy (an input), w the weights' gradient.
  void* y_ptr = operand(y_md, p.dst_md, ptr(y), backward_weights, ys);
  void* w_ptr = nullptr;
  if (reuse_weight_transform) {
    ws = reordered_weights(w, w_user, p.weights_md);  // inference: the same weights, call after call
    w_ptr = ws->data();
  } else {
    w_ptr = operand(w_user, p.weights_md, ptr(w), !backward_weights, ws);
  }
  const dnnl::memory xm(p.src_md, engine_, x_ptr), ym(p.dst_md, engine_, y_ptr), wm(p.weights_md, engine_, w_ptr);
  std::unordered_map<int, dnnl::memory> args;
  if (backward_weights)
    args = {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_DST, ym}, {DNNL_ARG_DIFF_WEIGHTS, wm}};
  else
    args = {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}};
  if (bias) args.emplace(backward_weights ? DNNL_ARG_DIFF_BIAS : DNNL_ARG_BIAS, dnnl::memory(bias_md, engine_, ptr(*bias)));
  execute(p, std::move(args));
  if (backward_weights && ws) reorder(p.weights_md, w_ptr, w_user, ptr(w));
  if (!backward_weights && ys) {
    if (keep_blocked)
      *keep_blocked = {ys, p.dst_md};  // y is left unwritten: the caller reads the blocked output
    else
      reorder(p.dst_md, y_ptr, y_md, ptr(y));
  }
}


namespace {
// Rows [r0, r1) of y (c channels each): y = y * s + t (s null: none), + the residual's row (null:
// none), then relu. Each case is its own loop, so that each vectorizes (AVX-512 where the CPU has it).
__attribute__((target_clones("default", "arch=x86-64-v4"))) void channel_affine_rows(
    float* y, const float* s, const float* t, const float* residual, bool relu, int64_t c, int64_t r0, int64_t r1) {
  const float floor = relu ? 0.f : -std::numeric_limits<float>::infinity();
  for (int64_t r = r0; r < r1; ++r) {
    float* __restrict__ row = y + r * c;
    const float* __restrict__ add = residual ? residual + r * c : nullptr;
    if (s && add) {
      for (int64_t k = 0; k < c; ++k) row[k] = std::max(row[k] * s[k] + t[k] + add[k], floor);
    } else if (s) {
      for (int64_t k = 0; k < c; ++k) row[k] = std::max(row[k] * s[k] + t[k], floor);
    } else if (add) {
      for (int64_t k = 0; k < c; ++k) row[k] = std::max(row[k] + add[k], floor);
    } else {
      for (int64_t k = 0; k < c; ++k) row[k] = std::max(row[k], floor);
    }
  }
}
}  // namespace

void CpuBackend::apply_channel_affine(Tensor& y, const float* s, const float* t, const float* residual,
                                      UnaryOp activation) {
  const int64_t c = y.dim(3), rows = y.num_elements() / c;
  float* p = static_cast<float*>(y.raw_data());
  const bool relu = activation == UnaryOp::relu;
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / c);
  parallel_for((rows + grain - 1) / grain, [&](int64_t block) {
    channel_affine_rows(p, s, t, residual, relu, c, block * grain, std::min(rows, (block + 1) * grain));
  }, 2);
  if (activation != UnaryOp::identity && !relu) unary(activation, y, y, {});
}

void CpuBackend::conv_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, const ConvAttrs& at) {
  conv_common(false, kForward, x, w, bias, y, nullptr, at);
}
void CpuBackend::conv_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, const ConvAttrs& at) {
  conv_common(false, kBackwardData, dy, w, nullptr, dx, nullptr, at);
}
void CpuBackend::conv_backward_weights(const Tensor& dy, const Tensor& x, Tensor& dw, Tensor* dbias,
                                       const ConvAttrs& at) {
  conv_common(false, kBackwardWeights, dy, x, nullptr, dw, dbias, at);
}
void CpuBackend::conv_transpose_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y,
                                        const ConvAttrs& at) {
  conv_common(true, kForward, x, w, bias, y, nullptr, at);
}
void CpuBackend::conv_transpose_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, const ConvAttrs& at) {
  conv_common(true, kBackwardData, dy, w, nullptr, dx, nullptr, at);
}
void CpuBackend::conv_transpose_backward_weights(const Tensor& dy, const Tensor& x, Tensor& dw, Tensor* dbias,
                                                 const ConvAttrs& at) {
  conv_common(true, kBackwardWeights, dy, x, nullptr, dw, dbias, at);
}

// Pooling ---------------------------------------------------------------------------------------------

namespace {
struct PoolPds {
  dnnl::pooling_forward::primitive_desc fwd;
};

std::string pool_key(const char* what, const md& x_md, const md& y_md, const PoolAttrs& at) {
  return fmt::format("{}|{}|{}|{}|{}|{}x{}|{}x{}|{}x{}|{}x{}", what, static_cast<int>(at.mode),
                     static_cast<int>(x_md.data_type()), key_of(x_md.dims()), key_of(y_md.dims()), at.window[0],
                     at.window[1], at.strides[0], at.strides[1], at.pad_begin[0], at.pad_begin[1], at.pad_end[0],
                     at.pad_end[1]);
}
}  // namespace

// The forward pooling primitive (training mode, so max pooling keeps its workspace).
static const CachedPrimitive& pool_forward_primitive(CpuBackend& be, const md& x_md, const md& y_md,
                                                     const PoolAttrs& at, bool training = true) {
  return be.cached(pool_key(training ? "poolfwd" : "poolinf", x_md, y_md, at), [&] {
    CachedPrimitive c;
    const auto alg =
        at.mode == PoolMode::max ? dnnl::algorithm::pooling_max : dnnl::algorithm::pooling_avg_exclude_padding;
    // Training keeps max pooling's workspace for the backward pass; inference needs none.
    dnnl::pooling_forward::desc d(training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference,
                                  alg, x_md, y_md, {at.strides[0], at.strides[1]}, {at.window[0], at.window[1]},
                                  {at.pad_begin[0], at.pad_begin[1]}, {at.pad_end[0], at.pad_end[1]});
    auto pd = KCPP_DNNL(dnnl::pooling_forward::primitive_desc(d, user_scratchpad(), be.engine()));
    c.workspace_md = pd.workspace_desc();
    c.extra = std::make_shared<PoolPds>(PoolPds{pd});
    c.primitive = dnnl::pooling_forward(pd);
    return c;
  });
}

size_t CpuBackend::pool_workspace_bytes(const Tensor& x, const Tensor& y, const PoolAttrs& at) {
  return pool_forward_primitive(*this, nhwc(x), nhwc(y), at).workspace_md.get_size();
}

void CpuBackend::pool_forward(const Tensor& x, Tensor& y, Tensor* workspace, const PoolAttrs& at) {
  const md x_md = nhwc(x), y_md = nhwc(y);
  const auto& p = pool_forward_primitive(*this, x_md, y_md, at, workspace != nullptr || at.mode != PoolMode::max);
  const size_t ws = workspace ? p.workspace_md.get_size() : 0;
  void* ws_ptr = nullptr;
  if (ws) {
    KCPP_ASSERT(workspace->nbytes() >= ws);
    ws_ptr = ptr(*workspace);
  }
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory(x_md, engine_, ptr(x))},
                                             {DNNL_ARG_DST, dnnl::memory(y_md, engine_, ptr(y))}};
  if (ws) args.emplace(DNNL_ARG_WORKSPACE, dnnl::memory(p.workspace_md, engine_, ws_ptr));
  execute(p, std::move(args));
}

void CpuBackend::pool_backward(const Tensor& dy, const Tensor& x, const Tensor* workspace, Tensor& dx,
                               const PoolAttrs& at) {
  const bool overlapping = at.strides[0] < at.window[0] || at.strides[1] < at.window[1];
  if (dy.dtype() == DType::bfloat16 && overlapping) {
    // oneDNN's bfloat16 kernel adds the gradients of overlapping windows in bfloat16 (2 steps off
    // float32 sums in a 3x3/2 max pooling). The float32 kernel's sums are rounded once instead; max
    // pooling's workspace (the window offset of each maximum) is the same for both dtypes.
    Tensor dy32 = Tensor::empty(dy.shape(), DType::float32, this), dx32 = Tensor::empty(dx.shape(), DType::float32, this);
    const Tensor x32 = Tensor::empty(x.shape(), DType::float32, this);  // its shape only
    const bool same_workspace =
        at.mode != PoolMode::max || pool_forward_primitive(*this, nhwc(x32), nhwc(dy32), at).workspace_md ==
                                        pool_forward_primitive(*this, nhwc(x), nhwc(dy), at).workspace_md;
    if (same_workspace) {
      cast(dy, dy32);
      pool_backward(dy32, x32, workspace, dx32, at);
      cast(dx32, dx);
      return;
    }
  }
  const md x_md = nhwc(x), y_md = nhwc(dy);
  const auto& fwd = pool_forward_primitive(*this, x_md, y_md, at);
  const auto& p = cached(pool_key("poolbwd", x_md, y_md, at), [&] {
    CachedPrimitive c;
    const auto alg =
        at.mode == PoolMode::max ? dnnl::algorithm::pooling_max : dnnl::algorithm::pooling_avg_exclude_padding;
    dnnl::pooling_backward::desc d(alg, x_md, y_md, {at.strides[0], at.strides[1]}, {at.window[0], at.window[1]},
                                   {at.pad_begin[0], at.pad_begin[1]}, {at.pad_end[0], at.pad_end[1]});
    auto hint = std::static_pointer_cast<PoolPds>(fwd.extra)->fwd;
    c.primitive = KCPP_DNNL(dnnl::pooling_backward(dnnl::pooling_backward::primitive_desc(d, user_scratchpad(), engine_, hint)));
    return c;
  });
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_DIFF_DST, dnnl::memory(y_md, engine_, ptr(dy))},
                                             {DNNL_ARG_DIFF_SRC, dnnl::memory(x_md, engine_, ptr(dx))}};
  if (fwd.workspace_md.get_size()) {
    KCPP_CHECK(workspace, ValueError, "pool_backward: max pooling needs the forward pass's workspace");
    args.emplace(DNNL_ARG_WORKSPACE, dnnl::memory(fwd.workspace_md, engine_, ptr(*workspace)));
  }
  execute(p, std::move(args));
}

void CpuBackend::pool_blocked(const BlockedOutput& z, Tensor& y, const PoolAttrs& at) {
  blocked_poolings_.fetch_add(1, std::memory_order_relaxed);
  const md y_md = nhwc(y);
  const md y_any({y.dim(0), y.dim(3), y.dim(1), y.dim(2)}, dt::f32, tag::any);
  const auto& p = cached("poolblk|" + md_key(z.md) + "|" + pool_key("", z.md, y_md, at), [&] {
    CachedPrimitive c;
    dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max, z.md, y_any,
                                  {at.strides[0], at.strides[1]}, {at.window[0], at.window[1]},
                                  {at.pad_begin[0], at.pad_begin[1]}, {at.pad_end[0], at.pad_end[1]});
    auto pd = KCPP_DNNL(dnnl::pooling_forward::primitive_desc(d, user_scratchpad(), engine_));
    c.dst_md = pd.dst_desc();
    c.primitive = dnnl::pooling_forward(pd);
    return c;
  });
  if (p.dst_md == y_md) {
    execute(p, {{DNNL_ARG_SRC, dnnl::memory(z.md, engine_, z.storage->data())},
                {DNNL_ARG_DST, dnnl::memory(y_md, engine_, ptr(y))}});
    return;
  }
  auto pooled = scratch(p.dst_md.get_size());
  execute(p, {{DNNL_ARG_SRC, dnnl::memory(z.md, engine_, z.storage->data())},
              {DNNL_ARG_DST, dnnl::memory(p.dst_md, engine_, pooled->data())}});
  reorder(p.dst_md, pooled->data(), y_md, ptr(y));
}

// Batch normalization over (M, C) ------------------------------------------------------------------------

namespace {
struct BnPds {
  dnnl::batch_normalization_forward::primitive_desc fwd;
};
const auto kScaleShift = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
}  // namespace

namespace {
// (M, C) described as an NHWC image of height M, so oneDNN picks its channels-last kernel; as a
// plain 2-d "nc" tensor it takes a much slower planar path.
md bn_data_md(const Tensor& x) { return md({1, x.dim(1), x.dim(0), 1}, onednn_type(x), tag::nhwc); }
// Batch-norm primitives by shape, epsilon, training and the data's dtype (float32 or bfloat16).
std::string bn_key(const char* what, const md& x_md, float epsilon, bool training) {
  return fmt::format("{}|{}|{}|{}|{}", what, static_cast<int>(x_md.data_type()), key_of(x_md.dims()), epsilon,
                     training);
}
}  // namespace

void CpuBackend::batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& mean,
                                    Tensor& variance, Tensor& y, float epsilon, bool training) {
  const md x_md = bn_data_md(x);
  const md c_md({x.dim(1)}, dt::f32, tag::a);
  const auto flags = training ? kScaleShift : kScaleShift | dnnl::normalization_flags::use_global_stats;
  const auto& p = cached(bn_key("bnfwd", x_md, epsilon, training), [&] {
    CachedPrimitive c;
    dnnl::batch_normalization_forward::desc d(
        training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference, x_md, epsilon, flags);
    auto pd = KCPP_DNNL(dnnl::batch_normalization_forward::primitive_desc(d, user_scratchpad(), engine_));
    c.extra = std::make_shared<BnPds>(BnPds{pd});
    c.primitive = dnnl::batch_normalization_forward(pd);
    return c;
  });
  execute(p, {{DNNL_ARG_SRC, dnnl::memory(x_md, engine_, ptr(x))},
                                           {DNNL_ARG_DST, dnnl::memory(x_md, engine_, ptr(y))},
                                           {DNNL_ARG_SCALE, dnnl::memory(c_md, engine_, ptr(gamma))},
                                           {DNNL_ARG_SHIFT, dnnl::memory(c_md, engine_, ptr(beta))},
                                           {DNNL_ARG_MEAN, dnnl::memory(c_md, engine_, ptr(mean))},
                                           {DNNL_ARG_VARIANCE, dnnl::memory(c_md, engine_, ptr(variance))}});
}

void CpuBackend::batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                     const Tensor& variance, Tensor& dx, Tensor& dgamma, Tensor& dbeta, float epsilon) {
  const md x_md = bn_data_md(x);
  const md c_md({x.dim(1)}, dt::f32, tag::a);
  Tensor m = mean, v = variance;
  // The forward primitive (training) is the backward's hint; it is cached already in a training step.
  const auto& fwd = cached(bn_key("bnfwd", x_md, epsilon, true), [&] {
    CachedPrimitive c;
    dnnl::batch_normalization_forward::desc d(dnnl::prop_kind::forward_training, x_md, epsilon, kScaleShift);
    auto pd = KCPP_DNNL(dnnl::batch_normalization_forward::primitive_desc(d, user_scratchpad(), engine_));
    c.extra = std::make_shared<BnPds>(BnPds{pd});
    c.primitive = dnnl::batch_normalization_forward(pd);
    return c;
  });
  const auto& p = cached(bn_key("bnbwd", x_md, epsilon, true), [&] {
    CachedPrimitive c;
    dnnl::batch_normalization_backward::desc d(dnnl::prop_kind::backward, x_md, x_md, epsilon, kScaleShift);
    auto hint = std::static_pointer_cast<BnPds>(fwd.extra)->fwd;
    c.primitive = KCPP_DNNL(
        dnnl::batch_normalization_backward(dnnl::batch_normalization_backward::primitive_desc(d, user_scratchpad(), engine_, hint)));
    return c;
  });
  execute(p, {{DNNL_ARG_SRC, dnnl::memory(x_md, engine_, ptr(x))},
                                           {DNNL_ARG_DIFF_DST, dnnl::memory(x_md, engine_, ptr(dy))},
                                           {DNNL_ARG_SCALE, dnnl::memory(c_md, engine_, ptr(gamma))},
                                           // oneDNN 2.6 asks for the shift although it does not affect
                                           // the gradients; gamma's buffer stands in, read-only.
                                           {DNNL_ARG_SHIFT, dnnl::memory(c_md, engine_, ptr(gamma))},
                                           {DNNL_ARG_MEAN, dnnl::memory(c_md, engine_, ptr(m))},
                                           {DNNL_ARG_VARIANCE, dnnl::memory(c_md, engine_, ptr(v))},
                                           {DNNL_ARG_DIFF_SRC, dnnl::memory(x_md, engine_, ptr(dx))},
                                           {DNNL_ARG_DIFF_SCALE, dnnl::memory(c_md, engine_, ptr(dgamma))},
                                           {DNNL_ARG_DIFF_SHIFT, dnnl::memory(c_md, engine_, ptr(dbeta))}});
}

// Layer normalization of the rows of (rows, cols) ---------------------------------------------------------

namespace {
struct LnPds {
  dnnl::layer_normalization_forward::primitive_desc fwd;
};
dnnl::normalization_flags ln_flags(bool scale, bool shift) {
  auto f = dnnl::normalization_flags::none;
  if (scale) f = f | dnnl::normalization_flags::use_scale;
  if (shift) f = f | dnnl::normalization_flags::use_shift;
  return f;
}
// Layer-norm primitives by shape, epsilon, which parameters there are and the propagation.
std::string ln_key(const char* what, const Tensor& x, float epsilon, dnnl::normalization_flags flags) {
  return fmt::format("{}|{}|{}|{}|{}", what, x.dim(0), x.dim(1), epsilon, static_cast<unsigned>(flags));
}
}  // namespace

void CpuBackend::layer_norm_forward(const Tensor& x, const Tensor* gamma, const Tensor* beta, Tensor& y, Tensor* mean,
                                    Tensor* variance, float epsilon) {
  const md x_md({x.dim(0), x.dim(1)}, dt::f32, tag::ab);
  const md stat_md({x.dim(0)}, dt::f32, tag::a);
  const md c_md({x.dim(1)}, dt::f32, tag::a);
  const auto flags = ln_flags(gamma != nullptr, beta != nullptr);
  const bool training = mean != nullptr;
  const auto& p = cached(ln_key(training ? "lnfwd_train" : "lnfwd", x, epsilon, flags), [&] {
    CachedPrimitive c;
    dnnl::layer_normalization_forward::desc d(
        training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference, x_md, stat_md, epsilon,
        flags);
    auto pd = KCPP_DNNL(dnnl::layer_normalization_forward::primitive_desc(d, user_scratchpad(), engine_));
    c.extra = std::make_shared<LnPds>(LnPds{pd});
    c.primitive = dnnl::layer_normalization_forward(pd);
    return c;
  });
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory(x_md, engine_, ptr(x))},
                                             {DNNL_ARG_DST, dnnl::memory(x_md, engine_, ptr(y))}};
  if (gamma) args.emplace(DNNL_ARG_SCALE, dnnl::memory(c_md, engine_, ptr(*gamma)));
  if (beta) args.emplace(DNNL_ARG_SHIFT, dnnl::memory(c_md, engine_, ptr(*beta)));
  if (training) {
    args.emplace(DNNL_ARG_MEAN, dnnl::memory(stat_md, engine_, ptr(*mean)));
    args.emplace(DNNL_ARG_VARIANCE, dnnl::memory(stat_md, engine_, ptr(*variance)));
  }
  execute(p, std::move(args));
}

void CpuBackend::layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor* gamma, const Tensor& mean,
                                     const Tensor& variance, Tensor& dx, Tensor* dgamma, Tensor* dbeta, float epsilon) {
  const md x_md({x.dim(0), x.dim(1)}, dt::f32, tag::ab);
  const md stat_md({x.dim(0)}, dt::f32, tag::a);
  const md c_md({x.dim(1)}, dt::f32, tag::a);
  const auto flags = ln_flags(gamma != nullptr, dbeta != nullptr);
  const bool parameters = gamma != nullptr || dbeta != nullptr;
  Tensor m = mean, v = variance;
  // The training forward is the backward's hint; it is cached already in a training step.
  const auto& fwd = cached(ln_key("lnfwd_train", x, epsilon, flags), [&] {
    CachedPrimitive c;
    dnnl::layer_normalization_forward::desc d(dnnl::prop_kind::forward_training, x_md, stat_md, epsilon, flags);
    auto pd = KCPP_DNNL(dnnl::layer_normalization_forward::primitive_desc(d, user_scratchpad(), engine_));
    c.extra = std::make_shared<LnPds>(LnPds{pd});
    c.primitive = dnnl::layer_normalization_forward(pd);
    return c;
  });
  const auto& p = cached(ln_key("lnbwd", x, epsilon, flags), [&] {
    CachedPrimitive c;
    // prop_kind::backward also writes the parameters' gradients; backward_data only dx.
    dnnl::layer_normalization_backward::desc d(parameters ? dnnl::prop_kind::backward : dnnl::prop_kind::backward_data,
                                               x_md, x_md, stat_md, epsilon, flags);
    auto hint = std::static_pointer_cast<LnPds>(fwd.extra)->fwd;
    c.primitive = KCPP_DNNL(dnnl::layer_normalization_backward(
        dnnl::layer_normalization_backward::primitive_desc(d, user_scratchpad(), engine_, hint)));
    return c;
  });
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory(x_md, engine_, ptr(x))},
                                             {DNNL_ARG_DIFF_DST, dnnl::memory(x_md, engine_, ptr(dy))},
                                             {DNNL_ARG_MEAN, dnnl::memory(stat_md, engine_, ptr(m))},
                                             {DNNL_ARG_VARIANCE, dnnl::memory(stat_md, engine_, ptr(v))},
                                             {DNNL_ARG_DIFF_SRC, dnnl::memory(x_md, engine_, ptr(dx))}};
  if (gamma) args.emplace(DNNL_ARG_SCALE, dnnl::memory(c_md, engine_, ptr(*gamma)));
  if (dgamma) args.emplace(DNNL_ARG_DIFF_SCALE, dnnl::memory(c_md, engine_, ptr(*dgamma)));
  if (dbeta) {
    args.emplace(DNNL_ARG_DIFF_SHIFT, dnnl::memory(c_md, engine_, ptr(*dbeta)));
    // oneDNN 2.6 asks for the shift although the gradients do not read it (as in batch norm);
    // dbeta's buffer stands in.
    args.emplace(DNNL_ARG_SHIFT, dnnl::memory(c_md, engine_, ptr(*dbeta)));
  }
  execute(p, std::move(args));
}

// Softmax over the last axis of (rows, C) ------------------------------------------------------------------

void CpuBackend::softmax(const Tensor& x, Tensor& y, bool log) {
  const md x_md({x.dim(0), x.dim(1)}, onednn_type(x), tag::nc);
  const auto& p = cached(fmt::format("softmax|{}|{}|{}", static_cast<int>(x_md.data_type()), key_of(x_md.dims()), log), [&] {
    CachedPrimitive c;
    dnnl::softmax_v2_forward::desc d(dnnl::prop_kind::forward_inference,
                                     log ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate, x_md, x_md,
                                     1);
    c.primitive = KCPP_DNNL(dnnl::softmax_v2_forward(dnnl::softmax_v2_forward::primitive_desc(d, user_scratchpad(), engine_)));
    return c;
  });
  execute(p, {{DNNL_ARG_SRC, dnnl::memory(x_md, engine_, ptr(x))},
                                           {DNNL_ARG_DST, dnnl::memory(x_md, engine_, ptr(y))}});
}

}  // namespace keras::cpu
