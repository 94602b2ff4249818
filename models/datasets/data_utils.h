#pragma once
// Keras' data helpers for in-memory tensors: to_categorical, normalize, split_dataset, pad_sequences.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../../core/tensor.h"

namespace keras::utils {

/// One-hot float32 encoding of integer class labels, as keras.utils.to_categorical: labels of shape
/// S (a trailing axis of 1 is dropped) give S + (num_classes,). num_classes defaults to the largest
/// label + 1. Throws ValueError on negative labels or labels >= num_classes.
KERASCPP_API Tensor to_categorical(const Tensor& labels, std::optional<int64_t> num_classes = std::nullopt);

/// x divided by its Lp norm along `axis` (order 1 or 2), as keras.utils.normalize; zero vectors stay zero.
KERASCPP_API Tensor normalize(const Tensor& x, int64_t axis = -1, int order = 2);

/// Splits arrays that share their first axis into a left and a right part, as
/// keras.utils.split_dataset: `left_size` is a fraction in (0, 1) or a sample count (>= 1); with
/// `shuffle`, samples are permuted first (reproducibly with `seed`). Returns (left arrays, right arrays).
KERASCPP_API std::pair<std::vector<Tensor>, std::vector<Tensor>> split_dataset(const std::vector<Tensor>& arrays,
                                                                              double left_size, bool shuffle = false,
                                                                              std::optional<uint64_t> seed = std::nullopt);

struct PadSequencesOptions {
  /// The length of every row; the longest sequence's when empty.
  std::optional<int64_t> maxlen;
  /// "pre" (Keras' default) pads at the start, "post" at the end.
  std::string padding = "pre";
  /// "pre" drops the start of longer sequences, "post" their end.
  std::string truncating = "pre";
  int32_t value = 0;
};

/// keras.utils.pad_sequences: lists of word ids to one int32 tensor (sequences, maxlen).
KERASCPP_API Tensor pad_sequences(const std::vector<std::vector<int64_t>>& sequences,
                                  const PadSequencesOptions& options = {});

}  // namespace keras::utils
