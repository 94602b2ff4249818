#include "layers/core/simple_layers.h"

#include "core/check.h"
#include "core/ops.h"
#include "layers/activations.h"

namespace keras::layers {

Activation::Activation(std::string activation, std::string name)
    : Layer("Activation", std::move(name)), activation_(std::move(activation)) {
  activations::check_name(activation_);
}
Tensor Activation::call(const Tensor& x, bool training) { return activations::apply(activation_, x); }

Dropout::Dropout(float rate, DropoutOptions options)
    : Layer("Dropout", options.name), rate_(rate), seeds_(options.seed) {
  KCPP_CHECK(rate >= 0.f && rate < 1.f, ValueError, "Dropout: the rate must be in [0, 1), received {}", rate);
}
Tensor Dropout::call(const Tensor& x, bool training) {
  if (!training || rate_ == 0.f) return x;
  return ops::dropout(x, rate_, seeds_.next());
}

Flatten::Flatten(std::string name) : Layer("Flatten", std::move(name)) {}
Tensor Flatten::call(const Tensor& x, bool training) { return ops::reshape(x, {x.dim(0), -1}); }
PartialShape Flatten::compute_output_shape(const PartialShape& s) const {
  std::optional<int64_t> n = 1;
  for (size_t i = 1; i < s.size(); ++i) n = (n && s[i]) ? std::optional<int64_t>(*n * *s[i]) : std::nullopt;
  return {s.empty() ? std::nullopt : s[0], n};
}

Reshape::Reshape(std::vector<int64_t> target_shape, std::string name)
    : Layer("Reshape", std::move(name)), target_(std::move(target_shape)) {}
Tensor Reshape::call(const Tensor& x, bool training) {
  std::vector<int64_t> dims{x.dim(0)};
  dims.insert(dims.end(), target_.begin(), target_.end());
  return ops::reshape(x, dims);
}
PartialShape Reshape::compute_output_shape(const PartialShape& s) const {
  int64_t known = 1, in = 1;
  bool in_known = true;
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i])
      in *= *s[i];
    else
      in_known = false;
  }
  PartialShape out{s.empty() ? std::nullopt : s[0]};
  for (int64_t d : target_)
    if (d != -1) known *= d;
  for (int64_t d : target_) {
    if (d != -1)
      out.emplace_back(d);
    else
      out.push_back(in_known && known > 0 ? std::optional<int64_t>(in / known) : std::nullopt);
  }
  if (in_known && known > 0) {
    const bool has_free = std::find(target_.begin(), target_.end(), -1) != target_.end();
    KCPP_CHECK(has_free ? in % known == 0 : in == known, ValueError,
               "Reshape \"{}\": total size of the input {} does not match target_shape ({})", name(),
               shape_to_string(s), fmt::join(target_, ", "));
  }
  return out;
}

}  // namespace keras::layers
