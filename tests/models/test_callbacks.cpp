#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "tests/support/test_support.h"

using namespace keras;
namespace fs = std::filesystem;

namespace {
// A tiny compiled model and data; `scripted` overwrites the monitored value epoch by epoch.
struct Fixture {
  Sequential model{{layers::Input({3}), layers::Dense(2)}};
  Tensor x = kt::random_tensor(Shape{16, 3}, 1), y = kt::random_tensor(Shape{16, 2}, 2);
  Fixture() { model.compile({.optimizer = optimizers::SGD({.learning_rate = 0.01f}), .loss = "mse"}); }
};
callbacks::LambdaCallback scripted(std::vector<double> values, std::string key = "val_loss") {
  return callbacks::LambdaCallback({.on_epoch_end = [values, key](int epoch, callbacks::Logs& logs) {
    logs[key] = values.at(static_cast<size_t>(epoch));
  }});
}
fs::path temp_dir(const char* name) {
  const fs::path p = fs::temp_directory_path() / (std::string("kerascpp_") + name + "_" + std::to_string(getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}
}  // namespace

TEST_CASE("EarlyStopping follows Keras' patience, min_delta, mode and restore_best_weights", "[cpu][callbacks]") {
  Fixture f;
  std::vector<std::vector<Tensor>> weights_at_end;
  auto record = callbacks::LambdaCallback(
      {.on_epoch_end = [&](int, callbacks::Logs&) { weights_at_end.push_back(f.model.get_weights()); }});
  auto stop = std::make_shared<callbacks::EarlyStopping>(
      callbacks::EarlyStoppingOptions{.patience = 2, .restore_best_weights = true});
  const History h = f.model.fit(
      f.x, f.y,
      {.epochs = 10, .verbose = 0, .callbacks = {scripted({1.0, 0.8, 0.9, 0.85, 0.7, 0.6}), std::move(record), stop}});
  CHECK(h.epoch.size() == 4);  // improved at 0 and 1, then two epochs without: stop after epoch 3
  CHECK(stop->stopped_epoch() == 3);
  CHECK(stop->best_epoch() == 1);
  const auto restored = f.model.get_weights();
  for (size_t i = 0; i < restored.size(); ++i)
    CHECK(restored[i].to_vector<float>() == weights_at_end[1][i].to_vector<float>());

  // min_delta: 0.8 is not better than 1.0 by 0.25, so nothing improves after epoch 0.
  Fixture g;
  const History h2 = g.model.fit(
      g.x, g.y,
      {.epochs = 10,
       .verbose = 0,
       .callbacks = {scripted({1.0, 0.8, 0.9, 0.7}), callbacks::EarlyStopping({.min_delta = 0.25, .patience = 1})}});
  CHECK(h2.epoch.size() == 2);
  // auto mode maximizes accuracy-like names.
  Fixture k;
  const History h3 = k.model.fit(k.x, k.y,
                                 {.epochs = 10,
                                  .verbose = 0,
                                  .callbacks = {scripted({0.5, 0.6, 0.7, 0.65, 0.64}, "val_accuracy"),
                                                callbacks::EarlyStopping({.monitor = "val_accuracy", .patience = 2})}});
  CHECK(h3.epoch.size() == 5);
}

TEST_CASE("ReduceLROnPlateau and LearningRateScheduler set the learning rate as Keras does", "[cpu][callbacks]") {
  Fixture f;
  const History h = f.model.fit(
      f.x, f.y,
      {.epochs = 6,
       .verbose = 0,
       .callbacks = {scripted({1, 1, 1, 1, 1, 1}),
                     callbacks::ReduceLROnPlateau({.factor = 0.5, .patience = 1, .cooldown = 1, .min_lr = 0.0031})}});
  // Epoch 0 improves (from inf); epoch 1 waits 1 -> lr 0.005 with a cooldown of 1; epoch 2 spends the
  // cooldown, and, as in Keras, counts a wait in the same epoch -> 0.0031 (min_lr clamps 0.0025).
  const auto& lr = h.history.at("learning_rate");
  REQUIRE(lr.size() == 6);
  CHECK(lr[0] == Approx(0.01));
  CHECK(lr[1] == Approx(0.01));  // logged before the reduction, as Keras logs it
  CHECK(lr[2] == Approx(0.005));
  CHECK(lr[3] == Approx(0.0031));
  CHECK(f.model.optimizer()->learning_rate() == Approx(0.0031));
  kt::require_throws_with<ValueError>([] { callbacks::ReduceLROnPlateau({.factor = 1.5}); }, {"factor >= 1.0"});

  Fixture g;
  const History h2 = g.model.fit(
      g.x, g.y, {.epochs = 3, .verbose = 0, .callbacks = {callbacks::LearningRateScheduler([](int epoch, double lr) {
                                              return epoch < 1 ? lr : lr * 0.1;
                                            })}});
  kt::require_close(
      {static_cast<float>(h2.history.at("learning_rate")[0]), static_cast<float>(h2.history.at("learning_rate")[2])},
      {0.01f, 0.0001f}, 1e-7f, 1e-5f);
}

TEST_CASE("TerminateOnNaN stops on the first invalid loss", "[cpu][callbacks]") {
  Fixture f;
  std::vector<float> bad(32, 1.f);
  bad[0] = NAN;
  int batches = 0;
  const History h = f.model.fit(
      f.x, Tensor::from_vector(bad, Shape{16, 2}),
      {.batch_size = 4,
       .epochs = 3,
       .verbose = 0,
       .shuffle = false,
       .callbacks = {callbacks::TerminateOnNaN(),
                     callbacks::LambdaCallback({.on_train_batch_end = [&](int, callbacks::Logs&) { ++batches; }})}});
  CHECK(batches == 1);
  CHECK(h.epoch.size() == 1);
  CHECK(std::isnan(h.history.at("loss")[0]));
}

TEST_CASE("CSVLogger writes Keras' header and one row per epoch", "[cpu][callbacks]") {
  const fs::path dir = temp_dir("csv");
  const std::string path = (dir / "log.csv").string();
  Fixture f;
  f.model.fit(f.x, f.y,
              {.epochs = 2, .verbose = 0, .validation_split = 0.25f, .callbacks = {callbacks::CSVLogger(path)}});
  f.model.fit(
      f.x, f.y,
      {.epochs = 1, .verbose = 0, .validation_split = 0.25f, .callbacks = {callbacks::CSVLogger(path, ',', true)}});
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  REQUIRE(lines.size() == 4);  // one header, three rows (the appended run adds no header)
  CHECK(lines[0] == "epoch,loss,val_loss");
  CHECK(lines[1].rfind("0,", 0) == 0);
  CHECK(lines[3].rfind("0,", 0) == 0);
  const double loss = std::stod(lines[2].substr(2, lines[2].find(',', 2) - 2));
  CHECK(std::isfinite(loss));
  fs::remove_all(dir);
}

TEST_CASE("ModelCheckpoint saves the best weights atomically and load_weights restores them", "[cpu][callbacks]") {
  const fs::path dir = temp_dir("ckpt");
  Fixture f;
  std::vector<std::vector<Tensor>> at_end;
  auto record = callbacks::LambdaCallback(
      {.on_epoch_end = [&](int, callbacks::Logs&) { at_end.push_back(f.model.get_weights()); }});
  f.model.fit(f.x, f.y,
              {.epochs = 4,
               .verbose = 0,
               .callbacks = {scripted({1.0, 0.5, 0.7, 0.6}), std::move(record),
                             callbacks::ModelCheckpoint((dir / "best.kcpp").string(), {.save_best_only = true}),
                             callbacks::ModelCheckpoint((dir / "e{epoch}.kcpp").string())}});
  for (int e = 1; e <= 4; ++e) CHECK(fs::exists(dir / ("e" + std::to_string(e) + ".kcpp")));
  f.model.load_weights((dir / "best.kcpp").string());  // epoch 1 (0.5) was the best
  for (size_t i = 0; i < at_end[1].size(); ++i)
    CHECK(f.model.get_weights()[i].to_vector<float>() == at_end[1][i].to_vector<float>());
  for (const auto& entry : fs::directory_iterator(dir)) CHECK(entry.path().string().find(".tmp-") == std::string::npos);

  // A save that cannot complete leaves the previous file intact.
  const std::string best = (dir / "best.kcpp").string();
  fs::create_directories(best + ".tmp-" + std::to_string(getpid()));  // the temporary name is taken
  f.model.fit(f.x, f.y, {.epochs = 1, .verbose = 0});
  kt::require_throws_with<IOError>([&] { f.model.save_weights(best); }, {"cannot write", "best.kcpp"});
  f.model.load_weights(best);
  for (size_t i = 0; i < at_end[1].size(); ++i)
    CHECK(f.model.get_weights()[i].to_vector<float>() == at_end[1][i].to_vector<float>());

  // Files that do not fit the model are refused before anything changes.
  Sequential other({layers::Input({3}), layers::Dense(3)});
  kt::require_throws_with<IOError>([&] { other.load_weights(best); }, {"has shape (3, 2)", "(3, 3)"});
  std::string bytes;
  {
    std::ifstream in(best, std::ios::binary);
    bytes.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  std::ofstream((dir / "cut.kcpp").string(), std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 5));
  kt::require_throws_with<IOError>([&] { f.model.load_weights((dir / "cut.kcpp").string()); }, {"truncated"});
  std::ofstream((dir / "junk.kcpp").string()) << "not weights";
  kt::require_throws_with<IOError>([&] { f.model.load_weights((dir / "junk.kcpp").string()); },
                                   {"not a kerascpp weights file"});
  kt::require_throws_with<ValueError>([&] { f.model.save_weights((dir / "m.h5").string()); }, {".weights.h5"});
  fs::remove_all(dir);
}

TEST_CASE("BackupAndRestore: an interrupted fit resumed with the same seed ends with the same weights",
          "[cpu][callbacks]") {
  // Dropout masks, shuffling and Adam's state all matter: the resumed run must restore each.
  auto make = [] {
    utils::set_random_seed(42);
    utils::clear_session();
    auto m = std::make_shared<Sequential>(std::vector<LayerRef>{
        layers::Input({6}), layers::Dense(8, {.activation = "relu"}), layers::Dropout(0.3), layers::Dense(2)});
    m->compile({.optimizer = optimizers::Adam({.learning_rate = 0.01f}), .loss = "mse"});
    return m;
  };
  const Tensor x = kt::random_tensor(Shape{40, 6}, 7), y = kt::random_tensor(Shape{40, 2}, 8);
  const FitOptions base{.batch_size = 8, .epochs = 5, .verbose = 0};

  auto uninterrupted = make();
  const History full = uninterrupted->fit(x, y, base);
  const auto expected = uninterrupted->get_weights();

  const fs::path dir = temp_dir("backup");
  const std::string backup = (dir / "backup").string();
  struct Interrupt {};
  {
    auto m = make();
    FitOptions o = base;
    o.callbacks = {callbacks::BackupAndRestore(backup), callbacks::LambdaCallback({.on_epoch_end = [](int epoch, callbacks::Logs&) {
                     if (epoch == 2) throw Interrupt{};  // a crash after epoch 3's backup
                   }})};
    CHECK_THROWS_AS(m->fit(x, y, o), Interrupt);
  }
  CHECK(fs::exists(fs::path(backup) / "training_metadata.json"));
  auto resumed = make();
  FitOptions o = base;
  o.callbacks = {callbacks::BackupAndRestore(backup)};
  const History rest = resumed->fit(x, y, o);
  CHECK(rest.epoch == std::vector<int>{3, 4});  // epochs 4 and 5 only
  CHECK(resumed->optimizer()->iterations() == uninterrupted->optimizer()->iterations());
  const auto got = resumed->get_weights();
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i].to_vector<float>() == expected[i].to_vector<float>());
  CHECK(rest.history.at("loss").back() == full.history.at("loss").back());
  CHECK_FALSE(fs::exists(backup));  // deleted once fit() ended normally

  // Without the restored random streams the run differs: the test can fail.
  auto fresh = make();
  fresh->fit(x, y, base);
  auto reshuffled = make();
  FitOptions skip = base;
  skip.initial_epoch = 0;
  skip.epochs = 5;
  skip.shuffle = false;
  reshuffled->fit(x, y, skip);
  CHECK(reshuffled->get_weights()[0].to_vector<float>() != fresh->get_weights()[0].to_vector<float>());
  fs::remove_all(dir);
}
