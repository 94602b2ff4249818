// InceptionV3 as keras.applications builds it: the same layers in the same order, so Keras' weight
// files (legacy HDF5, matched by layer order) load, and summaries and parameter counts agree.
#include "core/ops.h"
#include "layers/convolutional/conv2d.h"
#include "layers/core/input_layer.h"
#include "layers/core/simple_layers.h"
#include "layers/core/dense.h"
#include "layers/merging/merge.h"
#include "layers/normalization/batch_normalization.h"
#include "layers/pooling/pooling2d.h"
#include "layers/pooling/pooling_more.h"
#include "models/applications/applications.h"

namespace keras::applications {

namespace {

// Conv2D without bias, BatchNormalization without scale, relu: Keras' conv2d_bn.
KerasTensor conv2d_bn(const KerasTensor& x, int64_t filters, int64_t rows, int64_t cols,
                      const std::string& padding = "same", std::array<int64_t, 2> strides = {1, 1}) {
  auto y = layers::Conv2D(filters, {rows, cols}, {.strides = strides, .padding = padding, .use_bias = false})(x);
  y = layers::BatchNormalization({.scale = false})(y);
  return layers::Activation("relu")(y);
}

KerasTensor avg_pool_same(const KerasTensor& x) {
  return layers::AveragePooling2D({3, 3}, {.strides = std::array<int64_t, 2>{1, 1}, .padding = "same"})(x);
}
KerasTensor max_pool_valid(const KerasTensor& x) {
  return layers::MaxPooling2D({3, 3}, {.strides = std::array<int64_t, 2>{2, 2}})(x);
}
KerasTensor concat(const std::vector<KerasTensor>& xs, const std::string& name = "") {
  return layers::Concatenate(-1, name)(xs);
}

}  // namespace

std::shared_ptr<Model> InceptionV3(ApplicationOptions o) {
  detail::check_options(o, "InceptionV3");
  const auto shape = detail::input_shape_for(o, "InceptionV3", 299, 75);
  auto img_input = layers::Input(shape);

  auto x = conv2d_bn(img_input, 32, 3, 3, "valid", {2, 2});
  x = conv2d_bn(x, 32, 3, 3, "valid");
  x = conv2d_bn(x, 64, 3, 3);
  x = max_pool_valid(x);
  x = conv2d_bn(x, 80, 1, 1, "valid");
  x = conv2d_bn(x, 192, 3, 3, "valid");
  x = max_pool_valid(x);

  // mixed0..mixed2: 35 x 35 x 256, 288, 288
  for (int i = 0; i < 3; ++i) {
    auto branch1x1 = conv2d_bn(x, 64, 1, 1);
    auto branch5x5 = conv2d_bn(conv2d_bn(x, 48, 1, 1), 64, 5, 5);
    auto branch3x3dbl = conv2d_bn(conv2d_bn(conv2d_bn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3);
    auto branch_pool = conv2d_bn(avg_pool_same(x), i == 0 ? 32 : 64, 1, 1);
    x = concat({branch1x1, branch5x5, branch3x3dbl, branch_pool}, "mixed" + std::to_string(i));
  }
  // mixed3: 17 x 17 x 768
  {
    auto branch3x3 = conv2d_bn(x, 384, 3, 3, "valid", {2, 2});
    auto branch3x3dbl = conv2d_bn(conv2d_bn(conv2d_bn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3, "valid", {2, 2});
    auto branch_pool = max_pool_valid(x);
    x = concat({branch3x3, branch3x3dbl, branch_pool}, "mixed3");
  }
  // mixed4..mixed7: 17 x 17 x 768, the 7x7 factorized blocks
  for (int i = 0; i < 4; ++i) {
    const int64_t c = i == 0 ? 128 : i == 3 ? 192 : 160;
    auto branch1x1 = conv2d_bn(x, 192, 1, 1);
    auto branch7x7 = conv2d_bn(conv2d_bn(conv2d_bn(x, c, 1, 1), c, 1, 7), 192, 7, 1);
    auto branch7x7dbl = conv2d_bn(x, c, 1, 1);
    branch7x7dbl = conv2d_bn(branch7x7dbl, c, 7, 1);
    branch7x7dbl = conv2d_bn(branch7x7dbl, c, 1, 7);
    branch7x7dbl = conv2d_bn(branch7x7dbl, c, 7, 1);
    branch7x7dbl = conv2d_bn(branch7x7dbl, 192, 1, 7);
    auto branch_pool = conv2d_bn(avg_pool_same(x), 192, 1, 1);
    x = concat({branch1x1, branch7x7, branch7x7dbl, branch_pool}, "mixed" + std::to_string(4 + i));
  }
  // mixed8: 8 x 8 x 1280
  {
    auto branch3x3 = conv2d_bn(conv2d_bn(x, 192, 1, 1), 320, 3, 3, "valid", {2, 2});
    auto branch7x7x3 = conv2d_bn(conv2d_bn(conv2d_bn(x, 192, 1, 1), 192, 1, 7), 192, 7, 1);
    branch7x7x3 = conv2d_bn(branch7x7x3, 192, 3, 3, "valid", {2, 2});
    auto branch_pool = max_pool_valid(x);
    x = concat({branch3x3, branch7x7x3, branch_pool}, "mixed8");
  }
  // mixed9, mixed10: 8 x 8 x 2048
  for (int i = 0; i < 2; ++i) {
    auto branch1x1 = conv2d_bn(x, 320, 1, 1);
    auto branch3x3 = conv2d_bn(x, 384, 1, 1);
    branch3x3 = concat({conv2d_bn(branch3x3, 384, 1, 3), conv2d_bn(branch3x3, 384, 3, 1)},
                       "mixed9_" + std::to_string(i));
    auto branch3x3dbl = conv2d_bn(conv2d_bn(x, 448, 1, 1), 384, 3, 3);
    branch3x3dbl = concat({conv2d_bn(branch3x3dbl, 384, 1, 3), conv2d_bn(branch3x3dbl, 384, 3, 1)});
    auto branch_pool = conv2d_bn(avg_pool_same(x), 192, 1, 1);
    x = concat({branch1x1, branch3x3, branch3x3dbl, branch_pool}, "mixed" + std::to_string(9 + i));
  }

  x = detail::classifier_top(x, o, "avg_pool", "", "");
  return detail::finish_application(img_input, x, o, "inception_v3", detail::keras_weights_file("inception_v3", o.include_top));
}

namespace inception_v3 {
Tensor preprocess_input(const Tensor& x) { return detail::scale_to_unit_range(x, "inception_v3::preprocess_input"); }
}  // namespace inception_v3

}  // namespace keras::applications
