#include "layers/core/input_layer.h"

#include "core/check.h"

namespace keras::layers {

InputLayer::InputLayer(std::vector<std::optional<int64_t>> shape, const InputOptions& o)
    : Layer("InputLayer", o.name.empty() ? "" : o.name), dtype_(dtype_from_name(o.dtype)) {
  batch_shape_.push_back(o.batch_size);
  for (const auto& d : shape) {
    KCPP_CHECK(!d || *d >= 0, ValueError, "Input: dimensions must be non-negative, received {}",
               shape_to_string(shape));
    batch_shape_.push_back(d);
  }
}

void InputLayer::check_input(const PartialShape& s) const {
  bool ok = s.size() == batch_shape_.size();
  for (size_t i = 1; ok && i < s.size(); ++i) ok = !batch_shape_[i] || !s[i] || *batch_shape_[i] == *s[i];
  if (!ok)
    throw input_error(
        fmt::format("expected shape={}, found shape={}", shape_to_string(batch_shape_), shape_to_string(s)));
}

Config InputLayer::get_config() const {
  return Config{{"batch_shape", serialization::shape_to_config(batch_shape_)},
                {"dtype", dtype_name(dtype_)},
                {"sparse", false},
                {"ragged", false},
                {"name", name()}};
}

std::shared_ptr<Layer> InputLayer::from_config(const Config& config) {
  serialization::ConfigReader r(config, "InputLayer config");
  // Keras 3 says batch_shape, Keras 2 batch_input_shape.
  const char* key = r.has("batch_shape") ? "batch_shape" : "batch_input_shape";
  KCPP_CHECK(r.has(key), ValueError, "InputLayer config: expected \"batch_shape\" (or Keras 2's \"batch_input_shape\"), "
             "received keys {}", config.dump().substr(0, 200));
  PartialShape batch_shape = r.shape(key);
  KCPP_CHECK(!batch_shape.empty(), ValueError, "InputLayer config: expected a batch shape of rank >= 1, received []");
  InputOptions o;
  o.name = r.name();
  o.batch_size = batch_shape[0];
  std::string dtype = "float32";
  if (r.has("dtype")) {
    const Config& d = r.raw("dtype");
    if (d.is_string()) dtype = d.get<std::string>();
    else if (d.is_object() && d.contains("config") && d["config"].contains("name") && d["config"]["name"].is_string())
      dtype = d["config"]["name"].get<std::string>();
  }
  o.dtype = dtype;
  r.require("sparse", false);
  r.require("ragged", false);
  auto layer = std::make_shared<InputLayer>(PartialShape(batch_shape.begin() + 1, batch_shape.end()), o);
  r.finish();
  return layer;
}

KerasTensor Input(std::vector<std::optional<int64_t>> shape, const InputOptions& options) {
  return Input(std::make_shared<InputLayer>(std::move(shape), options));
}

KerasTensor Input(std::shared_ptr<InputLayer> layer) {
  KCPP_CHECK(layer != nullptr, ValueError, "Input: expected an InputLayer, received null");
  layer->build_for(layer->batch_shape());
  auto node = std::make_shared<detail::SymbolicNode>();
  node->layer = layer;
  auto impl = std::make_shared<detail::KerasTensorImpl>();
  impl->shape = layer->batch_shape();
  impl->dtype = layer->dtype();
  impl->node = node;
  node->outputs.push_back(impl);
  return KerasTensor(impl);
}

}  // namespace keras::layers
