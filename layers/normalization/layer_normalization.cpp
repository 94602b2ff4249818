#include "layers/normalization/layer_normalization.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

LayerNormalization::LayerNormalization(LayerNormalizationOptions o)
    : Layer("LayerNormalization", o.name), o_(std::move(o)) {
  KCPP_CHECK(o_.epsilon > 0, ValueError, "LayerNormalization: epsilon must be positive, received {}", o_.epsilon);
  set_autocast(false);  // as Keras: the input's own dtype, float32 weights, the result in the compute dtype
}
void LayerNormalization::check_input(const PartialShape& s) const {
  if (s.size() < 2)
    throw input_error(
        fmt::format("expected min_ndim=2, found ndim={}. Full shape received: {}", s.size(), shape_to_string(s)));
  if (!s.back()) throw input_error("the normalized axis must be known, received shape " + shape_to_string(s));
}
void LayerNormalization::build(const PartialShape& s) {
  if (o_.scale) gamma_ = &add_weight("gamma", Shape{*s.back()}, "ones");
  if (o_.center) beta_ = &add_weight("beta", Shape{*s.back()}, "zeros");
}
Tensor LayerNormalization::call(const Tensor& x, bool training) {
  Tensor y = (x - ops::mean(x, {-1}, true)) * ops::rsqrt(ops::var(x, {-1}, true) + o_.epsilon);
  if (gamma_) y = y * gamma_->value();
  if (beta_) y = y + beta_->value();
  return ops::cast(y, compute_dtype());
}


Config LayerNormalization::get_config() const {
  Config c = Layer::get_config();
  c["axis"] = -1;
  c["epsilon"] = o_.epsilon;
  c["center"] = o_.center;
  c["scale"] = o_.scale;
  c["beta_initializer"] = initializers::Zeros().serialized();
  c["gamma_initializer"] = initializers::Ones().serialized();
  c["beta_regularizer"] = nullptr;
  c["gamma_regularizer"] = nullptr;
  c["beta_constraint"] = nullptr;
  c["gamma_constraint"] = nullptr;
  return c;
}

std::shared_ptr<Layer> LayerNormalization::from_config(const Config& config) {
  serialization::ConfigReader r(config, "LayerNormalization config");
  LayerNormalizationOptions o;
  o.name = r.name();
  if (r.has("axis")) {
    const Config& axis = r.raw("axis");
    const bool last = (axis.is_number_integer() && axis.get<int64_t>() == -1) ||
                      (axis.is_array() && axis.size() == 1 && axis[0] == -1);
    if (!last)
      throw NotImplementedError(fmt::format(
          "LayerNormalization config: only the last axis is supported, received \"axis\": {}", axis.dump()));
  }
  o.epsilon = static_cast<float>(r.number("epsilon", 1e-3));
  o.center = r.boolean("center", true);
  o.scale = r.boolean("scale", true);
  // kerascpp's LayerNormalization starts from Keras' default gamma = 1, beta = 0.
  const std::string beta_init = r.initializer("beta_initializer", "zeros").serialized()["class_name"];
  const std::string gamma_init = r.initializer("gamma_initializer", "ones").serialized()["class_name"];
  KCPP_CHECK(beta_init == "Zeros" && gamma_init == "Ones", NotImplementedError,
             "LayerNormalization config: only the Zeros beta and Ones gamma initializers are supported, received {} "
             "and {}",
             beta_init, gamma_init);
  r.require("beta_regularizer", nullptr);
  r.require("gamma_regularizer", nullptr);
  r.require("rms_scaling", false);
  auto layer = std::make_shared<LayerNormalization>(o);
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
