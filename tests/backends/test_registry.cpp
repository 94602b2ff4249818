#include <cstdlib>

#include "core/backend_plugin.h"
#include "tests/support/test_support.h"

using namespace keras;

TEST_CASE("the registry finds the cpu plugin and auto picks a usable backend", "[cpu][registry]") {
  bool found_cpu = false;
  for (const auto& p : backend::available_backends())
    if (p.name == "cpu") {
      found_cpu = true;
      CHECK(p.score > 0);
      CHECK(p.reason.empty());
    }
  CHECK(found_cpu);
  CHECK(backend::get_backend("cpu").name() == "cpu");
  CHECK(backend::get_backend("auto").name() != "");
  CHECK(&backend::get_backend("cpu") == &backend::get_backend("cpu"));  // one instance per plugin
}

TEST_CASE("broken plugins are reported with their reasons and never chosen", "[cpu][registry]") {
  kt::ScopedEnv path("KERASCPP_BACKEND_PATH", KERASCPP_TEST_PLUGIN_DIR);  // the broken test plugins
  std::map<std::string, std::string> reasons;
  for (const auto& p : backend::available_backends()) reasons[p.name] = p.reason;
  CHECK(reasons["badabi"].find("ABI version 999, expected " + std::to_string(KERASCPP_BACKEND_ABI_VERSION)) !=
        std::string::npos);
  CHECK(reasons["libkerascpp_backend_noentry.so"].find("missing entry point 'kerascpp_backend_descriptor'") !=
        std::string::npos);
  CHECK(reasons["fake"] == "no fake accelerator found");
  const std::string chosen = backend::get_backend("auto").name();
  CHECK((chosen == "cpu" || chosen == "cuda"));  // never a broken or unusable plugin
  kt::require_throws_with<BackendError>(
      [] { backend::get_backend("fake"); },
      {"KERASCPP_BACKEND='fake'", "cannot run here", "no fake accelerator found", "cpu (score"});
  kt::require_throws_with<BackendError>(
      [] { backend::get_backend(KERASCPP_TEST_PLUGIN_DIR "/libkerascpp_backend_badabi.so"); },
      {"unusable", "ABI version 999"});
  kt::require_throws_with<BackendError>(
      [] { backend::get_backend(KERASCPP_TEST_PLUGIN_DIR "/libkerascpp_backend_noentry.so"); },
      {"missing entry point"});
}

TEST_CASE("unknown backends and missing plugin files are errors naming what is available", "[cpu][registry]") {
  kt::require_throws_with<BackendError>([] { backend::get_backend("tpu"); },
                                        {"KERASCPP_BACKEND='tpu'", "no backend named 'tpu'", "cpu (score"});
  kt::require_throws_with<BackendError>([] { backend::get_backend("/nonexistent/libkerascpp_backend_x.so"); },
                                        {"cannot load", "/nonexistent/libkerascpp_backend_x.so"});
  // Without a usable CUDA plugin, asking for cuda fails and says what there is.
  bool cuda_usable = false;
  for (const auto& p : backend::available_backends()) cuda_usable |= p.name == "cuda" && p.reason.empty();
  if (cuda_usable) return kt::skip("a CUDA device is present, so 'cuda' is available");
  kt::require_throws_with<BackendError>([] { backend::get_backend("cuda"); },
                                        {"KERASCPP_BACKEND='cuda'", "cpu (score"});
}

TEST_CASE("KERASCPP_BACKEND is read through config and the choice is logged once at info", "[cpu][registry]") {
  setenv("KERASCPP_BACKEND", "nonsense", 1);
  reload_settings();
  CHECK(settings().backend == "nonsense");
  kt::require_throws_with<BackendError>([] { backend::set_default_backend(settings().backend); },
                                        {"no backend named 'nonsense'"});
  unsetenv("KERASCPP_BACKEND");
  reload_settings();
  CHECK(settings().backend == "auto");

  int messages = 0;
  const int id = add_log_listener([&](LogLevel level, const std::string& m) {
    if (level == LogLevel::info && m.find("using backend 'cpu'") != std::string::npos) ++messages;
  });
  backend::set_default_backend("cpu");
  for (int i = 0; i < 3; ++i) ops::add(ops::ones(Shape{2}), ops::ones(Shape{2}));
  remove_log_listener(id);
  CHECK(messages == 1);
  CHECK(backend::backend_name() == "cpu");
  kt::require_throws_with<ValueError>([] { log_level_from_name("loud"); }, {"KERASCPP_LOG_LEVEL", "'loud'", "trace"});
}

TEST_CASE("a repeated training step creates no oneDNN primitives", "[cpu][registry]") {
  Backend& cpu = backend::get_backend("cpu");
  Variable kernel(ops::random_normal(Shape{3, 3, 1, 4}, 0.f, 0.1f, 1, &cpu), "kernel");
  Variable bias(ops::zeros(Shape{4}, DType::float32, &cpu), "bias");
  Variable dense(ops::random_normal(Shape{36, 3}, 0.f, 0.1f, 2, &cpu), "dense");
  const Tensor x = ops::random_uniform(Shape{8, 8, 8, 1}, 0.f, 1.f, 3, &cpu);
  const Tensor labels = ops::to_backend(Tensor::from_vector<int32_t>({0, 1, 2, 0, 1, 2, 0, 1}, Shape{8}), cpu);
  auto step = [&] {
    GradientTape tape;
    Tensor h = ops::conv(x, kernel.value(), bias.value(), {.activation = UnaryOp::relu});
    h = ops::max_pool(h, {.pool_size = {2}});
    h = ops::batch_norm_training(h, ops::ones(Shape{4}, DType::float32, &cpu),
                                 ops::zeros(Shape{4}, DType::float32, &cpu))
            .y;
    const Tensor logits = ops::matmul(ops::reshape(h, {8, -1}), dense.value());
    const Tensor loss = ops::mean(ops::softmax_cross_entropy(logits, labels, true));
    const auto g = tape.gradient(loss, std::vector<Variable*>{&kernel, &bias, &dense});
    ops::sgd_update(kernel, g[0], nullptr, {});
    ops::sgd_update(bias, g[1], nullptr, {});
    ops::sgd_update(dense, g[2], nullptr, {});
  };
  step();
  const auto before = cpu.counters();
  step();
  step();
  const auto after = cpu.counters();
  CHECK(after.at("primitives_created") == before.at("primitives_created"));
  CHECK(after.at("primitive_cache_hits") > before.at("primitive_cache_hits"));
  CHECK(after.at("fresh_allocations") == before.at("fresh_allocations"));  // the caching allocator is warm
}

TEST_CASE("a convolution's backward pass skips the input gradient of a batch that needs none", "[cpu][autograd]") {
  Backend& cpu = backend::get_backend("cpu");
  // A shape used nowhere else, so the primitive cache starts cold for it.
  Variable kernel(ops::random_normal(Shape{3, 3, 2, 5}, 0.f, 0.1f, 11, &cpu), "kernel");
  Tensor x = ops::random_uniform(Shape{3, 9, 7, 2}, 0.f, 1.f, 12, &cpu);
  auto kernel_grad = [&](bool watch_x) {
    GradientTape tape;
    if (watch_x) tape.watch(x);
    const Tensor loss = ops::sum(ops::square(ops::conv(x, kernel.value(), Tensor(), {})));
    const auto g = tape.gradient(loss, std::vector<Tensor>{kernel.value(), x});
    if (!watch_x) CHECK(ops::sum(ops::abs(g[1])).item() == 0.0);  // x is no source: zeros, as before
    return g[0].to_vector<float>();
  };
  const auto unwatched = kernel_grad(false);
  const auto warm = cpu.counters().at("primitives_created");
  kernel_grad(false);
  CHECK(cpu.counters().at("primitives_created") == warm);  // forward and backward-weights are cached
  const auto watched = kernel_grad(true);
  // Only now a backward-data primitive is made: the unwatched passes never ran one.
  CHECK(cpu.counters().at("primitives_created") > warm);
  CHECK(watched == unwatched);  // the kernel's gradient does not depend on it
}
