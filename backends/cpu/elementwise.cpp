// Elementwise ops: oneDNN eltwise for large float tensors, vectorizable loops otherwise.
#include <cmath>
#include <cstring>
#include <optional>

#include "backends/cpu/cpu_backend.h"

namespace keras::cpu {
namespace {

constexpr int64_t kEltwiseThreshold = 1 << 15;  // below this a plain loop beats a primitive call

std::optional<std::tuple<dnnl::algorithm, float, float>> dnnl_eltwise(UnaryOp op, const UnaryAttrs& at) {
  using A = dnnl::algorithm;
  switch (op) {
    case UnaryOp::relu:
      return std::tuple{A::eltwise_relu, 0.f, 0.f};
    case UnaryOp::leaky_relu:
      return std::tuple{A::eltwise_relu, at.alpha, 0.f};
    case UnaryOp::relu6:
      return std::tuple{A::eltwise_clip_v2, 0.f, 6.f};
    case UnaryOp::clip:
      return std::tuple{A::eltwise_clip_v2, at.alpha, at.beta};
    case UnaryOp::elu:
      return std::tuple{A::eltwise_elu, at.alpha, 0.f};
    case UnaryOp::tanh:
      return std::tuple{A::eltwise_tanh, 0.f, 0.f};
    case UnaryOp::sigmoid:
      return std::tuple{A::eltwise_logistic, 0.f, 0.f};
    case UnaryOp::exp:
      return std::tuple{A::eltwise_exp, 0.f, 0.f};
    case UnaryOp::log:
      return std::tuple{A::eltwise_log, 0.f, 0.f};
    case UnaryOp::sqrt:
      return std::tuple{A::eltwise_sqrt, 0.f, 0.f};
    case UnaryOp::square:
      return std::tuple{A::eltwise_square, 0.f, 0.f};
    case UnaryOp::abs:
      return std::tuple{A::eltwise_abs, 0.f, 0.f};
    case UnaryOp::gelu:
      return std::tuple{A::eltwise_gelu_erf, 0.f, 0.f};
    case UnaryOp::gelu_tanh:
      return std::tuple{A::eltwise_gelu_tanh, 0.f, 0.f};
    case UnaryOp::softplus:
      return std::tuple{A::eltwise_soft_relu, 0.f, 0.f};
    case UnaryOp::swish:
      return std::tuple{A::eltwise_swish, 1.f, 0.f};
    default:
      return std::nullopt;
  }
}

float unary_scalar(UnaryOp op, float x, const UnaryAttrs& at) {
  switch (op) {
    case UnaryOp::identity:
      return x;
    case UnaryOp::negative:
      return -x;
    case UnaryOp::abs:
      return std::fabs(x);
    case UnaryOp::sign:
      return static_cast<float>((x > 0) - (x < 0));
    case UnaryOp::square:
      return x * x;
    case UnaryOp::sqrt:
      return std::sqrt(x);
    case UnaryOp::rsqrt:
      return 1.f / std::sqrt(x);
    case UnaryOp::reciprocal:
      return 1.f / x;
    case UnaryOp::exp:
      return std::exp(x);
    case UnaryOp::expm1:
      return std::expm1(x);
    case UnaryOp::log:
      return std::log(x);
    case UnaryOp::log1p:
      return std::log1p(x);
    case UnaryOp::sin:
      return std::sin(x);
    case UnaryOp::cos:
      return std::cos(x);
    case UnaryOp::tanh:
      return std::tanh(x);
    case UnaryOp::sigmoid:
      return 1.f / (1.f + std::exp(-x));
    case UnaryOp::relu:
      return x > 0 ? x : 0.f;
    case UnaryOp::relu6:
      return std::min(std::max(x, 0.f), 6.f);
    case UnaryOp::leaky_relu:
      return x > 0 ? x : at.alpha * x;
    case UnaryOp::elu:
      return x > 0 ? x : at.alpha * std::expm1(x);
    case UnaryOp::selu: {
      constexpr float alpha = 1.6732632423543772f, scale = 1.0507009873554805f;
      return x > 0 ? scale * x : scale * alpha * std::expm1(x);
    }
    case UnaryOp::gelu:
      return 0.5f * x * (1.f + std::erf(x * 0.70710678118654752f));
    case UnaryOp::gelu_tanh: {
      const float c = 0.79788456080286536f;  // sqrt(2 / pi)
      return 0.5f * x * (1.f + std::tanh(c * (x + 0.044715f * x * x * x)));
    }
    case UnaryOp::softplus:
      return x > 20.f ? x : std::log1p(std::exp(x));
    case UnaryOp::softsign:
      return x / (1.f + std::fabs(x));
    case UnaryOp::swish:
      return x / (1.f + std::exp(-x));
    case UnaryOp::hard_sigmoid:
      return std::min(std::max(x + 3.f, 0.f), 6.f) / 6.f;
    case UnaryOp::erf:
      return std::erf(x);
    case UnaryOp::floor:
      return std::floor(x);
    case UnaryOp::ceil:
      return std::ceil(x);
    case UnaryOp::round:
      return std::nearbyint(x);  // half to even, as numpy.round
    case UnaryOp::clip:
      return std::min(std::max(x, at.alpha), at.beta);
    case UnaryOp::affine:
      return at.alpha * x + at.beta;
    case UnaryOp::logical_not:
      return x == 0.f ? 1.f : 0.f;
  }
  return x;
}

template <typename T>
T unary_integer(UnaryOp op, T x) {
  switch (op) {
    case UnaryOp::identity:
      return x;
    case UnaryOp::negative:
      return static_cast<T>(-x);
    case UnaryOp::abs:
      return x < 0 ? static_cast<T>(-x) : x;
    case UnaryOp::sign:
      return static_cast<T>((x > 0) - (x < 0));
    case UnaryOp::square:
      return static_cast<T>(x * x);
    case UnaryOp::logical_not:
      return static_cast<T>(!x);
    default:
      throw TypeError(fmt::format("cpu backend: {} needs a floating-point tensor", unary_op_name(op)));
  }
}

// Applies f over the broadcast of a and b into y.
template <typename T, typename R, typename F>
void broadcast_apply(const Tensor& a, const Tensor& b, Tensor& y, F f) {
  const T* pa = static_cast<const T*>(a.raw_data());
  const T* pb = static_cast<const T*>(b.raw_data());
  R* py = static_cast<R*>(y.raw_data());
  const Shape& ys = y.shape();
  const int64_t n = ys.num_elements();
  if (n == 0) return;
  if (a.shape() == ys && b.shape() == ys) {
    parallel_for(n, [&](int64_t i) { py[i] = f(pa[i], pb[i]); });
    return;
  }
  if (b.num_elements() == 1 && a.shape() == ys) {
    const T bv = pb[0];
    parallel_for(n, [&](int64_t i) { py[i] = f(pa[i], bv); });
    return;
  }
  if (a.num_elements() == 1 && b.shape() == ys) {
    const T av = pa[0];
    parallel_for(n, [&](int64_t i) { py[i] = f(av, pb[i]); });
    return;
  }
  const size_t r = ys.rank();
  const auto sa = broadcast_strides(a.shape(), ys), sb = broadcast_strides(b.shape(), ys);
  const int64_t inner = ys[r - 1], outer = n / inner;
  const int64_t ia = sa[r - 1], ib = sb[r - 1];
  parallel_for(
      outer,
      [&](int64_t o) {
        int64_t oa = 0, ob = 0, rest = o;
        for (size_t d = r - 1; d-- > 0;) {
          const int64_t idx = rest % ys[d];
          rest /= ys[d];
          oa += idx * sa[d];
          ob += idx * sb[d];
        }
        R* out = py + o * inner;
        const T* ra = pa + oa;
        const T* rb = pb + ob;
        // Unit or zero strides get loops of their own, which the compiler vectorizes.
        if (ia == 1 && ib == 1)
          for (int64_t i = 0; i < inner; ++i) out[i] = f(ra[i], rb[i]);
        else if (ia == 1 && ib == 0)
          for (int64_t i = 0; i < inner; ++i) out[i] = f(ra[i], rb[0]);
        else if (ia == 0 && ib == 1)
          for (int64_t i = 0; i < inner; ++i) out[i] = f(ra[0], rb[i]);
        else
          for (int64_t i = 0; i < inner; ++i) out[i] = f(ra[i * ia], rb[i * ib]);
      },
      std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(inner, 1)));
}

template <typename T>
void binary_typed(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y) {
  using B = uint8_t;
  switch (op) {
    case BinaryOp::add:
      return broadcast_apply<T, T>(a, b, y, [](T u, T v) { return static_cast<T>(u + v); });
    case BinaryOp::subtract:
      return broadcast_apply<T, T>(a, b, y, [](T u, T v) { return static_cast<T>(u - v); });
    case BinaryOp::multiply:
      return broadcast_apply<T, T>(a, b, y, [](T u, T v) { return static_cast<T>(u * v); });
    case BinaryOp::divide:
      if constexpr (std::is_integral_v<T>) {
        // Integer division by zero is undefined behaviour in C++: refuse it with a clear error.
        const T* pb = static_cast<const T*>(b.raw_data());
        for (int64_t i = 0; i < b.num_elements(); ++i)
          KCPP_CHECK(pb[i] != 0, ValueError, "divide: integer division by zero (divisor element {})", i);
        return broadcast_apply<T, T>(a, b, y, [](T u, T v) { return static_cast<T>(u / v); });
      } else {
        return broadcast_apply<T, T>(a, b, y, [](T u, T v) { return u / v; });
      }
    case BinaryOp::maximum:
      return broadcast_apply<T, T>(a, b, y, [](T u, T v) { return u > v ? u : v; });
    case BinaryOp::minimum:
      return broadcast_apply<T, T>(a, b, y, [](T u, T v) { return u < v ? u : v; });
    case BinaryOp::power:
      return broadcast_apply<T, T>(
          a, b, y, [](T u, T v) { return static_cast<T>(std::pow(static_cast<double>(u), static_cast<double>(v))); });
    case BinaryOp::floor_mod:
      if constexpr (std::is_integral_v<T>) {
        const T* pb = static_cast<const T*>(b.raw_data());
        for (int64_t i = 0; i < b.num_elements(); ++i)
          KCPP_CHECK(pb[i] != 0, ValueError, "mod: integer modulo by zero (divisor element {})", i);
        return broadcast_apply<T, T>(a, b, y, [](T u, T v) {
          T m = static_cast<T>(u % v);
          if (m != 0 && ((m < 0) != (v < 0))) m = static_cast<T>(m + v);
          return m;
        });
      } else {
        return broadcast_apply<T, T>(a, b, y, [](T u, T v) { return u - std::floor(u / v) * v; });
      }
    case BinaryOp::equal:
      return broadcast_apply<T, B>(a, b, y, [](T u, T v) { return B(u == v); });
    case BinaryOp::not_equal:
      return broadcast_apply<T, B>(a, b, y, [](T u, T v) { return B(u != v); });
    case BinaryOp::less:
      return broadcast_apply<T, B>(a, b, y, [](T u, T v) { return B(u < v); });
    case BinaryOp::less_equal:
      return broadcast_apply<T, B>(a, b, y, [](T u, T v) { return B(u <= v); });
    case BinaryOp::greater:
      return broadcast_apply<T, B>(a, b, y, [](T u, T v) { return B(u > v); });
    case BinaryOp::greater_equal:
      return broadcast_apply<T, B>(a, b, y, [](T u, T v) { return B(u >= v); });
    case BinaryOp::logical_and:
      return broadcast_apply<T, B>(a, b, y, [](T u, T v) { return B(u && v); });
    case BinaryOp::logical_or:
      return broadcast_apply<T, B>(a, b, y, [](T u, T v) { return B(u || v); });
    case BinaryOp::relu_grad:
      return broadcast_apply<T, T>(a, b, y, [](T u, T v) { return v > T(0) ? u : T(0); });
  }
}

// IEEE half conversions, round to nearest even (bfloat16's are in cpu_backend.h).
uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  x &= 0x7fffffff;
  if (x >= 0x7f800000) return static_cast<uint16_t>(sign | 0x7c00 | (x > 0x7f800000 ? 0x200 : 0));
  if (x >= 0x477ff000) return static_cast<uint16_t>(sign | 0x7c00);  // overflow to inf
  if (x < 0x38800000) {                                              // subnormal or zero
    float a;
    std::memcpy(&a, &x, 4);
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(a * 16777216.f)));
  }
  const uint32_t mant_odd = (x >> 13) & 1;
  x += 0xc8000fff + mant_odd;  // rebias exponent and round to nearest even
  return static_cast<uint16_t>(sign | (x >> 13));
}
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float f;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    f = mant ? std::nanf("") : INFINITY;
  } else {
    const uint32_t u = ((exp + 112) << 23) | (mant << 13);
    std::memcpy(&f, &u, 4);
  }
  return sign ? -f : f;
}

// y[i] = f(x[i]) over storage of the given element types.
template <typename From, typename To, typename F>
void convert(const Tensor& x, Tensor& y, F f) {
  const From* px = static_cast<const From*>(x.raw_data());
  To* py = static_cast<To*>(y.raw_data());
  parallel_for(x.num_elements(), [&](int64_t i) { py[i] = f(px[i]); }, 1 << 15);
}

}  // namespace

void CpuBackend::fill(Tensor& y, Scalar value) {
  const int64_t n = y.num_elements();
  if (n == 0) return;
  if (y.dtype() == DType::float16 || y.dtype() == DType::bfloat16) {
    const uint16_t h = y.dtype() == DType::float16 ? float_to_half(value.to_float()) : float_to_bf16(value.to_float());
    uint16_t* p = static_cast<uint16_t*>(y.raw_data());
    parallel_for(n, [&](int64_t i) { p[i] = h; });
    return;
  }
  dispatch_dtype(y.dtype(), "fill", [&]<typename T>() {
    const T v = std::is_floating_point_v<T> ? static_cast<T>(value.to_double()) : static_cast<T>(value.to_int());
    T* p = static_cast<T*>(y.raw_data());
    if (v == T(0)) {
      std::memset(p, 0, static_cast<size_t>(n) * sizeof(T));
      return;
    }
    parallel_for(n, [&](int64_t i) { p[i] = v; });
  });
}

void CpuBackend::unary(UnaryOp op, const Tensor& x, Tensor& y, const UnaryAttrs& attrs) {
  const int64_t n = x.num_elements();
  const bool bf16 = x.dtype() == DType::bfloat16;
  if (x.dtype() != DType::float32 && !bf16) {
    dispatch_dtype(x.dtype(), unary_op_name(op), [&]<typename T>() {
      const T* px = static_cast<const T*>(x.raw_data());
      T* py = static_cast<T*>(y.raw_data());
      parallel_for(n, [&](int64_t i) { py[i] = unary_integer<T>(op, px[i]); });
    });
    return;
  }
  // Large float32 / bfloat16 tensors through oneDNN's eltwise (it computes in float, as the loop does).
  if (n >= kEltwiseThreshold && (!bf16 || bf16_eltwise_)) {
    if (auto alg = dnnl_eltwise(op, attrs)) {
      // Plain locals, not structured bindings: clang 14 cannot capture bindings in the lambda below.
      const auto algorithm = std::get<0>(*alg);
      const float alpha = std::get<1>(*alg), beta = std::get<2>(*alg);
      const auto type = bf16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
      const dnnl::memory::desc md({n}, type, dnnl::memory::format_tag::a);
      const std::string key = fmt::format("eltwise|{}|{}|{}|{}|{}", static_cast<int>(type), static_cast<int>(algorithm),
                                          alpha, beta, n);
      const auto& p = cached(key, [&] {
        CachedPrimitive c;
        auto d = dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, algorithm, md, alpha, beta);
        c.primitive = KCPP_DNNL(dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(d, user_scratchpad(), engine_)));
        return c;
      });
      execute(p, {{DNNL_ARG_SRC, dnnl::memory(md, engine_, x.raw_data())},
                  {DNNL_ARG_DST, dnnl::memory(md, engine_, y.raw_data())}});
      return;
    }
  }
  auto loop = [&]<typename T>() {  // float, or BFloat16 computing as float
    const T* px = static_cast<const T*>(x.raw_data());
    T* py = static_cast<T*>(y.raw_data());
    parallel_for(
        n, [&](int64_t i) { py[i] = unary_scalar(op, px[i], attrs); }, 1 << 12);
  };
  if (bf16)
    loop.template operator()<BFloat16>();
  else
    loop.template operator()<float>();
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y) {
  if (a.dtype() == DType::bfloat16) return binary_typed<BFloat16>(op, a, b, y);
  dispatch_dtype(a.dtype(), binary_op_name(op), [&]<typename T>() { binary_typed<T>(op, a, b, y); });
}

namespace {
// y = condition ? a : b over elements of type T, with broadcasting.
template <typename T>
void where_typed(const Tensor& condition, const Tensor& a, const Tensor& b, Tensor& y) {
  const Shape& ys = y.shape();
  const int64_t n = ys.num_elements();
  const uint8_t* pc = static_cast<const uint8_t*>(condition.raw_data());
  const T* pa = static_cast<const T*>(a.raw_data());
  const T* pb = static_cast<const T*>(b.raw_data());
  T* py = static_cast<T*>(y.raw_data());
  // Fast path: every operand is either full-size or a single value (relu's gradient, clipping).
  auto step = [&](const Tensor& t) -> int64_t { return t.shape() == ys ? 1 : (t.num_elements() == 1 ? 0 : -1); };
  const int64_t sc = step(condition), sa = step(a), sb = step(b);
  if (sc >= 0 && sa >= 0 && sb >= 0) {
    // Strides known at compile time, so the loop vectorizes (relu's gradient: full, full, scalar).
    auto run = [&]<int64_t C, int64_t A, int64_t B>() {
      parallel_for(n, [&](int64_t i) { py[i] = pc[i * C] ? pa[i * A] : pb[i * B]; });
    };
    switch (sc * 4 + sa * 2 + sb) {
      case 0:
        run.template operator()<0, 0, 0>();
        break;
      case 1:
        run.template operator()<0, 0, 1>();
        break;
      case 2:
        run.template operator()<0, 1, 0>();
        break;
      case 3:
        run.template operator()<0, 1, 1>();
        break;
      case 4:
        run.template operator()<1, 0, 0>();
        break;
      case 5:
        run.template operator()<1, 0, 1>();
        break;
      case 6:
        run.template operator()<1, 1, 0>();
        break;
      default:
        run.template operator()<1, 1, 1>();
        break;
    }
    return;
  }
  // General broadcasting: rows of the innermost axis, as broadcast_apply.
  const size_t r = ys.rank();
  const auto stc = broadcast_strides(condition.shape(), ys), sta = broadcast_strides(a.shape(), ys),
             stb = broadcast_strides(b.shape(), ys);
  const int64_t inner = ys[r - 1], outer = n / inner;
  parallel_for(
      outer,
      [&](int64_t o) {
        int64_t oc = 0, oa = 0, ob = 0, rest = o;
        for (size_t d = r - 1; d-- > 0;) {
          const int64_t idx = rest % ys[d];
          rest /= ys[d];
          oc += idx * stc[d];
          oa += idx * sta[d];
          ob += idx * stb[d];
        }
        T* out = py + o * inner;
        for (int64_t i = 0; i < inner; ++i)
          out[i] = pc[oc + i * stc[r - 1]] ? pa[oa + i * sta[r - 1]] : pb[ob + i * stb[r - 1]];
      },
      std::max<int64_t>(1, (1 << 14) / inner));
}

}  // namespace

void CpuBackend::where(const Tensor& condition, const Tensor& a, const Tensor& b, Tensor& y) {
  if (y.shape().num_elements() == 0) return;
  // Selection moves bits: bfloat16 and float16 travel as 16-bit integers.
  if (a.dtype() == DType::bfloat16 || a.dtype() == DType::float16) return where_typed<uint16_t>(condition, a, b, y);
  dispatch_dtype(a.dtype(), "where", [&]<typename T>() { where_typed<T>(condition, a, b, y); });
}

void CpuBackend::cast(const Tensor& x, Tensor& y) {
  const int64_t n = x.num_elements();
  const DType from = x.dtype(), to = y.dtype();
  // Half types go through float.
  auto read = [&](int64_t i) -> double {
    switch (from) {
      case DType::float32:
        return static_cast<const float*>(x.raw_data())[i];
      case DType::float16:
        return half_to_float(static_cast<const uint16_t*>(x.raw_data())[i]);
      case DType::bfloat16:
        return bf16_to_float(static_cast<const uint16_t*>(x.raw_data())[i]);
      case DType::int32:
        return static_cast<const int32_t*>(x.raw_data())[i];
      case DType::int64:
        return static_cast<double>(static_cast<const int64_t*>(x.raw_data())[i]);
      case DType::uint8:
        return static_cast<const uint8_t*>(x.raw_data())[i];
      case DType::bool_:
        return static_cast<const uint8_t*>(x.raw_data())[i] != 0;
    }
    return 0;
  };
  // Mixed precision casts every layer's inputs and variables: tight loops the compiler vectorizes.
  if (from == DType::float32 && to == DType::bfloat16)
    return convert<float, uint16_t>(x, y, [](float v) { return float_to_bf16(v); });
  if (from == DType::float32 && to == DType::float16)
    return convert<float, uint16_t>(x, y, [](float v) { return float_to_half(v); });
  if (from == DType::bfloat16 && to == DType::float32)
    return convert<uint16_t, float>(x, y, [](uint16_t v) { return bf16_to_float(v); });
  if (from == DType::float16 && to == DType::float32)
    return convert<uint16_t, float>(x, y, [](uint16_t v) { return half_to_float(v); });
  if (from == DType::int64 && to == DType::int32) {  // exact integer path, no double round trip
    const int64_t* px = static_cast<const int64_t*>(x.raw_data());
    int32_t* py = static_cast<int32_t*>(y.raw_data());
    parallel_for(n, [&](int64_t i) { py[i] = static_cast<int32_t>(px[i]); });
    return;
  }
  parallel_for(
      n,
      [&](int64_t i) {
        const double v = read(i);
        switch (to) {
          case DType::float32:
            static_cast<float*>(y.raw_data())[i] = static_cast<float>(v);
            break;
          case DType::float16:
            static_cast<uint16_t*>(y.raw_data())[i] = float_to_half(static_cast<float>(v));
            break;
          case DType::bfloat16:
            static_cast<uint16_t*>(y.raw_data())[i] = float_to_bf16(static_cast<float>(v));
            break;
          case DType::int32:
            static_cast<int32_t*>(y.raw_data())[i] =
                std::isfinite(v) ? static_cast<int32_t>(std::clamp(v, -2147483648.0, 2147483647.0)) : 0;
            break;
          case DType::int64:
            static_cast<int64_t*>(y.raw_data())[i] =
                from == DType::int32 || from == DType::uint8 || from == DType::bool_
                    ? static_cast<int64_t>(v)
                    : (std::isfinite(v) ? static_cast<int64_t>(std::clamp(v, -9.2e18, 9.2e18)) : 0);
            break;
          case DType::uint8:
            static_cast<uint8_t*>(y.raw_data())[i] =
                std::isfinite(v) ? static_cast<uint8_t>(std::clamp(v, 0.0, 255.0)) : 0;
            break;
          case DType::bool_:
            static_cast<uint8_t*>(y.raw_data())[i] = v != 0;
            break;
        }
      },
      1 << 12);
}

}  // namespace keras::cpu
