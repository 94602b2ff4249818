// Elementwise ops and their gradient rules.
#include <cmath>
#include <numbers>

#include "core/ops_util.h"

namespace keras::ops {
using keras::detail::needs_recording;
using keras::detail::record;

namespace detail {

Tensor reduce_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const size_t extra = g.rank() - shape.rank();
  std::vector<int64_t> axes;
  for (size_t i = 0; i < g.rank(); ++i)
    if (i < extra || (shape[i - extra] == 1 && g.shape()[i] != 1)) axes.push_back(static_cast<int64_t>(i));
  Tensor s = axes.empty() ? g : sum(g, axes, true);
  return reshape(s, shape.dims());
}

Tensor activation_grad_from_output(UnaryOp op, const UnaryAttrs& attrs, const Tensor& y, const Tensor& g) {
  const auto zero = [&] { return zeros({}, y.dtype(), y.backend()); };  // made only by the rules that use it
  switch (op) {
    case UnaryOp::identity:
      return g;
    case UnaryOp::relu:
      return binary(BinaryOp::relu_grad, g, y);
    case UnaryOp::relu6:
      return where(logical_and(greater(y, zero()), less(y, full({}, 6.f, y.dtype(), y.backend()))), g, zero());
    case UnaryOp::sigmoid:
      return g * y * (1.f - y);
    case UnaryOp::tanh:
      return g * (1.f - square(y));
    case UnaryOp::elu:
      return where(greater(y, zero()), g, g * (y + attrs.alpha));
    default:
      return Tensor();
  }
}

}  // namespace detail

Tensor unary(UnaryOp op, const Tensor& x, UnaryAttrs attrs) {
  detail::check_defined(unary_op_name(op), x, "the input");
  if (auto low = detail::emulated_dtype({&x}, OpFamily::elementwise))
    return detail::narrow(unary(op, detail::widen(x), attrs), *low);
  if (op == UnaryOp::logical_not) {
    KCPP_CHECK(x.dtype() == DType::bool_, TypeError, "logical_not: expected a bool tensor, received dtype {}",
               dtype_name(x.dtype()));
  } else if (op != UnaryOp::negative && op != UnaryOp::abs && op != UnaryOp::sign && op != UnaryOp::square &&
             op != UnaryOp::identity) {
    KCPP_CHECK(is_floating(x.dtype()), TypeError, "{}: expected a floating-point tensor, received dtype {} (shape {})",
               unary_op_name(op), dtype_name(x.dtype()), x.shape().to_string());
  }
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.backend());
  x.backend()->unary(op, x, y, attrs);
  if (!needs_recording({x})) return y;

  // An activation whose rule can be written from its output keeps the output (detached: y itself
  // would make a reference cycle), which the op after it keeps anyway: a conv, batch norm, relu
  // chain then keeps two activations, not three. The same kernel made y, so the gradients are the
  // ones the input gives.
  if (op == UnaryOp::relu || op == UnaryOp::relu6 || op == UnaryOp::sigmoid || op == UnaryOp::tanh ||
      (op == UnaryOp::elu && attrs.alpha > 0)) {  // a negative alpha makes y > 0 where x < 0
    record(unary_op_name(op), {x}, {&y}, [op, attrs, yd = detail::detached(y)](const std::vector<Tensor>& gs) {
      return std::vector<Tensor>{detail::activation_grad_from_output(op, attrs, yd, gs[0])};
    });
    return y;
  }
  // The rules below read x, except these: keep nothing for them.
  const bool rule_reads_x = op != UnaryOp::identity && op != UnaryOp::negative && op != UnaryOp::affine &&
                            op != UnaryOp::sign && op != UnaryOp::floor && op != UnaryOp::ceil &&
                            op != UnaryOp::round && op != UnaryOp::logical_not;
  record(unary_op_name(op), {x}, {&y},
         [op, attrs, x = rule_reads_x ? x : Tensor()](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
    const Tensor& g = gs[0];
    const auto zero = [&] { return zeros({}, x.dtype(), x.backend()); };  // made only by the rules that use it
    switch (op) {
      case UnaryOp::identity:
        return {g};
      case UnaryOp::negative:
        return {negative(g)};
      case UnaryOp::abs:
        return {g * sign(x)};
      case UnaryOp::sign:
      case UnaryOp::floor:
      case UnaryOp::ceil:
      case UnaryOp::round:
      case UnaryOp::logical_not:
        return {Tensor()};
      case UnaryOp::square:
        return {g * x * 2.f};
      case UnaryOp::sqrt:
        return {g / (sqrt(x) * 2.f)};
      case UnaryOp::rsqrt:
        return {g * rsqrt(x) * reciprocal(x) * -0.5f};
      case UnaryOp::reciprocal:
        return {negative(g) * square(reciprocal(x))};
      case UnaryOp::exp:
        return {g * exp(x)};
      case UnaryOp::expm1:
        return {g * exp(x)};
      case UnaryOp::log:
        return {g / x};
      case UnaryOp::log1p:
        return {g / (x + 1.f)};
      case UnaryOp::sin:
        return {g * cos(x)};
      case UnaryOp::cos:
        return {negative(g) * sin(x)};
      case UnaryOp::tanh:
        return {g * (1.f - square(tanh(x)))};
      case UnaryOp::sigmoid: {
        Tensor s = sigmoid(x);
        return {g * s * (1.f - s)};
      }
      case UnaryOp::relu:
        return {binary(BinaryOp::relu_grad, g, x)};
      case UnaryOp::relu6:
        return {where(logical_and(greater(x, zero()), less(x, full({}, 6.f, x.dtype(), x.backend()))), g, zero())};
      case UnaryOp::leaky_relu:
        return {where(greater(x, zero()), g, g * attrs.alpha)};
      case UnaryOp::elu:
        return {where(greater(x, zero()), g, g * exp(x) * attrs.alpha)};
      case UnaryOp::selu: {
        constexpr float alpha = 1.6732632423543772f, scale = 1.0507009873554805f;
        return {where(greater(x, zero()), g * scale, g * exp(x) * (alpha * scale))};
      }
      case UnaryOp::gelu: {
        // d/dx x*Phi(x) = Phi(x) + x*phi(x)
        const float inv_sqrt2 = 1.f / std::numbers::sqrt2_v<float>;
        const float inv_sqrt_2pi = 1.f / std::sqrt(2.f * std::numbers::pi_v<float>);
        Tensor cdf = (erf(x * inv_sqrt2) + 1.f) * 0.5f;
        Tensor pdf = exp(square(x) * -0.5f) * inv_sqrt_2pi;
        return {g * (cdf + x * pdf)};
      }
      case UnaryOp::gelu_tanh: {
        const float c = std::sqrt(2.f / std::numbers::pi_v<float>);
        Tensor x2 = square(x);
        Tensor t = tanh((x + x * x2 * 0.044715f) * c);
        Tensor dt = (1.f - square(t)) * (x2 * (3.f * 0.044715f) + 1.f) * c;
        return {g * ((t + 1.f) * 0.5f + x * dt * 0.5f)};
      }
      case UnaryOp::softplus:
        return {g * sigmoid(x)};
      case UnaryOp::softsign:
        return {g / square(abs(x) + 1.f)};
      case UnaryOp::swish: {
        Tensor s = sigmoid(x);
        return {g * s * (x * (1.f - s) + 1.f)};
      }
      case UnaryOp::hard_sigmoid:
        return {where(logical_and(greater(x, full({}, -3.f, x.dtype(), x.backend())),
                                  less(x, full({}, 3.f, x.dtype(), x.backend()))),
                      g * (1.f / 6.f), zero())};
      case UnaryOp::erf:
        return {g * exp(negative(square(x))) * (2.f / std::sqrt(std::numbers::pi_v<float>))};
      case UnaryOp::affine:
        return {multiply(g, Scalar(attrs.alpha))};
      case UnaryOp::clip:
        return {where(logical_and(greater_equal(x, full({}, attrs.alpha, x.dtype(), x.backend())),
                                  less_equal(x, full({}, attrs.beta, x.dtype(), x.backend()))),
                      g, zero())};
    }
    return {Tensor()};
  });
  return y;
}

Tensor negative(const Tensor& x) { return unary(UnaryOp::negative, x); }
Tensor abs(const Tensor& x) { return unary(UnaryOp::abs, x); }
Tensor sign(const Tensor& x) { return unary(UnaryOp::sign, x); }
Tensor square(const Tensor& x) { return unary(UnaryOp::square, x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::rsqrt, x); }
Tensor reciprocal(const Tensor& x) { return unary(UnaryOp::reciprocal, x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::exp, x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::log, x); }
Tensor log1p(const Tensor& x) { return unary(UnaryOp::log1p, x); }
Tensor sin(const Tensor& x) { return unary(UnaryOp::sin, x); }
Tensor cos(const Tensor& x) { return unary(UnaryOp::cos, x); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::sigmoid, x); }
Tensor relu(const Tensor& x) { return unary(UnaryOp::relu, x); }
Tensor relu6(const Tensor& x) { return unary(UnaryOp::relu6, x); }
Tensor leaky_relu(const Tensor& x, float slope) { return unary(UnaryOp::leaky_relu, x, {slope, 0.f}); }
Tensor elu(const Tensor& x, float alpha) { return unary(UnaryOp::elu, x, {alpha, 0.f}); }
Tensor selu(const Tensor& x) { return unary(UnaryOp::selu, x); }
Tensor gelu(const Tensor& x, bool approximate) { return unary(approximate ? UnaryOp::gelu_tanh : UnaryOp::gelu, x); }
Tensor softplus(const Tensor& x) { return unary(UnaryOp::softplus, x); }
Tensor softsign(const Tensor& x) { return unary(UnaryOp::softsign, x); }
Tensor silu(const Tensor& x) { return unary(UnaryOp::swish, x); }
Tensor hard_sigmoid(const Tensor& x) { return unary(UnaryOp::hard_sigmoid, x); }
Tensor erf(const Tensor& x) { return unary(UnaryOp::erf, x); }
Tensor floor(const Tensor& x) { return unary(UnaryOp::floor, x); }
Tensor round(const Tensor& x) { return unary(UnaryOp::round, x); }
Tensor clip(const Tensor& x, float lo, float hi) {
  KCPP_CHECK(lo <= hi, ValueError, "clip: expected min_value <= max_value, received {} and {}", lo, hi);
  return unary(UnaryOp::clip, x, {lo, hi});
}
Tensor logical_not(const Tensor& x) { return unary(UnaryOp::logical_not, x); }

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_op_name(op);
  detail::check_defined(name, a, "the first operand");
  detail::check_defined(name, b, "the second operand");
  Backend& be = detail::common_backend(name, {&a, &b});
  if (auto low = detail::emulated_dtype({&a, &b}, OpFamily::elementwise);
      low && is_floating(a.dtype()) && is_floating(b.dtype()))
    return detail::narrow(binary(op, detail::widen(a), detail::widen(b)), *low);
  KCPP_CHECK(a.dtype() == b.dtype(), TypeError, "{}: operands must share a dtype, received {} {} and {} {}", name,
             dtype_name(a.dtype()), a.shape().to_string(), dtype_name(b.dtype()), b.shape().to_string());
  const bool logical = op == BinaryOp::logical_and || op == BinaryOp::logical_or;
  KCPP_CHECK(!logical || a.dtype() == DType::bool_, TypeError, "{}: expected bool operands, received dtype {}", name,
             dtype_name(a.dtype()));
  KCPP_CHECK(logical || is_comparison(op) || a.dtype() != DType::bool_, TypeError,
             "{}: arithmetic on bool tensors is not defined; cast them first", name);
  Shape out_shape;
  try {
    out_shape = broadcast_shapes(a.shape(), b.shape());
  } catch (const ShapeError& e) {
    throw ShapeError(fmt::format("{}: {}", name, e.what()));
  }
  const DType out_dtype = binary_returns_bool(op) ? DType::bool_ : a.dtype();
  Tensor y = Tensor::empty(out_shape, out_dtype, &be);
  be.binary(op, a, b, y);
  if (binary_returns_bool(op) || !needs_recording({a, b})) return y;

  const bool need_a = a.requires_grad() || a.impl()->autograd.grad_fn;
  const bool need_b = b.requires_grad() || b.impl()->autograd.grad_fn;
  // Sums and differences keep only their operands' shapes (a residual Add would otherwise keep
  // both branches alive until its backward pass).
  const bool rule_reads_operands = op != BinaryOp::add && op != BinaryOp::subtract;
  record(name, {a, b}, {&y},
         [op, a = rule_reads_operands ? a : Tensor(), b = rule_reads_operands ? b : Tensor(), a_shape = a.shape(),
          b_shape = b.shape(), need_a, need_b](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
    const Tensor& g = gs[0];
    Tensor ga, gb;
    switch (op) {
      case BinaryOp::add:
        ga = g;
        gb = g;
        break;
      case BinaryOp::subtract:
        ga = g;
        if (need_b) gb = negative(g);
        break;
      case BinaryOp::multiply:
        if (need_a) ga = g * b;
        if (need_b) gb = g * a;
        break;
      case BinaryOp::divide:
        if (need_a) ga = g / b;
        if (need_b) gb = negative(g) * a / square(b);
        break;
      case BinaryOp::maximum:
      case BinaryOp::minimum: {
        const Tensor zero = zeros({}, g.dtype(), g.backend());
        Tensor pick_a = op == BinaryOp::maximum ? greater_equal(a, b) : less_equal(a, b);
        pick_a = broadcast_to(pick_a, g.shape());
        if (need_a) ga = where(pick_a, g, zero);
        if (need_b) gb = where(pick_a, zero, g);
        break;
      }
      case BinaryOp::power:
        if (need_a) ga = g * b * power(a, b + -1.f);
        if (need_b) gb = g * power(a, b) * log(a);
        break;
      case BinaryOp::floor_mod:
        ga = g;
        if (need_b) gb = negative(g) * floor(a / b);
        break;
      case BinaryOp::relu_grad:  // piecewise linear in a; the mask b has no gradient
        if (need_a) ga = binary(BinaryOp::relu_grad, g, b);
        break;
      default:
        break;
    }
    if (ga.defined()) ga = detail::reduce_to(ga, a_shape);
    if (gb.defined()) gb = detail::reduce_to(gb, b_shape);
    return {ga, gb};
  });
  return y;
}

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, a, b); }
Tensor subtract(const Tensor& a, const Tensor& b) { return binary(BinaryOp::subtract, a, b); }
Tensor multiply(const Tensor& a, const Tensor& b) { return binary(BinaryOp::multiply, a, b); }
Tensor divide(const Tensor& a, const Tensor& b) { return binary(BinaryOp::divide, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::minimum, a, b); }
Tensor power(const Tensor& a, const Tensor& b) { return binary(BinaryOp::power, a, b); }
Tensor equal(const Tensor& a, const Tensor& b) { return binary(BinaryOp::equal, a, b); }
Tensor not_equal(const Tensor& a, const Tensor& b) { return binary(BinaryOp::not_equal, a, b); }
Tensor less(const Tensor& a, const Tensor& b) { return binary(BinaryOp::less, a, b); }
Tensor greater(const Tensor& a, const Tensor& b) { return binary(BinaryOp::greater, a, b); }
Tensor greater_equal(const Tensor& a, const Tensor& b) { return binary(BinaryOp::greater_equal, a, b); }
Tensor less_equal(const Tensor& a, const Tensor& b) { return binary(BinaryOp::less_equal, a, b); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return binary(BinaryOp::logical_and, a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return binary(BinaryOp::logical_or, a, b); }
// float32 and a scalar: one op (UnaryOp::affine), not a fill and a binary op.
Tensor add(const Tensor& a, Scalar b) {
  if (a.defined() && a.dtype() == DType::float32) return unary(UnaryOp::affine, a, {1.f, b.to_float()});
  return add(a, full({}, b, a.dtype(), a.backend()));
}
Tensor multiply(const Tensor& a, Scalar b) {
  if (a.defined() && a.dtype() == DType::float32) return unary(UnaryOp::affine, a, {b.to_float(), -0.f});
  return multiply(a, full({}, b, a.dtype(), a.backend()));
}

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  detail::check_defined("where", condition, "the condition");
  detail::check_defined("where", a, "the first operand");
  detail::check_defined("where", b, "the second operand");
  Backend& be = detail::common_backend("where", {&condition, &a, &b});
  KCPP_CHECK(condition.dtype() == DType::bool_, TypeError, "where: expected a bool condition, received dtype {}",
             dtype_name(condition.dtype()));
  if (auto low = detail::emulated_dtype({&a, &b}, OpFamily::elementwise);
      low && is_floating(a.dtype()) && is_floating(b.dtype()))
    return detail::narrow(where(condition, detail::widen(a), detail::widen(b)), *low);
  KCPP_CHECK(a.dtype() == b.dtype(), TypeError, "where: operands must share a dtype, received {} and {}",
             dtype_name(a.dtype()), dtype_name(b.dtype()));
  const Shape out_shape = broadcast_shapes(condition.shape(), broadcast_shapes(a.shape(), b.shape()));
  Tensor y = Tensor::empty(out_shape, a.dtype(), &be);
  be.where(condition, a, b, y);
  if (!needs_recording({a, b})) return y;
  record("where", {condition, a, b}, {&y}, [condition, a, b](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
    const Tensor zero = zeros({}, gs[0].dtype(), gs[0].backend());
    return {Tensor(), detail::reduce_to(where(condition, gs[0], zero), a.shape()),
            detail::reduce_to(where(condition, zero, gs[0]), b.shape())};
  });
  return y;
}

}  // namespace keras::ops

namespace keras {
Tensor operator+(const Tensor& a, const Tensor& b) { return ops::add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return ops::subtract(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return ops::multiply(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return ops::divide(a, b); }
Tensor operator-(const Tensor& a) { return ops::negative(a); }
Tensor operator*(const Tensor& a, float b) { return ops::multiply(a, b); }
Tensor operator*(float a, const Tensor& b) { return ops::multiply(b, a); }
Tensor operator+(const Tensor& a, float b) { return ops::add(a, b); }
Tensor operator+(float a, const Tensor& b) { return ops::add(b, a); }
Tensor operator-(const Tensor& a, float b) { return ops::add(a, -b); }
Tensor operator-(float a, const Tensor& b) {
  if (b.defined() && b.dtype() == DType::float32) return ops::unary(UnaryOp::affine, b, {-1.f, a});
  return ops::add(ops::negative(b), a);
}
}  // namespace keras
