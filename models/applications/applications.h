#pragma once
// keras.applications: the ImageNet models with Keras' layer names, so Keras' own weight files load.
#include <optional>
#include <string>
#include <vector>

#include "../model.h"

namespace keras::applications {

/// Keras' keyword arguments of the application constructors, with Keras' defaults.
struct ApplicationOptions {
  bool include_top = true;
  /// "imagenet" (Keras' weight file from $KERAS_HOME/models or ~/.keras/models), "" for random
  /// initialization (Keras' None), or the path to a weights file.
  std::string weights = "imagenet";
  /// (height, width, channels). When empty: the default size with the top, (None, None, 3) without.
  std::vector<int64_t> input_shape;
  /// Without the top: "" (the 4-d feature map), "avg" or "max" (global pooling).
  std::string pooling;
  int64_t classes = 1000;
  std::string classifier_activation = "softmax";
  /// The model's name; the application's own ("inception_v3") when empty.
  std::string name;
};

/// InceptionV3 (Szegedy et al. 2016). Default input 299x299x3, at least 75x75. 23,851,784
/// parameters with the top, 21,802,784 without. Preprocess with inception_v3::preprocess_input.
KERASCPP_API std::shared_ptr<Model> InceptionV3(ApplicationOptions options = {});

/// ResNet50 (He et al. 2015, v1). Default input 224x224x3, at least 32x32. 25,636,712 parameters with
/// the top, 23,587,712 without. Preprocess with resnet50::preprocess_input.
KERASCPP_API std::shared_ptr<Model> ResNet50(ApplicationOptions options = {});

/// VGG16 (Simonyan and Zisserman 2014). Default input 224x224x3, at least 32x32. 138,357,544
/// parameters with the top, 14,714,688 without. Preprocess with vgg16::preprocess_input.
KERASCPP_API std::shared_ptr<Model> VGG16(ApplicationOptions options = {});
/// VGG19: VGG16 with four convolutions in blocks 3 to 5. 143,667,240 parameters with the top,
/// 20,024,384 without. Preprocess with vgg19::preprocess_input.
KERASCPP_API std::shared_ptr<Model> VGG19(ApplicationOptions options = {});

namespace resnet50 {
/// Keras' "caffe" mode: RGB to BGR and the ImageNet means subtracted, pixels in [0, 255].
KERASCPP_API Tensor preprocess_input(const Tensor& x);
}  // namespace resnet50

namespace vgg16 {
/// Keras' "caffe" mode, as resnet50::preprocess_input.
KERASCPP_API Tensor preprocess_input(const Tensor& x);
}  // namespace vgg16
namespace vgg19 {
/// Keras' "caffe" mode, as resnet50::preprocess_input.
KERASCPP_API Tensor preprocess_input(const Tensor& x);
}  // namespace vgg19

namespace inception_v3 {
/// Scales pixels in [0, 255] to [-1, 1] (Keras' "tf" mode).
KERASCPP_API Tensor preprocess_input(const Tensor& x);
}  // namespace inception_v3

namespace detail {
/// Where Keras caches `file_name` ($KERAS_HOME/models or ~/.keras/models); IOError naming the
/// file, the folders searched and where to put it when it is absent.
KERASCPP_API std::string imagenet_weights_path(const std::string& file_name, const std::string& model);
/// Keras' obtain_input_shape: the (h, w, c) to build, checked against the model's limits.
std::vector<std::optional<int64_t>> input_shape_for(const ApplicationOptions& o, const std::string& model, int64_t default_size,
                                     int64_t min_size);
/// Checks the options Keras checks (weights, classes with imagenet, pooling).
void check_options(const ApplicationOptions& o, const std::string& model);
/// Loads o.weights into the model: the named file, or Keras' ImageNet file `file_name`.
void load_application_weights(Model& model, const ApplicationOptions& o, const std::string& file_name);
}  // namespace detail

}  // namespace keras::applications
