#include "layers/core/not_equal.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

NotEqual::NotEqual(double operand, std::string name) : Layer("NotEqual", std::move(name)), operand_(operand) {}

Tensor NotEqual::call(const Tensor& x, bool) {
  return ops::not_equal(x, ops::full({}, operand_, x.dtype(), x.backend()));
}

void NotEqual::set_call_constants(const Config& constants) {
  KCPP_CHECK(constants.is_array() && constants.size() == 1 && constants[0].is_number(), NotImplementedError,
             "NotEqual \"{}\": expected one number to compare with, received {}", name(), constants.dump());
  operand_ = constants[0].get<double>();
}

std::shared_ptr<Layer> NotEqual::from_config(const Config& config) {
  serialization::ConfigReader r(config, "NotEqual config");
  auto layer = std::make_shared<NotEqual>(0.0, r.name());
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
