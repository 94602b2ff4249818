#include "layers/recurrent/time_distributed.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

TimeDistributed::TimeDistributed(LayerRef layer, std::string name) : Wrapper("TimeDistributed", std::move(name)) {
  inner_.push_back(layer.get());
}

namespace {
PartialShape step_shape(const PartialShape& s) {
  PartialShape inner{std::nullopt};
  inner.insert(inner.end(), s.begin() + 2, s.end());
  return inner;
}
}  // namespace

void TimeDistributed::check_input(const PartialShape& s) const {
  if (s.size() < 3)
    throw input_error(fmt::format("`TimeDistributed` requires input of rank >= 3, received shape {}",
                                  shape_to_string(s)));
}

void TimeDistributed::build(const PartialShape& s) { inner_[0]->build_for(step_shape(s)); }

PartialShape TimeDistributed::compute_output_shape(const PartialShape& s) const {
  const PartialShape inner = inner_[0]->compute_output_shape(step_shape(s));
  PartialShape out{s[0], s[1]};
  out.insert(out.end(), inner.begin() + 1, inner.end());
  return out;
}

Tensor TimeDistributed::call(const Tensor& x, bool training) {
  const int64_t n = x.dim(0), steps = x.dim(1);
  std::vector<int64_t> folded{n * steps};
  for (size_t a = 2; a < x.rank(); ++a) folded.push_back(x.dim(a));
  const Tensor y = (*inner_[0])(ops::reshape(x, folded), training);
  std::vector<int64_t> unfolded{n, steps};
  for (size_t a = 1; a < y.rank(); ++a) unfolded.push_back(y.dim(a));
  return ops::reshape(y, unfolded);
}

Config TimeDistributed::get_config() const {
  Config c = Layer::get_config();
  c["layer"] = serialization::serialize_layer(*inner_[0]);
  return c;
}

std::shared_ptr<Layer> TimeDistributed::from_config(const Config& config) {
  serialization::ConfigReader r(config, "TimeDistributed config");
  const std::string name = r.name();
  auto inner = serialization::deserialize_layer(r.raw("layer"));
  auto layer = std::make_shared<TimeDistributed>(LayerRef(inner), name);
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
