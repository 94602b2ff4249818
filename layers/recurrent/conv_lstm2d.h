#pragma once
// Keras' ConvLSTM2D: an LSTM whose input and recurrent transforms are 2-d convolutions, over
// sequences of images (batch, time, rows, cols, channels).
#include <array>

#include "../layer.h"

namespace keras::layers {

/// Keras' ConvLSTM2D keyword arguments, with Keras' defaults.
struct ConvLSTM2DOptions {
  std::array<int64_t, 2> strides{1, 1};
  std::string padding = "valid";  // of the input convolution; the recurrent one is always "same"
  std::array<int64_t, 2> dilation_rate{1, 1};
  std::string activation = "tanh";
  std::string recurrent_activation = "sigmoid";
  bool use_bias = true;
  Initializer kernel_initializer = "glorot_uniform";
  Initializer recurrent_initializer = "orthogonal";
  Initializer bias_initializer = "zeros";
  bool unit_forget_bias = true;  // the forget gate's bias starts at one
  Regularizer kernel_regularizer;
  Regularizer recurrent_regularizer;
  Regularizer bias_regularizer;
  Constraint kernel_constraint;
  Constraint recurrent_constraint;
  Constraint bias_constraint;
  bool return_sequences = false;  // every step's output (batch, time, rows', cols', filters)
  bool return_state = false;      // also the final h and c
  bool go_backwards = false;
  std::string name;
};

/// Gates i, f, c, o as Keras' ConvLSTMCell: x_t convolved with kernel (kh, kw, channels, 4 filters)
/// plus bias, h convolved with recurrent_kernel (kh, kw, filters, 4 filters) with "same" padding;
/// c = f * c + i * tanh(.), h = o * tanh(c). States start at zeros. The input convolutions of all
/// steps run as one batch.
class KERASCPP_API ConvLSTM2D : public Layer {
 public:
  KERASCPP_LAYER(ConvLSTM2D)
  ConvLSTM2D(int64_t filters, std::array<int64_t, 2> kernel_size, ConvLSTM2DOptions options = {});
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  Tensor call(const Tensor& x, bool training) override;
  std::vector<Tensor> call_multi(const std::vector<Tensor>& inputs, bool training) override;
  PartialShape compute_output_shape(const PartialShape& input_shape) const override;
  std::vector<PartialShape> compute_output_shapes(const std::vector<PartialShape>& input_shapes) const override;
  std::string variables_subgroup() const override { return "cell"; }

 protected:
  void build(const PartialShape& input_shape) override;
  void check_input(const PartialShape& input_shape) const override;

 private:
  std::vector<Tensor> run(const Tensor& x);
  int64_t filters_;
  std::array<int64_t, 2> kernel_size_;
  ConvLSTM2DOptions o_;
  Variable *kernel_ = nullptr, *recurrent_kernel_ = nullptr, *bias_ = nullptr;
};

}  // namespace keras::layers
