// ResNet50 (v1) as keras.applications builds it: Keras' layer names (conv1_conv, conv2_block1_1_conv,
// ...) and order, so Keras' weight files load and summaries agree.
#include <string>

#include "core/check.h"
#include "core/ops.h"
#include "layers/convolutional/conv2d.h"
#include "layers/core/dense.h"
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
                 const std::string& padding = "valid") {
  return layers::Conv2D(filters, {kernel, kernel}, {.strides = {stride, stride}, .padding = padding, .name = name})(x);
}
KerasTensor bn(const KerasTensor& x, const std::string& name) {
  return layers::BatchNormalization({.epsilon = 1.001e-5f, .name = name})(x);
}

// Keras' residual_block_v1: a 1x1 - 3x3 - 1x1 bottleneck with a projection shortcut in the first
// block of each stack.
KerasTensor block(const KerasTensor& x, int64_t filters, int64_t stride, bool conv_shortcut, const std::string& name) {
  KerasTensor shortcut = x;
  if (conv_shortcut) shortcut = bn(conv(x, 4 * filters, 1, stride, name + "_0_conv"), name + "_0_bn");
  auto y = layers::Activation("relu", name + "_1_relu")(bn(conv(x, filters, 1, stride, name + "_1_conv"), name + "_1_bn"));
  y = layers::Activation("relu", name + "_2_relu")(bn(conv(y, filters, 3, 1, name + "_2_conv", "same"), name + "_2_bn"));
  y = bn(conv(y, 4 * filters, 1, 1, name + "_3_conv"), name + "_3_bn");
  return layers::Activation("relu", name + "_out")(layers::Add(name + "_add")({shortcut, y}));
}

KerasTensor stack(const KerasTensor& x, int64_t filters, int blocks, int64_t stride1, const std::string& name) {
  auto y = block(x, filters, stride1, true, name + "_block1");
  for (int i = 2; i <= blocks; ++i) y = block(y, filters, 1, false, name + "_block" + std::to_string(i));
  return y;
}

}  // namespace

std::shared_ptr<Model> ResNet50(ApplicationOptions o) {
  detail::check_options(o, "ResNet50");
  auto img_input = layers::Input(detail::input_shape_for(o, "ResNet50", 224, 32));
  auto x = layers::ZeroPadding2D({{{3, 3}, {3, 3}}}, "conv1_pad")(img_input);
  x = conv(x, 64, 7, 2, "conv1_conv");
  x = layers::Activation("relu", "conv1_relu")(bn(x, "conv1_bn"));
  x = layers::ZeroPadding2D({{{1, 1}, {1, 1}}}, "pool1_pad")(x);
  x = layers::MaxPooling2D({3, 3}, {.strides = std::array<int64_t, 2>{2, 2}, .name = "pool1_pool"})(x);
  x = stack(x, 64, 3, 1, "conv2");
  x = stack(x, 128, 4, 2, "conv3");
  x = stack(x, 256, 6, 2, "conv4");
  x = stack(x, 512, 3, 2, "conv5");
  if (o.include_top) {
    x = layers::GlobalAveragePooling2D("avg_pool")(x);
    x = layers::Dense(o.classes, {.activation = o.classifier_activation, .name = "predictions"})(x);
  } else if (o.pooling == "avg") {
    x = layers::GlobalAveragePooling2D("avg_pool")(x);
  } else if (o.pooling == "max") {
    x = layers::GlobalMaxPooling2D("max_pool")(x);
  }
  auto model = std::make_shared<Model>(img_input, x, o.name.empty() ? "resnet50" : o.name);
  detail::load_application_weights(*model, o,
                                   o.include_top ? "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
                                                 : "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5");
  return model;
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

}  // namespace keras::applications
