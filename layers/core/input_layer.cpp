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

KerasTensor Input(std::vector<std::optional<int64_t>> shape, const InputOptions& options) {
  auto layer = std::make_shared<InputLayer>(std::move(shape), options);
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
