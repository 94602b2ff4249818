#include "layers/regularizers.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras {
namespace {
constexpr float kEpsilon = 1e-7f;

template <typename F>
F configured(F f, const char* module, const char* class_name, Config config) {
  f.set_serialized(serialization::keras_object(module, class_name, std::move(config)));
  return f;
}
Config axis_config(const std::vector<int64_t>& axis) { return axis.size() == 1 ? Config(axis[0]) : Config(axis); }
std::vector<int64_t> axis_from(serialization::ConfigReader& r) {
  if (!r.has("axis")) return {0};
  return r.raw("axis").is_array() ? r.int_list("axis") : std::vector<int64_t>{r.integer("axis")};
}
}  // namespace

WeightFunction::WeightFunction(std::string name, std::function<Tensor(const Tensor&)> fn)
    : name_(std::move(name)), fn_(std::move(fn)) {
  serialized_ = Config{{"module", nullptr}, {"class_name", name_}, {"config", Config::object()}, {"registered_name", name_}};
}

namespace regularizers {
Regularizer L1(float l1) {
  return configured(Regularizer("l1", [l1](const Tensor& w) { return ops::sum(ops::abs(w)) * l1; }),
                    "keras.regularizers", "L1", Config{{"l1", l1}});
}
Regularizer L2(float l2) {
  return configured(Regularizer("l2", [l2](const Tensor& w) { return ops::sum(ops::square(w)) * l2; }),
                    "keras.regularizers", "L2", Config{{"l2", l2}});
}
Regularizer L1L2(float l1, float l2) {
  return configured(
      Regularizer("l1_l2",
                  [l1, l2](const Tensor& w) { return ops::sum(ops::abs(w)) * l1 + ops::sum(ops::square(w)) * l2; }),
      "keras.regularizers", "L1L2", Config{{"l1", l1}, {"l2", l2}});
}

Regularizer deserialize(const Config& config) {
  if (config.is_null()) return {};
  if (config.is_string()) return Regularizer(config.get<std::string>().c_str());
  KCPP_CHECK(config.is_object() && config.contains("class_name") && config["class_name"].is_string(), ValueError,
             "regularizer config: expected null, a name or an object with a class_name, received {}", config.dump());
  const std::string cls = config["class_name"].get<std::string>();
  static const Config empty = Config::object();
  serialization::ConfigReader r(config.contains("config") ? config["config"] : empty, "regularizer " + cls);
  Regularizer out;
  if (cls == "L1" || cls == "l1")
    out = L1(static_cast<float>(r.number("l1", 0.01)));
  else if (cls == "L2" || cls == "l2")
    out = L2(static_cast<float>(r.number("l2", 0.01)));
  else if (cls == "L1L2" || cls == "l1_l2")
    out = L1L2(static_cast<float>(r.number("l1", 0.0)), static_cast<float>(r.number("l2", 0.0)));
  else
    throw ValueError(fmt::format("unknown regularizer class '{}': expected one of L1, L2, L1L2", cls));
  r.finish();
  return out;
}
}  // namespace regularizers

Regularizer::Regularizer(const char* name) {
  const std::string n = name;
  if (n == "l1")
    *this = regularizers::L1();
  else if (n == "l2")
    *this = regularizers::L2();
  else if (n == "l1_l2")
    *this = regularizers::L1L2(0.01f, 0.01f);
  else
    throw ValueError(fmt::format("unknown regularizer '{}': expected one of l1, l2, l1_l2", n));
}

namespace constraints {
Constraint MaxNorm(float max_value, std::vector<int64_t> axis) {
  return configured(Constraint("max_norm",
                               [=](const Tensor& w) {
                                 const Tensor norms = ops::sqrt(ops::sum(ops::square(w), axis, true));
                                 return w * (ops::clip(norms, 0.f, max_value) / (norms + kEpsilon));
                               }),
                    "keras.constraints", "MaxNorm", Config{{"max_value", max_value}, {"axis", axis_config(axis)}});
}
Constraint MinMaxNorm(float min_value, float max_value, float rate, std::vector<int64_t> axis) {
  return configured(
      Constraint("min_max_norm",
                 [=](const Tensor& w) {
                   const Tensor norms = ops::sqrt(ops::sum(ops::square(w), axis, true));
                   const Tensor desired = ops::clip(norms, min_value, max_value) * rate + norms * (1.f - rate);
                   return w * (desired / (norms + kEpsilon));
                 }),
      "keras.constraints", "MinMaxNorm",
      Config{{"min_value", min_value}, {"max_value", max_value}, {"rate", rate}, {"axis", axis_config(axis)}});
}
Constraint NonNeg() {
  return configured(Constraint("non_neg", [](const Tensor& w) { return ops::relu(w); }), "keras.constraints", "NonNeg",
                    Config::object());
}
Constraint UnitNorm(std::vector<int64_t> axis) {
  return configured(
      Constraint("unit_norm",
                 [=](const Tensor& w) { return w / (ops::sqrt(ops::sum(ops::square(w), axis, true)) + kEpsilon); }),
      "keras.constraints", "UnitNorm", Config{{"axis", axis_config(axis)}});
}

Constraint deserialize(const Config& config) {
  if (config.is_null()) return {};
  Config object = config;
  if (config.is_string()) object = Config{{"class_name", config}};
  KCPP_CHECK(object.is_object() && object.contains("class_name") && object["class_name"].is_string(), ValueError,
             "constraint config: expected null, a name or an object with a class_name, received {}", config.dump());
  const std::string cls = object["class_name"].get<std::string>();
  static const Config empty = Config::object();
  serialization::ConfigReader r(object.contains("config") ? object["config"] : empty, "constraint " + cls);
  Constraint out;
  if (cls == "MaxNorm" || cls == "max_norm") {
    const float max_value = static_cast<float>(r.number("max_value", 2.0));
    out = MaxNorm(max_value, axis_from(r));
  } else if (cls == "MinMaxNorm" || cls == "min_max_norm") {
    const float lo = static_cast<float>(r.number("min_value", 0.0)), hi = static_cast<float>(r.number("max_value", 1.0));
    const float rate = static_cast<float>(r.number("rate", 1.0));
    out = MinMaxNorm(lo, hi, rate, axis_from(r));
  } else if (cls == "NonNeg" || cls == "non_neg") {
    out = NonNeg();
  } else if (cls == "UnitNorm" || cls == "unit_norm") {
    out = UnitNorm(axis_from(r));
  } else {
    throw ValueError(fmt::format("unknown constraint class '{}': expected one of MaxNorm, MinMaxNorm, NonNeg, UnitNorm", cls));
  }
  r.finish();
  return out;
}
}  // namespace constraints

}  // namespace keras
