#include "layers/layer.h"

#include <cctype>
#include <map>
#include <mutex>

#include "core/autograd.h"
#include "core/check.h"
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
// "MaxPooling2D" -> "max_pooling2d", "Conv2D" -> "conv2d", as Keras' to_snake_case.
std::string snake_case(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (std::isupper(static_cast<unsigned char>(c))) {
      const bool prev_lower = i > 0 && (std::islower(static_cast<unsigned char>(s[i - 1])));
      const bool next_lower = i + 1 < s.size() && std::islower(static_cast<unsigned char>(s[i + 1]));
      const bool prev_upper = i > 0 && std::isupper(static_cast<unsigned char>(s[i - 1]));
      if (i > 0 && (prev_lower || (prev_upper && next_lower))) out += '_';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;
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

Layer::Layer(std::string class_name, std::string name)
    : class_name_(std::move(class_name)), name_(name.empty() ? unique_name(snake_case(class_name_)) : std::move(name)) {}
Layer::~Layer() = default;
Layer::Layer(Layer&&) noexcept = default;
Layer& Layer::operator=(Layer&&) noexcept = default;

void Layer::set_trainable(bool trainable) {
  trainable_ = trainable;
  for (size_t i = 0; i < weights_.size(); ++i) weights_[i].set_trainable(trainable && declared_trainable_[i]);
}

ValueError Layer::input_error(const std::string& what) const {
  return ValueError(fmt::format("Input 0 of layer \"{}\" is incompatible with the layer: {}", name_, what));
}

PartialShape Layer::build_for(const PartialShape& input_shape) {
  check_input(input_shape);
  if (!built_) {
    build(input_shape);
    built_ = true;
  }
  return compute_output_shape(input_shape);
}

void Layer::prepare(const Tensor& x) {
  KCPP_CHECK(x.defined(), ValueError, "layer \"{}\": the input tensor is undefined", name_);
  PartialShape shape = partial_shape_of(x);
  if (!shape.empty()) shape[0] = std::nullopt;  // the batch size is not part of a layer's contract
  build_for(shape);
}

Tensor Layer::operator()(const Tensor& x, bool training) {
  prepare(x);
  return call(x, training);
}

Tensor Layer::logits(const Tensor& x, bool training) {
  prepare(x);
  return call_logits(x, training);
}

Tensor Layer::call_logits(const Tensor& x, bool training) {
  throw NotImplementedError(fmt::format("layer \"{}\" ({}) does not end with a softmax", name_, class_name_));
}

Variable& Layer::add_weight(const std::string& weight_name, const Shape& shape, const Initializer& initializer,
                            bool trainable) {
  NoGradScope no_grad;
  Tensor value = initializer(shape);
  KCPP_CHECK(value.shape() == shape, ValueError, "layer \"{}\": initializer {} returned shape {}, expected {}", name_,
             initializer.name(), value.shape().to_string(), shape.to_string());
  weights_.emplace_back(ops::to_backend(value, default_backend()), name_ + "/" + weight_name, trainable && trainable_);
  declared_trainable_.push_back(trainable);
  return weights_.back();
}

std::vector<Variable*> Layer::weights() {
  std::vector<Variable*> out;
  for (auto& w : weights_) out.push_back(&w);
  return out;
}
std::vector<Variable*> Layer::trainable_weights() {
  std::vector<Variable*> out;
  for (auto& w : weights_)
    if (w.trainable()) out.push_back(&w);
  return out;
}
std::vector<Variable*> Layer::non_trainable_weights() {
  std::vector<Variable*> out;
  for (auto& w : weights_)
    if (!w.trainable()) out.push_back(&w);
  return out;
}
int64_t Layer::count_params() const {
  int64_t n = 0;
  for (const auto& w : weights_) n += w.value().num_elements();
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
    KCPP_CHECK(values[i].shape() == ws[i]->shape(), ShapeError, "layer \"{}\": weight {} ({}) has shape {}, received {}",
               name_, i, ws[i]->name(), ws[i]->shape().to_string(), values[i].shape().to_string());
    ws[i]->assign(ops::to_backend(values[i], *ws[i]->value().backend()));
  }
}

}  // namespace keras
