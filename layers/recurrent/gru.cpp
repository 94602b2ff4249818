#include "layers/recurrent/gru.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

namespace {
RecurrentOptions checked(RecurrentOptions o) {
  KCPP_CHECK(!o.unit_forget_bias, ValueError, "GRU: unit_forget_bias belongs to LSTM");
  if (!o.recurrent_activation) o.recurrent_activation = "sigmoid";
  if (!o.reset_after) o.reset_after = true;
  return o;
}
}  // namespace

GRU::GRU(int64_t units, RecurrentOptions options) : RecurrentLayer("GRU", units, checked(std::move(options)), 3) {}

std::optional<RnnCell> GRU::fused_cell() const {
  if (options_.activation != "tanh" || options_.recurrent_activation != "sigmoid") return std::nullopt;
  return reset_after() ? RnnCell::gru_reset_after : RnnCell::gru;
}

Tensor GRU::recurrent_bias() {
  if (!bias_ || !reset_after()) return {};
  return ops::reshape(ops::slice(bias_->value(), {1, 0}, {1, -1}), {3 * units_});
}

Shape GRU::bias_shape() const { return reset_after() ? Shape{2, 3 * units_} : Shape{3 * units_}; }

Tensor GRU::input_bias() {
  if (!bias_) return {};
  if (!reset_after()) return bias_->value();
  return ops::reshape(ops::slice(bias_->value(), {0, 0}, {1, -1}), {3 * units_});
}

std::vector<Tensor> GRU::step(const Tensor& x_t, const std::vector<Tensor>& states, const std::vector<Tensor>& h_in) {
  const int64_t u = units_;
  const auto x = ops::split(x_t, {u, u, u}, 1);
  Tensor z, r, hh;
  if (reset_after()) {
    Tensor inner = recurrent_product(h_in, 0, 3);
    if (bias_) inner = ops::add(inner, ops::reshape(ops::slice(bias_->value(), {1, 0}, {1, -1}), {3 * u}));
    const auto rec = ops::split(inner, {u, u, u}, 1);
    z = recurrent_activate(ops::add(x[0], rec[0]));
    r = recurrent_activate(ops::add(x[1], rec[1]));
    hh = activate(ops::add(x[2], ops::multiply(r, rec[2])));
  } else {
    const auto rec = ops::split(recurrent_product(h_in, 0, 2), {u, u}, 1);
    z = recurrent_activate(ops::add(x[0], rec[0]));
    r = recurrent_activate(ops::add(x[1], rec[1]));
    // The reset gate scales h before the candidate's matmul (Keras' reset_after=False).
    std::vector<Tensor> reset_h(h_in.size());
    for (size_t k = 0; k < h_in.size(); ++k) reset_h[k] = ops::multiply(r, h_in[k]);
    hh = activate(ops::add(x[2], recurrent_product(reset_h, 2, 1)));
  }
  // h = z * h_prev + (1 - z) * candidate
  const Tensor& h_prev = states[0];
  return {ops::add(hh, ops::multiply(z, ops::subtract(h_prev, hh)))};
}

std::shared_ptr<Layer> GRU::from_config(const Config& config) {
  serialization::ConfigReader r(config, "GRU config");
  const int64_t units = r.integer("units");
  RecurrentOptions o = read_options(r, true);
  o.reset_after = r.boolean("reset_after", true);
  auto layer = std::make_shared<GRU>(units, std::move(o));
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
