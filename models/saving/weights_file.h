#pragma once
// kerascpp's own weights file (until Keras' .weights.h5 lands with the saving issue): each
// variable's name, shape and float32 values. Written atomically; read with every size checked.
#include <string>
#include <vector>

#include "../../core/variable.h"

namespace keras::saving {

/// Writes to `path` + a temporary suffix, flushes, then renames over `path`: a crash mid-save leaves
/// the previous file intact. Throws IOError naming the file.
void write_weights_file(const std::string& path, const std::vector<Variable*>& variables);
/// Reads a file written by write_weights_file into `variables` (same count, names and shapes, in
/// order); nothing is assigned unless the whole file checks out. Throws IOError naming the problem.
void read_weights_file(const std::string& path, const std::vector<Variable*>& variables);

}  // namespace keras::saving
