// Linear algebra and neural-network ops and their gradient rules.
#include "core/ops_util.h"

namespace keras::ops {
using keras::detail::needs_recording;
using keras::detail::needs_grad;
using keras::detail::record;

namespace {

using detail::detached;

bool can_fuse(UnaryOp act) {
  return act == UnaryOp::identity || act == UnaryOp::relu || act == UnaryOp::sigmoid || act == UnaryOp::tanh ||
         act == UnaryOp::relu6;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, MatmulAttrs attrs) {
  detail::check_float("matmul", a, "the first operand");
  detail::check_float("matmul", b, "the second operand");
  if (auto low = detail::emulated_dtype({&a, &b}, OpFamily::matmul)) return detail::narrow(matmul(detail::widen(a), detail::widen(b), attrs), *low);
  Backend& be = detail::common_backend("matmul", {&a, &b});
  KCPP_CHECK(a.rank() >= 2 && b.rank() >= 2, ShapeError,
             "matmul: expected operands of rank >= 2, received shapes {} and {}", a.shape().to_string(),
             b.shape().to_string());
  const int64_t m = attrs.transpose_a ? a.dim(-1) : a.dim(-2);
  const int64_t k = attrs.transpose_a ? a.dim(-2) : a.dim(-1);
  const int64_t kb = attrs.transpose_b ? b.dim(-1) : b.dim(-2);
  const int64_t n = attrs.transpose_b ? b.dim(-2) : b.dim(-1);
  KCPP_CHECK(k == kb, ShapeError, "matmul: inner dimensions differ: shapes {} and {}{} ({} vs {})",
             a.shape().to_string(), b.shape().to_string(),
             attrs.transpose_a || attrs.transpose_b ? " (with transposes)" : "", k, kb);
  const Shape batch_a(std::vector<int64_t>(a.shape().dims().begin(), a.shape().dims().end() - 2));
  const Shape batch_b(std::vector<int64_t>(b.shape().dims().begin(), b.shape().dims().end() - 2));
  std::vector<int64_t> out = broadcast_shapes(batch_a, batch_b).dims();
  out.push_back(m);
  out.push_back(n);
  KCPP_CHECK(can_fuse(attrs.activation), NotImplementedError,
             "matmul: the fused activation {} is not supported; apply it as a separate op",
             unary_op_name(attrs.activation));
  Tensor y = Tensor::empty(Shape(out), a.dtype(), &be);
  be.matmul(a, b, nullptr, y, attrs);
  if (!needs_recording({a, b})) return y;
  record("matmul", {a, b}, {&y},
         [a, b, attrs, yd = detached(y), need_a = needs_grad(a),
          need_b = needs_grad(b)](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
           Tensor g = detail::activation_grad_from_output(attrs.activation, attrs.activation_attrs, yd, gs[0]);
           Tensor da, db;
           const bool ta = attrs.transpose_a, tb = attrs.transpose_b;
           if (need_a) {
             if (!ta)
               da = tb ? matmul(g, b) : matmul(g, b, {.transpose_b = true});
             else
               da = tb ? matmul(b, g, {.transpose_a = true, .transpose_b = true}) : matmul(b, g, {.transpose_b = true});
             da = detail::reduce_to(da, a.shape());
           }
           if (need_b) {
             if (!tb)
               db = ta ? matmul(a, g) : matmul(a, g, {.transpose_a = true});
             else
               db = ta ? matmul(g, a, {.transpose_a = true, .transpose_b = true}) : matmul(g, a, {.transpose_a = true});
             db = detail::reduce_to(db, b.shape());
           }
           return {da, db};
         });
  return y;
}

Tensor linear(const Tensor& x, const Tensor& kernel, const Tensor& bias, UnaryOp activation) {
  detail::check_float("linear", x, "the input");
  detail::check_float("linear", kernel, "the kernel");
  detail::check_rank("linear", kernel, "the kernel", 2);
  KCPP_CHECK(x.rank() >= 1 && x.dim(-1) == kernel.dim(0), ShapeError,
             "linear: expected axis -1 of the input to have value {}, received input shape {}", kernel.dim(0),
             x.shape().to_string());
  if (bias.defined()) {
    detail::check_float("linear", bias, "the bias");
    KCPP_CHECK(bias.rank() == 1 && bias.dim(0) == kernel.dim(1), ShapeError,
               "linear: expected a bias of shape ({},), received {}", kernel.dim(1), bias.shape().to_string());
  }
  Backend& be = detail::common_backend("linear", {&x, &kernel, &bias});
  if (auto low = detail::emulated_dtype({&x, &kernel, &bias}, OpFamily::matmul))
    return detail::narrow(linear(detail::widen(x), detail::widen(kernel), detail::widen(bias), activation), *low);
  const UnaryOp fused = can_fuse(activation) ? activation : UnaryOp::identity;
  std::vector<int64_t> out = x.shape().dims();
  out.back() = kernel.dim(1);
  const Tensor x2 = x.view(Shape{x.num_elements() / std::max<int64_t>(x.dim(-1), 1), x.dim(-1)});
  Tensor y = Tensor::empty(Shape{x2.dim(0), kernel.dim(1)}, x.dtype(), &be);
  be.matmul(x2, kernel, bias.defined() ? &bias : nullptr, y, {.activation = fused});
  y = y.view(Shape(out));
  if (needs_recording({x, kernel, bias})) {
    record("linear", {x, kernel, bias}, {&y},
           [x2, kernel, bias, fused, yd = detached(y), need_x = needs_grad(x), need_k = needs_grad(kernel),
            need_b = needs_grad(bias)](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
             Tensor g = detail::activation_grad_from_output(fused, {}, yd, gs[0]);
             g = g.view(Shape{x2.dim(0), kernel.dim(1)});
             Tensor dx, dk, db;
             if (need_x) {
               std::vector<int64_t> xs = yd.shape().dims();
               xs.back() = kernel.dim(0);
               dx = matmul(g, kernel, {.transpose_b = true}).view(Shape(xs));
             }
             if (need_k) dk = matmul(x2, g, {.transpose_a = true});
             if (need_b) db = sum(g, {0});
             return {dx, dk, db};
           });
  }
  if (fused != activation) y = unary(activation, y);
  return y;
}

namespace {

struct ConvPlan {
  ConvAttrs attrs;
  Tensor x4, w4;  // 4-d views (N, H, W, C) and (kh, kw, ci, co)
  Shape y4, out;  // 4-d output shape and the shape returned to the caller
};

std::array<int64_t, 2> spatial(const char* op, const std::vector<int64_t>& v, size_t n, const char* what) {
  KCPP_CHECK(v.size() == 1 || v.size() == n, ValueError, "{}: expected {} to have 1 or {} values, received {}", op,
             what, n, v.size());
  for (int64_t s : v) KCPP_CHECK(s >= 1, ValueError, "{}: {} must be >= 1, received {}", op, what, s);
  if (n == 1) return {1, v[0]};
  return {v[0], v.size() == 2 ? v[1] : v[0]};
}

// Output size and explicit pads of one spatial axis, as Keras (TensorFlow) computes them.
void axis_geometry(const char* op, const std::string& padding, int64_t in, int64_t k, int64_t s, int64_t d,
                   int64_t& out, int64_t& pb, int64_t& pe, const Shape& x_shape) {
  const int64_t eff = (k - 1) * d + 1;
  if (padding == "valid") {
    KCPP_CHECK(in >= eff, ShapeError,
               "{}: the input is smaller than the kernel: input shape {}, kernel extent {} (dilated)", op,
               x_shape.to_string(), eff);
    out = (in - eff) / s + 1;
    pb = pe = 0;
  } else if (padding == "same") {
    out = (in + s - 1) / s;
    const int64_t total = std::max<int64_t>((out - 1) * s + eff - in, 0);
    pb = total / 2;
    pe = total - pb;
  } else if (padding == "causal") {  // Conv1D's: each output sees only its own and earlier steps
    out = (in - 1) / s + 1;
    pb = eff - 1;
    pe = 0;
  } else {
    throw ValueError(fmt::format("{}: expected padding 'valid', 'same' or 'causal', received '{}'", op, padding));
  }
}

// A transposed convolution's output size and crops of one spatial axis, as Keras computes them
// (backend_utils' padding for JAX, with output_padding): pb and pe are cut from the full output
// (in - 1) * s + eff; pe < 0 where Keras' output reaches past it (strides beyond the kernel, or an
// output_padding), rows that hold the bias alone (conv_transpose adds them).
void transposed_axis_geometry(const char* op, const std::string& padding, std::optional<int64_t> extra, int64_t in,
                              int64_t k, int64_t s, int64_t d, int64_t& out, int64_t& pb, int64_t& pe) {
  const int64_t eff = (k - 1) * d + 1;
  KCPP_CHECK(!extra || (*extra >= 0 && *extra < s), ValueError,
             "{}: expected an output_padding >= 0 and smaller than the strides, received output_padding {} with strides {}",
             op, extra.value_or(0), s);
  int64_t left, right;  // zeros around the stride-dilated input, as JAX's conv_transpose takes them
  if (padding == "valid") {
    left = eff - 1;
    right = eff - 1 + extra.value_or(std::max(eff, s) - eff);
  } else if (padding == "same") {
    const int64_t total = extra ? eff + eff % 2 - 2 + *extra : s + eff - 2;
    left = std::min(total / 2 + total % 2, eff - 1);
    right = total - left;
  } else {
    throw ValueError(fmt::format("{}: expected padding 'valid' or 'same', received '{}'", op, padding));
  }
  pb = eff - 1 - left;
  pe = eff - 1 - right;
  out = (in - 1) * s + eff - pb - pe;
}

ConvPlan plan_conv(const char* op, const Tensor& x, const Tensor& kernel, const ConvOptions& o, bool transposed) {
  detail::check_float(op, x, "the input");
  detail::check_float(op, kernel, "the kernel");
  KCPP_CHECK(x.rank() == 3 || x.rank() == 4, ShapeError,
             "{}: expected an input of rank 3 (N, W, C) or 4 (N, H, W, C), received shape {}", op,
             x.shape().to_string());
  KCPP_CHECK(kernel.rank() == x.rank(), ShapeError,
             "{}: expected a kernel of rank {} for input shape {}, received kernel shape {}", op, x.rank(),
             x.shape().to_string(), kernel.shape().to_string());
  const size_t n = x.rank() - 2;
  KCPP_CHECK(o.padding != "causal" || (n == 1 && !transposed), ValueError,
             "{}: padding 'causal' is for 1-d convolutions (Conv1D), received an input of shape {}", op,
             x.shape().to_string());
  ConvPlan p;
  p.attrs.strides = spatial(op, o.strides, n, "strides");
  p.attrs.dilations = spatial(op, o.dilation_rate, n, "dilation_rate");
  p.attrs.groups = o.groups;
  KCPP_CHECK(o.groups >= 1, ValueError, "{}: groups must be >= 1, received {}", op, o.groups);
  if (n == 1) {
    p.x4 = x.view(Shape{x.dim(0), 1, x.dim(1), x.dim(2)});
    p.w4 = kernel.view(Shape{1, kernel.dim(0), kernel.dim(1), kernel.dim(2)});
  } else {
    p.x4 = x;
    p.w4 = kernel;
  }
  const int64_t c = p.x4.dim(3);
  const int64_t kin = transposed ? p.w4.dim(3) : p.w4.dim(2);
  const int64_t filters = transposed ? p.w4.dim(2) : p.w4.dim(3);
  KCPP_CHECK(c % o.groups == 0 && filters % o.groups == 0, ValueError,
             "{}: input channels {} and filters {} must both be divisible by groups {}", op, c, filters, o.groups);
  KCPP_CHECK(kin * (transposed ? 1 : o.groups) == c, ShapeError,
             "{}: expected a kernel for {} input channels{}, received input shape {} and kernel shape {}", op, c,
             o.groups > 1 ? fmt::format(" in {} groups", o.groups) : "", x.shape().to_string(),
             kernel.shape().to_string());
  // Keras' output_padding (transposed only): none, one value for every spatial axis, or one per axis.
  std::array<std::optional<int64_t>, 2> output_padding;  // per axis of the 4-d view
  if (!o.output_padding.empty()) {
    KCPP_CHECK(transposed, ValueError, "{}: output_padding is for transposed convolutions", op);
    KCPP_CHECK(o.output_padding.size() == 1 || o.output_padding.size() == n, ValueError,
               "{}: expected output_padding to have 1 or {} values, received {}", op, n, o.output_padding.size());
    const auto& v = o.output_padding;
    output_padding = {n == 1 ? int64_t{0} : v[0], v.back()};
  }
  int64_t oh = 0, ow = 0;
  for (int i = 0; i < 2; ++i) {
    const int64_t in = p.x4.dim(1 + i), k = p.w4.dim(i);
    int64_t out, pb, pe;
    if (!transposed) {
      axis_geometry(op, o.padding, in, k, p.attrs.strides[i], p.attrs.dilations[i], out, pb, pe, x.shape());
    } else {
      transposed_axis_geometry(op, o.padding, output_padding[static_cast<size_t>(i)], in, k, p.attrs.strides[i],
                               p.attrs.dilations[i], out, pb, pe);
    }
    p.attrs.pad_begin[i] = pb;
    p.attrs.pad_end[i] = pe;
    (i == 0 ? oh : ow) = out;
  }
  p.y4 = Shape{p.x4.dim(0), oh, ow, filters};
  p.out = n == 1 ? Shape{x.dim(0), ow, filters} : p.y4;
  return p;
}

// A convolution's bias: undefined, or floating and (filters,).
void check_conv_bias(const char* op, const Tensor& bias, int64_t filters) {
  if (!bias.defined()) return;
  detail::check_float(op, bias, "the bias");
  KCPP_CHECK(bias.rank() == 1 && bias.dim(0) == filters, ShapeError, "{}: expected a bias of shape ({},), received {}",
             op, filters, bias.shape().to_string());
}

Tensor conv_impl(const char* op, const Tensor& x, const Tensor& kernel, const Tensor& bias, const ConvOptions& o,
                 bool transposed);

// Keras' output reaches past the full transposed convolution (strides beyond the kernel, or an
// output_padding): the full one, cut and extended with zeros per axis (its crop at the start is then
// 0), then the bias and the activation. `p` is the plan of the call, with pad_end < 0 somewhere.
Tensor extended_conv_transpose(const char* op, const ConvPlan& p, const Tensor& x, const Tensor& kernel,
                               const Tensor& bias, const ConvOptions& options) {
  ConvOptions full = options;
  full.padding = "valid";
  full.output_padding = {0};
  full.activation = UnaryOp::identity;
  Tensor y = conv_impl(op, x, kernel, Tensor(), full, true);
  const int64_t first = x.rank() == 3 ? 1 : 0;  // a 1-d convolution has its one spatial axis at index 1 of the plan
  std::vector<int64_t> starts(y.rank(), 0), sizes = y.shape().dims();
  std::vector<std::array<int64_t, 2>> pads(y.rank(), {0, 0});
  for (int64_t i = first; i < 2; ++i) {
    const size_t axis = static_cast<size_t>(1 + i - first);
    const int64_t pb = p.attrs.pad_begin[static_cast<size_t>(i)], pe = p.attrs.pad_end[static_cast<size_t>(i)];
    starts[axis] = pb;
    sizes[axis] -= pb + std::max<int64_t>(pe, 0);
    pads[axis][1] = std::max<int64_t>(-pe, 0);
  }
  if (sizes != y.shape().dims()) y = slice(y, starts, sizes);
  y = pad(y, pads);
  if (bias.defined()) y = add(y, bias);
  return options.activation == UnaryOp::identity ? y : unary(options.activation, y);
}

Tensor conv_impl(const char* op, const Tensor& x, const Tensor& kernel, const Tensor& bias, const ConvOptions& o,
                 bool transposed) {
  ConvPlan p = plan_conv(op, x, kernel, o, transposed);
  if (transposed && (p.attrs.pad_end[0] < 0 || p.attrs.pad_end[1] < 0))
    return extended_conv_transpose(op, p, x, kernel, bias, o);
  Backend& be = detail::common_backend(op, {&x, &kernel, &bias, &o.residual});
  check_conv_bias(op, bias, p.y4[3]);
  const FoldedBatchNorm& bn = o.batch_norm;
  const bool affine = !bn.empty();
  if (const Tensor& residual = o.residual; residual.defined()) {
    KCPP_CHECK(!transposed, ValueError, "{}: a residual is added to forward convolutions only", op);
    KCPP_CHECK(residual.shape() == p.out && residual.dtype() == x.dtype(), ShapeError,
               "{}: expected a residual of the output's shape {} and dtype {}, received shape {} and dtype {}", op,
               p.out.to_string(), dtype_name(x.dtype()), residual.shape().to_string(), dtype_name(residual.dtype()));
    if (x.dtype() != DType::float32 || !be.supports(Capability::fused_conv_residual) ||
        needs_recording({x, kernel, bias, residual, bn.mean, bn.variance, bn.gamma, bn.beta})) {
      // Differentiable, low precision or a backend without the fused kernel: Keras' Add, then the activation.
      ConvOptions plain = o;
      plain.residual = {};
      plain.activation = UnaryOp::identity;
      const Tensor sum = add(conv_impl(op, x, kernel, bias, plain, transposed), residual);
      return o.activation == UnaryOp::identity ? sum : unary(o.activation, sum);
    }
  }
  // A folded batch norm always runs in float32 (BatchNormalization's weights are float32).
  if (auto low = detail::emulated_dtype({&x, &kernel, &bias, &bn.mean, &bn.variance, &bn.gamma, &bn.beta},
                                        affine || transposed ? std::optional<OpFamily>()
                                                             : OpFamily::conv)) {
    ConvOptions wide = o;
    wide.batch_norm = {detail::widen(bn.mean), detail::widen(bn.variance), detail::widen(bn.gamma),
                       detail::widen(bn.beta), bn.epsilon};
    return detail::narrow(conv_impl(op, detail::widen(x), detail::widen(kernel), detail::widen(bias), wide, transposed), *low);
  }
  if (affine) {
    KCPP_CHECK(!transposed && bn.mean.defined() && bn.variance.defined(), ValueError,
               "{}: a folded batch norm needs its mean and variance, on a forward convolution", op);
    for (const Tensor* t : {&bn.mean, &bn.variance, &bn.gamma, &bn.beta}) {
      if (!t->defined()) continue;
      detail::check_float(op, *t, "the folded batch norm's weights");
      KCPP_CHECK(t->rank() == 1 && t->dim(0) == p.y4[3], ShapeError,
                 "{}: expected the folded batch norm's mean, variance, gamma and beta of shape ({},), received {}", op,
                 p.y4[3], t->shape().to_string());
    }
    KCPP_CHECK(bn.epsilon >= 0.f, ValueError, "{}: expected a folded batch norm epsilon >= 0, received {}", op,
               bn.epsilon);
    if (needs_recording({x, kernel, bias, bn.mean, bn.variance, bn.gamma, bn.beta}) ||
        !be.supports(Capability::fused_conv_affine)) {
      // Differentiable, or a backend without the fused kernel: Keras' formula op by op.
      ConvOptions plain = o;
      plain.batch_norm = {};
      plain.activation = UnaryOp::identity;
      const Tensor z = conv_impl(op, x, kernel, bias, plain, transposed);
      Tensor scale = rsqrt(add(bn.variance, Scalar(bn.epsilon)));
      if (bn.gamma.defined()) scale = multiply(scale, bn.gamma);
      Tensor shift = negative(multiply(bn.mean, scale));
      if (bn.beta.defined()) shift = add(shift, bn.beta);
      return unary(o.activation, add(multiply(z, scale), shift));
    }
    p.attrs.batch_norm = bn;
  }
  const UnaryOp fused = can_fuse(o.activation) ? o.activation : UnaryOp::identity;
  p.attrs.activation = fused;
  p.attrs.training = needs_recording({x, kernel, bias});
  if (o.residual.defined()) p.attrs.residual = o.residual.view(p.y4);
  Tensor y = Tensor::empty(p.y4, x.dtype(), &be);
  const Tensor* b = bias.defined() ? &bias : nullptr;
  if (transposed)
    be.conv_transpose_forward(p.x4, p.w4, b, y, p.attrs);
  else
    be.conv_forward(p.x4, p.w4, b, y, p.attrs);
  y = y.view(p.out);
  if (p.attrs.training) {
    record(op, {x, kernel, bias}, {&y},
           [p, bias, transposed, fused, yd = detached(y), need_x = needs_grad(x),
            need_w = needs_grad(kernel) || needs_grad(bias)](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
             Tensor g = detail::activation_grad_from_output(fused, {}, yd, gs[0]);
             g = g.view(p.y4);
             Backend& be2 = *g.backend();
             const bool rank3 = gs[0].rank() == 3;  // a 1-d convolution, run as a 2-d one of height 1
             Tensor dx, dw, db;
             if (need_x) {  // not for the input batch of a first layer
               dx = Tensor::empty(p.x4.shape(), g.dtype(), &be2);
               if (transposed)
                 be2.conv_transpose_backward_data(g, p.w4, dx, p.attrs);
               else
                 be2.conv_backward_data(g, p.w4, dx, p.attrs);
               dx = dx.view(rank3 ? Shape{p.x4.dim(0), p.x4.dim(2), p.x4.dim(3)} : p.x4.shape());
             }
             if (need_w) {  // not for a frozen layer
               dw = Tensor::empty(p.w4.shape(), g.dtype(), &be2);
               db = bias.defined() ? Tensor::empty(bias.shape(), g.dtype(), &be2) : Tensor();
               if (transposed)
                 be2.conv_transpose_backward_weights(g, p.x4, dw, db.defined() ? &db : nullptr, p.attrs);
               else
                 be2.conv_backward_weights(g, p.x4, dw, db.defined() ? &db : nullptr, p.attrs);
               dw = dw.view(rank3 ? Shape{p.w4.dim(1), p.w4.dim(2), p.w4.dim(3)} : p.w4.shape());
             }
             return {dx, dw, db};
           });
  }
  if (fused != o.activation) y = unary(o.activation, y);
  return y;
}

}  // namespace

Tensor conv(const Tensor& x, const Tensor& kernel, const Tensor& bias, const ConvOptions& options) {
  return conv_impl("conv", x, kernel, bias, options, false);
}

Tensor depthwise_conv(const Tensor& x, const Tensor& kernel, const Tensor& bias, const ConvOptions& options) {
  detail::check_float("depthwise_conv", x, "the input");
  detail::check_float("depthwise_conv", kernel, "the kernel");
  KCPP_CHECK(kernel.rank() == x.rank() && kernel.dim(-2) == x.dim(-1), ShapeError,
             "depthwise_conv: expected a kernel (..., {}, depth_multiplier) for input shape {}, received {}", x.dim(-1),
             x.shape().to_string(), kernel.shape().to_string());
  // (kh, kw, C, M) has the memory layout of a grouped kernel (kh, kw, 1, C * M) with C groups.
  std::vector<int64_t> k = kernel.shape().dims();
  k[k.size() - 1] *= k[k.size() - 2];
  k[k.size() - 2] = 1;
  ConvOptions o = options;
  o.groups = x.dim(-1);
  return conv_impl("depthwise_conv", x, reshape(kernel, k), bias, o, false);
}

Tensor conv_transpose(const Tensor& x, const Tensor& kernel, const Tensor& bias, const ConvOptions& options) {
  KCPP_CHECK(options.groups == 1, NotImplementedError, "conv_transpose: groups > 1 is not supported");
  return conv_impl("conv_transpose", x, kernel, bias, options, true);
}

int64_t conv_transpose_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                                   const std::string& padding, std::optional<int64_t> output_padding) {
  int64_t out, pb, pe;
  transposed_axis_geometry("conv_transpose", padding, output_padding, in, kernel, stride, dilation, out, pb, pe);
  return out;
}

namespace {
// Pool attributes and the output's (height, width) for an NHWC input of shape x4.
PoolAttrs plan_pool(const char* op, PoolMode mode, const Shape& x4, const PoolOptions& o, size_t spatial_axes,
                    const Shape& x_for_errors, int64_t out[2]) {
  PoolAttrs attrs;
  attrs.mode = mode;
  attrs.window = spatial(op, o.pool_size, spatial_axes, "pool_size");
  attrs.strides = o.strides.empty() ? attrs.window : spatial(op, o.strides, spatial_axes, "strides");
  for (int i = 0; i < 2; ++i)
    axis_geometry(op, o.padding, x4[1 + i], attrs.window[i], attrs.strides[i], 1, out[i], attrs.pad_begin[i],
                  attrs.pad_end[i], x_for_errors);
  return attrs;
}

Tensor pool_impl(PoolMode mode, const Tensor& x, const PoolOptions& o) {
  const char* op = mode == PoolMode::max ? "max_pool" : "average_pool";
  detail::check_float(op, x, "the input");
  if (auto low = detail::emulated_dtype({&x}, OpFamily::pool))
    return detail::narrow(pool_impl(mode, detail::widen(x), o), *low);
  KCPP_CHECK(x.rank() == 3 || x.rank() == 4, ShapeError,
             "{}: expected an input of rank 3 (N, W, C) or 4 (N, H, W, C), received shape {}", op,
             x.shape().to_string());
  const size_t n = x.rank() - 2;
  const Tensor x4 = n == 1 ? x.view(Shape{x.dim(0), 1, x.dim(1), x.dim(2)}) : x;
  int64_t out[2];
  const PoolAttrs attrs = plan_pool(op, mode, x4.shape(), o, n, x.shape(), out);
  const Shape y4{x4.dim(0), out[0], out[1], x4.dim(3)};
  Backend& be = *x.backend();
  Tensor y = Tensor::empty(y4, x.dtype(), &be);
  const bool rec = needs_recording({x});
  Tensor ws;
  if (rec && mode == PoolMode::max)
    ws = Tensor::empty(Shape{static_cast<int64_t>(be.pool_workspace_bytes(x4, y, attrs))}, DType::uint8, &be);
  be.pool_forward(x4, y, ws.defined() ? &ws : nullptr, attrs);
  y = y.view(n == 1 ? Shape{x.dim(0), out[1], x.dim(2)} : y4);
  if (rec) {
    record(op, {x}, {&y}, [x4, ws, attrs, y4](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
      Tensor dx = Tensor::empty(x4.shape(), gs[0].dtype(), gs[0].backend());
      gs[0].backend()->pool_backward(gs[0].view(y4), x4, ws.defined() ? &ws : nullptr, dx, attrs);
      return {gs[0].rank() == 3 ? dx.view(Shape{x4.dim(0), x4.dim(2), x4.dim(3)}) : dx};
    });
  }
  return y;
}
}  // namespace

Tensor max_pool(const Tensor& x, const PoolOptions& options) { return pool_impl(PoolMode::max, x, options); }
Tensor average_pool(const Tensor& x, const PoolOptions& options) { return pool_impl(PoolMode::average, x, options); }

Tensor conv_max_pool(const Tensor& x, const Tensor& kernel, const Tensor& bias, const ConvOptions& conv_options,
                     const PoolOptions& pool_options) {
  // One pass where the backend has it and nothing is differentiated; otherwise the two ops, which
  // also give every error its usual text.
  const bool plain = conv_options.batch_norm.empty() &&
                     (conv_options.activation == UnaryOp::relu || conv_options.activation == UnaryOp::identity);
  if (!plain || !x.defined() || x.rank() != 4 || !x.backend()->supports(Capability::fused_conv_max_pool) ||
      needs_recording({x, kernel, bias}) || detail::emulated_dtype({&x, &kernel, &bias}))
    return max_pool(conv(x, kernel, bias, conv_options), pool_options);
  ConvPlan p = plan_conv("conv", x, kernel, conv_options, false);
  Backend& be = detail::common_backend("conv", {&x, &kernel, &bias});
  check_conv_bias("conv", bias, p.y4[3]);
  int64_t out[2];
  const PoolAttrs pool = plan_pool("max_pool", PoolMode::max, p.y4, pool_options, 2, p.y4, out);
  p.attrs.activation = conv_options.activation;
  p.attrs.training = false;
  Tensor y = Tensor::empty(Shape{p.y4[0], out[0], out[1], p.y4[3]}, x.dtype(), &be);
  be.conv_max_pool_forward(p.x4, p.w4, bias.defined() ? &bias : nullptr, y, p.attrs, pool);
  return y;
}

namespace {
void check_bn(const char* op, const Tensor& x, std::initializer_list<const Tensor*> params) {
  detail::check_float(op, x, "the input");
  KCPP_CHECK(x.rank() >= 2, ShapeError, "{}: expected an input of rank >= 2, received shape {}", op,
             x.shape().to_string());
  for (const Tensor* p : params) {
    detail::check_float(op, *p, "a parameter");
    KCPP_CHECK(p->rank() == 1 && p->dim(0) == x.dim(-1), ShapeError,
               "{}: expected parameters of shape ({},) for input shape {}, received {}", op, x.dim(-1),
               x.shape().to_string(), p->shape().to_string());
  }
  for (const Tensor* p : params) detail::common_backend(op, {&x, p});
}
}  // namespace

RnnResult fused_rnn(RnnCell cell, const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& kernel,
                    const Tensor& recurrent_kernel, const Tensor& bias, const Tensor& recurrent_bias) {
  if (auto low = detail::emulated_dtype({&x, &h0, &c0, &kernel, &recurrent_kernel, &bias, &recurrent_bias})) {
    RnnResult r = fused_rnn(cell, detail::widen(x), detail::widen(h0), detail::widen(c0), detail::widen(kernel), detail::widen(recurrent_kernel), detail::widen(bias), detail::widen(recurrent_bias));
    return {detail::narrow(r.sequence, *low), detail::narrow(r.h, *low), detail::narrow(r.c, *low)};
  }
  const bool lstm = cell == RnnCell::lstm, reset_after = cell == RnnCell::gru_reset_after;
  const int64_t gates = lstm ? 4 : 3;
  KCPP_CHECK(x.rank() == 3 && recurrent_kernel.rank() == 2, ShapeError,
             "fused_rnn: expected x (N, T, C) and recurrent_kernel (U, G*U), received {} and {}",
             x.shape().to_string(), recurrent_kernel.shape().to_string());
  const int64_t n = x.dim(0), t = x.dim(1), c = x.dim(2), u = recurrent_kernel.dim(0);
  auto expect = [&](const Tensor& v, const Shape& shape, const char* what) {
    KCPP_CHECK(v.defined() && v.shape() == shape && v.dtype() == DType::float32, ShapeError,
               "fused_rnn: expected {} float32 {}, received {}", what, shape.to_string(),
               v.defined() ? v.shape().to_string() + " " + dtype_name(v.dtype()) : "nothing");
  };
  expect(x, Shape{n, t, c}, "x");
  expect(h0, Shape{n, u}, "h0");
  if (lstm) expect(c0, Shape{n, u}, "c0");
  expect(kernel, Shape{c, gates * u}, "kernel");
  expect(recurrent_kernel, Shape{u, gates * u}, "recurrent_kernel");
  expect(bias, Shape{gates * u}, "bias");
  if (reset_after) expect(recurrent_bias, Shape{gates * u}, "recurrent_bias");
  KCPP_CHECK(t > 0 && n > 0, ValueError, "fused_rnn: expected at least one sample and one step, received {}",
             x.shape().to_string());
  Backend& be = detail::common_backend("fused_rnn", {&x, &h0, &kernel, &recurrent_kernel, &bias});
  const bool training = needs_recording({x, h0, c0, kernel, recurrent_kernel, bias, recurrent_bias});
  RnnResult r;
  r.sequence = Tensor::empty(Shape{n, t, u}, DType::float32, &be);
  r.h = Tensor::empty(Shape{n, u}, DType::float32, &be);
  if (lstm) r.c = Tensor::empty(Shape{n, u}, DType::float32, &be);
  Tensor workspace;
  const RnnAttrs attrs{cell, training};
  be.rnn_forward(attrs, x, h0, lstm ? &c0 : nullptr, kernel, recurrent_kernel, bias,
                 reset_after ? &recurrent_bias : nullptr, r.sequence, r.h, lstm ? &r.c : nullptr,
                 training ? &workspace : nullptr);
  if (!training) return r;
  std::vector<Tensor> inputs{x, h0, kernel, recurrent_kernel, bias};
  if (lstm) inputs.push_back(c0);
  if (reset_after) inputs.push_back(recurrent_bias);
  std::vector<Tensor*> outputs{&r.sequence, &r.h};
  if (lstm) outputs.push_back(&r.c);
  // The backward reads the outputs: views of their storage, without the autograd links that would
  // make a cycle (output -> node -> closure -> output) and leak the graph.
  const Tensor y_data = detached(r.sequence), h_data = detached(r.h), c_data = lstm ? detached(r.c) : Tensor();
  record("fused_rnn", inputs, outputs,
         [attrs, x, h0, c0, kernel, recurrent_kernel, bias, recurrent_bias, y = y_data, h = h_data, cl = c_data,
          workspace, lstm, reset_after](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
           Backend& b = *gs[0].backend();
           auto like = [&](const Tensor& v) { return Tensor::empty(v.shape(), DType::float32, &b); };
           Tensor dx = like(x), dh0 = like(h0), dk = like(kernel), du = like(recurrent_kernel), db = like(bias);
           Tensor dc0 = lstm ? like(c0) : Tensor(), drb = reset_after ? like(recurrent_bias) : Tensor();
           b.rnn_backward(attrs, x, h0, lstm ? &c0 : nullptr, kernel, recurrent_kernel, bias,
                          reset_after ? &recurrent_bias : nullptr, y, h, lstm ? &cl : nullptr, workspace, gs[0],
                          gs[1], lstm ? &gs[2] : nullptr, dx, dh0, lstm ? &dc0 : nullptr, dk, du, db,
                          reset_after ? &drb : nullptr);
           std::vector<Tensor> grads{dx, dh0, dk, du, db};
           if (lstm) grads.push_back(dc0);
           if (reset_after) grads.push_back(drb);
           return grads;
         });
  return r;
}

// Batch normalization computes in float32 whatever the data's dtype, as Keras' layer does: gamma, beta
// and the statistics are float32, and float16/bfloat16 data is read as float32 and rounded back once,
// by the backend (OpFamily::batch_norm) or through float32 copies.
namespace {
bool native_low_bn(const Tensor& x) {
  return detail::is_low_precision(x.dtype()) && x.backend()->computes_low_precision(OpFamily::batch_norm, x.dtype());
}
}  // namespace

BatchNormResult batch_norm_training(const Tensor& x, const Tensor& gamma_in, const Tensor& beta_in, float epsilon) {
  check_bn("batch_norm_training", x, {&gamma_in, &beta_in});
  const Tensor gamma = detail::widen(gamma_in), beta = detail::widen(beta_in);
  if (detail::is_low_precision(x.dtype()) && !native_low_bn(x)) {
    BatchNormResult r = batch_norm_training(detail::widen(x), gamma, beta, epsilon);
    r.y = detail::narrow(r.y, x.dtype());  // the statistics stay float32, as the moving averages they feed
    return r;
  }
  KCPP_CHECK(x.num_elements() > 0, ValueError, "batch_norm_training: received an empty input {}",
             x.shape().to_string());
  const int64_t c = x.dim(-1);
  const Tensor x2 = x.view(Shape{x.num_elements() / c, c});
  Backend& be = *x.backend();
  BatchNormResult r;
  r.mean = Tensor::empty(Shape{c}, DType::float32, &be);
  r.variance = Tensor::empty(Shape{c}, DType::float32, &be);
  Tensor y2 = Tensor::empty(x2.shape(), x.dtype(), &be);
  be.batch_norm_forward(x2, gamma, beta, r.mean, r.variance, y2, epsilon, true);
  r.y = y2.view(x.shape());
  if (needs_recording({x, gamma, beta})) {
    record("batch_norm", {x, gamma, beta}, {&r.y},
           [x2, gamma, mean = r.mean, var = r.variance, epsilon,
            shape = x.shape()](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
             Backend& b = *gs[0].backend();
             const Tensor dy = gs[0].dtype() == x2.dtype() ? gs[0] : cast(gs[0], x2.dtype());
             Tensor dx = Tensor::empty(x2.shape(), x2.dtype(), &b);
             Tensor dgamma = Tensor::empty(gamma.shape(), DType::float32, &b);
             Tensor dbeta = Tensor::empty(gamma.shape(), DType::float32, &b);
             b.batch_norm_backward(dy.view(x2.shape()), x2, gamma, mean, var, dx, dgamma, dbeta, epsilon);
             return {dx.view(shape), dgamma, dbeta};
           });
  }
  return r;
}

Tensor batch_norm_inference(const Tensor& x, const Tensor& gamma_in, const Tensor& beta_in, const Tensor& mean_in,
                            const Tensor& variance_in, float epsilon) {
  check_bn("batch_norm_inference", x, {&gamma_in, &beta_in, &mean_in, &variance_in});
  const Tensor gamma = detail::widen(gamma_in), beta = detail::widen(beta_in), mean = detail::widen(mean_in),
               variance = detail::widen(variance_in);
  const bool recording = needs_recording({x, gamma, beta});
  if (detail::is_low_precision(x.dtype()) && (recording || !native_low_bn(x)))
    return detail::narrow(batch_norm_inference(detail::widen(x), gamma, beta, mean, variance, epsilon), x.dtype());
  if (recording) {
    // Differentiable composition (fine-tuning through a frozen layer needs dx).
    Tensor inv = rsqrt(variance + epsilon);
    return (x - mean) * (inv * gamma) + beta;
  }
  const int64_t c = x.dim(-1);
  const Tensor x2 = x.view(Shape{x.num_elements() / std::max<int64_t>(c, 1), c});
  Tensor y2 = Tensor::empty(x2.shape(), x.dtype(), x.backend());
  Tensor m = mean, v = variance;
  x.backend()->batch_norm_forward(x2, gamma, beta, m, v, y2, epsilon, false);
  return y2.view(x.shape());
}

Tensor layer_normalization(const Tensor& x, const Tensor& gamma_in, const Tensor& beta_in, int64_t first_axis,
                           float epsilon) {
  const char* op = "layer_normalization";
  detail::check_float(op, x, "the input");
  KCPP_CHECK(x.rank() >= 1, ShapeError, "{}: expected a tensor of rank >= 1, received a scalar", op);
  KCPP_CHECK(epsilon > 0, ValueError, "{}: epsilon must be positive, received {}", op, epsilon);
  const size_t first = x.shape().normalize_axis(first_axis);
  const std::vector<int64_t> normalized(x.shape().dims().begin() + static_cast<std::ptrdiff_t>(first),
                                        x.shape().dims().end());
  for (const Tensor* p : {&gamma_in, &beta_in}) {
    if (!p->defined()) continue;
    detail::check_float(op, *p, p == &gamma_in ? "gamma" : "beta");
    KCPP_CHECK(p->shape() == Shape(normalized), ShapeError,
               "{}: expected {} of the normalized axes' shape {} (input {}), received {}", op,
               p == &gamma_in ? "gamma" : "beta", Shape(normalized).to_string(), x.shape().to_string(),
               p->shape().to_string());
    detail::common_backend(op, {&x, p});
  }
  const Tensor gamma = detail::widen(gamma_in), beta = detail::widen(beta_in);
  if (detail::is_low_precision(x.dtype()))
    return detail::narrow(layer_normalization(detail::widen(x), gamma, beta, first_axis, epsilon), x.dtype());
  Backend& be = *x.backend();
  if (!be.supports(Capability::fused_layer_norm) || x.num_elements() == 0) {
    std::vector<int64_t> axes;
    for (size_t a = first; a < x.rank(); ++a) axes.push_back(static_cast<int64_t>(a));
    Tensor y = (x - mean(x, axes, true)) * rsqrt(var(x, axes, true) + epsilon);
    if (gamma.defined()) y = y * gamma;
    if (beta.defined()) y = y + beta;
    return y;
  }
  const int64_t cols = Shape(normalized).num_elements(), rows = x.num_elements() / cols;
  const Tensor x2 = x.view(Shape{rows, cols});
  const Tensor g2 = gamma.defined() ? gamma.view(Shape{cols}) : Tensor();
  const Tensor b2 = beta.defined() ? beta.view(Shape{cols}) : Tensor();
  std::vector<Tensor> inputs{x};
  if (gamma.defined()) inputs.push_back(gamma);
  if (beta.defined()) inputs.push_back(beta);
  const bool recording = needs_recording(inputs);
  Tensor mean_rows, variance_rows;
  if (recording) {
    mean_rows = Tensor::empty(Shape{rows}, DType::float32, &be);
    variance_rows = Tensor::empty(Shape{rows}, DType::float32, &be);
  }
  Tensor y2 = Tensor::empty(x2.shape(), x.dtype(), &be);
  be.layer_norm_forward(x2, g2.defined() ? &g2 : nullptr, b2.defined() ? &b2 : nullptr, y2,
                        recording ? &mean_rows : nullptr, recording ? &variance_rows : nullptr, epsilon);
  Tensor y = y2.view(x.shape());
  if (recording) {
    record("layer_normalization", inputs, {&y},
           [x2, g2, b2, mean_rows, variance_rows, epsilon, shape = x.shape(), param_shape = Shape(normalized)](
               const std::vector<Tensor>& gs) -> std::vector<Tensor> {
             Backend& b = *gs[0].backend();
             const Tensor dy = (gs[0].dtype() == x2.dtype() ? gs[0] : cast(gs[0], x2.dtype())).view(x2.shape());
             Tensor dx = Tensor::empty(x2.shape(), x2.dtype(), &b);
             Tensor dgamma, dbeta;
             if (g2.defined()) dgamma = Tensor::empty(g2.shape(), DType::float32, &b);
             if (b2.defined()) dbeta = Tensor::empty(b2.shape(), DType::float32, &b);
             b.layer_norm_backward(dy, x2, g2.defined() ? &g2 : nullptr, mean_rows, variance_rows, dx,
                                   g2.defined() ? &dgamma : nullptr, b2.defined() ? &dbeta : nullptr, epsilon);
             std::vector<Tensor> grads{dx.view(shape)};
             if (g2.defined()) grads.push_back(dgamma.view(param_shape));
             if (b2.defined()) grads.push_back(dbeta.view(param_shape));
             return grads;
           });
  }
  return y;
}

namespace {
Tensor softmax_impl(const Tensor& x, int64_t axis, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  detail::check_float(op, x, "the input");
  if (auto low = detail::emulated_dtype({&x}, OpFamily::softmax))
    return detail::narrow(softmax_impl(detail::widen(x), axis, log), *low);
  KCPP_CHECK(x.rank() >= 1, ShapeError, "{}: expected a tensor of rank >= 1, received a scalar", op);
  const size_t a = x.shape().normalize_axis(axis);
  if (a != x.rank() - 1) {
    std::vector<int64_t> perm;
    for (size_t i = 0; i < x.rank(); ++i) perm.push_back(static_cast<int64_t>(i));
    std::swap(perm[a], perm.back());
    return transpose(softmax_impl(transpose(x, perm), -1, log), perm);
  }
  const int64_t c = x.dim(-1);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.backend());
  if (x.num_elements() > 0) x.backend()->softmax(x.view(Shape{x.num_elements() / c, c}), y, log);
  if (needs_recording({x})) {
    record(op, {x}, {&y}, [log, yd = detached(y)](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
      const Tensor& g = gs[0];
      if (log) return {g - exp(yd) * sum(g, {-1}, true)};
      return {yd * (g - sum(g * yd, {-1}, true))};
    });
  }
  return y;
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t axis) { return softmax_impl(x, axis, false); }
Tensor log_softmax(const Tensor& x, int64_t axis) { return softmax_impl(x, axis, true); }

Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels, bool sparse) {
  const char* op = "softmax_cross_entropy";
  detail::check_float(op, logits, "the logits");
  detail::check_defined(op, labels, "the labels");
  detail::check_rank(op, logits, "the logits", 2);
  detail::common_backend(op, {&logits, &labels});
  if (sparse) {
    KCPP_CHECK(labels.dtype() == DType::int32 || labels.dtype() == DType::int64, TypeError,
               "{}: expected int32 or int64 class ids, received dtype {}", op, dtype_name(labels.dtype()));
    KCPP_CHECK(labels.rank() == 1 && labels.dim(0) == logits.dim(0), ShapeError,
               "{}: expected labels of shape ({},) for logits {}, received {}", op, logits.dim(0),
               logits.shape().to_string(), labels.shape().to_string());
  } else {
    detail::check_float(op, labels, "the labels");
    KCPP_CHECK(labels.shape() == logits.shape(), ShapeError,
               "{}: expected labels of shape {} (the logits' shape), received {}", op, logits.shape().to_string(),
               labels.shape().to_string());
  }
  // Losses are float32 in Keras whatever the compute dtype: no rounding back.
  if (detail::emulated_dtype({&logits, &labels}))
    return softmax_cross_entropy(detail::widen(logits), detail::widen(labels), sparse);
  Backend& be = *logits.backend();
  Tensor loss = Tensor::empty(Shape{logits.dim(0)}, DType::float32, &be);
  const bool rec = needs_recording({logits, labels});
  Tensor dlogits = rec ? Tensor::empty(logits.shape(), DType::float32, &be) : Tensor();
  be.softmax_cross_entropy(logits, labels, sparse, loss, rec ? &dlogits : nullptr);
  if (rec) {
    record(op, {logits, labels}, {&loss},
           [dlogits, logits, sparse](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
             const Tensor g = expand_dims(gs[0], -1);
             // d loss / d target_k = -log_softmax(logits)_k, for soft targets that are themselves computed.
             return {dlogits * g, sparse ? Tensor() : negative(log_softmax(logits)) * g};
           });
  }
  return loss;
}

Tensor embedding(const Tensor& table, const Tensor& ids) {
  const char* op = "embedding";
  detail::check_float(op, table, "the table");
  detail::check_rank(op, table, "the table", 2);
  detail::check_defined(op, ids, "the ids");
  detail::common_backend(op, {&table, &ids});
  KCPP_CHECK(ids.dtype() == DType::int32 || ids.dtype() == DType::int64, TypeError,
             "{}: expected int32 or int64 ids, received dtype {}", op, dtype_name(ids.dtype()));
  if (auto low = detail::emulated_dtype({&table})) return detail::narrow(embedding(detail::widen(table), ids), *low);
  std::vector<int64_t> out = ids.shape().dims();
  out.push_back(table.dim(1));
  Tensor y = Tensor::empty(Shape{ids.num_elements(), table.dim(1)}, DType::float32, table.backend());
  const Tensor flat = ids.view(Shape{ids.num_elements()});
  table.backend()->embedding_forward(table, flat, y);
  y = y.view(Shape(out));
  if (needs_recording({table})) {
    record(op, {table, ids}, {&y},
           [flat, tshape = table.shape()](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
             Tensor dtable = Tensor::empty(tshape, DType::float32, gs[0].backend());
             gs[0].backend()->embedding_backward(gs[0].view(Shape{flat.dim(0), tshape[1]}), flat, dtable);
             return {dtable, Tensor()};
           });
  }
  return y;
}

}  // namespace keras::ops
