#include "layers/core/graph_ops.h"

#include <algorithm>

#include "core/check.h"
#include "layers/serialization.h"
#include "core/ops.h"

namespace keras::layers {

NotEqual::NotEqual(double operand, std::string name) : Layer("NotEqual", std::move(name)), operand_(operand) {}

Tensor NotEqual::call(const Tensor& x, bool) {
  return ops::not_equal(x, ops::full({}, operand_, x.dtype(), x.backend()));
}

void NotEqual::set_call_constants(const Config& constants) {
  KCPP_CHECK(constants.is_array() && constants.size() == 1 && constants[0].is_number(), NotImplementedError,
             "NotEqual \"{}\": expected one number to compare with, received {}", name(), constants.dump());
  operand_ = constants[0].get<double>();
}

std::shared_ptr<Layer> NotEqual::from_config(const Config& config) {
  serialization::ConfigReader r(config, "NotEqual config");
  auto layer = std::make_shared<NotEqual>(0.0, r.name());
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers

namespace keras::layers {

BoolReduction::BoolReduction(Kind kind, std::vector<int64_t> axes, bool keepdims, std::string name)
    : Layer(kind == Kind::any ? "Any" : "All", std::move(name)), kind_(kind), axes_(std::move(axes)),
      keepdims_(keepdims) {}

std::vector<int64_t> BoolReduction::normalized_axes(size_t rank) const {
  std::vector<int64_t> out;
  if (axes_.empty())
    for (size_t i = 0; i < rank; ++i) out.push_back(static_cast<int64_t>(i));
  for (int64_t a : axes_) {
    const int64_t r = static_cast<int64_t>(rank);
    KCPP_CHECK(a >= -r && a < r, ValueError, "{} \"{}\": expected axes in [-{}, {}) for an input of rank {}, received {}",
               class_name(), name(), r, r, r, a);
    out.push_back(a < 0 ? a + r : a);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Tensor BoolReduction::call(const Tensor& x, bool) {
  // any: the largest of the 0/1 values is 1; all: the smallest.
  const Tensor ones = ops::cast(ops::not_equal(x, ops::zeros({}, x.dtype(), x.backend())), DType::float32);
  const auto axes = normalized_axes(x.rank());
  const Tensor r = kind_ == Kind::any ? ops::max(ones, axes, keepdims_) : ops::min(ones, axes, keepdims_);
  return ops::not_equal(r, ops::zeros({}, DType::float32, r.backend()));
}

PartialShape BoolReduction::compute_output_shape(const PartialShape& s) const {
  const auto axes = normalized_axes(s.size());
  PartialShape dims;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool reduced = std::find(axes.begin(), axes.end(), static_cast<int64_t>(i)) != axes.end();
    if (!reduced)
      dims.push_back(s[i]);
    else if (keepdims_)
      dims.push_back(1);
  }
  return dims;
}

Config BoolReduction::get_config() const {
  Config axis = nullptr;
  if (axes_.size() == 1) axis = axes_[0];
  if (axes_.size() > 1) axis = Config(axes_);
  return Config{{"name", name()}, {"axis", axis}, {"keepdims", keepdims_}};
}

namespace {
std::shared_ptr<Layer> bool_reduction_from_config(BoolReduction::Kind kind, const Config& config) {
  const char* cls = kind == BoolReduction::Kind::any ? "Any" : "All";
  serialization::ConfigReader r(config, fmt::format("{} config", cls));
  std::vector<int64_t> axes;
  if (r.has("axis")) {
    if (r.raw("axis").is_array())
      axes = r.int_list("axis");
    else
      axes = {r.integer("axis")};
  }
  auto layer = std::make_shared<BoolReduction>(kind, axes, r.boolean("keepdims", false), r.name());
  r.finish(*layer);
  return layer;
}
}  // namespace

std::shared_ptr<Layer> BoolReduction::any_from_config(const Config& config) {
  return bool_reduction_from_config(Kind::any, config);
}
std::shared_ptr<Layer> BoolReduction::all_from_config(const Config& config) {
  return bool_reduction_from_config(Kind::all, config);
}

}  // namespace keras::layers

namespace keras::layers {

LogicalBinary::LogicalBinary(Kind kind, std::string name)
    : Layer(kind == Kind::logical_or ? "LogicalOr" : "LogicalAnd", std::move(name)), kind_(kind) {}

std::vector<PartialShape> LogicalBinary::compute_output_shapes(const std::vector<PartialShape>& shapes) const {
  KCPP_CHECK(shapes.size() == 2, ValueError, "{} \"{}\": expected 2 inputs, received {}", class_name(), name(),
             shapes.size());
  // NumPy broadcasting, unknown dimensions kept unknown.
  const PartialShape& a = shapes[0];
  const PartialShape& b = shapes[1];
  PartialShape out(std::max(a.size(), b.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    const auto da = i < a.size() ? a[a.size() - 1 - i] : std::optional<int64_t>(1);
    const auto db = i < b.size() ? b[b.size() - 1 - i] : std::optional<int64_t>(1);
    KCPP_CHECK(!da || !db || *da == *db || *da == 1 || *db == 1, ValueError,
               "{} \"{}\": shapes {} and {} do not broadcast", class_name(), name(), shape_to_string(a),
               shape_to_string(b));
    out[out.size() - 1 - i] = da && *da == 1 ? db : db && *db == 1 ? da : da ? da : db;
  }
  return {out};
}

std::vector<Tensor> LogicalBinary::call_multi(const std::vector<Tensor>& inputs, bool) {
  KCPP_CHECK(inputs.size() == 2, ValueError, "{} \"{}\": expected 2 inputs, received {}", class_name(), name(),
             inputs.size());
  auto as_bool = [](const Tensor& t) { return t.dtype() == DType::bool_ ? t : ops::cast(t, DType::bool_); };
  const Tensor a = as_bool(inputs[0]), b = as_bool(inputs[1]);
  return {kind_ == Kind::logical_or ? ops::logical_or(a, b) : ops::logical_and(a, b)};
}

Tensor LogicalBinary::call(const Tensor&, bool) {
  throw ValueError(fmt::format("{} \"{}\": expected 2 inputs, received 1", class_name(), name()));
}

std::shared_ptr<Layer> LogicalBinary::or_from_config(const Config& config) {
  serialization::ConfigReader r(config, "LogicalOr config");
  auto layer = std::make_shared<LogicalBinary>(Kind::logical_or, r.name());
  r.finish(*layer);
  return layer;
}
std::shared_ptr<Layer> LogicalBinary::and_from_config(const Config& config) {
  serialization::ConfigReader r(config, "LogicalAnd config");
  auto layer = std::make_shared<LogicalBinary>(Kind::logical_and, r.name());
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers

namespace keras::layers {

ExpandDims::ExpandDims(int64_t axis, std::string name) : Layer("ExpandDims", std::move(name)), axis_(axis) {}

int64_t ExpandDims::position(size_t rank) const {
  // The new axis indexes the output, of rank + 1 axes.
  const auto r = static_cast<int64_t>(rank) + 1;
  KCPP_CHECK(axis_ >= -r && axis_ < r, ValueError,
             "ExpandDims \"{}\": expected an axis in [-{}, {}) for an input of rank {}, received {}", name(), r, r, rank,
             axis_);
  return axis_ < 0 ? axis_ + r : axis_;
}
Tensor ExpandDims::call(const Tensor& x, bool) { return ops::expand_dims(x, position(x.rank())); }
PartialShape ExpandDims::compute_output_shape(const PartialShape& s) const {
  PartialShape out = s;
  out.insert(out.begin() + position(s.size()), 1);
  return out;
}
std::shared_ptr<Layer> ExpandDims::from_config(const Config& config) {
  serialization::ConfigReader r(config, "ExpandDims config");
  const std::string name = r.name();
  auto layer = std::make_shared<ExpandDims>(r.integer("axis"), name);
  r.finish(*layer);
  return layer;
}

ZerosLike::ZerosLike(std::string dtype, std::string name) : Layer("ZerosLike", std::move(name)), dtype_(std::move(dtype)) {
  if (!dtype_.empty()) (void)dtype_from_name(dtype_);  // refuses an unknown name here
}
Tensor ZerosLike::call(const Tensor& x, bool) {
  return ops::zeros(x.shape(), dtype_.empty() ? x.dtype() : dtype_from_name(dtype_), x.backend());
}
Config ZerosLike::get_config() const {
  return Config{{"name", name()}, {"dtype", dtype_.empty() ? Config(nullptr) : Config(dtype_)}};
}
std::shared_ptr<Layer> ZerosLike::from_config(const Config& config) {
  // "dtype" is the output's dtype here, not a layer's policy: read before the reader's own check.
  Config rest = config;
  std::string dtype;
  if (rest.contains("dtype") && rest["dtype"].is_string()) dtype = rest["dtype"].get<std::string>();
  KCPP_CHECK(!rest.contains("dtype") || rest["dtype"].is_null() || rest["dtype"].is_string(), ValueError,
             "ZerosLike config: expected \"dtype\" to be a dtype name or null, received {}", rest["dtype"].dump());
  rest.erase("dtype");
  serialization::ConfigReader r(rest, "ZerosLike config");
  auto layer = std::make_shared<ZerosLike>(dtype, r.name());
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
