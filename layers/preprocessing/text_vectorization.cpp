#include "layers/preprocessing/text_vectorization.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <unordered_map>

#include "core/check.h"

namespace keras::layers {

namespace {
// Keras' punctuation class: [!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']
bool is_punctuation(char c) { return c != '\0' && std::strchr("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'", c) != nullptr; }
std::string auto_name() {
  static int n = 0;
  return n++ == 0 ? "text_vectorization" : "text_vectorization_" + std::to_string(n - 1);
}
}  // namespace

TextVectorization::TextVectorization(TextVectorizationOptions options)
    : options_(std::move(options)), name_(options_.name.empty() ? auto_name() : options_.name) {
  const auto& o = options_;
  KCPP_CHECK(o.standardize.empty() || o.standardize == "lower_and_strip_punctuation" || o.standardize == "lower" ||
                 o.standardize == "strip_punctuation",
             ValueError,
             "TextVectorization: expected standardize \"lower_and_strip_punctuation\", \"lower\", \"strip_punctuation\" "
             "or \"\", received \"{}\"",
             o.standardize);
  KCPP_CHECK(o.split == "whitespace" || o.split == "character", ValueError,
             "TextVectorization: expected split \"whitespace\" or \"character\", received \"{}\"", o.split);
  KCPP_CHECK(o.output_mode == "int" || o.output_mode == "multi_hot", NotImplementedError,
             "TextVectorization: output_mode \"{}\" is not supported; \"int\" and \"multi_hot\" are", o.output_mode);
  KCPP_CHECK(!o.output_sequence_length || (o.output_mode == "int" && *o.output_sequence_length > 0), ValueError,
             "TextVectorization: output_sequence_length needs output_mode \"int\" and a positive length");
  special_ = o.output_mode == "int" ? std::vector<std::string>{"", "[UNK]"} : std::vector<std::string>{"[UNK]"};
  KCPP_CHECK(!o.max_tokens || *o.max_tokens > static_cast<int64_t>(special_.size()), ValueError,
             "TextVectorization: max_tokens must exceed the {} special token(s), received {}", special_.size(),
             o.max_tokens.value_or(0));
  if (!o.vocabulary.empty()) set_vocabulary(o.vocabulary);
}

std::vector<std::string> TextVectorization::tokenize(const std::string& text) const {
  std::string s;
  s.reserve(text.size());
  const bool lower = options_.standardize == "lower" || options_.standardize == "lower_and_strip_punctuation";
  const bool strip = options_.standardize == "strip_punctuation" || options_.standardize == "lower_and_strip_punctuation";
  for (char c : text) {
    if (strip && is_punctuation(c)) continue;
    s.push_back(lower ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c);
  }
  std::vector<std::string> tokens;
  if (options_.split == "character") {
    // UTF-8 code points, as tf.strings.unicode_split.
    for (size_t i = 0; i < s.size();) {
      size_t len = 1;
      const auto b = static_cast<unsigned char>(s[i]);
      if (b >= 0xF0) len = 4; else if (b >= 0xE0) len = 3; else if (b >= 0xC0) len = 2;
      len = std::min(len, s.size() - i);
      tokens.push_back(s.substr(i, len));
      i += len;
    }
    return tokens;
  }
  std::string current;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!current.empty()) tokens.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  if (!current.empty()) tokens.push_back(std::move(current));
  return tokens;
}

void TextVectorization::adapt(const std::vector<std::string>& texts) {
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& t : texts)
    for (auto& token : tokenize(t)) ++counts[token];
  for (const auto& s : special_) counts.erase(s);
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  // Keras: np.lexsort((tokens, counts))[::-1]: decreasing count, ties by decreasing token.
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first > b.first;
  });
  std::vector<std::string> tokens;
  const int64_t room = options_.max_tokens ? *options_.max_tokens - static_cast<int64_t>(special_.size()) : INT64_MAX;
  for (const auto& [token, count] : sorted) {
    if (static_cast<int64_t>(tokens.size()) >= room) break;
    tokens.push_back(token);
  }
  set_vocabulary(tokens);
}

void TextVectorization::set_vocabulary(const std::vector<std::string>& tokens) {
  std::map<std::string, int64_t> ids;
  for (size_t i = 0; i < tokens.size(); ++i) {
    KCPP_CHECK(std::find(special_.begin(), special_.end(), tokens[i]) == special_.end(), ValueError,
               "TextVectorization: the vocabulary must not contain the special token \"{}\" (position {})", tokens[i],
               i);
    KCPP_CHECK(ids.emplace(tokens[i], static_cast<int64_t>(special_.size() + i)).second, ValueError,
               "TextVectorization: the vocabulary repeats \"{}\" (position {})", tokens[i], i);
  }
  KCPP_CHECK(!options_.max_tokens || static_cast<int64_t>(special_.size() + tokens.size()) <= *options_.max_tokens,
             ValueError, "TextVectorization: a vocabulary of {} tokens plus {} special exceeds max_tokens={}",
             tokens.size(), special_.size(), *options_.max_tokens);
  vocabulary_ = tokens;
  ids_ = std::move(ids);
}

std::vector<std::string> TextVectorization::get_vocabulary() const {
  std::vector<std::string> v = special_;
  v.insert(v.end(), vocabulary_.begin(), vocabulary_.end());
  return v;
}

int64_t TextVectorization::id_of(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? (options_.output_mode == "int" ? 1 : 0) : it->second;
}

Tensor TextVectorization::operator()(const std::vector<std::string>& texts) const {
  const auto n = static_cast<int64_t>(texts.size());
  if (options_.output_mode == "multi_hot") {
    const int64_t width = vocabulary_size();
    std::vector<float> out(static_cast<size_t>(n * width), 0.f);
    for (int64_t i = 0; i < n; ++i)
      for (const auto& token : tokenize(texts[static_cast<size_t>(i)]))
        out[static_cast<size_t>(i * width + id_of(token))] = 1.f;
    return Tensor::from_vector(out, Shape{n, width});
  }
  std::vector<std::vector<int32_t>> rows;
  int64_t longest = 0;
  for (const auto& t : texts) {
    std::vector<int32_t> ids;
    for (const auto& token : tokenize(t)) ids.push_back(static_cast<int32_t>(id_of(token)));
    longest = std::max(longest, static_cast<int64_t>(ids.size()));
    rows.push_back(std::move(ids));
  }
  const int64_t len = options_.output_sequence_length.value_or(longest);
  std::vector<int32_t> out(static_cast<size_t>(n * len), 0);  // padded at the end, truncated at the end
  for (int64_t i = 0; i < n; ++i) {
    const auto& r = rows[static_cast<size_t>(i)];
    for (int64_t k = 0; k < std::min<int64_t>(len, static_cast<int64_t>(r.size())); ++k)
      out[static_cast<size_t>(i * len + k)] = r[static_cast<size_t>(k)];
  }
  return Tensor::from_vector(out, Shape{n, len});
}

Config TextVectorization::get_config() const {
  Config c{{"name", name_}, {"trainable", true}, {"dtype", serialization::dtype_policy()}};
  c["max_tokens"] = options_.max_tokens ? Config(*options_.max_tokens) : Config(nullptr);
  c["standardize"] = options_.standardize.empty() ? Config(nullptr) : Config(options_.standardize);
  c["split"] = options_.split;
  c["output_mode"] = options_.output_mode;
  c["output_sequence_length"] = options_.output_sequence_length ? Config(*options_.output_sequence_length) : Config(nullptr);
  c["vocabulary_size"] = vocabulary_size();
  return c;
}

}  // namespace keras::layers
