// MobileNet (v1) and MobileNetV2 as keras.applications builds them: Keras' layer names (conv1,
// conv_dw_1, conv_pw_1, ...; Conv1, block_1_expand, ..., out_relu), widths rounded as Keras rounds
// them, and Keras' weight file names for each alpha and input size.
#include <array>
#include <cmath>
#include <string>

#include "core/check.h"
#include "layers/activations/activation_layers.h"
#include "layers/convolutional/conv2d.h"
#include "layers/convolutional/conv_variants.h"
#include "layers/core/input_layer.h"
#include "layers/core/simple_layers.h"
#include "layers/merging/merge.h"
#include "layers/normalization/batch_normalization.h"
#include "layers/pooling/pooling_more.h"
#include "layers/reshaping/reshaping.h"
#include "models/applications/applications.h"

namespace keras::applications {

namespace {

KerasTensor relu6(const KerasTensor& x, const std::string& name) {
  return layers::ReLU({.max_value = 6.f, .name = name})(x);
}

// Keras' default_size rule: a square input of one of the trained sizes keeps its size, else 224.
int64_t mobilenet_default_size(const ApplicationOptions& o, std::initializer_list<int64_t> trained) {
  if (o.input_shape.size() == 3 && o.input_shape[0] == o.input_shape[1])
    for (int64_t s : trained)
      if (s == o.input_shape[0]) return s;
  return 224;
}

// The rows in Keras' model and weight file names: the input's height (of the (batch, h, w, c)
// shape); for ImageNet weights 224 unless the input is square and one of the trained sizes.
std::string rows_text(const PartialShape& shape, const ApplicationOptions& o, std::initializer_list<int64_t> trained) {
  const auto rows = shape[1], cols = shape[2];
  if (o.weights == "imagenet") {
    bool known = false;
    for (int64_t s : trained) known = known || (rows && *rows == s);
    if (!known || rows != cols) return "224";
  }
  return rows ? std::to_string(*rows) : "None";
}

KerasTensor depthwise_block(const KerasTensor& x, int64_t pointwise_filters, const ApplicationOptions& o,
                            int64_t stride, int block_id) {
  const std::string id = std::to_string(block_id);
  const auto filters = static_cast<int64_t>(static_cast<double>(pointwise_filters) * o.alpha);
  KerasTensor y = x;
  if (stride != 1) y = layers::ZeroPadding2D({{{0, 1}, {0, 1}}}, "conv_pad_" + id)(y);
  y = layers::DepthwiseConv2D({3, 3}, {.strides = {stride, stride},
                                       .padding = stride == 1 ? "same" : "valid",
                                       .depth_multiplier = o.depth_multiplier,
                                       .use_bias = false,
                                       .name = "conv_dw_" + id})(y);
  y = relu6(layers::BatchNormalization({.name = "conv_dw_" + id + "_bn"})(y), "conv_dw_" + id + "_relu");
  y = layers::Conv2D(filters, {1, 1}, {.padding = "same", .use_bias = false, .name = "conv_pw_" + id})(y);
  return relu6(layers::BatchNormalization({.name = "conv_pw_" + id + "_bn"})(y), "conv_pw_" + id + "_relu");
}

// Keras' _make_divisible: v rounded to the nearest multiple of `divisor` (at least divisor), never
// more than 10% below v.
int64_t make_divisible(double v, int64_t divisor = 8) {
  int64_t rounded = std::max(divisor, static_cast<int64_t>(v + static_cast<double>(divisor) / 2) / divisor * divisor);
  if (static_cast<double>(rounded) < 0.9 * v) rounded += divisor;
  return rounded;
}

KerasTensor bn_v2(const KerasTensor& x, const std::string& name) {
  return layers::BatchNormalization({.momentum = 0.999f, .epsilon = 1e-3f, .name = name})(x);
}

// Keras' correct_pad for a 3x3 kernel with stride 2: one row and column less before the image when
// its size is even (or unknown).
std::array<std::array<int64_t, 2>, 2> correct_pad(const PartialShape& shape) {
  const int64_t adjust_h = shape[1] ? 1 - *shape[1] % 2 : 1, adjust_w = shape[2] ? 1 - *shape[2] % 2 : 1;
  return {{{1 - adjust_h, 1}, {1 - adjust_w, 1}}};
}

// Keras' _inverted_res_block: 1x1 expansion (not in block 0), 3x3 depthwise, 1x1 linear projection,
// and a residual connection where the shape allows.
KerasTensor inverted_res_block(const KerasTensor& x, int64_t expansion, int64_t stride, double alpha, int64_t filters,
                               int block_id) {
  const int64_t in_channels = *x.shape().back();
  const int64_t pointwise_filters = make_divisible(static_cast<double>(static_cast<int64_t>(static_cast<double>(filters) * alpha)));
  std::string prefix = "block_" + std::to_string(block_id) + "_";
  KerasTensor y = x;
  if (block_id != 0) {
    y = layers::Conv2D(expansion * in_channels, {1, 1},
                       {.padding = "same", .use_bias = false, .name = prefix + "expand"})(y);
    y = relu6(bn_v2(y, prefix + "expand_BN"), prefix + "expand_relu");
  } else {
    prefix = "expanded_conv_";
  }
  if (stride == 2) y = layers::ZeroPadding2D(correct_pad(y.shape()), prefix + "pad")(y);
  y = layers::DepthwiseConv2D({3, 3}, {.strides = {stride, stride},
                                       .padding = stride == 1 ? "same" : "valid",
                                       .use_bias = false,
                                       .name = prefix + "depthwise"})(y);
  y = relu6(bn_v2(y, prefix + "depthwise_BN"), prefix + "depthwise_relu");
  y = layers::Conv2D(pointwise_filters, {1, 1}, {.padding = "same", .use_bias = false, .name = prefix + "project"})(y);
  y = bn_v2(y, prefix + "project_BN");
  if (in_channels == pointwise_filters && stride == 1) return layers::Add(prefix + "add")({x, y});
  return y;
}

// "1_0" for alpha 1, as Keras' MobileNet file names; Keras knows 0.25, 0.5, 0.75 and 1.
std::string mobilenet_alpha_text(double alpha) {
  if (alpha == 1.0) return "1_0";
  if (alpha == 0.75) return "7_5";
  if (alpha == 0.5) return "5_0";
  return "2_5";
}

// Python's str(float(alpha)) for the alphas Keras has MobileNetV2 weights for.
std::string python_float(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find('.') == std::string::npos) s += ".0";
  return s;
}

}  // namespace

std::shared_ptr<Model> MobileNet(ApplicationOptions o) {
  detail::check_options(o, "MobileNet", true);
  if (o.weights == "imagenet") {
    KCPP_CHECK(o.depth_multiplier == 1, ValueError,
               "MobileNet: If imagenet weights are being loaded, depth multiplier must be 1. Received "
               "depth_multiplier={}",
               o.depth_multiplier);
    KCPP_CHECK(o.alpha == 0.25 || o.alpha == 0.5 || o.alpha == 0.75 || o.alpha == 1.0, ValueError,
               "MobileNet: If imagenet weights are being loaded, alpha can be one of `0.25`, `0.50`, `0.75` or "
               "`1.0` only. Received alpha={}",
               o.alpha);
  }
  const auto trained = {int64_t{128}, int64_t{160}, int64_t{192}, int64_t{224}};
  auto img_input = layers::Input(detail::input_shape_for(o, "MobileNet", mobilenet_default_size(o, trained), 32));
  const std::string rows = rows_text(img_input.shape(), o, trained);

  auto x = layers::Conv2D(static_cast<int64_t>(32 * o.alpha), {3, 3},
                          {.strides = {2, 2}, .padding = "same", .use_bias = false, .name = "conv1"})(img_input);
  x = relu6(layers::BatchNormalization({.name = "conv1_bn"})(x), "conv1_relu");
  const std::array<std::pair<int64_t, int64_t>, 13> blocks = {{{64, 1},
                                                               {128, 2},
                                                               {128, 1},
                                                               {256, 2},
                                                               {256, 1},
                                                               {512, 2},
                                                               {512, 1},
                                                               {512, 1},
                                                               {512, 1},
                                                               {512, 1},
                                                               {512, 1},
                                                               {1024, 2},
                                                               {1024, 1}}};
  for (size_t i = 0; i < blocks.size(); ++i)
    x = depthwise_block(x, blocks[i].first, o, blocks[i].second, static_cast<int>(i + 1));
  if (o.include_top) {
    x = layers::GlobalAveragePooling2D({.keepdims = true})(x);
    x = layers::Dropout(static_cast<float>(o.dropout), {.name = "dropout"})(x);
    x = layers::Conv2D(o.classes, {1, 1}, {.padding = "same", .name = "conv_preds"})(x);
    x = layers::Reshape({o.classes}, "reshape_2")(x);
    x = layers::Activation(o.classifier_activation, "predictions")(x);
  } else {
    x = detail::classifier_top(x, o, "", "", "");
  }
  const std::string file = "mobilenet_" + mobilenet_alpha_text(o.alpha) + "_" + rows +
                           (o.include_top ? "_tf.h5" : "_tf_no_top.h5");
  return detail::finish_application(img_input, x, o, fmt::format("mobilenet_{:.2f}_{}", o.alpha, rows), file);
}

std::shared_ptr<Model> MobileNetV2(ApplicationOptions o) {
  detail::check_options(o, "MobileNetV2", true);
  KCPP_CHECK(o.depth_multiplier == 1 && o.dropout == 1e-3, ValueError,
             "MobileNetV2 takes no depth_multiplier or dropout (MobileNet's options); received depth_multiplier={}, "
             "dropout={}",
             o.depth_multiplier, o.dropout);
  if (o.weights == "imagenet")
    KCPP_CHECK(o.alpha == 0.35 || o.alpha == 0.5 || o.alpha == 0.75 || o.alpha == 1.0 || o.alpha == 1.3 ||
                   o.alpha == 1.4,
               ValueError,
               "MobileNetV2: If imagenet weights are being loaded, alpha must be one of `0.35`, `0.50`, `0.75`, "
               "`1.0`, `1.3` or `1.4` only; Received `alpha={}`",
               o.alpha);
  const auto trained = {int64_t{96}, int64_t{128}, int64_t{160}, int64_t{192}, int64_t{224}};
  auto img_input = layers::Input(detail::input_shape_for(o, "MobileNetV2", mobilenet_default_size(o, trained), 32));
  const std::string rows = rows_text(img_input.shape(), o, trained);

  auto x = layers::Conv2D(make_divisible(32 * o.alpha), {3, 3},
                          {.strides = {2, 2}, .padding = "same", .use_bias = false, .name = "Conv1"})(img_input);
  x = relu6(bn_v2(x, "bn_Conv1"), "Conv1_relu");
  struct Block {
    int64_t filters, stride, expansion;
  };
  const std::array<Block, 17> blocks = {{{16, 1, 1},
                                         {24, 2, 6},
                                         {24, 1, 6},
                                         {32, 2, 6},
                                         {32, 1, 6},
                                         {32, 1, 6},
                                         {64, 2, 6},
                                         {64, 1, 6},
                                         {64, 1, 6},
                                         {64, 1, 6},
                                         {96, 1, 6},
                                         {96, 1, 6},
                                         {96, 1, 6},
                                         {160, 2, 6},
                                         {160, 1, 6},
                                         {160, 1, 6},
                                         {320, 1, 6}}};
  for (size_t i = 0; i < blocks.size(); ++i)
    x = inverted_res_block(x, blocks[i].expansion, blocks[i].stride, o.alpha, blocks[i].filters, static_cast<int>(i));
  const int64_t last_filters = o.alpha > 1.0 ? make_divisible(1280 * o.alpha) : 1280;
  x = layers::Conv2D(last_filters, {1, 1}, {.use_bias = false, .name = "Conv_1"})(x);
  x = relu6(bn_v2(x, "Conv_1_bn"), "out_relu");
  x = detail::classifier_top(x, o, "", "", "");
  const std::string file = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_" + python_float(o.alpha) + "_" + rows +
                           (o.include_top ? ".h5" : "_no_top.h5");
  return detail::finish_application(img_input, x, o, fmt::format("mobilenetv2_{:.2f}_{}", o.alpha, rows), file);
}

Tensor mobilenet::preprocess_input(const Tensor& x) {
  return detail::scale_to_unit_range(x, "mobilenet::preprocess_input");
}
Tensor mobilenet_v2::preprocess_input(const Tensor& x) {
  return detail::scale_to_unit_range(x, "mobilenet_v2::preprocess_input");
}

}  // namespace keras::applications
