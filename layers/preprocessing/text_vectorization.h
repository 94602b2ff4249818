#pragma once
// keras.layers.TextVectorization for C++ strings: standardize, split, a vocabulary learned with
// adapt() (Keras' order: by count, ties by token), and integer or multi-hot outputs.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "../../core/tensor.h"
#include "../serialization.h"

namespace keras::layers {

struct TextVectorizationOptions {
  /// The vocabulary's size including the special tokens ("" and "[UNK]" in int mode); unlimited when empty.
  std::optional<int64_t> max_tokens;
  /// "lower_and_strip_punctuation" (Keras' default), "lower", "strip_punctuation" or "" (none).
  std::string standardize = "lower_and_strip_punctuation";
  /// "whitespace" (default) or "character".
  std::string split = "whitespace";
  /// "int" (token ids, 0 for padding, 1 for out-of-vocabulary) or "multi_hot".
  std::string output_mode = "int";
  /// int mode: pad with 0 or truncate every row to this length; else rows are as long as the longest.
  std::optional<int64_t> output_sequence_length;
  /// A fixed vocabulary (without the special tokens) instead of adapt().
  std::vector<std::string> vocabulary;
  std::string name;
};

/// Turns texts into token ids or multi-hot rows, as Keras' TextVectorization. Strings are bytes
/// (UTF-8); lowercasing and punctuation stripping touch ASCII only, as TensorFlow's ops do.
///     layers::TextVectorization vectorize({.max_tokens = 20000, .output_sequence_length = 200});
///     vectorize.adapt(train_texts);
///     Tensor ids = vectorize(batch_texts);  // int32 (batch, 200)
class KERASCPP_API TextVectorization {
 public:
  explicit TextVectorization(TextVectorizationOptions options = {});
  /// Learns the vocabulary from `texts`: tokens by decreasing count, ties by decreasing token, as Keras.
  void adapt(const std::vector<std::string>& texts);
  /// int mode: int32 (texts, length); multi_hot: float32 (texts, vocabulary_size()).
  Tensor operator()(const std::vector<std::string>& texts) const;
  /// The tokens after standardize and split (what the vocabulary is made of).
  std::vector<std::string> tokenize(const std::string& text) const;
  /// With the special tokens first: int mode ["", "[UNK]", ...], multi_hot ["[UNK]", ...].
  std::vector<std::string> get_vocabulary() const;
  void set_vocabulary(const std::vector<std::string>& tokens);
  int64_t vocabulary_size() const { return static_cast<int64_t>(special_.size() + vocabulary_.size()); }
  /// Keras' config keys (module keras.layers, class TextVectorization).
  Config get_config() const;
  const std::string& name() const { return name_; }

 private:
  int64_t id_of(const std::string& token) const;
  TextVectorizationOptions options_;
  std::string name_;
  std::vector<std::string> special_;     // "" and "[UNK]", or "[UNK]"
  std::vector<std::string> vocabulary_;  // learned or given tokens
  std::map<std::string, int64_t> ids_;
};

}  // namespace keras::layers
