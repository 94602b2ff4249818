// Xception as keras.applications builds it: Keras' layer names (block1_conv1, block2_sepconv1, ...;
// the residual 1x1 convolutions and their batch norms keep automatic names, as in Keras) and order,
// so Keras' weight files load and summaries agree.
#include <array>
#include <string>

#include "layers/convolutional/conv2d.h"
#include "layers/convolutional/conv_variants.h"
#include "layers/core/input_layer.h"
#include "layers/core/simple_layers.h"
#include "layers/merging/merge.h"
#include "layers/normalization/batch_normalization.h"
#include "layers/pooling/pooling2d.h"
#include "models/applications/applications.h"

namespace keras::applications {

namespace {

KerasTensor bn(const KerasTensor& x, const std::string& name = "") {
  return layers::BatchNormalization({.name = name})(x);
}
KerasTensor relu(const KerasTensor& x, const std::string& name) { return layers::Activation("relu", name)(x); }
KerasTensor sepconv(const KerasTensor& x, int64_t filters, const std::string& name) {
  return layers::SeparableConv2D(filters, {3, 3}, {.padding = "same", .use_bias = false, .name = name})(x);
}
// The strided 1x1 projection of a downsampling block's shortcut.
KerasTensor residual(const KerasTensor& x, int64_t filters) {
  return bn(layers::Conv2D(filters, {1, 1}, {.strides = {2, 2}, .padding = "same", .use_bias = false})(x));
}
KerasTensor pool(const KerasTensor& x, const std::string& name) {
  return layers::MaxPooling2D({3, 3}, {.strides = std::array<int64_t, 2>{2, 2}, .padding = "same", .name = name})(x);
}

// Blocks 3, 4 and 13: ReLU, separable conv, BN (twice), max-pooling by 2, plus the projected shortcut.
KerasTensor downsampling_block(const KerasTensor& x, int64_t filters1, int64_t filters2, const std::string& block) {
  const auto shortcut = residual(x, filters2);
  auto y = bn(sepconv(relu(x, block + "_sepconv1_act"), filters1, block + "_sepconv1"), block + "_sepconv1_bn");
  y = bn(sepconv(relu(y, block + "_sepconv2_act"), filters2, block + "_sepconv2"), block + "_sepconv2_bn");
  return layers::add({pool(y, block + "_pool"), shortcut});
}

}  // namespace

std::shared_ptr<Model> Xception(ApplicationOptions o) {
  detail::check_options(o, "Xception");
  auto img_input = layers::Input(detail::input_shape_for(o, "Xception", 299, 71));
  // Entry flow.
  auto x = layers::Conv2D(32, {3, 3}, {.strides = {2, 2}, .use_bias = false, .name = "block1_conv1"})(img_input);
  x = relu(bn(x, "block1_conv1_bn"), "block1_conv1_act");
  x = layers::Conv2D(64, {3, 3}, {.use_bias = false, .name = "block1_conv2"})(x);
  x = relu(bn(x, "block1_conv2_bn"), "block1_conv2_act");

  auto shortcut = residual(x, 128);
  x = bn(sepconv(x, 128, "block2_sepconv1"), "block2_sepconv1_bn");
  x = bn(sepconv(relu(x, "block2_sepconv2_act"), 128, "block2_sepconv2"), "block2_sepconv2_bn");
  x = layers::add({pool(x, "block2_pool"), shortcut});
  x = downsampling_block(x, 256, 256, "block3");
  x = downsampling_block(x, 728, 728, "block4");
  // Middle flow: eight residual blocks of three separable convolutions.
  for (int i = 5; i <= 12; ++i) {
    const std::string block = "block" + std::to_string(i);
    auto y = x;
    for (int c = 1; c <= 3; ++c) {
      const std::string conv = block + "_sepconv" + std::to_string(c);
      y = bn(sepconv(relu(y, conv + "_act"), 728, conv), conv + "_bn");
    }
    x = layers::add({y, x});
  }
  // Exit flow.
  x = downsampling_block(x, 728, 1024, "block13");
  x = relu(bn(sepconv(x, 1536, "block14_sepconv1"), "block14_sepconv1_bn"), "block14_sepconv1_act");
  x = relu(bn(sepconv(x, 2048, "block14_sepconv2"), "block14_sepconv2_bn"), "block14_sepconv2_act");
  x = detail::classifier_top(x, o, "avg_pool", "", "");
  return detail::finish_application(img_input, x, o, "xception", detail::keras_weights_file("xception", o.include_top));
}

Tensor xception::preprocess_input(const Tensor& x) { return detail::scale_to_unit_range(x, "xception::preprocess_input"); }

}  // namespace keras::applications
