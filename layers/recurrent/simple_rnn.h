#pragma once
#include "rnn.h"

namespace keras::layers {

/// Keras' SimpleRNN: h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias); kernel
/// (features, units), recurrent_kernel (units, units), bias (units).
class KERASCPP_API SimpleRNN : public RecurrentLayer {
 public:
  KERASCPP_LAYER(SimpleRNN)
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit SimpleRNN(int64_t units, RecurrentOptions options = {});

 protected:
  std::vector<Tensor> step(const Tensor& x_t, const std::vector<Tensor>& states,
                           const std::vector<Tensor>& h_in) override;
};

}  // namespace keras::layers
