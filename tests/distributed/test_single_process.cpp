// The distributed pieces that need no second process: the ready-gradient hook of the tape, the
// bucketed reducer, and a strategy started alone (one replica trains exactly as no strategy).
#include <algorithm>
#include <catch2/catch.hpp>

#include "core/ops.h"
#include "distributed/strategy.h"
#include "kerascpp.h"
#include "tests/support/test_support.h"

using namespace keras;

TEST_CASE("GradientTape reports each source's final gradient once, last layer first", "[cpu][distributed]") {
  utils::set_random_seed(5);
  Sequential model({layers::Input({4}), layers::Dense(6, {.activation = "relu"}), layers::Dense(3)});
  const Tensor x = kt::random_tensor({8, 4}, 1);
  const auto vars = model.trainable_weights();  // kernel_0, bias_0, kernel_1, bias_1
  std::vector<size_t> order;
  std::vector<Tensor> reported(vars.size());
  GradientTape tape;
  // The first layer's output is used twice, so its gradient accumulates from two uses.
  const Tensor h = model.call(x, true);
  const Tensor loss = ops::sum(h * h) + ops::sum(ops::square(vars[0]->value()));
  tape.on_gradient_ready([&](size_t i, const Tensor& g) {
    order.push_back(i);
    reported[i] = ops::copy(g);
  });
  const auto grads = tape.gradient(loss, vars);
  REQUIRE(order.size() == vars.size());
  for (size_t i = 0; i < vars.size(); ++i) {
    CHECK(std::count(order.begin(), order.end(), i) == 1);
    CHECK(kt::max_abs_diff(reported[i], grads[i]) == 0.0);
  }
  // The last Dense's variables are final before the first Dense's: what lets all-reduce overlap.
  const auto pos = [&](size_t i) { return std::find(order.begin(), order.end(), i) - order.begin(); };
  CHECK(pos(2) < pos(0));
  CHECK(pos(3) < pos(0));
}

TEST_CASE("GradientReducer packs buckets, scales and unpacks in variable order", "[cpu][distributed]") {
  auto comm = distribute::make_single_process_communicator();
  distribute::GradientReducer reducer(comm, 40);  // 10 floats per bucket
  const std::vector<Shape> shapes{{2, 3}, {4}, {3, 3}, {1}};
  reducer.begin(shapes, 0.5f);
  std::vector<Tensor> g;
  for (size_t i = 0; i < shapes.size(); ++i) g.push_back(kt::random_tensor(shapes[i], 10 + static_cast<uint32_t>(i)));
  for (size_t i : {3u, 2u, 1u, 0u}) reducer.ready(i, g[i]);
  const auto out = reducer.finish();
  REQUIRE(out.size() == shapes.size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    CHECK(out[i].shape() == shapes[i]);
    CHECK(kt::max_abs_diff(out[i], g[i] * 0.5f) < 1e-7);
  }
  const auto c = reducer.counters();
  // From the last variable back, at most 10 floats each: {[1], [3,3]} and {[4], [2,3]}.
  CHECK(c.at("buckets") == 2);
  CHECK(c.at("buckets_launched_during_backward") == 2);
  CHECK_THROWS_WITH((reducer.begin(shapes, 1.f), reducer.ready(0, g[1])), Catch::Contains("expected (2, 3)"));
}

TEST_CASE("A strategy started alone trains exactly as no strategy", "[cpu][distributed]") {
  distribute::MultiWorkerMirroredStrategy strategy;  // not under mpirun: one replica
  REQUIRE(strategy.num_replicas_in_sync() == 1);
  REQUIRE(strategy.communicator().name() == "single");
  REQUIRE(strategy.is_chief());
  const Tensor x = kt::random_tensor({40, 3}, 2);
  const Tensor y = ops::sum(x * x, {1}, true);
  auto make = [] {
    utils::set_random_seed(9);
    return Sequential({layers::Input({3}), layers::Dense(8, {.activation = "tanh"}), layers::Dense(1)});
  };
  Sequential plain = make();
  plain.compile({.optimizer = "adam", .loss = "mse"});
  Sequential mirrored = strategy.scope(make);
  strategy.scope([&] { mirrored.compile({.optimizer = "adam", .loss = "mse"}); });
  CHECK(plain.distribute_strategy() == nullptr);
  REQUIRE(mirrored.distribute_strategy() != nullptr);
  utils::set_random_seed(1);
  const auto h1 = plain.fit(x, y, {.batch_size = 8, .epochs = 2, .verbose = 0});
  utils::set_random_seed(1);
  const auto h2 = mirrored.fit(x, y, {.batch_size = 8, .epochs = 2, .verbose = 0});
  CHECK(h1.history.at("loss") == h2.history.at("loss"));
  const auto a = plain.weights(), b = mirrored.weights();
  for (size_t i = 0; i < a.size(); ++i) CHECK(kt::max_abs_diff(a[i]->value(), b[i]->value()) == 0.0);
  CHECK(distribute::current_strategy() == nullptr);  // the scope ended
}

TEST_CASE("Communicator choices fail with clear errors", "[cpu][distributed]") {
  CHECK_THROWS_WITH(distribute::make_communicator("gloo"),
                    Catch::Contains("expected 'single', 'tcp', 'mpi' or 'nccl', received 'gloo'"));
  // Not started by mpirun: the MPI plugin refuses and says why.
  CHECK_THROWS_WITH(distribute::make_communicator("mpi"),
                    Catch::Contains("not started by mpirun") || Catch::Contains("no usable mpi communicator plugin"));
  CHECK_THROWS_WITH(distribute::MultiWorkerMirroredStrategy({.communicator = "ring"}),
                    Catch::Contains("received 'ring'"));
  auto single = distribute::make_single_process_communicator();
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2}, {2});
  CHECK_THROWS_WITH(single->broadcast(t, 1), Catch::Contains("root must be a rank in [0, 1), received 1"));
}

TEST_CASE("NCCL with one rank: collectives and a data-parallel fit match one device", "[cuda][nccl]") {
  if (default_backend().device().type != DeviceType::cuda) return kt::skip("no cuda device");
  std::shared_ptr<distribute::Communicator> comm;
  try {
    comm = distribute::make_communicator("nccl", {}, distribute::make_single_process_communicator());
  } catch (const DistributedError& e) {
    return kt::skip(std::string("no NCCL communicator: ") + e.what());
  }
  REQUIRE(comm->name() == "nccl");
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3});
  comm->all_reduce(t, distribute::ReduceOp::mean);
  CHECK(t.to_vector<float>() == std::vector<float>{1, 2, 3});
  CHECK(comm->all_gather(t).shape() == Shape{1, 3});
  comm->barrier();
  // Host values (a strategy's metric sums, keys, random states) travel through the GPU and come back.
  Tensor host = Tensor::from_vector(std::vector<int64_t>{7, -3}, {2}, &backend::get_backend("cpu"));
  comm->broadcast(host, 0);
  comm->all_reduce(host, distribute::ReduceOp::max);
  CHECK(host.backend() == &backend::get_backend("cpu"));
  CHECK(host.to_vector<int64_t>() == std::vector<int64_t>{7, -3});
  CHECK(comm->all_gather(host).backend() == &backend::get_backend("cpu"));

  distribute::MultiWorkerMirroredStrategy strategy({.communicator = "nccl", .bucket_bytes = 1024});
  const Tensor x = kt::random_tensor({64, 6}, 4);
  const Tensor y = ops::sum(x * x, {1}, true);
  auto make = [] {
    utils::set_random_seed(21);
    return Sequential({layers::Input({6}), layers::Dense(32, {.activation = "relu"}), layers::Dense(1)});
  };
  Sequential plain = make();
  plain.compile({.optimizer = "adam", .loss = "mse"});
  Sequential mirrored = strategy.scope(make);
  strategy.scope([&] { mirrored.compile({.optimizer = "adam", .loss = "mse"}); });
  {
    kt::ScopedEnv op_by_op("KERASCPP_CUDA_GRAPHS", "0");  // every step's buckets go through the host (counted below)
    plain.fit(x, y, {.batch_size = 16, .epochs = 2, .verbose = 0, .shuffle = false});
    mirrored.fit(x, y, {.batch_size = 16, .epochs = 2, .verbose = 0, .shuffle = false});
  }
  const auto a = plain.weights(), b = mirrored.weights();
  for (size_t i = 0; i < a.size(); ++i) CHECK(kt::max_abs_diff(a[i]->value(), b[i]->value()) < 1e-5);
  CHECK(strategy.counters().at("buckets") >= 8);  // the NCCL path really ran, in buckets

  // Recorded steps: NCCL's all-reduces are recorded into the graph, and each replay runs them.
  const int64_t replays = default_backend().counters().at("graph_replays");
  Sequential recorded = strategy.scope(make);
  {
    kt::ScopedEnv graphs("KERASCPP_CUDA_GRAPHS", "1");
    strategy.scope([&] { recorded.compile({.optimizer = "adam", .loss = "mse"}); });
    recorded.fit(x, y, {.batch_size = 16, .epochs = 2, .verbose = 0, .shuffle = false});
  }
  CHECK(default_backend().counters().at("graph_replays") - replays == 7);  // 8 steps: 1 op by op, 7 replayed
  const auto c = recorded.weights();
  for (size_t i = 0; i < a.size(); ++i) CHECK(kt::max_abs_diff(a[i]->value(), c[i]->value()) < 1e-5);
}
