#include "layers/recurrent/lstm.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

namespace {
RecurrentOptions checked(RecurrentOptions o) {
  KCPP_CHECK(!o.reset_after, ValueError, "LSTM: reset_after belongs to GRU");
  if (!o.recurrent_activation) o.recurrent_activation = "sigmoid";
  if (!o.unit_forget_bias) o.unit_forget_bias = true;
  return o;
}
}  // namespace

LSTM::LSTM(int64_t units, RecurrentOptions options) : RecurrentLayer("LSTM", units, checked(std::move(options)), 4) {}

std::optional<RnnCell> LSTM::fused_cell() const {
  if (options_.activation != "tanh" || options_.recurrent_activation != "sigmoid") return std::nullopt;
  return RnnCell::lstm;
}

Initializer LSTM::bias_init() const {
  if (!*options_.unit_forget_bias) return options_.bias_initializer;
  // Keras: the forget gate's bias starts at one, the others from bias_initializer.
  const Initializer base = options_.bias_initializer;
  const int64_t u = units_;
  return Initializer("lstm_bias", [base, u](const Shape&) {
    return ops::concatenate({base(Shape{u}), ops::ones({u}), base(Shape{2 * u})}, 0);
  });
}

std::vector<Tensor> LSTM::step(const Tensor& x_t, const std::vector<Tensor>& states, const std::vector<Tensor>& h_in) {
  const Tensor z = ops::add(x_t, recurrent_product(h_in, 0, 4));
  const auto g = ops::split(z, {units_, units_, units_, units_}, 1);
  const Tensor i = recurrent_activate(g[0]), f = recurrent_activate(g[1]), o = recurrent_activate(g[3]);
  const Tensor c = ops::add(ops::multiply(f, states[1]), ops::multiply(i, activate(g[2])));
  return {ops::multiply(o, activate(c)), c};
}

std::shared_ptr<Layer> LSTM::from_config(const Config& config) {
  serialization::ConfigReader r(config, "LSTM config");
  const int64_t units = r.integer("units");
  RecurrentOptions o = read_options(r, true);
  o.unit_forget_bias = r.boolean("unit_forget_bias", true);
  auto layer = std::make_shared<LSTM>(units, std::move(o));
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
