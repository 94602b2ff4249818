// Recorded steps (models/step_graphs.h) on the CPU, through kt::RecordingBackend, which records the
// way CUDA graphs do: each recorded step must replay what the step run op by op computes, so every
// host value a step changes (rates, step sizes, dropout keys, metric counts) must reach the device
// before the replay. The CUDA twin of the inference case is in tests/backends/test_cuda_parity.cpp.
#include <optional>

#include <unistd.h>

#include "distributed/strategy.h"
#include "models/step_graphs.h"
#include "tests/support/recording_backend.h"
#include "tests/support/test_support.h"

using namespace keras;

namespace {
kt::RecordingBackend& recorder() {
  static kt::RecordingBackend be(backend::get_backend("cpu"));
  return be;
}
int64_t counter(const char* name) { return recorder().counters().at(name); }
std::vector<float> floats(const Tensor& t) { return ops::cast(t, DType::float32).to_vector<float>(); }

// A model whose training step has everything a replay must refresh: dropout (keys), batch norm
// (moving statistics in place), softmax cross-entropy on sparse labels and an accuracy metric.
std::shared_ptr<Sequential> small_classifier(uint64_t seed) {
  utils::set_random_seed(seed);
  return std::make_shared<Sequential>(std::vector<LayerRef>{
      layers::Input({6}), layers::Dense(16, {.activation = "relu"}), layers::BatchNormalization(),
      layers::Dropout(0.3f, {.seed = 11}), layers::Dense(4, {.activation = "softmax"})});
}

struct Batch {
  Tensor x, y;
};
Batch batch(uint64_t seed, int64_t n = 8) {
  return {ops::random_normal(Shape{n, 6}, 0.f, 1.f, seed, &backend::get_backend("cpu")),
          ops::cast(ops::floor(ops::random_uniform(Shape{n}, 0.f, 4.f, seed + 100, &backend::get_backend("cpu"))),
                    DType::int32)};
}
}  // namespace

TEST_CASE("recorded inference passes replay the layer-by-layer results (CPU recorder)", "[cpu][graphs]") {
  kt::ScopedEnv graphs("KERASCPP_CUDA_GRAPHS", "1");
  backend::DeviceScope on(recorder());
  utils::set_random_seed(3);
  const auto model = kt::residual_model_for_graphs();
  Model& m = *model;
  auto eager = [&](const Tensor& x) {
    kt::ScopedEnv off("KERASCPP_CUDA_GRAPHS", "0");
    return floats(m(x, false));
  };
  auto input = [&](uint64_t seed) { return ops::random_uniform(Shape{2, 12, 12, 3}, 0.f, 1.f, seed, &recorder()); };
  const int64_t recordings = counter("recordings"), replays = counter("replays");
  std::vector<Tensor> kept;
  for (uint64_t i = 0; i < 4; ++i) {
    INFO("call " << i);
    kept.push_back(m(input(10 + i), false));
    CHECK(floats(kept.back()) == eager(input(10 + i)));
  }
  // The first call runs layer by layer, the second records and replays, the rest replay.
  CHECK(counter("recordings") - recordings == 1);
  CHECK(counter("replays") - replays == 3);
  CHECK(floats(kept[1]) == eager(input(11)));  // results handed out are copies
  // New weights are read by the next replay.
  std::vector<Tensor> w = m.get_weights();
  for (Tensor& t : w) t = t * 0.5f;
  m.set_weights(w);
  CHECK(floats(m(input(20), false)) == eager(input(20)));
  CHECK(floats(m(input(21), false)) == eager(input(21)));

  // Embedding ids are checked as the replay runs (on CUDA: read after it), so a text model is
  // recorded too, and a bad id in a replayed call is still an error naming it.
  auto ids = layers::Input({4}, {.dtype = "int32"});
  Model text(ids, layers::Dense(2)(layers::GlobalAveragePooling1D()(layers::Embedding(7, 3)(ids))));
  const auto tokens = [](std::vector<int32_t> v) {
    return ops::to_backend(Tensor::from_vector<int32_t>(v, Shape{2, 4}), recorder());
  };
  const std::vector<float> first = floats(text(tokens({1, 2, 3, 4, 5, 6, 0, 1}), false));
  const int64_t before = counter("replays");
  for (int i = 0; i < 3; ++i) CHECK(floats(text(tokens({1, 2, 3, 4, 5, 6, 0, 1}), false)) == first);
  CHECK(counter("replays") - before == 3);
  kt::require_throws_with<ValueError>([&] { text(tokens({1, 2, 3, 4, 5, 9, 0, 1}), false); },
                                      {"id 9 at position 5", "[0, 7)"});
  CHECK(floats(text(tokens({1, 2, 3, 4, 5, 6, 0, 1}), false)) == first);
}

TEST_CASE("an inference pass queues no op for a folded batch norm: Conv2D, BatchNormalization and ReLU cost one "
          "Conv2D's ops (CPU recorder)",
          "[cpu][graphs]") {
  // Each queued op is a kernel launch or more on CUDA (its host time), and a node of a recorded
  // pass. The batch norm's scale and shift are computed in the convolution's own pass from the
  // layer's weights, so the chain queues what a Conv2D with a relu of its own queues.
  kt::ScopedEnv op_by_op("KERASCPP_CUDA_GRAPHS", "0");  // ops counted as a pass queues them, not a replay
  backend::DeviceScope on(recorder());
  utils::set_random_seed(5);
  auto conv = [] { return layers::Conv2D(8, {3, 3}, {.padding = "same"}); };
  Sequential folded({layers::Input({9, 9, 3}), conv(), layers::BatchNormalization(), layers::ReLU()});
  Sequential bare({layers::Input({9, 9, 3}), layers::Conv2D(8, {3, 3}, {.padding = "same", .activation = "relu"})});
  auto& bn = *folded.layers()[1];
  std::vector<Tensor> w = bn.get_weights();  // gamma, beta, moving mean, moving variance: far from 1 and 0
  for (size_t i = 0; i < w.size(); ++i) w[i] = ops::to_backend(kt::random_tensor(w[i].shape(), 60 + static_cast<uint32_t>(i), 0.5f, 1.5f), recorder());
  bn.set_weights(w);
  const Tensor x = ops::random_uniform(Shape{2, 9, 9, 3}, 0.f, 1.f, 7, &recorder());
  auto queued = [&](Model& m) {
    (void)m(x, false);  // first calls build and warm up
    const int64_t before = counter("queued_ops");
    const Tensor y = m(x, false);
    return std::pair{counter("queued_ops") - before, floats(y)};
  };
  const auto [ops_folded, y] = queued(folded);
  const auto [ops_bare, unused] = queued(bare);
  CHECK(ops_folded == ops_bare);
  CHECK(ops_folded == 1);  // the convolution alone (before: 8, the batch norm's 7 small ops besides it)
  // The values: Keras' formula by hand, on the convolution's own output.
  const std::vector<float> z = floats((*folded.layers()[0])(x, false));
  std::vector<float> expected(z.size());
  const auto g = floats(w[0]), b = floats(w[1]), mean = floats(w[2]), var = floats(w[3]);
  for (size_t i = 0; i < z.size(); ++i) {
    const size_t c = i % 8;
    expected[i] = std::max(0.f, static_cast<float>((z[i] - mean[c]) / std::sqrt(var[c] + 1e-3) * g[c] + b[c]));
  }
  kt::require_close(y, expected, 1e-5f, 1e-5f);
}

TEST_CASE("a residual block's batch norm, Add and ReLU queue no op of their own at inference (CPU recorder)",
          "[cpu][graphs]") {
  // ResNet50 has 16 such blocks: each Add and ReLU was an op (a launch on CUDA) of its own.
  kt::ScopedEnv op_by_op("KERASCPP_CUDA_GRAPHS", "0");  // ops counted as a pass queues them, not a replay
  backend::DeviceScope on(recorder());
  utils::set_random_seed(6);
  auto x = layers::Input({7, 7, 8});
  auto conv = std::make_shared<layers::Conv2D>(8, std::array<int64_t, 2>{1, 1});
  auto bn = std::make_shared<layers::BatchNormalization>();
  auto relu = std::make_shared<layers::ReLU>();
  Model block(x, (*relu)(layers::add({(*bn)((*conv)(x)), x})));
  std::vector<Tensor> w = bn->get_weights();
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = ops::to_backend(kt::random_tensor(w[i].shape(), 80 + static_cast<uint32_t>(i), 0.5f, 1.5f), recorder());
  bn->set_weights(w);
  const Tensor in = ops::random_uniform(Shape{2, 7, 7, 8}, -1.f, 1.f, 9, &recorder());
  (void)block(in, false);
  const int64_t before = counter("queued_ops");
  const std::vector<float> y = floats(block(in, false));
  CHECK(counter("queued_ops") - before == 1);  // the convolution alone (unfused: 3, with the Add and the ReLU)
  // Keras' formula by hand on the convolution's own output, then the shortcut and the relu.
  const std::vector<float> z = floats((*conv)(in, false)), shortcut = floats(in);
  const auto g = floats(w[0]), b = floats(w[1]), mean = floats(w[2]), var = floats(w[3]);
  std::vector<float> expected(z.size());
  for (size_t i = 0; i < z.size(); ++i) {
    const size_t c = i % 8;
    const double bn_out = (z[i] - mean[c]) / std::sqrt(var[c] + 1e-3) * g[c] + b[c];
    expected[i] = std::max(0.f, static_cast<float>(bn_out + shortcut[i]));
  }
  kt::require_close(y, expected, 1e-5f, 1e-5f);
}

TEST_CASE("ResNet50's inference pass queues one op per convolution and per other layer: every batch norm, "
          "residual Add and ReLU runs inside a convolution (CPU recorder)",
          "[cpu][graphs]") {
  // Keras' ResNet50 graph as built by applications::ResNet50 (shortcut before the main path).
  kt::ScopedEnv op_by_op("KERASCPP_CUDA_GRAPHS", "0");  // ops counted as a pass queues them, not a replay
  backend::DeviceScope on(recorder());
  utils::set_random_seed(7);
  auto model = applications::ResNet50({.weights = "", .input_shape = {64, 64, 3}});
  std::map<std::string, int64_t> layers;
  for (Layer* l : model->layers()) ++layers[l->class_name()];
  REQUIRE(layers["Conv2D"] == 53);
  REQUIRE(layers["BatchNormalization"] == 53);
  REQUIRE(layers["Add"] == 16);
  const Tensor x = ops::random_uniform(Shape{1, 64, 64, 3}, 0.f, 1.f, 8, &recorder());
  (void)(*model)(x, false);
  const int64_t before = counter("queued_ops");
  (void)(*model)(x, false);
  // Left: the convolutions, the two paddings, the max pooling, the global pooling and the Dense
  // head with its softmax (a matmul and a softmax).
  const int64_t others = layers["ZeroPadding2D"] + layers["MaxPooling2D"] + layers["GlobalAveragePooling2D"] + 2;
  CHECK(counter("queued_ops") - before == layers["Conv2D"] + others);
}

TEST_CASE("recorded training steps replay what steps run op by op compute, for every optimizer (CPU recorder)",
          "[cpu][graphs]") {
  using namespace optimizers;
  struct Case {
    const char* name;
    std::function<OptimizerRef()> make;
  };
  // Rates from schedules, bias corrections, clipping and weight decay: each a per-step host value.
  const std::vector<Case> cases = {
      {"Adam, decaying rate, clipnorm",
       [] {
         return OptimizerRef(Adam(
             {.learning_rate = schedules::ExponentialDecay(0.05, 2, 0.7), .common = {.clipnorm = 0.5f}}));
       }},
      {"SGD, nesterov, global_clipnorm, weight decay",
       [] {
         return OptimizerRef(SGD({.learning_rate = schedules::PiecewiseConstantDecay({2, 4}, {0.1, 0.05, 0.01}),
                                  .momentum = 0.9f,
                                  .nesterov = true,
                                  .common = {.global_clipnorm = 0.3f, .weight_decay = 0.01f}}));
       }},
      {"AdamW, amsgrad", [] { return OptimizerRef(AdamW({.learning_rate = 0.02f, .amsgrad = true})); }},
      {"Nadam", [] { return OptimizerRef(Nadam({.learning_rate = 0.02f})); }},
      {"Adamax, cosine decay", [] { return OptimizerRef(Adamax({.learning_rate = schedules::CosineDecay(0.05, 5)})); }},
      {"RMSprop, centered, momentum",
       [] { return OptimizerRef(RMSprop({.learning_rate = 0.01f, .momentum = 0.5f, .centered = true})); }},
      {"Adagrad", [] { return OptimizerRef(Adagrad({.learning_rate = 0.1f})); }},
      {"Adadelta", [] { return OptimizerRef(Adadelta({.learning_rate = 1.f})); }},
  };
  kt::ScopedEnv op_by_op("KERASCPP_CUDA_GRAPHS", "0");  // outside the scopes of "1" below (auto is the default)
  backend::DeviceScope on(recorder());
  for (const Case& c : cases) {
    INFO(c.name);
    auto recorded = small_classifier(5), eager = small_classifier(5);
    recorded->compile({.optimizer = c.make(), .loss = "sparse_categorical_crossentropy", .metrics = {"accuracy"}});
    eager->compile({.optimizer = c.make(), .loss = "sparse_categorical_crossentropy", .metrics = {"accuracy"}});
    const int64_t recordings = counter("recordings"), replays = counter("replays");
    for (uint64_t step = 0; step < 6; ++step) {
      INFO("step " << step);
      const Batch b = batch(40 + step);
      std::map<std::string, double> logs_recorded, logs_eager;
      {
        kt::ScopedEnv graphs("KERASCPP_CUDA_GRAPHS", "1");
        logs_recorded = recorded->train_on_batch(b.x, b.y);
      }
      logs_eager = eager->train_on_batch(b.x, b.y);
      CHECK(logs_recorded == logs_eager);
    }
    // Step 1 runs op by op, step 2 is recorded and replayed, steps 3-6 replay.
    CHECK(counter("recordings") - recordings == 1);
    CHECK(counter("replays") - replays == 5);
    CHECK(recorded->optimizer()->iterations() == 6);
    const auto wr = recorded->get_weights(), we = eager->get_weights();
    REQUIRE(wr.size() == we.size());
    for (size_t i = 0; i < wr.size(); ++i) CHECK(floats(wr[i]) == floats(we[i]));  // moving statistics included
    const auto sr = recorded->optimizer()->variables(), se = eager->optimizer()->variables();
    REQUIRE(sr.size() == se.size());
    for (size_t i = 0; i < sr.size(); ++i) CHECK(floats(sr[i]->value()) == floats(se[i]->value()));
  }
}

TEST_CASE("fit with recorded steps matches fit step by step, and unrecordable steps run as they are (CPU recorder)",
          "[cpu][graphs]") {
  kt::ScopedEnv op_by_op("KERASCPP_CUDA_GRAPHS", "0");  // outside the scopes of "1" below (auto is the default)
  backend::DeviceScope on(recorder());
  // 44 samples in batches of 8: five full batches (recorded) and a last one of 4 (its own signature).
  const Batch data = batch(7, 44);
  auto fit = [&](bool graphs, OptimizerRef opt) {
    kt::ScopedEnv env("KERASCPP_CUDA_GRAPHS", graphs ? "1" : "0");
    auto m = small_classifier(9);
    m->compile({.optimizer = std::move(opt), .loss = "sparse_categorical_crossentropy", .metrics = {"accuracy"}});
    const History h = m->fit(data.x, data.y, {.batch_size = 8, .epochs = 3, .verbose = 0, .shuffle = true});
    return std::make_pair(m, h);
  };
  const int64_t recordings = counter("recordings"), replays = counter("replays");
  const auto [recorded, h_recorded] = fit(true, "adam");
  // Full batches: 15 steps, the first op by op, the other 14 replayed (the second one recorded);
  // the last batch: op by op in epoch 1, recorded and replayed in epoch 2, replayed in epoch 3.
  CHECK(counter("recordings") - recordings == 2);
  CHECK(counter("replays") - replays == 16);
  const auto [eager, h_eager] = fit(false, "adam");
  CHECK(h_recorded.history == h_eager.history);
  for (size_t i = 0; i < eager->get_weights().size(); ++i)
    CHECK(floats(recorded->get_weights()[i]) == floats(eager->get_weights()[i]));

  // evaluate (and fit's validation) records its steps too: loss and metric sums in place.
  const int64_t evaluations = counter("replays");
  for (int round = 0; round < 2; ++round) {
    std::map<std::string, double> on, off;
    {
      kt::ScopedEnv env("KERASCPP_CUDA_GRAPHS", "1");
      on = recorded->evaluate(data.x, data.y, {.batch_size = 8, .verbose = 0});
    }
    off = recorded->evaluate(data.x, data.y, {.batch_size = 8, .verbose = 0});
    CHECK(on == off);
  }
  // Full batches: 4 replays in round 1 (the first runs op by op), 5 in round 2; the last batch: 0, then 1.
  CHECK(counter("replays") - evaluations == 10);

}

TEST_CASE("mixed_float16 training with recorded steps skips and takes back the same steps as op by op (CPU recorder)",
          "[cpu][graphs][mixed]") {
  backend::DeviceScope on(recorder());
  // A scale of 2^24 overflows the float16 gradients: the first steps are skipped and halve it, later
  // ones apply; growth every 2 finite steps overflows again now and then. Nadam keeps host state
  // (its momentum product) that a skipped step must take back.
  const Batch data = batch(17, 44);
  auto fit = [&](bool graphs) {
    kt::ScopedEnv env("KERASCPP_CUDA_GRAPHS", graphs ? "1" : "0");
    mixed_precision::PolicyScope policy("mixed_float16");
    utils::set_random_seed(4);
    auto m = std::make_shared<Sequential>(std::vector<LayerRef>{
        layers::Input({6}), layers::Dense(16, {.activation = "relu"}), layers::BatchNormalization(),
        layers::Dropout(0.2f, {.seed = 5}), layers::Dense(4, {.activation = "softmax", .dtype = "float32"})});
    m->compile({.optimizer = optimizers::LossScaleOptimizer(optimizers::Nadam({.learning_rate = 0.01f}),
                                                            {.initial_scale = 16777216.f, .dynamic_growth_steps = 2}),
                .loss = "sparse_categorical_crossentropy",
                .metrics = {"accuracy"}});
    const History h = m->fit(data.x, data.y, {.batch_size = 8, .epochs = 3, .verbose = 0, .shuffle = true});
    return std::make_pair(m, h);
  };
  const int64_t recordings = counter("recordings"), replays = counter("replays"), refused = counter("refused");
  const auto [recorded, h_recorded] = fit(true);
  CHECK(counter("recordings") - recordings == 2);  // the full batches' and the last batch's signatures
  CHECK(counter("replays") - replays == 16);
  CHECK(counter("refused") == refused);
  const auto [eager, h_eager] = fit(false);
  const auto& lso_recorded = dynamic_cast<const optimizers::LossScaleOptimizer&>(*recorded->optimizer());
  const auto& lso_eager = dynamic_cast<const optimizers::LossScaleOptimizer&>(*eager->optimizer());
  // Both branches were taken, several times each, in the 18 steps.
  INFO("inner steps " << lso_eager.iterations() << ", scale " << lso_eager.loss_scale());
  CHECK(lso_eager.iterations() >= 3);
  CHECK(lso_eager.iterations() <= 15);
  CHECK(lso_recorded.iterations() == lso_eager.iterations());
  CHECK(lso_recorded.loss_scale() == lso_eager.loss_scale());
  CHECK(lso_recorded.step_counter() == lso_eager.step_counter());
  CHECK(lso_recorded.inner_optimizer().extra_state() == lso_eager.inner_optimizer().extra_state());
  CHECK(h_recorded.history == h_eager.history);
  const auto wr = recorded->get_weights(), we = eager->get_weights();
  REQUIRE(wr.size() == we.size());
  for (size_t i = 0; i < wr.size(); ++i) CHECK(floats(wr[i]) == floats(we[i]));
  const auto sr = recorded->optimizer()->variables(), se = eager->optimizer()->variables();
  REQUIRE(sr.size() == se.size());
  for (size_t i = 0; i < sr.size(); ++i) CHECK(floats(sr[i]->value()) == floats(se[i]->value()));
}

namespace {
// A data-parallel job of one rank: a world of one's collectives (identities), under a name other
// than "single", so models take their data-parallel path. `recordable` says whether they may be
// recorded into step graphs, as NCCL's may and MPI's may not.
class IdentityCommunicator final : public distribute::Communicator {
 public:
  explicit IdentityCommunicator(bool recordable) : Communicator({}), recordable_(recordable) {}
  std::string name() const override { return "identity"; }
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::unique_ptr<distribute::Work> all_reduce_async(Tensor t, distribute::ReduceOp op) override {
    ++all_reduces;
    return one_->all_reduce_async(std::move(t), op);
  }
  void broadcast(Tensor& t, int root) override { one_->broadcast(t, root); }
  Tensor all_gather(const Tensor& t) override { return one_->all_gather(t); }
  Tensor reduce_scatter(const Tensor& t, distribute::ReduceOp op) override { return one_->reduce_scatter(t, op); }
  void barrier() override {}
  [[noreturn]] void abort(const std::string& why) override {
    one_->abort(why);
    std::abort();  // not reached: the inner one does not return
  }
  bool records_in_step_graphs() const override { return recordable_; }
  void wait_for_recorded_collectives(Backend&) override { ++waits; }
  int all_reduces = 0, waits = 0;

 private:
  std::shared_ptr<distribute::Communicator> one_ = distribute::make_single_process_communicator();
  bool recordable_;
};
class OneRankStrategy : public distribute::Strategy {
 public:
  explicit OneRankStrategy(std::shared_ptr<distribute::Communicator> comm)
      : Strategy(std::move(comm), {.bucket_bytes = 256}) {}
};
}  // namespace

TEST_CASE("data-parallel steps are recorded with their collectives where the communicator queues them on the device "
          "(CPU recorder)",
          "[cpu][graphs][distributed]") {
  backend::DeviceScope on(recorder());
  const Batch data = batch(23, 44);
  struct Run {
    std::shared_ptr<Sequential> model;
    History history;
    std::shared_ptr<IdentityCommunicator> comm;
  };
  auto fit = [&](bool graphs, bool recordable, bool loss_scaled = false) {
    kt::ScopedEnv env("KERASCPP_CUDA_GRAPHS", graphs ? "1" : "0");
    auto comm = std::make_shared<IdentityCommunicator>(recordable);
    OneRankStrategy strategy(comm);
    std::optional<mixed_precision::PolicyScope> policy;
    if (loss_scaled) policy.emplace("mixed_float16");  // float16 gradients, which 2^24 overflows
    auto m = strategy.scope([] { return small_classifier(12); });
    OptimizerRef opt = loss_scaled ? OptimizerRef(optimizers::LossScaleOptimizer(
                                         optimizers::Nadam(), {.initial_scale = 16777216.f, .dynamic_growth_steps = 2}))
                                   : OptimizerRef("nadam");
    strategy.scope([&] {
      m->compile({.optimizer = opt, .loss = "sparse_categorical_crossentropy", .metrics = {"accuracy"}});
    });
    const History h = m->fit(data.x, data.y, {.batch_size = 8, .epochs = 3, .verbose = 0, .shuffle = true});
    return Run{m, h, comm};
  };
  const int64_t recordings = counter("recordings"), replays = counter("replays");
  const Run recorded = fit(true, true);
  CHECK(counter("recordings") - recordings == 2);  // the full batches' and the last batch's signatures
  CHECK(counter("replays") - replays == 16);
  CHECK(recorded.comm->waits == 16);  // the host waited for each replay's collectives
  const Run eager = fit(false, true);
  CHECK(eager.comm->waits == 0);
  // The replays all-reduced their gradients: the buckets of 18 steps were queued in 2 recordings
  // and 2 steps run op by op, so the host saw 4 steps' all-reduces; the results equal 18 steps op by op.
  CHECK(recorded.comm->all_reduces < eager.comm->all_reduces);
  CHECK(recorded.history.history == eager.history.history);
  for (size_t i = 0; i < eager.model->get_weights().size(); ++i)
    CHECK(floats(recorded.model->get_weights()[i]) == floats(eager.model->get_weights()[i]));
  // Collectives through the host (MPI, tcp, in process) are not recorded: steps run op by op.
  const int64_t recordings2 = counter("recordings"), replays2 = counter("replays");
  const Run host_side = fit(true, false);
  CHECK(counter("recordings") == recordings2);
  CHECK(counter("replays") == replays2);
  CHECK(host_side.comm->all_reduces == eager.comm->all_reduces);
  CHECK(host_side.history.history == eager.history.history);

  // A loss-scaled step (its scale read from the device) under the strategy: skipped steps included.
  const Run scaled = fit(true, true, true), scaled_eager = fit(false, true, true);
  const auto& lso = dynamic_cast<const optimizers::LossScaleOptimizer&>(*scaled_eager.model->optimizer());
  CHECK(lso.iterations() < 18);  // some steps overflowed and were skipped
  CHECK(scaled.model->optimizer()->iterations() == lso.iterations());
  CHECK(scaled.history.history == scaled_eager.history.history);
  for (size_t i = 0; i < scaled_eager.model->get_weights().size(); ++i)
    CHECK(floats(scaled.model->get_weights()[i]) == floats(scaled_eager.model->get_weights()[i]));
}

TEST_CASE("test_on_batch replays its recorded step with the results of op by op (CPU recorder)", "[cpu][graphs]") {
  kt::ScopedEnv op_by_op("KERASCPP_CUDA_GRAPHS", "0");  // outside the scopes of "1" below (auto is the default)
  backend::DeviceScope on(recorder());
  auto m = small_classifier(6);
  m->compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy", .metrics = {"accuracy"}});
  const int64_t recordings = counter("recordings"), replays = counter("replays");
  for (uint64_t i = 0; i < 4; ++i) {
    INFO("batch " << i);
    const Batch b = batch(60 + i);
    std::map<std::string, double> on, off;
    {
      kt::ScopedEnv env("KERASCPP_CUDA_GRAPHS", "1");
      on = m->test_on_batch(b.x, b.y);
    }
    off = m->test_on_batch(b.x, b.y);
    CHECK(on == off);
    CHECK(on.at("loss") > 0);
  }
  CHECK(counter("recordings") - recordings == 1);
  CHECK(counter("replays") - replays == 3);
}

TEST_CASE("a replayed step whose label or id check fails throws and changes nothing (CPU recorder)",
          "[cpu][graphs]") {
  // The recorder runs a failed check's replay to its end, as CUDA does (it reads the checks after
  // the graph); the update, the metric sums and the host state must then be as before the step.
  // Op by op, the step's checks are read once, where its update begins, as CUDA does too.
  Backend& cpu = backend::get_backend("cpu");
  struct Case {
    const char* name;
    std::function<std::shared_ptr<Sequential>()> make;
    std::function<Tensor(uint64_t)> x;
    std::function<void(Batch&)> spoil;
    std::vector<std::string> error;
  };
  const auto ids = [&cpu](uint64_t seed) {
    return ops::cast(ops::floor(ops::random_uniform(Shape{8, 5}, 0.f, 12.f, seed, &cpu)), DType::int32);
  };
  const std::vector<Case> cases = {
      {"label", [] { return small_classifier(2); }, [](uint64_t seed) { return batch(seed).x; },
       [](Batch& b) {
         std::vector<int32_t> labels = b.y.to_vector<int32_t>();
         labels[3] = 4;
         b.y = Tensor::from_vector(labels, Shape{8});
       },
       {"label 4 at position 3", "[0, 4)"}},
      {"Embedding id",
       [] {
         utils::set_random_seed(5);
         return std::make_shared<Sequential>(std::vector<LayerRef>{
             layers::Input({5}, {.dtype = "int32"}), layers::Embedding(12, 3), layers::Flatten(),
             layers::Dense(4, {.activation = "softmax"})});
       },
       ids,
       [](Batch& b) {
         std::vector<int32_t> v = b.x.to_vector<int32_t>();
         v[7] = 12;
         b.x = Tensor::from_vector(v, Shape{8, 5});
       },
       {"id 12 at position 7", "[0, 12)"}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    // Six steps of one signature, the fourth spoiled; returns the weights and slots at the end.
    auto train = [&](bool graphs) {
      kt::ScopedEnv env("KERASCPP_CUDA_GRAPHS", graphs ? "1" : "0");
      backend::DeviceScope on(recorder());
      auto m = c.make();
      m->compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy", .metrics = {"accuracy"}});
      const auto state = [&] {
        std::vector<std::vector<float>> out;
        for (const Tensor& w : m->get_weights()) out.push_back(floats(w));
        for (Variable* v : m->optimizer()->variables()) out.push_back(floats(v->value()));
        return out;
      };
      std::vector<std::map<std::string, double>> logs;
      for (uint64_t step = 0; step < 6; ++step) {
        Batch b{c.x(step), batch(step).y};
        if (step != 3) {
          logs.push_back(m->train_on_batch(b.x, b.y));
          continue;
        }
        c.spoil(b);
        const auto before = state();
        const int64_t iterations = m->optimizer()->iterations();
        const int64_t deferred = counter("deferred_check_failures");
        kt::require_throws_with<ValueError>([&] { m->train_on_batch(b.x, b.y); }, c.error);
        // Op by op the check is read where the update begins (one wait per step on CUDA); a
        // replay reads it after the graph.
        CHECK(counter("deferred_check_failures") - deferred == (graphs ? 0 : 1));
        CHECK(state() == before);
        CHECK(m->optimizer()->iterations() == iterations);
      }
      CHECK(m->optimizer()->iterations() == 5);
      return std::make_pair(state(), logs);
    };
    const int64_t replays = counter("replays");
    const auto [recorded, recorded_logs] = train(true);
    CHECK(counter("replays") - replays == 5);  // steps 2 to 6 (the fourth failed) were replays
    const auto [eager, eager_logs] = train(false);
    CHECK(recorded == eager);
    CHECK(recorded_logs == eager_logs);
  }
}

TEST_CASE("the CPU recorder catches a replay that reads memory freed since the recording", "[cpu][graphs]") {
  // What the recorder guards against: on CUDA the replay would read a block reused by then.
  kt::ScopedEnv graphs("KERASCPP_CUDA_GRAPHS", "1");
  detail::StepGraphs steps;
  Tensor held = ops::full({3}, 2.f, DType::float32, &recorder());
  const auto step = [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{in[0] * held}; };
  const auto x = [](float v) { return ops::full({3}, v, DType::float32, &recorder()); };
  CHECK(floats(steps.run({x(1.f)}, {}, step)[0]) == std::vector<float>{2.f, 2.f, 2.f});
  CHECK(floats(steps.run({x(3.f)}, {}, step)[0]) == std::vector<float>{6.f, 6.f, 6.f});  // recorded
  CHECK(steps.recordings() == 1);
  held = ops::full({3}, 5.f, DType::float32, &recorder());  // the recorded one is freed
  CHECK_THROWS_WITH(steps.run({x(1.f)}, {}, step), Catch::Contains("freed since"));
}

TEST_CASE("recorded training of a CNN and of an Embedding-LSTM model equals op-by-op training (CPU recorder)",
          "[cpu][graphs]") {
  backend::DeviceScope on(recorder());
  Backend& cpu = backend::get_backend("cpu");
  struct Net {
    const char* name;
    std::function<std::shared_ptr<Sequential>()> make;
    Tensor x;
  };
  const std::vector<Net> nets = {
      {"CNN",
       [] {
         return std::make_shared<Sequential>(std::vector<LayerRef>{
             layers::Input({10, 10, 2}), layers::Conv2D(6, {3, 3}, {.padding = "same", .activation = "relu"}),
             layers::BatchNormalization(), layers::MaxPooling2D({2, 2}), layers::SpatialDropout2D(0.2f),
             layers::Flatten(), layers::Dropout(0.25f), layers::Dense(4, {.activation = "softmax"})});
       },
       ops::random_uniform(Shape{32, 10, 10, 2}, 0.f, 1.f, 3, &cpu)},
      {"Embedding-LSTM",
       [] {
         return std::make_shared<Sequential>(std::vector<LayerRef>{
             layers::Input({7}, {.dtype = "int32"}), layers::Embedding(20, 5),
             layers::LSTM(6, {.dropout = 0.2f, .recurrent_dropout = 0.1f}), layers::Dense(4, {.activation = "softmax"})});
       },
       ops::cast(ops::floor(ops::random_uniform(Shape{32, 7}, 0.f, 20.f, 4, &cpu)), DType::int32)},
      // Noise drawn from the layers' generators: each replay must draw what its step would (a key
      // fixed at the recording would repeat the first step's noise); LayerNormalization's fused op.
      {"noise layers",
       [] {
         return std::make_shared<Sequential>(std::vector<LayerRef>{
             layers::Input({6}), layers::GaussianNoise(0.3f), layers::Dense(16, {.activation = "selu"}),
             layers::AlphaDropout(0.2f), layers::LayerNormalization(), layers::GaussianDropout(0.3f, {.seed = 2}),
             layers::Dense(4, {.activation = "softmax"})});
       },
       ops::random_normal(Shape{32, 6}, 0.f, 1.f, 6, &cpu)},
  };
  const Tensor y = ops::cast(ops::floor(ops::random_uniform(Shape{32}, 0.f, 4.f, 5, &cpu)), DType::int32);
  for (const Net& net : nets) {
    INFO(net.name);
    auto fit = [&](bool graphs) {
      kt::ScopedEnv env("KERASCPP_CUDA_GRAPHS", graphs ? "1" : "0");
      utils::set_random_seed(21);
      auto m = net.make();
      m->compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy", .metrics = {"accuracy"}});
      const History h = m->fit(net.x, y, {.batch_size = 8, .epochs = 2, .verbose = 0});
      return std::make_pair(m, h);
    };
    const int64_t replays = counter("replays");
    const auto [recorded, h_recorded] = fit(true);
    CHECK(counter("replays") - replays == 7);  // 8 steps of one signature
    const auto [eager, h_eager] = fit(false);
    CHECK(h_recorded.history == h_eager.history);
    for (size_t i = 0; i < eager->get_weights().size(); ++i)
      CHECK(floats(recorded->get_weights()[i]) == floats(eager->get_weights()[i]));
  }
}

TEST_CASE("KERASCPP_CUDA_GRAPHS=auto keeps a recording only where its replay was faster (CPU recorder)",
          "[cpu][graphs]") {
  kt::ScopedEnv graphs("KERASCPP_CUDA_GRAPHS", "auto");
  const auto x = [](float v) { return ops::full({3}, v, DType::float32, &recorder()); };
  Tensor w = ops::full({3}, 2.f, DType::float32, &recorder());
  // Host work a replay skips, as a step bound by queueing many kernels: the replay is faster.
  const auto queueing_bound = [&](const std::vector<Tensor>& in) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    return std::vector<Tensor>{in[0] * w};
  };
  detail::StepGraphs kept;
  for (int i = 0; i < 5; ++i) CHECK(floats(kept.run({x(float(i))}, {}, queueing_bound)[0]) == floats(x(2.f * i)));
  CHECK(kept.recordings() == 1);
  CHECK(kept.replays() == 3);  // calls 3 (recorded), 4 and 5
  CHECK(kept.dropped_as_slower() == 0);
  // A replay slower than the step op by op: dropped after its first replay.
  recorder().set_replay_delay(std::chrono::milliseconds(60));
  const auto device_bound = [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{in[0] * w}; };
  detail::StepGraphs dropped;
  for (int i = 0; i < 5; ++i) CHECK(floats(dropped.run({x(float(i))}, {}, device_bound)[0]) == floats(x(2.f * i)));
  recorder().set_replay_delay(std::chrono::milliseconds(0));
  CHECK(dropped.recordings() == 1);
  CHECK(dropped.replays() == 1);
  CHECK(dropped.dropped_as_slower() == 1);
  // auto is the default; 0 turns recording off; a bad value is named and ignored.
  {
    kt::ScopedEnv unset("KERASCPP_CUDA_GRAPHS", "");
    CHECK(settings().cuda_graphs == Settings::StepRecording::measure);
  }
  {
    kt::ScopedEnv off("KERASCPP_CUDA_GRAPHS", "0");
    CHECK(settings().cuda_graphs == Settings::StepRecording::off);
    CHECK_FALSE(detail::StepGraphs::enabled());
  }
  kt::ScopedEnv bad("KERASCPP_CUDA_GRAPHS", "yes");
  CHECK(settings().cuda_graphs == Settings::StepRecording::measure);
  REQUIRE(settings().warnings.size() == 1);
  CHECK(settings().warnings[0] == "KERASCPP_CUDA_GRAPHS=yes is not one of 0, 1, auto; using auto");
}

TEST_CASE("a model whose output carries a mask is not recorded and runs as it is, graphs on or not", "[cpu][graphs]") {
  kt::ScopedEnv graphs("KERASCPP_CUDA_GRAPHS", "1");
  const auto run_on = [&](Backend& be) {
    backend::DeviceScope on(be);
    utils::set_random_seed(4);
    auto ids = layers::Input({5}, {.dtype = "int32"});
    Model m(ids, layers::LSTM(3, {.return_sequences = true})(layers::Embedding(9, 4, {.mask_zero = true})(ids)));
    const Tensor tokens = ops::to_backend(Tensor::from_vector<int32_t>({3, 1, 4, 0, 0, 2, 7, 1, 8, 0}, Shape{2, 5}), be);
    std::vector<std::vector<float>> out;
    for (int i = 0; i < 3; ++i) out.push_back(floats(m(tokens, false)));
    return out;
  };
  const auto plain = run_on(backend::get_backend("cpu"));  // no recording there: the mask is no obstacle
  const int64_t replays = counter("replays");
  const auto recorded = run_on(recorder());
  CHECK(counter("replays") == replays);  // the recording was given up: layer by layer
  CHECK(recorded == plain);
}

TEST_CASE("fit's progress bar reads the metrics from the device only for the lines it prints", "[cpu][graphs]") {
  // Off a terminal only each epoch's final line is printed, so verbose=1 reads the device as often
  // as verbose=0 (before: every metric after every step, a wait for the GPU each).
  if (isatty(STDOUT_FILENO)) {
    WARN("stdout is a terminal: the progress bar redraws every 50 ms; run off a terminal to check");
    return;
  }
  backend::DeviceScope on(recorder());
  const Batch data = batch(3, 64);
  const auto reads = [&](int verbose) {
    auto m = small_classifier(6);
    m->compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy", .metrics = {"accuracy"}});
    const int64_t before = counter("host_reads");
    m->fit(data.x, data.y, {.batch_size = 8, .epochs = 2, .verbose = verbose});
    return counter("host_reads") - before;
  };
  const int64_t quiet = reads(0), shown = reads(1);
  INFO("verbose=0: " << quiet << " reads, verbose=1: " << shown);
  CHECK(shown == quiet);
}

TEST_CASE("a Keras file's multi-output model evaluates and predicts the same with recorded steps (CPU recorder)",
          "[cpu][graphs]") {
  // Two outputs with losses, weights and metric objects from a dict compile_config (Keras 3's file),
  // 12 samples in batches of 5: two full batches and a last one of 2, each signature recorded apart.
  backend::DeviceScope on(recorder());
  const auto path = kt::fixture_dir() / "keras-saved" / "compiled_multi.keras";
  auto model = models::load_model(path.string());
  REQUIRE(model->compiled());
  const Tensor x = ops::random_normal(Shape{12, 6}, 0.f, 1.f, 5, &backend::get_backend("cpu"));
  const Tensor labels = ops::cast(ops::floor(ops::random_uniform(Shape{12}, 0.f, 3.f, 6, &backend::get_backend("cpu"))),
                                  DType::int32);
  const Tensor values = ops::random_normal(Shape{12, 1}, 0.f, 1.f, 7, &backend::get_backend("cpu"));
  const auto run = [&](const char* graphs) {
    kt::ScopedEnv env("KERASCPP_CUDA_GRAPHS", graphs);
    std::vector<std::map<std::string, double>> results;
    std::vector<std::vector<float>> predictions;
    for (int round = 0; round < 3; ++round) {
      results.push_back(model->evaluate({x}, {labels, values}, {.batch_size = 5, .verbose = 0}));
      for (const Tensor& p : model->predict_all({x}, {.batch_size = 5})) predictions.push_back(floats(p));
    }
    return std::make_pair(results, predictions);
  };
  const auto plain = run("0");
  const int64_t replays = counter("replays"), refused = counter("refused");
  const auto recorded = run("1");
  // Recorded, not refused: the top-k metric's arange is a copy on the device, not from the host.
  CHECK(counter("replays") - replays >= 6);
  CHECK(counter("refused") == refused);
  CHECK(recorded.first == plain.first);
  CHECK(recorded.second == plain.second);
}
