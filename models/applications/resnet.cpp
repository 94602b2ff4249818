// ResNet v1 (50, 101, 152) and v2 (pre-activation) as keras.applications builds them: Keras' layer
// names (conv1_conv, conv2_block1_1_conv, ..., post_bn) and order, so Keras' weight files load and
// summaries agree.
#include <array>
#include <string>

#include "core/check.h"
#include "core/ops.h"
#include "layers/convolutional/conv2d.h"
#include "layers/core/input_layer.h"
#include "layers/core/simple_layers.h"
#include "layers/merging/merge.h"
#include "layers/normalization/batch_normalization.h"
#include "layers/pooling/pooling2d.h"
#include "layers/pooling/pooling_more.h"
#include "layers/reshaping/reshaping.h"
#include "models/applications/applications.h"

namespace keras::applications {

namespace {

KerasTensor conv(const KerasTensor& x, int64_t filters, int64_t kernel, int64_t stride, const std::string& name,
                 bool use_bias = true, const std::string& padding = "valid") {
  return layers::Conv2D(filters, {kernel, kernel},
                        {.strides = {stride, stride}, .padding = padding, .use_bias = use_bias, .name = name})(x);
}
KerasTensor bn(const KerasTensor& x, const std::string& name) {
  return layers::BatchNormalization({.epsilon = 1.001e-5f, .name = name})(x);
}
KerasTensor relu(const KerasTensor& x, const std::string& name) { return layers::Activation("relu", name)(x); }

// Keras' residual_block_v1: a 1x1 - 3x3 - 1x1 bottleneck with a projection shortcut in the first
// block of each stack.
KerasTensor block_v1(const KerasTensor& x, int64_t filters, int64_t stride, bool conv_shortcut,
                     const std::string& name) {
  KerasTensor shortcut = x;
  if (conv_shortcut) shortcut = bn(conv(x, 4 * filters, 1, stride, name + "_0_conv"), name + "_0_bn");
  auto y = relu(bn(conv(x, filters, 1, stride, name + "_1_conv"), name + "_1_bn"), name + "_1_relu");
  y = relu(bn(conv(y, filters, 3, 1, name + "_2_conv", true, "same"), name + "_2_bn"), name + "_2_relu");
  y = bn(conv(y, 4 * filters, 1, 1, name + "_3_conv"), name + "_3_bn");
  return relu(layers::Add(name + "_add")({shortcut, y}), name + "_out");
}

KerasTensor stack_v1(const KerasTensor& x, int64_t filters, int blocks, int64_t stride1, const std::string& name) {
  auto y = block_v1(x, filters, stride1, true, name + "_block1");
  for (int i = 2; i <= blocks; ++i) y = block_v1(y, filters, 1, false, name + "_block" + std::to_string(i));
  return y;
}

// Keras' residual_block_v2: batch norm and ReLU before the convolutions; the stride sits in the last
// block of a stack, whose identity shortcut is then a 1x1 max-pooling with that stride.
KerasTensor block_v2(const KerasTensor& x, int64_t filters, int64_t stride, bool conv_shortcut,
                     const std::string& name) {
  const auto preact = relu(bn(x, name + "_preact_bn"), name + "_preact_relu");
  KerasTensor shortcut = x;
  if (conv_shortcut)
    shortcut = conv(preact, 4 * filters, 1, stride, name + "_0_conv");
  else if (stride > 1)
    shortcut = layers::MaxPooling2D({1, 1}, {.strides = std::array<int64_t, 2>{stride, stride}})(x);
  auto y = relu(bn(conv(preact, filters, 1, 1, name + "_1_conv", false), name + "_1_bn"), name + "_1_relu");
  y = layers::ZeroPadding2D({{{1, 1}, {1, 1}}}, name + "_2_pad")(y);
  y = relu(bn(conv(y, filters, 3, stride, name + "_2_conv", false), name + "_2_bn"), name + "_2_relu");
  y = conv(y, 4 * filters, 1, 1, name + "_3_conv");
  return layers::Add(name + "_out")({shortcut, y});
}

KerasTensor stack_v2(const KerasTensor& x, int64_t filters, int blocks, int64_t stride1, const std::string& name) {
  auto y = block_v2(x, filters, 1, true, name + "_block1");
  for (int i = 2; i < blocks; ++i) y = block_v2(y, filters, 1, false, name + "_block" + std::to_string(i));
  return block_v2(y, filters, stride1, false, name + "_block" + std::to_string(blocks));
}

// Keras' resnet.ResNet: the stem, four stacks of bottleneck blocks (`blocks` per stack), the top.
// v2 ("preact") has no batch norm in the stem and one after the last stack.
std::shared_ptr<Model> resnet(ApplicationOptions o, const std::string& model, const std::string& weights_name,
                              bool preact, const std::array<int, 4>& blocks) {
  detail::check_options(o, model);
  auto img_input = layers::Input(detail::input_shape_for(o, model, 224, 32));
  auto x = layers::ZeroPadding2D({{{3, 3}, {3, 3}}}, "conv1_pad")(img_input);
  x = conv(x, 64, 7, 2, "conv1_conv");
  if (!preact) x = relu(bn(x, "conv1_bn"), "conv1_relu");
  x = layers::ZeroPadding2D({{{1, 1}, {1, 1}}}, "pool1_pad")(x);
  x = layers::MaxPooling2D({3, 3}, {.strides = std::array<int64_t, 2>{2, 2}, .name = "pool1_pool"})(x);
  const int64_t filters[4] = {64, 128, 256, 512};
  for (int s = 0; s < 4; ++s) {
    const std::string name = "conv" + std::to_string(s + 2);
    const int n = blocks[static_cast<size_t>(s)];
    // v1 strides in the first block of stacks 3-5; v2 in the last block of stacks 2-4.
    x = preact ? stack_v2(x, filters[s], n, s == 3 ? 1 : 2, name) : stack_v1(x, filters[s], n, s == 0 ? 1 : 2, name);
  }
  if (preact) x = relu(bn(x, "post_bn"), "post_relu");
  x = detail::classifier_top(x, o, "avg_pool", "avg_pool", "max_pool");
  return detail::finish_application(img_input, x, o, weights_name, detail::keras_weights_file(weights_name, o.include_top));
}

}  // namespace

std::shared_ptr<Model> ResNet50(ApplicationOptions o) { return resnet(std::move(o), "ResNet50", "resnet50", false, {3, 4, 6, 3}); }
std::shared_ptr<Model> ResNet101(ApplicationOptions o) {
  return resnet(std::move(o), "ResNet101", "resnet101", false, {3, 4, 23, 3});
}
std::shared_ptr<Model> ResNet152(ApplicationOptions o) {
  return resnet(std::move(o), "ResNet152", "resnet152", false, {3, 8, 36, 3});
}
std::shared_ptr<Model> ResNet50V2(ApplicationOptions o) {
  return resnet(std::move(o), "ResNet50V2", "resnet50v2", true, {3, 4, 6, 3});
}
std::shared_ptr<Model> ResNet101V2(ApplicationOptions o) {
  return resnet(std::move(o), "ResNet101V2", "resnet101v2", true, {3, 4, 23, 3});
}
std::shared_ptr<Model> ResNet152V2(ApplicationOptions o) {
  return resnet(std::move(o), "ResNet152V2", "resnet152v2", true, {3, 8, 36, 3});
}

namespace resnet50 {
Tensor preprocess_input(const Tensor& x) {
  // Keras' "caffe" mode: RGB to BGR, then the ImageNet channel means subtracted (no scaling).
  KCPP_CHECK(x.rank() >= 1 && x.dim(-1) == 3, ShapeError,
             "resnet50::preprocess_input: expected images with 3 channels last, received {}", x.shape().to_string());
  const Tensor bgr = ops::take(x, Tensor::from_vector<int64_t>({2, 1, 0}, Shape{3}, x.backend()), -1);
  return ops::subtract(bgr, Tensor::from_vector<float>({103.939f, 116.779f, 123.68f}, Shape{3}, x.backend()));
}
}  // namespace resnet50

Tensor resnet_v2::preprocess_input(const Tensor& x) {
  return detail::scale_to_unit_range(x, "resnet_v2::preprocess_input");
}

}  // namespace keras::applications
