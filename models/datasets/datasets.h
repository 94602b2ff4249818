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
/// Where Debian's dataset-fashion-mnist package puts the files.
inline constexpr const char* kDefaultDirectory = "/usr/share/datasets/fashion-mnist";
/// Keras' shapes: train x (60000, 28, 28) and y (60000,), test x (10000, 28, 28) and y (10000,),
/// uint8. Throws IOError naming the package when the files are missing.
KERASCPP_API std::pair<Split, Split> load_data(const std::string& directory = kDefaultDirectory);
}  // namespace fashion_mnist

}  // namespace keras::datasets
