#include "models/datasets/data_utils.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "core/check.h"
#include "core/ops.h"
#include "core/random.h"

namespace keras::utils {

Tensor to_categorical(const Tensor& labels, std::optional<int64_t> num_classes) {
  KCPP_CHECK(labels.defined(), ValueError, "to_categorical: the labels are undefined");
  const auto values = ops::cast(labels, DType::int64).to_vector<int64_t>();
  std::vector<int64_t> dims = labels.shape().dims();
  if (!dims.empty() && dims.back() == 1) dims.pop_back();  // (N, 1) labels, as Keras
  int64_t classes = 0;
  for (int64_t v : values) {
    KCPP_CHECK(v >= 0, ValueError, "to_categorical: expected labels >= 0, received {}", v);
    classes = std::max(classes, v + 1);
  }
  if (num_classes) {
    KCPP_CHECK(*num_classes > 0, ValueError, "to_categorical: expected num_classes > 0, received {}", *num_classes);
    for (int64_t v : values)
      KCPP_CHECK(v < *num_classes, ValueError, "to_categorical: label {} is out of range for num_classes={}", v,
                 *num_classes);
    classes = *num_classes;
  }
  dims.push_back(classes);
  const Shape out_shape(dims);  // overflow-checked
  std::vector<float> out(static_cast<size_t>(out_shape.num_elements()), 0.f);
  for (size_t i = 0; i < values.size(); ++i) out[i * static_cast<size_t>(classes) + static_cast<size_t>(values[i])] = 1.f;
  return ops::to_backend(Tensor::from_vector(out, out_shape), *labels.backend());
}

Tensor normalize(const Tensor& x, int64_t axis, int order) {
  KCPP_CHECK(order == 1 || order == 2, ValueError, "normalize: expected order 1 or 2, received {}", order);
  const Tensor xf = is_floating(x.dtype()) ? x : ops::cast(x, DType::float32);
  const Tensor norm = order == 2 ? ops::sqrt(ops::sum(ops::square(xf), {axis}, true))
                                 : ops::sum(ops::abs(xf), {axis}, true);
  // Zero vectors stay zero: divide by 1 where the norm is 0.
  const Tensor safe = ops::where(ops::equal(norm, ops::zeros_like(norm)), ops::ones_like(norm), norm);
  return xf / safe;
}

std::pair<std::vector<Tensor>, std::vector<Tensor>> split_dataset(const std::vector<Tensor>& arrays, double left_size,
                                                                  bool shuffle, std::optional<uint64_t> seed) {
  KCPP_CHECK(!arrays.empty(), ValueError, "split_dataset: expected at least one array");
  const int64_t n = arrays[0].rank() > 0 ? arrays[0].dim(0) : 0;
  for (const Tensor& a : arrays)
    KCPP_CHECK(a.rank() > 0 && a.dim(0) == n, ValueError,
               "split_dataset: every array must have {} samples on its first axis, received shape {}", n,
               a.shape().to_string());
  int64_t left = 0;
  if (left_size > 0 && left_size < 1)
    left = static_cast<int64_t>(static_cast<double>(n) * left_size);  // Keras rounds down
  else if (left_size >= 1 && left_size == static_cast<double>(static_cast<int64_t>(left_size)))
    left = static_cast<int64_t>(left_size);
  else
    throw ValueError(fmt::format("split_dataset: expected left_size to be a fraction in (0, 1) or a sample count, "
                                 "received {}", left_size));
  KCPP_CHECK(left > 0 && left < n, ValueError,
             "split_dataset: left_size {} leaves an empty side with {} samples (left {}, right {})", left_size, n, left,
             n - left);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  if (shuffle) {
    std::mt19937_64 gen(random::make_key(seed));
    std::shuffle(order.begin(), order.end(), gen);
  }
  const Tensor left_idx = Tensor::from_vector(std::vector<int64_t>(order.begin(), order.begin() + left), Shape{left});
  const Tensor right_idx =
      Tensor::from_vector(std::vector<int64_t>(order.begin() + left, order.end()), Shape{n - left});
  std::pair<std::vector<Tensor>, std::vector<Tensor>> out;
  for (const Tensor& a : arrays) {
    out.first.push_back(ops::take(a, ops::to_backend(left_idx, *a.backend()), 0));
    out.second.push_back(ops::take(a, ops::to_backend(right_idx, *a.backend()), 0));
  }
  return out;
}

Tensor pad_sequences(const std::vector<std::vector<int64_t>>& sequences, const PadSequencesOptions& o) {
  KCPP_CHECK(o.padding == "pre" || o.padding == "post", ValueError,
             "pad_sequences: padding must be \"pre\" or \"post\", received \"{}\"", o.padding);
  KCPP_CHECK(o.truncating == "pre" || o.truncating == "post", ValueError,
             "pad_sequences: truncating must be \"pre\" or \"post\", received \"{}\"", o.truncating);
  int64_t longest = 0;
  for (const auto& s : sequences) longest = std::max(longest, static_cast<int64_t>(s.size()));
  const int64_t len = o.maxlen.value_or(longest);
  KCPP_CHECK(len >= 0, ValueError, "pad_sequences: expected maxlen >= 0, received {}", len);
  const auto n = static_cast<int64_t>(sequences.size());
  std::vector<int32_t> out(static_cast<size_t>(n * len), o.value);
  for (int64_t i = 0; i < n; ++i) {
    const auto& s = sequences[static_cast<size_t>(i)];
    const int64_t size = static_cast<int64_t>(s.size());
    const int64_t kept = std::min(size, len);
    const int64_t from = o.truncating == "pre" ? size - kept : 0;  // first element kept
    const int64_t to = o.padding == "pre" ? len - kept : 0;        // where it goes
    for (int64_t k = 0; k < kept; ++k) {
      const int64_t v = s[static_cast<size_t>(from + k)];
      KCPP_CHECK(v >= INT32_MIN && v <= INT32_MAX, ValueError,
                 "pad_sequences: sequence {} holds {}, which does not fit int32", i, v);
      out[static_cast<size_t>(i * len + to + k)] = static_cast<int32_t>(v);
    }
  }
  return Tensor::from_vector(out, Shape{n, len});
}

}  // namespace keras::utils
