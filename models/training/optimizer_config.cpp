// Keras configs of the optimizers and learning-rate schedules: get_config() and deserialize().
#include <algorithm>
#include <cctype>

#include "core/check.h"
#include "models/training/optimizers.h"

namespace keras::optimizers {

namespace {
Config optional_number(const std::optional<float>& v) { return v ? Config(*v) : Config(nullptr); }
Config schedule_object(const char* class_name, Config config) {
  return serialization::keras_object("keras.optimizers.schedules", class_name, std::move(config));
}
}  // namespace

namespace schedules {
Config ExponentialDecay::serialized() const {
  return schedule_object("ExponentialDecay", Config{{"initial_learning_rate", initial_},
                                                    {"decay_steps", steps_},
                                                    {"decay_rate", rate_},
                                                    {"staircase", staircase_},
                                                    {"name", "ExponentialDecay"}});
}
Config PiecewiseConstantDecay::serialized() const {
  return schedule_object("PiecewiseConstantDecay",
                         Config{{"boundaries", boundaries_}, {"values", values_}, {"name", "PiecewiseConstant"}});
}
Config CosineDecay::serialized() const {
  return schedule_object("CosineDecay", Config{{"initial_learning_rate", initial_},
                                               {"decay_steps", steps_},
                                               {"alpha", alpha_},
                                               {"name", "CosineDecay"},
                                               {"warmup_target", target_ ? Config(*target_) : Config(nullptr)},
                                               {"warmup_steps", warmup_}});
}
Config InverseTimeDecay::serialized() const {
  return schedule_object("InverseTimeDecay", Config{{"initial_learning_rate", initial_},
                                                    {"decay_steps", steps_},
                                                    {"decay_rate", rate_},
                                                    {"staircase", staircase_},
                                                    {"name", "InverseTimeDecay"}});
}
}  // namespace schedules

Config Optimizer::get_config() const {
  std::string name = name_;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  return Config{{"name", name},
                {"learning_rate", schedule_ ? schedule_->serialized() : Config(learning_rate_)},
                {"weight_decay", optional_number(common_.weight_decay)},
                {"clipnorm", optional_number(common_.clipnorm)},
                {"global_clipnorm", optional_number(common_.global_clipnorm)},
                {"clipvalue", optional_number(common_.clipvalue)},
                {"use_ema", false},
                {"ema_momentum", 0.99},
                {"ema_overwrite_frequency", nullptr},
                {"loss_scale_factor", nullptr},
                {"gradient_accumulation_steps", nullptr}};
}

Config Optimizer::serialized() const { return serialization::keras_object("keras.optimizers", name_, get_config()); }

Config LossScaleOptimizer::get_config() const {
  return Config{{"name", options_.name},
                {"inner_optimizer", inner_->serialized()},
                {"initial_scale", options_.initial_scale},
                {"dynamic_growth_steps", options_.dynamic_growth_steps}};
}

Config SGD::get_config() const {
  Config c = Optimizer::get_config();
  c["momentum"] = options_.momentum;
  c["nesterov"] = options_.nesterov;
  return c;
}
Config Adam::get_config() const {
  Config c = Optimizer::get_config();
  c["beta_1"] = options_.beta_1;
  c["beta_2"] = options_.beta_2;
  c["epsilon"] = options_.epsilon;
  c["amsgrad"] = options_.amsgrad;
  return c;
}
Config RMSprop::get_config() const {
  Config c = Optimizer::get_config();
  c["rho"] = options_.rho;
  c["momentum"] = options_.momentum;
  c["epsilon"] = options_.epsilon;
  c["centered"] = options_.centered;
  return c;
}
Config Adagrad::get_config() const {
  Config c = Optimizer::get_config();
  c["initial_accumulator_value"] = options_.initial_accumulator_value;
  c["epsilon"] = options_.epsilon;
  return c;
}
Config Adadelta::get_config() const {
  Config c = Optimizer::get_config();
  c["rho"] = options_.rho;
  c["epsilon"] = options_.epsilon;
  return c;
}
Config Adamax::get_config() const {
  Config c = Optimizer::get_config();
  c["beta_1"] = options_.beta_1;
  c["beta_2"] = options_.beta_2;
  c["epsilon"] = options_.epsilon;
  return c;
}
Config Nadam::get_config() const {
  Config c = Optimizer::get_config();
  c["beta_1"] = options_.beta_1;
  c["beta_2"] = options_.beta_2;
  c["epsilon"] = options_.epsilon;
  return c;
}

namespace {
LearningRate read_learning_rate(serialization::ConfigReader& r, float fallback) {
  if (!r.has("learning_rate") && !r.has("lr")) return fallback;
  const Config& v = r.raw(r.has("learning_rate") ? "learning_rate" : "lr");
  if (v.is_number()) return v.get<double>();
  KCPP_CHECK(v.is_object() && v.contains("class_name") && v["class_name"].is_string(), ValueError,
             "optimizer config: expected \"learning_rate\" to be a number or a schedule object, received {}",
             v.dump().substr(0, 200));
  const std::string cls = v["class_name"].get<std::string>();
  static const Config empty = Config::object();
  serialization::ConfigReader s(v.contains("config") ? v["config"] : empty, "learning-rate schedule " + cls);
  (void)s.string("name", "");
  LearningRate out = fallback;
  if (cls == "ExponentialDecay") {
    out = schedules::ExponentialDecay(s.number("initial_learning_rate"), s.number("decay_steps"),
                                      s.number("decay_rate"), s.boolean("staircase", false));
  } else if (cls == "InverseTimeDecay") {
    out = schedules::InverseTimeDecay(s.number("initial_learning_rate"), s.number("decay_steps"),
                                      s.number("decay_rate"), s.boolean("staircase", false));
  } else if (cls == "CosineDecay") {
    std::optional<double> target;
    if (s.has("warmup_target")) target = s.number("warmup_target");
    out = schedules::CosineDecay(s.number("initial_learning_rate"), s.number("decay_steps"), s.number("alpha", 0.0),
                                 target, s.number("warmup_steps", 0.0));
  } else if (cls == "PiecewiseConstantDecay") {
    const auto boundaries = s.int_list("boundaries");
    std::vector<double> values;
    const Config& vs = s.raw("values");
    KCPP_CHECK(vs.is_array(), ValueError, "PiecewiseConstantDecay config: expected \"values\" to be a list");
    for (const auto& e : vs) {
      KCPP_CHECK(e.is_number(), ValueError, "PiecewiseConstantDecay config: expected numbers in \"values\"");
      values.push_back(e.get<double>());
    }
    out = schedules::PiecewiseConstantDecay(boundaries, values);
  } else {
    throw ValueError(fmt::format(
        "unknown learning-rate schedule '{}': expected ExponentialDecay, PiecewiseConstantDecay, CosineDecay or "
        "InverseTimeDecay",
        cls));
  }
  s.finish();
  return out;
}

std::optional<float> optional_float(serialization::ConfigReader& r, const char* key) {
  if (!r.has(key)) {
    (void)r.number(key, 0.0);  // marks the key read
    return std::nullopt;
  }
  return static_cast<float>(r.number(key));
}

CommonOptions read_common(serialization::ConfigReader& r) {
  CommonOptions c;
  c.clipnorm = optional_float(r, "clipnorm");
  c.clipvalue = optional_float(r, "clipvalue");
  c.global_clipnorm = optional_float(r, "global_clipnorm");
  c.weight_decay = optional_float(r, "weight_decay");
  (void)r.string("name", "");
  r.require("use_ema", false);
  r.require("loss_scale_factor", nullptr);
  r.require("gradient_accumulation_steps", nullptr);
  for (const char* k : {"ema_momentum", "ema_overwrite_frequency", "is_legacy_optimizer", "decay", "jit_compile"})
    if (r.has(k)) (void)r.raw(k);
  return c;
}
float f(serialization::ConfigReader& r, const char* key, double fallback) {
  return static_cast<float>(r.number(key, fallback));
}
}  // namespace

std::shared_ptr<Optimizer> deserialize(const Config& config) {
  if (config.is_string()) return get(config.get<std::string>());
  KCPP_CHECK(config.is_object() && config.contains("class_name") && config["class_name"].is_string(), ValueError,
             "optimizer config: expected a name or an object with a class_name, received {}",
             config.dump().substr(0, 200));
  std::string cls = config["class_name"].get<std::string>();
  // tf.keras writes "Custom>Adam" for its own optimizers in some versions.
  if (cls.rfind("Custom>", 0) == 0) cls = cls.substr(7);
  static const Config empty = Config::object();
  serialization::ConfigReader r(config.contains("config") ? config["config"] : empty, "optimizer " + cls);
  std::shared_ptr<Optimizer> out;
  if (cls == "LossScaleOptimizer") {
    KCPP_CHECK(r.has("inner_optimizer"), ValueError, "optimizer LossScaleOptimizer: the config has no inner_optimizer");
    LossScaleOptions o;
    o.name = r.string("name", "loss_scale_optimizer");
    o.initial_scale = f(r, "initial_scale", 32768.0);
    o.dynamic_growth_steps = r.integer("dynamic_growth_steps", 2000);
    r.require("dynamic", true);  // tf.keras 2 wrote it; a fixed scale is not Keras 3's
    out = std::make_shared<LossScaleOptimizer>(deserialize(r.raw("inner_optimizer")), std::move(o));
    r.finish();
    return out;
  }
  if (cls == "SGD") {
    out = std::make_shared<SGD>(SGDOptions{.learning_rate = read_learning_rate(r, 0.01f),
                                           .momentum = f(r, "momentum", 0.0),
                                           .nesterov = r.boolean("nesterov", false),
                                           .common = read_common(r)});
  } else if (cls == "Adam") {
    out = std::make_shared<Adam>(AdamOptions{.learning_rate = read_learning_rate(r, 0.001f),
                                             .beta_1 = f(r, "beta_1", 0.9),
                                             .beta_2 = f(r, "beta_2", 0.999),
                                             .epsilon = f(r, "epsilon", 1e-7),
                                             .amsgrad = r.boolean("amsgrad", false),
                                             .common = read_common(r)});
  } else if (cls == "AdamW") {
    const LearningRate lr = read_learning_rate(r, 0.001f);
    CommonOptions common = read_common(r);
    out = std::make_shared<AdamW>(AdamWOptions{.learning_rate = lr,
                                               .weight_decay = common.weight_decay.value_or(0.004f),
                                               .beta_1 = f(r, "beta_1", 0.9),
                                               .beta_2 = f(r, "beta_2", 0.999),
                                               .epsilon = f(r, "epsilon", 1e-7),
                                               .amsgrad = r.boolean("amsgrad", false),
                                               .common = common});
  } else if (cls == "RMSprop") {
    out = std::make_shared<RMSprop>(RMSpropOptions{.learning_rate = read_learning_rate(r, 0.001f),
                                                   .rho = f(r, "rho", 0.9),
                                                   .momentum = f(r, "momentum", 0.0),
                                                   .epsilon = f(r, "epsilon", 1e-7),
                                                   .centered = r.boolean("centered", false),
                                                   .common = read_common(r)});
  } else if (cls == "Adagrad") {
    out = std::make_shared<Adagrad>(AdagradOptions{.learning_rate = read_learning_rate(r, 0.001f),
                                                   .initial_accumulator_value = f(r, "initial_accumulator_value", 0.1),
                                                   .epsilon = f(r, "epsilon", 1e-7),
                                                   .common = read_common(r)});
  } else if (cls == "Adadelta") {
    out = std::make_shared<Adadelta>(AdadeltaOptions{.learning_rate = read_learning_rate(r, 0.001f),
                                                     .rho = f(r, "rho", 0.95),
                                                     .epsilon = f(r, "epsilon", 1e-7),
                                                     .common = read_common(r)});
  } else if (cls == "Adamax") {
    out = std::make_shared<Adamax>(AdamaxOptions{.learning_rate = read_learning_rate(r, 0.001f),
                                                 .beta_1 = f(r, "beta_1", 0.9),
                                                 .beta_2 = f(r, "beta_2", 0.999),
                                                 .epsilon = f(r, "epsilon", 1e-7),
                                                 .common = read_common(r)});
  } else if (cls == "Nadam") {
    out = std::make_shared<Nadam>(NadamOptions{.learning_rate = read_learning_rate(r, 0.001f),
                                               .beta_1 = f(r, "beta_1", 0.9),
                                               .beta_2 = f(r, "beta_2", 0.999),
                                               .epsilon = f(r, "epsilon", 1e-7),
                                               .common = read_common(r)});
  } else {
    throw ValueError(fmt::format(
        "unknown optimizer class '{}': expected one of SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, Nadam",
        cls));
  }
  r.finish();
  return out;
}

}  // namespace keras::optimizers
