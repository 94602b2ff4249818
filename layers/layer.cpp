#include "layers/layer.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>

#include "core/autograd.h"
#include "core/check.h"
#include "core/logging.h"
#include "core/ops.h"

namespace keras {

std::string shape_to_string(const PartialShape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += shape[i] ? std::to_string(*shape[i]) : "None";
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

PartialShape partial_shape_of(const Tensor& t) {
  PartialShape s;
  for (int64_t d : t.shape().dims()) s.emplace_back(d);
  return s;
}

namespace {
struct NameRegistry {
  std::mutex mutex;
  std::map<std::string, int> used;
};
NameRegistry& names() {
  static NameRegistry r;
  return r;
}
std::string unique_name(const std::string& base) {
  auto& r = names();
  std::lock_guard lock(r.mutex);
  const int n = r.used[base]++;
  return n == 0 ? base : base + "_" + std::to_string(n);
}
}  // namespace

namespace utils {
void clear_session() {
  auto& r = names();
  std::lock_guard lock(r.mutex);
  r.used.clear();
}
}  // namespace utils

Layer::Layer(std::string class_name, std::string name, std::string python_class)
    : class_name_(std::move(class_name)),
      python_class_(std::move(python_class)),
      name_(name.empty() ? unique_name(serialization::to_snake_case(python_class_name())) : std::move(name)) {}
Layer::~Layer() = default;
Layer::Layer(Layer&&) noexcept = default;
Layer& Layer::operator=(Layer&&) noexcept = default;

void Layer::set_trainable(bool trainable) {
  trainable_ = trainable;
  for (size_t i = 0; i < weights_.size(); ++i) weights_[i].set_trainable(trainable && declared_trainable_[i]);
  for (Layer* l : sublayers()) l->set_trainable(trainable);
}

ValueError Layer::input_error(const std::string& what) const {
  return ValueError(fmt::format("Input 0 of layer \"{}\" is incompatible with the layer: {}", name_, what));
}

PartialShape Layer::build_for(const PartialShape& input_shape) {
  check_input(input_shape);
  if (!built_) {
    build(input_shape);
    built_ = true;
    build_shapes_ = {input_shape};
  }
  return compute_output_shape(input_shape);
}

void Layer::prepare(const Tensor& x) {
  KCPP_CHECK(x.defined(), ValueError, "layer \"{}\": the input tensor is undefined", name_);
  PartialShape shape = partial_shape_of(x);
  if (!shape.empty()) shape[0] = std::nullopt;  // the batch size is not part of a layer's contract
  build_for(shape);
}

Tensor Layer::autocast_input(const Tensor& x) const {
  if (!autocast_ || !x.defined() || !is_floating(x.dtype()) || x.dtype() == compute_dtype()) return x;
  return ops::cast(x, compute_dtype());
}

AutocastScope Layer::autocast_scope() const {
  return AutocastScope(autocast_ ? std::optional<DType>(compute_dtype()) : std::nullopt);
}

Tensor Layer::operator()(const Tensor& input, bool training) {
  prepare(input);
  const AutocastScope scope = autocast_scope();
  return call(autocast_input(input), training);
}

std::vector<Tensor> Layer::invoke_multi(const std::vector<Tensor>& inputs, bool training, const Tensor& mask) {
  const AutocastScope scope = autocast_scope();
  std::vector<Tensor> cast;
  for (const Tensor& t : inputs) cast.push_back(autocast_input(t));
  return mask.defined() && supports_masking() ? call_multi_masked(cast, mask, training) : call_multi(cast, training);
}

std::pair<Tensor, Tensor> Layer::call_with_mask(const Tensor& input, const Tensor& mask, bool training) {
  prepare(input);
  const AutocastScope scope = autocast_scope();
  const Tensor x = autocast_input(input);
  if (!mask.defined()) {
    Tensor y = call(x, training);
    return {y, supports_masking() ? compute_mask(x, mask) : Tensor()};
  }
  if (!supports_masking()) {
    if (!warned_mask_dropped_)
      detail::log_warn(fmt::format(
          "Layer '{}' (of type {}) was passed an input with a mask attached to it. However, this layer does not "
          "support masking and will therefore destroy the mask information. Downstream layers will not see the "
          "mask.",
          name_, class_name_));
    warned_mask_dropped_ = true;
    return {call(x, training), Tensor()};
  }
  Tensor y = call_masked(x, mask, training);
  return {y, compute_mask(x, mask)};
}

Tensor Layer::logits(const Tensor& x, bool training) {
  prepare(x);
  const AutocastScope scope = autocast_scope();
  return call_logits(autocast_input(x), training);
}

Config Layer::get_config() const {
  return Config{{"name", name_}, {"trainable", trainable_}, {"dtype", dtype_policy_.get_config()}};
}

Config Layer::get_build_config() const {
  if (!built_ || build_shapes_.empty()) return nullptr;
  if (build_shapes_.size() == 1) return Config{{"input_shape", serialization::shape_to_config(build_shapes_[0])}};
  Config shapes = Config::array();
  for (const auto& s : build_shapes_) shapes.push_back(serialization::shape_to_config(s));
  return Config{{"input_shape", shapes}};
}

void Layer::build_from_config(const Config& build_config) {
  if (built_ || !build_config.is_object() || !build_config.contains("input_shape")) return;
  if (call_signature()) return;  // built at its call, which says which input is which (tf.keras writes the query's)
  const Config& shape = build_config["input_shape"];
  if (shape.is_null()) return;
  const std::string what = fmt::format("build_config of layer \"{}\"", name_);
  // A list of shapes (merges) holds lists; one shape holds integers and nulls.
  if (shape.is_array() && !shape.empty() && shape[0].is_array()) {
    std::vector<PartialShape> shapes;
    for (const auto& s : shape) shapes.push_back(serialization::shape_from_config(s, what));
    build_for_multi(shapes);
  } else {
    build_for(serialization::shape_from_config(shape, what));
  }
}

// Symbolic calls -----------------------------------------------------------------------------------

const PartialShape& KerasTensor::shape() const {
  KCPP_CHECK(impl_, ValueError, "the KerasTensor is undefined");
  return impl_->shape;
}
DType KerasTensor::dtype() const {
  KCPP_CHECK(impl_, ValueError, "the KerasTensor is undefined");
  return impl_->dtype;
}
Layer& KerasTensor::producer() const {
  KCPP_CHECK(impl_ && impl_->node && impl_->node->layer, ValueError, "the KerasTensor has no producing layer");
  return *impl_->node->layer;
}
std::string KerasTensor::to_string() const {
  if (!impl_) return "<KerasTensor undefined>";
  return fmt::format("<KerasTensor shape={}, dtype={}, source={}>", shape_to_string(impl_->shape),
                     dtype_name(impl_->dtype), impl_->node && impl_->node->layer ? impl_->node->layer->name() : "?");
}

std::vector<Tensor> Layer::call_multi(const std::vector<Tensor>& inputs, bool training) {
  KCPP_CHECK(inputs.size() == 1, ValueError, "Layer \"{}\" expects 1 input(s), but it received {} input tensors.",
             name_, inputs.size());
  return {(*this)(inputs[0], training)};
}

std::vector<PartialShape> Layer::compute_output_shapes(const std::vector<PartialShape>& shapes) const {
  KCPP_CHECK(shapes.size() == 1, ValueError, "Layer \"{}\" expects 1 input(s), but it received {} input tensors.",
             name_, shapes.size());
  return {compute_output_shape(shapes[0])};
}

void Layer::build_multi(const std::vector<PartialShape>& shapes) { build(shapes.at(0)); }

std::vector<PartialShape> Layer::build_for_multi(const std::vector<PartialShape>& shapes) {
  if (shapes.size() == 1) {
    build_for(shapes[0]);
    return compute_output_shapes(shapes);  // an RNN with return_state has several outputs
  }
  if (!built_) {
    build_multi(shapes);
    built_ = true;
    build_shapes_ = shapes;
  }
  return compute_output_shapes(shapes);
}

// Keyword arguments ----------------------------------------------------------------------------------

bool CallArguments::flag(const std::string& name) const {
  auto it = flags.find(name);
  return it != flags.end() && it->second;
}

int CallArguments::index_of(const std::string& keyword) const {
  for (size_t i = 0; i < input_keywords.size(); ++i)
    if (input_keywords[i] == keyword) return static_cast<int>(i);
  return -1;
}

void Layer::check_call_arguments(size_t num_inputs, const CallArguments& args) const {
  const auto signature = call_signature();
  KCPP_CHECK(signature, ValueError, "layer \"{}\" ({}) takes no keyword arguments", name_, class_name_);
  KCPP_CHECK(args.input_keywords.size() == num_inputs, ValueError,
             "layer \"{}\": {} input keyword(s) for {} input(s)", name_, args.input_keywords.size(), num_inputs);
  auto known = [](const std::vector<std::string>& list, const std::string& name) {
    return std::find(list.begin(), list.end(), name) != list.end();
  };
  for (size_t i = 0; i < num_inputs; ++i) {
    const std::string& k = args.input_keywords[i];
    KCPP_CHECK(k.empty() || known(signature->tensor_keywords, k), ValueError,
               "layer \"{}\" ({}): expected a tensor argument among [{}], received \"{}\"", name_, class_name_,
               fmt::join(signature->tensor_keywords, ", "), k);
    KCPP_CHECK(k.empty() || args.index_of(k) == static_cast<int>(i), ValueError,
               "layer \"{}\": the argument \"{}\" is given twice", name_, k);
  }
  for (const auto& [flag, value] : args.flags)
    KCPP_CHECK(known(signature->flags, flag), ValueError,
               "layer \"{}\" ({}): expected a flag among [{}], received \"{}\"", name_, class_name_,
               fmt::join(signature->flags, ", "), flag);
}

std::vector<PartialShape> Layer::build_for_call(const std::vector<PartialShape>& shapes, const CallArguments& args) {
  if (!built_) {
    build_for_arguments(shapes, args);
    built_ = true;
    build_shapes_ = shapes;
  }
  return compute_output_shapes_for(shapes, args);
}

std::vector<Tensor> Layer::call_with_arguments(const std::vector<Tensor>&, const std::vector<Tensor>&,
                                               const CallArguments&, bool) {
  throw NotImplementedError(
      fmt::format("layer \"{}\" ({}) declares keyword arguments but does not implement call_with_arguments()", name_,
                  class_name_));
}

std::vector<Tensor> Layer::invoke_with_arguments(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks,
                                                 const CallArguments& args, bool training) {
  check_call_arguments(inputs.size(), args);
  KCPP_CHECK(masks.size() == inputs.size(), ValueError, "layer \"{}\": {} mask(s) for {} input(s)", name_,
             masks.size(), inputs.size());
  std::vector<PartialShape> shapes;
  for (const Tensor& t : inputs) {
    KCPP_CHECK(t.defined(), ValueError, "layer \"{}\": an input tensor is undefined", name_);
    PartialShape shape = partial_shape_of(t);
    if (!shape.empty()) shape[0] = std::nullopt;
    shapes.push_back(shape);
  }
  build_for_call(shapes, args);
  const AutocastScope scope = autocast_scope();
  std::vector<Tensor> cast;
  for (const Tensor& t : inputs) cast.push_back(autocast_input(t));
  return call_with_arguments(cast, masks, args, training);
}

std::shared_ptr<Layer> Layer::into_shared() && {
  throw NotImplementedError(
      fmt::format("layer \"{}\" ({}) cannot be moved into a Functional graph: add KERASCPP_LAYER({}) to its class, or "
                  "create it with "
                  "std::make_shared",
                  name_, class_name_, class_name_));
}

KerasTensor Layer::record(std::shared_ptr<Layer> self, const std::vector<KerasTensor>& inputs,
                          const KerasTensor& mask, const CallArguments* args) {
  KCPP_CHECK(!inputs.empty(), ValueError, "layer \"{}\": called on no symbolic tensors", name_);
  std::vector<PartialShape> shapes;
  for (const KerasTensor& t : inputs) {
    KCPP_CHECK(t.defined(), ValueError, "layer \"{}\": called on an undefined KerasTensor", name_);
    shapes.push_back(t.shape());
  }
  CallArguments arguments;
  if (call_signature()) {
    arguments = args ? *args : CallArguments{std::vector<std::string>(inputs.size()), {}};
    check_call_arguments(inputs.size(), arguments);
    KCPP_CHECK(!mask.defined(), NotImplementedError,
               "layer \"{}\" reads its inputs' own masks: an explicit mask argument is not supported", name_);
  } else {
    KCPP_CHECK(!args || args->empty(), ValueError, "layer \"{}\" ({}) takes no keyword arguments", name_, class_name_);
  }
  // Shape errors surface on the calling line.
  const auto out_shapes = call_signature() ? build_for_call(shapes, arguments) : build_for_multi(shapes);
  auto node = std::make_shared<detail::SymbolicNode>();
  node->layer = std::move(self);
  node->inputs = inputs;
  node->arguments = std::move(arguments);
  if (mask.defined()) {
    KCPP_CHECK(inputs.size() == 1 && mask.shape().size() >= 2 && mask.shape().size() < inputs[0].shape().size(),
               ValueError,
               "layer \"{}\": expected a (batch, time) mask for one sequence input, received mask {} for {} "
               "input(s)",
               name_, mask.to_string(), inputs.size());
    node->mask = mask;
  }
  // Every output gets a tensor (an RNN with return_state has several); the node keeps them alive
  // through its first output, which is what the call returns.
  std::vector<std::shared_ptr<detail::KerasTensorImpl>> impls;
  for (size_t k = 0; k < out_shapes.size(); ++k) {
    auto impl = std::make_shared<detail::KerasTensorImpl>();
    impl->shape = out_shapes[k];
    impl->dtype = DType::float32;
    impl->node = node;
    impl->output_index = k;
    node->outputs.push_back(impl);
    impls.push_back(impl);
  }
  for (size_t k = 1; k < impls.size(); ++k) impls[0]->siblings.push_back(impls[k]);
  return KerasTensor(impls.at(0));
}

std::vector<KerasTensor> KerasTensor::all_outputs() const {
  KCPP_CHECK(impl_, ValueError, "the KerasTensor is undefined");
  KCPP_CHECK(impl_->output_index == 0, ValueError,
             "all_outputs(): call it on the tensor the layer call returned (output 0), received output {}",
             impl_->output_index);
  std::vector<KerasTensor> out{*this};
  for (const auto& s : impl_->siblings) out.emplace_back(s);
  return out;
}

namespace {
std::shared_ptr<Layer> owned(Layer& layer) {
  auto self = layer.weak_from_this().lock();
  KCPP_CHECK(
      self, ValueError,
      "layer \"{}\" is called on a symbolic tensor but is not owned by a std::shared_ptr: call it as a temporary "
      "(layers::Dense(10)(x)) or create it with std::make_shared to call it more than once",
      layer.name());
  return self;
}
}  // namespace

KerasTensor Layer::call_symbolic(const std::vector<KerasTensor>& inputs, const CallArguments& args) {
  return record(owned(*this), inputs, KerasTensor(), &args);
}
KerasTensor Layer::operator()(const KerasTensor& x) & { return record(owned(*this), {x}); }
KerasTensor Layer::operator()(const KerasTensor& x, const KerasTensor& mask) & {
  return record(owned(*this), {x}, mask);
}
KerasTensor Layer::operator()(const KerasTensor& x, const KerasTensor& mask) && {
  auto self = weak_from_this().lock();
  if (!self) self = std::move(*this).into_shared();
  return self->record(self, {x}, mask);
}
KerasTensor Layer::operator()(const std::vector<KerasTensor>& xs) & { return record(owned(*this), xs); }
KerasTensor Layer::operator()(const KerasTensor& x) && {
  auto self = weak_from_this().lock();
  if (!self) self = std::move(*this).into_shared();
  return self->record(self, {x});
}
KerasTensor Layer::operator()(const std::vector<KerasTensor>& xs) && {
  auto self = weak_from_this().lock();
  if (!self) self = std::move(*this).into_shared();
  return self->record(self, xs);
}

LayerRef::LayerRef(const KerasTensor& input) {
  KCPP_CHECK(input.defined() && input.impl()->node && input.impl()->node->inputs.empty(), ValueError,
             "only a model input (layers::Input) can stand in a list of layers, received {}", input.to_string());
  ptr_ = input.impl()->node->layer;
}

Tensor Layer::call_logits(const Tensor& x, bool training) {
  throw NotImplementedError(fmt::format("layer \"{}\" ({}) does not end with a softmax", name_, class_name_));
}

Variable& Layer::add_weight(const std::string& weight_name, const Shape& shape, const Initializer& initializer,
                            bool trainable, Regularizer regularizer, Constraint constraint) {
  NoGradScope no_grad;
  detail::charge_weight_budget(name_, weight_name, shape);
  Tensor value = initializer(shape);
  KCPP_CHECK(value.shape() == shape, ValueError, "layer \"{}\": initializer {} returned shape {}, expected {}", name_,
             initializer.name(), value.shape().to_string(), shape.to_string());
  weights_.emplace_back(ops::to_backend(value, default_backend()), name_ + "/" + weight_name, trainable && trainable_);
  declared_trainable_.push_back(trainable);
  regularizers_.push_back(std::move(regularizer));
  constraints_.push_back(std::move(constraint));
  return weights_.back();
}

Tensor Layer::regularization_loss() {
  Tensor total;
  for (size_t i = 0; i < weights_.size(); ++i)
    if (regularizers_[i] && weights_[i].trainable()) {
      const Tensor r = regularizers_[i](weights_[i].value());
      total = total.defined() ? total + r : r;
    }
  for (Layer* l : sublayers()) {
    const Tensor r = l->regularization_loss();
    if (r.defined()) total = total.defined() ? total + r : r;
  }
  return total;
}

namespace {
thread_local ActivityLossScope* activity_scope = nullptr;
}  // namespace
ActivityLossScope::ActivityLossScope() : previous_(activity_scope) { activity_scope = this; }
ActivityLossScope::~ActivityLossScope() { activity_scope = previous_; }
ActivityLossScope* ActivityLossScope::current() { return activity_scope; }
void ActivityLossScope::add(const Tensor& penalty) { total_ = total_.defined() ? total_ + penalty : penalty; }

void Layer::record_activity_loss(const Tensor& output) const {
  if (!activity_regularizer_ || !activity_scope || !output.defined()) return;
  Tensor penalty = activity_regularizer_(output);
  // Keras divides by the batch size (divide_no_nan: an empty batch adds 0).
  if (output.rank() > 0) penalty = output.dim(0) > 0 ? penalty * (1.f / static_cast<float>(output.dim(0))) : penalty * 0.f;
  activity_scope->add(penalty);
}

bool Layer::samples_independent() const {
  if (class_name() == "Lambda" || !serialization::is_builtin(class_name())) return false;
  for (const Layer* l : sublayers())
    if (!l->samples_independent()) return false;
  return true;
}

void Layer::apply_constraints() {
  NoGradScope no_grad;
  for (size_t i = 0; i < weights_.size(); ++i)
    if (constraints_[i] && weights_[i].trainable()) weights_[i].assign(constraints_[i](weights_[i].value()));
  for (Layer* l : sublayers()) l->apply_constraints();
}

std::vector<Variable*> Layer::weights() {
  std::vector<Variable*> out;
  for (auto& w : weights_) out.push_back(&w);
  for (Layer* l : sublayers())
    for (Variable* v : l->weights())
      if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);  // shared layers count once
  return out;
}

std::vector<random::SeedGenerator*> Layer::seed_generators() {
  std::vector<random::SeedGenerator*> out;
  for (Layer* l : sublayers())
    for (random::SeedGenerator* g : l->seed_generators())
      if (std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
  return out;
}
std::vector<Variable*> Layer::variables_in_saving_order() {
  std::vector<Variable*> out;
  for (size_t i = 0; i < weights_.size(); ++i)
    if (declared_trainable_[i]) out.push_back(&weights_[i]);
  for (size_t i = 0; i < weights_.size(); ++i)
    if (!declared_trainable_[i]) out.push_back(&weights_[i]);
  return out;
}

namespace detail {
namespace {
thread_local int64_t* weight_budget = nullptr;  // bytes left while a file's model is being built
}
WeightBudgetScope::WeightBudgetScope(int64_t bytes) : bytes_(bytes), previous_(weight_budget) {
  weight_budget = &bytes_;
}
WeightBudgetScope::~WeightBudgetScope() { weight_budget = previous_; }
void charge_weight_budget(const std::string& layer, const std::string& weight, const Shape& shape) {
  if (!weight_budget) return;
  const int64_t bytes = shape.num_elements() * 4;
  KCPP_CHECK(bytes <= *weight_budget, ValueError,
             "layer \"{}\": weight {} of shape {} ({} bytes) exceeds what the file being loaded can hold ({} bytes "
             "left); the config is inconsistent with its weights, refused before allocating",
             layer, weight, shape.to_string(), bytes, *weight_budget);
  *weight_budget -= bytes;
}
}  // namespace detail

std::vector<Variable*> Layer::trainable_weights() {
  std::vector<Variable*> out;
  for (Variable* v : weights())
    if (v->trainable()) out.push_back(v);
  return out;
}
std::vector<Variable*> Layer::non_trainable_weights() {
  std::vector<Variable*> out;
  for (Variable* v : weights())
    if (!v->trainable()) out.push_back(v);
  return out;
}
int64_t Layer::count_params() const {
  int64_t n = 0;
  for (const Variable* v : const_cast<Layer*>(this)->weights()) n += v->value().num_elements();
  return n;
}

std::vector<Tensor> Layer::get_weights() {
  std::vector<Tensor> out;
  for (Variable* w : weights()) out.push_back(ops::copy(w->value()));
  return out;
}

void Layer::set_weights(const std::vector<Tensor>& values) {
  const auto ws = weights();
  KCPP_CHECK(values.size() == ws.size(), ValueError, "layer \"{}\": set_weights expected {} arrays, received {}", name_,
             ws.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    KCPP_CHECK(values[i].shape() == ws[i]->shape(), ShapeError,
               "layer \"{}\": weight {} ({}) has shape {}, received {}", name_, i, ws[i]->name(),
               ws[i]->shape().to_string(), values[i].shape().to_string());
    ws[i]->assign(ops::to_backend(values[i], *ws[i]->value().backend()));
  }
}

}  // namespace keras
