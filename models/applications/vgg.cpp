// VGG16 and VGG19 as keras.applications builds them: Keras' layer names (block1_conv1, ..., fc1,
// fc2, predictions) and order, so Keras' weight files load and summaries agree.
#include <array>
#include <string>

#include "layers/convolutional/conv2d.h"
#include "layers/core/dense.h"
#include "layers/core/input_layer.h"
#include "layers/core/simple_layers.h"
#include "layers/pooling/pooling2d.h"
#include "layers/pooling/pooling_more.h"
#include "models/applications/applications.h"

namespace keras::applications {

namespace {

// convs_per_block: VGG16 {2, 2, 3, 3, 3}, VGG19 {2, 2, 4, 4, 4}; filters 64, 128, 256, 512, 512.
std::shared_ptr<Model> vgg(ApplicationOptions o, const std::string& model, const std::string& file_stem,
                           const std::array<int, 5>& convs_per_block) {
  detail::check_options(o, model);
  auto img_input = layers::Input(detail::input_shape_for(o, model, 224, 32));
  const int64_t filters[5] = {64, 128, 256, 512, 512};
  KerasTensor x = img_input;
  for (int b = 0; b < 5; ++b) {
    const std::string block = "block" + std::to_string(b + 1);
    for (int c = 1; c <= convs_per_block[static_cast<size_t>(b)]; ++c)
      x = layers::Conv2D(filters[b], {3, 3},
                         {.padding = "same", .activation = "relu", .name = block + "_conv" + std::to_string(c)})(x);
    x = layers::MaxPooling2D({2, 2}, {.strides = std::array<int64_t, 2>{2, 2}, .name = block + "_pool"})(x);
  }
  if (o.include_top) {
    x = layers::Flatten("flatten")(x);
    x = layers::Dense(4096, {.activation = "relu", .name = "fc1"})(x);
    x = layers::Dense(4096, {.activation = "relu", .name = "fc2"})(x);
    x = layers::Dense(o.classes, {.activation = o.classifier_activation, .name = "predictions"})(x);
  } else if (o.pooling == "avg") {
    x = layers::GlobalAveragePooling2D()(x);
  } else if (o.pooling == "max") {
    x = layers::GlobalMaxPooling2D()(x);
  }
  return detail::finish_application(img_input, x, o, file_stem, detail::keras_weights_file(file_stem, o.include_top));
}

}  // namespace

std::shared_ptr<Model> VGG16(ApplicationOptions o) { return vgg(std::move(o), "VGG16", "vgg16", {2, 2, 3, 3, 3}); }
std::shared_ptr<Model> VGG19(ApplicationOptions o) { return vgg(std::move(o), "VGG19", "vgg19", {2, 2, 4, 4, 4}); }

Tensor vgg16::preprocess_input(const Tensor& x) { return resnet50::preprocess_input(x); }
Tensor vgg19::preprocess_input(const Tensor& x) { return resnet50::preprocess_input(x); }

}  // namespace keras::applications
