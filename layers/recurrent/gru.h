#pragma once
#include "rnn.h"

namespace keras::layers {

/// Keras' GRU: gates z, r, h along kernel (features, 3 units) and recurrent_kernel (units, 3 units).
/// reset_after (the default, cuDNN's and oneDNN's linear-before-reset form) applies the reset gate
/// after the recurrent matmul and has bias (2, 3 units): input and recurrent rows; otherwise bias (3 units).
class KERASCPP_API GRU : public RecurrentLayer {
 public:
  KERASCPP_LAYER(GRU)
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit GRU(int64_t units, RecurrentOptions options = {});
  bool reset_after() const { return options_.reset_after.value_or(true); }
  std::optional<RnnCell> fused_cell() const override;

 protected:
  Shape bias_shape() const override;
  Tensor input_bias() override;
  Tensor recurrent_bias() override;
  std::vector<Tensor> step(const Tensor& x_t, const std::vector<Tensor>& states,
                           const std::vector<Tensor>& h_in) override;
};

}  // namespace keras::layers
