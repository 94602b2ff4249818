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

/// A model from its serialized config (Keras 2 or 3: Sequential, Functional or Model), not compiled.
/// Only registered layer classes are instantiated; Lambda layers are refused.
KERASCPP_API std::shared_ptr<Model> model_from_config(const Config& serialized);
/// As model_from_config, from the text of model.to_json() (Python Keras' or kerascpp's).
KERASCPP_API std::shared_ptr<Model> model_from_json(const std::string& json);

}  // namespace keras::models
