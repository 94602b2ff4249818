#include "layers/recurrent/conv_lstm2d.h"

#include "core/check.h"
#include "core/ops.h"
#include "layers/activations.h"
#include "layers/convolutional/conv2d.h"
#include "layers/recurrent/rnn.h"

namespace keras::layers {

ConvLSTM2D::ConvLSTM2D(int64_t filters, std::array<int64_t, 2> kernel_size, ConvLSTM2DOptions options)
    : Layer("ConvLSTM2D", options.name), filters_(filters), kernel_size_(kernel_size), o_(std::move(options)) {
  KCPP_CHECK(filters > 0, ValueError, "ConvLSTM2D: expected a positive number of filters, received {}", filters);
  KCPP_CHECK(o_.padding == "valid" || o_.padding == "same", ValueError,
             "ConvLSTM2D: padding must be 'valid' or 'same', received '{}'", o_.padding);
  detail::check_conv_geometry("ConvLSTM2D", {kernel_size[0], kernel_size[1]}, {o_.strides[0], o_.strides[1]},
                              {o_.dilation_rate[0], o_.dilation_rate[1]}, 1);
  activations::check_name(o_.activation);
  activations::check_name(o_.recurrent_activation);
}

void ConvLSTM2D::check_input(const PartialShape& s) const {
  if (s.size() != 5)
    throw input_error(
        fmt::format("expected ndim=5, found ndim={}. Full shape received: {}", s.size(), shape_to_string(s)));
  if (!s[4]) throw input_error("the channel axis must be known, received shape " + shape_to_string(s));
  if (kernel_ && *s[4] != kernel_->shape()[2])
    throw input_error(fmt::format("expected axis -1 of input shape to have value {}, but received input with shape {}",
                                  kernel_->shape()[2], shape_to_string(s)));
}

void ConvLSTM2D::build(const PartialShape& s) {
  const int64_t kh = kernel_size_[0], kw = kernel_size_[1], f = filters_;
  kernel_ = &add_weight("kernel", Shape{kh, kw, *s[4], 4 * f}, o_.kernel_initializer, true, o_.kernel_regularizer,
                        o_.kernel_constraint);
  recurrent_kernel_ = &add_weight("recurrent_kernel", Shape{kh, kw, f, 4 * f}, o_.recurrent_initializer, true,
                                  o_.recurrent_regularizer, o_.recurrent_constraint);
  if (o_.use_bias) {
    Initializer init = o_.bias_initializer;
    if (o_.unit_forget_bias) {
      const Initializer base = o_.bias_initializer;
      init = Initializer("conv_lstm_bias", [base, f](const Shape&) {
        return ops::concatenate({base(Shape{f}), ops::ones({f}), base(Shape{2 * f})}, 0);
      });
    }
    bias_ = &add_weight("bias", Shape{4 * f}, init, true, o_.bias_regularizer, o_.bias_constraint);
  }
}

PartialShape ConvLSTM2D::compute_output_shape(const PartialShape& s) const {
  const auto rows = conv_output_length(s[2], kernel_size_[0], o_.padding, o_.strides[0], o_.dilation_rate[0]);
  const auto cols = conv_output_length(s[3], kernel_size_[1], o_.padding, o_.strides[1], o_.dilation_rate[1]);
  if (o_.return_sequences) return {s[0], s[1], rows, cols, filters_};
  return {s[0], rows, cols, filters_};
}

std::vector<PartialShape> ConvLSTM2D::compute_output_shapes(const std::vector<PartialShape>& shapes) const {
  KCPP_CHECK(shapes.size() == 1, ValueError, "ConvLSTM2D \"{}\" takes one input (initial states are not supported), received {}",
             name(), shapes.size());
  std::vector<PartialShape> out{compute_output_shape(shapes[0])};
  if (o_.return_state) {
    const PartialShape last = o_.return_sequences ? compute_output_shape(shapes[0]) : out[0];
    PartialShape state = o_.return_sequences ? PartialShape{last[0], last[2], last[3], last[4]} : last;
    out.push_back(state);
    out.push_back(state);
  }
  return out;
}

std::vector<Tensor> ConvLSTM2D::run(const Tensor& x) {
  const int64_t n = x.dim(0), t = x.dim(1), f = filters_;
  KCPP_CHECK(t > 0, ValueError, "ConvLSTM2D \"{}\": expected at least one step, received {}", name(),
             x.shape().to_string());
  // Every step's input convolution at once: time folded into the batch.
  const Tensor folded = ops::reshape(x, {n * t, x.dim(2), x.dim(3), x.dim(4)});
  Tensor projected = ops::conv(folded, kernel_->value(), bias_ ? bias_->value() : Tensor(),
                               {.strides = {o_.strides[0], o_.strides[1]},
                                .padding = o_.padding,
                                .dilation_rate = {o_.dilation_rate[0], o_.dilation_rate[1]}});
  const int64_t rows = projected.dim(1), cols = projected.dim(2);
  projected = ops::reshape(projected, {n, t, rows, cols, 4 * f});
  Tensor h = ops::zeros(Shape{n, rows, cols, f}, projected.dtype(), x.backend()), c = h;
  std::vector<Tensor> outputs;
  for (int64_t k = 0; k < t; ++k) {
    const int64_t step = o_.go_backwards ? t - 1 - k : k;
    const Tensor x_t = ops::reshape(ops::slice(projected, {0, step, 0, 0, 0}, {n, 1, rows, cols, 4 * f}),
                                    {n, rows, cols, 4 * f});
    const Tensor z = ops::add(x_t, ops::conv(h, recurrent_kernel_->value(), Tensor(), {.padding = "same"}));
    const auto g = ops::split(z, {f, f, f, f}, -1);
    const Tensor i = activations::apply(o_.recurrent_activation, g[0]);
    const Tensor fg = activations::apply(o_.recurrent_activation, g[1]);
    const Tensor o = activations::apply(o_.recurrent_activation, g[3]);
    c = ops::add(ops::multiply(fg, c), ops::multiply(i, activations::apply(o_.activation, g[2])));
    h = ops::multiply(o, activations::apply(o_.activation, c));
    if (o_.return_sequences) outputs.push_back(ops::expand_dims(h, 1));
  }
  std::vector<Tensor> result{o_.return_sequences ? ops::concatenate(outputs, 1) : h};
  if (o_.return_state) {
    result.push_back(h);
    result.push_back(c);
  }
  return result;
}

Tensor ConvLSTM2D::call(const Tensor& x, bool) { return run(x)[0]; }

std::vector<Tensor> ConvLSTM2D::call_multi(const std::vector<Tensor>& inputs, bool) {
  KCPP_CHECK(inputs.size() == 1, NotImplementedError,
             "ConvLSTM2D \"{}\": initial states are not supported yet; received {} inputs", name(), inputs.size());
  prepare(inputs[0]);
  return run(inputs[0]);
}

Config ConvLSTM2D::get_config() const {
  Config c = Layer::get_config();
  c["filters"] = filters_;
  c["kernel_size"] = Config::array({kernel_size_[0], kernel_size_[1]});
  c["strides"] = Config::array({o_.strides[0], o_.strides[1]});
  c["padding"] = o_.padding;
  c["data_format"] = "channels_last";
  c["dilation_rate"] = Config::array({o_.dilation_rate[0], o_.dilation_rate[1]});
  c["activation"] = o_.activation.empty() ? "linear" : o_.activation;
  c["recurrent_activation"] = o_.recurrent_activation.empty() ? "linear" : o_.recurrent_activation;
  c["use_bias"] = o_.use_bias;
  c["kernel_initializer"] = o_.kernel_initializer.serialized();
  c["recurrent_initializer"] = o_.recurrent_initializer.serialized();
  c["bias_initializer"] = o_.bias_initializer.serialized();
  c["unit_forget_bias"] = o_.unit_forget_bias;
  c["kernel_regularizer"] = o_.kernel_regularizer.serialized();
  c["recurrent_regularizer"] = o_.recurrent_regularizer.serialized();
  c["bias_regularizer"] = o_.bias_regularizer.serialized();
  c["activity_regularizer"] = nullptr;
  c["kernel_constraint"] = o_.kernel_constraint.serialized();
  c["recurrent_constraint"] = o_.recurrent_constraint.serialized();
  c["bias_constraint"] = o_.bias_constraint.serialized();
  c["dropout"] = 0.0;
  c["recurrent_dropout"] = 0.0;
  c["seed"] = nullptr;
  c["return_sequences"] = o_.return_sequences;
  c["return_state"] = o_.return_state;
  c["go_backwards"] = o_.go_backwards;
  c["stateful"] = false;
  return c;
}

std::shared_ptr<Layer> ConvLSTM2D::from_config(const Config& config) {
  serialization::ConfigReader r(config, "ConvLSTM2D config");
  ConvLSTM2DOptions o;
  o.name = r.name();
  r.require("data_format", "channels_last");
  r.require("stateful", false);
  r.require("dropout", 0.0);
  r.require("recurrent_dropout", 0.0);
  r.require("unroll", false);
  if (r.has("strides")) {
    const auto v = r.ints("strides", 2);
    o.strides = {v[0], v[1]};
  }
  if (r.has("dilation_rate")) {
    const auto v = r.ints("dilation_rate", 2);
    o.dilation_rate = {v[0], v[1]};
  }
  o.padding = r.string("padding", "valid");
  o.activation = r.has("activation") ? r.activation("activation") : "tanh";
  o.recurrent_activation = r.has("recurrent_activation") ? r.activation("recurrent_activation") : "sigmoid";
  o.use_bias = r.boolean("use_bias", true);
  o.kernel_initializer = r.initializer("kernel_initializer", "glorot_uniform");
  o.recurrent_initializer = r.initializer("recurrent_initializer", "orthogonal");
  o.bias_initializer = r.initializer("bias_initializer", "zeros");
  o.unit_forget_bias = r.boolean("unit_forget_bias", true);
  o.kernel_regularizer = r.regularizer("kernel_regularizer");
  o.recurrent_regularizer = r.regularizer("recurrent_regularizer");
  o.bias_regularizer = r.regularizer("bias_regularizer");
  o.kernel_constraint = r.constraint("kernel_constraint");
  o.recurrent_constraint = r.constraint("recurrent_constraint");
  o.bias_constraint = r.constraint("bias_constraint");
  r.seed("seed");
  o.return_sequences = r.boolean("return_sequences", false);
  o.return_state = r.boolean("return_state", false);
  o.go_backwards = r.boolean("go_backwards", false);
  const auto k = r.ints("kernel_size", 2);
  auto layer = std::make_shared<ConvLSTM2D>(r.integer("filters"), std::array<int64_t, 2>{k[0], k[1]}, std::move(o));
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
