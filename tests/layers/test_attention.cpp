// MultiHeadAttention, Attention and AdditiveAttention: a loop-by-loop reference, finite-difference
// gradients, dropout, errors, and a small Transformer block that trains and reloads. Their numbers
// against Python Keras (masks, causal, keys, scores, two attention axes, one training step) are
// checked in test_saving.cpp on the keras-compat fixtures.
#include <cmath>
#include <filesystem>

#include "tests/support/test_support.h"

using namespace keras;
namespace fs = std::filesystem;

namespace {

// Reference multi-head attention in double precision, one loop per index. `allowed(b, t, s)`;
// fully masked rows are uniform (Keras' fused path) or zero (its Softmax path).
std::vector<float> reference_mha(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                                 int64_t B, int64_t T, int64_t S, int64_t dq, int64_t dk, int64_t dv, int64_t heads,
                                 int64_t kd, int64_t vd, int64_t out, const std::vector<std::vector<float>>& w,
                                 const std::function<bool(int64_t, int64_t, int64_t)>& allowed, bool uniform_when_empty) {
  // w: query kernel (dq, heads, kd), bias (heads, kd), key kernel, bias, value kernel (dv, heads, vd),
  // bias, output kernel (heads, vd, out), bias (out).
  auto project = [&](const std::vector<float>& x, int64_t n, int64_t din, const std::vector<float>& kernel,
                     const std::vector<float>& bias, int64_t dout) {
    std::vector<double> y(static_cast<size_t>(B * n * heads * dout));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t o = 0; o < dout; ++o) {
            double acc = bias[static_cast<size_t>(h * dout + o)];
            for (int64_t c = 0; c < din; ++c)
              acc += x[static_cast<size_t>((b * n + i) * din + c)] * kernel[static_cast<size_t>((c * heads + h) * dout + o)];
            y[static_cast<size_t>(((b * n + i) * heads + h) * dout + o)] = acc;
          }
    return y;
  };
  const auto Q = project(q, T, dq, w[0], w[1], kd), K = project(k, S, dk, w[2], w[3], kd),
             V = project(v, S, dv, w[4], w[5], vd);
  std::vector<float> result(static_cast<size_t>(B * T * out));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> context(static_cast<size_t>(heads * vd), 0.0);
      for (int64_t h = 0; h < heads; ++h) {
        std::vector<double> logits(static_cast<size_t>(S));
        double top = -1e300;
        bool any = false;
        for (int64_t s = 0; s < S; ++s) {
          double dot = 0;
          for (int64_t c = 0; c < kd; ++c)
            dot += Q[static_cast<size_t>(((b * T + t) * heads + h) * kd + c)] *
                   K[static_cast<size_t>(((b * S + s) * heads + h) * kd + c)];
          logits[static_cast<size_t>(s)] = dot / std::sqrt(static_cast<double>(kd));
          if (allowed(b, t, s)) {
            any = true;
            top = std::max(top, logits[static_cast<size_t>(s)]);
          }
        }
        std::vector<double> p(static_cast<size_t>(S), 0.0);
        double total = 0;
        for (int64_t s = 0; s < S; ++s) {
          if (!any) p[static_cast<size_t>(s)] = uniform_when_empty ? 1.0 / static_cast<double>(S) : 0.0;
          if (any && allowed(b, t, s)) total += p[static_cast<size_t>(s)] = std::exp(logits[static_cast<size_t>(s)] - top);
        }
        for (int64_t s = 0; s < S; ++s) {
          if (any) p[static_cast<size_t>(s)] /= total;
          for (int64_t c = 0; c < vd; ++c)
            context[static_cast<size_t>(h * vd + c)] +=
                p[static_cast<size_t>(s)] * V[static_cast<size_t>(((b * S + s) * heads + h) * vd + c)];
        }
      }
      for (int64_t o = 0; o < out; ++o) {
        double acc = w[7][static_cast<size_t>(o)];
        for (int64_t hc = 0; hc < heads * vd; ++hc) acc += context[static_cast<size_t>(hc)] * w[6][static_cast<size_t>(hc * out + o)];
        result[static_cast<size_t>((b * T + t) * out + o)] = static_cast<float>(acc);
      }
    }
  return result;
}

Tensor bools(const std::vector<float>& v, const Shape& s) { return ops::cast(Tensor::from_vector(v, s), DType::bool_); }

}  // namespace

TEST_CASE("MultiHeadAttention matches a loop-by-loop reference with keys, causal and explicit masks",
          "[cpu][attention]") {
  const int64_t B = 2, T = 4, S = 3, dq = 5, dk = 7, dv = 6, heads = 2, kd = 3, vd = 4, out = 5;
  layers::MultiHeadAttention mha(heads, kd, {.value_dim = vd});
  const Tensor q = kt::random_tensor(Shape{B, T, dq}, 1), k = kt::random_tensor(Shape{B, S, dk}, 2),
               v = kt::random_tensor(Shape{B, S, dv}, 3);
  // Sample 0, query 0 may see nothing (a fully masked row); sample 1 hides key 2 from everyone.
  std::vector<float> m(static_cast<size_t>(B * T * S), 1.f);
  for (int64_t s = 0; s < S; ++s) m[static_cast<size_t>(s)] = 0.f;
  for (int64_t t = 0; t < T; ++t) m[static_cast<size_t>((T + t) * S + 2)] = 0.f;
  const Tensor mask = bools(m, Shape{B, T, S});
  mha(q, v, {.key = k});  // builds
  std::vector<std::vector<float>> w;
  for (const Tensor& t : mha.get_weights()) w.push_back(kt::random_values(static_cast<size_t>(t.num_elements()), 40 + w.size()));
  std::vector<Tensor> values;
  for (size_t i = 0; i < w.size(); ++i) values.push_back(Tensor::from_vector(w[i], mha.get_weights()[i].shape()));
  mha.set_weights(values);
  REQUIRE(mha.get_weights().size() == 8);
  auto allowed = [&](int64_t b, int64_t t, int64_t s) { return m[static_cast<size_t>((b * T + t) * S + s)] > 0 && s <= t; };
  const auto qv = q.to_vector<float>(), kv = k.to_vector<float>(), vv = v.to_vector<float>();
  {
    INFO("the fused path: a fully masked row attends uniformly, as jax's dot_product_attention");
    const auto y = mha(q, v, {.key = k, .attention_mask = mask, .use_causal_mask = true});
    REQUIRE(y.size() == 1);
    CHECK(y[0].shape() == Shape{B, T, dq});
    kt::require_close(y[0].to_vector<float>(),
                      reference_mha(qv, kv, vv, B, T, S, dq, dk, dv, heads, kd, vd, dq, w, allowed, true), 2e-5f, 2e-5f);
  }
  {
    INFO("with the scores: Keras' Softmax path zeroes a fully masked row");
    const auto y = mha(q, v, {.key = k, .attention_mask = mask, .use_causal_mask = true, .return_attention_scores = true});
    REQUIRE(y.size() == 2);
    CHECK(y[1].shape() == Shape{B, heads, T, S});
    kt::require_close(y[0].to_vector<float>(),
                      reference_mha(qv, kv, vv, B, T, S, dq, dk, dv, heads, kd, vd, dq, w, allowed, false), 2e-5f, 2e-5f);
    const auto scores = y[1].to_vector<float>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t t = 0; t < T; ++t) {
          double total = 0;
          for (int64_t s = 0; s < S; ++s) {
            const float p = scores[static_cast<size_t>(((b * heads + h) * T + t) * S + s)];
            if (!allowed(b, t, s)) CHECK(p == 0.f);
            total += p;
          }
          CHECK(total == Approx(b == 0 && t == 0 ? 0.0 : 1.0).margin(1e-5));
        }
  }
  {
    INFO("sliding_window: a query sees keys less than 2 steps away (here with the causal mask)");
    layers::MultiHeadAttention windowed(heads, kd, {.value_dim = vd, .sliding_window = 2});
    windowed(q, v, {.key = k});
    windowed.set_weights(values);
    auto near = [&](int64_t b, int64_t t, int64_t s) { return s <= t && t - s < 2; };
    kt::require_close(windowed(q, v, {.key = k, .use_causal_mask = true})[0].to_vector<float>(),
                      reference_mha(qv, kv, vv, B, T, S, dq, dk, dv, heads, kd, vd, dq, w, near, true), 2e-5f, 2e-5f);
  }
  (void)out;
}

TEST_CASE("attention layers' input gradients match finite differences", "[cpu][attention]") {
  const Tensor q = kt::random_tensor(Shape{2, 3, 4}, 5), v = kt::random_tensor(Shape{2, 5, 4}, 6);
  const Tensor value_mask = bools({1, 1, 1, 0, 0, 1, 1, 1, 1, 1}, Shape{2, 5});
  const CallArguments plain{{"", ""}, {}};
  {
    INFO("MultiHeadAttention with a value mask and a causal mask");
    layers::MultiHeadAttention mha(2, 3, {.output_shape = {2, 3}});
    const CallArguments causal{{"", ""}, {{"use_causal_mask", true}}};
    kt::check_gradients(
        [&](const std::vector<Tensor>& in) {
          return mha.invoke_with_arguments(in, {Tensor(), value_mask}, causal, false).at(0);
        },
        {q, v});
    CHECK(mha.invoke_with_arguments({q, v}, {Tensor(), Tensor()}, plain, false)[0].shape() == Shape{2, 3, 2, 3});
  }
  for (const char* mode : {"dot", "concat"}) {
    INFO("Attention " << mode);
    layers::Attention attention({.use_scale = true, .score_mode = mode});
    kt::check_gradients(
        [&](const std::vector<Tensor>& in) {
          return attention.invoke_with_arguments(in, {Tensor(), value_mask, Tensor()}, {{"", "", ""}, {}}, false).at(0);
        },
        {q, v, ops::multiply(v, 0.5)});
  }
  {
    INFO("AdditiveAttention with a query mask");
    layers::AdditiveAttention additive;
    const Tensor query_mask = bools({1, 1, 0, 1, 0, 1}, Shape{2, 3});
    kt::check_gradients(
        [&](const std::vector<Tensor>& in) {
          return additive.invoke_with_arguments(in, {query_mask, value_mask}, plain, false).at(0);
        },
        {q, v});
    const Tensor y = additive.invoke_with_arguments({q, v}, {query_mask, value_mask}, plain, false)[0];
    const auto values = y.to_vector<float>();
    for (int i = 0; i < 4; ++i) CHECK(values[static_cast<size_t>(2 * 4 + i)] == 0.f);  // masked query step 2 of sample 0
  }
}

TEST_CASE("attention dropout drops probabilities in training only, from the layer's seed", "[cpu][attention]") {
  const Tensor q = kt::random_tensor(Shape{2, 6, 8}, 7);
  auto make = [] { return layers::MultiHeadAttention(2, 4, {.dropout = 0.5f, .seed = 3}); };
  layers::MultiHeadAttention a = make(), b = make(), plain(2, 4);
  a(q, q);
  b(q, q);
  plain(q, q);
  b.set_weights(a.get_weights());
  plain.set_weights(a.get_weights());
  CHECK(kt::max_abs_diff(a(q, q)[0], plain(q, q)[0]) == 0.0);  // inference: no dropout
  const Tensor ta = a(q, q, {}, true)[0], tb = b(q, q, {}, true)[0];
  CHECK(kt::max_abs_diff(ta, plain(q, q)[0]) > 1e-3);
  CHECK(kt::max_abs_diff(ta, tb) == 0.0);  // the same seed draws the same masks
  CHECK(kt::max_abs_diff(ta, a(q, q, {}, true)[0]) > 1e-3);  // and moves on
}

TEST_CASE("attention layers refuse bad options and inputs with clear errors", "[cpu][attention]") {
  kt::require_throws_with<ValueError>([] { layers::MultiHeadAttention(0, 4); }, {"num_heads", "received 0"});
  kt::require_throws_with<ValueError>([] { layers::MultiHeadAttention(2, 4, {.dropout = 1.5f}); }, {"dropout", "1.5"});
  kt::require_throws_with<ValueError>([] { layers::Attention({.score_mode = "cosine"}); }, {"score_mode", "cosine"});
  const auto q = layers::Input({4, 8}), v = layers::Input({5, 6}), k = layers::Input({3, 6});
  kt::require_throws_with<ValueError>([&] { layers::MultiHeadAttention(2, 4)(q, v, {.key = k}); },
                                      {"value and key", "(None, 5, 6)", "(None, 3, 6)"});
  kt::require_throws_with<ValueError>([&] { layers::MultiHeadAttention(2, 4, {.attention_axes = {3}})(q, v); },
                                      {"attention_axes", "received 3"});
  const auto image = layers::Input({3, 4, 8});
  kt::require_throws_with<NotImplementedError>(
      [&] { layers::MultiHeadAttention(2, 4, {.attention_axes = {2}})(image, image, {.use_causal_mask = true}); },
      {"use_causal_mask", "attention_axes [2]"});
  kt::require_throws_with<ValueError>([&] { layers::Attention()({q}); }, {"length 2 or 3", "1"});
  kt::require_throws_with<ValueError>([&] { layers::Attention()({q, v}); }, {"query and key", "(None, 4, 8)"});
  kt::require_throws_with<ValueError>(
      [&] {
        auto mha = std::make_shared<layers::MultiHeadAttention>(2, 4);
        mha->call_symbolic({q, v}, CallArguments{{"", ""}, {{"use_flash", true}}});
      },
      {"use_flash", "use_causal_mask"});
  kt::require_throws_with<ValueError>(
      [&] {
        auto dense = std::make_shared<layers::Dense>(3);
        dense->call_symbolic({q}, CallArguments{{""}, {{"use_causal_mask", true}}});
      },
      {"takes no keyword arguments"});
}

TEST_CASE("a Transformer block with MultiHeadAttention trains, summarizes and reloads", "[cpu][attention]") {
  utils::clear_session();
  auto tokens = layers::Input({6}, {.dtype = "int32"});
  auto x = layers::Embedding(12, 8, {.mask_zero = true})(tokens);
  auto attention = std::make_shared<layers::MultiHeadAttention>(2, 4, layers::MultiHeadAttentionOptions{});
  auto h = (*attention)(x, x, {.use_causal_mask = true});
  h = layers::LayerNormalization()(layers::add({x, h}));
  h = (*attention)(h, h);  // shared: the second call reuses the weights
  auto y = layers::Dense(1, {.activation = "sigmoid"})(layers::GlobalAveragePooling1D()(h));
  Model model(tokens, y);
  CHECK(model.count_params() == 12 * 8 + (8 * 2 * 4 + 2 * 4) * 3 + (2 * 4 * 8 + 8) + 2 * 8 + 8 + 1);
  model.compile({.optimizer = optimizers::Adam({.learning_rate = 0.01f}), .loss = "binary_crossentropy"});
  // Label: whether token 1 occurs before the padding.
  std::vector<int32_t> ids;
  std::vector<float> labels;
  for (int i = 0; i < 64; ++i) {
    const int length = 2 + i % 5;
    bool has = false;
    for (int t = 0; t < 6; ++t) {
      const int id = t < length ? 1 + (i * 7 + t * 3) % 11 : 0;
      has = has || id == 1;
      ids.push_back(id);
    }
    labels.push_back(has ? 1.f : 0.f);
  }
  const Tensor xs = Tensor::from_vector(ids, Shape{64, 6}), ys = Tensor::from_vector(labels, Shape{64, 1});
  const auto history = model.fit(xs, ys, {.batch_size = 16, .epochs = 15, .verbose = 0});
  const auto& loss = history.history.at("loss");
  CHECK(loss.back() < 0.5f * loss.front());
  const std::string summary = model.summary_string(100, 100);
  CHECK(summary.find("multi_head_attention") != std::string::npos);

  const fs::path dir = fs::temp_directory_path() / "kerascpp_attention_test";
  fs::create_directories(dir);
  model.save(dir / "transformer.keras");
  auto again = models::load_model(dir / "transformer.keras");
  CHECK(again->get_config() == model.get_config());
  CHECK(kt::max_abs_diff(again->predict(xs), model.predict(xs)) == 0.0);
  fs::remove_all(dir);
}

TEST_CASE("GroupQueryAttention shares key and value heads, and refuses what Keras refuses", "[attention]") {
  // Its numbers against Keras (masks, causal, gate, multi-query, a training step): the keras-compat
  // "grouped_query_attention" fixture in test_saving.cpp. Here: one key/value head serving every
  // query head gives the same output as MultiHeadAttention whose key and value heads are copies.
  auto x = layers::Input({5, 8});
  auto gqa = std::make_shared<layers::GroupQueryAttention>(3, 4, 1);
  Model model(x, (*gqa)(x, x, {.use_causal_mask = true}));
  const Tensor input = kt::random_tensor(Shape{2, 5, 8}, 70);
  const Tensor y = model.predict(input);
  auto mha = std::make_shared<layers::MultiHeadAttention>(4, 3);
  Model reference(x, (*mha)(x, x, {.use_causal_mask = true}));
  // Weights in Keras' order: query kernel (8, 4, 3), bias (4, 3), key (8, 1, 3), (1, 3), value the
  // same, output (4, 3, 8), (8); MultiHeadAttention's key and value have 4 heads: repeat the one.
  const auto w = model.get_weights();
  REQUIRE(w.size() == 8);
  CHECK(w[2].shape() == Shape{8, 1, 3});
  auto repeat = [](const Tensor& t) {
    std::vector<int64_t> wide = t.shape().dims();
    wide[wide.size() - 2] = 4;
    return ops::broadcast_to(t, Shape(wide));
  };
  reference.set_weights({w[0], w[1], repeat(w[2]), repeat(w[3]), repeat(w[4]), repeat(w[5]), w[6], w[7]});
  kt::require_close(y.to_vector<float>(), reference.predict(input).to_vector<float>(), 1e-6f, 1e-5f);
  CHECK(model.count_params() == 8 * 4 * 3 + 12 + 2 * (8 * 3 + 3) + 4 * 3 * 8 + 8);
  // Keras 3.15 names it after its Python class, GroupedQueryAttention; its config keeps the exported name.
  utils::clear_session();
  layers::GroupQueryAttention first(2, 2, 1), second(2, 2, 1);
  CHECK(first.name() == "grouped_query_attention");
  CHECK(second.name() == "grouped_query_attention_1");
  CHECK(first.class_name() == "GroupQueryAttention");

  kt::require_throws_with<ValueError>([] { layers::GroupQueryAttention(4, 6, 4); },
                                      {"num_query_heads must be divisible by num_key_value_heads", "6", "4"});
  kt::require_throws_with<ValueError>([] { layers::GroupQueryAttention(4, 4, 2, {.value_dim = 3}); },
                                      {"GroupQueryAttention", "value_dim"});
  auto narrow = layers::Input({5, 6});
  kt::require_throws_with<ValueError>(
      [&] { layers::GroupQueryAttention(4, 4, 2)(x, narrow); },
      {"GroupQueryAttention", "last dimension of the query and the value", "(None, 5, 8)", "(None, 5, 6)"});
}
