// DenseNet121, 169 and 201 as keras.applications builds them: Keras' layer names (conv1_conv,
// conv2_block1_0_bn, ..., pool2_conv, bn) and order, so Keras' weight files load and summaries agree.
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
#include "layers/reshaping/reshaping.h"
#include "models/applications/applications.h"

namespace keras::applications {

namespace {

KerasTensor bn_relu(const KerasTensor& x, const std::string& bn_name, const std::string& relu_name) {
  const auto y = layers::BatchNormalization({.epsilon = 1.001e-5f, .name = bn_name})(x);
  return layers::Activation("relu", relu_name)(y);
}
KerasTensor conv(const KerasTensor& x, int64_t filters, int64_t kernel, const std::string& name,
                 const std::string& padding = "valid") {
  return layers::Conv2D(filters, {kernel, kernel}, {.padding = padding, .use_bias = false, .name = name})(x);
}

// Keras' conv_block: BN-ReLU-1x1 (4 x growth) - BN-ReLU-3x3 (growth), concatenated to the input.
KerasTensor conv_block(const KerasTensor& x, int64_t growth_rate, const std::string& name) {
  auto y = conv(bn_relu(x, name + "_0_bn", name + "_0_relu"), 4 * growth_rate, 1, name + "_1_conv");
  y = conv(bn_relu(y, name + "_1_bn", name + "_1_relu"), growth_rate, 3, name + "_2_conv", "same");
  return layers::Concatenate(-1, name + "_concat")({x, y});
}

// Halves the channels (Keras' reduction 0.5) and the image size.
KerasTensor transition_block(const KerasTensor& x, const std::string& name) {
  auto y = bn_relu(x, name + "_bn", name + "_relu");
  y = conv(y, static_cast<int64_t>(static_cast<double>(*y.shape().back()) * 0.5), 1, name + "_conv");
  return layers::AveragePooling2D({2, 2}, {.strides = std::array<int64_t, 2>{2, 2}, .name = name + "_pool"})(y);
}

std::shared_ptr<Model> build_densenet(ApplicationOptions o, const std::string& model, const std::string& stem,
                                const std::array<int, 4>& blocks) {
  detail::check_options(o, model);
  auto img_input = layers::Input(detail::input_shape_for(o, model, 224, 32));
  auto x = layers::ZeroPadding2D({{{3, 3}, {3, 3}}})(img_input);
  x = layers::Conv2D(64, {7, 7}, {.strides = {2, 2}, .use_bias = false, .name = "conv1_conv"})(x);
  x = bn_relu(x, "conv1_bn", "conv1_relu");
  x = layers::ZeroPadding2D({{{1, 1}, {1, 1}}})(x);
  x = layers::MaxPooling2D({3, 3}, {.strides = std::array<int64_t, 2>{2, 2}, .name = "pool1"})(x);
  for (int s = 0; s < 4; ++s) {
    const std::string name = "conv" + std::to_string(s + 2);
    for (int i = 1; i <= blocks[static_cast<size_t>(s)]; ++i) x = conv_block(x, 32, name + "_block" + std::to_string(i));
    if (s < 3) x = transition_block(x, "pool" + std::to_string(s + 2));
  }
  x = bn_relu(x, "bn", "relu");
  x = detail::classifier_top(x, o, "avg_pool", "avg_pool", "max_pool");
  return detail::finish_application(img_input, x, o, stem, detail::keras_weights_file(stem, o.include_top));
}

}  // namespace

std::shared_ptr<Model> DenseNet121(ApplicationOptions o) {
  return build_densenet(std::move(o), "DenseNet121", "densenet121", {6, 12, 24, 16});
}
std::shared_ptr<Model> DenseNet169(ApplicationOptions o) {
  return build_densenet(std::move(o), "DenseNet169", "densenet169", {6, 12, 32, 32});
}
std::shared_ptr<Model> DenseNet201(ApplicationOptions o) {
  return build_densenet(std::move(o), "DenseNet201", "densenet201", {6, 12, 48, 32});
}

Tensor densenet::preprocess_input(const Tensor& x) {
  // Keras' "torch" mode: [0, 1], then each channel's ImageNet mean and standard deviation.
  KCPP_CHECK(x.rank() >= 1 && x.dim(-1) == 3, ShapeError,
             "densenet::preprocess_input: expected images with 3 channels last, received {}", x.shape().to_string());
  const Tensor mean = Tensor::from_vector<float>({0.485f, 0.456f, 0.406f}, Shape{3}, x.backend());
  const Tensor std = Tensor::from_vector<float>({0.229f, 0.224f, 0.225f}, Shape{3}, x.backend());
  return ops::divide(ops::subtract(ops::multiply(x, 1.f / 255.f), mean), std);
}

}  // namespace keras::applications
