#pragma once
#include <string>
#include <utility>

#include "../../core/export.h"
#include "../../core/tensor.h"

namespace keras::datasets {

/// Reads an IDX file (MNIST's format; gzip-compressed or not) into a uint8 tensor on the CPU
/// backend. Throws IOError naming the file for a missing, truncated or malformed file.
KERASCPP_API Tensor read_idx(const std::string& path);

/// One split of a data set: inputs and labels.
struct Split {
  Tensor x, y;
};

namespace fashion_mnist {
/// Keras' shapes: train x (60000, 28, 28) and y (60000,), test x (10000, 28, 28) and y (10000,),
/// uint8. Reads `directory`, by default fashion-mnist/ under KERASCPP_DATASETS_DIR
/// (/usr/share/datasets, where Debian's dataset-fashion-mnist package puts the files). Throws
/// IOError naming the package when the files are missing.
KERASCPP_API std::pair<Split, Split> load_data(const std::string& directory = "");
}  // namespace fashion_mnist

}  // namespace keras::datasets
