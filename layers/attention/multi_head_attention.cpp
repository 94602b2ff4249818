#include "layers/attention/multi_head_attention.h"

#include <cfloat>
#include <numeric>

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {
namespace {

int64_t product(const std::vector<int64_t>& dims) {
  return std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>());
}

// Keras' EinsumDense as MultiHeadAttention uses it: the input's last `contracted` axes times a
// kernel (contracted..., out...), plus a bias (out...).
class Projection : public Layer {
 public:
  Projection(std::string name, std::vector<int64_t> contracted, std::vector<int64_t> out,
             const MultiHeadAttentionOptions& o, bool sigmoid = false)
      : Layer("EinsumDense", std::move(name)),
        contracted_(std::move(contracted)),
        out_(std::move(out)),
        options_(o),
        sigmoid_(sigmoid) {
    set_activity_regularizer(o.activity_regularizer);
  }
  Tensor call(const Tensor& x, bool) override {
    std::vector<int64_t> lead(x.shape().dims().begin(), x.shape().dims().end() - static_cast<std::ptrdiff_t>(contracted_.size()));
    std::vector<int64_t> flat = lead;
    flat.push_back(product(contracted_));
    Tensor kernel = ops::reshape(kernel_->value(), {product(contracted_), product(out_)});
    Tensor bias = bias_ ? ops::reshape(bias_->value(), {product(out_)}) : Tensor();
    Tensor y = ops::linear(ops::reshape(x, flat), kernel, bias);
    std::vector<int64_t> shape = lead;
    shape.insert(shape.end(), out_.begin(), out_.end());
    y = ops::reshape(y, shape);
    if (sigmoid_) y = ops::sigmoid(y);  // the gate's activation, before the activity penalty (Keras)
    record_activity_loss(y);
    return y;
  }
  PartialShape compute_output_shape(const PartialShape& s) const override {
    PartialShape out(s.begin(), s.end() - static_cast<std::ptrdiff_t>(contracted_.size()));
    for (int64_t d : out_) out.push_back(d);
    return out;
  }
  bool samples_independent() const override { return true; }

 protected:
  void build(const PartialShape&) override {
    std::vector<int64_t> k = contracted_;
    k.insert(k.end(), out_.begin(), out_.end());
    kernel_ = &add_weight("kernel", Shape(k), options_.kernel_initializer, true, options_.kernel_regularizer,
                          options_.kernel_constraint);
    if (options_.use_bias)
      bias_ = &add_weight("bias", Shape(out_), options_.bias_initializer, true, options_.bias_regularizer,
                          options_.bias_constraint);
  }

 private:
  std::vector<int64_t> contracted_, out_;
  MultiHeadAttentionOptions options_;
  bool sigmoid_;
  Variable* kernel_ = nullptr;
  Variable* bias_ = nullptr;
};

// The largest negative logit Keras uses for masked positions: jax's dot_product_attention's
// (-0.7 * the dtype's max, where fully masked rows become uniform) or the Softmax layer's.
float masked_logit(DType dtype, bool fused_path) {
  if (dtype == DType::float16) return fused_path ? -0.7f * 65504.f : -3e4f;
  return fused_path ? -0.7f * FLT_MAX : -1e9f;
}

}  // namespace

MultiHeadAttention::MultiHeadAttention(int64_t num_heads, int64_t key_dim, MultiHeadAttentionOptions options)
    : MultiHeadAttention(false, num_heads, num_heads, key_dim, std::move(options)) {}

MultiHeadAttention::MultiHeadAttention(bool grouped, int64_t num_heads, int64_t num_key_value_heads, int64_t key_dim,
                                       MultiHeadAttentionOptions options)
    : Layer(grouped ? "GroupQueryAttention" : "MultiHeadAttention", options.name,
            grouped ? "GroupedQueryAttention" : ""),
      grouped_(grouped),
      num_key_value_heads_(num_key_value_heads),
      options_(std::move(options)),
      num_heads_(num_heads),
      key_dim_(key_dim),
      value_dim_(options_.value_dim.value_or(key_dim)),
      seeds_(options_.seed) {
  const std::string& cls = this->class_name();
  KCPP_CHECK(num_heads > 0, ValueError, "{}: expected a positive {}, received {}", cls,
             grouped_ ? "num_query_heads" : "num_heads", num_heads);
  KCPP_CHECK(num_key_value_heads > 0 && num_heads % num_key_value_heads == 0, ValueError,
             "{}: num_query_heads must be divisible by num_key_value_heads, received {} and {}", cls, num_heads,
             num_key_value_heads);
  KCPP_CHECK(key_dim > 0, ValueError, "{}: expected a positive {}, received {}", cls, grouped_ ? "head_dim" : "key_dim",
             key_dim);
  KCPP_CHECK(value_dim_ > 0, ValueError, "{}: expected a positive value_dim, received {}", cls, value_dim_);
  KCPP_CHECK(options_.dropout >= 0 && options_.dropout < 1, ValueError,
             "{}: expected a dropout rate in [0, 1), received {}", cls, options_.dropout);
  KCPP_CHECK(!options_.sliding_window || *options_.sliding_window > 0, ValueError,
             "{}: expected a positive sliding_window, received {}", cls, options_.sliding_window.value_or(0));
  for (int64_t d : options_.output_shape)
    KCPP_CHECK(d > 0, ValueError, "{}: expected positive output_shape dimensions, received {}", cls, d);
  if (!options_.dtype.empty()) Layer::set_dtype_policy(options_.dtype);
}

std::optional<Layer::CallSignature> MultiHeadAttention::call_signature() const {
  return CallSignature{{"query", "value"},
                       {"key", "attention_mask", "value_mask", "key_mask"},
                       {"use_causal_mask", "return_attention_scores"},
                       false,
                       !options_.softmax_robust_masking.has_value()};
}

MultiHeadAttention::Roles MultiHeadAttention::roles(const CallArguments& args) const {
  Roles r;
  int positional = 0;
  for (size_t i = 0; i < args.input_keywords.size(); ++i)
    if (args.input_keywords[i].empty()) {
      if (positional == 2) r.key = static_cast<int>(i);  // call(query, value, key)
      ++positional;
    }
  KCPP_CHECK(positional >= 2 && positional <= 3, ValueError,
             "{} \"{}\": expected query, value and an optional key, received {} positional inputs",
             class_name(), name(), positional);
  if (args.index_of("key") >= 0) {
    KCPP_CHECK(r.key < 0, ValueError, "{} \"{}\": the key is given twice", class_name(), name());
    r.key = args.index_of("key");
  }
  r.attention_mask = args.index_of("attention_mask");
  r.value_mask = args.index_of("value_mask");
  r.key_mask = args.index_of("key_mask");
  return r;
}

void MultiHeadAttention::build_for_arguments(const std::vector<PartialShape>& shapes, const CallArguments& args) {
  const Roles r = roles(args);
  const PartialShape& q = shapes.at(r.query);
  const PartialShape& v = shapes.at(r.value);
  const PartialShape& k = r.key >= 0 ? shapes.at(r.key) : v;
  KCPP_CHECK(q.size() >= 3 && v.size() == q.size() && k.size() == q.size(), ValueError,
             "{} \"{}\": expected query, value and key of one rank >= 3, received {}, {} and {}", class_name(), name(),
             shape_to_string(q), shape_to_string(v), shape_to_string(k));
  for (const PartialShape* s : {&q, &v, &k})
    KCPP_CHECK(s->back().has_value(), ValueError, "{} \"{}\": the last axis must be known, received {}",
               class_name(), name(), shape_to_string(*s));
  for (size_t d = 1; d + 1 < v.size(); ++d)
    KCPP_CHECK(!v[d] || !k[d] || *v[d] == *k[d], ValueError,
               "{} \"{}\": all dimensions of value and key except the last must be equal, received "
               "value_shape={} and key_shape={}",
               class_name(), name(), shape_to_string(v), shape_to_string(k));
  // The attention axes index the projected inputs (batch, ..., heads, features), as Keras'.
  const int64_t rank = static_cast<int64_t>(q.size()) + 1;
  axes_.clear();
  if (options_.attention_axes.empty()) {
    for (int64_t a = 1; a < rank - 2; ++a) axes_.push_back(a);
  } else {
    for (int64_t a : options_.attention_axes) {
      const int64_t axis = a < 0 ? a + rank - 1 : a;
      KCPP_CHECK(axis >= 1 && axis < rank - 2 && std::find(axes_.begin(), axes_.end(), axis) == axes_.end(),
                 ValueError,
                 "{} \"{}\": expected distinct attention_axes between 1 and {} for inputs of rank {}, "
                 "received {}",
                 class_name(), name(), rank - 3, q.size(), a);
      axes_.push_back(axis);
    }
    std::sort(axes_.begin(), axes_.end());
  }
  for (size_t d = 1; d + 1 < q.size(); ++d)  // the other axes act as batch axes
    if (std::find(axes_.begin(), axes_.end(), static_cast<int64_t>(d)) == axes_.end())
      KCPP_CHECK(!q[d] || !v[d] || *q[d] == *v[d], ValueError,
                 "{} \"{}\": axis {} is not attended, so query and value must agree on it, received "
                 "{} and {}",
                 class_name(), name(), d, shape_to_string(q), shape_to_string(v));
  KCPP_CHECK(!grouped_ || *q.back() == *v.back(), ValueError,
             "{} \"{}\": the last dimension of the query and the value must be equal, received query {} and value {}",
             class_name(), name(), shape_to_string(q), shape_to_string(v));
  const std::vector<int64_t> out = options_.output_shape.empty() ? std::vector<int64_t>{*q.back()} : options_.output_shape;
  query_ = std::make_shared<Projection>("query", std::vector<int64_t>{*q.back()},
                                        std::vector<int64_t>{num_heads_, key_dim_}, options_);
  key_ = std::make_shared<Projection>("key", std::vector<int64_t>{*k.back()},
                                      std::vector<int64_t>{num_key_value_heads_, key_dim_}, options_);
  value_ = std::make_shared<Projection>("value", std::vector<int64_t>{*v.back()},
                                        std::vector<int64_t>{num_key_value_heads_, value_dim_}, options_);
  gate_.reset();
  if (options_.use_gate)
    gate_ = std::make_shared<Projection>("gate", std::vector<int64_t>{*q.back()},
                                         std::vector<int64_t>{num_heads_, value_dim_}, options_, true);
  output_ = std::make_shared<Projection>("attention_output", std::vector<int64_t>{num_heads_, value_dim_}, out, options_);
  for (Layer* l : sublayers()) l->set_dtype_policy(dtype_policy());
  query_->build_for(q);
  if (gate_) gate_->build_for(q);
  key_->build_for(k);
  value_->build_for(v);
  PartialShape heads(q.begin(), q.end() - 1);
  heads.push_back(num_heads_);
  heads.push_back(value_dim_);
  output_->build_for(heads);
  shapes_dict_ = Config::object();
  shapes_dict_["query_shape"] = serialization::shape_to_config(q);
  shapes_dict_["value_shape"] = serialization::shape_to_config(v);
  if (r.key >= 0) shapes_dict_["key_shape"] = serialization::shape_to_config(k);
}

PartialShape MultiHeadAttention::scores_shape(const PartialShape& q, const PartialShape& k) const {
  // (batch, <other axes>, heads, <query attention axes>, <key attention axes>)
  PartialShape out{q[0]};
  for (size_t d = 1; d + 1 < q.size(); ++d)
    if (std::find(axes_.begin(), axes_.end(), static_cast<int64_t>(d)) == axes_.end()) out.push_back(q[d]);
  out.push_back(num_heads_);
  for (int64_t a : axes_) out.push_back(q[a]);
  for (int64_t a : axes_) out.push_back(k[a]);
  return out;
}

void MultiHeadAttention::check_step_masks(const CallArguments& args) const {
  // Keras builds the causal and sliding-window masks from axis 1 of the query and value.
  KCPP_CHECK((!args.flag("use_causal_mask") && !options_.sliding_window) || axes_ == std::vector<int64_t>{1},
             NotImplementedError,
             "{} \"{}\": use_causal_mask and sliding_window need attention over axis 1 alone, "
             "received attention_axes [{}]",
             class_name(), name(), fmt::join(axes_, ", "));
}

std::vector<PartialShape> MultiHeadAttention::compute_output_shapes_for(const std::vector<PartialShape>& shapes,
                                                                        const CallArguments& args) const {
  check_step_masks(args);
  const Roles r = roles(args);
  const PartialShape& q = shapes.at(r.query);
  PartialShape out(q.begin(), q.end() - 1);
  if (options_.output_shape.empty())
    out.push_back(q.back());
  else
    for (int64_t d : options_.output_shape) out.push_back(d);
  if (!args.flag("return_attention_scores")) return {out};
  return {out, scores_shape(q, shapes.at(r.key >= 0 ? r.key : r.value))};
}

std::vector<Tensor> MultiHeadAttention::call_with_arguments(const std::vector<Tensor>& inputs,
                                                            const std::vector<Tensor>& masks,
                                                            const CallArguments& args, bool training) {
  check_step_masks(args);
  const Roles r = roles(args);
  const Tensor& query = inputs.at(r.query);
  const Tensor& value = inputs.at(r.value);
  const Tensor& key = r.key >= 0 ? inputs.at(r.key) : value;
  Backend* backend = query.backend();
  const bool causal = args.flag("use_causal_mask");
  const bool want_scores = args.flag("return_attention_scores");
  // Keras' mask: the query's (B, T, 1), the value's and key's (B, 1, S), causal (1, T, S), the
  // sliding window, and the explicit attention_mask, all and-ed.
  Tensor mask;
  auto merge = [&](const Tensor& m) { mask = mask.defined() ? ops::logical_and(mask, m) : m; };
  auto as_bool = [](const Tensor& m) { return m.dtype() == DType::bool_ ? m : ops::not_equal(m, ops::zeros_like(m)); };
  if (masks.at(r.query).defined()) merge(ops::expand_dims(as_bool(masks[r.query]), -1));
  const Tensor value_mask = r.value_mask >= 0 ? inputs[r.value_mask] : masks.at(r.value);
  if (value_mask.defined()) merge(ops::expand_dims(as_bool(value_mask), -2));
  const Tensor key_mask = r.key_mask >= 0 ? inputs[r.key_mask] : r.key >= 0 ? masks.at(r.key) : Tensor();
  if (key_mask.defined()) merge(ops::expand_dims(as_bool(key_mask), -2));
  if (causal || options_.sliding_window) {
    const int64_t t = query.dim(1), s = value.dim(1);
    const Tensor rows = ops::reshape(ops::arange(t, DType::int64, backend), {1, t, 1});
    const Tensor cols = ops::reshape(ops::arange(s, DType::int64, backend), {1, 1, s});
    if (causal) merge(ops::greater_equal(rows, cols));
    if (options_.sliding_window)
      merge(ops::less(ops::abs(ops::subtract(rows, cols)), ops::full({}, *options_.sliding_window, DType::int64, backend)));
  }
  if (r.attention_mask >= 0) merge(as_bool(inputs[r.attention_mask]));

  const Tensor q = (*query_)(query, training);  // (B, ..., heads, key_dim)
  // Grouped heads: each key and value head serves num_heads / num_key_value_heads query heads in a
  // row (Keras' ops.repeat on the heads axis).
  auto repeat_heads = [&](const Tensor& x) {
    if (num_key_value_heads_ == num_heads_) return x;
    std::vector<int64_t> grouped = x.shape().dims();
    grouped.insert(grouped.end() - 1, 1);
    std::vector<int64_t> wide = grouped;
    wide[wide.size() - 2] = num_heads_ / num_key_value_heads_;
    std::vector<int64_t> out = x.shape().dims();
    out[out.size() - 2] = num_heads_;
    return ops::reshape(ops::broadcast_to(ops::reshape(x, grouped), Shape(wide)), out);
  };
  const Tensor k = repeat_heads((*key_)(key, training));
  const Tensor v = repeat_heads((*value_)(value, training));
  // Move the unattended axes next to the batch and flatten: (B, P, heads, T, features).
  const int64_t rank = q.rank();
  std::vector<int64_t> perm{0}, other;
  for (int64_t d = 1; d < rank - 2; ++d)
    if (std::find(axes_.begin(), axes_.end(), d) == axes_.end()) other.push_back(d);
  perm.insert(perm.end(), other.begin(), other.end());
  perm.push_back(rank - 2);
  perm.insert(perm.end(), axes_.begin(), axes_.end());
  perm.push_back(rank - 1);
  auto flatten = [&](const Tensor& x) {
    int64_t p = 1, t = 1;
    for (int64_t d : other) p *= x.dim(d);
    for (int64_t a : axes_) t *= x.dim(a);
    return ops::reshape(ops::transpose(x, perm), {x.dim(0), p, num_heads_, t, x.dim(-1)});
  };
  const Tensor qf = ops::multiply(flatten(q), 1.0 / std::sqrt(static_cast<double>(key_dim_)));
  Tensor scores = ops::matmul(qf, flatten(k), {.transpose_b = true});  // (B, P, heads, T, S)
  std::vector<int64_t> full_shape{q.dim(0)};
  for (int64_t d : other) full_shape.push_back(q.dim(d));
  full_shape.push_back(num_heads_);
  for (int64_t a : axes_) full_shape.push_back(q.dim(a));
  for (int64_t a : axes_) full_shape.push_back(k.dim(a));
  const std::vector<int64_t> flat_shape = scores.shape().dims();
  // Keras takes jax's fused dot_product_attention when it can: fully masked rows become uniform
  // there, and zero in the Softmax layer of its other path.
  // tf.keras 2 had its Softmax add -1e9 to masked scores (softmax_robust_masking false) or replace them.
  const auto& tf_keras = options_.softmax_robust_masking;
  const bool fused_path = tf_keras ? *tf_keras : options_.dropout == 0 && !want_scores && query.rank() == 3;
  Tensor full_mask;
  if (mask.defined()) {
    // Keras inserts the head axis (and others) before the attention axes.
    full_mask = mask;
    while (full_mask.rank() < full_shape.size())
      full_mask = ops::expand_dims(full_mask, -2 * static_cast<int64_t>(axes_.size()) - 1);
    const Tensor neg = ops::full({}, masked_logit(scores.dtype(), fused_path), scores.dtype(), backend);
    const Tensor shaped = ops::reshape(scores, full_shape);
    scores = ops::reshape(tf_keras && !*tf_keras ? ops::where(full_mask, shaped, ops::add(shaped, neg))
                                                 : ops::where(full_mask, shaped, neg),
                          flat_shape);
  }
  Tensor probs = ops::softmax(scores, -1);
  if (mask.defined() && !fused_path && !tf_keras)
    probs = ops::reshape(ops::where(full_mask, ops::reshape(probs, full_shape), ops::zeros_like(ops::reshape(probs, full_shape))),
                         flat_shape);
  const Tensor returned_scores = want_scores ? ops::reshape(probs, full_shape) : Tensor();
  if (training && options_.dropout > 0) probs = ops::dropout(probs, options_.dropout, seeds_);
  Tensor out = ops::matmul(probs, flatten(v));  // (B, P, heads, T, value_dim)
  // Back to (B, ..., heads, value_dim) in the query's axis order.
  std::vector<int64_t> unflat{q.dim(0)};
  for (int64_t d : other) unflat.push_back(q.dim(d));
  unflat.push_back(num_heads_);
  for (int64_t a : axes_) unflat.push_back(q.dim(a));
  unflat.push_back(value_dim_);
  std::vector<int64_t> inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inverse[static_cast<size_t>(perm[i])] = static_cast<int64_t>(i);
  out = ops::transpose(ops::reshape(out, unflat), inverse);
  if (gate_) out = ops::multiply(out, (*gate_)(query, training));
  out = (*output_)(out, training);
  if (want_scores) return {out, returned_scores};
  return {out};
}

namespace {
// The call's inputs (query, value, then the keyword tensors given) and their keywords and flags.
template <typename T>
CallArguments arguments_of(const T& query, const T& value, const AttentionArguments<T>& args, std::vector<T>& inputs) {
  inputs = {query, value};
  CallArguments call{{"", ""}, {}};
  for (const auto& [keyword, t] : {std::pair<const char*, const T*>{"key", &args.key}, {"attention_mask", &args.attention_mask}})
    if (t->defined()) {
      inputs.push_back(*t);
      call.input_keywords.push_back(keyword);
    }
  if (args.use_causal_mask) call.flags["use_causal_mask"] = true;
  if (args.return_attention_scores) call.flags["return_attention_scores"] = true;
  return call;
}
}  // namespace

std::vector<Tensor> MultiHeadAttention::operator()(const Tensor& query, const Tensor& value,
                                                   const AttentionArguments<Tensor>& args, bool training) {
  std::vector<Tensor> inputs;
  const CallArguments call = arguments_of(query, value, args, inputs);
  return invoke_with_arguments(inputs, std::vector<Tensor>(inputs.size()), call, training);
}

KerasTensor MultiHeadAttention::operator()(const KerasTensor& query, const KerasTensor& value,
                                           const AttentionArguments<KerasTensor>& args) & {
  std::vector<KerasTensor> inputs;
  const CallArguments call = arguments_of(query, value, args, inputs);
  return call_symbolic(inputs, call);
}

KerasTensor MultiHeadAttention::operator()(const KerasTensor& query, const KerasTensor& value,
                                           const AttentionArguments<KerasTensor>& args) && {
  auto self = weak_from_this().lock();
  if (!self) self = std::move(*this).into_shared();
  return static_cast<MultiHeadAttention&>(*self)(query, value, args);
}

Tensor MultiHeadAttention::call(const Tensor&, bool) {
  throw ValueError(fmt::format("{} \"{}\": call it with a query and a value: mha(query, value)", class_name(), name()));
}
PartialShape MultiHeadAttention::compute_output_shape(const PartialShape&) const {
  throw ValueError(fmt::format("{} \"{}\": expected a query and a value, received one input", class_name(), name()));
}

std::vector<std::pair<std::string, Layer*>> MultiHeadAttention::projections() const {
  if (!query_) return {};
  // Keras' order of creation, which its weight lists follow (the gate after the key). Its files
  // name the groups after its attributes: public properties in MultiHeadAttention (but the gate's),
  // private ones in GroupQueryAttention.
  const std::string prefix = grouped_ ? "_" : "";
  std::vector<std::pair<std::string, Layer*>> out{{prefix + "query_dense", query_.get()},
                                                  {prefix + "key_dense", key_.get()}};
  if (gate_) out.emplace_back("_gate_dense", gate_.get());
  out.emplace_back(prefix + "value_dense", value_.get());
  out.emplace_back(prefix + "output_dense", output_.get());
  return out;
}

std::vector<Layer*> MultiHeadAttention::sublayers() const {
  std::vector<Layer*> out;
  for (const auto& [name, layer] : projections()) out.push_back(layer);
  return out;
}

std::vector<std::pair<std::string, Layer*>> MultiHeadAttention::wrapped_layers() { return projections(); }

std::vector<random::SeedGenerator*> MultiHeadAttention::seed_generators() { return {&seeds_}; }

void MultiHeadAttention::set_dtype_policy(const mixed_precision::DTypePolicy& policy) {
  Layer::set_dtype_policy(policy);
  for (Layer* l : sublayers()) l->set_dtype_policy(policy);
}

Config MultiHeadAttention::get_build_config() const {
  if (!built()) return nullptr;
  return Config{{"shapes_dict", shapes_dict_}};
}

Config MultiHeadAttention::get_config() const {
  Config c = Layer::get_config();
  c["num_heads"] = num_heads_;
  c["key_dim"] = key_dim_;
  c["value_dim"] = value_dim_;
  c["output_shape"] = options_.output_shape.empty() ? Config(nullptr) : Config(options_.output_shape);
  // Keras writes the resolved axes once built.
  const std::vector<int64_t>& axes = built() ? axes_ : options_.attention_axes;
  c["attention_axes"] = axes.empty() ? Config(nullptr) : Config(axes);
  write_common_config(c);
  return c;
}

void MultiHeadAttention::write_common_config(Config& c) const {
  c["dropout"] = options_.dropout;
  c["use_bias"] = options_.use_bias;
  c["use_gate"] = options_.use_gate;
  c["sliding_window"] = options_.sliding_window ? Config(*options_.sliding_window) : Config(nullptr);
  c["kernel_initializer"] = options_.kernel_initializer.serialized();
  c["bias_initializer"] = options_.bias_initializer.serialized();
  c["kernel_regularizer"] = options_.kernel_regularizer.serialized();
  c["bias_regularizer"] = options_.bias_regularizer.serialized();
  c["activity_regularizer"] = options_.activity_regularizer.serialized();
  c["kernel_constraint"] = options_.kernel_constraint.serialized();
  c["bias_constraint"] = options_.bias_constraint.serialized();
  c["seed"] = options_.seed ? Config(*options_.seed) : Config(nullptr);
}

std::shared_ptr<Layer> MultiHeadAttention::from_config(const Config& config) {
  serialization::ConfigReader r(config, "MultiHeadAttention config");
  MultiHeadAttentionOptions o;
  o.name = r.name();
  const int64_t heads = r.integer("num_heads");
  const int64_t key_dim = r.integer("key_dim");
  if (r.has("value_dim") && !r.raw("value_dim").is_null()) o.value_dim = r.integer("value_dim");
  if (r.has("output_shape") && !r.raw("output_shape").is_null())
    o.output_shape = r.raw("output_shape").is_number_integer() ? std::vector<int64_t>{r.integer("output_shape")}
                                                                 : r.int_list("output_shape");
  if (r.has("attention_axes") && !r.raw("attention_axes").is_null())
    o.attention_axes = r.raw("attention_axes").is_number_integer() ? std::vector<int64_t>{r.integer("attention_axes")}
                                                                     : r.int_list("attention_axes");
  read_common_config(r, o);
  if (r.has("softmax_robust_masking")) o.softmax_robust_masking = r.boolean("softmax_robust_masking", false);
  for (const char* key : {"query_shape", "key_shape", "value_shape"})  // tf.keras 2's build shapes
    if (r.has(key)) r.raw(key);
  auto layer = std::make_shared<MultiHeadAttention>(heads, key_dim, std::move(o));
  r.finish(*layer);
  // The projections carry the penalty, not the layer's output (Keras).
  layer->set_activity_regularizer({});
  return layer;
}

void MultiHeadAttention::read_common_config(serialization::ConfigReader& r, MultiHeadAttentionOptions& o) {
  o.dropout = static_cast<float>(r.number("dropout", 0));
  o.use_bias = r.boolean("use_bias", true);
  o.use_gate = r.boolean("use_gate", false);
  if (r.has("sliding_window") && !r.raw("sliding_window").is_null()) o.sliding_window = r.integer("sliding_window");
  o.kernel_initializer = r.initializer("kernel_initializer", "glorot_uniform");
  o.bias_initializer = r.initializer("bias_initializer", "zeros");
  o.kernel_regularizer = r.regularizer("kernel_regularizer");
  o.bias_regularizer = r.regularizer("bias_regularizer");
  o.activity_regularizer = r.regularizer("activity_regularizer");
  o.kernel_constraint = r.constraint("kernel_constraint");
  o.bias_constraint = r.constraint("bias_constraint");
  o.seed = r.seed();
  // Flash attention is a way of computing the same numbers; Keras' default (null) is all we read.
  r.require("flash_attention", nullptr);
}

GroupQueryAttention::GroupQueryAttention(int64_t head_dim, int64_t num_query_heads, int64_t num_key_value_heads,
                                             MultiHeadAttentionOptions options)
    : MultiHeadAttention(true, num_query_heads, num_key_value_heads, head_dim, std::move(options)) {
  KCPP_CHECK(!options_.value_dim && options_.output_shape.empty() && options_.attention_axes.empty() &&
                 !options_.softmax_robust_masking,
             ValueError,
             "GroupQueryAttention: value_dim, output_shape, attention_axes and softmax_robust_masking are "
             "MultiHeadAttention's options, received value_dim {}, output_shape [{}], attention_axes [{}]",
             options_.value_dim.value_or(0), fmt::join(options_.output_shape, ", "),
             fmt::join(options_.attention_axes, ", "));
}

std::optional<Layer::CallSignature> GroupQueryAttention::call_signature() const {
  auto s = MultiHeadAttention::call_signature();
  s->consumes_input_masks = false;  // Keras' GroupQueryAttention leaves its inputs' masks in place
  return s;
}

Config GroupQueryAttention::get_config() const {
  Config c = Layer::get_config();
  c["head_dim"] = key_dim();
  c["num_query_heads"] = num_heads();
  c["num_key_value_heads"] = num_key_value_heads_;
  write_common_config(c);
  return c;
}

std::shared_ptr<Layer> GroupQueryAttention::from_config(const Config& config) {
  serialization::ConfigReader r(config, "GroupQueryAttention config");
  MultiHeadAttentionOptions o;
  o.name = r.name();
  const int64_t head_dim = r.integer("head_dim");
  const int64_t query_heads = r.integer("num_query_heads");
  const int64_t kv_heads = r.integer("num_key_value_heads");
  read_common_config(r, o);
  auto layer = std::make_shared<GroupQueryAttention>(head_dim, query_heads, kv_heads, std::move(o));
  r.finish(*layer);
  layer->set_activity_regularizer({});  // on the projections, as Keras
  return layer;
}

}  // namespace keras::layers
