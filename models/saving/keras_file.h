#pragma once
// Internal: weights in Keras' HDF5 layouts, for Model::save_weights and Model::load_weights.
#include <string>

#include "../model.h"

namespace keras::saving {

/// Keras 3's .weights.h5 layout (with the optimizer state when compiled), written atomically.
void save_keras_weights(Model& model, const std::string& path);
/// A Keras 3 .weights.h5, a legacy .h5 (weights-only or full model) or the weights of a .keras file.
void load_keras_weights(Model& model, const std::string& path, const LoadWeightsOptions& options);

}  // namespace keras::saving
