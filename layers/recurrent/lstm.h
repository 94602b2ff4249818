#pragma once
#include "rnn.h"

namespace keras::layers {

/// Keras' LSTM: gates i, f, c, o in that order along kernel (features, 4 units), recurrent_kernel
/// (units, 4 units) and bias (4 units, the forget part starting at 1 with unit_forget_bias); states h, c.
class KERASCPP_API LSTM : public RecurrentLayer {
 public:
  KERASCPP_LAYER(LSTM)
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit LSTM(int64_t units, RecurrentOptions options = {});
  size_t num_states() const override { return 2; }
  std::optional<RnnCell> fused_cell() const override;

 protected:
  Initializer bias_init() const override;
  std::vector<Tensor> step(const Tensor& x_t, const std::vector<Tensor>& states,
                           const std::vector<Tensor>& h_in) override;
};

}  // namespace keras::layers
