#include "models/applications/applications.h"

#include <filesystem>

#include "core/check.h"
#include "core/config.h"
#include "core/ops.h"

namespace keras::applications::detail {

std::string imagenet_weights_path(const std::string& file_name, const std::string& model) {
  const std::filesystem::path dir = std::filesystem::path(settings().keras_home) / "models";
  const std::filesystem::path path = dir / file_name;
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return path.string();
  throw IOError(fmt::format(
      "{}: weights=\"imagenet\" needs Keras' weight file {}, which is not in {} (KERAS_HOME, else ~/.keras). "
      "kerascpp downloads nothing: copy the file there from a machine where Python Keras has fetched it "
      "(keras.applications.{}(weights=\"imagenet\") puts it in ~/.keras/models), pass its path as weights, or use "
      "weights=\"\" for random initialization",
      model, file_name, dir.string(), model));
}

void check_options(const ApplicationOptions& o, const std::string& model) {
  KCPP_CHECK(o.weights != "imagenet" || !o.include_top || o.classes == 1000, ValueError,
             "{}: If using `weights=\"imagenet\"` with `include_top=True`, `classes` should be 1000. Received "
             "classes={}",
             model, o.classes);
  KCPP_CHECK(o.classes > 0, ValueError, "{}: expected a positive number of classes, received {}", model, o.classes);
  KCPP_CHECK(o.pooling.empty() || o.pooling == "avg" || o.pooling == "max", ValueError,
             "{}: expected pooling \"\", \"avg\" or \"max\", received \"{}\"", model, o.pooling);
  if (o.weights != "imagenet" && !o.weights.empty()) {
    std::error_code ec;
    KCPP_CHECK(std::filesystem::is_regular_file(o.weights, ec), ValueError,
               "{}: The `weights` argument should be either `None` (\"\", random initialization), `imagenet` "
               "(pre-training on ImageNet), or the path to the weights file to be loaded; Received: weights={}",
               model, o.weights);
  }
}

std::vector<std::optional<int64_t>> input_shape_for(const ApplicationOptions& o, const std::string& model,
                                                    int64_t default_size, int64_t min_size) {
  if (o.input_shape.empty()) {
    if (o.include_top) return {default_size, default_size, 3};
    return {std::nullopt, std::nullopt, 3};  // any image size, as Keras without the top
  }
  KCPP_CHECK(o.input_shape.size() == 3, ValueError, "{}: expected input_shape (height, width, channels), received {}",
             model, fmt::join(o.input_shape, ", "));
  if (o.include_top)
    KCPP_CHECK(o.input_shape == std::vector<int64_t>({default_size, default_size, 3}), ValueError,
               "{}: When setting `include_top=True`, `input_shape` should be ({}, {}, 3). Received: input_shape=({})",
               model, default_size, default_size, fmt::join(o.input_shape, ", "));
  KCPP_CHECK(o.weights != "imagenet" || o.input_shape[2] == 3, ValueError,
             "{}: The input must have 3 channels with weights=\"imagenet\"; Received: input_shape=({})", model,
             fmt::join(o.input_shape, ", "));
  KCPP_CHECK(o.input_shape[0] >= min_size && o.input_shape[1] >= min_size, ValueError,
             "{}: Input size must be at least {}x{}; Received: input_shape=({})", model, min_size, min_size,
             fmt::join(o.input_shape, ", "));
  return {o.input_shape[0], o.input_shape[1], o.input_shape[2]};
}

void load_application_weights(Model& model, const ApplicationOptions& o, const std::string& file_name) {
  if (o.weights.empty()) return;
  model.load_weights(o.weights == "imagenet" ? imagenet_weights_path(file_name, model.name()) : o.weights);
}

}  // namespace keras::applications::detail
