// Mixed precision as Keras does it: DTypePolicy, autocasting layers, float32 losses and the
// LossScaleOptimizer. References are computed here from bfloat16-rounded operands in double, or by
// hand from Keras' update rules (keras/src/optimizers/loss_scale_optimizer.py).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "tests/support/test_support.h"

using namespace keras;
using Catch::Matchers::Contains;

namespace {

// Round to nearest even bfloat16, written from the format (1 sign, 8 exponent, 7 mantissa bits).
float round_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  u &= 0xffff0000u;
  std::memcpy(&f, &u, 4);
  return f;
}

std::vector<float> as_floats(const Tensor& t) { return ops::cast(t, DType::float32).to_vector<float>(); }

// |actual - expected| within `ulps` bfloat16 steps of expected (8 significant bits).
void require_bf16_close(const std::vector<float>& actual, const std::vector<float>& expected, float ulps = 1.f) {
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    const float tol = ulps * std::ldexp(std::fabs(expected[i]), -7) + 1e-6f;
    INFO("index " << i << ": " << actual[i] << " vs " << expected[i]);
    REQUIRE(std::fabs(actual[i] - expected[i]) <= tol);
  }
}

}  // namespace

TEST_CASE("DTypePolicy has Keras' names and dtypes, and the global policy applies to new layers", "[cpu][mixed]") {
  using mixed_precision::DTypePolicy;
  const DTypePolicy bf("mixed_bfloat16"), fp16("mixed_float16"), fp32;
  CHECK(bf.compute_dtype() == DType::bfloat16);
  CHECK(bf.variable_dtype() == DType::float32);
  CHECK(fp16.compute_dtype() == DType::float16);
  CHECK(fp32.name() == "float32");
  CHECK_FALSE(fp32.is_mixed());
  CHECK_THROWS_WITH(DTypePolicy("mixed_float64"),
                    Contains("expected 'float32', 'mixed_float16' or 'mixed_bfloat16', received 'mixed_float64'"));
  CHECK_THROWS_WITH(DTypePolicy("bfloat16"), Contains("non-float32 variables are not supported"));

  // Keras 3 objects, tf.keras 2's "Policy" and bare strings are read; anything else is refused by name.
  CHECK(DTypePolicy::from_config(Config::parse(R"({"module": "keras", "class_name": "DTypePolicy",
      "config": {"name": "mixed_float16"}, "registered_name": null})")) == fp16);
  CHECK(DTypePolicy::from_config(Config::parse(R"({"class_name": "Policy", "config": {"name": "mixed_bfloat16"}})")) ==
        bf);
  CHECK(DTypePolicy::from_config(Config("float32")) == fp32);
  CHECK_THROWS_WITH(DTypePolicy::from_config(Config::parse("[1]")), Contains("received [1]"));

  REQUIRE(mixed_precision::global_policy().name() == "float32");
  {
    mixed_precision::PolicyScope scope("mixed_bfloat16");
    layers::Dense d(3);
    CHECK(d.dtype_policy() == bf);
    CHECK(d.get_config()["dtype"]["config"]["name"] == "mixed_bfloat16");
    CHECK(d.get_config()["dtype"]["class_name"] == "DTypePolicy");
    layers::Dense out(2, {.dtype = "float32"});
    CHECK(out.compute_dtype() == DType::float32);
  }
  CHECK(mixed_precision::global_policy().name() == "float32");
  CHECK(layers::Dense(3).compute_dtype() == DType::float32);
  // Keras 3's other names for the same setting.
  mixed_precision::set_dtype_policy("mixed_float16");
  CHECK(mixed_precision::global_policy() == fp16);
  CHECK(layers::Dense(3).compute_dtype() == DType::float16);
  mixed_precision::set_global_policy("float32");
  CHECK(mixed_precision::dtype_policy() == fp32);
}

TEST_CASE("a Dense layer under mixed_bfloat16 computes in bfloat16 from float32 variables", "[cpu][mixed]") {
  utils::clear_session();
  mixed_precision::PolicyScope scope("mixed_bfloat16");
  const int64_t n = 5, in = 7, units = 4;
  layers::Dense dense(units, {.activation = "relu", .bias_initializer = initializers::RandomUniform(-1, 1, 3)});
  const Tensor x = kt::random_tensor(Shape{n, in}, 11);
  GradientTape tape;
  const Tensor y = dense(x);
  CHECK(y.dtype() == DType::bfloat16);
  CHECK(dense.kernel()->stored().dtype() == DType::float32);
  CHECK(dense.kernel()->value().dtype() == DType::float32);  // outside a call nothing is cast

  // relu(x_bf16 @ W_bf16 + b_bf16), accumulated exactly, then rounded to bfloat16.
  const auto xv = x.to_vector<float>(), wv = dense.kernel()->stored().to_vector<float>(),
             bv = dense.bias()->stored().to_vector<float>();
  // A backend may round the product before adding the bias, as Keras' Dense does (matmul, then add, both
  // in bfloat16): half a step of the product more.
  std::vector<float> expected(static_cast<size_t>(n * units)), product(expected.size());
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < units; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < in; ++k)
        acc += static_cast<double>(round_bf16(xv[static_cast<size_t>(r * in + k)])) *
               round_bf16(wv[static_cast<size_t>(k * units + j)]);
      product[static_cast<size_t>(r * units + j)] = static_cast<float>(acc);
      acc += round_bf16(bv[static_cast<size_t>(j)]);
      expected[static_cast<size_t>(r * units + j)] = round_bf16(static_cast<float>(std::max(acc, 0.0)));
    }
  const auto actual = as_floats(y);
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("index " << i << ": " << actual[i] << " vs " << expected[i] << ", product " << product[i]);
    CHECK(std::fabs(actual[i] - expected[i]) <=
          std::ldexp(std::fabs(expected[i]), -7) + std::ldexp(std::fabs(product[i]), -8) + 1e-6f);
  }

  // The gradient reaches the float32 kernel through the cast: d sum(y) / dW[k][j] = sum over the
  // rows where unit j is active of x_bf16[r][k], rounded to bfloat16 by the low-precision matmul.
  const auto grads = tape.gradient(ops::sum(ops::cast(y, DType::float32)), {dense.kernel()});
  REQUIRE(grads[0].dtype() == DType::float32);
  std::vector<float> dk(static_cast<size_t>(in * units));
  for (int64_t k = 0; k < in; ++k)
    for (int64_t j = 0; j < units; ++j) {
      double acc = 0;
      for (int64_t r = 0; r < n; ++r)
        if (expected[static_cast<size_t>(r * units + j)] > 0) acc += round_bf16(xv[static_cast<size_t>(r * in + k)]);
      dk[static_cast<size_t>(k * units + j)] = round_bf16(static_cast<float>(acc));
    }
  require_bf16_close(grads[0].to_vector<float>(), dk);
}

TEST_CASE("layers of every family run under mixed_bfloat16 near their float32 results", "[cpu][mixed]") {
  utils::clear_session();
  const Tensor images = kt::random_tensor(Shape{2, 6, 6, 3}, 5);
  const Tensor seq = kt::random_tensor(Shape{2, 4, 3}, 6);
  const Tensor ids = Tensor::from_vector<int32_t>({1, 4, 0, 2, 3, 3}, Shape{2, 3});
  // Each layer is made twice with the same seeded weights: once under each policy.
  auto run = [&](const char* policy) {
    mixed_precision::PolicyScope scope(policy);
    utils::set_random_seed(3);
    std::vector<Tensor> out;
    layers::Conv2D conv(4, {3, 3}, {.activation = "relu"});
    layers::BatchNormalization bn;
    layers::MaxPooling2D pool;
    const Tensor c = conv(images);
    const Tensor b = bn(c, true);
    out.push_back(c);
    out.push_back(b);
    out.push_back(pool(b));
    CHECK(bn.weights()[2]->stored().dtype() == DType::float32);  // moving mean
    out.push_back(bn.weights()[2]->stored());
    layers::LSTM lstm(5, {.return_sequences = true});
    out.push_back(lstm(seq));
    layers::Embedding emb(6, 3);
    out.push_back(emb(ids));
    layers::LayerNormalization norm;
    out.push_back(norm(seq));
    layers::GlobalAveragePooling2D gap;
    out.push_back(gap(c));
    return out;
  };
  const auto wide = run("float32");
  const auto mixed = run("mixed_bfloat16");
  REQUIRE(wide.size() == mixed.size());
  const std::vector<DType> dtypes{DType::bfloat16, DType::bfloat16, DType::bfloat16, DType::float32,
                                  DType::bfloat16, DType::bfloat16, DType::bfloat16, DType::bfloat16};
  for (size_t i = 0; i < wide.size(); ++i) {
    INFO("output " << i);
    CHECK(mixed[i].dtype() == dtypes[i]);
    CHECK(wide[i].dtype() == DType::float32);
    // bfloat16 keeps 8 significant bits: a few rounding steps through each layer stay within 3%.
    kt::require_close(as_floats(mixed[i]), wide[i].to_vector<float>(), 3e-2f, 3e-2f);
  }
}

TEST_CASE("a model trained under mixed_bfloat16 follows the float32 run", "[cpu][mixed]") {
  const int64_t n = 400;
  utils::set_random_seed(7);
  const Tensor labels =
      ops::cast(ops::greater(ops::random_uniform(Shape{n}, 0, 1, 1), ops::full({}, 0.5f)), DType::int32);
  const Tensor x = ops::random_normal(Shape{n, 2}, 0, 1, 2) +
                   ops::multiply(ops::cast(ops::expand_dims(labels, -1), DType::float32), 3.f);
  auto train = [&](const char* policy) {
    mixed_precision::PolicyScope scope(policy);
    utils::clear_session();
    utils::set_random_seed(1);
    Sequential model({layers::Input({2}), layers::Dense(16, {.activation = "relu"}),
                      layers::Dense(2, {.activation = "softmax", .dtype = "float32"})});
    model.compile({.optimizer = optimizers::Adam({.learning_rate = 0.02f}),
                   .loss = "sparse_categorical_crossentropy",
                   .metrics = {"accuracy"}});
    const History h = model.fit(x, labels, {.batch_size = 32, .epochs = 4, .verbose = 0, .shuffle = false});
    const Tensor probs = model.predict(x, {.batch_size = 100});
    CHECK(probs.dtype() == DType::float32);  // the float32 output layer, as Keras' guide recommends
    CHECK(model.layers()[0]->compute_dtype() == (std::string(policy) == "float32" ? DType::float32 : DType::bfloat16));
    CHECK(model.trainable_weights()[0]->stored().dtype() == DType::float32);
    return std::make_pair(h, probs.to_vector<float>());
  };
  const auto [h32, p32] = train("float32");
  const auto [h16, p16] = train("mixed_bfloat16");
  CHECK(h16.history.at("loss").back() < 0.5 * h16.history.at("loss").front());
  CHECK(h16.history.at("accuracy").back() > 0.9);
  for (size_t e = 0; e < 4; ++e) CHECK(std::fabs(h16.history.at("loss")[e] - h32.history.at("loss")[e]) < 0.03);
  kt::require_close(p16, p32, 0.05f, 0.f);
}

TEST_CASE("LossScaleOptimizer skips non-finite steps and moves its scale as Keras'", "[cpu][mixed][optim]") {
  // w = 1; SGD(0.5); scale 8, doubling after 2 finite steps. Gradients arrive scaled, as the training
  // step makes them; Keras divides them by the scale the step started with.
  Variable w(Tensor::from_vector<float>({1.f, -2.f}, Shape{2}), "w");
  optimizers::LossScaleOptimizer opt(optimizers::SGD({.learning_rate = 0.5f}),
                                     {.initial_scale = 8.f, .dynamic_growth_steps = 2});
  auto step = [&](std::vector<float> g) {
    opt.apply_gradients({Tensor::from_vector<float>(g, Shape{2})}, {&w});
  };
  CHECK(opt.loss_scale() == 8.f);
  step({8.f, -16.f});  // unscaled (1, -2)
  kt::require_close(w.stored().to_vector<float>(), {0.5f, -1.f});
  CHECK(opt.step_counter() == 1);
  CHECK(opt.loss_scale() == 8.f);
  step({4.f, 4.f});  // (0.5, 0.5); the second finite step doubles the scale
  kt::require_close(w.stored().to_vector<float>(), {0.25f, -1.25f});
  CHECK(opt.step_counter() == 0);
  CHECK(opt.loss_scale() == 16.f);
  CHECK(opt.iterations() == 2);
  step({INFINITY, 1.f});  // skipped: the weights and the inner step stay, the scale halves
  kt::require_close(w.stored().to_vector<float>(), {0.25f, -1.25f});
  CHECK(opt.loss_scale() == 8.f);
  CHECK(opt.iterations() == 2);
  step({1.f, NAN});
  CHECK(opt.loss_scale() == 4.f);
  step({4.f, 0.f});
  kt::require_close(w.stored().to_vector<float>(), {-0.25f, -1.25f});
  CHECK(opt.iterations() == 3);
  CHECK(opt.step_counter() == 1);

  // Keras 3's config, and back.
  const Config c = opt.serialized();
  CHECK(c["class_name"] == "LossScaleOptimizer");
  CHECK(c["config"]["inner_optimizer"]["class_name"] == "SGD");
  CHECK(c["config"]["initial_scale"] == 8.0);
  CHECK(c["config"]["dynamic_growth_steps"] == 2);
  const auto back = optimizers::deserialize(c);
  auto* lso = dynamic_cast<optimizers::LossScaleOptimizer*>(back.get());
  REQUIRE(lso);
  CHECK(lso->loss_scale() == 8.f);
  CHECK(lso->inner_optimizer().learning_rate() == 0.5f);

  CHECK_THROWS_WITH(optimizers::LossScaleOptimizer(optimizers::SGD(), {.initial_scale = 0.f}),
                    Contains("expected a positive finite initial_scale, received 0"));
  CHECK_THROWS_WITH(optimizers::LossScaleOptimizer(back), Contains("already a LossScaleOptimizer"));
}

TEST_CASE("compile wraps the optimizer under mixed_float16, and the scale keeps tiny float16 gradients",
          "[cpu][mixed]") {
  // One weight w = 1e-3 on x = 1e-3 with target 0: mse's gradient d/dw = 2 * w * x^2 = 2e-9 is below
  // float16's smallest subnormal (6e-8) and flushes to zero unless the loss is scaled (2^15).
  auto make = [](bool auto_scale) {
    mixed_precision::PolicyScope scope("mixed_float16");
    utils::clear_session();
    auto model = std::make_shared<Sequential>(std::vector<LayerRef>{
        layers::Input({1}), layers::Dense(1, {.use_bias = false, .kernel_initializer = initializers::Constant(1e-3f)})});
    model->compile({.optimizer = optimizers::SGD({.learning_rate = 1.f}), .loss = "mse", .auto_scale_loss = auto_scale});
    return model;
  };
  const Tensor x = Tensor::from_vector<float>({1e-3f}, Shape{1, 1}), y = Tensor::from_vector<float>({0.f}, Shape{1, 1});
  auto scaled = make(true);
  auto* lso = dynamic_cast<optimizers::LossScaleOptimizer*>(scaled->optimizer());
  REQUIRE(lso);
  CHECK(lso->loss_scale() == 32768.f);
  CHECK(scaled->get_compile_config()["optimizer"]["class_name"] == "SGD");  // as passed, as Keras saves it
  scaled->train_on_batch(x, y);
  const float moved = 1e-3f - scaled->get_weights()[0].to_vector<float>()[0];
  // float16 rounds w, x and y (a subnormal) by up to 1.3%, and a float32 step at 1e-3 moves in units
  // of 1.2e-10: within 10% of 2e-9, and far from the 0 of an unscaled step.
  CHECK(moved == Approx(2e-9).margin(2e-10));
  CHECK(scaled->optimizer()->iterations() == 1);

  auto unscaled = make(false);
  CHECK(dynamic_cast<optimizers::LossScaleOptimizer*>(unscaled->optimizer()) == nullptr);
  unscaled->train_on_batch(x, y);
  CHECK(unscaled->get_weights()[0].to_vector<float>()[0] == 1e-3f);  // the gradient flushed to zero

  mixed_precision::PolicyScope bf("mixed_bfloat16");
  Sequential plain({layers::Input({1}), layers::Dense(1)});
  plain.compile({.optimizer = "sgd", .loss = "mse"});
  CHECK(dynamic_cast<optimizers::LossScaleOptimizer*>(plain.optimizer()) == nullptr);  // bfloat16 needs no scale
}

TEST_CASE("a model's dtype policies survive its config", "[cpu][mixed][saving]") {
  std::shared_ptr<Model> restored;
  Config config;
  {
    mixed_precision::PolicyScope scope("mixed_float16");
    utils::clear_session();
    Sequential model({layers::Input({4}), layers::Dense(3, {.activation = "relu"}), layers::BatchNormalization(),
                      layers::Dense(2, {.activation = "softmax", .dtype = "float32"})});
    config = Config::parse(model.to_json());
  }
  restored = models::model_from_config(config);  // the global policy is float32 again
  const auto ls = restored->layers();
  REQUIRE(ls.size() == 3);
  CHECK(ls[0]->dtype_policy().name() == "mixed_float16");
  CHECK(ls[1]->dtype_policy().name() == "mixed_float16");
  CHECK(ls[2]->dtype_policy().name() == "float32");
  CHECK(restored->dtype_policy().name() == "mixed_float16");
  const Tensor y = restored->predict(kt::random_tensor(Shape{3, 4}, 2));
  CHECK(y.dtype() == DType::float32);
  restored->compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy"});
  CHECK(dynamic_cast<optimizers::LossScaleOptimizer*>(restored->optimizer()) != nullptr);
}

namespace {
// Where a backend computes bfloat16 / float16 itself (oneDNN on AVX-512, cuBLAS, cuDNN, kernels.cu),
// it must agree with the path every other backend takes: float32 arithmetic on the rounded
// operands, rounded once. Each family skips where the backend has no native kernel.
void check_native_low_precision(Backend& be) {
  // The rounding step of the reference: through float16/bfloat16 and back on the CPU backend.
  auto rounded = [](const Tensor& f32, DType low) {
    return ops::cast(ops::cast(ops::to_backend(f32, backend::get_backend("cpu")), low), DType::float32)
        .to_vector<float>();
  };
  // One step of the format: 2^-7 relative for bfloat16, 2^-10 for float16. A bias added after the
  // product is rounded (cuBLAS writes the product in the low dtype, and Keras' Dense adds the bias in
  // it too) may cost half a step of the product more: `before_bias` gives the product.
  auto close = [](const Tensor& actual, const std::vector<float>& expected, DType low,
                  const std::vector<float>& before_bias = {}) {
    const std::vector<float> got = ops::cast(actual, DType::float32).to_vector<float>();
    REQUIRE(got.size() == expected.size());
    const int bits = low == DType::bfloat16 ? 7 : 10;
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("index " << i << ": " << got[i] << " vs " << expected[i]);
      const float product_step = before_bias.empty() ? 0.f : std::ldexp(std::fabs(before_bias[i]), -bits - 1);
      REQUIRE(std::fabs(got[i] - expected[i]) <= std::ldexp(std::fabs(expected[i]), -bits) + product_step + 1e-5f);
    }
  };
  for (const DType low : {DType::bfloat16, DType::float16}) {
    INFO("dtype " << dtype_name(low));
    const auto lowered = [&](const Tensor& t) { return ops::cast(ops::to_backend(t, be), low); };
    const auto wide = [](const Tensor& t) { return ops::cast(t, DType::float32); };
    if (be.computes_low_precision(OpFamily::matmul, low)) {
      const Tensor a = lowered(kt::random_tensor(Shape{3, 17, 300}, 21));
      const Tensor b = lowered(kt::random_tensor(Shape{300, 9}, 22));
      const Tensor native = ops::matmul(a, b);
      REQUIRE(native.dtype() == low);
      close(native, rounded(ops::matmul(wide(a), wide(b)), low), low);
      // A transposed operand, and a bias with a fused activation through linear().
      const Tensor x = lowered(kt::random_tensor(Shape{5, 300}, 23));
      const Tensor bias = lowered(kt::random_tensor(Shape{9}, 24));
      close(ops::linear(x, b, bias, UnaryOp::relu),
            rounded(ops::relu(ops::linear(wide(x), wide(b), wide(bias))), low), low,
            ops::linear(wide(x), wide(b), Tensor()).to_vector<float>());
      close(ops::matmul(b, x, {.transpose_a = true, .transpose_b = true}),
            rounded(ops::matmul(wide(b), wide(x), {.transpose_a = true, .transpose_b = true}), low), low);
    } else {
      kt::skip("no native " + dtype_name(low) + " matmul on backend '" + be.name() + "'; the emulation runs");
    }
    if (be.computes_low_precision(OpFamily::elementwise, low)) {
      const Tensor a = lowered(kt::random_tensor(Shape{4, 33}, 28, -3.f, 3.f));
      const Tensor b = lowered(kt::random_tensor(Shape{33}, 29, 0.5f, 2.f));  // broadcast along rows
      for (const UnaryOp op : {UnaryOp::tanh, UnaryOp::sigmoid, UnaryOp::relu, UnaryOp::exp, UnaryOp::negative}) {
        INFO("unary " << unary_op_name(op));
        close(ops::unary(op, a), rounded(ops::unary(op, wide(a)), low), low);
      }
      for (const BinaryOp op : {BinaryOp::add, BinaryOp::multiply, BinaryOp::divide, BinaryOp::maximum}) {
        INFO("binary " << binary_op_name(op));
        close(ops::binary(op, a, b), rounded(ops::binary(op, wide(a), wide(b)), low), low);
      }
      // Large enough for a backend's vectorized path (the CPU's oneDNN eltwise from 2^15 elements).
      const Tensor big = lowered(kt::random_tensor(Shape{300, 200}, 38, -3.f, 3.f));
      for (const UnaryOp op : {UnaryOp::tanh, UnaryOp::relu, UnaryOp::exp, UnaryOp::gelu}) {
        INFO("large unary " << unary_op_name(op));
        close(ops::unary(op, big), rounded(ops::unary(op, wide(big)), low), low);
      }
      const Tensor gt = ops::greater(a, b);
      REQUIRE(gt.dtype() == DType::bool_);
      CHECK(ops::cast(gt, DType::int32).to_vector<int32_t>() ==
            ops::cast(ops::greater(wide(a), wide(b)), DType::int32).to_vector<int32_t>());
      close(ops::where(gt, a, ops::broadcast_to(b, a.shape())), rounded(ops::where(gt, wide(a), ops::broadcast_to(wide(b), a.shape())), low), low);
    } else {
      kt::skip("no native " + dtype_name(low) + " elementwise ops on backend '" + be.name() + "'; the emulation runs");
    }
    if (be.computes_low_precision(OpFamily::conv, low)) {
      // Forward with bias and relu, "same" padding (odd and even), and both gradients.
      const Tensor x = lowered(kt::random_tensor(Shape{2, 9, 8, 16}, 25));
      const Tensor k = lowered(kt::random_tensor(Shape{3, 3, 16, 8}, 26, -0.2f, 0.2f));
      const Tensor bias = lowered(kt::random_tensor(Shape{8}, 27));
      const ops::ConvOptions o{.strides = {2, 2}, .padding = "same", .activation = UnaryOp::relu};
      close(ops::conv(x, k, bias, o), rounded(ops::conv(wide(x), wide(k), wide(bias), o), low), low,
            ops::conv(wide(x), wide(k), Tensor(), {.strides = {2, 2}, .padding = "same"}).to_vector<float>());
      Tensor xw = x, kw = k;
      GradientTape tape;
      tape.watch(xw);
      tape.watch(kw);
      const Tensor y = ops::conv(xw, kw, Tensor(), {.padding = "same"});
      const auto g = tape.gradient(ops::sum(ops::cast(y, DType::float32)), std::vector<Tensor>{xw, kw});
      Tensor xf = wide(x), kf = wide(k);
      GradientTape tape32;
      tape32.watch(xf);
      tape32.watch(kf);
      const auto g32 = tape32.gradient(ops::sum(ops::conv(xf, kf, Tensor(), {.padding = "same"})),
                                       std::vector<Tensor>{xf, kf});
      close(g[0], rounded(g32[0], low), low);
      close(g[1], rounded(g32[1], low), low);
    } else {
      kt::skip("no native " + dtype_name(low) + " convolution on backend '" + be.name() + "'; the emulation runs");
    }
    // Gradients of sum(y * w) with w representable in `low`, so the native path's gradient (cast to
    // `low` on its way back) and the float32 reference's start from the same numbers.
    const auto grads = [&](auto&& f, const std::vector<Tensor>& inputs, const Tensor& w) {
      std::vector<Tensor> xs = inputs;
      GradientTape tape;
      for (Tensor& x : xs) tape.watch(x);
      const Tensor y = f(xs);
      return tape.gradient(ops::sum(ops::cast(y, DType::float32) * w), xs);
    };
    if (be.computes_low_precision(OpFamily::reduce, low)) {
      const Tensor x = lowered(kt::random_tensor(Shape{37, 300}, 30, -2.f, 2.f));
      for (const int64_t axis : {0, 1}) {
        INFO("axis " << axis);
        close(ops::sum(x, {axis}), rounded(ops::sum(wide(x), {axis}), low), low);
        close(ops::mean(x, {axis}), rounded(ops::mean(wide(x), {axis}), low), low);
        close(ops::max(x, {axis}), rounded(ops::max(wide(x), {axis}), low), low);
      }
    } else {
      kt::skip("no native " + dtype_name(low) + " reductions on backend '" + be.name() + "'; the emulation runs");
    }
    if (be.computes_low_precision(OpFamily::pool, low)) {
      // Distinct values in every (image, channel) plane: a tie in a window could route a max-pooling
      // gradient either way. Multiples of 1/16 below 5 are exact in float16 and bfloat16.
      std::vector<float> values(2 * 9 * 8 * 16);
      std::mt19937 rng(31);
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t c = 0; c < 16; ++c) {
          std::vector<int> order(72);
          std::iota(order.begin(), order.end(), 0);
          std::shuffle(order.begin(), order.end(), rng);
          for (int64_t p = 0; p < 72; ++p) values[static_cast<size_t>((b * 72 + p) * 16 + c)] = (order[p] - 36) / 16.f;
        }
      const Tensor x = lowered(Tensor::from_vector(values, Shape{2, 9, 8, 16}));
      const Tensor w = ops::to_backend(ops::cast(lowered(kt::random_tensor(Shape{2, 5, 4, 16}, 32)), DType::float32), be);
      const ops::PoolOptions o{.pool_size = {3, 3}, .strides = {2, 2}, .padding = "same"};
      for (const bool is_max : {true, false}) {
        INFO((is_max ? "max pooling" : "average pooling"));
        const auto pool = [&](const std::vector<Tensor>& xs) {
          return is_max ? ops::max_pool(xs[0], o) : ops::average_pool(xs[0], o);
        };
        const Tensor y = pool({x});
        REQUIRE(y.dtype() == low);
        close(y, rounded(pool({wide(x)}), low), low);
        close(grads(pool, {x}, w)[0], rounded(grads(pool, {wide(x)}, w)[0], low), low);
      }
    } else {
      kt::skip("no native " + dtype_name(low) + " pooling on backend '" + be.name() + "'; the emulation runs");
    }
    if (be.computes_low_precision(OpFamily::batch_norm, low)) {
      // Channels far from zero mean, as after a convolution; float32 parameters, as the layer keeps them.
      const Tensor x = lowered(kt::random_tensor(Shape{4, 5, 6, 24}, 33, 1.f, 5.f));
      const Tensor gamma = ops::to_backend(kt::random_tensor(Shape{24}, 34, 0.5f, 1.5f), be);
      const Tensor beta = ops::to_backend(kt::random_tensor(Shape{24}, 35), be);
      const Tensor w = ops::to_backend(ops::cast(lowered(kt::random_tensor(x.shape(), 36)), DType::float32), be);
      const auto native = ops::batch_norm_training(x, gamma, beta, 1e-3f);
      const auto ref = ops::batch_norm_training(wide(x), gamma, beta, 1e-3f);
      REQUIRE(native.y.dtype() == low);
      REQUIRE(native.mean.dtype() == DType::float32);
      close(native.y, rounded(ref.y, low), low);
      kt::require_close(native.mean.to_vector<float>(), ref.mean.to_vector<float>(), 1e-5f, 1e-5f);
      kt::require_close(native.variance.to_vector<float>(), ref.variance.to_vector<float>(), 1e-5f, 1e-4f);
      const auto bn = [](const std::vector<Tensor>& xs) { return ops::batch_norm_training(xs[0], xs[1], xs[2], 1e-3f).y; };
      const auto g = grads(bn, {x, gamma, beta}, w);
      const auto g32 = grads(bn, {wide(x), gamma, beta}, w);
      REQUIRE(g[0].dtype() == low);
      close(g[0], rounded(g32[0], low), low);
      kt::require_close(g[1].to_vector<float>(), g32[1].to_vector<float>(), 1e-3f, 1e-4f);
      kt::require_close(g[2].to_vector<float>(), g32[2].to_vector<float>(), 1e-3f, 1e-4f);
      close(ops::batch_norm_inference(x, gamma, beta, ref.mean, ref.variance, 1e-3f),
            rounded(ops::batch_norm_inference(wide(x), gamma, beta, ref.mean, ref.variance, 1e-3f), low), low);
    } else {
      kt::skip("no native " + dtype_name(low) + " batch normalization on backend '" + be.name() + "'; the emulation runs");
    }
    if (be.computes_low_precision(OpFamily::softmax, low)) {
      const Tensor x = lowered(kt::random_tensor(Shape{7, 50}, 37, -4.f, 4.f));
      close(ops::softmax(x), rounded(ops::softmax(wide(x)), low), low);
      close(ops::log_softmax(x), rounded(ops::log_softmax(wide(x)), low), low);
    } else {
      kt::skip("no native " + dtype_name(low) + " softmax on backend '" + be.name() + "'; the emulation runs");
    }
  }
}
}  // namespace

TEST_CASE("native low-precision ops equal the float32 emulation within a rounding step", "[cpu][mixed]") {
  check_native_low_precision(default_backend());
}

TEST_CASE("oneDNN's bfloat16 kernels equal the float32 emulation, also where they are not the default",
          "[cpu][mixed]") {
  // Without AVX512_BF16 the CPU backend runs matmuls and convolutions on float32 copies (they are
  // faster there); this device takes every oneDNN bfloat16 kernel, so they are checked there too.
  Backend* all = kt::cpu_with_every_bfloat16_kernel("cpu:7");
  if (!all) return;
  for (const OpFamily f : {OpFamily::conv, OpFamily::pool, OpFamily::batch_norm, OpFamily::softmax})
    CHECK(all->computes_low_precision(f, DType::bfloat16));
  check_native_low_precision(*all);
}

TEST_CASE("KERASCPP_NATIVE_LOW_PRECISION=0 makes a new backend emulate every low-precision op", "[cpu][mixed]") {
  Backend* plain = nullptr;
  {
    kt::ScopedEnv env("KERASCPP_NATIVE_LOW_PRECISION", "0");
    CHECK(settings().native_low_precision == Settings::LowPrecisionKernels::none);
    plain = &backend::get_backend("cpu:6");  // a logical device made under the setting
  }
  {
    kt::ScopedEnv env("KERASCPP_NATIVE_LOW_PRECISION", "fastest");
    CHECK(settings().native_low_precision == Settings::LowPrecisionKernels::fast);
    REQUIRE(settings().warnings.size() == 1);
    CHECK(settings().warnings[0] == "KERASCPP_NATIVE_LOW_PRECISION=fastest is not one of 0, auto, all; using auto");
  }
  for (const OpFamily f : {OpFamily::matmul, OpFamily::conv, OpFamily::elementwise, OpFamily::reduce, OpFamily::pool,
                           OpFamily::batch_norm, OpFamily::softmax}) {
    CHECK_FALSE(plain->computes_low_precision(f, DType::bfloat16));
    CHECK_FALSE(plain->computes_low_precision(f, DType::float16));
  }
  // Its results are still bfloat16, equal to float32 rounded once (the emulation).
  const Tensor x = ops::cast(ops::to_backend(kt::random_tensor(Shape{3, 4, 5, 8}, 40, 1.f, 3.f), *plain), DType::bfloat16);
  const Tensor gamma = ops::ones(Shape{8}, DType::float32, plain), beta = ops::zeros(Shape{8}, DType::float32, plain);
  const auto r = ops::batch_norm_training(x, gamma, beta, 1e-3f);
  REQUIRE(r.y.dtype() == DType::bfloat16);
  const auto ref = ops::batch_norm_training(ops::cast(x, DType::float32), gamma, beta, 1e-3f);
  CHECK(ops::cast(r.y, DType::float32).to_vector<float>() ==
        ops::cast(ops::cast(ref.y, DType::bfloat16), DType::float32).to_vector<float>());
}
