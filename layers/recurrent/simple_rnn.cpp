#include "layers/recurrent/simple_rnn.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

namespace {
RecurrentOptions checked(RecurrentOptions o) {
  KCPP_CHECK(!o.recurrent_activation && !o.unit_forget_bias && !o.reset_after, ValueError,
             "SimpleRNN: recurrent_activation, unit_forget_bias and reset_after belong to LSTM and GRU");
  return o;
}
}  // namespace

SimpleRNN::SimpleRNN(int64_t units, RecurrentOptions options)
    : RecurrentLayer("SimpleRNN", units, checked(std::move(options)), 1) {}

std::vector<Tensor> SimpleRNN::step(const Tensor& x_t, const std::vector<Tensor>&, const std::vector<Tensor>& h_in) {
  return {activate(ops::add(x_t, recurrent_product(h_in, 0, 1)))};
}

std::shared_ptr<Layer> SimpleRNN::from_config(const Config& config) {
  serialization::ConfigReader r(config, "SimpleRNN config");
  const int64_t units = r.integer("units");
  auto layer = std::make_shared<SimpleRNN>(units, read_options(r));
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
