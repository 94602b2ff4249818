// Reductions and their gradient rules.
#include <algorithm>

#include "core/ops_util.h"

namespace keras::ops {
using keras::detail::needs_recording;
using keras::detail::record;

namespace {

struct Plan {
  std::vector<int64_t> axes;  // sorted, unique, non-negative
  Shape kept;                 // x's shape with reduced axes set to 1
  Shape out;                  // the result's shape (keepdims or not)
  int64_t count = 1;          // elements reduced into each output
};

Plan plan_reduction(const char* op, const Tensor& x, std::vector<int64_t> axes, bool keepdims) {
  Plan p;
  if (axes.empty())
    for (size_t i = 0; i < x.rank(); ++i) axes.push_back(static_cast<int64_t>(i));
  for (int64_t a : axes) {
    try {
      p.axes.push_back(static_cast<int64_t>(x.shape().normalize_axis(a)));
    } catch (const ValueError& e) {
      throw ValueError(fmt::format("{}: {}", op, e.what()));
    }
  }
  std::sort(p.axes.begin(), p.axes.end());
  KCPP_CHECK(std::adjacent_find(p.axes.begin(), p.axes.end()) == p.axes.end(), ValueError, "{}: repeated axis in {}",
             op, fmt::join(axes, ", "));
  std::vector<int64_t> kept = x.shape().dims(), out;
  for (size_t i = 0; i < kept.size(); ++i) {
    const bool reduced = std::binary_search(p.axes.begin(), p.axes.end(), static_cast<int64_t>(i));
    if (reduced) {
      p.count *= kept[i];
      kept[i] = 1;
    }
    if (!reduced || keepdims) out.push_back(kept[i]);
  }
  p.kept = Shape(kept);
  p.out = Shape(out);
  return p;
}

Tensor reduce_impl(ReduceOp op, const char* name, const Tensor& x, std::vector<int64_t> axes, bool keepdims) {
  detail::check_defined(name, x, "the input");
  KCPP_CHECK(x.dtype() != DType::bool_, TypeError, "{}: cannot reduce a bool tensor; cast it first", name);
  if (auto low = detail::emulated_dtype({&x}, OpFamily::reduce))
    return detail::narrow(reduce_impl(op, name, detail::widen(x), std::move(axes), keepdims), *low);
  const Plan p = plan_reduction(name, x, std::move(axes), keepdims);
  KCPP_CHECK(x.num_elements() > 0 || op == ReduceOp::sum || op == ReduceOp::prod, ValueError,
             "{}: cannot reduce an empty tensor of shape {}", name, x.shape().to_string());
  Tensor y = Tensor::empty(p.kept, x.dtype(), x.backend());
  x.backend()->reduce(op, x, p.axes, y);
  Tensor kept_y = y;
  y = y.view(p.out);
  if (!needs_recording({x})) return y;
  // Sums and means need only x's shape (a loss's mean would otherwise keep the whole batch).
  const bool rule_reads_values = op != ReduceOp::sum && op != ReduceOp::mean;
  record(name, {x}, {&y},
         [op, x = rule_reads_values ? x : Tensor(), kept_y = rule_reads_values ? kept_y.view(p.kept) : Tensor(),
          x_shape = x.shape(), p](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
           Tensor g = reshape(gs[0], p.kept.dims());
           switch (op) {
             case ReduceOp::sum:
               return {broadcast_to(g, x_shape)};
             case ReduceOp::mean:
               return {broadcast_to(g * (1.f / static_cast<float>(p.count)), x_shape)};
             case ReduceOp::prod:
               return {g * kept_y / x};
             case ReduceOp::max:
             case ReduceOp::min: {
               // Ties share the gradient equally, as TensorFlow does.
               Tensor hit = cast(equal(x, kept_y), x.dtype());
               Tensor ties = sum(hit, p.axes, true);
               return {hit * (g / ties)};
             }
           }
           return {Tensor()};
         });
  return y;
}

}  // namespace

Tensor sum(const Tensor& x, std::vector<int64_t> axes, bool keepdims) {
  return reduce_impl(ReduceOp::sum, "sum", x, std::move(axes), keepdims);
}
Tensor mean(const Tensor& x, std::vector<int64_t> axes, bool keepdims) {
  return reduce_impl(ReduceOp::mean, "mean", x, std::move(axes), keepdims);
}
Tensor max(const Tensor& x, std::vector<int64_t> axes, bool keepdims) {
  return reduce_impl(ReduceOp::max, "max", x, std::move(axes), keepdims);
}
Tensor min(const Tensor& x, std::vector<int64_t> axes, bool keepdims) {
  return reduce_impl(ReduceOp::min, "min", x, std::move(axes), keepdims);
}
Tensor prod(const Tensor& x, std::vector<int64_t> axes, bool keepdims) {
  return reduce_impl(ReduceOp::prod, "prod", x, std::move(axes), keepdims);
}

Tensor var(const Tensor& x, std::vector<int64_t> axes, bool keepdims) {
  detail::check_float("var", x, "the input");
  if (auto low = detail::emulated_dtype({&x})) return detail::narrow(var(detail::widen(x), std::move(axes), keepdims), *low);
  const Plan p = plan_reduction("var", x, std::move(axes), keepdims);
  KCPP_CHECK(x.num_elements() > 0, ValueError, "var: cannot reduce an empty tensor of shape {}", x.shape().to_string());
  Tensor y = Tensor::empty(p.kept, x.dtype(), x.backend());
  x.backend()->variance(x, p.axes, y);
  y = y.view(p.out);
  if (!needs_recording({x})) return y;
  record("var", {x}, {&y}, [x, p](const std::vector<Tensor>& gs) -> std::vector<Tensor> {
    Tensor g = reshape(gs[0], p.kept.dims());
    Tensor centered = x - mean(x, p.axes, true);
    return {centered * g * (2.f / static_cast<float>(p.count))};
  });
  return y;
}

namespace {
Tensor arg_impl(bool is_max, const Tensor& x, int64_t axis, bool keepdims) {
  const char* name = is_max ? "argmax" : "argmin";
  detail::check_defined(name, x, "the input");
  KCPP_CHECK(x.rank() > 0, ShapeError, "{}: expected a tensor of rank >= 1, received a scalar", name);
  if (detail::emulated_dtype({&x})) return arg_impl(is_max, detail::widen(x), axis, keepdims);
  const Plan p = plan_reduction(name, x, {axis}, keepdims);
  KCPP_CHECK(x.num_elements() > 0, ValueError, "{}: cannot reduce an empty tensor of shape {}", name,
             x.shape().to_string());
  Tensor y = Tensor::empty(p.kept, DType::int64, x.backend());
  x.backend()->arg_reduce(is_max, x, p.axes[0], y);
  return y.view(p.out);
}
}  // namespace

Tensor argmax(const Tensor& x, int64_t axis, bool keepdims) { return arg_impl(true, x, axis, keepdims); }
Tensor argmin(const Tensor& x, int64_t axis, bool keepdims) { return arg_impl(false, x, axis, keepdims); }

}  // namespace keras::ops

namespace keras {

std::optional<ReduceLayout> contiguous_reduce_layout(const Shape& x, const std::vector<int64_t>& axes) {
  ReduceLayout l;
  if (axes.empty()) {
    l.outer = x.num_elements();
    return l;
  }
  if (axes.back() - axes.front() + 1 != static_cast<int64_t>(axes.size())) return std::nullopt;
  for (int64_t i = 0; i < static_cast<int64_t>(x.rank()); ++i) {
    const int64_t d = x[static_cast<size_t>(i)];
    if (i < axes.front())
      l.outer *= d;
    else if (i <= axes.back())
      l.r *= d;
    else
      l.inner *= d;
  }
  return l;
}

ReduceLayout move_reduced_axes_last(const Tensor& x, const std::vector<int64_t>& axes, Tensor& moved) {
  const auto& dims = x.shape().dims();
  std::vector<int64_t> perm, out_dims;
  for (int64_t i = 0; i < static_cast<int64_t>(dims.size()); ++i)
    if (!std::binary_search(axes.begin(), axes.end(), i)) perm.push_back(i);
  for (int64_t a : axes) perm.push_back(a);
  for (int64_t p : perm) out_dims.push_back(dims[static_cast<size_t>(p)]);
  moved = Tensor::empty(Shape(out_dims), x.dtype(), x.backend());
  x.backend()->transpose(x, perm, moved);
  ReduceLayout l;
  for (size_t i = 0; i < perm.size(); ++i) (i < perm.size() - axes.size() ? l.outer : l.r) *= out_dims[i];
  return l;
}

}  // namespace keras
