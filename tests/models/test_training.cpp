#include <omp.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/test_support.h"

using namespace keras;

TEST_CASE("the progress bar prints Keras 3's final line", "[cpu][models]") {
  std::ostringstream out;
  utils::Progbar bar(422, 1, out, false);
  // Step 1 ends at 3.21 s, the last at 7.0 s: 9 ms per step after the first, 7 s elapsed.
  bar.set_clock_for_testing({3.21, 5.0, 7.0});
  bar.update(1, {{"loss", 1.0}});
  bar.update(200, {{"loss", 0.9}});
  CHECK(out.str().empty());  // off a terminal only the final line is printed
  bar.update(422, {{"accuracy", 0.76684}, {"loss", 0.76444}, {"val_accuracy", 0.98031}, {"val_loss", 0.08154}}, true);
  CHECK(out.str() ==
        "422/422 ━━━━━━━━━━━━━━━━━━━━ 7s 9ms/step - accuracy: 0.7668 - loss: 0.7644 - val_accuracy: 0.9803 - val_loss: "
        "0.0815\n");

  std::ostringstream out2;
  utils::Progbar bar2(422, 2, out2, false);
  bar2.set_clock_for_testing({3.21, 7.0});
  bar2.update(1, {});
  bar2.update(422, {{"loss", 0.0002}}, true);
  CHECK(out2.str() == "422/422 - 7s - 9ms/step - loss: 2.0000e-04\n");

  // On a terminal: redrawn in place, bold count, green done part, white rest, ETA while running.
  std::ostringstream out3;
  utils::Progbar bar3(10, 1, out3, true);
  bar3.set_clock_for_testing({0.5, 1.0});
  bar3.update(1, {});
  bar3.update(5, {{"loss", 0.5}});
  CHECK(out3.str().find("\r\x1b[1m 5/10\x1b[0m \x1b[32m━━━━━━━━━━\x1b[0m\x1b[37m━━━━━━━━━━\x1b[0m \x1b[1m0s\x1b[0m "
                        "125ms/step - loss: 0.5000") != std::string::npos);
  CHECK(utils::Progbar::format_eta(75) == "1:15");
  CHECK(utils::Progbar::format_eta(3725) == "1:02:05");
  CHECK(utils::Progbar::format_time_per_step(2.4) == " 2s/step");
  CHECK(utils::Progbar::format_time_per_step(0.0004) == " 400us/step");
  CHECK(utils::Progbar::format_value(-0.5) == "-0.5000");
}

TEST_CASE("the progress bar reads its values only for the lines it prints", "[cpu][models]") {
  // fit reads the metrics from the device (one wait each on a GPU) only where a line is printed.
  int reads = 0;
  const auto values = [&reads] {
    ++reads;
    return utils::Progbar::Values{{"loss", 0.25}};
  };
  std::ostringstream off;  // off a terminal: the final line only
  utils::Progbar plain(100, 1, off, false);
  plain.set_clock_for_testing({0.1, 0.2, 0.3, 0.4});
  for (int64_t s = 1; s <= 3; ++s) plain.update_reading(s, values);
  CHECK(reads == 0);
  plain.update_reading(100, values, true);
  CHECK(reads == 1);
  // 3 ms per step after step 1 ((0.4 - 0.1) / 99): step 1 was timed though nothing was printed.
  CHECK(off.str() == "100/100 ━━━━━━━━━━━━━━━━━━━━ 0s 3ms/step - loss: 0.2500\n");

  reads = 0;
  std::ostringstream on;  // a terminal: redrawn at most every 50 ms
  utils::Progbar live(100, 1, on, true);
  live.set_clock_for_testing({0.00, 0.01, 0.02, 0.10, 0.11, 0.2});
  for (int64_t s = 1; s <= 5; ++s) live.update_reading(s, values);
  CHECK(reads == 2);  // at 0.00 and 0.10 s
  live.update_reading(100, values, true);
  CHECK(reads == 3);

  reads = 0;
  std::ostringstream v2;  // verbose 2: the final line only
  utils::Progbar brief(100, 2, v2, true);
  brief.set_clock_for_testing({0.1, 0.2, 0.3});
  brief.update_reading(1, values);
  brief.update_reading(2, values);
  CHECK(reads == 0);
  brief.update_reading(100, values, true);
  CHECK(reads == 1);
}

TEST_CASE("optimizers apply Keras' update rules", "[cpu][optim]") {
  auto one_var = [](std::vector<float> v) {
    return std::make_unique<Variable>(Tensor::from_vector(v, Shape{static_cast<int64_t>(v.size())}), "w");
  };
  const Tensor g = Tensor::from_vector<float>({0.5f}, Shape{1});
  {  // RMSprop: v = 0.1 * 0.25; w = 1 - 0.1 * 0.5 / sqrt(v + 1e-7)
    auto w = one_var({1.f});
    optimizers::RMSprop opt({.learning_rate = 0.1f});
    opt.apply_gradients({g}, {w.get()});
    CHECK(w->value().item() == Approx(1.0 - 0.05 / std::sqrt(0.025 + 1e-7)));
    CHECK(opt.iterations() == 1);
  }
  {  // centered: the denominator subtracts the squared mean gradient (0.05^2)
    auto w = one_var({1.f});
    optimizers::RMSprop opt({.learning_rate = 0.1f, .centered = true});
    opt.apply_gradients({g}, {w.get()});
    CHECK(w->value().item() == Approx(1.0 - 0.05 / std::sqrt(0.0225 + 1e-7)));
  }
  {  // momentum: the increments accumulate
    auto w = one_var({1.f});
    optimizers::RMSprop opt({.learning_rate = 0.1f, .momentum = 0.9f});
    opt.apply_gradients({g}, {w.get()});
    opt.apply_gradients({g}, {w.get()});
    const double i1 = 0.05 / std::sqrt(0.025 + 1e-7), i2 = 0.05 / std::sqrt(0.0475 + 1e-7);
    CHECK(w->value().item() == Approx(1.0 - i1 - (0.9 * i1 + i2)));
  }
  {  // clipnorm, clipvalue and global_clipnorm with plain SGD (lr 1)
    auto w = one_var({0.f, 0.f});
    optimizers::SGD clip_norm({.learning_rate = 1.f, .common = {.clipnorm = 1.f}});
    clip_norm.apply_gradients({Tensor::from_vector<float>({3, 4}, Shape{2})}, {w.get()});
    kt::require_close(w->value().to_vector<float>(), {-0.6f, -0.8f});
    auto w2 = one_var({0.f, 0.f});
    optimizers::SGD clip_value({.learning_rate = 1.f, .common = {.clipvalue = 0.5f}});
    clip_value.apply_gradients({Tensor::from_vector<float>({3, -0.2f}, Shape{2})}, {w2.get()});
    kt::require_close(w2->value().to_vector<float>(), {-0.5f, 0.2f});
    auto a = one_var({0.f}), b = one_var({0.f});
    optimizers::SGD global({.learning_rate = 1.f, .common = {.global_clipnorm = 1.f}});
    global.apply_gradients({Tensor::from_vector<float>({3}, Shape{1}), Tensor::from_vector<float>({4}, Shape{1})},
                           {a.get(), b.get()});
    CHECK(a->value().item() == Approx(-0.6));
    CHECK(b->value().item() == Approx(-0.8));
  }
  {  // Adam through the optimizer class: slots in Keras' order, step counted from 1
    auto w = one_var({1.f});
    optimizers::Adam opt;
    opt.apply_gradients({g}, {w.get()});
    // First step: m = 0.05, v = 0.00025, alpha = 0.001 * sqrt(0.001) / 0.1
    const double alpha = 0.001 * std::sqrt(1 - 0.999) / (1 - 0.9);
    CHECK(w->value().item() == Approx(1.0 - alpha * 0.05 / (std::sqrt(0.00025) + 1e-7)).epsilon(1e-5));
    CHECK(opt.variables().size() == 2);
    CHECK(opt.variables()[0]->name() == "w/m");
  }
  kt::require_throws_with<ValueError>([] { optimizers::get("adagradz"); }, {"unknown optimizer 'adagradz'", "adam"});
}

TEST_CASE("losses match hand-computed Keras values", "[cpu][losses]") {
  const Tensor p = Tensor::from_vector<float>({0.1f, 0.7f, 0.2f, 0.5f, 0.25f, 0.25f}, Shape{2, 3});
  const Tensor ids = Tensor::from_vector<uint8_t>({1, 0}, Shape{2});
  kt::require_close(losses::SparseCategoricalCrossentropy().per_sample(ids, p).to_vector<float>(),
                    {static_cast<float>(-std::log(0.7)), static_cast<float>(-std::log(0.5))}, 1e-6f, 1e-5f);
  // Zero probabilities are clipped to 1e-7, as Keras.
  const Tensor hard = Tensor::from_vector<float>({1.f, 0.f}, Shape{1, 2});
  CHECK(losses::SparseCategoricalCrossentropy().per_sample(Tensor::from_vector<int32_t>({1}, Shape{1}), hard).item() ==
        Approx(-std::log(1e-7)).epsilon(1e-4));
  // The fused logits path equals the probability path.
  const Tensor z = kt::random_tensor(Shape{4, 5}, 3, -3, 3);
  const Tensor zi = Tensor::from_vector<int64_t>({0, 4, 2, 2}, Shape{4});
  kt::require_close(losses::SparseCategoricalCrossentropy().per_sample_from_logits(zi, z).to_vector<float>(),
                    losses::SparseCategoricalCrossentropy().per_sample(zi, ops::softmax(z)).to_vector<float>(), 1e-5f,
                    1e-5f);
  kt::require_close(losses::SparseCategoricalCrossentropy(true).per_sample(zi, z).to_vector<float>(),
                    losses::SparseCategoricalCrossentropy().per_sample(zi, ops::softmax(z)).to_vector<float>(), 1e-5f,
                    1e-5f);
  // Label smoothing 0.1 over 3 classes: targets 0.0333, 0.9333, 0.0333.
  const Tensor onehot = Tensor::from_vector<float>({0, 1, 0}, Shape{1, 3});
  const Tensor p1 = Tensor::from_vector<float>({0.1f, 0.7f, 0.2f}, Shape{1, 3});
  const double t = 0.1 / 3;
  CHECK(losses::CategoricalCrossentropy(false, 0.1f).per_sample(onehot, p1).item() ==
        Approx(-(t * std::log(0.1) + (0.9 + t) * std::log(0.7) + t * std::log(0.2))).epsilon(1e-5));
  CHECK(losses::BinaryCrossentropy()
            .per_sample(Tensor::from_vector<float>({1, 0}, Shape{1, 2}),
                        Tensor::from_vector<float>({0.8f, 0.3f}, Shape{1, 2}))
            .item() == Approx((-std::log(0.8) - std::log(0.7)) / 2).epsilon(1e-5));
  const double sig2 = 1 / (1 + std::exp(-2.0)), sig1 = 1 / (1 + std::exp(-1.0));
  CHECK(
      losses::BinaryCrossentropy(true)
          .per_sample(Tensor::from_vector<float>({1, 0}, Shape{1, 2}), Tensor::from_vector<float>({2, -1}, Shape{1, 2}))
          .item() == Approx((-std::log(sig2) - std::log(sig1)) / 2).epsilon(1e-5));
  const Tensor a = Tensor::from_vector<float>({1, 2}, Shape{1, 2}),
               b = Tensor::from_vector<float>({1.5f, 1}, Shape{1, 2});
  CHECK(losses::MeanSquaredError().per_sample(a, b).item() == Approx(0.625));
  CHECK(losses::MeanAbsoluteError().per_sample(a, b).item() == Approx(0.75));
  kt::require_throws_with<ShapeError>(
      [&] {
        losses::MeanSquaredError().per_sample(a, ops::zeros(Shape{1, 3}));
      },
      {"mean_squared_error", "(1, 2)", "(1, 3)"});
  kt::require_throws_with<ValueError>([] { losses::get("hinge2"); }, {"unknown loss 'hinge2'"});
}

TEST_CASE("metrics accumulate over batches and reset", "[cpu][metrics]") {
  auto acc = metrics::get("accuracy", "sparse_categorical_crossentropy");
  CHECK(acc->name() == "accuracy");
  acc->update_state(Tensor::from_vector<int32_t>({1, 0}, Shape{2}),
                    Tensor::from_vector<float>({0.2f, 0.8f, 0.9f, 0.1f}, Shape{2, 2}));
  acc->update_state(Tensor::from_vector<int32_t>({1}, Shape{1}), Tensor::from_vector<float>({0.6f, 0.4f}, Shape{1, 2}));
  CHECK(acc->result() == Approx(2.0 / 3));
  acc->reset_state();
  CHECK(acc->result() == 0.0);
  auto bin = metrics::get("accuracy", "binary_crossentropy");
  bin->update_state(Tensor::from_vector<float>({1, 0, 1, 0}, Shape{4, 1}),
                    Tensor::from_vector<float>({0.7f, 0.6f, 0.2f, 0.1f}, Shape{4, 1}));
  CHECK(bin->result() == Approx(0.5));
  auto cat = metrics::get("categorical_accuracy", "");
  cat->update_state(Tensor::from_vector<float>({0, 1, 1, 0}, Shape{2, 2}),
                    Tensor::from_vector<float>({0.3f, 0.7f, 0.4f, 0.6f}, Shape{2, 2}));
  CHECK(cat->result() == Approx(0.5));
  kt::require_throws_with<ValueError>([] { metrics::get("f1", ""); }, {"unknown metric 'f1'"});
}

TEST_CASE("fit learns, logs Keras' keys and matches evaluate and predict", "[cpu][models]") {
  utils::set_random_seed(7);
  utils::clear_session();
  // Two Gaussian blobs, label = which one.
  const int64_t n = 400;
  const Tensor labels =
      ops::cast(ops::greater(ops::random_uniform(Shape{n}, 0, 1, 1), ops::full({}, 0.5f)), DType::int32);
  const Tensor centers = ops::multiply(ops::cast(ops::expand_dims(labels, -1), DType::float32), 3.f);
  const Tensor x = ops::random_normal(Shape{n, 2}, 0, 1, 2) + centers;
  Sequential model(
      {layers::Input({2}), layers::Dense(8, {.activation = "relu"}), layers::Dense(2, {.activation = "softmax"})});
  model.compile({.optimizer = optimizers::Adam({.learning_rate = 0.05f}),
                 .loss = "sparse_categorical_crossentropy",
                 .metrics = {"accuracy"}});
  const History h = model.fit(x, labels, {.batch_size = 32, .epochs = 6, .verbose = 0, .validation_split = 0.25f});
  REQUIRE(h.history.size() == 4);
  for (const char* k : {"accuracy", "loss", "val_accuracy", "val_loss"}) CHECK(h.history.at(k).size() == 6);
  CHECK(h.epoch == std::vector<int>{0, 1, 2, 3, 4, 5});
  CHECK(h.history.at("loss").back() < h.history.at("loss").front());
  CHECK(h.history.at("val_accuracy").back() > 0.9);

  // evaluate() equals the mean loss and accuracy computed from predict().
  const auto scores = model.evaluate(x, labels, {.batch_size = 64, .verbose = 0});
  const Tensor probs = model.predict(x, {.batch_size = 50});
  REQUIRE(probs.shape() == Shape{n, 2});
  const double manual_loss = ops::mean(losses::SparseCategoricalCrossentropy().per_sample(labels, probs)).item();
  const double manual_acc =
      ops::mean(ops::cast(ops::equal(ops::argmax(probs, -1), ops::cast(labels, DType::int64)), DType::float32)).item();
  CHECK(scores.at("loss") == Approx(manual_loss).epsilon(1e-4));
  CHECK(scores.at("accuracy") == Approx(manual_acc));
  kt::require_close(model.predict_on_batch(x).to_vector<float>(), probs.to_vector<float>(), 1e-6f, 1e-5f);
}

TEST_CASE("class and sample weights of zero stop learning, and bad fit arguments are refused", "[cpu][models]") {
  utils::clear_session();
  Sequential model({layers::Input({3}), layers::Dense(2, {.activation = "softmax"})});
  model.compile({.optimizer = "sgd", .loss = "sparse_categorical_crossentropy"});
  const Tensor x = kt::random_tensor(Shape{8, 3}, 1),
               y = Tensor::from_vector<int32_t>({0, 1, 0, 1, 0, 1, 0, 1}, Shape{8});
  const auto before = model.get_weights();
  const History h = model.fit(x, y, {.epochs = 2, .verbose = 0, .class_weight = {{0, 0.f}, {1, 0.f}}});
  CHECK(h.history.at("loss").back() == 0.0);
  for (size_t i = 0; i < before.size(); ++i)
    CHECK(before[i].to_vector<float>() == model.get_weights()[i].to_vector<float>());
  model.fit(x, y, {.verbose = 0, .sample_weight = ops::zeros(Shape{8})});
  for (size_t i = 0; i < before.size(); ++i)
    CHECK(before[i].to_vector<float>() == model.get_weights()[i].to_vector<float>());
  model.fit(x, y, {.verbose = 0});
  CHECK(before[0].to_vector<float>() != model.get_weights()[0].to_vector<float>());

  kt::require_throws_with<ValueError>([&] { model.fit(x, ops::slice(y, {0}, {5}), {.verbose = 0}); },
                                      {"same number of samples", "(8, 3)", "(5,)"});
  kt::require_throws_with<ValueError>([&] { model.fit(x, y, {.verbose = 0, .validation_split = 1.5f}); },
                                      {"validation_split", "1.5"});
  Sequential uncompiled({layers::Input({3}), layers::Dense(1)});
  kt::require_throws_with<ValueError>([&] { uncompiled.fit(x, y, {.verbose = 0}); }, {"You must call `compile()`"});
}

TEST_CASE("the IDX reader refuses missing, truncated and malformed files", "[cpu][datasets]") {
  const auto dir = std::filesystem::temp_directory_path() / "kerascpp_idx_test";
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::vector<uint8_t>& bytes) {
    std::ofstream(dir / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return (dir / name).string();
  };
  // A valid 2 x 3 file, plain and gzip-compressed.
  const std::vector<uint8_t> good = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6};
  const Tensor t = datasets::read_idx(write("good.idx", good));
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.to_vector<uint8_t>() == std::vector<uint8_t>{1, 2, 3, 4, 5, 6});
  const std::string gz = (dir / "good.idx.gz").string();
  gzFile f = gzopen(gz.c_str(), "wb");
  gzwrite(f, good.data(), static_cast<unsigned>(good.size()));
  gzclose(f);
  CHECK(datasets::read_idx(gz).to_vector<uint8_t>() == t.to_vector<uint8_t>());

  kt::require_throws_with<IOError>(
      [&] {
        datasets::read_idx(write("short.idx", {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2}));
      },
      {"short.idx", "expected 6 data bytes", "found 2"});
  kt::require_throws_with<IOError>(
      [&] {
        datasets::read_idx(write("magic.idx", {1, 2, 8, 1, 0, 0, 0, 1, 9}));
      },
      {"bad magic"});
  kt::require_throws_with<IOError>(
      [&] {
        datasets::read_idx(write("float.idx", {0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0}));
      },
      {"element type 0x0d"});
  kt::require_throws_with<IOError>(
      [&] {
        datasets::read_idx(
            write("huge.idx", {0, 0, 8, 3, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff}));
      },
      {"huge.idx"});
  kt::require_throws_with<IOError>([&] { datasets::read_idx((dir / "missing.idx").string()); },
                                   {"cannot open", "missing.idx"});
  kt::require_throws_with<IOError>([&] { datasets::fashion_mnist::load_data(dir.string()); },
                                   {"dataset-fashion-mnist"});
  std::filesystem::remove_all(dir);
}

TEST_CASE("one epoch on 10,000 Fashion-MNIST images reaches over 80% on the test set", "[cpu][datasets][slow]") {
  utils::set_random_seed(3);
  utils::clear_session();
  auto [train, test] = datasets::fashion_mnist::load_data();
  CHECK(train.x.shape() == Shape{60000, 28, 28});
  CHECK(train.y.shape() == Shape{60000});
  CHECK(test.x.shape() == Shape{10000, 28, 28});
  CHECK(train.x.dtype() == DType::uint8);
  const Tensor x = ops::reshape(
      ops::cast(ops::slice(train.x, {0, 0, 0}, {10000, -1, -1}), DType::float32) * (1.f / 255.f), {-1, 28, 28, 1});
  const Tensor y = ops::slice(train.y, {0}, {10000});
  Sequential model({layers::Input({28, 28, 1}), layers::Conv2D(32, {3, 3}, {.activation = "relu"}),
                    layers::MaxPooling2D(), layers::Flatten(), layers::Dense(64, {.activation = "relu"}),
                    layers::Dense(10, {.activation = "softmax"})});
  model.compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy", .metrics = {"accuracy"}});
  model.fit(x, y, {.batch_size = 32, .epochs = 1, .verbose = 0});
  const Tensor x_test = ops::reshape(ops::cast(test.x, DType::float32) * (1.f / 255.f), {-1, 28, 28, 1});
  const double accuracy = model.evaluate(x_test, test.y, {.batch_size = 500, .verbose = 0}).at("accuracy");
  std::printf("Fashion-MNIST, one epoch on 10,000 images: test accuracy %.4f\n", accuracy);
  CHECK(accuracy > 0.80);
}

TEST_CASE("regularization penalties join the loss and constraints hold after every step", "[cpu][models]") {
  utils::clear_session();
  Sequential model({layers::Input({3}), layers::Dense(2, {.kernel_regularizer = regularizers::L2(0.1f),
                                                          .kernel_constraint = constraints::MaxNorm(0.5f)})});
  model.compile({.optimizer = optimizers::SGD({.learning_rate = 0.5f}), .loss = "mse"});
  const Tensor x = kt::random_tensor(Shape{8, 3}, 1), y = kt::random_tensor(Shape{8, 2}, 2, -5.f, 5.f);
  const Tensor kernel = model.get_weights()[0];
  const double mse = ops::mean(losses::MeanSquaredError().per_sample(y, model.predict(x))).item();
  const double penalty = 0.1 * ops::sum(ops::square(kernel)).item();
  CHECK(model.train_on_batch(x, y).at("loss") == Approx(mse + penalty).epsilon(1e-5));
  model.fit(x, y, {.epochs = 5, .verbose = 0});
  const auto norms = ops::sqrt(ops::sum(ops::square(model.get_weights()[0]), {0})).to_vector<float>();
  for (float n : norms) CHECK(n <= 0.5f + 1e-5f);
  kt::require_throws_with<ValueError>([] { Regularizer("l3"); }, {"unknown regularizer 'l3'"});
}

TEST_CASE("optimizers by name and schedules as learning rates", "[cpu][optim]") {
  for (const char* name : {"sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam"})
    CHECK(optimizers::get(name));
  optimizers::SGD sgd({.learning_rate = optimizers::schedules::PiecewiseConstantDecay({1}, {0.5, 0.25})});
  CHECK(sgd.learning_rate() == Approx(0.5));
  Variable w(ops::zeros(Shape{1}), "w");
  for (int i = 0; i < 3; ++i) sgd.apply_gradients({ops::ones(Shape{1})}, {&w});
  CHECK(w.value().item() == Approx(-(0.5 + 0.5 + 0.25)));  // steps 0 and 1 at 0.5, step 2 at 0.25
  sgd.set_learning_rate(0.1f);                             // a callback's override replaces the schedule
  CHECK(sgd.learning_rate() == Approx(0.1));
  kt::require_throws_with<ValueError>(
      [] {
        optimizers::schedules::PiecewiseConstantDecay({1, 2}, {0.1});
      },
      {"one more value"});
}

namespace {
// y = 2 x0 - x1, generated batch by batch; records which threads built the batches.
class LinearData : public data::Dataset {
 public:
  int64_t num_batches() const override { return 16; }
  data::Batch get_batch(int64_t index) override {
    {
      std::lock_guard lock(mutex);
      threads.insert(std::this_thread::get_id());
      omp_threads.insert(omp_get_max_threads());
    }
    if (fail_at == index) throw IOError("batch " + std::to_string(index) + " is unreadable");
    // Heavy enough to run oneDNN primitives on this thread while the model trains on the other.
    const Tensor busy = ops::tanh(ops::random_uniform(Shape{40000}, -1, 1, static_cast<uint64_t>(index)));
    REQUIRE(std::fabs(ops::mean(busy).item()) < 0.05);
    const Tensor x = ops::random_uniform(Shape{32, 2}, -1, 1, static_cast<uint64_t>(index) + 100 * epochs,
                                         &backend::get_backend("cpu"));
    const Tensor y = ops::matmul(x, Tensor::from_vector<float>({2, -1}, Shape{2, 1}, x.backend()));
    return {{x}, {y}, Tensor()};
  }
  void on_epoch_end() override { ++epochs; }
  std::mutex mutex;
  std::set<std::thread::id> threads;
  std::set<int> omp_threads;  // OpenMP's thread count where batches are built
  int64_t fail_at = -1;
  int epochs = 0;
};
}  // namespace

TEST_CASE("fit reads a user Dataset on a background thread and propagates its errors", "[cpu][models]") {
  utils::clear_session();
  Sequential model({layers::Input({2}), layers::Dense(1, {.use_bias = false})});
  model.compile({.optimizer = optimizers::SGD({.learning_rate = 0.2f}), .loss = "mse"});
  LinearData data;
  const History h = model.fit(data, {.epochs = 6, .verbose = 0});
  CHECK(data.epochs == 6);
  CHECK(h.history.at("loss").back() < 1e-3);
  CHECK(data.threads.size() >= 1);
  CHECK(data.threads.count(std::this_thread::get_id()) == 0);  // batches were built off the training thread
  // ... on one OpenMP thread: a second team would make libgomp put the training thread's waiting
  // workers to sleep between parallel regions.
  CHECK(data.omp_threads == std::set<int>{1});
  kt::require_close(model.get_weights()[0].to_vector<float>(), {2.f, -1.f}, 2e-2f, 0);
  data.fail_at = 3;
  kt::require_throws_with<IOError>([&] { model.fit(data, {.epochs = 1, .verbose = 0}); }, {"batch 3 is unreadable"});
  kt::require_throws_with<ValueError>([&] { model.fit(data, {.verbose = 0, .validation_split = 0.2f}); },
                                      {"validation_data"});
}

TEST_CASE("predict runs from several threads at once and gives each the results of a lone call", "[cpu][models]") {
  // A server answers requests on several threads with one model. The 3x3 convolution with 16
  // channels takes the CPU's Winograd path, whose oneDNN scratchpad was shared between threads
  // and crashed such callers before every primitive got its own.
  utils::clear_session();
  utils::set_random_seed(3);
  Sequential model({layers::Input({10, 10, 16}), layers::Conv2D(16, {3, 3}, {.activation = "relu"}),
                    layers::MaxPooling2D({2, 2}), layers::BatchNormalization(), layers::Flatten(),
                    layers::Dense(5, {.activation = "softmax"})});
  constexpr int kThreads = 4;
  std::vector<Tensor> inputs, alone;
  for (int t = 0; t < kThreads; ++t) {
    inputs.push_back(ops::random_uniform({24, 10, 10, 16}, 0.f, 1.f, 100 + t));
    alone.push_back(model.predict(inputs.back(), {.batch_size = 8}));
  }
  std::vector<std::vector<float>> together(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      try {
        for (int rep = 0; rep < 20; ++rep) together[t] = model.predict(inputs[t], {.batch_size = 8}).to_vector<float>();
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    INFO("thread " << t);
    CHECK(errors[t].empty());
    kt::require_close(together[t], alone[t].to_vector<float>(), 1e-6f, 1e-6f);
  }
}

TEST_CASE("to_categorical, normalize and split_dataset behave as Keras' utils", "[cpu][datasets]") {
  // to_categorical([[1], [0], [3]]) in Keras: shape (3, 4) with ones at 1, 0, 3.
  const Tensor labels = Tensor::from_vector(std::vector<int32_t>{1, 0, 3}, Shape{3, 1});
  const Tensor one_hot = utils::to_categorical(labels);
  CHECK(one_hot.shape() == Shape{3, 4});
  CHECK(one_hot.to_vector<float>() == std::vector<float>{0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1});
  CHECK(utils::to_categorical(labels, 5).shape() == Shape{3, 5});
  kt::require_throws_with<ValueError>([&] { utils::to_categorical(labels, 3); }, {"label 3", "num_classes=3"});
  kt::require_throws_with<ValueError>(
      [] { utils::to_categorical(Tensor::from_vector(std::vector<int32_t>{-1}, Shape{1})); }, {"labels >= 0"});

  // normalize: rows divided by their L2 norm; a zero row stays zero.
  const Tensor x = Tensor::from_vector(std::vector<float>{3, 4, 0, 0, 1, -1}, Shape{3, 2});
  kt::require_close(utils::normalize(x).to_vector<float>(),
                    {0.6f, 0.8f, 0.f, 0.f, 1.f / std::sqrt(2.f), -1.f / std::sqrt(2.f)});
  kt::require_close(utils::normalize(x, -1, 1).to_vector<float>(), {3.f / 7, 4.f / 7, 0, 0, 0.5f, -0.5f});

  // split_dataset: 0.8 of 10 samples left, rows kept together across arrays, every sample once.
  std::vector<float> xs(20), ys(10);
  for (int i = 0; i < 10; ++i) xs[2 * i] = xs[2 * i + 1] = ys[i] = static_cast<float>(i);
  const auto [left, right] = utils::split_dataset(
      {Tensor::from_vector(xs, Shape{10, 2}), Tensor::from_vector(ys, Shape{10})}, 0.8, true, 5);
  REQUIRE(left.size() == 2);
  CHECK(left[0].shape() == Shape{8, 2});
  CHECK(right[1].shape() == Shape{2});
  std::vector<float> seen;
  for (const auto* part : {&left, &right}) {
    const auto px = (*part)[0].to_vector<float>(), py = (*part)[1].to_vector<float>();
    for (size_t i = 0; i < py.size(); ++i) {
      CHECK(px[2 * i] == py[i]);
      seen.push_back(py[i]);
    }
  }
  std::sort(seen.begin(), seen.end());
  CHECK(seen == ys);
  CHECK(utils::split_dataset({Tensor::from_vector(ys, Shape{10})}, 3).first[0].to_vector<float>() ==
        std::vector<float>{0, 1, 2});  // a count, unshuffled
  kt::require_throws_with<ValueError>([&] { utils::split_dataset({Tensor::from_vector(ys, Shape{10})}, 1.5); },
                                      {"left_size"});
}

TEST_CASE("predict runs large batches in slices only where every layer treats samples independently",
          "[cpu][models]") {
  utils::clear_session();
  const Tensor x = kt::random_tensor(Shape{200, 6}, 31);
  // Per-sample layers: any batch_size gives the rows a naive per-sample product gives.
  Sequential dense({layers::Input({6}), layers::Dense(3)});
  CHECK(dense.samples_independent());
  const auto w = dense.layers()[0]->get_weights();
  const auto kernel = w[0].to_vector<float>(), bias = w[1].to_vector<float>(), xs = x.to_vector<float>();
  std::vector<float> expected;
  for (int64_t i = 0; i < 200; ++i)
    for (int64_t o = 0; o < 3; ++o) {
      double s = bias[static_cast<size_t>(o)];
      for (int64_t k = 0; k < 6; ++k) s += xs[static_cast<size_t>(i * 6 + k)] * kernel[static_cast<size_t>(k * 3 + o)];
      expected.push_back(static_cast<float>(s));
    }
  kt::require_close(dense.predict(x, {.batch_size = 200}).to_vector<float>(), expected, 1e-5f, 1e-5f);
  // A Lambda may mix samples (here: minus the batch mean), so a batch of 200 stays one batch.
  Sequential centred({layers::Input({6}), layers::Lambda([](const Tensor& t) { return t - ops::mean(t, {0}, true); })});
  CHECK_FALSE(centred.samples_independent());
  std::vector<double> mean(6, 0.0);
  for (int64_t i = 0; i < 200; ++i)
    for (int64_t k = 0; k < 6; ++k) mean[static_cast<size_t>(k)] += xs[static_cast<size_t>(i * 6 + k)] / 200.0;
  std::vector<float> centred_expected;
  for (int64_t i = 0; i < 200; ++i)
    for (int64_t k = 0; k < 6; ++k)
      centred_expected.push_back(static_cast<float>(xs[static_cast<size_t>(i * 6 + k)] - mean[static_cast<size_t>(k)]));
  kt::require_close(centred.predict(x, {.batch_size = 200}).to_vector<float>(), centred_expected, 1e-5f, 1e-5f);
  // Stateful RNNs carry state per batch row: not sliced either.
  Sequential stateful({layers::Input({3, 2}, {.batch_size = 200}), layers::SimpleRNN(2, {.stateful = true})});
  CHECK_FALSE(stateful.samples_independent());
}

TEST_CASE("predict sees the weights fit, set_weights and load_weights leave, on its reused weight layouts",
          "[cpu][models]") {
  // Inference keeps convolution weights reordered for the CPU's kernels; the reference is a twin
  // model given the same weights, whose convolutions reorder afresh.
  const auto build = [] {
    return std::make_shared<Sequential>(std::vector<LayerRef>{
        layers::Input({8, 8, 16}), layers::Conv2D(32, {3, 3}, {.padding = "same", .activation = "relu"}),
        layers::Conv2D(8, {1, 1}), layers::Flatten(), layers::Dense(3, {.activation = "softmax"})});
  };
  utils::set_random_seed(12);
  auto model = build();
  const Tensor x = kt::random_tensor(Shape{6, 8, 8, 16}, 31);
  const Tensor y = Tensor::from_vector<int32_t>({0, 1, 2, 0, 1, 2}, Shape{6});
  const auto twin_predicts = [&] {
    auto twin = build();
    twin->set_weights(model->get_weights());
    return twin->predict(x).to_vector<float>();
  };
  const auto same_as_twin = [&](const char* after) {
    INFO("after " << after);
    const auto got = model->predict(x).to_vector<float>();
    kt::require_close(got, twin_predicts(), 1e-6f, 1e-6f);
    return got;
  };
  const auto initial = same_as_twin("creation");
  same_as_twin("nothing");
  for (const char* optimizer : {"sgd", "adam"}) {
    model->compile({.optimizer = optimizer, .loss = "sparse_categorical_crossentropy"});
    model->fit(x, y, {.batch_size = 3, .epochs = 1, .verbose = 0});
    const auto trained = same_as_twin(optimizer);
    CHECK(std::abs(trained[0] - initial[0]) + std::abs(trained[1] - initial[1]) > 1e-6f);  // it did change
  }
  const auto path = (std::filesystem::temp_directory_path() / "kerascpp_reused_layouts.weights.h5").string();
  model->save_weights(path);
  const auto saved = model->predict(x).to_vector<float>();
  auto other = build();
  model->set_weights(other->get_weights());
  same_as_twin("set_weights");
  model->load_weights(path);
  kt::require_close(same_as_twin("load_weights"), saved, 0.f, 0.f);
  std::filesystem::remove(path);
}
