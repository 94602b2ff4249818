#include "models/applications/applications.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/config.h"
#include "core/ops.h"
#include "layers/core/dense.h"
#include "layers/pooling/pooling_more.h"

namespace keras::applications {

std::vector<std::vector<ImageNetGuess>> decode_predictions(const Tensor& predictions, int64_t top) {
  KCPP_CHECK(predictions.rank() == 2 && predictions.dim(1) == 1000, ValueError,
             "`decode_predictions` expects a batch of predictions (i.e. a 2D array of shape (samples, 1000)). "
             "Received array with shape: {}",
             predictions.shape().to_string());
  KCPP_CHECK(top >= 1 && top <= 1000, ValueError, "decode_predictions: expected top in [1, 1000], received {}", top);
  const std::filesystem::path dir = std::filesystem::path(settings().keras_home) / "models";
  const std::string path = (dir / "imagenet_class_index.json").string();
  std::error_code ec;
  KCPP_CHECK(std::filesystem::is_regular_file(path, ec), IOError,
             "decode_predictions needs Keras' class index imagenet_class_index.json, which is not in {} (KERAS_HOME, "
             "else ~/.keras). kerascpp downloads nothing: copy it there from a machine where Python Keras has "
             "fetched it (keras.applications.imagenet_utils.decode_predictions puts it in ~/.keras/models)",
             dir.string());
  nlohmann::json index;
  try {
    std::ifstream in(path);
    index = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw IOError(fmt::format("decode_predictions: {} is not Keras' imagenet_class_index.json: {}", path, e.what()));
  }
  auto entry = [&](int64_t i) -> std::pair<std::string, std::string> {
    const auto it = index.find(std::to_string(i));
    KCPP_CHECK(it != index.end() && it->is_array() && it->size() == 2 && (*it)[0].is_string() && (*it)[1].is_string(),
               IOError, "decode_predictions: {} has no class {} as [\"wordnet id\", \"name\"]", path, i);
    return {(*it)[0].get<std::string>(), (*it)[1].get<std::string>()};
  };
  const auto scores = predictions.to_vector<float>();
  std::vector<std::vector<ImageNetGuess>> results;
  std::vector<int64_t> order(1000);
  for (int64_t row = 0; row < predictions.dim(0); ++row) {
    const float* p = scores.data() + row * 1000;
    std::iota(order.begin(), order.end(), 0);
    // Highest first; among equal scores the higher index first, as Keras' reversed argsort.
    std::partial_sort(order.begin(), order.begin() + top, order.end(),
                      [&](int64_t a, int64_t b) { return p[a] != p[b] ? p[a] > p[b] : a > b; });
    std::vector<ImageNetGuess> guesses;
    for (int64_t k = 0; k < top; ++k) {
      auto [id, name] = entry(order[static_cast<size_t>(k)]);
      guesses.push_back({std::move(id), std::move(name), p[order[static_cast<size_t>(k)]]});
    }
    results.push_back(std::move(guesses));
  }
  return results;
}

}  // namespace keras::applications

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

void check_options(const ApplicationOptions& o, const std::string& model, bool has_width_options) {
  if (!has_width_options)
    KCPP_CHECK(o.alpha == 1.0 && o.depth_multiplier == 1 && o.dropout == 1e-3, ValueError,
               "{} takes no alpha, depth_multiplier or dropout (MobileNet's options); received alpha={}, "
               "depth_multiplier={}, dropout={}",
               model, o.alpha, o.depth_multiplier, o.dropout);
  KCPP_CHECK(o.alpha > 0 && o.depth_multiplier >= 1 && o.dropout >= 0 && o.dropout < 1, ValueError,
             "{}: expected alpha > 0, depth_multiplier >= 1 and dropout in [0, 1); received alpha={}, "
             "depth_multiplier={}, dropout={}",
             model, o.alpha, o.depth_multiplier, o.dropout);
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
  // As Keras: only ImageNet's classifier fixes the input size; a new top takes any size.
  if (o.include_top && o.weights == "imagenet")
    KCPP_CHECK(o.input_shape == std::vector<int64_t>({default_size, default_size, 3}), ValueError,
               "{}: When setting `include_top=True` and loading `imagenet` weights, `input_shape` should be ({}, {}, "
               "3). Received: input_shape=({})",
               model, default_size, default_size, fmt::join(o.input_shape, ", "));
  KCPP_CHECK(o.weights != "imagenet" || o.input_shape[2] == 3, ValueError,
             "{}: The input must have 3 channels with weights=\"imagenet\"; Received: input_shape=({})", model,
             fmt::join(o.input_shape, ", "));
  KCPP_CHECK(o.input_shape[0] >= min_size && o.input_shape[1] >= min_size, ValueError,
             "{}: Input size must be at least {}x{}; Received: input_shape=({})", model, min_size, min_size,
             fmt::join(o.input_shape, ", "));
  return {o.input_shape[0], o.input_shape[1], o.input_shape[2]};
}

KerasTensor classifier_top(const KerasTensor& x, const ApplicationOptions& o, const std::string& top_pool,
                           const std::string& avg_pool, const std::string& max_pool) {
  if (o.include_top) {
    const auto pooled = layers::GlobalAveragePooling2D(top_pool)(x);
    return layers::Dense(o.classes, {.activation = o.classifier_activation, .name = "predictions"})(pooled);
  }
  if (o.pooling == "avg") return layers::GlobalAveragePooling2D(avg_pool)(x);
  if (o.pooling == "max") return layers::GlobalMaxPooling2D(max_pool)(x);
  return x;
}

Tensor scale_to_unit_range(const Tensor& x, const char* caller) {
  KCPP_CHECK(x.rank() >= 1, ShapeError, "{}: expected images, received a scalar", caller);
  return ops::add(ops::multiply(x, 1.f / 127.5f), -1.f);
}

void load_application_weights(Model& model, const ApplicationOptions& o, const std::string& file_name) {
  if (o.weights.empty()) return;
  model.load_weights(o.weights == "imagenet" ? imagenet_weights_path(file_name, model.name()) : o.weights);
}

std::shared_ptr<Model> finish_application(const KerasTensor& input, const KerasTensor& output,
                                          const ApplicationOptions& o, const std::string& default_name,
                                          const std::string& weights_file) {
  auto model = std::make_shared<Model>(input, output, o.name.empty() ? default_name : o.name);
  load_application_weights(*model, o, weights_file);
  return model;
}

std::string keras_weights_file(const std::string& stem, bool include_top) {
  return stem + (include_top ? "_weights_tf_dim_ordering_tf_kernels.h5" : "_weights_tf_dim_ordering_tf_kernels_notop.h5");
}

}  // namespace keras::applications::detail
