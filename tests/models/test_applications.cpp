// keras.applications: parameter counts from keras-reference.md, layer names, order and shapes
// against Python Keras' summary (tests/fixtures/applications, made by
// tools/fixtures/make_application_fixtures.py), and the weights argument.
#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

using namespace keras;

namespace {
std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  REQUIRE(in.good());
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
std::string trimmed(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}
// Points KERAS_HOME at `dir` while alive.
struct KerasHome {
  explicit KerasHome(const std::string& dir) {
    setenv("KERAS_HOME", dir.c_str(), 1);
    reload_settings();
  }
  ~KerasHome() {
    unsetenv("KERAS_HOME");
    reload_settings();
  }
};
int64_t count_of(const std::vector<Variable*>& vs) {
  int64_t n = 0;
  for (Variable* v : vs) n += v->value().num_elements();
  return n;
}
}  // namespace

TEST_CASE("InceptionV3 has Keras' parameter counts, with and without the top", "[cpu][applications]") {
  utils::clear_session();
  auto full = applications::InceptionV3({.weights = ""});
  CHECK(full->count_params() == 23851784);
  CHECK(count_of(full->trainable_weights()) == 23817352);
  CHECK(count_of(full->non_trainable_weights()) == 34432);
  CHECK(full->get_layer("predictions").count_params() == 2049000);
  CHECK(shape_to_string(full->outputs()[0].shape()) == "(None, 1000)");
  auto notop = applications::InceptionV3({.include_top = false, .weights = ""});
  CHECK(notop->count_params() == 21802784);
  CHECK(shape_to_string(notop->outputs()[0].shape()) == "(None, None, None, 2048)");  // any image size
  auto sized = applications::InceptionV3({.include_top = false, .weights = "", .input_shape = {299, 299, 3}});
  CHECK(shape_to_string(sized->outputs()[0].shape()) == "(None, 8, 8, 2048)");
}

TEST_CASE("InceptionV3's summary is Python Keras' row for row", "[cpu][applications]") {
  utils::clear_session();
  auto model =
      applications::InceptionV3({.include_top = false, .weights = "", .input_shape = {150, 150, 3}, .pooling = "avg"});
  const std::string expected = read_text(kt::fixture_dir() / "applications" / "inception_v3_notop_avg_150.txt");
  CHECK(trimmed(model->summary_string(120)) == trimmed(expected));
}

TEST_CASE("application weights: imagenet from KERAS_HOME with a clear error, or a path", "[cpu][applications]") {
  const auto dir = std::filesystem::temp_directory_path() / ("kerascpp_keras_home_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "models");
  {
    KerasHome home(dir.string());
    kt::require_throws_with<IOError>(
        [] { applications::InceptionV3({.include_top = false, .input_shape = {75, 75, 3}}); },
        {"inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", (dir / "models").string(), "weights=\"\""});
    // A weights file where Keras keeps them is found by name.
    auto source = applications::InceptionV3({.include_top = false, .weights = "", .input_shape = {75, 75, 3}});
    const std::string file = (dir / "models" / "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5").string();
    models::save_weights_legacy_h5(*source, file);
    const Tensor x = applications::inception_v3::preprocess_input(kt::random_tensor(Shape{1, 75, 75, 3}, 3, 0, 255));
    auto loaded = applications::InceptionV3({.include_top = false, .input_shape = {75, 75, 3}});
    kt::require_close(loaded->predict(x).to_vector<float>(), source->predict(x).to_vector<float>(), 1e-5f, 1e-4f);
    auto by_path = applications::InceptionV3({.include_top = false, .weights = file, .input_shape = {75, 75, 3}});
    kt::require_close(by_path->predict(x).to_vector<float>(), source->predict(x).to_vector<float>(), 1e-5f, 1e-4f);
  }
  std::filesystem::remove_all(dir);
  kt::require_throws_with<ValueError>([] { applications::InceptionV3({.weights = "", .input_shape = {150, 150, 3}}); },
                                      {"include_top=True", "(299, 299, 3)"});
  kt::require_throws_with<ValueError>(
      [] { applications::InceptionV3({.include_top = false, .weights = "", .input_shape = {70, 70, 3}}); },
      {"at least 75x75"});
  kt::require_throws_with<ValueError>([] { applications::InceptionV3({.classes = 10}); }, {"classes", "1000"});
  kt::require_throws_with<ValueError>([] { applications::InceptionV3({.weights = "/no/such/file.h5"}); },
                                      {"/no/such/file.h5"});
}

TEST_CASE("inception_v3::preprocess_input scales [0, 255] to [-1, 1]", "[cpu][applications]") {
  const Tensor y = applications::inception_v3::preprocess_input(Tensor::from_vector<float>({0, 127.5f, 255}, Shape{3}));
  kt::require_close(y.to_vector<float>(), {-1.f, 0.f, 1.f}, 1e-6f, 0.f);
}

TEST_CASE("ResNet50 has Keras' parameter counts and summary", "[cpu][applications]") {
  utils::clear_session();
  auto full = applications::ResNet50({.weights = ""});
  CHECK(full->count_params() == 25636712);
  CHECK(count_of(full->trainable_weights()) == 25583592);
  CHECK(count_of(full->non_trainable_weights()) == 53120);
  const std::string expected = read_text(kt::fixture_dir() / "applications" / "resnet50_top_224.txt");
  CHECK(trimmed(full->summary_string(120)) == trimmed(expected));
  auto notop = applications::ResNet50({.include_top = false, .weights = "", .pooling = "max"});
  CHECK(notop->count_params() == 23587712);
  CHECK(shape_to_string(notop->outputs()[0].shape()) == "(None, 2048)");
  // A small image runs end to end.
  auto small = applications::ResNet50({.include_top = false, .weights = "", .input_shape = {32, 32, 3}});
  CHECK(small->predict(kt::random_tensor(Shape{1, 32, 32, 3}, 4)).shape() == Shape({1, 1, 1, 2048}));
  kt::require_throws_with<ValueError>(
      [] { applications::ResNet50({.include_top = false, .weights = "", .input_shape = {31, 40, 3}}); },
      {"at least 32x32"});
}

TEST_CASE("VGG16 and VGG19 have Keras' parameter counts, summaries and shapes", "[cpu][applications]") {
  utils::clear_session();
  // keras-reference.md: VGG16 138,357,544 with the top, 14,714,688 without.
  auto vgg16 = applications::VGG16({.weights = ""});
  CHECK(vgg16->count_params() == 138357544);
  CHECK(trimmed(vgg16->summary_string(120)) ==
        trimmed(read_text(kt::fixture_dir() / "applications" / "vgg16_top_224.txt")));
  CHECK(applications::VGG16({.include_top = false, .weights = ""})->count_params() == 14714688);
  utils::clear_session();  // Keras' automatic names start again, as in the fixture script
  auto vgg19 = applications::VGG19({.include_top = false, .weights = "", .input_shape = {64, 64, 3}, .pooling = "max"});
  CHECK(trimmed(vgg19->summary_string(120)) ==
        trimmed(read_text(kt::fixture_dir() / "applications" / "vgg19_notop_max_64.txt")));
  CHECK(vgg19->predict(kt::random_tensor(Shape{2, 64, 64, 3}, 5)).shape() == Shape({2, 512}));
  kt::require_throws_with<ValueError>(
      [] { applications::VGG19({.include_top = false, .weights = "", .input_shape = {31, 64, 3}}); },
      {"at least 32x32"});
  const Tensor y = applications::vgg16::preprocess_input(Tensor::from_vector<float>({10, 20, 30}, Shape{1, 3}));
  kt::require_close(y.to_vector<float>(), {30 - 103.939f, 20 - 116.779f, 10 - 123.68f}, 1e-4f, 0.f);
}

TEST_CASE("resnet50::preprocess_input is Keras' caffe mode: BGR minus the ImageNet means", "[cpu][applications]") {
  const Tensor y = applications::resnet50::preprocess_input(Tensor::from_vector<float>({10, 20, 30}, Shape{1, 3}));
  kt::require_close(y.to_vector<float>(), {30 - 103.939f, 20 - 116.779f, 10 - 123.68f}, 1e-4f, 0.f);
}

// Run by the CTest application_weights_in_keras_layout, which has Python Keras write the files into
// KERAS_HOME first (tests/interop/application_weights.sh); hidden from a plain run.
TEST_CASE("applications load weight files in the layout of Keras' ImageNet files, by layer order",
          "[.application-weights]") {
  const char* home = std::getenv("KERAS_HOME");
  if (home == nullptr) {  // selected by a negated filter outside its CTest
    WARN("not run: needs the files tests/interop/application_weights.sh writes (ctest -R application_weights)");
    return;
  }
  std::ifstream in(std::filesystem::path(home) / "predictions.json");
  REQUIRE(in.good());
  const auto expected = nlohmann::json::parse(in);
  auto check = [&](Model& model, const nlohmann::json& e) {
    const auto input = e["input"].get<std::vector<float>>();
    const Tensor x = Tensor::from_vector(input, Shape(e["input_shape"].get<std::vector<int64_t>>()));
    kt::require_close(model.predict(x).to_vector<float>(), e["prediction"].get<std::vector<float>>(), 2e-5f, 2e-3f);
  };
  {
    utils::clear_session();
    auto model = applications::InceptionV3({.include_top = false, .input_shape = {75, 75, 3}, .pooling = "avg"});
    check(*model, expected["inception_v3_notop_75"]);
  }
  {
    utils::clear_session();
    auto model = applications::ResNet50();
    check(*model, expected["resnet50_top_224"]);
  }
  {
    utils::clear_session();
    auto model = applications::VGG16({.include_top = false, .input_shape = {64, 64, 3}, .pooling = "avg"});
    check(*model, expected["vgg16_notop_64"]);
  }
}
