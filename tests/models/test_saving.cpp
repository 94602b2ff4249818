// Keras' file formats: real files saved by Python Keras, round trips through .keras, .h5 and
// .weights.h5, optimizer state, and hostile files.
#include <filesystem>
#include <fstream>

#include "tests/support/test_support.h"

using namespace keras;
namespace fs = std::filesystem;

namespace {
const fs::path kReal = fs::path(KERASCPP_FIXTURE_DIR) / "keras-real";

struct Scratch {
  fs::path dir;
  explicit Scratch(const std::string& name) : dir(fs::temp_directory_path() / ("kerascpp_" + name)) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() { fs::remove_all(dir); }
  std::string operator/(const std::string& f) const { return (dir / f).string(); }
};

// The Fashion-MNIST test set scaled to [0, 1], as the real files' README prescribes.
std::pair<Tensor, Tensor> fashion_test_set() {
  auto [train, test] = datasets::fashion_mnist::load_data();
  (void)train;
  return {ops::reshape(ops::cast(test.x, DType::float32) * (1.f / 255.f), {-1, 28, 28, 1}), test.y};
}

double accuracy(Model& model, const Tensor& x, const Tensor& y) {
  const auto probs = model.predict(x, {.batch_size = 500}).to_vector<float>();
  const auto labels = ops::cast(y, DType::int32).to_vector<int32_t>();
  int64_t right = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* p = probs.data() + i * 10;
    right += std::max_element(p, p + 10) - p == labels[i];
  }
  return static_cast<double>(right) / static_cast<double>(labels.size());
}

void check_real_model(Model& model) {
  CHECK(model.count_params() == 225034);  // Keras' summary of the README's CNN
  const auto [x, y] = fashion_test_set();
  // Figures from the fixture's README, checked independently with PyTorch.
  CHECK(std::abs(accuracy(model, x, y) - 0.9067) < 1.5e-4);
  const auto first = model.predict(ops::slice(x, {0, 0, 0, 0}, {1, -1, -1, -1})).to_vector<float>();
  kt::require_close(first, {0, 0, 0, 0, 0, 3e-06f, 0, 2.2e-05f, 0, 0.999974f}, 1.5e-6f, 0.f);
}
}  // namespace

TEST_CASE("a .keras file saved by Python Keras 3.8 loads and evaluates as in Keras", "[cpu][saving][slow]") {
  utils::clear_session();
  auto model = models::load_model((kReal / "fashion_mnist_cnn_keras38.keras").string());
  CHECK(model->class_name() == "Sequential");
  CHECK(model->name() == "sequential_1");
  CHECK(model->layers().size() == 7);
  CHECK(model->get_layer("conv2d_2").class_name() == "Conv2D");
  REQUIRE(model->compiled());  // the compile_config is applied
  check_real_model(*model);
}

TEST_CASE("a legacy .h5 file saved by Python Keras 3.8 loads and evaluates as in Keras", "[cpu][saving][slow]") {
  utils::clear_session();
  auto model = models::load_model((kReal / "fashion_mnist_cnn_keras38.h5").string());
  CHECK(model->name() == "sequential_1");
  REQUIRE(model->compiled());
  CHECK(model->optimizer()->get_config()["name"] == "adam");
  check_real_model(*model);
}
