// Shape and data-movement ops and their gradient rules.
#include <numeric>

#include "core/ops_util.h"

namespace keras::ops {
using keras::detail::needs_recording;
using keras::detail::record;

Tensor reshape(const Tensor& x, const std::vector<int64_t>& shape) {
  detail::check_defined("reshape", x, "the input");
  std::vector<int64_t> dims = shape;
  int64_t known = 1, inferred = -1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1) {
      KCPP_CHECK(inferred < 0, ValueError, "reshape: only one dimension may be -1, received ({})",
                 fmt::join(shape, ", "));
      inferred = static_cast<int64_t>(i);
    } else {
      KCPP_CHECK(dims[i] >= 0, ValueError, "reshape: invalid target shape ({}): negative dimension",
                 fmt::join(shape, ", "));
      known = checked_mul(known, dims[i], "reshape");
    }
  }
  if (inferred >= 0) {
    KCPP_CHECK(known > 0 && x.num_elements() % known == 0, ShapeError,
               "reshape: cannot reshape a tensor of shape {} ({} elements) into ({})", x.shape().to_string(),
               x.num_elements(), fmt::join(shape, ", "));
    dims[static_cast<size_t>(inferred)] = x.num_elements() / known;
  }
  KCPP_CHECK(Shape(dims).num_elements() == x.num_elements(), ShapeError,
             "reshape: cannot reshape a tensor of shape {} ({} elements) into ({})", x.shape().to_string(),
             x.num_elements(), fmt::join(shape, ", "));
  Tensor y = x.view(Shape(dims));
  if (needs_recording({x})) {
    const Shape in_shape = x.shape();
    record("reshape", {x}, {&y}, [in_shape](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
      return {reshape(gs[0], in_shape.dims())};
    });
  }
  return y;
}

Tensor transpose(const Tensor& x, std::vector<int64_t> perm) {
  detail::check_defined("transpose", x, "the input");
  const size_t r = x.rank();
  if (perm.empty())
    for (size_t i = 0; i < r; ++i) perm.push_back(static_cast<int64_t>(r - 1 - i));
  KCPP_CHECK(perm.size() == r, ShapeError, "transpose: expected {} axes for shape {}, received ({})", r,
             x.shape().to_string(), fmt::join(perm, ", "));
  std::vector<bool> seen(r, false);
  std::vector<int64_t> out(r);
  for (size_t i = 0; i < r; ++i) {
    const size_t a = x.shape().normalize_axis(perm[i]);
    KCPP_CHECK(!seen[a], ValueError, "transpose: ({}) is not a permutation", fmt::join(perm, ", "));
    seen[a] = true;
    perm[i] = static_cast<int64_t>(a);
    out[i] = x.shape()[a];
  }
  Tensor y = Tensor::empty(Shape(out), x.dtype(), x.backend());
  x.backend()->transpose(x, perm, y);
  if (needs_recording({x})) {
    std::vector<int64_t> inverse(r);
    for (size_t i = 0; i < r; ++i) inverse[static_cast<size_t>(perm[i])] = static_cast<int64_t>(i);
    record("transpose", {x}, {&y},
           [inverse](const std::vector<Tensor>& gs) -> std::vector<Tensor> { return {transpose(gs[0], inverse)}; });
  }
  return y;
}

Tensor expand_dims(const Tensor& x, int64_t axis) {
  detail::check_defined("expand_dims", x, "the input");
  const int64_t r = static_cast<int64_t>(x.rank()) + 1;
  KCPP_CHECK(axis >= -r && axis < r, ValueError, "expand_dims: axis {} is out of range for a result of rank {}", axis,
             r);
  if (axis < 0) axis += r;
  std::vector<int64_t> dims = x.shape().dims();
  dims.insert(dims.begin() + axis, 1);
  return reshape(x, dims);
}

Tensor squeeze(const Tensor& x, std::optional<int64_t> axis) {
  detail::check_defined("squeeze", x, "the input");
  std::vector<int64_t> dims;
  if (axis) {
    const size_t a = x.shape().normalize_axis(*axis);
    KCPP_CHECK(x.shape()[a] == 1, ShapeError, "squeeze: axis {} of shape {} has size {}, not 1", *axis,
               x.shape().to_string(), x.shape()[a]);
    dims = x.shape().dims();
    dims.erase(dims.begin() + static_cast<int64_t>(a));
  } else {
    for (int64_t d : x.shape().dims())
      if (d != 1) dims.push_back(d);
  }
  return reshape(x, dims);
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  detail::check_defined("broadcast_to", x, "the input");
  KCPP_CHECK(broadcast_shapes(x.shape(), shape) == shape, ShapeError, "broadcast_to: cannot broadcast shape {} to {}",
             x.shape().to_string(), shape.to_string());
  if (x.shape() == shape) return x;
  if (auto low = detail::emulated_dtype({&x}, OpFamily::elementwise))
    return detail::narrow(broadcast_to(detail::widen(x), shape), *low);
  // x + 0 written straight into an output of the target shape: the binary kernel broadcasts.
  Tensor y = Tensor::empty(shape, x.dtype(), x.backend());
  x.backend()->binary(x.dtype() == DType::bool_ ? BinaryOp::logical_or : BinaryOp::add, x,
                      zeros({}, x.dtype(), x.backend()), y);
  if (needs_recording({x})) {
    const Shape in_shape = x.shape();
    record("broadcast_to", {x}, {&y}, [in_shape](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
      return {detail::reduce_to(gs[0], in_shape)};
    });
  }
  return y;
}

Tensor concatenate(const std::vector<Tensor>& xs, int64_t axis) {
  KCPP_CHECK(!xs.empty(), ValueError, "concatenate: expected at least one tensor, received none");
  for (const Tensor& t : xs) detail::check_defined("concatenate", t, "an input");
  const Tensor& first = xs[0];
  const size_t a = first.shape().normalize_axis(axis);
  std::vector<int64_t> out = first.shape().dims();
  out[a] = 0;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    KCPP_CHECK(t.backend() == first.backend(), ValueError, "concatenate: all inputs must be on one backend");
    KCPP_CHECK(t.dtype() == first.dtype(), TypeError, "concatenate: input {} has dtype {}, expected {}", i,
               dtype_name(t.dtype()), dtype_name(first.dtype()));
    bool ok = t.rank() == first.rank();
    for (size_t d = 0; ok && d < t.rank(); ++d) ok = d == a || t.shape()[d] == first.shape()[d];
    KCPP_CHECK(ok, ShapeError, "concatenate: all inputs must match except on axis {}, received shapes {} and {}", axis,
               first.shape().to_string(), t.shape().to_string());
    out[a] += t.shape()[a];
    sizes.push_back(t.shape()[a]);
  }
  Tensor y = Tensor::empty(Shape(out), first.dtype(), first.backend());
  first.backend()->concat(xs, static_cast<int64_t>(a), y);
  if (needs_recording(xs)) {
    record("concatenate", xs, {&y}, [sizes, a](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
      return split(gs[0], sizes, static_cast<int64_t>(a));
    });
  }
  return y;
}

Tensor slice(const Tensor& x, const std::vector<int64_t>& starts, const std::vector<int64_t>& sizes) {
  detail::check_defined("slice", x, "the input");
  KCPP_CHECK(starts.size() == x.rank() && sizes.size() == x.rank(), ShapeError,
             "slice: expected {} starts and sizes for shape {}, received {} and {}", x.rank(), x.shape().to_string(),
             starts.size(), sizes.size());
  std::vector<int64_t> out(x.rank());
  for (size_t i = 0; i < x.rank(); ++i) {
    const int64_t d = x.shape()[i];
    out[i] = sizes[i] == -1 ? d - starts[i] : sizes[i];
    KCPP_CHECK(starts[i] >= 0 && out[i] >= 0 && starts[i] <= d && out[i] <= d - starts[i], ValueError,
               "slice: start {} size {} is out of range for axis {} of shape {}", starts[i], sizes[i], i,
               x.shape().to_string());
  }
  Tensor y = Tensor::empty(Shape(out), x.dtype(), x.backend());
  x.backend()->slice(x, starts, y);
  if (needs_recording({x})) {
    const Shape in_shape = x.shape();
    record("slice", {x}, {&y}, [in_shape, starts](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
      // The adjoint of slice: the gradient written into zeros.
      Tensor dx = zeros(in_shape, gs[0].dtype(), gs[0].backend());
      dx.backend()->slice_assign(gs[0], starts, dx);
      return {dx};
    });
  }
  return y;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis) {
  detail::check_defined("split", x, "the input");
  const size_t a = x.shape().normalize_axis(axis);
  const int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
  KCPP_CHECK(total == x.shape()[a], ShapeError, "split: sizes ({}) add up to {}, but axis {} of shape {} has size {}",
             fmt::join(sizes, ", "), total, axis, x.shape().to_string(), x.shape()[a]);
  std::vector<Tensor> out;
  std::vector<int64_t> starts(x.rank(), 0), extent = x.shape().dims();
  for (int64_t s : sizes) {
    extent[a] = s;
    out.push_back(slice(x, starts, extent));
    starts[a] += s;
  }
  return out;
}

Tensor pad(const Tensor& x, const std::vector<std::array<int64_t, 2>>& pads, Scalar value) {
  detail::check_defined("pad", x, "the input");
  KCPP_CHECK(pads.size() == x.rank(), ShapeError, "pad: expected {} (before, after) pairs for shape {}, received {}",
             x.rank(), x.shape().to_string(), pads.size());
  std::vector<int64_t> out(x.rank()), starts(x.rank());
  for (size_t i = 0; i < x.rank(); ++i) {
    KCPP_CHECK(pads[i][0] >= 0 && pads[i][1] >= 0, ValueError,
               "pad: paddings must be non-negative, received ({}, {}) for axis {}", pads[i][0], pads[i][1], i);
    out[i] = x.shape()[i] + pads[i][0] + pads[i][1];
    starts[i] = pads[i][0];
  }
  Tensor y = Tensor::empty(Shape(out), x.dtype(), x.backend());
  x.backend()->pad(x, pads, value, y);
  if (needs_recording({x})) {
    const Shape in_shape = x.shape();
    record("pad", {x}, {&y}, [in_shape, starts](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
      return {slice(gs[0], starts, in_shape.dims())};
    });
  }
  return y;
}

Tensor take(const Tensor& x, const Tensor& indices, int64_t axis) {
  detail::check_defined("take", x, "the input");
  detail::check_defined("take", indices, "the indices");
  detail::common_backend("take", {&x, &indices});
  KCPP_CHECK(indices.dtype() == DType::int32 || indices.dtype() == DType::int64, TypeError,
             "take: expected int32 or int64 indices, received dtype {}", dtype_name(indices.dtype()));
  if (auto low = detail::emulated_dtype({&x})) return detail::narrow(take(detail::widen(x), indices, axis), *low);
  const size_t a = x.shape().normalize_axis(axis);
  std::vector<int64_t> out(x.shape().dims().begin(), x.shape().dims().begin() + static_cast<int64_t>(a));
  for (int64_t d : indices.shape().dims()) out.push_back(d);
  for (size_t i = a + 1; i < x.rank(); ++i) out.push_back(x.shape()[i]);
  Tensor y = Tensor::empty(Shape(out), x.dtype(), x.backend());
  x.backend()->gather(x, indices, static_cast<int64_t>(a), y);
  if (needs_recording({x})) {
    const Shape in_shape = x.shape();
    record("take", {x, indices}, {&y}, [in_shape, indices, a](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
      Tensor dx = Tensor::empty(in_shape, gs[0].dtype(), gs[0].backend());
      dx.backend()->scatter_add(gs[0], indices, static_cast<int64_t>(a), dx);
      return {dx, Tensor()};
    });
  }
  return y;
}

}  // namespace keras::ops
