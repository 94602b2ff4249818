#include "layers/preprocessing/normalization.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

namespace {
constexpr float kEpsilon = 1e-7f;  // Keras' backend.epsilon(): the smallest divisor

// Keras' config writes numpy's tolist(): null, a number, or (nested) lists; read here flattened.
void flatten_numbers(const Config& c, std::vector<float>& out, const std::string& key) {
  if (c.is_number()) {
    out.push_back(c.get<float>());
  } else if (c.is_array()) {
    for (const Config& v : c) flatten_numbers(v, out, key);
  } else {
    throw ValueError(fmt::format("Normalization config: expected numbers in \"{}\", received {}", key, c.dump()));
  }
}
}  // namespace

Normalization::Normalization(NormalizationOptions o) : Layer("Normalization", o.name), o_(std::move(o)) {
  KCPP_CHECK(o_.mean.has_value() == o_.variance.has_value(), ValueError,
             "Normalization: when setting values directly, both mean and variance must be set, received {} and {}",
             o_.mean ? "a mean" : "no mean", o_.variance ? "a variance" : "no variance");
  if (o_.mean) {
    KCPP_CHECK(o_.mean->size() == o_.variance->size() && !o_.mean->empty(), ValueError,
               "Normalization: expected a mean and a variance of the same, non-zero size, received {} and {} values",
               o_.mean->size(), o_.variance->size());
    for (float v : *o_.variance)
      KCPP_CHECK(v >= 0 && std::isfinite(v), ValueError, "Normalization: expected variances >= 0, received {}", v);
  }
}

std::vector<int64_t> Normalization::keep_axes(size_t rank) const {
  const auto r = static_cast<int64_t>(rank);
  std::vector<int64_t> axes;
  for (int64_t a : o_.axis) {
    if (a < -r || a >= r)
      throw input_error(fmt::format("all axis values must be in the range [-{}, {}), received axis {}", r, r, a));
    const int64_t n = a < 0 ? a + r : a;
    if (std::find(axes.begin(), axes.end(), n) == axes.end()) axes.push_back(n);
  }
  std::sort(axes.begin(), axes.end());
  return axes;
}

void Normalization::check_input(const PartialShape& s) const {
  if (built() && s.size() != built_shape_.size())
    throw input_error(fmt::format("expected an input of rank {} (built for {}), received shape {}", built_shape_.size(),
                                  shape_to_string(built_shape_), shape_to_string(s)));
  for (int64_t a : keep_axes(s.size())) {
    const auto& d = s[static_cast<size_t>(a)];
    if (!d) throw input_error(fmt::format("the kept axis {} must have a known size, received an unknown one", a));
    if (built() && built_shape_[static_cast<size_t>(a)] != d)
      throw input_error(fmt::format("expected size {} on axis {}, received {}", *built_shape_[static_cast<size_t>(a)],
                                    a, *d));
  }
}

Shape Normalization::broadcast_shape(const PartialShape& s) const {
  std::vector<int64_t> dims(s.size(), 1);
  for (int64_t a : keep_axes(s.size())) dims[static_cast<size_t>(a)] = *s[static_cast<size_t>(a)];
  return Shape(dims);
}

void Normalization::build(const PartialShape& s) {
  built_shape_ = s;
  const Shape broadcast = broadcast_shape(s);
  std::vector<int64_t> kept;  // the statistics' shape: the kept axes' sizes
  for (int64_t a : keep_axes(s.size())) kept.push_back(*s[static_cast<size_t>(a)]);
  if (!o_.mean) {
    mean_ = &add_weight("mean", Shape(kept), "zeros", false);
    variance_ = &add_weight("variance", Shape(kept), "ones", false);
    // Keras keeps an int32 count (never updated since Keras 3) for older files' sake.
    count_ = &add_weight("count", Shape{}, Initializer("zeros", [](const Shape& shape) {
                           return ops::zeros(shape, DType::int32);
                         }),
                         false);
    return;
  }
  // Given statistics: one value, one per position of the last kept axis, or one per kept position.
  const auto n = static_cast<int64_t>(o_.mean->size());
  std::vector<int64_t> placed(s.size(), 1);
  if (n == broadcast.num_elements()) {
    placed = broadcast.dims();
  } else if (!kept.empty() && n == kept.back()) {
    placed[static_cast<size_t>(keep_axes(s.size()).back())] = n;
  } else if (n != 1) {
    throw input_error(fmt::format("expected a mean and variance of 1, {} or {} values for kept axes of sizes {}, "
                                  "received {}",
                                  kept.empty() ? 1 : kept.back(), broadcast.num_elements(), Shape(kept).to_string(), n));
  }
  given_mean_ = ops::broadcast_to(Tensor::from_vector(*o_.mean, Shape(placed)), broadcast);
  given_variance_ = ops::broadcast_to(Tensor::from_vector(*o_.variance, Shape(placed)), broadcast);
}

Tensor Normalization::call(const Tensor& x, bool) {
  const DType dtype = compute_dtype();
  const Tensor xf = x.dtype() == dtype ? x : ops::cast(x, dtype);
  PartialShape s;
  for (int64_t d : x.shape().dims()) s.emplace_back(d);
  const Shape broadcast = broadcast_shape(s);
  Tensor mean = mean_ ? ops::reshape(mean_->value(), broadcast.dims()) : given_mean_;
  Tensor variance = variance_ ? ops::reshape(variance_->value(), broadcast.dims()) : given_variance_;
  if (mean.backend() != xf.backend()) {
    mean = ops::to_backend(mean, *xf.backend());
    variance = ops::to_backend(variance, *xf.backend());
  }
  if (mean.dtype() != dtype) {
    mean = ops::cast(mean, dtype);
    variance = ops::cast(variance, dtype);
  }
  const Tensor scale = ops::maximum(ops::sqrt(variance), ops::full_like(variance, kEpsilon));
  return o_.invert ? mean + xf * scale : (xf - mean) / scale;
}

void Normalization::check_adapt_shape(const Tensor& batch) const {
  KCPP_CHECK(is_floating(batch.dtype()) || batch.dtype() == DType::int32 || batch.dtype() == DType::int64, TypeError,
             "Normalization.adapt: expected numeric data, received dtype {}", dtype_name(batch.dtype()));
  KCPP_CHECK(batch.rank() == built_shape_.size(), ValueError,
             "Normalization.adapt: the layer was built for inputs of rank {}, received data of shape {}",
             built_shape_.size(), batch.shape().to_string());
  for (int64_t a : keep_axes(batch.rank()))
    KCPP_CHECK(built_shape_[static_cast<size_t>(a)] == batch.dim(a), ValueError,
               "Normalization.adapt: the layer was built for inputs of shape {}, received data of shape {}",
               shape_to_string(built_shape_), batch.shape().to_string());
}

void Normalization::assign_statistics(const Tensor& mean, const Tensor& variance) {
  mean_->assign(ops::to_backend(mean, *mean_->value().backend()));
  variance_->assign(ops::to_backend(variance, *variance_->value().backend()));
}

void Normalization::adapt(const Tensor& data) { adapt(std::vector<Tensor>{data}); }

void Normalization::adapt(const std::vector<Tensor>& batches) {
  KCPP_CHECK(!batches.empty(), ValueError, "Normalization.adapt: expected at least one batch, received none");
  KCPP_CHECK(!o_.mean, ValueError, "Normalization.adapt: the layer was given its mean and variance; adapt() would "
                                   "learn them");
  NoGradScope no_grad;
  if (!built()) prepare(batches[0]);
  std::vector<int64_t> reduce;
  const auto keep = keep_axes(built_shape_.size());
  for (int64_t d = 0; d < static_cast<int64_t>(built_shape_.size()); ++d)
    if (std::find(keep.begin(), keep.end(), d) == keep.end()) reduce.push_back(d);
  const Shape stat_shape = mean_->shape();
  Tensor total_mean, total_var;
  int64_t total_count = 0;
  for (const Tensor& raw : batches) {
    check_adapt_shape(raw);
    const Tensor b = ops::cast(raw, DType::float32);
    // Population statistics of the batch over the reduced axes (numpy's mean and var).
    const Tensor m = ops::mean(b, reduce, true);
    const Tensor v = ops::reshape(ops::mean(ops::square(b - m), reduce), stat_shape.dims());
    const Tensor batch_mean = ops::reshape(m, stat_shape.dims());
    int64_t batch_count = 1;
    for (int64_t d : reduce) batch_count *= raw.dim(d);
    if (total_count == 0) {  // the first batch (Keras' array path: the only one) as it is
      total_mean = batch_mean;
      total_var = v;
      total_count = batch_count;
      continue;
    }
    // Keras' dataset path: weighted merge of the running and the batch's statistics.
    total_count += batch_count;
    const float batch_weight = static_cast<float>(batch_count) / static_cast<float>(total_count);
    const float existing_weight = 1.f - batch_weight;
    const Tensor new_mean = total_mean * existing_weight + batch_mean * batch_weight;
    total_var = (total_var + ops::square(total_mean - new_mean)) * existing_weight +
                (v + ops::square(batch_mean - new_mean)) * batch_weight;
    total_mean = new_mean;
  }
  assign_statistics(total_mean, total_var);
}

Config Normalization::get_config() const {
  Config c = Layer::get_config();
  c["axis"] = Config(o_.axis);
  c["invert"] = o_.invert;
  c["mean"] = o_.mean ? Config(*o_.mean) : Config();
  c["variance"] = o_.variance ? Config(*o_.variance) : Config();
  return c;
}

std::shared_ptr<Layer> Normalization::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Normalization config");
  NormalizationOptions o;
  o.name = r.name();
  if (!r.has("axis") && config.contains("axis")) {
    o.axis.clear();  // null: Keras' axis=None
  } else if (r.has("axis")) {
    o.axis = r.raw("axis").is_array() ? r.int_list("axis") : std::vector<int64_t>{r.integer("axis")};
  }
  o.invert = r.boolean("invert", false);
  for (const char* key : {"mean", "variance"}) {
    if (!r.has(key)) continue;
    std::vector<float> values;
    flatten_numbers(r.raw(key), values, key);
    (std::string(key) == "mean" ? o.mean : o.variance) = std::move(values);
  }
  auto layer = std::make_shared<Normalization>(std::move(o));
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
