// Creation, conversion, random and dropout ops.
#include <map>
#include <mutex>
#include <tuple>

#include "core/ops_util.h"
#include "core/random.h"
#include "core/step_recording.h"
#include "core/variable.h"

namespace keras {

const char* unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::identity:
      return "identity";
    case UnaryOp::negative:
      return "negative";
    case UnaryOp::abs:
      return "abs";
    case UnaryOp::sign:
      return "sign";
    case UnaryOp::square:
      return "square";
    case UnaryOp::sqrt:
      return "sqrt";
    case UnaryOp::rsqrt:
      return "rsqrt";
    case UnaryOp::reciprocal:
      return "reciprocal";
    case UnaryOp::exp:
      return "exp";
    case UnaryOp::expm1:
      return "expm1";
    case UnaryOp::log:
      return "log";
    case UnaryOp::log1p:
      return "log1p";
    case UnaryOp::sin:
      return "sin";
    case UnaryOp::cos:
      return "cos";
    case UnaryOp::tanh:
      return "tanh";
    case UnaryOp::sigmoid:
      return "sigmoid";
    case UnaryOp::relu:
      return "relu";
    case UnaryOp::relu6:
      return "relu6";
    case UnaryOp::leaky_relu:
      return "leaky_relu";
    case UnaryOp::elu:
      return "elu";
    case UnaryOp::selu:
      return "selu";
    case UnaryOp::gelu:
      return "gelu";
    case UnaryOp::gelu_tanh:
      return "gelu_tanh";
    case UnaryOp::softplus:
      return "softplus";
    case UnaryOp::softsign:
      return "softsign";
    case UnaryOp::swish:
      return "swish";
    case UnaryOp::hard_sigmoid:
      return "hard_sigmoid";
    case UnaryOp::erf:
      return "erf";
    case UnaryOp::floor:
      return "floor";
    case UnaryOp::ceil:
      return "ceil";
    case UnaryOp::round:
      return "round";
    case UnaryOp::logical_not:
      return "logical_not";
    case UnaryOp::clip:
      return "clip";
    case UnaryOp::affine:
      return "affine";
  }
  return "unary";
}

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add:
      return "add";
    case BinaryOp::subtract:
      return "subtract";
    case BinaryOp::multiply:
      return "multiply";
    case BinaryOp::divide:
      return "divide";
    case BinaryOp::maximum:
      return "maximum";
    case BinaryOp::minimum:
      return "minimum";
    case BinaryOp::power:
      return "power";
    case BinaryOp::floor_mod:
      return "mod";
    case BinaryOp::equal:
      return "equal";
    case BinaryOp::not_equal:
      return "not_equal";
    case BinaryOp::less:
      return "less";
    case BinaryOp::less_equal:
      return "less_equal";
    case BinaryOp::greater:
      return "greater";
    case BinaryOp::greater_equal:
      return "greater_equal";
    case BinaryOp::relu_grad:
      return "relu_grad";
    case BinaryOp::logical_and:
      return "logical_and";
    case BinaryOp::logical_or:
      return "logical_or";
  }
  return "binary";
}

bool is_comparison(BinaryOp op) {
  return op == BinaryOp::equal || op == BinaryOp::not_equal || op == BinaryOp::less || op == BinaryOp::less_equal ||
         op == BinaryOp::greater || op == BinaryOp::greater_equal;
}

namespace ops {
using keras::detail::needs_recording;
using keras::detail::record;

Tensor full(const Shape& shape, Scalar value, DType dtype, Backend* backend) {
  Tensor y = Tensor::empty(shape, dtype, backend);
  y.backend()->fill(y, value);
  return y;
}
Tensor zeros(const Shape& shape, DType dtype, Backend* backend) { return full(shape, 0, dtype, backend); }
Tensor ones(const Shape& shape, DType dtype, Backend* backend) { return full(shape, 1, dtype, backend); }
Tensor zeros_like(const Tensor& x) { return zeros(x.shape(), x.dtype(), x.backend()); }
Tensor ones_like(const Tensor& x) { return ones(x.shape(), x.dtype(), x.backend()); }
Tensor full_like(const Tensor& x, Scalar value) { return full(x.shape(), value, x.dtype(), x.backend()); }

namespace {
// aranges made from the host, kept per backend, length and dtype. A copy from the host cannot be
// part of a recorded step (CUDA graphs), and on a GPU it waits for the device: attention's causal
// masks, sparse cross-entropy on probabilities and the top-k metrics copy a kept one on the device.
struct KeptAranges {
  std::mutex mutex;
  std::map<std::tuple<Backend*, int64_t, DType>, Tensor> by_key;
};
KeptAranges& kept_aranges() {
  static auto* kept = new KeptAranges;  // never destroyed, as the backends whose memory it holds
  return *kept;
}
}  // namespace

Tensor arange(int64_t n, DType dtype, Backend* backend) {
  KCPP_CHECK(n >= 0, ValueError, "arange: expected a non-negative length, received {}", n);
  Backend* be = backend ? backend : &default_backend();
  const auto key = std::make_tuple(be, n, dtype);
  KeptAranges& kept = kept_aranges();
  Tensor source;
  {
    std::lock_guard lock(kept.mutex);
    if (auto it = kept.by_key.find(key); it != kept.by_key.end()) source = it->second;
  }
  if (!source.defined()) {
    std::vector<int64_t> values(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) values[static_cast<size_t>(i)] = i;
    source = Tensor::from_vector(values, Shape{n}, be);
    if (dtype != DType::int64) source = cast(source, dtype);
    std::lock_guard lock(kept.mutex);
    if (kept.by_key.size() >= 256) kept.by_key.clear();  // lengths are few in practice; this bounds the rest
    kept.by_key.emplace(key, source);
  }
  return copy(source);  // the caller's own tensor: writing into it leaves the kept one as it is
}

Tensor copy(const Tensor& x) {
  detail::check_defined("copy", x, "the input");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.backend());
  if (x.nbytes()) x.backend()->copy(y.raw_data(), x.raw_data(), x.nbytes());
  if (needs_recording({x}))
    record("copy", {x}, {&y}, [](const std::vector<Tensor>& gs) -> std::vector<Tensor> { return {gs[0]}; });
  return y;
}

void copy_into(const Tensor& src, Tensor& dst) {
  detail::check_defined("copy_into", src, "the source");
  detail::check_defined("copy_into", dst, "the destination");
  KCPP_CHECK(src.shape() == dst.shape() && src.dtype() == dst.dtype(), ShapeError,
             "copy_into: expected a source of shape {} and dtype {}, received shape {} and dtype {}",
             dst.shape().to_string(), dtype_name(dst.dtype()), src.shape().to_string(), dtype_name(src.dtype()));
  dst.mark_modified();  // first: a copy that throws may have written part of dst
  if (src.backend() == dst.backend()) {
    if (src.nbytes()) dst.backend()->copy(dst.raw_data(), src.raw_data(), src.nbytes());
    return;
  }
  if (src.device().type == DeviceType::cpu) {  // host memory already (logical CPU devices): one copy
    if (src.nbytes()) dst.backend()->copy_from_host(dst.raw_data(), src.raw_data(), src.nbytes());
    return;
  }
  std::vector<char> host(src.nbytes());
  src.backend()->copy_to_host(host.data(), src.raw_data(), src.nbytes());
  dst.backend()->copy_from_host(dst.raw_data(), host.data(), src.nbytes());
}

Tensor to_backend(const Tensor& x, Backend& backend) {
  detail::check_defined("to_backend", x, "the input");
  if (x.backend() == &backend) return x;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), &backend);
  copy_into(x, y);
  return y;
}

Tensor cast(const Tensor& x, DType dtype) {
  detail::check_defined("cast", x, "the input");
  if (x.dtype() == dtype) return x;
  Tensor y = Tensor::empty(x.shape(), dtype, x.backend());
  x.backend()->cast(x, y);
  if (is_floating(x.dtype()) && is_floating(dtype) && needs_recording({x})) {
    const DType from = x.dtype();
    record("cast", {x}, {&y},
           [from](const std::vector<Tensor>& gs) -> std::vector<Tensor> { return {cast(gs[0], from)}; });
  }
  return y;
}

namespace {
Tensor random_tensor(RandomDistribution dist, const Shape& shape, float a, float b, const RandomKey& key,
                     Backend* backend) {
  Tensor y = Tensor::empty(shape, DType::float32, backend);
  y.backend()->random(dist, key, a, b, y);
  return y;
}

// The next key of a layer's generator. In a recorded step it lives on the device and is drawn anew
// before each replay: the same keys in the same order as steps run one by one.
RandomKey next_key(random::SeedGenerator& seeds, Backend* backend) {
  if (!keras::detail::recording_step()) return random::make_key(seeds.next());
  RandomKey key;
  key.on_device = Tensor::empty(Shape{}, DType::int64, backend);
  keras::detail::each_step([&seeds, on_device = key.on_device]() mutable {
    on_device.backend()->fill(on_device, static_cast<int64_t>(random::make_key(seeds.next())));
  });
  return key;
}
}  // namespace

Tensor random_uniform(const Shape& shape, float minval, float maxval, std::optional<uint64_t> seed, Backend* backend) {
  KCPP_CHECK(minval < maxval, ValueError, "random_uniform: expected minval < maxval, received minval={} and maxval={}",
             minval, maxval);
  return random_tensor(RandomDistribution::uniform, shape, minval, maxval, random::make_key(seed), backend);
}

Tensor random_uniform(const Shape& shape, float minval, float maxval, random::SeedGenerator& seeds, Backend* backend) {
  KCPP_CHECK(minval < maxval, ValueError, "random_uniform: expected minval < maxval, received minval={} and maxval={}",
             minval, maxval);
  Backend* be = backend ? backend : &default_backend();
  return random_tensor(RandomDistribution::uniform, shape, minval, maxval, next_key(seeds, be), be);
}

Tensor random_normal(const Shape& shape, float mean, float stddev, std::optional<uint64_t> seed, Backend* backend) {
  KCPP_CHECK(stddev >= 0, ValueError, "random_normal: expected stddev >= 0, received {}", stddev);
  return random_tensor(RandomDistribution::normal, shape, mean, stddev, random::make_key(seed), backend);
}

Tensor random_normal(const Shape& shape, float mean, float stddev, random::SeedGenerator& seeds, Backend* backend) {
  KCPP_CHECK(stddev >= 0, ValueError, "random_normal: expected stddev >= 0, received {}", stddev);
  Backend* be = backend ? backend : &default_backend();
  return random_tensor(RandomDistribution::normal, shape, mean, stddev, next_key(seeds, be), be);
}

Tensor truncated_normal(const Shape& shape, float mean, float stddev, std::optional<uint64_t> seed, Backend* backend) {
  KCPP_CHECK(stddev >= 0, ValueError, "truncated_normal: expected stddev >= 0, received {}", stddev);
  return random_tensor(RandomDistribution::truncated_normal, shape, mean, stddev, random::make_key(seed), backend);
}

namespace {
Tensor dropout_with_key(const Tensor& x, float rate, const RandomKey& key) {
  Tensor mask = Tensor::empty(x.shape(), DType::float32, x.backend());
  x.backend()->dropout_mask(rate, key, mask);
  return multiply(x, cast(mask, x.dtype()));
}
void check_dropout(const Tensor& x, float rate) {
  detail::check_float("dropout", x, "the input");
  KCPP_CHECK(rate >= 0.f && rate < 1.f, ValueError, "dropout: expected a rate in [0, 1), received {}", rate);
}

// A float32 (or int64) scalar on `backend` that a recorded update reads when it runs.
void check_on_device(const char* op, const std::string& variable, const Tensor& t, DType dtype, const Tensor& w,
                     const char* what) {
  KCPP_CHECK(t.num_elements() == 1 && t.dtype() == dtype && t.backend() == w.backend(), ValueError,
             "{} '{}': {} must be one {} element on {}, received {} on {}", op, variable, what, dtype_name(dtype),
             w.backend()->name(), t.to_string(), t.backend()->name());
}
}  // namespace

Tensor dropout(const Tensor& x, float rate, std::optional<uint64_t> seed) {
  check_dropout(x, rate);
  if (rate == 0.f) return x;
  return dropout_with_key(x, rate, random::make_key(seed));
}

Tensor dropout(const Tensor& x, float rate, random::SeedGenerator& seeds) {
  check_dropout(x, rate);
  if (rate == 0.f) return x;
  return dropout_with_key(x, rate, next_key(seeds, x.backend()));
}

void sgd_update(Variable& variable, const Tensor& gradient, Variable* momentum, const SGDAttrs& attrs) {
  Tensor w = variable.value();
  detail::check_float("sgd_update", w, "the variable");
  KCPP_CHECK(gradient.defined() && gradient.shape() == w.shape() && gradient.dtype() == w.dtype(), ShapeError,
             "sgd_update '{}': expected a float32 gradient of shape {}, received {}", variable.name(),
             w.shape().to_string(), gradient.to_string());
  Tensor m;
  if (attrs.momentum != 0.f) {
    KCPP_CHECK(momentum && momentum->shape() == w.shape(), ShapeError,
               "sgd_update '{}': momentum {} needs a momentum buffer of shape {}", variable.name(), attrs.momentum,
               w.shape().to_string());
    m = momentum->value();
  }
  detail::common_backend("sgd_update", {&w, &gradient, &m});
  if (attrs.learning_rate_on_device.defined())
    check_on_device("sgd_update", variable.name(), attrs.learning_rate_on_device, DType::float32, w,
                    "learning_rate_on_device");
  for (const Tensor* t : {&w, &m})
    if (t->defined()) t->mark_modified();
  w.backend()->sgd_update(w, gradient, m.defined() ? &m : nullptr, attrs);
}

void adam_update(Variable& variable, const Tensor& gradient, Variable& m, Variable& v, Variable* vhat,
                 const AdamAttrs& attrs) {
  Tensor w = variable.value();
  detail::check_float("adam_update", w, "the variable");
  KCPP_CHECK(gradient.defined() && gradient.shape() == w.shape() && gradient.dtype() == w.dtype(), ShapeError,
             "adam_update '{}': expected a float32 gradient of shape {}, received {}", variable.name(),
             w.shape().to_string(), gradient.to_string());
  KCPP_CHECK(m.shape() == w.shape() && v.shape() == w.shape(), ShapeError,
             "adam_update '{}': moment buffers must have shape {}", variable.name(), w.shape().to_string());
  KCPP_CHECK(!attrs.amsgrad || (vhat && vhat->shape() == w.shape()), ShapeError,
             "adam_update '{}': amsgrad needs a vhat buffer of shape {}", variable.name(), w.shape().to_string());
  KCPP_CHECK(attrs.step >= 1, ValueError, "adam_update '{}': expected step >= 1, received {}", variable.name(),
             attrs.step);
  Tensor mt = m.value(), vt = v.value(), vh = vhat ? vhat->value() : Tensor();
  detail::common_backend("adam_update", {&w, &gradient, &mt, &vt, &vh});
  if (attrs.step_size_on_device.defined())
    check_on_device("adam_update", variable.name(), attrs.step_size_on_device, DType::float32, w,
                    "step_size_on_device");
  for (const Tensor* t : {&w, &mt, &vt, &vh})
    if (t->defined()) t->mark_modified();
  w.backend()->adam_update(w, gradient, mt, vt, vh.defined() ? &vh : nullptr, attrs);
}

}  // namespace ops
}  // namespace keras
