#include "layers/attention/attention.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

AttentionBase::AttentionBase(const std::string& class_name, AttentionOptions options)
    : Layer(class_name, options.name), options_(std::move(options)), seeds_(options_.seed) {
  KCPP_CHECK(options_.dropout >= 0 && options_.dropout < 1, ValueError,
             "{}: expected a dropout rate in [0, 1), received {}", class_name, options_.dropout);
  if (!options_.dtype.empty()) set_dtype_policy(options_.dtype);
}

std::optional<Layer::CallSignature> AttentionBase::call_signature() const {
  return CallSignature{{"inputs"}, {}, {"use_causal_mask", "return_attention_scores"}, true};
}

void AttentionBase::check_inputs(const std::vector<PartialShape>& shapes) const {
  KCPP_CHECK(shapes.size() == 2 || shapes.size() == 3, ValueError,
             "{} layer accepts inputs list of length 2 or 3, namely [query, value] or [query, value, key]. Received "
             "length: {}.",
             class_name(), shapes.size());
  for (const auto& s : shapes)
    KCPP_CHECK(s.size() >= 3 && s.back().has_value(), ValueError,
               "{} \"{}\": expected inputs (batch, steps, dim) with a known last axis, received {}", class_name(),
               name(), shape_to_string(s));
  const PartialShape& q = shapes[0];
  const PartialShape& k = shapes.size() == 3 ? shapes[2] : shapes[1];
  KCPP_CHECK(*q.back() == *k.back(), ValueError, "{} \"{}\": query and key need one last dimension, received {} and {}",
             class_name(), name(), shape_to_string(q), shape_to_string(k));
}

std::vector<PartialShape> AttentionBase::compute_output_shapes_for(const std::vector<PartialShape>& shapes,
                                                                   const CallArguments& args) const {
  check_inputs(shapes);
  PartialShape out(shapes[0].begin(), shapes[0].end() - 1);
  out.push_back(shapes[1].back());
  if (!args.flag("return_attention_scores")) return {out};
  PartialShape scores(shapes[0].begin(), shapes[0].end() - 1);
  const PartialShape& k = shapes.size() == 3 ? shapes[2] : shapes[1];
  scores.push_back(k[k.size() - 2]);
  return {out, scores};
}

std::vector<Tensor> AttentionBase::call_with_arguments(const std::vector<Tensor>& inputs,
                                                       const std::vector<Tensor>& masks, const CallArguments& args,
                                                       bool training) {
  std::vector<PartialShape> shapes;
  for (const Tensor& t : inputs) shapes.push_back(partial_shape_of(t));
  check_inputs(shapes);
  const Tensor& query = inputs[0];
  const Tensor& value = inputs[1];
  const Tensor& key = inputs.size() == 3 ? inputs[2] : value;
  Backend* backend = query.backend();
  Tensor s = scores(query, key);  // (batch, T, S)
  // Keras keeps the scores and subtracts a large number where the value is masked or in the future.
  Tensor hidden;  // true where a query may not look
  if (masks.size() > 1 && masks[1].defined()) hidden = ops::logical_not(ops::expand_dims(masks[1], -2));
  if (args.flag("use_causal_mask")) {
    const int64_t t = s.dim(-2), n = s.dim(-1);
    const Tensor future = ops::less(ops::reshape(ops::arange(t, DType::int64, backend), {1, t, 1}),
                                    ops::reshape(ops::arange(n, DType::int64, backend), {1, 1, n}));
    hidden = hidden.defined() ? ops::logical_or(hidden, future) : future;
  }
  if (hidden.defined())
    s = ops::where(hidden, ops::add(s, s.dtype() == DType::float16 ? -65504.0 : -1e9), s);
  Tensor weights = ops::softmax(s, -1);
  if (training && options_.dropout > 0) weights = ops::dropout(weights, options_.dropout, seeds_);
  Tensor out = ops::matmul(weights, value);
  if (masks.at(0).defined()) out = ops::where(ops::expand_dims(masks[0], -1), out, ops::zeros_like(out));
  if (args.flag("return_attention_scores")) return {out, weights};
  return {out};
}

KerasTensor AttentionBase::operator()(const std::vector<KerasTensor>& inputs, const AttentionFlags& flags) & {
  CallArguments args{std::vector<std::string>(inputs.size()), {}};
  if (flags.use_causal_mask) args.flags["use_causal_mask"] = true;
  if (flags.return_attention_scores) args.flags["return_attention_scores"] = true;
  return call_symbolic(inputs, args);
}

KerasTensor AttentionBase::operator()(const std::vector<KerasTensor>& inputs, const AttentionFlags& flags) && {
  auto self = weak_from_this().lock();
  if (!self) self = std::move(*this).into_shared();
  return static_cast<AttentionBase&>(*self)(inputs, flags);
}

Tensor AttentionBase::call(const Tensor&, bool) {
  throw ValueError(fmt::format("{} layer must be called on a list of inputs, namely [query, value] or [query, value, "
                               "key]. Received one tensor.",
                               class_name()));
}
PartialShape AttentionBase::compute_output_shape(const PartialShape&) const {
  throw ValueError(fmt::format("{} layer must be called on a list of inputs, namely [query, value] or [query, value, "
                               "key]. Received one input.",
                               class_name()));
}

Config AttentionBase::get_config() const {
  Config c = Layer::get_config();
  c["use_scale"] = options_.use_scale;
  c["score_mode"] = options_.score_mode;
  c["dropout"] = options_.dropout;
  c["seed"] = options_.seed ? Config(*options_.seed) : Config(nullptr);
  return c;
}

// Attention -----------------------------------------------------------------------------------------

Attention::Attention(AttentionOptions options) : AttentionBase("Attention", std::move(options)) {
  KCPP_CHECK(options_.score_mode == "dot" || options_.score_mode == "concat", ValueError,
             "Invalid value for argument score_mode. Expected one of {{'dot', 'concat'}}. Received: score_mode={}",
             options_.score_mode);
}

void Attention::build_multi(const std::vector<PartialShape>& shapes) {
  check_inputs(shapes);
  if (options_.use_scale) scale_ = &add_weight("scale", Shape{}, "ones");
  if (options_.score_mode == "concat") concat_score_weight_ = &add_weight("concat_score_weight", Shape{}, "ones");
}

Tensor Attention::scores(const Tensor& query, const Tensor& key) const {
  if (options_.score_mode == "dot") {
    Tensor s = ops::matmul(query, key, {.transpose_b = true});
    return scale_ ? ops::multiply(s, scale_->value()) : s;
  }
  Tensor sum = ops::add(ops::expand_dims(query, -2), ops::expand_dims(key, -3));  // (batch, T, S, dim)
  if (scale_) sum = ops::multiply(sum, scale_->value());
  return ops::multiply(ops::sum(ops::tanh(sum), {-1}), concat_score_weight_->value());
}

std::shared_ptr<Layer> Attention::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Attention config");
  AttentionOptions o;
  o.name = r.name();
  o.use_scale = r.boolean("use_scale", false);
  o.score_mode = r.string("score_mode", "dot");
  o.dropout = static_cast<float>(r.number("dropout", 0));
  o.seed = r.seed();
  auto layer = std::make_shared<Attention>(std::move(o));
  r.finish(*layer);
  return layer;
}

// AdditiveAttention ---------------------------------------------------------------------------------

AdditiveAttention::AdditiveAttention(AttentionOptions options) : AttentionBase("AdditiveAttention", std::move(options)) {
  KCPP_CHECK(options_.score_mode == "dot", ValueError, "AdditiveAttention: score_mode is Attention's, received \"{}\"",
             options_.score_mode);
}

void AdditiveAttention::build_multi(const std::vector<PartialShape>& shapes) {
  check_inputs(shapes);
  if (options_.use_scale) scale_ = &add_weight("scale", Shape{*shapes[0].back()}, "glorot_uniform");
}

Tensor AdditiveAttention::scores(const Tensor& query, const Tensor& key) const {
  Tensor t = ops::tanh(ops::add(ops::expand_dims(query, -2), ops::expand_dims(key, -3)));  // (batch, T, S, dim)
  if (scale_) t = ops::multiply(t, scale_->value());
  return ops::sum(t, {-1});
}

Config AdditiveAttention::get_config() const {
  Config c = AttentionBase::get_config();
  c.erase("score_mode");  // Keras' AdditiveAttention has none
  return c;
}

std::shared_ptr<Layer> AdditiveAttention::from_config(const Config& config) {
  serialization::ConfigReader r(config, "AdditiveAttention config");
  AttentionOptions o;
  o.name = r.name();
  o.use_scale = r.boolean("use_scale", true);
  o.dropout = static_cast<float>(r.number("dropout", 0));
  o.seed = r.seed();
  auto layer = std::make_shared<AdditiveAttention>(std::move(o));
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
