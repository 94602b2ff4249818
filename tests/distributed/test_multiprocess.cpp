// Run by CTest under `mpirun -np 2` and `-np 3`, and under tests/distributed/launch_local.sh (the
// torchrun-style contract, tcp communicator) with 2 and 3 ranks: every rank runs every case in the
// same order. References are computed independently: sums of known per-rank values,
// and the same model trained in one process on the whole global batch.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include <unistd.h>

#include "core/config.h"
#include "core/ops.h"
#include "core/random.h"
#include "distributed/strategy.h"
#include "kerascpp.h"
#include "tests/distributed/data_parallel_support.h"
#include "tests/support/test_support.h"

using namespace keras;
using Reduce = distribute::ReduceOp;

using namespace dp_test;

namespace {
distribute::MultiWorkerMirroredStrategy& strategy() {
  static distribute::MultiWorkerMirroredStrategy s({.communicator = "auto", .bucket_bytes = 256});
  return s;
}
}  // namespace

TEST_CASE("Communicator: collectives give the sums of each rank's known values", "[mpi]") {
  auto& comm = strategy().communicator();
  const int r = comm.rank(), w = comm.world_size();
  REQUIRE(comm.name() == (settings().launched_by_mpi ? "mpi" : "tcp"));
  REQUIRE(w == settings().world_size);
  REQUIRE(w >= 2);

  // Rank r holds (r + 1) * [1, 2, 3].
  auto mine = [&] { return Tensor::from_vector(std::vector<float>{1.f * (r + 1), 2.f * (r + 1), 3.f * (r + 1)}, {3}); };
  const float s = static_cast<float>(w * (w + 1) / 2);  // 1 + 2 + ... + w
  Tensor t = mine();
  comm.all_reduce(t, Reduce::sum);
  CHECK(values(t) == std::vector<float>{s, 2 * s, 3 * s});
  t = mine();
  comm.all_reduce(t, Reduce::mean);
  CHECK(values(t)[2] == Approx(3 * s / w));
  t = mine();
  comm.all_reduce(t, Reduce::max);
  CHECK(values(t) == std::vector<float>{1.f * w, 2.f * w, 3.f * w});
  t = mine();
  comm.all_reduce(t, Reduce::min);
  CHECK(values(t) == std::vector<float>{1, 2, 3});

  Tensor ids = Tensor::from_vector(std::vector<int64_t>{r == 1 ? 42 : -1}, {1});
  comm.broadcast(ids, 1);
  CHECK(ids.to_vector<int64_t>()[0] == 42);

  const Tensor gathered = comm.all_gather(mine());
  REQUIRE(gathered.shape() == Shape{w, 3});
  const auto g = values(gathered);
  for (int k = 0; k < w; ++k) CHECK(g[static_cast<size_t>(k * 3 + 1)] == 2.f * (k + 1));

  // Rows [r, r + 1) of the sum of every rank's (w, 2) block [[r + k, 1]]: sum over ranks of r + k.
  std::vector<float> block;
  for (int k = 0; k < w; ++k) block.insert(block.end(), {static_cast<float>(r + k), 1.f});
  const Tensor mine_rows = comm.reduce_scatter(Tensor::from_vector(block, {w, 2}), Reduce::sum);
  REQUIRE(mine_rows.shape() == Shape{1, 2});
  CHECK(values(mine_rows) == std::vector<float>{static_cast<float>(w * (w - 1) / 2 + w * r), static_cast<float>(w)});
  CHECK_THROWS_WITH(comm.reduce_scatter(
                        Tensor::from_vector(std::vector<float>(static_cast<size_t>(w + 1), 1.f), {w + 1}), Reduce::sum),
                    Catch::Contains("divisible by the " + std::to_string(w) + " ranks"));
  // Refused alike on every rank before anything is sent (no rank is left waiting).
  Tensor flags = Tensor::from_vector(std::vector<int32_t>{1, 0}, {2});
  CHECK_THROWS_AS(comm.all_reduce(flags, Reduce::mean), TypeError);
  comm.barrier();
}

TEST_CASE("Data parallel fit equals one process on the same global batches", "[mpi]") {
  const int w = strategy().num_replicas_in_sync();
  // 50 samples in batches of 12: the last batch (2 samples) leaves a replica empty when w == 3.
  auto [x, y] = make_data(50);

  utils::set_random_seed(3);
  Sequential dist = strategy().scope([] { return make_mlp(); });
  strategy().scope([&] {
    dist.compile({.optimizer = optimizers::SGD({.learning_rate = 0.2f, .momentum = 0.9f}),
                  .loss = "sparse_categorical_crossentropy",
                  .metrics = {"accuracy"}});
  });
  REQUIRE(dist.distribute_strategy() != nullptr);
  Sequential single = make_mlp();
  single.compile({.optimizer = optimizers::SGD({.learning_rate = 0.2f, .momentum = 0.9f}),
                  .loss = "sparse_categorical_crossentropy",
                  .metrics = {"accuracy"}});
  // The reference starts from rank 0's weights, which the strategy copies to every replica.
  Tensor start = flat_weights(dist);
  strategy().communicator().broadcast(start, 0);
  {
    size_t at = 0;
    for (Variable* v : single.weights()) {
      const int64_t n = v->value().num_elements();
      v->assign(ops::reshape(ops::slice(start, {static_cast<int64_t>(at)}, {n}), v->value().shape().dims()));
      at += static_cast<size_t>(n);
    }
  }

  utils::set_random_seed(11);  // the same shuffles in both runs
  const History hd = dist.fit(x, y, {.batch_size = 12, .epochs = 3, .verbose = 0});
  utils::set_random_seed(11);
  const History hs = single.fit(x, y, {.batch_size = 12, .epochs = 3, .verbose = 0});

  CHECK(max_abs_diff(values(flat_weights(dist)), values(flat_weights(single))) < 2e-5);
  for (size_t e = 0; e < 3; ++e) {
    CHECK(hd.history.at("loss")[e] == Approx(hs.history.at("loss")[e]).epsilon(1e-4));
    CHECK(hd.history.at("accuracy")[e] == Approx(hs.history.at("accuracy")[e]).epsilon(1e-6));
  }
  // The loss really is the global one: it differs from what this replica saw on its own.
  const auto counters = strategy().counters();
  CHECK(counters.at("replicas") == w);
  CHECK(counters.at("steps") >= 15);
  // With 256-byte buckets the MLP's 12 gradients fill several buckets, most launched while the
  // backward pass was still running (overlap).
  CHECK(counters.at("buckets") > counters.at("steps"));
  CHECK(counters.at("buckets_launched_during_backward") > counters.at("buckets") / 2);
}

TEST_CASE("Replicas with dropout and per-replica BatchNormalization stay identical", "[mpi]") {
  auto [x, y] = make_data(96);
  utils::set_random_seed(100 + static_cast<uint64_t>(strategy().replica_id()));  // different starting weights
  Sequential model = strategy().scope([] {
    return Sequential({layers::Input({5}), layers::Dense(32, {.activation = "relu"}), layers::BatchNormalization(),
                       layers::Dropout(0.3f), layers::Dense(3, {.activation = "softmax"})});
  });
  strategy().scope([&] { model.compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy"}); });
  model.fit(x, y, {.batch_size = 16, .epochs = 4, .verbose = 0});  // 24 steps
  const Tensor all = strategy().communicator().all_gather(flat_weights(model));
  const auto v = values(all);
  const size_t n = v.size() / static_cast<size_t>(strategy().num_replicas_in_sync());
  for (int k = 1; k < strategy().num_replicas_in_sync(); ++k)
    CHECK(max_abs_diff(std::vector<float>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n)),
                       std::vector<float>(v.begin() + static_cast<std::ptrdiff_t>(k * n),
                                          v.begin() + static_cast<std::ptrdiff_t>((k + 1) * n))) == 0.0);
}

TEST_CASE("Synchronized BatchNormalization over replicas equals BatchNormalization on the global batch", "[mpi]") {
  auto [x, y] = make_data(48);
  auto make = [](bool synchronized) {
    utils::set_random_seed(17);
    return Sequential({layers::Input({5}), layers::Dense(12),
                       layers::BatchNormalization({.synchronized = synchronized}), layers::Activation("relu"),
                       layers::Dense(3, {.activation = "softmax"})});
  };
  Sequential dist = strategy().scope([&] { return make(true); });
  strategy().scope([&] {
    dist.compile({.optimizer = optimizers::SGD({.learning_rate = 0.1f}), .loss = "sparse_categorical_crossentropy"});
  });
  Sequential single = make(false);
  single.compile({.optimizer = optimizers::SGD({.learning_rate = 0.1f}), .loss = "sparse_categorical_crossentropy"});
  copy_weights(dist, single);
  dist.fit(x, y, {.batch_size = 24, .epochs = 2, .verbose = 0, .shuffle = false});
  single.fit(x, y, {.batch_size = 24, .epochs = 2, .verbose = 0, .shuffle = false});
  // Trainable weights and the moving statistics both follow the global batch.
  CHECK(max_abs_diff(values(flat_weights(dist)), values(flat_weights(single))) < 5e-5);
  CHECK(dist.get_layer(dist.layers()[1]->name()).get_config()["synchronized"] == true);
}

TEST_CASE("fit(Dataset) under a strategy: every replica cuts its part from rank 0's shuffle", "[mpi]") {
  auto [x, y] = make_data(48);
  utils::set_random_seed(3);
  Sequential dist = strategy().scope([] { return make_mlp(); });
  strategy().scope([&] { dist.compile({.optimizer = "sgd", .loss = "sparse_categorical_crossentropy"}); });
  Sequential single = make_mlp();
  single.compile({.optimizer = "sgd", .loss = "sparse_categorical_crossentropy"});
  copy_weights(dist, single);  // the same seed on every rank: these are rank 0's weights too
  utils::set_random_seed(50 + static_cast<uint64_t>(strategy().replica_id()));  // each rank its own shuffle key
  data::TensorDataset mine({x}, {y}, Tensor(), 12, true);
  utils::set_random_seed(50);  // rank 0's key
  data::TensorDataset reference({x}, {y}, Tensor(), 12, true);
  dist.fit(mine, {.epochs = 2, .verbose = 0});
  single.fit(reference, {.epochs = 2, .verbose = 0});
  CHECK(max_abs_diff(values(flat_weights(dist)), values(flat_weights(single))) < 2e-5);
}

TEST_CASE("BackupAndRestore resumes a data-parallel run with the same weights", "[mpi]") {
  // Dropout on every rank, shuffles and Adam's state: rank 0's backup restores each rank's streams.
  auto make = [] { return make_dropout_classifier(strategy()); };
  auto [x, y] = make_data(48);
  const FitOptions base{.batch_size = 12, .epochs = 4, .verbose = 0};
  auto uninterrupted = make();
  const History full = uninterrupted->fit(x, y, base);

  // One folder for the job: named after rank 0's process.
  const uint64_t job = strategy().broadcast_key(static_cast<uint64_t>(getpid()));
  const auto dir = std::filesystem::temp_directory_path() / ("kerascpp_mp_backup_" + std::to_string(job));
  const std::string backup = (dir / "backup").string();
  struct Interrupt {};
  {
    auto m = make();
    FitOptions o = base;
    o.callbacks = {callbacks::BackupAndRestore(backup),
                   callbacks::LambdaCallback({.on_epoch_end = [](int epoch, callbacks::Logs&) {
                     if (epoch == 1) throw Interrupt{};  // every rank stops after epoch 2's backup
                   }})};
    CHECK_THROWS_AS(m->fit(x, y, o), Interrupt);
  }
  strategy().communicator().barrier();  // as a restarted job: the backup is on disk before anyone reads it
  auto resumed = make();
  FitOptions o = base;
  o.callbacks = {callbacks::BackupAndRestore(backup)};
  const History rest = resumed->fit(x, y, o);
  CHECK(rest.epoch == std::vector<int>{2, 3});
  CHECK(max_abs_diff(values(flat_weights(*resumed)), values(flat_weights(*uninterrupted))) == 0.0);
  CHECK(rest.history.at("loss").back() == full.history.at("loss").back());
  // Each rank drew its own dropout masks: the layer's streams differ across ranks.
  const auto state = static_cast<int64_t>(resumed->seed_generators().at(0)->state());
  const auto states = strategy().communicator().all_gather(Tensor::from_vector(std::vector<int64_t>{state}, Shape{1}));
  const auto all = states.to_vector<int64_t>();
  for (size_t r = 1; r < all.size(); ++r) CHECK(all[r] != all[0]);
  strategy().communicator().barrier();
  if (strategy().is_chief()) std::filesystem::remove_all(dir);
}
