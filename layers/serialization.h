#pragma once
// Keras configs: the JSON objects get_config() returns and from_config() reads, and the registry
// of layer classes a config may name. Only registered classes are ever instantiated: a file can
// name a class, never code.
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/export.h"
#include "keras_tensor.h"

namespace keras {

class Layer;
class Initializer;
class Regularizer;
class Constraint;

/// A Keras config (Python's dict): key order is kept, so files read like Keras' own.
using Config = nlohmann::ordered_json;

/// Makes a layer from its config (the "config" member of a serialized layer).
using LayerFactory = std::function<std::shared_ptr<Layer>(const Config& config)>;

/// Registers a layer class so configs and files naming it can be loaded, as Keras'
/// register_keras_serializable: `register_layer_class("MyLayer", &MyLayer::from_config)`.
/// Re-registering a name replaces the factory.
KERASCPP_API void register_layer_class(const std::string& class_name, LayerFactory factory);

namespace serialization {

/// {"module": module, "class_name": class_name, "config": config, "registered_name": null}.
KERASCPP_API Config keras_object(const std::string& module, const std::string& class_name, Config config);
/// Keras 3's DTypePolicy object.
KERASCPP_API Config dtype_policy(const std::string& name = "float32");
/// [null, 28, 28, 1].
KERASCPP_API Config shape_to_config(const PartialShape& shape);
/// The inverse; throws ValueError naming `what` on anything but a list of integers and nulls.
KERASCPP_API PartialShape shape_from_config(const Config& j, const std::string& what);
/// "MaxPooling2D" -> "max_pooling2d", as Keras' naming.to_snake_case.
KERASCPP_API std::string to_snake_case(const std::string& class_name);

/// A serialized layer: module, class_name, config, registered_name and (once built) build_config.
KERASCPP_API Config serialize_layer(const Layer& layer);
/// Makes a layer from a serialized one ({"class_name", "config", ...}, Keras 2 or 3), looking the
/// class up among the registered ones; builds it from "build_config" when present. Throws
/// ValueError naming an unknown class, and refuses Lambda layers (a file never becomes code).
KERASCPP_API std::shared_ptr<Layer> deserialize_layer(const Config& serialized);
/// The registered name of a class ("Dense"), or empty when `class_name` is not registered.
KERASCPP_API bool is_registered(const std::string& class_name);
/// Whether `class_name` is one of kerascpp's own layer classes (not a user's registered one).
KERASCPP_API bool is_builtin(const std::string& class_name);

/// Reads a config with errors that name the owner, the key, what was expected and what was
/// received. Keys a layer does not read are logged once as ignored, as newer Keras versions add
/// keys; keys whose value kerascpp cannot honour throw NotImplementedError.
class KERASCPP_API ConfigReader {
 public:
  ConfigReader(const Config& config, std::string owner);

  /// Present and not null.
  bool has(const std::string& key) const;
  const Config& raw(const std::string& key);
  int64_t integer(const std::string& key);
  int64_t integer(const std::string& key, int64_t fallback);
  double number(const std::string& key);
  double number(const std::string& key, double fallback);
  bool boolean(const std::string& key, bool fallback);
  std::string string(const std::string& key);
  std::string string(const std::string& key, const std::string& fallback);
  std::optional<uint64_t> seed(const std::string& key = "seed");
  /// An integer repeated n times, or a list of n integers (Keras' normalize_tuple).
  std::vector<int64_t> ints(const std::string& key, size_t n);
  std::vector<int64_t> int_list(const std::string& key);
  PartialShape shape(const std::string& key);
  /// An activation by name ("linear" and null give ""), or Keras' serialized activation object.
  std::string activation(const std::string& key = "activation");
  Initializer initializer(const std::string& key, const std::string& fallback);
  Regularizer regularizer(const std::string& key);
  Constraint constraint(const std::string& key);
  /// Accepts only `supported` (or a missing key); anything else throws NotImplementedError.
  void require(const std::string& key, const Config& supported);
  /// The layer name ("" when absent: the next automatic one).
  std::string name();
  /// Applies "trainable", checks "dtype", and logs the keys nothing read.
  void finish(Layer& layer);
  /// Logs the keys nothing read (configs that are not layers).
  void finish();

 private:
  const Config& config_;
  std::string owner_;
  std::set<std::string> used_;
  [[noreturn]] void wrong(const std::string& key, const char* expected) const;
};

}  // namespace serialization
}  // namespace keras
