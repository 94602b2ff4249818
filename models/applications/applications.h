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
  /// MobileNet and MobileNetV2: the width multiplier (filters in every layer times alpha).
  double alpha = 1.0;
  /// MobileNet: depthwise channels per input channel.
  int64_t depth_multiplier = 1;
  /// MobileNet: the dropout rate before the classifier.
  double dropout = 1e-3;
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

/// ResNet101 and ResNet152 (v1): ResNet50 with 23 (and 8 + 36) blocks in stacks 3 and 4.
/// 44,707,176 and 60,419,944 parameters with the top.
KERASCPP_API std::shared_ptr<Model> ResNet101(ApplicationOptions options = {});
KERASCPP_API std::shared_ptr<Model> ResNet152(ApplicationOptions options = {});
/// ResNet50V2 (He et al. 2016, pre-activation). Default input 224x224x3, at least 32x32. 25,613,800
/// parameters with the top. Preprocess with resnet_v2::preprocess_input.
KERASCPP_API std::shared_ptr<Model> ResNet50V2(ApplicationOptions options = {});
KERASCPP_API std::shared_ptr<Model> ResNet101V2(ApplicationOptions options = {});
KERASCPP_API std::shared_ptr<Model> ResNet152V2(ApplicationOptions options = {});

/// MobileNet (Howard et al. 2017) with options.alpha (width), depth_multiplier and dropout. Default
/// input 224x224x3 (or the square input_shape of 128, 160 or 192), at least 32x32. 4,253,864
/// parameters with the top at alpha 1. Preprocess with mobilenet::preprocess_input.
KERASCPP_API std::shared_ptr<Model> MobileNet(ApplicationOptions options = {});
/// MobileNetV2 (Sandler et al. 2018) with options.alpha. Default input 224x224x3 (or the square
/// input_shape of 96, 128, 160 or 192). 3,538,984 parameters with the top at alpha 1. Preprocess
/// with mobilenet_v2::preprocess_input.
KERASCPP_API std::shared_ptr<Model> MobileNetV2(ApplicationOptions options = {});

/// Xception (Chollet 2017). Default input 299x299x3, at least 71x71. 22,910,480 parameters with the
/// top. Preprocess with xception::preprocess_input.
KERASCPP_API std::shared_ptr<Model> Xception(ApplicationOptions options = {});

/// DenseNet121, 169 and 201 (Huang et al. 2017). Default input 224x224x3, at least 32x32. 8,062,504
/// parameters with the top (DenseNet121). Preprocess with densenet::preprocess_input.
KERASCPP_API std::shared_ptr<Model> DenseNet121(ApplicationOptions options = {});
KERASCPP_API std::shared_ptr<Model> DenseNet169(ApplicationOptions options = {});
KERASCPP_API std::shared_ptr<Model> DenseNet201(ApplicationOptions options = {});

/// One (class_name, class_description, score) guess of decode_predictions.
struct ImageNetGuess {
  std::string class_name;   // the WordNet id, e.g. "n01440764"
  std::string description;  // e.g. "tench"
  float score = 0.f;
};
/// Keras' imagenet_utils.decode_predictions: the `top` highest scores of each row of a (samples, 1000)
/// batch of ImageNet predictions, best first, named from Keras' imagenet_class_index.json (in
/// $KERAS_HOME/models or ~/.keras/models, where Keras caches it; nothing is downloaded).
KERASCPP_API std::vector<std::vector<ImageNetGuess>> decode_predictions(const Tensor& predictions, int64_t top = 5);

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

namespace resnet_v2 {
/// Scales pixels in [0, 255] to [-1, 1] (Keras' "tf" mode).
KERASCPP_API Tensor preprocess_input(const Tensor& x);
}  // namespace resnet_v2
namespace mobilenet {
/// Scales pixels in [0, 255] to [-1, 1] (Keras' "tf" mode).
KERASCPP_API Tensor preprocess_input(const Tensor& x);
}  // namespace mobilenet
namespace mobilenet_v2 {
/// Scales pixels in [0, 255] to [-1, 1] (Keras' "tf" mode).
KERASCPP_API Tensor preprocess_input(const Tensor& x);
}  // namespace mobilenet_v2
namespace xception {
/// Scales pixels in [0, 255] to [-1, 1] (Keras' "tf" mode).
KERASCPP_API Tensor preprocess_input(const Tensor& x);
}  // namespace xception
namespace densenet {
/// Keras' "torch" mode: pixels in [0, 255] scaled to [0, 1], then normalized per channel with the
/// ImageNet mean (0.485, 0.456, 0.406) and standard deviation (0.229, 0.224, 0.225).
KERASCPP_API Tensor preprocess_input(const Tensor& x);
}  // namespace densenet

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
/// Checks the options Keras checks (weights, classes with imagenet, pooling); models without a width
/// multiplier refuse alpha, depth_multiplier and dropout other than their defaults.
void check_options(const ApplicationOptions& o, const std::string& model, bool has_width_options = false);
/// What Keras puts on the feature map: with the top, GlobalAveragePooling2D (named `top_pool`) and
/// Dense "predictions"; without, the global pooling o.pooling asks for (named `avg_pool` or `max_pool`;
/// "" takes the automatic name).
KerasTensor classifier_top(const KerasTensor& x, const ApplicationOptions& o, const std::string& top_pool,
                           const std::string& avg_pool, const std::string& max_pool);
/// Keras' "tf" mode: [0, 255] to [-1, 1].
Tensor scale_to_unit_range(const Tensor& x, const char* caller);
/// Loads o.weights into the model: the named file, or Keras' ImageNet file `file_name`.
void load_application_weights(Model& model, const ApplicationOptions& o, const std::string& file_name);
/// The model from input to output, named o.name or `default_name`, with o.weights loaded; most
/// Keras weight files are "<stem>_weights_tf_dim_ordering_tf_kernels[_notop].h5".
std::shared_ptr<Model> finish_application(const KerasTensor& input, const KerasTensor& output,
                                          const ApplicationOptions& o, const std::string& default_name,
                                          const std::string& weights_file);
std::string keras_weights_file(const std::string& stem, bool include_top);
}  // namespace detail

}  // namespace keras::applications
