#include "layers/merging/merge.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

namespace {
std::string shapes_string(const std::vector<PartialShape>& shapes) {
  std::vector<std::string> parts;
  for (const auto& s : shapes) parts.push_back(shape_to_string(s));
  return fmt::format("[{}]", fmt::join(parts, ", "));
}
}  // namespace

Tensor Merge::call(const Tensor& x, bool training) {
  throw ValueError(fmt::format(
      "A merge layer should be called on a list of inputs. Received: a single input to layer \"{}\"", name()));
}

std::vector<PartialShape> Merge::compute_output_shapes(const std::vector<PartialShape>& shapes) const {
  KCPP_CHECK(shapes.size() >= min_inputs_, ValueError,
             "A merge layer should be called on a list of at least {} inputs. Got {} inputs (layer \"{}\").",
             min_inputs_, shapes.size(), name());
  return {merged_shape(shapes)};
}

PartialShape Merge::merged_shape(const std::vector<PartialShape>& shapes) const {
  // Right-aligned broadcasting of the non-batch axes; unknown dimensions stay unknown.
  size_t rank = 0;
  for (const auto& s : shapes) rank = std::max(rank, s.size());
  PartialShape out(rank, 1);
  out[0] = std::nullopt;
  for (size_t i = 1; i < rank; ++i) {
    std::optional<int64_t> d = 1;
    for (const auto& s : shapes) {
      const size_t off = rank - s.size();
      if (i < off) continue;
      const auto& e = s[i - off];
      if (!e) {
        d = d && *d == 1 ? std::nullopt : d;
        continue;
      }
      if (*e == 1) continue;
      KCPP_CHECK(!d || *d == 1 || *d == *e, ValueError,
                 "Inputs have incompatible shapes. Received shapes {} (layer \"{}\")", shapes_string(shapes), name());
      d = *e;
    }
    out[i] = d;
  }
  return out;
}

std::vector<Tensor> Merge::call_multi(const std::vector<Tensor>& inputs, bool training) {
  std::vector<PartialShape> shapes;
  for (const Tensor& t : inputs) {
    PartialShape s = partial_shape_of(t);
    if (!s.empty()) s[0] = std::nullopt;
    shapes.push_back(s);
  }
  build_for_multi(shapes);
  return {merge(inputs)};
}

Tensor Merge::compute_mask_multi(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks) const {
  Tensor kept;
  for (const Tensor& m : masks) {
    if (!m.defined()) {
      if (keras2_mask_rule_) continue;
      return Tensor();
    }
    const Tensor b = ops::cast(m, DType::bool_);
    kept = !kept.defined() ? b : keras2_mask_rule_ ? ops::logical_and(kept, b) : ops::logical_or(kept, b);
  }
  return kept;
}

Tensor Add::merge(const std::vector<Tensor>& in) const {
  Tensor y = in[0];
  for (size_t i = 1; i < in.size(); ++i) y = y + in[i];
  return y;
}
std::vector<PartialShape> Subtract::compute_output_shapes(const std::vector<PartialShape>& shapes) const {
  KCPP_CHECK(shapes.size() == 2, ValueError,
             "A `Subtract` layer should be called on exactly 2 inputs. Received: {} inputs", shapes.size());
  return Merge::compute_output_shapes(shapes);
}
Tensor Subtract::merge(const std::vector<Tensor>& in) const { return in[0] - in[1]; }
Tensor Multiply::merge(const std::vector<Tensor>& in) const {
  Tensor y = in[0];
  for (size_t i = 1; i < in.size(); ++i) y = y * in[i];
  return y;
}
Tensor Average::merge(const std::vector<Tensor>& in) const {
  Tensor y = in[0];
  for (size_t i = 1; i < in.size(); ++i) y = y + in[i];
  return y * (1.f / static_cast<float>(in.size()));
}
Tensor Maximum::merge(const std::vector<Tensor>& in) const {
  Tensor y = in[0];
  for (size_t i = 1; i < in.size(); ++i) y = ops::maximum(y, in[i]);
  return y;
}
Tensor Minimum::merge(const std::vector<Tensor>& in) const {
  Tensor y = in[0];
  for (size_t i = 1; i < in.size(); ++i) y = ops::minimum(y, in[i]);
  return y;
}

Concatenate::Concatenate(int64_t axis, std::string name) : Merge("Concatenate", std::move(name)), axis_(axis) {
  min_inputs_ = 1;
}
PartialShape Concatenate::merged_shape(const std::vector<PartialShape>& shapes) const {
  const int64_t rank = static_cast<int64_t>(shapes[0].size());
  const int64_t a = axis_ < 0 ? axis_ + rank : axis_;
  bool ok = a >= 1 && a < rank;
  PartialShape out = shapes[0];
  for (size_t k = 1; ok && k < shapes.size(); ++k) {
    ok = static_cast<int64_t>(shapes[k].size()) == rank;
    for (int64_t i = 1; ok && i < rank; ++i) {
      const auto &x = out[static_cast<size_t>(i)], &y = shapes[k][static_cast<size_t>(i)];
      if (i == a)
        out[static_cast<size_t>(i)] = x && y ? std::optional<int64_t>(*x + *y) : std::nullopt;
      else
        ok = !x || !y || *x == *y;
    }
  }
  KCPP_CHECK(ok, ValueError,
             "A `Concatenate` layer requires inputs with matching shapes except for the concatenation axis. Received: "
             "input_shape={}",
             shapes_string(shapes));
  return out;
}
Tensor Concatenate::merge(const std::vector<Tensor>& in) const { return ops::concatenate(in, axis_); }

Tensor Concatenate::compute_mask_multi(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks) const {
  bool any_mask = false;
  for (const Tensor& m : masks) any_mask = any_mask || m.defined();
  if (!any_mask) return Tensor();
  std::vector<Tensor> widened;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    const Tensor m = i < masks.size() ? masks[i] : Tensor();
    if (!m.defined()) {
      widened.push_back(ops::ones(x.shape(), DType::uint8, x.backend()));
    } else {
      Tensor w = ops::cast(m, DType::uint8);
      if (w.rank() < x.rank()) w = ops::broadcast_to(ops::expand_dims(w, -1), x.shape());
      widened.push_back(w);
    }
  }
  return ops::cast(ops::max(ops::concatenate(widened, axis_), {-1}), DType::bool_);
}

Dot::Dot(std::array<int64_t, 2> axes, bool normalize, std::string name)
    : Merge("Dot", std::move(name)), axes_(axes), normalize_(normalize) {}

std::array<int64_t, 2> Dot::resolved(const std::vector<size_t>& ranks) const {
  std::array<int64_t, 2> a = axes_;
  for (int i = 0; i < 2; ++i) {
    const int64_t r = static_cast<int64_t>(ranks[static_cast<size_t>(i)]);
    if (a[static_cast<size_t>(i)] < 0) a[static_cast<size_t>(i)] += r;
    KCPP_CHECK(a[static_cast<size_t>(i)] >= 1 && a[static_cast<size_t>(i)] < r, ValueError,
               "Dot \"{}\": axis {} is out of range for an input of rank {} (the batch axis cannot be reduced)", name(),
               axes_[static_cast<size_t>(i)], r);
  }
  return a;
}

std::vector<PartialShape> Dot::compute_output_shapes(const std::vector<PartialShape>& shapes) const {
  KCPP_CHECK(shapes.size() == 2, ValueError, "A `Dot` layer should be called on exactly 2 inputs. Received: {} inputs",
             shapes.size());
  const auto& a = shapes[0];
  const auto& b = shapes[1];
  KCPP_CHECK(a.size() >= 2 && a.size() <= 3 && a.size() == b.size(), NotImplementedError,
             "Dot \"{}\": inputs of rank 2 or 3 (the same for both) are supported, received {} and {}", name(),
             shape_to_string(a), shape_to_string(b));
  const auto ax = resolved({a.size(), b.size()});
  const auto& da = a[static_cast<size_t>(ax[0])];
  const auto& db = b[static_cast<size_t>(ax[1])];
  KCPP_CHECK(!da || !db || *da == *db, ValueError,
             "Incompatible input shapes: axis values {} (at axis {}) != {} (at axis {}). Full input shapes: {}, {}",
             da ? std::to_string(*da) : "None", ax[0], db ? std::to_string(*db) : "None", ax[1], shape_to_string(a),
             shape_to_string(b));
  if (a.size() == 2) return {{a[0], 1}};
  return {{a[0], a[static_cast<size_t>(3 - ax[0])], b[static_cast<size_t>(3 - ax[1])]}};
}

Tensor Dot::merge(const std::vector<Tensor>& in) const {
  const auto ax = resolved({in[0].rank(), in[1].rank()});
  auto l2 = [&](const Tensor& x, int64_t axis) {
    return normalize_ ? x * ops::rsqrt(ops::maximum(ops::sum(ops::square(x), {axis}, true),
                                                    ops::full({}, 1e-12f, x.dtype(), x.backend())))
                      : x;
  };
  const Tensor a = l2(in[0], ax[0]), b = l2(in[1], ax[1]);
  if (a.rank() == 2) return ops::sum(a * b, {1}, true);
  // (N, m, d) . (N, n, d): a batched product with the reduced axes moved into place.
  return ops::matmul(a, b, {.transpose_a = ax[0] == 1, .transpose_b = ax[1] == 2});
}

KerasTensor dot(const std::vector<KerasTensor>& inputs, std::array<int64_t, 2> axes, bool normalize) {
  return Dot(axes, normalize)(inputs);
}

KerasTensor concatenate(const std::vector<KerasTensor>& inputs, int64_t axis) { return Concatenate(axis)(inputs); }
KerasTensor add(const std::vector<KerasTensor>& inputs) { return Add()(inputs); }
KerasTensor subtract(const std::vector<KerasTensor>& inputs) { return Subtract()(inputs); }
KerasTensor multiply(const std::vector<KerasTensor>& inputs) { return Multiply()(inputs); }
KerasTensor average(const std::vector<KerasTensor>& inputs) { return Average()(inputs); }
KerasTensor maximum(const std::vector<KerasTensor>& inputs) { return Maximum()(inputs); }
KerasTensor minimum(const std::vector<KerasTensor>& inputs) { return Minimum()(inputs); }


namespace {
template <typename M>
std::shared_ptr<Layer> merge_from_config(const Config& config, const char* owner) {
  serialization::ConfigReader r(config, owner);
  auto layer = std::make_shared<M>(r.name());
  r.finish(*layer);
  return layer;
}
}  // namespace
std::shared_ptr<Layer> Add::from_config(const Config& c) { return merge_from_config<Add>(c, "Add config"); }
std::shared_ptr<Layer> Subtract::from_config(const Config& c) {
  return merge_from_config<Subtract>(c, "Subtract config");
}
std::shared_ptr<Layer> Multiply::from_config(const Config& c) {
  return merge_from_config<Multiply>(c, "Multiply config");
}
std::shared_ptr<Layer> Average::from_config(const Config& c) { return merge_from_config<Average>(c, "Average config"); }
std::shared_ptr<Layer> Maximum::from_config(const Config& c) { return merge_from_config<Maximum>(c, "Maximum config"); }
std::shared_ptr<Layer> Minimum::from_config(const Config& c) { return merge_from_config<Minimum>(c, "Minimum config"); }

Config Concatenate::get_config() const {
  Config c = Layer::get_config();
  c["axis"] = axis_;
  return c;
}
std::shared_ptr<Layer> Concatenate::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Concatenate config");
  const std::string name = r.name();
  auto layer = std::make_shared<Concatenate>(r.integer("axis", -1), name);
  r.finish(*layer);
  return layer;
}

Config Dot::get_config() const {
  Config c = Layer::get_config();
  c["axes"] = axes_[0] == axes_[1] ? Config(axes_[0]) : Config::array({axes_[0], axes_[1]});
  c["normalize"] = normalize_;
  return c;
}
std::shared_ptr<Layer> Dot::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Dot config");
  const std::string name = r.name();
  const auto axes = r.ints("axes", 2);
  auto layer = std::make_shared<Dot>(std::array<int64_t, 2>{axes[0], axes[1]}, r.boolean("normalize", false), name);
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
