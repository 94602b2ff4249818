// Keras' file formats: real files saved by Python Keras, round trips through .keras, .h5 and
// .weights.h5, optimizer state, and hostile files.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "tests/support/test_support.h"

using namespace keras;
namespace fs = std::filesystem;

namespace {
const fs::path kReal = kt::fixture_dir() / "keras-real";

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

// Files saved by Python Keras 3 (tools/fixtures/make_saving_fixtures.sh) ------------------------------

namespace {
const fs::path kSaved = kt::fixture_dir() / "keras-saved";

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}
Tensor tensor_of(const nlohmann::json& a) {
  std::vector<int64_t> dims = a["shape"].get<std::vector<int64_t>>();
  if (a.value("dtype", "") == "int32") {
    std::vector<int32_t> ids;
    for (double v : a["values"].get<std::vector<double>>()) ids.push_back(static_cast<int32_t>(v));
    return Tensor::from_vector(ids, Shape(dims));
  }
  std::vector<float> values;
  for (double v : a["values"].get<std::vector<double>>()) values.push_back(static_cast<float>(v));
  if (a.value("dtype", "") == "bool") return ops::cast(Tensor::from_vector(values, Shape(dims)), DType::bool_);
  return Tensor::from_vector(values, Shape(dims));
}
std::vector<float> floats_of(const nlohmann::json& a) {
  std::vector<float> out;
  for (double v : a["values"].get<std::vector<double>>()) out.push_back(static_cast<float>(v));
  return out;
}
TensorList list_of(const nlohmann::json& arrays) {
  std::vector<Tensor> out;
  for (const auto& a : arrays) out.push_back(tensor_of(a));
  return TensorList(out);
}

void check_predictions(Model& model, const nlohmann::json& io) {
  const auto outs = model.predict_all(list_of(io["inputs"]));
  REQUIRE(outs.size() == io["predictions"].size());
  for (size_t i = 0; i < outs.size(); ++i) {
    INFO("output " << i);
    CHECK(outs[i].shape().dims() == io["predictions"][i]["shape"].get<std::vector<int64_t>>());
    kt::require_close(outs[i].to_vector<float>(), floats_of(io["predictions"][i]), 2e-5f, 2e-4f);
  }
}

// Every weighted layer of a model and of the models inside it, by name.
void collect_layers(Model& model, std::map<std::string, Layer*>& out) {
  for (Layer* l : model.layers()) {
    if (auto* m = dynamic_cast<Model*>(l))
      collect_layers(*m, out);
    else if (!l->weights().empty())
      out[l->name()] = l;
  }
}

const char* kSavedModels[] = {"cnn", "functional", "sequence", "image", "video_qa"};
}  // namespace

TEST_CASE("models of every layer kind saved by Python Keras 3 load from .keras, .h5, .weights.h5 and JSON",
          "[cpu][saving]") {
  for (const char* name : kSavedModels) {
    INFO("model " << name);
    utils::clear_session();
    const auto io = read_json(kSaved / (std::string(name) + "_io.json"));
    auto from_keras = models::load_model((kSaved / (std::string(name) + ".keras")).string());
    CHECK(from_keras->count_params() == io["count_params"].get<int64_t>());
    REQUIRE(from_keras->compiled());
    CHECK(from_keras->optimizer()->iterations() == io["optimizer_iterations"].get<int64_t>());
    check_predictions(*from_keras, io);

    // Keras' summary of the loaded model, character for character (optimizer params included).
    std::string expected_summary = io["summary_90"].get<std::string>();
    while (!expected_summary.empty() && expected_summary.back() == '\n') expected_summary.pop_back();
    std::string summary = from_keras->summary_string(90);
    while (!summary.empty() && summary.back() == '\n') summary.pop_back();
    CHECK(summary == expected_summary);

    auto from_h5 = models::load_model((kSaved / (std::string(name) + ".h5")).string());
    check_predictions(*from_h5, io);

    std::ifstream json_in(kSaved / (std::string(name) + ".json"));
    const std::string json((std::istreambuf_iterator<char>(json_in)), std::istreambuf_iterator<char>());
    auto from_json = models::model_from_json(json);
    from_json->load_weights((kSaved / (std::string(name) + ".weights.h5")).string());
    check_predictions(*from_json, io);
  }
}

TEST_CASE("a .keras file resumes training exactly: one more step equals Python Keras' step",
          "[cpu][saving][optimizers]") {
  // The optimizer state (Adam, SGD with Nesterov momentum, centered RMSprop under a schedule, Nadam
  // with its extra variable) must come back, and the update rules must be Keras'.
  for (const char* name : {"functional", "sequence", "image", "video_qa"}) {
    INFO("model " << name);
    utils::clear_session();
    const auto io = read_json(kSaved / (std::string(name) + "_io.json"));
    auto model = models::load_model((kSaved / (std::string(name) + ".keras")).string());
    model->train_on_batch(list_of(io["inputs"]), list_of(io["targets"]));
    std::map<std::string, Layer*> by_name;
    collect_layers(*model, by_name);
    REQUIRE(by_name.size() == io["weights_after_step"].size());
    for (const auto& [layer_name, expected] : io["weights_after_step"].items()) {
      INFO("layer " << layer_name);
      REQUIRE(by_name.count(layer_name));
      // RNNs keep their variables in their cell; wrappers' live in the wrapped layers.
      auto vars = by_name[layer_name]->variables_in_saving_order();
      if (vars.empty()) vars = by_name[layer_name]->weights();
      REQUIRE(vars.size() == expected.size());
      for (size_t i = 0; i < vars.size(); ++i)
        kt::require_close(ops::cast(vars[i]->value(), DType::float32).to_vector<float>(), floats_of(expected[i]),
                          3e-5f, 3e-4f);
    }
  }
}

TEST_CASE("models saved by kerascpp load back with the same config, weights and optimizer state", "[cpu][saving]") {
  Scratch dir("roundtrip");
  for (const char* name : kSavedModels) {
    INFO("model " << name);
    utils::clear_session();
    const auto io = read_json(kSaved / (std::string(name) + "_io.json"));
    auto original = models::load_model((kSaved / (std::string(name) + ".keras")).string());
    for (const char* ext : {".keras", ".h5"}) {
      INFO("format " << ext);
      const std::string path = dir / (std::string(name) + ext);
      original->save(path);
      auto again = models::load_model(path);
      CHECK(again->get_config() == original->get_config());
      CHECK(again->get_compile_config() == original->get_compile_config());
      check_predictions(*again, io);
      if (std::string(ext) == ".keras")
        CHECK(again->optimizer()->iterations() == original->optimizer()->iterations());
    }
    // .weights.h5 into a model rebuilt from JSON.
    const std::string weights = dir / (std::string(name) + ".weights.h5");
    original->save_weights(weights);
    auto rebuilt = models::model_from_json(original->to_json());
    rebuilt->load_weights(weights);
    check_predictions(*rebuilt, io);
  }
}

namespace {
// evaluate() equals Python Keras' own evaluate() of the same file: every loss and metric by name.
void check_evaluate(Model& model, const nlohmann::json& io) {
  const auto results = model.evaluate(list_of(io["inputs"]), list_of(io["targets"]),
                                      {.batch_size = io["evaluate_batch_size"].get<int64_t>(), .verbose = 0});
  std::set<std::string> names;
  for (const auto& [name, value] : results) names.insert(name);
  std::set<std::string> expected_names;
  for (const auto& [name, value] : io["evaluate"].items()) {
    expected_names.insert(name);
    INFO("metric " << name);
    REQUIRE(results.count(name) == 1);
    CHECK(results.at(name) == Approx(value.get<double>()).epsilon(1e-4).margin(1e-5));
  }
  CHECK(names == expected_names);
}
// The parts of Keras' compile_config a user chose: losses, their weights and metrics, in Keras' forms.
void check_compile_config(const Config& ours_ordered, const nlohmann::json& keras) {
  const auto ours = nlohmann::json::parse(ours_ordered.dump());
  CHECK(ours.at("metrics") == keras.at("metrics"));
  CHECK(ours.at("loss").is_object() == keras.at("loss").is_object());
  if (keras.at("loss_weights").is_object())
    for (const auto& [key, w] : keras.at("loss_weights").items())
      CHECK(ours.at("loss_weights").at(key).get<double>() == Approx(w.get<double>()));
  CHECK(ours.at("optimizer").at("class_name") == keras.at("optimizer").at("class_name"));
}
}  // namespace

TEST_CASE("compile_config's dict forms and metric objects load from Keras 3 files, evaluate as Keras and save back",
          "[cpu][saving]") {
  for (const char* name : {"compiled_multi", "compiled_binary", "compiled_activity"}) {
    INFO("model " << name);
    utils::clear_session();
    const auto io = read_json(kSaved / (std::string(name) + "_io.json"));
    for (const char* ext : {".keras", ".h5"}) {
      INFO("file " << ext);
      auto model = models::load_model((kSaved / (std::string(name) + ext)).string());
      REQUIRE(model->compiled());
      check_compile_config(model->get_compile_config(), io["compile_config"]);
      check_predictions(*model, io);
      check_evaluate(*model, io);
    }
    // kerascpp writes the same compile_config back, and a reload evaluates the same.
    auto model = models::load_model((kSaved / (std::string(name) + ".keras")).string());
    const auto path = fs::temp_directory_path() / (std::string("kerascpp_") + name + std::to_string(::getpid()) + ".keras");
    model->save(path.string());
    auto again = models::load_model(path.string());
    fs::remove(path);
    check_compile_config(again->get_compile_config(), io["compile_config"]);
    check_evaluate(*again, io);
  }
}

TEST_CASE("activity regularizers load from Keras files and add to the loss as Keras adds them", "[cpu][saving]") {
  utils::clear_session();
  const auto io = read_json(kSaved / "compiled_activity_io.json");
  auto model = models::load_model((kSaved / "compiled_activity.keras").string());
  CHECK(model->get_layer("activation").activity_regularizer());
  // Evaluation (two batches of 5) and one training step include the penalties divided by the batch size.
  check_evaluate(*model, io);
  const auto logs = model->train_on_batch(list_of(io["inputs"]), list_of(io["targets"]));
  CHECK(logs.at("loss") == Approx(io["train_on_batch_loss"].get<double>()).epsilon(1e-5));
  const auto after = model->predict_all(list_of(io["inputs"]));
  kt::require_close(after[0].to_vector<float>(), floats_of(io["predictions_after_step"][0]), 1e-5f, 1e-4f);
  // The regularizers are written back in Keras' form.
  const Config config = serialization::serialize_layer(*model->layers().at(0));
  CHECK(config["config"]["activity_regularizer"]["class_name"] == "L1");

  // The C++ option: evaluate's loss is the MSE plus 0.1 * sum|h| / batch, computed by hand here.
  utils::clear_session();
  auto hidden = std::make_shared<layers::Dense>(3, layers::DenseOptions{.activity_regularizer = regularizers::L1(0.1f)});
  Sequential seq({layers::Input({4}), hidden, layers::Dense(1)});
  seq.compile({.optimizer = "sgd", .loss = "mse"});
  const Tensor x = kt::random_tensor(Shape{6, 4}, 21), y = kt::random_tensor(Shape{6, 1}, 22);
  const auto h = hidden->call(x, false).to_vector<float>();
  const auto p = seq.predict(x).to_vector<float>();
  const auto t = y.to_vector<float>();
  double mse = 0, l1 = 0;
  for (size_t i = 0; i < p.size(); ++i) mse += (p[i] - t[i]) * (p[i] - t[i]) / p.size();
  for (float v : h) l1 += std::abs(v);
  const auto r = seq.evaluate(x, y, {.verbose = 0});
  CHECK(r.at("loss") == Approx(mse + 0.1 * l1 / 6).epsilon(1e-5));
}

TEST_CASE("compile() takes Keras' dict forms and metric objects, and says which key is no output", "[cpu][training]") {
  utils::clear_session();
  auto x = layers::Input({4});
  auto a = layers::Dense(2, {.activation = "softmax", .name = "a"})(x);
  auto b = layers::Dense(1, {.name = "b"})(x);
  Model model(x, {a, b});
  // Output "b" has no loss: only "a" is trained and logged.
  model.compile({.optimizer = "sgd",
                 .loss = {{"a", "sparse_categorical_crossentropy"}},
                 .metrics = {{"a", {"accuracy", metrics::SparseTopKCategoricalAccuracy(1, "top1")}}, {"b", {"mae"}}}});
  const Tensor xs = kt::random_tensor(Shape{6, 4}, 5);
  const Tensor ya = Tensor::from_vector<float>({0, 1, 1, 0, 1, 0}, Shape{6});
  const Tensor yb = kt::random_tensor(Shape{6, 1}, 6);
  const auto r = model.evaluate({xs}, {ya, yb}, {.verbose = 0});
  std::set<std::string> names;
  for (const auto& [k, v] : r) names.insert(k);
  CHECK(names == std::set<std::string>{"loss", "a_loss", "a_accuracy", "a_top1", "b_mae"});
  CHECK(r.at("loss") == Approx(r.at("a_loss")));
  CHECK(r.at("a_top1") == Approx(r.at("a_accuracy")));  // top-1 is accuracy
  // The naive mean absolute error of output b.
  const auto pb = model.predict_all({xs})[1].to_vector<float>();
  const auto tb = yb.to_vector<float>();
  double mae = 0;
  for (size_t i = 0; i < pb.size(); ++i) mae += std::abs(pb[i] - tb[i]) / pb.size();
  CHECK(r.at("b_mae") == Approx(mae).epsilon(1e-5));
  kt::require_throws_with<ValueError>(
      [&] { model.compile({.loss = {{"c", "mse"}}}); },
      {"In the dict argument `loss`, key 'c' does not correspond to any model output", "[a, b]"});
  kt::require_throws_with<ValueError>(
      [&] { model.compile({.loss = "mse", .loss_weights = {{"z", 2.f}}}); }, {"`loss_weights`", "'z'"});
  // One metric object for two outputs: each output gets its own copy and state.
  auto c = layers::Dense(1, {.name = "c"})(x);
  Model two(x, {c, b});
  two.compile({.optimizer = "sgd", .loss = "mse", .metrics = {metrics::MeanAbsoluteError()}});
  const auto r2 = two.evaluate({xs}, {yb, yb}, {.verbose = 0});
  CHECK(r2.at("b_mean_absolute_error") == Approx(mae).epsilon(1e-5));
  CHECK(r2.at("c_mean_absolute_error") != Approx(mae).epsilon(1e-3));
}

TEST_CASE("models saved by tf.keras 2 load from full .h5, weights-only .h5 and JSON (Keras 2's dialect)",
          "[cpu][saving]") {
  const fs::path dir = kt::fixture_dir() / "keras2-saved";
  for (const char* name : {"k2_cnn", "k2_functional", "k2_attention"}) {
    INFO("model " << name);
    utils::clear_session();
    const auto io = read_json(dir / (std::string(name) + "_io.json"));
    auto model = models::load_model((dir / (std::string(name) + ".h5")).string());
    CHECK(model->count_params() == io["count_params"].get<int64_t>());
    CHECK(model->compiled());
    check_predictions(*model, io);

    std::ifstream json_in(dir / (std::string(name) + ".json"));
    const std::string json((std::istreambuf_iterator<char>(json_in)), std::istreambuf_iterator<char>());
    auto rebuilt = models::model_from_json(json);
    rebuilt->load_weights((dir / (std::string(name) + "_weights.h5")).string());
    check_predictions(*rebuilt, io);
    // by_name matches the same layers whatever their order.
    auto by_name = models::model_from_json(json);
    by_name->load_weights((dir / (std::string(name) + "_weights.h5")).string(), {.by_name = true});
    check_predictions(*by_name, io);
  }
}

// Hostile and broken files (tools/fixtures/make_hostile_fixtures.py) ----------------------------------

TEST_CASE("hostile and broken files are refused with clear errors, before anything is allocated or assigned",
          "[cpu][saving][security]") {
  const fs::path dir = kt::fixture_dir() / "hostile";
  auto path = [&](const char* f) { return (dir / f).string(); };
  utils::clear_session();
  // Weights files for a model with one Dense(2) on 3 features.
  Sequential model({layers::Input({3}), layers::Dense(2)});
  const auto before = model.get_weights();
  kt::require_throws_with<IOError>([&] { model.load_weights(path("external_link.weights.h5")); },
                                   {"external link", "/layers/dense/vars"});
  kt::require_throws_with<IOError>([&] { model.load_weights(path("soft_link.weights.h5")); }, {"soft link"});
  kt::require_throws_with<IOError>([&] { model.load_weights(path("external_storage.weights.h5")); },
                                   {"external files", "refused"});
  kt::require_throws_with<IOError>([&] { model.load_weights(path("virtual.weights.h5")); }, {"virtual datasets"});
  kt::require_throws_with<ValueError>([&] { model.load_weights(path("huge_shape.weights.h5")); },
                                      {"expected shape (3, 2)", "1000000000000"});
  for (size_t i = 0; i < before.size(); ++i)  // nothing was assigned
    CHECK(model.get_weights()[i].to_vector<float>() == before[i].to_vector<float>());

  kt::require_throws_with<ValueError>([&] { models::load_model(path("shape_bomb.keras")); },
                                      {"exceeds what the file being loaded can hold", "1099511627776"});
  kt::require_throws_with<ValueError>([&] { models::load_model(path("lambda.keras")); },
                                      {"refusing to load a Lambda layer"});
  kt::require_throws_with<ValueError>([&] { models::load_model(path("unknown_class.keras")); },
                                      {"unknown layer class 'Popen'", "register_layer_class"});
  kt::require_throws_with<IOError>([&] { models::load_model(path("zip_bomb.keras")); },
                                   {"config.json", "more than the"});
  kt::require_throws_with<IOError>([&] { models::load_model(path("truncated.keras")); }, {"not a readable zip"});
  kt::require_throws_with<IOError>([&] { models::load_model(path("bad_json.keras")); }, {"not valid JSON"});
  kt::require_throws_with<ValueError>([&] { models::load_model(path("wrong_shape.keras")); },
                                      {"expected shape", "(5, 5)"});
  kt::require_throws_with<IOError>([&] { models::load_model(path("missing.keras")); }, {"missing.keras"});
  kt::require_throws_with<ValueError>([&] { models::load_model(path("model.onnx")); }, {".keras or .h5"});

  // A valid model keeps its weights when a broken file is loaded into it.
  auto seq = models::load_model((kSaved / "sequence.keras").string());
  const auto seq_before = seq->get_weights();
  kt::require_throws_with<ValueError>([&] { seq->load_weights(path("wrong_shape.keras")); }, {"expected shape"});
  for (size_t i = 0; i < seq_before.size(); ++i)
    CHECK(seq->get_weights()[i].to_vector<float>() == seq_before[i].to_vector<float>());

  // A file that sends HDF5 1.10 itself into an endless loop (found by fuzz_h5): refused after the
  // preflight's time limit instead of hanging the process.
  models::set_hdf5_read_timeout(2.0);
  const std::string hang = (kt::fixture_dir().parent_path() / "fuzz" / "hdf5-known-hangs" /
                            "global_heap_loop.h5").string();
  kt::require_throws_with<IOError>([&] { models::load_model(hang); }, {"did not finish reading", "refused"});
  kt::require_throws_with<IOError>([&] { model.load_weights(hang); }, {"did not finish reading"});
  models::set_hdf5_read_timeout(60.0);

  // check reports the problems without building anything.
  CHECK_FALSE(models::inspect_file(path("lambda.keras")).problems.empty());
  CHECK_FALSE(models::inspect_file(path("unknown_class.keras")).problems.empty());
  CHECK_FALSE(models::inspect_file(path("huge_shape.weights.h5")).problems.empty());
  CHECK(models::inspect_file((kSaved / "image.keras").string()).problems.empty());
}

TEST_CASE("saving a model is atomic: a save that cannot complete leaves the previous file intact",
          "[cpu][saving]") {
  Scratch dir("atomic");
  utils::clear_session();
  auto model = models::load_model((kSaved / "sequence.keras").string());
  const auto io = read_json(kSaved / "sequence_io.json");
  for (const char* ext : {".keras", ".h5", ".weights.h5"}) {
    INFO(ext);
    const std::string target = dir / (std::string("m") + ext);
    if (std::string(ext) == ".weights.h5")
      model->save_weights(target);
    else
      model->save(target);
    const auto size = fs::file_size(target);
    fs::create_directories(target + ".tmp-" + std::to_string(getpid()));  // the temporary name is taken
    kt::require_throws_with<IOError>(
        [&] {
          if (std::string(ext) == ".weights.h5")
            model->save_weights(target);
          else
            model->save(target);
        },
        {"cannot write"});
    CHECK(fs::file_size(target) == size);
    if (std::string(ext) != ".weights.h5") check_predictions(*models::load_model(target), io);
  }
}

TEST_CASE("the fuzzers' regression inputs get kerascpp errors, never crashes", "[cpu][saving][security]") {
  // tests/fuzz/regressions/<target>/: inputs that once broke a reader (tools/fuzz.sh), replayed the
  // way each fuzz target feeds them.
  const fs::path root = kt::fixture_dir().parent_path() / "fuzz" / "regressions";
  Scratch dir("fuzz_replay");
  int replayed = 0;
  auto expect_errors_only = [](auto&& f) {
    try {
      f();
    } catch (const keras::Error&) {
    }
  };
  for (const char* target : {"keras", "h5", "json"}) {
    for (const auto& entry : fs::directory_iterator(root / target)) {
      if (entry.path().filename() == "README") continue;
      INFO("input " << entry.path());
      ++replayed;
      std::ifstream in(entry.path(), std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const std::string file = dir / (std::string("input.") + (std::string(target) == "keras" ? "keras" : "h5"));
      std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (std::string(target) == "json") {
        expect_errors_only([&] { models::model_from_json(bytes); });
      } else {
        expect_errors_only([&] { models::load_model(file); });
        expect_errors_only([&] { models::inspect_file(file); });
        Sequential model({layers::Input({3}), layers::Dense(2)});
        expect_errors_only([&] { model.load_weights(file); });
      }
    }
  }
  INFO(replayed << " inputs replayed");
  CHECK(replayed >= 2);  // the committed reproducers (conv_zero_stride.json, inspect_count_overflow.h5)
}

namespace {
// A user's layer: y = x * factor, with one weight; saved and loaded by its registered name.
class Scale : public Layer {
 public:
  KERASCPP_LAYER(Scale)
  explicit Scale(float factor, std::string name = "") : Layer("Scale", std::move(name)), factor_(factor) {}
  Tensor call(const Tensor& x, bool) override { return x * gain_->value() * factor_; }
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
  Config get_config() const override {
    Config c = Layer::get_config();
    c["factor"] = factor_;
    return c;
  }
  static std::shared_ptr<Layer> from_config(const Config& c) {
    serialization::ConfigReader r(c, "Scale config");
    const std::string name = r.name();
    auto layer = std::make_shared<Scale>(static_cast<float>(r.number("factor")), name);
    r.finish(*layer);
    return layer;
  }

 protected:
  void build(const PartialShape& s) override { gain_ = &add_weight("gain", Shape{*s.back()}, "ones"); }

 private:
  float factor_;
  Variable* gain_ = nullptr;
};
}  // namespace

TEST_CASE("a custom layer registered by name saves and loads, and unregistered its file is refused by name",
          "[cpu][saving]") {
  Scratch dir("custom");
  utils::clear_session();
  auto in = layers::Input({3});
  Model model(in, Scale(2.5f)(layers::Dense(3)(in)));
  const Tensor x = kt::random_tensor(Shape{4, 3}, 3);
  const auto expected = model.predict(x).to_vector<float>();
  const std::string path = dir / "custom.keras";
  model.save(path);
  kt::require_throws_with<ValueError>([&] { models::load_model(path); }, {"unknown layer class 'Scale'"});
  CHECK(models::inspect_file(path).unknown_classes == std::vector<std::string>{"Scale"});
  register_layer_class("Scale", &Scale::from_config);
  auto loaded = models::load_model(path);
  CHECK(loaded->get_layer("scale").get_config()["factor"] == 2.5f);
  kt::require_close(loaded->predict(x).to_vector<float>(), expected, 1e-6f, 1e-6f);
}

TEST_CASE("load_weights of legacy .h5 files: by_name matches layers by name, skip_mismatch skips what differs",
          "[cpu][saving]") {
  const fs::path k2 = kt::fixture_dir() / "keras2-saved" / "k2_functional_weights.h5";
  utils::clear_session();
  // Only "out2" (Dense 3 -> 1) matches a stored layer by name and shape; "shared" is stored as
  // Dense(5 -> 4) while this one is 5 -> 6.
  auto a = layers::Input({5});
  auto h = layers::Dense(6, {.name = "shared"})(a);
  auto out = layers::Dense(1, {.name = "out2"})(layers::Dense(3, {.name = "unrelated"})(h));
  Model model(a, out);
  const auto shared_before = model.get_layer("shared").get_weights()[0].to_vector<float>();
  kt::require_throws_with<ValueError>([&] { model.load_weights(k2.string(), {.by_name = true}); },
                                      {"expected shape", "(5, 6)"});
  CHECK(model.get_layer("shared").get_weights()[0].to_vector<float>() == shared_before);  // nothing assigned
  model.load_weights(k2.string(), {.by_name = true, .skip_mismatch = true});
  CHECK(model.get_layer("shared").get_weights()[0].to_vector<float>() == shared_before);  // skipped
  // out2 now holds tf.keras' weights: compare with the full model saved beside them.
  auto reference = models::load_model((k2.parent_path() / "k2_functional.h5").string());
  CHECK(model.get_layer("out2").get_weights()[0].to_vector<float>() ==
        reference->get_layer("out2").get_weights()[0].to_vector<float>());
  // By order, the layer counts differ: a clear error.
  kt::require_throws_with<ValueError>([&] { model.load_weights(k2.string()); }, {"Layer count mismatch"});
}

TEST_CASE("a frozen model inside TimeDistributed stays frozen through its config, as in Keras", "[cpu][saving]") {
  // video_qa's shape: a frozen CNN applied to every frame. Keras' constructors leave the layers
  // inside a wrapper as their own configs say; only "trainable": false freezes a whole layer.
  auto video = layers::Input({std::nullopt, 8, 8, 3});
  auto cnn = std::make_shared<Sequential>(std::vector<LayerRef>{
      layers::Input({8, 8, 3}), layers::Conv2D(4, {3, 3}), layers::GlobalAveragePooling2D()});
  cnn->set_trainable(false);
  auto encoded = layers::LSTM(5)(layers::TimeDistributed(cnn)(video));
  auto frozen_head = std::make_shared<layers::Dense>(2, layers::DenseOptions{.name = "frozen_head"});
  frozen_head->set_trainable(false);
  Model model(video, (*frozen_head)(layers::Dense(3)(encoded)));
  const auto copy = models::model_from_config(serialization::serialize_layer(model));
  // Trainable: the LSTM (3) and the Dense (2); frozen: the conv (2) and the head (2).
  REQUIRE(model.trainable_weights().size() == 5);
  CHECK(copy->trainable_weights().size() == 5);
  CHECK(copy->non_trainable_weights().size() == 4);
  const auto a = model.weights(), b = copy->weights();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i]->shape() == b[i]->shape());
    CHECK(a[i]->trainable() == b[i]->trainable());
  }
}

TEST_CASE("a model Python Keras trained under mixed_float16 loads with its policies and loss scale, and resumes",
          "[cpu][saving][mixed]") {
  utils::clear_session();
  const auto io = read_json(kSaved / "mixed_float16_io.json");
  auto model = models::load_model((kSaved / "mixed_float16.keras").string());
  for (Layer* l : model->layers()) CHECK(l->dtype_policy().name() == io["policies"][l->name()].get<std::string>());
  auto* scaled = dynamic_cast<optimizers::LossScaleOptimizer*>(model->optimizer());
  REQUIRE(scaled);
  CHECK(scaled->loss_scale() == io["loss_scale"]["dynamic_scale"].get<float>());
  CHECK(scaled->step_counter() == io["loss_scale"]["step_counter"].get<int64_t>());
  CHECK(model->optimizer()->iterations() == io["loss_scale"]["iterations"].get<int64_t>());
  // Keras' summary, its optimizer parameters counting the wrapper's four variables.
  std::string expected_summary = io["summary_90"].get<std::string>(), summary = model->summary_string(90);
  while (!expected_summary.empty() && expected_summary.back() == '\n') expected_summary.pop_back();
  while (!summary.empty() && summary.back() == '\n') summary.pop_back();
  CHECK(summary == expected_summary);
  // float16 hidden layers: Keras (XLA) and kerascpp round at the same op boundaries, not always alike.
  const Tensor probs = model->predict(list_of(io["inputs"]).items()[0]);
  CHECK(probs.dtype() == DType::float32);
  kt::require_close(probs.to_vector<float>(), floats_of(io["predictions"][0]), 2e-3f, 0.f);

  // One more step: the scale doubles (the second finite step since it last moved), as in Keras.
  model->train_on_batch(list_of(io["inputs"]), list_of(io["targets"]));
  CHECK(scaled->loss_scale() == io["loss_scale_after_step"]["dynamic_scale"].get<float>());
  CHECK(scaled->step_counter() == io["loss_scale_after_step"]["step_counter"].get<int64_t>());
  CHECK(model->optimizer()->iterations() == io["loss_scale_after_step"]["iterations"].get<int64_t>());
  for (Layer* l : model->layers()) {
    INFO("layer " << l->name());
    const auto& expected = io["weights_after_step"][l->name()];
    const auto vars = l->weights();
    REQUIRE(vars.size() == expected.size());
    for (size_t i = 0; i < vars.size(); ++i)
      kt::require_close(vars[i]->stored().to_vector<float>(), floats_of(expected[i]), 2e-3f, 0.f);
  }

  // Saved by kerascpp: Keras' layout (the wrapper's variables, then the inner optimizer's), read back.
  Scratch dir("mixed");
  model->save(dir / "again.keras");
  auto again = models::load_model(dir / "again.keras");
  auto* again_scaled = dynamic_cast<optimizers::LossScaleOptimizer*>(again->optimizer());
  REQUIRE(again_scaled);
  CHECK(again_scaled->loss_scale() == scaled->loss_scale());
  CHECK(again_scaled->step_counter() == scaled->step_counter());
  CHECK(again->optimizer()->iterations() == model->optimizer()->iterations());
  CHECK(again->get_config() == model->get_config());
  kt::require_close(again->predict(list_of(io["inputs"]).items()[0]).to_vector<float>(),
                    model->predict(list_of(io["inputs"]).items()[0]).to_vector<float>(), 0.f, 0.f);
}

// tests/fixtures/keras-compat (tools/fixtures/make_compat_fixtures.py and the make_*_fixtures.py
// beside it): options the random differential check against Python Keras (tools/keras_diff) found
// refused or wrong, and layers added since (attention, noise, Normalization).
TEST_CASE("Keras options found missing by the differential check load, predict and train one step as Keras",
          "[cpu][saving]") {
  const fs::path dir = kt::fixture_dir() / "keras-compat";
  Scratch scratch("compat");
  for (const char* name : {"masking_lstm", "conv_transpose_strides", "conv_transpose_output_padding", "conv1d_causal",
                           "layer_norm_axes", "batch_norm_axis", "upsampling_bilinear", "activations",
                           "more_normalization", "sequence_1d", "masked_states", "multi_head_attention", "attention_axes",
                           "luong_bahdanau", "grouped_query_attention", "noise", "normalization", "conv_1d_variants", "resizing"}) {
    INFO("model " << name);
    utils::clear_session();
    const auto io = read_json(dir / (std::string(name) + "_io.json"));
    auto model = models::load_model((dir / (std::string(name) + ".keras")).string());
    check_predictions(*model, io);

    // Saved by kerascpp and read back: the same config and predictions.
    model->save(scratch / (std::string(name) + ".keras"));
    auto again = models::load_model(scratch / (std::string(name) + ".keras"));
    CHECK(again->get_config() == model->get_config());
    check_predictions(*again, io);

    if (io.contains("alpha_dropout_on_zeros")) {
      // Keras' AlphaDropout on zeros gives its two constants (kept, dropped); kerascpp's the same.
      const auto& a = io["alpha_dropout_on_zeros"];
      const auto keras_values = floats_of(a["values"]);
      REQUIRE(keras_values.size() == 2);
      const auto ours = layers::AlphaDropout(a["rate"].get<float>())(ops::zeros(Shape{100, 40}), true).to_vector<float>();
      std::set<int> seen;
      for (float v : ours) {
        const int which = std::abs(v - keras_values[0]) < 1e-6f ? 0 : std::abs(v - keras_values[1]) < 1e-6f ? 1 : -1;
        REQUIRE(which >= 0);
        seen.insert(which);
      }
      CHECK(seen.size() == 2);
    }
    // Layers drawing noise in training: no step to compare.
    if (!io.contains("weights_after_step")) continue;
    // One SGD step on Keras' targets: the gradients of every new path against Keras'.
    model->train_on_batch(list_of(io["inputs"]), list_of(io["targets"]));
    for (const auto& [layer_name, expected] : io["weights_after_step"].items()) {
      INFO("layer " << layer_name);
      Layer& layer = model->get_layer(layer_name);
      auto vars = layer.variables_in_saving_order();
      if (vars.empty()) vars = layer.weights();
      REQUIRE(vars.size() == expected.size());
      for (size_t i = 0; i < vars.size(); ++i)
        kt::require_close(ops::cast(vars[i]->value(), DType::float32).to_vector<float>(), floats_of(expected[i]),
                          3e-5f, 3e-4f);
    }
  }
}
