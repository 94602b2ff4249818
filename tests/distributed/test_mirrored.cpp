// Several replicas in one process (MirroredStrategy) on logical CPU devices, as on several GPUs:
// the in-process collectives against known per-rank values, and training against the same model
// trained on one device on the whole global batch.
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>

#include <unistd.h>

#include "core/ops.h"
#include "core/registry.h"
#include "distributed/strategy.h"
#include "kerascpp.h"
#include "tests/distributed/data_parallel_support.h"
#include "tests/support/test_support.h"

using namespace keras;
using Reduce = distribute::ReduceOp;

namespace {
using namespace dp_test;

std::vector<std::string> cpu_devices(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("cpu:" + std::to_string(i));
  return out;
}
// Catch2's assertions are not thread-safe: on a replica's thread, a failed expectation throws and
// on_threads returns it.
void expect(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("expected ") + what);
}
// Runs fn(rank) on one thread per member of `group` and returns what each threw ("" for none).
std::vector<std::string> on_threads(const distribute::InProcessGroup& group,
                                    const std::function<void(distribute::Communicator&)>& fn) {
  std::vector<std::string> errors(static_cast<size_t>(group.size()));
  std::vector<std::thread> threads;
  for (int r = 0; r < group.size(); ++r)
    threads.emplace_back([&, r] {
      try {
        fn(*group.member(r));
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}
}  // namespace

TEST_CASE("In-process collectives give the reductions of each replica's known values", "[cpu][distributed]") {
  distribute::InProcessGroup group(3);
  std::vector<std::vector<float>> sum(3), mean(3), max(3), bcast(3), gathered(3), scattered(3);
  std::vector<std::vector<int64_t>> isum(3);
  const auto errors = on_threads(group, [&](distribute::Communicator& c) {
    const int r = c.rank();
    expect(c.world_size() == 3, "world_size 3");
    expect(c.name() == "in_process", "the in_process communicator");
    const auto own = [&] {  // rank r holds r * 10 + i
      return Tensor::from_vector(std::vector<float>{r * 10.f, r * 10.f + 1, r * 10.f + 2, r * 10.f + 3}, Shape{4});
    };
    Tensor t = own();
    auto work = c.all_reduce_async(t, Reduce::sum);
    work->wait();
    sum[r] = t.to_vector<float>();
    t = own();
    c.all_reduce(t, Reduce::mean);
    mean[r] = t.to_vector<float>();
    t = own();
    c.all_reduce(t, Reduce::max);
    max[r] = t.to_vector<float>();
    Tensor ids = Tensor::from_vector(std::vector<int64_t>{r, 1000000000000LL}, Shape{2});
    c.all_reduce(ids, Reduce::sum);
    isum[r] = ids.to_vector<int64_t>();
    t = own();
    c.broadcast(t, 1);
    bcast[r] = t.to_vector<float>();
    const Tensor g = c.all_gather(own().view(Shape{2, 2}));
    expect(g.shape() == Shape({3, 2, 2}), "all_gather shape (3, 2, 2)");
    gathered[r] = g.to_vector<float>();
    const Tensor rows6 = Tensor::from_vector(std::vector<float>{1.f * r, 2, 3, 4, 5, 6}, Shape{3, 2});
    const Tensor part = c.reduce_scatter(rows6, Reduce::sum);
    expect(part.shape() == Shape({1, 2}), "reduce_scatter shape (1, 2)");
    scattered[r] = part.to_vector<float>();
    c.barrier();
  });
  for (int r = 0; r < 3; ++r) {
    INFO("rank " << r);
    CHECK(errors[r].empty());
    CHECK(sum[r] == std::vector<float>{30, 33, 36, 39});
    CHECK(mean[r] == std::vector<float>{10, 11, 12, 13});
    CHECK(max[r] == std::vector<float>{20, 21, 22, 23});
    CHECK(isum[r] == std::vector<int64_t>{3, 3000000000000LL});
    CHECK(bcast[r] == std::vector<float>{10, 11, 12, 13});
    CHECK(gathered[r] == std::vector<float>{0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23});
  }
  // Rows {0+1+2, 6}, {9, 12}, {15, 18}: rank r keeps row r.
  CHECK(scattered[0] == std::vector<float>{3, 6});
  CHECK(scattered[1] == std::vector<float>{9, 12});
  CHECK(scattered[2] == std::vector<float>{15, 18});
}

TEST_CASE("In-process collectives: mismatches, a missing replica and a failed one end in errors", "[cpu][distributed]") {
  distribute::InProcessGroup group(2, {.timeout = std::chrono::milliseconds(300)});
  // Shapes that differ: both replicas hear of it, with both shapes.
  auto errors = on_threads(group, [&](distribute::Communicator& c) {
    Tensor t = ops::zeros({c.rank() + 2});
    c.all_reduce(t);
  });
  for (const auto& e : errors) {
    CHECK_THAT(e, Catch::Contains("same shape and dtype"));
    CHECK_THAT(e, Catch::Contains("(2,)"));
    CHECK_THAT(e, Catch::Contains("(3,)"));
  }
  group.reset();
  // Rank 1 never comes: rank 0 fails after the timeout instead of hanging.
  const auto start = std::chrono::steady_clock::now();
  Tensor t = ops::zeros({2});
  CHECK_THROWS_WITH(group.member(0)->all_reduce(t), Catch::Contains("did not answer within 0.3 s"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  group.reset();
  // A replica that fails wakes the one waiting for it at once, with its reason.
  std::atomic<bool> waiting{false};
  std::string seen;
  std::thread waiter([&] {
    try {
      Tensor u = ops::zeros({2});
      auto work = group.member(0)->all_reduce_async(u, Reduce::sum);
      waiting = true;
      work->wait();
    } catch (const DistributedError& e) {
      seen = e.what();
    }
  });
  while (!waiting) std::this_thread::yield();
  group.fail("replica 1 failed: out of memory");
  waiter.join();
  CHECK(seen == "replica 1 failed: out of memory");
  CHECK_THROWS_WITH(group.member(1)->barrier(), Catch::Contains("replica 1 failed"));
  group.reset();
  errors = on_threads(group, [&](distribute::Communicator& c) { c.barrier(); });
  CHECK(errors == std::vector<std::string>{"", ""});
}

TEST_CASE("Logical CPU devices are backends of their own; DeviceScope places new tensors", "[cpu][distributed]") {
  Backend& cpu = backend::get_backend("cpu");
  Backend& cpu0 = backend::get_backend("cpu:0");
  Backend& cpu1 = backend::get_backend("cpu:1");
  CHECK(&cpu == &cpu0);
  CHECK(&cpu1 != &cpu0);
  CHECK(cpu1.device().index == 1);
  CHECK(cpu1.device().to_string() == "cpu:1");
  CHECK(backend::device_count("cpu") == -1);
  {
    backend::DeviceScope on1(cpu1);
    CHECK(Tensor::empty({2}).backend() == &cpu1);
    {
      backend::DeviceScope on0("cpu:0");
      CHECK(Tensor::empty({2}).backend() == &cpu0);
    }
    CHECK(ops::ones({3}).backend() == &cpu1);
    // Ops run on their inputs' device, and work there as anywhere.
    const Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3}, Shape{3});
    CHECK((a * a).to_vector<float>() == std::vector<float>{1, 4, 9});
  }
  CHECK(Tensor::empty({2}).backend() == &default_backend());
  CHECK_THROWS_WITH(backend::get_backend("cpu:x"), Catch::Contains("expected a name or a device such as 'cuda:1'"));
  CHECK_THROWS_WITH(backend::get_backend("tpu:0"), Catch::Contains("no backend named 'tpu'"));
}

TEST_CASE("MirroredStrategy: fit on 2 and 3 devices equals one device on the same global batches",
          "[cpu][distributed]") {
  const backend::DeviceScope on_cpu("cpu");  // the reference models too, whatever the default backend
  for (int replicas : {2, 3}) {
    INFO(replicas << " replicas");
    distribute::MirroredStrategy strategy(cpu_devices(replicas), {.bucket_bytes = 256});
    REQUIRE(strategy.num_replicas_in_sync() == replicas);
    REQUIRE(strategy.local_replicas() == replicas);
    // 50 samples in batches of 12: the last batch (2 samples) leaves replica 2 empty.
    auto [x, y] = make_data(50);
    utils::set_random_seed(31);  // the same starting weights every run
    auto [mirrored, single] = twins(strategy, make_mlp, [](Model& m) {
      m.compile({.optimizer = optimizers::SGD({.learning_rate = 0.2f, .momentum = 0.9f}),
                 .loss = "sparse_categorical_crossentropy",
                 .metrics = {"accuracy"}});
    });
    CHECK(mirrored.weights()[0]->value().backend() == &backend::get_backend("cpu:0"));
    CHECK_THROWS_WITH(mirrored.replica_weights(1), Catch::Contains("does not exist before the first training step"));
    int batches = 0;
    auto count = std::make_shared<callbacks::LambdaCallback>(
        callbacks::LambdaCallbackOptions{.on_train_batch_end = [&](int, callbacks::Logs&) { ++batches; }});
    utils::set_random_seed(11);  // the same shuffles in both runs
    const History hm = mirrored.fit(x, y, {.batch_size = 12, .epochs = 3, .verbose = 0, .callbacks = {count}});
    utils::set_random_seed(11);
    const History hs = single.fit(x, y, {.batch_size = 12, .epochs = 3, .verbose = 0});
    CHECK(batches == 15);  // callbacks run once per step, not once per replica
    CHECK(max_abs_diff(flat(mirrored.weights()), flat(single.weights())) < 2e-5);
    for (size_t e = 0; e < 3; ++e) {
      CHECK(hm.history.at("loss")[e] == Approx(hs.history.at("loss")[e]).epsilon(1e-4));
      CHECK(hm.history.at("accuracy")[e] == Approx(hs.history.at("accuracy")[e]).epsilon(1e-6));
    }
    // Every replica holds the same weights, on its own device.
    for (int r = 1; r < replicas; ++r) {
      CHECK(max_abs_diff(flat(mirrored.replica_weights(r)), flat(mirrored.weights())) == 0.0);
      CHECK(mirrored.replica_weights(r)[0]->value().device().index == r);
    }
    // Gradients went in several buckets per step, most launched while the backward pass ran.
    const auto c = strategy.counters();
    CHECK(c.at("replicas") == replicas);
    CHECK(c.at("steps") >= 15);
    CHECK(c.at("buckets") > c.at("steps"));
    CHECK(c.at("buckets_launched_during_backward") > c.at("buckets") / 2);
  }
}

TEST_CASE("MirroredStrategy: a mixed_float16 model trains on its replicas as on one device, loss scale included",
          "[cpu][distributed][mixed]") {
  const backend::DeviceScope on_cpu("cpu");
  distribute::MirroredStrategy strategy(cpu_devices(2));
  auto [x, y] = make_data(48);
  mixed_precision::PolicyScope policy("mixed_float16");
  utils::set_random_seed(31);
  auto [mirrored, single] = twins(strategy, make_mlp, [](Model& m) {
    m.compile({.optimizer = optimizers::SGD({.learning_rate = 0.1f}), .loss = "sparse_categorical_crossentropy"});
  });
  utils::set_random_seed(11);
  const History hm = mirrored.fit(x, y, {.batch_size = 16, .epochs = 2, .verbose = 0});
  utils::set_random_seed(11);
  const History hs = single.fit(x, y, {.batch_size = 16, .epochs = 2, .verbose = 0});
  // Each replica rounds its half-batch gradients to float16 before they are summed in float32, one
  // device its whole batch's: the runs agree to float16's precision, not bitwise.
  CHECK(max_abs_diff(flat(mirrored.weights()), flat(single.weights())) < 2e-3);
  for (size_t e = 0; e < 2; ++e) CHECK(hm.history.at("loss")[e] == Approx(hs.history.at("loss")[e]).epsilon(2e-3));
  CHECK(max_abs_diff(flat(mirrored.replica_weights(1)), flat(mirrored.weights())) == 0.0);
  CHECK(mirrored.replica_weights(1)[0]->value().dtype() == DType::float32);
  // Both wrapped their optimizer; six finite steps moved neither scale.
  auto* scaled = dynamic_cast<optimizers::LossScaleOptimizer*>(mirrored.optimizer());
  REQUIRE(scaled);
  CHECK(scaled->iterations() == 6);
  CHECK(scaled->step_counter() == 6);
  CHECK(scaled->loss_scale() == 32768.f);
  CHECK(mirrored.layers()[0]->compute_dtype() == DType::float16);
}

TEST_CASE("MirroredStrategy: evaluate and predict split each batch across replicas, in order", "[cpu][distributed]") {
  const backend::DeviceScope on_cpu("cpu");  // the reference models too, whatever the default backend
  distribute::MirroredStrategy strategy(cpu_devices(3));
  auto [x, y] = make_data(20);
  utils::set_random_seed(32);  // the same starting weights every run
  auto [mirrored, single] = twins(strategy, make_mlp, [](Model& m) {
    m.compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy", .metrics = {"accuracy"}});
  });
  // Before any training the replicas are made for it; batches of 7 and of 2 (one replica empty).
  for (int64_t batch : {7, 2}) {
    INFO("batch_size " << batch);
    const auto em = mirrored.evaluate(x, y, {.batch_size = batch, .verbose = 0});
    const auto es = single.evaluate(x, y, {.batch_size = batch, .verbose = 0});
    CHECK(em.at("loss") == Approx(es.at("loss")).epsilon(1e-6));
    CHECK(em.at("accuracy") == Approx(es.at("accuracy")).epsilon(1e-9));
    const Tensor pm = mirrored.predict(x, {.batch_size = batch});
    REQUIRE(pm.shape() == Shape({20, 3}));
    CHECK(pm.backend() == &default_backend());
    CHECK(max_abs_diff(values(pm), values(single.predict(x, {.batch_size = batch}))) < 1e-6);
  }
  CHECK(mirrored.replica_weights(2)[0]->value().device().index == 2);
  // New weights set on the model reach the replicas before the next evaluation.
  Sequential other = make_mlp();
  copy_weights(other, mirrored);
  copy_weights(other, single);
  CHECK(max_abs_diff(values(mirrored.predict(x, {.batch_size = 7})), values(single.predict(x, {.batch_size = 7}))) <
        1e-6);
  const auto em = mirrored.evaluate(x, y, {.batch_size = 7, .verbose = 0});
  CHECK(em.at("loss") == Approx(single.evaluate(x, y, {.batch_size = 7, .verbose = 0}).at("loss")).epsilon(1e-6));
}

TEST_CASE("MirroredStrategy: a functional model with two inputs and two outputs trains as on one device",
          "[cpu][distributed]") {
  const backend::DeviceScope on_cpu("cpu");  // the reference models too, whatever the default backend
  distribute::MirroredStrategy strategy(cpu_devices(2));
  auto make = [] {
    auto a = layers::Input({5}, {.name = "a"});
    auto b = layers::Input({2}, {.name = "b"});
    auto shared = std::make_shared<layers::Dense>(8, layers::DenseOptions{.activation = "tanh", .name = "shared"});
    auto h = layers::concatenate({(*shared)(a), layers::Dense(4, {.name = "side"})(b)});
    auto cls = layers::Dense(3, {.activation = "softmax", .name = "cls"})(h);
    auto reg = layers::Dense(1, {.name = "reg"})((*shared)(a));
    return Model({a, b}, {cls, reg});
  };
  auto [x, y] = make_data(40);
  const Tensor x2 = ops::slice(x, {0, 0}, {40, 2}) * 2.f;
  const Tensor y2 = ops::sum(x, {1}, true);
  const auto compile = [](Model& m) {
    m.compile({.optimizer = optimizers::Adam({.learning_rate = 0.01f}),
               .loss = {"sparse_categorical_crossentropy", "mse"},
               .loss_weights = {1.f, 0.5f}});
  };
  utils::set_random_seed(21);
  Model mirrored = strategy.scope(make);
  strategy.scope([&] { compile(mirrored); });
  Model single = make();
  compile(single);
  copy_weights(mirrored, single);
  const History hm = mirrored.fit({x, x2}, {y, y2}, {.batch_size = 10, .epochs = 2, .verbose = 0, .shuffle = false});
  const History hs = single.fit({x, x2}, {y, y2}, {.batch_size = 10, .epochs = 2, .verbose = 0, .shuffle = false});
  CHECK(max_abs_diff(flat(mirrored.weights()), flat(single.weights())) < 2e-5);
  CHECK(hm.history.at("loss")[1] == Approx(hs.history.at("loss")[1]).epsilon(1e-4));
  CHECK(hm.history.at("reg_loss")[1] == Approx(hs.history.at("reg_loss")[1]).epsilon(1e-4));
  CHECK(max_abs_diff(flat(mirrored.replica_weights(1)), flat(mirrored.weights())) == 0.0);
}

TEST_CASE("MirroredStrategy: replicas with dropout and per-replica BatchNormalization stay identical",
          "[cpu][distributed]") {
  const backend::DeviceScope on_cpu("cpu");  // the reference models too, whatever the default backend
  distribute::MirroredStrategy strategy(cpu_devices(2));
  utils::set_random_seed(12);
  auto [x, y] = make_data(64);
  Sequential model = strategy.scope([] {
    return Sequential({layers::Input({5}), layers::Dense(6, {.activation = "relu", .name = "d"}),
                       layers::BatchNormalization({.momentum = 0.9f, .name = "bn"}), layers::Dropout(0.3f),
                       layers::Dense(3, {.activation = "softmax"})});
  });
  // A learning rate of 0: the weights stay, so each replica's batch statistics can be computed here.
  strategy.scope([&] {
    model.compile({.optimizer = optimizers::SGD({.learning_rate = 0.f}), .loss = "sparse_categorical_crossentropy"});
  });
  model.fit(x, y, {.batch_size = 16, .epochs = 1, .verbose = 0, .shuffle = false});  // 4 steps, 8 rows each
  // Every weight, the moving statistics included, is the same on both replicas.
  CHECK(max_abs_diff(flat(model.replica_weights(1)), flat(model.weights())) == 0.0);
  // Each replica kept its own moving mean of relu(x W + b) over its rows (per-replica BatchNormalization);
  // the epoch's end averaged the two.
  const auto w = values(model.get_layer("d").weights()[0]->value()), b = values(model.get_layer("d").weights()[1]->value());
  const auto xv = values(x);
  std::vector<double> expected(6, 0.0);
  for (int r = 0; r < 2; ++r) {
    std::vector<double> moving(6, 0.0);
    for (int step = 0; step < 4; ++step) {
      std::vector<double> mean(6, 0.0);
      for (int row = step * 16 + r * 8; row < step * 16 + r * 8 + 8; ++row)
        for (int j = 0; j < 6; ++j) {
          double h = b[j];
          for (int k = 0; k < 5; ++k) h += xv[row * 5 + k] * w[k * 6 + j];
          mean[j] += std::max(h, 0.0) / 8.0;
        }
      for (int j = 0; j < 6; ++j) moving[j] = 0.9 * moving[j] + 0.1 * mean[j];
    }
    for (int j = 0; j < 6; ++j) expected[j] += moving[j] / 2.0;
  }
  const auto got = values(model.get_layer("bn").weights()[2]->value());  // gamma, beta, moving_mean, ...
  REQUIRE(got.size() == 6);
  for (int j = 0; j < 6; ++j) CHECK(got[j] == Approx(expected[j]).margin(1e-5));
}

TEST_CASE("MirroredStrategy: synchronized BatchNormalization equals BatchNormalization on the global batch",
          "[cpu][distributed]") {
  const backend::DeviceScope on_cpu("cpu");  // the reference models too, whatever the default backend
  distribute::MirroredStrategy strategy(cpu_devices(2));
  auto [x, y] = make_data(48);
  auto make = [](bool synchronized) {
    utils::set_random_seed(17);
    return Sequential({layers::Input({5}), layers::Dense(12),
                       synchronized ? layers::SyncBatchNormalization() : layers::BatchNormalization(),
                       layers::Activation("relu"), layers::Dense(3, {.activation = "softmax"})});
  };
  // tf.keras 2's class name reads as Keras 3's synchronized BatchNormalization.
  const auto legacy = serialization::deserialize_layer(Config::parse(
      R"({"class_name": "SyncBatchNormalization", "config": {"name": "sbn", "axis": -1, "momentum": 0.9}})"));
  CHECK(legacy->class_name() == "BatchNormalization");
  CHECK(legacy->get_config()["synchronized"] == true);
  CHECK(legacy->get_config()["momentum"] == Approx(0.9));
  Sequential mirrored = strategy.scope([&] { return make(true); });
  strategy.scope([&] {
    mirrored.compile({.optimizer = optimizers::SGD({.learning_rate = 0.1f}), .loss = "sparse_categorical_crossentropy"});
  });
  Sequential single = make(false);
  single.compile({.optimizer = optimizers::SGD({.learning_rate = 0.1f}), .loss = "sparse_categorical_crossentropy"});
  copy_weights(mirrored, single);
  mirrored.fit(x, y, {.batch_size = 24, .epochs = 2, .verbose = 0, .shuffle = false});
  single.fit(x, y, {.batch_size = 24, .epochs = 2, .verbose = 0, .shuffle = false});
  CHECK(max_abs_diff(flat(mirrored.weights()), flat(single.weights())) < 5e-5);
  CHECK(max_abs_diff(flat(mirrored.replica_weights(1)), flat(single.weights())) < 5e-5);
}

TEST_CASE("MirroredStrategy: learning-rate callbacks and weights loaded between fits reach every replica",
          "[cpu][distributed]") {
  const backend::DeviceScope on_cpu("cpu");  // the reference models too, whatever the default backend
  distribute::MirroredStrategy strategy(cpu_devices(2));
  auto [x, y] = make_data(48);
  utils::set_random_seed(33);  // the same starting weights every run
  auto [mirrored, single] = twins(strategy, make_mlp, [](Model& m) {
    m.compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy"});
  });
  const auto halve = [] { return callbacks::LearningRateScheduler([](int, double lr) { return lr * 0.5; }); };
  mirrored.fit(x, y, {.batch_size = 16, .epochs = 3, .verbose = 0, .shuffle = false, .callbacks = {halve()}});
  single.fit(x, y, {.batch_size = 16, .epochs = 3, .verbose = 0, .shuffle = false, .callbacks = {halve()}});
  CHECK(mirrored.optimizer()->learning_rate() == Approx(0.000125));
  CHECK(max_abs_diff(flat(mirrored.weights()), flat(single.weights())) < 2e-5);
  // New weights between fits: the next fit starts every replica from them.
  Sequential other = make_mlp();
  copy_weights(other, mirrored);
  copy_weights(other, single);
  mirrored.fit(x, y, {.batch_size = 16, .epochs = 1, .verbose = 0, .shuffle = false});
  single.fit(x, y, {.batch_size = 16, .epochs = 1, .verbose = 0, .shuffle = false});
  CHECK(max_abs_diff(flat(mirrored.weights()), flat(single.weights())) < 2e-5);
  CHECK(max_abs_diff(flat(mirrored.replica_weights(1)), flat(mirrored.weights())) == 0.0);
  // train_on_batch takes the same path and reports the global batch's loss.
  const Tensor xb = ops::slice(x, {0, 0}, {16, 5}), yb = ops::slice(y, {0}, {16});
  const auto lm = mirrored.train_on_batch(xb, yb);
  const auto ls = single.train_on_batch(xb, yb);
  CHECK(lm.at("loss") == Approx(ls.at("loss")).epsilon(1e-5));
  CHECK(max_abs_diff(flat(mirrored.weights()), flat(single.weights())) < 2e-5);
}

TEST_CASE("MirroredStrategy: an interrupted fit resumed by BackupAndRestore ends with the same weights",
          "[cpu][distributed]") {
  const backend::DeviceScope on_cpu("cpu");  // the reference models too, whatever the default backend
  distribute::MirroredStrategy strategy(cpu_devices(2));
  // Dropout on both replicas, shuffling and Adam's state all matter: the resumed run restores each.
  auto make = [&] { return make_dropout_classifier(strategy); };
  auto [x, y] = make_data(40);
  const FitOptions base{.batch_size = 8, .epochs = 5, .verbose = 0};
  auto uninterrupted = make();
  const History full = uninterrupted->fit(x, y, base);

  const auto dir = std::filesystem::temp_directory_path() / ("kerascpp_mirrored_backup_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  const std::string backup = (dir / "backup").string();
  struct Interrupt {};
  {
    auto m = make();
    FitOptions o = base;
    o.callbacks = {callbacks::BackupAndRestore(backup),
                   callbacks::LambdaCallback({.on_epoch_end = [](int epoch, callbacks::Logs&) {
                     if (epoch == 2) throw Interrupt{};  // a crash after epoch 3's backup
                   }})};
    CHECK_THROWS_AS(m->fit(x, y, o), Interrupt);
  }
  auto resumed = make();
  FitOptions o = base;
  o.callbacks = {callbacks::BackupAndRestore(backup)};
  const History rest = resumed->fit(x, y, o);
  CHECK(rest.epoch == std::vector<int>{3, 4});
  CHECK(max_abs_diff(flat(resumed->weights()), flat(uninterrupted->weights())) == 0.0);
  CHECK(max_abs_diff(flat(resumed->replica_weights(1)), flat(uninterrupted->replica_weights(1))) == 0.0);
  CHECK(rest.history.at("loss").back() == full.history.at("loss").back());
  std::filesystem::remove_all(dir);
}

TEST_CASE("MirroredStrategy: a replica's error ends fit with that error, and training goes on after it",
          "[cpu][distributed]") {
  const backend::DeviceScope on_cpu("cpu");  // the reference models too, whatever the default backend
  distribute::MirroredStrategy strategy(cpu_devices(2), {.timeout = std::chrono::milliseconds(20'000)});
  Sequential model = strategy.scope([] {
    return Sequential({layers::Input({3}, {.dtype = "int32"}), layers::Embedding(10, 4), layers::Flatten(),
                       layers::Dense(2, {.activation = "softmax"})});
  });
  strategy.scope([&] { model.compile({.optimizer = "sgd", .loss = "sparse_categorical_crossentropy"}); });
  // Ids of 8 rows; replica 1 (rows 4-7) meets id 12 outside the vocabulary of 10.
  std::vector<int32_t> ids(24, 1);
  ids[6 * 3 + 1] = 12;
  const Tensor bad = Tensor::from_vector(ids, Shape{8, 3});
  const Tensor labels = Tensor::from_vector(std::vector<int32_t>{0, 1, 0, 1, 0, 1, 0, 1}, Shape{8});
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(model.fit(bad, labels, {.batch_size = 8, .verbose = 0, .shuffle = false}),
                    Catch::Contains("id 12 at position") && Catch::Contains("out of range [0, 10)"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));  // not the 20 s timeout
  ids[6 * 3 + 1] = 2;
  const Tensor good = Tensor::from_vector(ids, Shape{8, 3});
  const History h = model.fit(good, labels, {.batch_size = 8, .epochs = 3, .verbose = 0, .shuffle = false});
  CHECK(h.history.at("loss").size() == 3);
  CHECK(max_abs_diff(flat(model.replica_weights(1)), flat(model.weights())) == 0.0);
}

namespace {
// A user's layer that nobody registered: its model cannot be copied from its config.
class DoubleIt : public Layer {
 public:
  KERASCPP_LAYER(DoubleIt)
  DoubleIt() : Layer("DoubleItUnregistered", "") {}
  Tensor call(const Tensor& x, bool) override { return x * 2.f; }
  PartialShape compute_output_shape(const PartialShape& s) const override { return s; }
};
}  // namespace

TEST_CASE("MirroredStrategy: a model that cannot be copied is refused by name, and replicas are made once it can",
          "[cpu][distributed]") {
  const backend::DeviceScope on_cpu("cpu");
  distribute::MirroredStrategy strategy(cpu_devices(2));
  utils::set_random_seed(5);
  Sequential model = strategy.scope([] {
    return Sequential({layers::Input({5}), layers::Dense(4), LayerRef(std::make_shared<DoubleIt>()),
                       layers::Dense(3, {.activation = "softmax"})});
  });
  strategy.scope([&] { model.compile({.optimizer = "sgd", .loss = "sparse_categorical_crossentropy"}); });
  auto [x, y] = make_data(16);
  CHECK_THROWS_WITH(model.fit(x, y, {.batch_size = 8, .verbose = 0}),
                    Catch::Contains("could not be copied to cpu:1") && Catch::Contains("DoubleItUnregistered"));
  register_layer_class("DoubleItUnregistered", [](const Config&) { return std::make_shared<DoubleIt>(); });
  model.fit(x, y, {.batch_size = 8, .epochs = 2, .verbose = 0});
  CHECK(max_abs_diff(flat(model.replica_weights(1)), flat(model.weights())) == 0.0);
}

TEST_CASE("MirroredStrategy: device lists are checked; on the CPU backend the default is one replica",
          "[cpu][distributed]") {
  const backend::DeviceScope on_cpu("cpu");  // the reference models too, whatever the default backend
  CHECK_THROWS_WITH(distribute::MirroredStrategy(std::vector<std::string>{}),
                    Catch::Contains("expected at least one device"));
  CHECK_THROWS_WITH(distribute::MirroredStrategy({"cpu:0", "cpu"}), Catch::Contains("are the same device"));
  CHECK_THROWS_WITH(distribute::MirroredStrategy({"cpu:0", "cpu:1"}, {.communicator = "mpi"}),
                    Catch::Contains("must be 'auto', 'in_process' or 'nccl', received 'mpi'"));
  CHECK_THROWS_WITH(distribute::MirroredStrategy({"cpu:0", "cpu:1"}, {.communicator = "nccl"}),
                    Catch::Contains("the NCCL communicator needs GPUs"));
  bool cuda_usable = false;
  for (const auto& p : backend::available_backends()) cuda_usable |= p.name == "cuda" && p.reason.empty();
  if (!cuda_usable)  // GPUs named on a machine without them: the registry says why
    CHECK_THROWS_AS(distribute::MirroredStrategy({"cuda:0", "cuda:1"}), BackendError);
  if (default_backend().device().type == DeviceType::cpu) {
    distribute::MirroredStrategy one;
    CHECK(one.num_replicas_in_sync() == 1);
    CHECK(one.local_replicas() == 1);
    auto [x, y] = make_data(24);
    utils::set_random_seed(34);  // the same starting weights every run
    auto [a, b] = twins(one, make_mlp, [](Model& m) {
      m.compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy"});
    });
    a.fit(x, y, {.batch_size = 8, .epochs = 2, .verbose = 0, .shuffle = false});
    b.fit(x, y, {.batch_size = 8, .epochs = 2, .verbose = 0, .shuffle = false});
    CHECK(max_abs_diff(flat(a.weights()), flat(b.weights())) == 0.0);
  }
}

namespace {
// The GPUs this machine has (0 without a usable CUDA backend).
int cuda_devices() {
  for (const auto& p : backend::available_backends())
    if (p.name == "cuda" && p.reason.empty()) return backend::device_count("cuda");
  return 0;
}
}  // namespace

TEST_CASE("cuda: MirroredStrategy over every GPU trains as one GPU on the same global batches", "[cuda]") {
  const int gpus = cuda_devices();
  if (gpus == 0) return kt::skip("no cuda device");
  // "cuda" and "cuda:<its index>" are one backend, so tensors of either go together.
  Backend& gpu = backend::get_backend("cuda");
  CHECK(&backend::get_backend(gpu.device().to_string()) == &gpu);
  CHECK_THROWS_WITH(backend::get_backend("cuda:" + std::to_string(gpus)), Catch::Contains("no device"));
  enable_tensor_float_32_execution(false);
  std::vector<std::string> devices;
  for (int i = 0; i < gpus; ++i) devices.push_back("cuda:" + std::to_string(i));
  backend::DeviceScope on_first(devices[0]);
  distribute::MirroredStrategy strategy(devices, {.bucket_bytes = 256});
  CHECK(strategy.num_replicas_in_sync() == gpus);
  auto [x, y] = make_data(50);
  utils::set_random_seed(35);  // the same starting weights every run
  auto [mirrored, single] = twins(strategy, make_mlp, [](Model& m) {
    m.compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy"});
  });
  mirrored.fit(x, y, {.batch_size = 12, .epochs = 2, .verbose = 0, .shuffle = false});
  single.fit(x, y, {.batch_size = 12, .epochs = 2, .verbose = 0, .shuffle = false});
  CHECK(max_abs_diff(flat(mirrored.weights()), flat(single.weights())) < 1e-4);
  for (int r = 1; r < gpus; ++r) {
    CHECK(max_abs_diff(flat(mirrored.replica_weights(r)), flat(mirrored.weights())) == 0.0);
    CHECK(mirrored.replica_weights(r)[0]->value().device().to_string() == devices[r]);
  }
  CHECK(max_abs_diff(values(mirrored.predict(x, {.batch_size = 7})), values(single.predict(x, {.batch_size = 7}))) <
        1e-4);
  enable_tensor_float_32_execution(true);
}
