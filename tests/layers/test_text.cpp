// TextVectorization against Python Keras 3's (tests/fixtures/keras_text.json, made by
// tools/fixtures/make_text_fixtures.py): the learned vocabulary, int and multi-hot outputs.
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

using namespace keras;
using json = nlohmann::json;

TEST_CASE("TextVectorization learns Keras' vocabulary and gives Keras' outputs", "[cpu][text]") {
  std::ifstream in(kt::fixture_dir() / "keras_text.json");
  REQUIRE(in.good());
  const json f = json::parse(in);
  const auto corpus = f.at("corpus").get<std::vector<std::string>>();
  const auto queries = f.at("queries").get<std::vector<std::string>>();
  for (const char* name : {"int_8", "int_all", "multi_hot_10", "lower_only"}) {
    INFO("case " << name);
    const json& c = f.at(name);
    const json& kw = c.at("options");
    layers::TextVectorizationOptions o;
    if (kw.contains("max_tokens")) o.max_tokens = kw["max_tokens"].get<int64_t>();
    if (kw.contains("output_sequence_length")) o.output_sequence_length = kw["output_sequence_length"].get<int64_t>();
    if (kw.contains("output_mode")) o.output_mode = kw["output_mode"].get<std::string>();
    if (kw.contains("standardize")) o.standardize = kw["standardize"].get<std::string>();
    layers::TextVectorization tv(o);
    tv.adapt(corpus);
    CHECK(tv.get_vocabulary() == c.at("vocabulary").get<std::vector<std::string>>());
    const Tensor y = tv(queries);
    std::vector<float> expected;
    for (const auto& row : c.at("output"))
      for (const auto& v : row) expected.push_back(v.get<float>());
    kt::require_close(ops::cast(y, DType::float32).to_vector<float>(), expected, 0.f, 0.f);
  }
}

TEST_CASE("TextVectorization with a given vocabulary, and its errors", "[cpu][text]") {
  layers::TextVectorization tv({.output_sequence_length = 3, .vocabulary = {"hello", "world"}});
  CHECK(tv.vocabulary_size() == 4);
  CHECK(tv({"Hello, World! again"}).to_vector<int32_t>() == std::vector<int32_t>{2, 3, 1});
  CHECK(tv.tokenize("  a\tb  ") == std::vector<std::string>{"a", "b"});
  layers::TextVectorization chars({.standardize = "", .split = "character"});
  CHECK(chars.tokenize("h\xC3\xA9!") == std::vector<std::string>{"h", "\xC3\xA9", "!"});
  kt::require_throws_with<ValueError>([] { layers::TextVectorization({.vocabulary = {"a", "a"}}); }, {"repeats", "a"});
  kt::require_throws_with<ValueError>([] { layers::TextVectorization({.vocabulary = {"[UNK]"}}); }, {"special"});
  kt::require_throws_with<ValueError>([] { layers::TextVectorization({.split = "comma"}); }, {"split", "comma"});
  kt::require_throws_with<NotImplementedError>([] { layers::TextVectorization({.output_mode = "tf_idf"}); },
                                               {"tf_idf"});
}
