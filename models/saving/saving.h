#pragma once
// Whole models to and from Keras' formats: JSON configs (to_json / model_from_json) and the
// .keras and legacy .h5 files (save_model / load_model).
#include <memory>
#include <string>

#include "../model.h"

namespace keras::models {

struct LoadModelOptions {
  bool compile = true;  // compile with the file's compile_config (and restore the optimizer state)
};

/// Saves the whole model: ".keras" writes Keras 3's zip (config, weights and optimizer state), ".h5"
/// the legacy HDF5 format. Atomic: a crash mid-save leaves the previous file intact.
KERASCPP_API void save_model(Model& model, const std::string& path);
/// Loads a .keras or legacy .h5 file saved by Python Keras (2 or 3, tf.keras) or kerascpp. Files are
/// treated as untrusted: only registered classes, every shape checked before allocating.
KERASCPP_API std::shared_ptr<Model> load_model(const std::string& path, LoadModelOptions options = {});

/// Keras 2's weights-only HDF5 (tf.keras' save_weights("x.h5"), the layout of keras.applications'
/// ImageNet files): layer_names and weight_names at the root. Atomic.
KERASCPP_API void save_weights_legacy_h5(Model& model, const std::string& path);

/// A model from its serialized config (Keras 2 or 3: Sequential, Functional or Model), not compiled.
/// Only registered layer classes are instantiated; Lambda layers are refused.
KERASCPP_API std::shared_ptr<Model> model_from_config(const Config& serialized);
/// As model_from_config, from the text of model.to_json() (Python Keras' or kerascpp's).
KERASCPP_API std::shared_ptr<Model> model_from_json(const std::string& json);

/// HDF5 files are read once in a child process before they are loaded, so a file that crashes or
/// hangs the HDF5 library is refused (IOError) instead; this is that read's time limit (default
/// 60 s, plus 1 s per 64 MiB of file).
KERASCPP_API void set_hdf5_read_timeout(double seconds);

/// What a Keras file holds, read without building a model (`kerascpp-model check`). Reading applies
/// the same safety checks as loading (links, storage, sizes).
struct FileReport {
  std::string format;         // ".keras", "legacy .h5 model", "legacy .h5 weights" or "Keras 3 .weights.h5"
  std::string keras_version;  // as the file records it; empty when absent
  std::string model_class;    // "Sequential", "Functional", ... (empty for weights files)
  std::vector<std::string> layer_classes;    // every layer class of the config, nested ones included
  std::vector<std::string> unknown_classes;  // classes not registered here (register custom layers)
  int64_t weight_arrays = 0;                 // datasets holding weights (optimizer ones excluded)
  int64_t weight_values = 0;                 // their elements
  int64_t optimizer_arrays = 0;
  std::vector<std::string> problems;  // what load_model would refuse (Lambda layers, unknown classes)
};
/// Reads `path` (.keras, .h5, .weights.h5) as untrusted; throws IOError when it is not such a file.
KERASCPP_API FileReport inspect_file(const std::string& path);

}  // namespace keras::models
