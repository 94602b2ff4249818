#include <cmath>
#include <limits>

#include "tests/support/test_support.h"

using namespace keras;

namespace {

std::vector<float> naive_matmul(const std::vector<float>& a, const std::vector<float>& b, int m, int k, int n, bool ta,
                                bool tb) {
  std::vector<float> y(static_cast<size_t>(m * n));
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int p = 0; p < k; ++p)
        s += a[static_cast<size_t>(ta ? p * m + i : i * k + p)] * b[static_cast<size_t>(tb ? j * k + p : p * n + j)];
      y[static_cast<size_t>(i * n + j)] = static_cast<float>(s);
    }
  return y;
}

struct Geometry {
  int64_t out, pad_before;
};
// TensorFlow's documented rule for "same": out = ceil(in / s), total padding split with the extra at the end.
Geometry geometry(const std::string& padding, int64_t in, int64_t k, int64_t s, int64_t d) {
  const int64_t eff = (k - 1) * d + 1;
  if (padding == "valid") return {(in - eff) / s + 1, 0};
  const int64_t out = (in + s - 1) / s;
  return {out, std::max<int64_t>((out - 1) * s + eff - in, 0) / 2};
}

// NHWC input, Keras kernel (kh, kw, C / groups, F).
std::vector<float> naive_conv(const Tensor& xt, const Tensor& wt, const std::vector<float>& bias, int64_t sh,
                              int64_t sw, int64_t dh, int64_t dw, const std::string& padding, int64_t groups,
                              Shape& out_shape) {
  const auto x = xt.to_vector<float>(), w = wt.to_vector<float>();
  const int64_t n = xt.dim(0), h = xt.dim(1), wd = xt.dim(2), c = xt.dim(3);
  const int64_t kh = wt.dim(0), kw = wt.dim(1), cg = wt.dim(2), f = wt.dim(3), fg = f / groups;
  const auto gh = geometry(padding, h, kh, sh, dh), gw = geometry(padding, wd, kw, sw, dw);
  out_shape = Shape{n, gh.out, gw.out, f};
  std::vector<float> y(static_cast<size_t>(out_shape.num_elements()));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oy = 0; oy < gh.out; ++oy)
      for (int64_t ox = 0; ox < gw.out; ++ox)
        for (int64_t o = 0; o < f; ++o) {
          double s = bias.empty() ? 0 : bias[static_cast<size_t>(o)];
          const int64_t g = o / fg;
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; ++j) {
              const int64_t iy = oy * sh - gh.pad_before + i * dh, ix = ox * sw - gw.pad_before + j * dw;
              if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
              for (int64_t ci = 0; ci < cg; ++ci)
                s += x[static_cast<size_t>(((b * h + iy) * wd + ix) * c + g * cg + ci)] *
                     w[static_cast<size_t>(((i * kw + j) * cg + ci) * f + o)];
            }
          y[static_cast<size_t>(((b * gh.out + oy) * gw.out + ox) * f + o)] = static_cast<float>(s);
        }
  return y;
}

}  // namespace

TEST_CASE("matmul matches a naive product with transposes, batches, bias and activation", "[cpu][ops]") {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      INFO("transpose_a " << ta << " transpose_b " << tb);
      const int m = 5, k = 7, n = 3;
      const Tensor a = kt::random_tensor(ta ? Shape{k, m} : Shape{m, k}, 1);
      const Tensor b = kt::random_tensor(tb ? Shape{n, k} : Shape{k, n}, 2);
      const Tensor y = ops::matmul(a, b, {.transpose_a = ta, .transpose_b = tb});
      REQUIRE(y.shape() == Shape{m, n});
      kt::require_close(y.to_vector<float>(),
                        naive_matmul(a.to_vector<float>(), b.to_vector<float>(), m, k, n, ta, tb));
    }
  // Batched with broadcasting: (2, 1, 4, 3) @ (5, 3, 2) -> (2, 5, 4, 2).
  const Tensor a = kt::random_tensor(Shape{2, 1, 4, 3}, 3), b = kt::random_tensor(Shape{5, 3, 2}, 4);
  const Tensor y = ops::matmul(a, b);
  REQUIRE(y.shape() == Shape{2, 5, 4, 2});
  const auto av = a.to_vector<float>(), bv = b.to_vector<float>(), yv = y.to_vector<float>();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 5; ++j) {
      const std::vector<float> ai(av.begin() + i * 12, av.begin() + i * 12 + 12),
          bj(bv.begin() + j * 6, bv.begin() + j * 6 + 6);
      const std::vector<float> yij(yv.begin() + (i * 5 + j) * 8, yv.begin() + (i * 5 + j) * 8 + 8);
      kt::require_close(yij, naive_matmul(ai, bj, 4, 3, 2, false, false));
    }
  // linear fuses bias and relu.
  const Tensor x = kt::random_tensor(Shape{1, 6}, 5), kern = kt::random_tensor(Shape{6, 4}, 6);
  const Tensor bias = kt::random_tensor(Shape{4}, 7);
  auto expected = naive_matmul(x.to_vector<float>(), kern.to_vector<float>(), 1, 6, 4, false, false);
  for (size_t j = 0; j < 4; ++j) expected[j] = std::max(0.f, expected[j] + bias.to_vector<float>()[j]);
  kt::require_close(ops::linear(x, kern, bias, UnaryOp::relu).to_vector<float>(), expected);
  kt::require_throws_with<ShapeError>(
      [] {
        ops::matmul(ops::zeros(Shape{32, 4}), ops::zeros(Shape{3, 2}));
      },
      {"matmul", "(32, 4)", "(3, 2)", "4 vs 3"});
  kt::require_throws_with<ShapeError>(
      [] {
        ops::linear(ops::zeros(Shape{2, 100}), ops::zeros(Shape{784, 10}), Tensor());
      },
      {"axis -1", "784", "100)"});
}

TEST_CASE("inference 3x3 convolutions (Winograd on AVX-512) match a naive convolution, and follow weight changes",
          "[cpu][ops]") {
  // Outside a tape a convolution runs for inference: 3x3, stride 1, >= 16 channels takes oneDNN's
  // Winograd kernels where the CPU has them (F(2x2,3x3) for a batch of 1, F(4x4,3x3) for more).
  Variable w(kt::random_tensor(Shape{3, 3, 32, 24}, 2), "kernel");
  const Tensor b = kt::random_tensor(Shape{24}, 3);
  for (const char* padding : {"valid", "same"})
    for (int64_t n : {1, 3, 1, 5}) {
      INFO(padding << " batch " << n);
      const Tensor x = kt::random_tensor(Shape{n, 11, 9, 32}, 10 + n);
      Shape expected_shape;
      const auto expected = naive_conv(x, w.value(), b.to_vector<float>(), 1, 1, 1, 1, padding, 1, expected_shape);
      const Tensor y = ops::conv(x, w.value(), b, {.padding = padding});
      REQUIRE(y.shape() == expected_shape);
      kt::require_close(y.to_vector<float>(), expected, 1e-4f, 1e-4f);
    }
  // New values in the same variable: the transformed weights are not reused.
  w.assign(kt::random_tensor(Shape{3, 3, 32, 24}, 4));
  const Tensor x = kt::random_tensor(Shape{2, 8, 8, 32}, 5);
  Shape s;
  kt::require_close(ops::conv(x, w.value(), b, {}).to_vector<float>(),
                    naive_conv(x, w.value(), b.to_vector<float>(), 1, 1, 1, 1, "valid", 1, s), 1e-4f, 1e-4f);
}

TEST_CASE("inference convolutions reorder their weights once, and again after each way weights change",
          "[cpu][ops]") {
  // A 3x3 Winograd convolution, a 1x1 and a strided 3x3 (direct kernels): each wants its weights in
  // a blocked layout. Every write the frontend makes must be seen by the next inference call.
  Backend& be = default_backend();
  struct Conv {
    Shape kernel;
    int64_t stride;
    std::string padding;
  };
  const std::vector<Conv> convs = {{{3, 3, 16, 32}, 1, "same"}, {{1, 1, 16, 24}, 1, "valid"}, {{3, 3, 16, 16}, 2, "same"}};
  const Tensor x = kt::random_tensor(Shape{2, 9, 9, 16}, 21);
  for (const Conv& c : convs) {
    INFO("kernel " << c.kernel.to_string() << " stride " << c.stride);
    Variable w(kt::random_tensor(c.kernel, 22), "kernel");
    const int64_t f = c.kernel[3];
    const Tensor b = kt::random_tensor(Shape{f}, 23);
    auto check = [&](const char* after) {
      INFO("after " << after);
      Shape s;
      const auto expected = naive_conv(x, w.value(), b.to_vector<float>(), c.stride, c.stride, 1, 1, c.padding, 1, s);
      const Tensor y = ops::conv(x, w.value(), b, {.strides = {c.stride, c.stride}, .padding = c.padding});
      REQUIRE(y.shape() == s);
      kt::require_close(y.to_vector<float>(), expected, 1e-4f, 1e-4f);
    };
    const auto count = [&](const char* name) { return be.name() == "cpu" ? be.counters()[name] : 0; };
    const int64_t reorders = count("weight_reorders");
    check("creation");
    const int64_t first = count("weight_reorders") - reorders;
    const int64_t reuses = count("weight_reuses");
    check("nothing");
    check("nothing, twice");
    if (be.name() == "cpu" && first == 0) WARN("this CPU's kernels read Keras' layout: nothing to reorder");
    if (be.name() == "cpu" && first > 0) {
      CHECK(count("weight_reorders") - reorders == first);  // the same weights: reordered once
      CHECK(count("weight_reuses") - reuses == 2 * first);
    }
    w.assign(kt::random_tensor(c.kernel, 24));
    check("assign");
    Tensor v = w.value();
    // A write of one's own into the variable's memory (on a GPU through the backend's copy), then said.
    auto values = v.to_vector<float>();
    values[5] += 1.f;
    be.copy_from_host(v.raw_data(), values.data(), v.nbytes());
    v.mark_modified();
    check("a raw write");
    ops::sgd_update(w, kt::random_tensor(c.kernel, 25), nullptr, {.learning_rate = 0.5f});
    check("an SGD update");
    Variable m(ops::zeros(c.kernel), "m"), vv(ops::zeros(c.kernel), "v");
    ops::adam_update(w, kt::random_tensor(c.kernel, 26), m, vv, nullptr, {.learning_rate = 0.5f, .step = 1});
    check("an Adam update");
    ops::copy_into(kt::random_tensor(c.kernel, 27), v);
    check("copy_into");
    const auto check_new_weights = [&](uint32_t seed) {
      Variable other(kt::random_tensor(c.kernel, seed), "other");
      Shape s;
      kt::require_close(ops::conv(x, other.value(), b, {.strides = {c.stride, c.stride}, .padding = c.padding})
                            .to_vector<float>(),
                        naive_conv(x, other.value(), b.to_vector<float>(), c.stride, c.stride, 1, 1, c.padding, 1, s),
                        1e-4f, 1e-4f);
    };
    // New weights at the address of freed ones (the allocator reuses it): not the old reorder.
    check_new_weights(28);
    check_new_weights(29);
    // Weights made per call (a mixed policy's casts) leave no growing pile of kept layouts behind.
    const int64_t kept = count("weights_kept");
    for (uint32_t i = 0; i < 20; ++i)
      (void)ops::conv(x, kt::random_tensor(c.kernel, 100 + i), b, {.strides = {c.stride, c.stride}, .padding = c.padding});
    CHECK(count("weights_kept") - kept <= 1);
  }
}

// max_pool(act(conv)) by hand: a naive convolution, then windows of `pool` with stride `pool`
// (Keras' "valid": a last partial window is dropped).
std::vector<float> naive_conv_max_pool(const Tensor& x, const Tensor& w, const std::vector<float>& bias,
                                       const std::string& padding, bool relu, int64_t pool, Shape& out_shape) {
  Shape conv_shape;
  const auto z = naive_conv(x, w, bias, 1, 1, 1, 1, padding, 1, conv_shape);
  const int64_t n = conv_shape[0], oh = conv_shape[1], ow = conv_shape[2], f = conv_shape[3];
  out_shape = Shape{n, oh / pool, ow / pool, f};
  std::vector<float> y;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t py = 0; py < oh / pool; ++py)
      for (int64_t px = 0; px < ow / pool; ++px)
        for (int64_t o = 0; o < f; ++o) {
          float m = -std::numeric_limits<float>::infinity();
          for (int64_t i = 0; i < pool; ++i)
            for (int64_t j = 0; j < pool; ++j)
              m = std::max(m, z[static_cast<size_t>(((b * oh + py * pool + i) * ow + px * pool + j) * f + o)]);
          y.push_back(relu ? std::max(m, 0.f) : m);
        }
  return y;
}

TEST_CASE("conv_max_pool equals a naive convolution then max pooling, fused or not", "[cpu][ops]") {
  struct Case {
    int64_t n, h, w, c, k, f;
    std::string padding;
    bool relu, bias;
    int64_t pool;
    bool fused;  // the one-pass kernel (AVX-512 CPUs); the others run conv then pool
  };
  const std::vector<Case> cases = {
      {5, 28, 28, 1, 3, 32, "valid", true, true, 2, true},    // fmnist_cnn's first layer
      {3, 11, 9, 3, 3, 16, "same", false, false, 2, true},    // RGB, padded, odd sizes, no bias
      {2, 12, 12, 2, 5, 48, "valid", true, true, 2, true},    // taps known only at run time
      {1, 14, 14, 1, 5, 16, "same", true, true, 2, true},     // batch 1
      {2, 10, 10, 1, 3, 24, "valid", true, true, 2, false},   // filters not a multiple of 16
      {2, 10, 10, 8, 3, 16, "valid", true, true, 2, false},   // many input channels: oneDNN
      {2, 13, 13, 1, 3, 16, "valid", true, true, 3, false},   // a 3x3 window
      {3, 13, 13, 32, 3, 64, "valid", true, true, 2, false},  // fmnist_cnn's second layer: Winograd
      {2, 10, 11, 16, 3, 16, "same", false, true, 2, false},  // Winograd, padded, odd width
  };
  Backend& be = default_backend();
  const bool avx512 = __builtin_cpu_supports("avx512f");
  for (const Case& c : cases) {
    INFO("case " << c.h << "x" << c.w << "x" << c.c << " k" << c.k << " f" << c.f << " " << c.padding);
    const Tensor x = ops::random_uniform({c.n, c.h, c.w, c.c}, -1.f, 1.f, 7);
    const Tensor w = ops::random_uniform({c.k, c.k, c.c, c.f}, -0.5f, 0.5f, 8);
    const Tensor b = c.bias ? ops::random_uniform({c.f}, -0.5f, 0.5f, 9) : Tensor();
    Shape expected_shape;
    const auto expected = naive_conv_max_pool(x, w, c.bias ? b.to_vector<float>() : std::vector<float>{}, c.padding,
                                              c.relu, c.pool, expected_shape);
    const int64_t before = be.counters()["fused_conv_max_pools"], blocked_before = be.counters()["blocked_poolings"];
    const Tensor y = ops::conv_max_pool(
        x, w, b, {.padding = c.padding, .activation = c.relu ? UnaryOp::relu : UnaryOp::identity},
        {.pool_size = {c.pool, c.pool}});
    REQUIRE(y.shape() == expected_shape);
    kt::require_close(y.to_vector<float>(), expected, 1e-4f, 1e-4f);
    if (be.name() == "cpu") {
      CHECK(be.counters()["fused_conv_max_pools"] - before == (c.fused && avx512 ? 1 : 0));
      // 3x3 convolutions with >= 16 channels run Winograd (AVX-512) and are pooled in its layout.
      const bool winograd = avx512 && c.k == 3 && c.c >= 16 && c.f >= 16 && settings().conv_winograd;
      CHECK(be.counters()["blocked_poolings"] - blocked_before == (winograd ? 1 : 0));
    }
  }
}

TEST_CASE("conv_max_pool under a tape is the two ops, with their gradients", "[cpu][ops]") {
  const Tensor x = ops::random_uniform({2, 8, 8, 1}, -1.f, 1.f, 1);
  Variable w(ops::random_uniform({3, 3, 1, 16}, -0.5f, 0.5f, 2), "kernel");
  Variable b(ops::random_uniform({16}, -0.1f, 0.1f, 3), "bias");
  auto grads = [&](bool fused) {
    GradientTape tape;
    const ops::ConvOptions co{.activation = UnaryOp::relu};
    const Tensor y = fused ? ops::conv_max_pool(x, w.value(), b.value(), co)
                           : ops::max_pool(ops::conv(x, w.value(), b.value(), co), {});
    const Tensor loss = ops::sum(ops::multiply(y, y));
    return tape.gradient(loss, std::vector<Variable*>{&w, &b});
  };
  const auto fused = grads(true), separate = grads(false);
  for (size_t i = 0; i < 2; ++i) {
    REQUIRE(fused[i].defined());
    kt::require_close(fused[i].to_vector<float>(), separate[i].to_vector<float>(), 1e-6f, 1e-6f);
  }
  CHECK(ops::max(ops::abs(fused[0])).item() > 0);
}

TEST_CASE("training 3x3 convolutions (Winograd forward and kernel gradient) match naive ones", "[cpu][ops]") {
  // Under a tape, 3x3 stride-1 convolutions with >= 16 channels run Winograd F(4x4,3x3) for the
  // forward pass and the kernel's gradient on AVX-512 (the input's gradient stays direct).
  for (const char* padding : {"valid", "same"}) {
    INFO(padding);
    const int64_t n = 3, h = 10, wd = 9, c = 16, f = 32;
    Variable w(kt::random_tensor(Shape{3, 3, c, f}, 21), "kernel");
    Variable b(kt::random_tensor(Shape{f}, 22), "bias");
    Tensor x = kt::random_tensor(Shape{n, h, wd, c}, 23);
    GradientTape tape;
    tape.watch(x);
    const Tensor y = ops::conv(x, w.value(), b.value(), {.padding = padding});
    Shape ys;
    const auto expected = naive_conv(x, w.value(), b.value().to_vector<float>(), 1, 1, 1, 1, padding, 1, ys);
    REQUIRE(y.shape() == ys);
    kt::require_close(y.to_vector<float>(), expected, 1e-4f, 1e-4f);
    const Tensor probe = kt::random_tensor(ys, 24);
    const auto g = tape.gradient(ops::sum(ops::multiply(y, probe)), std::vector<Tensor>{w.value(), b.value(), x});
    // d loss / d kernel[i, j, ci, o] = sum over positions of input patch * probe, by hand.
    const auto xv = x.to_vector<float>(), pv = probe.to_vector<float>();
    const int64_t oh = ys[1], ow = ys[2], pad = std::string(padding) == "same" ? 1 : 0;
    std::vector<float> dw(static_cast<size_t>(9 * c * f)), db(static_cast<size_t>(f)), dx(xv.size());
    const auto wv = w.value().to_vector<float>();
    for (int64_t bi = 0; bi < n; ++bi)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox)
          for (int64_t o = 0; o < f; ++o) {
            const float p = pv[static_cast<size_t>(((bi * oh + oy) * ow + ox) * f + o)];
            db[static_cast<size_t>(o)] += p;
            for (int64_t i = 0; i < 3; ++i)
              for (int64_t j = 0; j < 3; ++j) {
                const int64_t iy = oy + i - pad, ix = ox + j - pad;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                for (int64_t ci = 0; ci < c; ++ci) {
                  const size_t xi = static_cast<size_t>(((bi * h + iy) * wd + ix) * c + ci);
                  const size_t wi = static_cast<size_t>(((i * 3 + j) * c + ci) * f + o);
                  dw[wi] += xv[xi] * p;
                  dx[xi] += wv[wi] * p;
                }
              }
          }
    kt::require_close(g[0].to_vector<float>(), dw, 1e-3f, 1e-4f);
    kt::require_close(g[1].to_vector<float>(), db, 1e-4f, 1e-4f);
    kt::require_close(g[2].to_vector<float>(), dx, 1e-4f, 1e-4f);
  }
}

TEST_CASE("a convolution with a folded batch norm matches a naive convolution and Keras' batch norm formula",
          "[cpu][ops]") {
  // 3x3 with 16 channels (Winograd, the batch norm applied after it), 1x1 and 5x5 (direct, fused as
  // post-ops), with and without a bias, a relu, gamma and beta, for inference and under a tape.
  struct Case {
    int64_t k, c, f;
    bool bias, relu, gamma_beta;
  };
  for (const Case& cs : {Case{3, 16, 24, true, true, true}, Case{1, 8, 12, false, true, true},
                         Case{5, 3, 6, true, false, false}, Case{3, 16, 32, false, false, true}}) {
    INFO("kernel " << cs.k << " channels " << cs.c << " -> " << cs.f << " gamma and beta " << cs.gamma_beta);
    const Tensor x = kt::random_tensor(Shape{2, 9, 8, cs.c}, 31);
    Variable w(kt::random_tensor(Shape{cs.k, cs.k, cs.c, cs.f}, 32), "kernel");
    const Tensor b = cs.bias ? kt::random_tensor(Shape{cs.f}, 33) : Tensor();
    const float epsilon = 0.01f;
    const FoldedBatchNorm bn{kt::random_tensor(Shape{cs.f}, 34), kt::random_tensor(Shape{cs.f}, 35, 0.2f, 2.f),
                             cs.gamma_beta ? kt::random_tensor(Shape{cs.f}, 36) : Tensor(),
                             cs.gamma_beta ? kt::random_tensor(Shape{cs.f}, 37) : Tensor(), epsilon};
    Shape ys;
    auto expected = naive_conv(x, w.value(), cs.bias ? b.to_vector<float>() : std::vector<float>{}, 1, 1, 1, 1,
                               "same", 1, ys);
    const auto mean = bn.mean.to_vector<float>(), var = bn.variance.to_vector<float>();
    const auto gamma = cs.gamma_beta ? bn.gamma.to_vector<float>() : std::vector<float>(static_cast<size_t>(cs.f), 1.f);
    const auto beta = cs.gamma_beta ? bn.beta.to_vector<float>() : std::vector<float>(static_cast<size_t>(cs.f), 0.f);
    for (size_t i = 0; i < expected.size(); ++i) {
      const size_t ch = i % static_cast<size_t>(cs.f);
      const double v = (expected[i] - mean[ch]) / std::sqrt(static_cast<double>(var[ch]) + epsilon) * gamma[ch] + beta[ch];
      expected[i] = static_cast<float>(cs.relu ? std::max(v, 0.0) : v);
    }
    const ops::ConvOptions o{.padding = "same", .activation = cs.relu ? UnaryOp::relu : UnaryOp::identity, .batch_norm = bn};
    kt::require_close(ops::conv(x, w.value(), b, o).to_vector<float>(), expected, 1e-4f, 1e-4f);
    GradientTape tape;  // recorded: the same values, op by op
    const Tensor y = ops::conv(x, w.value(), b, o);
    kt::require_close(y.to_vector<float>(), expected, 1e-4f, 1e-4f);
    CHECK(tape.gradient(ops::sum(y), std::vector<Variable*>{&w})[0].shape() == w.shape());
  }
  const Tensor x = kt::random_tensor(Shape{1, 4, 4, 2}, 1), w = kt::random_tensor(Shape{1, 1, 2, 3}, 2);
  kt::require_throws_with<ShapeError>(
      [&] { ops::conv(x, w, Tensor(), {.batch_norm = {ops::ones(Shape{3}), ops::ones(Shape{2})}}); },
      {"folded batch norm", "(3,)", "(2,)"});
  kt::require_throws_with<ValueError>(
      [&] { ops::conv(x, w, Tensor(), {.batch_norm = {ops::ones(Shape{3}), Tensor(), ops::ones(Shape{3})}}); },
      {"folded batch norm needs its mean and variance"});
  kt::require_throws_with<ValueError>(
      [&] { ops::conv(x, w, Tensor(), {.batch_norm = {ops::ones(Shape{3}), ops::ones(Shape{3}), {}, {}, -1.f}}); },
      {"epsilon >= 0", "-1"});
}

TEST_CASE("a convolution with a residual matches a naive convolution, Keras' batch norm, the Add and the activation",
          "[cpu][ops]") {
  // 3x3 with 16 channels (Winograd: the residual added after it, in one pass), 1x1 (direct: a
  // binary post-op), with and without a folded batch norm; relu, none, and a non-fused activation.
  struct Case {
    int64_t k, f;
    bool batch_norm;
    UnaryOp activation;
  };
  for (const Case& cs : {Case{3, 16, true, UnaryOp::relu}, Case{3, 24, false, UnaryOp::identity},
                         Case{1, 24, true, UnaryOp::relu}, Case{1, 8, false, UnaryOp::relu},
                         Case{1, 8, true, UnaryOp::tanh}}) {
    INFO("kernel " << cs.k << " filters " << cs.f << " batch norm " << cs.batch_norm << " activation "
                   << static_cast<int>(cs.activation));
    const Tensor x = kt::random_tensor(Shape{2, 6, 7, 16}, 41);
    Variable w(kt::random_tensor(Shape{cs.k, cs.k, 16, cs.f}, 42), "kernel");
    const Tensor b = kt::random_tensor(Shape{cs.f}, 43);
    Tensor r = kt::random_tensor(Shape{2, 6, 7, cs.f}, 44);
    const FoldedBatchNorm bn = cs.batch_norm ? FoldedBatchNorm{kt::random_tensor(Shape{cs.f}, 45),
                                                               kt::random_tensor(Shape{cs.f}, 46, 0.2f, 2.f),
                                                               kt::random_tensor(Shape{cs.f}, 47),
                                                               kt::random_tensor(Shape{cs.f}, 48), 1e-3f}
                                             : FoldedBatchNorm{};
    Shape ys;
    auto expected = naive_conv(x, w.value(), b.to_vector<float>(), 1, 1, 1, 1, "same", 1, ys);
    const auto rv = r.to_vector<float>();
    std::vector<float> pre(expected.size());  // before the activation
    for (size_t i = 0; i < expected.size(); ++i) {
      double v = expected[i];
      if (cs.batch_norm) {
        const auto ch = static_cast<int64_t>(i % static_cast<size_t>(cs.f));
        v = (v - bn.mean.to_vector<float>()[ch]) / std::sqrt(bn.variance.to_vector<float>()[ch] + 1e-3) *
                bn.gamma.to_vector<float>()[ch] +
            bn.beta.to_vector<float>()[ch];
      }
      v += rv[i];
      pre[i] = static_cast<float>(v);
      expected[i] = static_cast<float>(cs.activation == UnaryOp::relu   ? std::max(v, 0.0)
                                       : cs.activation == UnaryOp::tanh ? std::tanh(v)
                                                                        : v);
    }
    const ops::ConvOptions o{.padding = "same", .activation = cs.activation, .batch_norm = bn, .residual = r};
    kt::require_close(ops::conv(x, w.value(), b, o).to_vector<float>(), expected, 1e-4f, 1e-4f);
    // Under a tape: op by op, and the shortcut's gradient is the activation's, by hand.
    GradientTape tape;
    tape.watch(r);
    const Tensor y = ops::conv(x, w.value(), b, o);
    kt::require_close(y.to_vector<float>(), expected, 1e-4f, 1e-4f);
    const Tensor probe = kt::random_tensor(ys, 49);
    const auto g = tape.gradient(ops::sum(ops::multiply(y, probe)), std::vector<Tensor>{r});
    const auto pv = probe.to_vector<float>();
    std::vector<float> dr(pv.size());
    for (size_t i = 0; i < pv.size(); ++i)
      dr[i] = cs.activation == UnaryOp::relu   ? (pre[i] > 0.f ? pv[i] : 0.f)
              : cs.activation == UnaryOp::tanh ? pv[i] * (1.f - expected[i] * expected[i])
                                               : pv[i];
    kt::require_close(g[0].to_vector<float>(), dr, 1e-4f, 1e-4f);
  }
  const Tensor x = kt::random_tensor(Shape{1, 4, 4, 2}, 1), w = kt::random_tensor(Shape{1, 1, 2, 3}, 2);
  kt::require_throws_with<ShapeError>([&] { ops::conv(x, w, Tensor(), {.residual = ops::ones(Shape{1, 4, 4, 2})}); },
                                      {"residual", "(1, 4, 4, 3)", "(1, 4, 4, 2)"});
  kt::require_throws_with<ValueError>(
      [&] { ops::conv_transpose(x, kt::random_tensor(Shape{1, 1, 3, 2}, 3), Tensor(), {.residual = ops::ones(Shape{1, 4, 4, 3})}); },
      {"residual", "forward convolutions"});
}

TEST_CASE("conv2d matches a naive convolution: strides, dilation, padding, groups, odd sizes", "[cpu][ops]") {
  struct Case {
    Shape x, w;
    int64_t sh, sw, dh, dw;
    std::string padding;
    int64_t groups;
  };
  const std::vector<Case> cases = {
      {{2, 7, 6, 3}, {3, 3, 3, 4}, 1, 1, 1, 1, "valid", 1},
      {{1, 7, 6, 3}, {3, 2, 3, 5}, 2, 1, 1, 1, "same", 1},  // batch 1, non-square kernel
      {{2, 9, 8, 2}, {3, 3, 2, 3}, 1, 2, 2, 1, "same", 1},  // dilation
      {{1, 5, 5, 4}, {3, 3, 2, 6}, 2, 2, 1, 1, "same", 2},  // groups
      {{2, 6, 7, 1}, {5, 1, 1, 2}, 3, 1, 1, 1, "valid", 1},
  };
  for (const auto& c : cases) {
    INFO("x " << c.x.to_string() << " w " << c.w.to_string() << " " << c.padding);
    const Tensor x = kt::random_tensor(c.x, 1), w = kt::random_tensor(c.w, 2);
    const Tensor b = kt::random_tensor(Shape{c.w[3]}, 3);
    Shape expected_shape;
    const auto expected =
        naive_conv(x, w, b.to_vector<float>(), c.sh, c.sw, c.dh, c.dw, c.padding, c.groups, expected_shape);
    const Tensor y = ops::conv(
        x, w, b, {.strides = {c.sh, c.sw}, .padding = c.padding, .dilation_rate = {c.dh, c.dw}, .groups = c.groups});
    REQUIRE(y.shape() == expected_shape);
    kt::require_close(y.to_vector<float>(), expected, 1e-4f, 1e-4f);
  }
  // Keras' documented example: 5x5 input, 3x3 kernel, stride 2, same -> 3x3.
  CHECK(ops::conv(ops::ones(Shape{1, 5, 5, 1}), ops::ones(Shape{3, 3, 1, 1}), Tensor(),
                  {.strides = {2}, .padding = "same"})
            .to_vector<float>() == std::vector<float>{4, 6, 4, 6, 9, 6, 4, 6, 4});
}

TEST_CASE("conv1d and depthwise conv match the naive convolution", "[cpu][ops]") {
  const Tensor x = kt::random_tensor(Shape{2, 9, 3}, 4), w = kt::random_tensor(Shape{3, 3, 4}, 5);
  Shape s;
  const auto expected = naive_conv(x.view(Shape{2, 1, 9, 3}), w.view(Shape{1, 3, 3, 4}), {}, 1, 2, 1, 1, "same", 1, s);
  const Tensor y = ops::conv(x, w, Tensor(), {.strides = {2}, .padding = "same"});
  REQUIRE(y.shape() == Shape{2, 5, 4});
  kt::require_close(y.to_vector<float>(), expected, 1e-4f, 1e-4f);

  // Depthwise with multiplier 2: output channel c*2+m uses input channel c.
  const Tensor xd = kt::random_tensor(Shape{1, 5, 5, 3}, 6), kd = kt::random_tensor(Shape{3, 3, 3, 2}, 7);
  const Tensor yd = ops::depthwise_conv(xd, kd, Tensor(), {.padding = "valid"});
  REQUIRE(yd.shape() == Shape{1, 3, 3, 6});
  const auto xv = xd.to_vector<float>(), kv = kd.to_vector<float>(), yv = yd.to_vector<float>();
  for (int oy = 0; oy < 3; ++oy)
    for (int ox = 0; ox < 3; ++ox)
      for (int c = 0; c < 3; ++c)
        for (int m = 0; m < 2; ++m) {
          double acc = 0;
          for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j)
              acc += xv[static_cast<size_t>(((oy + i) * 5 + ox + j) * 3 + c)] *
                     kv[static_cast<size_t>(((i * 3 + j) * 3 + c) * 2 + m)];
          CHECK(std::fabs(yv[static_cast<size_t>((oy * 3 + ox) * 6 + c * 2 + m)] - acc) < 1e-4);
        }
}

TEST_CASE("conv_transpose matches a naive scatter", "[cpu][ops]") {
  for (const std::string padding : {"valid", "same"}) {
    INFO(padding);
    const int64_t h = 3, w = 4, c = 2, f = 3, k = 3, s = 2;
    const Tensor x = kt::random_tensor(Shape{1, h, w, c}, 8), kern = kt::random_tensor(Shape{k, k, f, c}, 9);
    const Tensor y = ops::conv_transpose(x, kern, Tensor(), {.strides = {s}, .padding = padding});
    const int64_t oh = padding == "valid" ? (h - 1) * s + k : h * s, ow = padding == "valid" ? (w - 1) * s + k : w * s;
    const int64_t pt = padding == "valid" ? 0 : ((h - 1) * s + k - oh) / 2,
                  pl = padding == "valid" ? 0 : ((w - 1) * s + k - ow) / 2;
    REQUIRE(y.shape() == Shape{1, oh, ow, f});
    std::vector<double> ref(static_cast<size_t>(oh * ow * f), 0.0);
    const auto xv = x.to_vector<float>(), kv = kern.to_vector<float>();
    for (int64_t iy = 0; iy < h; ++iy)
      for (int64_t ix = 0; ix < w; ++ix)
        for (int64_t i = 0; i < k; ++i)
          for (int64_t j = 0; j < k; ++j) {
            const int64_t oy = iy * s - pt + i, ox = ix * s - pl + j;
            if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
            for (int64_t o = 0; o < f; ++o)
              for (int64_t ci = 0; ci < c; ++ci)
                ref[static_cast<size_t>((oy * ow + ox) * f + o)] +=
                    xv[static_cast<size_t>((iy * w + ix) * c + ci)] *
                    kv[static_cast<size_t>(((i * k + j) * f + o) * c + ci)];
          }
    kt::require_close(y.to_vector<float>(), std::vector<float>(ref.begin(), ref.end()), 1e-4f, 1e-4f);
  }
}

TEST_CASE("convolutions refuse mismatched kernels and tiny inputs", "[cpu][ops]") {
  kt::require_throws_with<ShapeError>(
      [] {
        ops::conv(ops::zeros(Shape{1, 5, 5, 3}), ops::zeros(Shape{3, 3, 4, 8}), Tensor());
      },
      {"conv", "3 input channels", "(1, 5, 5, 3)", "(3, 3, 4, 8)"});
  kt::require_throws_with<ShapeError>(
      [] {
        ops::conv(ops::zeros(Shape{1, 2, 2, 1}), ops::zeros(Shape{3, 3, 1, 1}), Tensor());
      },
      {"smaller than the kernel", "(1, 2, 2, 1)"});
  kt::require_throws_with<ShapeError>(
      [] {
        ops::conv(ops::zeros(Shape{10}), ops::zeros(Shape{3, 3, 1, 1}), Tensor());
      },
      {"rank 3", "or 4", "(10,)"});
  kt::require_throws_with<ValueError>(
      [] {
        ops::conv(ops::zeros(Shape{1, 5, 5, 1}), ops::zeros(Shape{3, 3, 1, 1}), Tensor(), {.padding = "full"});
      },
      {"'valid', 'same' or 'causal'", "'full'"});
  kt::require_throws_with<ValueError>(
      [] {
        ops::conv(ops::zeros(Shape{1, 5, 5, 1}), ops::zeros(Shape{3, 3, 1, 1}), Tensor(), {.strides = {0}});
      },
      {"strides must be >= 1"});
}

TEST_CASE("max and average pooling match naive windows", "[cpu][ops]") {
  for (const std::string padding : {"valid", "same"}) {
    INFO(padding);
    const Tensor x = kt::random_tensor(Shape{2, 5, 7, 3}, 10);
    const Tensor mx = ops::max_pool(x, {.pool_size = {2, 3}, .strides = {2, 2}, .padding = padding});
    const Tensor av = ops::average_pool(x, {.pool_size = {2, 3}, .strides = {2, 2}, .padding = padding});
    const auto gh = geometry(padding, 5, 2, 2, 1), gw = geometry(padding, 7, 3, 2, 1);
    REQUIRE(mx.shape() == Shape{2, gh.out, gw.out, 3});
    const auto xv = x.to_vector<float>(), mv = mx.to_vector<float>(), avv = av.to_vector<float>();
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t oy = 0; oy < gh.out; ++oy)
        for (int64_t ox = 0; ox < gw.out; ++ox)
          for (int64_t c = 0; c < 3; ++c) {
            float m = -1e30f;
            double s = 0;
            int count = 0;
            for (int64_t i = 0; i < 2; ++i)
              for (int64_t j = 0; j < 3; ++j) {
                const int64_t iy = oy * 2 - gh.pad_before + i, ix = ox * 2 - gw.pad_before + j;
                if (iy < 0 || iy >= 5 || ix < 0 || ix >= 7) continue;
                const float v = xv[static_cast<size_t>(((b * 5 + iy) * 7 + ix) * 3 + c)];
                m = std::max(m, v);
                s += v;
                ++count;
              }
            const size_t o = static_cast<size_t>(((b * gh.out + oy) * gw.out + ox) * 3 + c);
            CHECK(mv[o] == m);
            CHECK(std::fabs(avv[o] - s / count) < 1e-5);
          }
  }
  CHECK(ops::max_pool(kt::random_tensor(Shape{1, 6, 2}, 1)).shape() == Shape{1, 3, 2});  // 1-d
}

TEST_CASE("batch normalization matches the textbook formula", "[cpu][ops]") {
  const Tensor x = kt::random_tensor(Shape{4, 3, 2, 5}, 12, -2.f, 3.f);
  const Tensor gamma = kt::random_tensor(Shape{5}, 13, 0.5f, 1.5f), beta = kt::random_tensor(Shape{5}, 14);
  const auto r = ops::batch_norm_training(x, gamma, beta, 1e-3f);
  const auto xv = x.to_vector<float>(), gv = gamma.to_vector<float>(), bv = beta.to_vector<float>();
  std::vector<double> mean(5, 0), var(5, 0);
  for (size_t i = 0; i < xv.size(); ++i) mean[i % 5] += xv[i] / 24.0;
  for (size_t i = 0; i < xv.size(); ++i) var[i % 5] += (xv[i] - mean[i % 5]) * (xv[i] - mean[i % 5]) / 24.0;
  std::vector<float> expected(xv.size());
  for (size_t i = 0; i < xv.size(); ++i)
    expected[i] = static_cast<float>((xv[i] - mean[i % 5]) / std::sqrt(var[i % 5] + 1e-3) * gv[i % 5] + bv[i % 5]);
  kt::require_close(r.y.to_vector<float>(), expected, 1e-4f, 1e-4f);
  kt::require_close(r.mean.to_vector<float>(), std::vector<float>(mean.begin(), mean.end()), 1e-5f, 1e-5f);
  kt::require_close(r.variance.to_vector<float>(), std::vector<float>(var.begin(), var.end()), 1e-5f, 1e-4f);
  const Tensor inf = ops::batch_norm_inference(x, gamma, beta, r.mean, r.variance, 1e-3f);
  kt::require_close(inf.to_vector<float>(), expected, 1e-4f, 1e-4f);
  kt::require_throws_with<ShapeError>([&] { ops::batch_norm_training(x, ops::ones(Shape{4}), beta); },
                                      {"(5,)", "(4,)"});
}

TEST_CASE("layer normalization matches the textbook formula, fused or composed", "[cpu][ops]") {
  REQUIRE(default_backend().supports(Capability::fused_layer_norm));  // the CPU backend's oneDNN primitive
  struct Case {
    Shape shape;
    int64_t first_axis;
    bool gamma, beta;
    float lo, hi;
  };
  // Far from zero mean too (1000 +- 1): a one-pass variance would lose the digits there.
  for (const Case& cs : {Case{Shape{6, 16}, -1, true, true, -2.f, 3.f}, Case{Shape{2, 3, 4, 5}, 2, true, false, -1.f, 1.f},
                         Case{Shape{3, 7}, 1, false, true, 999.f, 1001.f}, Case{Shape{5, 33}, -1, false, false, -1.f, 1.f},
                         Case{Shape{4, 6}, 0, true, true, -1.f, 1.f}}) {
    INFO("shape " << cs.shape.to_string() << " from axis " << cs.first_axis << " gamma " << cs.gamma << " beta "
                  << cs.beta);
    const Tensor x = kt::random_tensor(cs.shape, 15, cs.lo, cs.hi);
    const size_t first = cs.shape.normalize_axis(cs.first_axis);
    const Shape params(std::vector<int64_t>(cs.shape.dims().begin() + static_cast<std::ptrdiff_t>(first),
                                            cs.shape.dims().end()));
    const Tensor gamma = cs.gamma ? kt::random_tensor(params, 16, 0.5f, 1.5f) : Tensor();
    const Tensor beta = cs.beta ? kt::random_tensor(params, 17) : Tensor();
    const auto xv = x.to_vector<float>();
    const auto cols = static_cast<size_t>(params.num_elements());
    std::vector<float> expected(xv.size());
    for (size_t row = 0; row < xv.size() / cols; ++row) {
      double mean = 0, var = 0;
      for (size_t k = 0; k < cols; ++k) mean += xv[row * cols + k] / static_cast<double>(cols);
      for (size_t k = 0; k < cols; ++k) {
        const double d = xv[row * cols + k] - mean;
        var += d * d / static_cast<double>(cols);
      }
      for (size_t k = 0; k < cols; ++k) {
        double v = (xv[row * cols + k] - mean) / std::sqrt(var + 1e-3);
        if (cs.gamma) v *= gamma.to_vector<float>()[k];
        if (cs.beta) v += beta.to_vector<float>()[k];
        expected[row * cols + k] = static_cast<float>(v);
      }
    }
    const Tensor y = ops::layer_normalization(x, gamma, beta, cs.first_axis, 1e-3f);
    REQUIRE(y.shape() == cs.shape);
    kt::require_close(y.to_vector<float>(), expected, 1e-4f, 1e-4f);
    // Under a tape the forward pass also keeps the statistics: the same numbers.
    Tensor watched = x;
    GradientTape tape;
    tape.watch(watched);
    kt::require_close(ops::layer_normalization(watched, gamma, beta, cs.first_axis, 1e-3f).to_vector<float>(),
                      expected, 1e-4f, 1e-4f);
    // bfloat16 data is normalized in float32 and rounded once (Keras computes the layer in float32).
    const Tensor low = ops::layer_normalization(ops::cast(x, DType::bfloat16), gamma, beta, cs.first_axis, 1e-3f);
    REQUIRE(low.dtype() == DType::bfloat16);
    if (cs.hi < 10.f) kt::require_close(ops::cast(low, DType::float32).to_vector<float>(), expected, 3e-2f, 2e-2f);
  }
  const Tensor x = kt::random_tensor(Shape{4, 5}, 18);
  kt::require_throws_with<ShapeError>([&] { ops::layer_normalization(x, ops::ones(Shape{4}), Tensor()); },
                                      {"gamma", "(5,)", "(4,)"});
  kt::require_throws_with<ShapeError>([&] { ops::layer_normalization(x, Tensor(), ops::ones(Shape{4, 5}), -1); },
                                      {"beta", "(5,)", "(4, 5)"});
  kt::require_throws_with<ValueError>([&] { ops::layer_normalization(x, Tensor(), Tensor(), -1, 0.f); },
                                      {"epsilon", "0"});
  kt::require_throws_with<TypeError>(
      [&] { ops::layer_normalization(ops::cast(x, DType::int32), Tensor(), Tensor()); }, {"floating", "int32"});
}

TEST_CASE("softmax, log_softmax and fused cross-entropy match direct formulas", "[cpu][ops]") {
  const Tensor z = kt::random_tensor(Shape{3, 4}, 15, -5.f, 5.f);
  const auto zv = z.to_vector<float>();
  std::vector<float> sm(12), lsm(12);
  for (int i = 0; i < 3; ++i) {
    double s = 0;
    for (int k = 0; k < 4; ++k) s += std::exp(static_cast<double>(zv[static_cast<size_t>(i * 4 + k)]));
    for (int k = 0; k < 4; ++k) {
      sm[static_cast<size_t>(i * 4 + k)] = static_cast<float>(std::exp(zv[static_cast<size_t>(i * 4 + k)]) / s);
      lsm[static_cast<size_t>(i * 4 + k)] = static_cast<float>(zv[static_cast<size_t>(i * 4 + k)] - std::log(s));
    }
  }
  kt::require_close(ops::softmax(z).to_vector<float>(), sm);
  kt::require_close(ops::log_softmax(z).to_vector<float>(), lsm);
  // Softmax along axis 0 equals softmax of the transpose.
  kt::require_close(ops::softmax(ops::transpose(z), 0).to_vector<float>(),
                    ops::transpose(ops::softmax(z)).to_vector<float>());
  const Tensor labels = Tensor::from_vector<int64_t>({3, 0, 1}, Shape{3});
  const auto loss = ops::softmax_cross_entropy(z, labels, true).to_vector<float>();
  kt::require_close(loss, {-lsm[3], -lsm[4], -lsm[9]}, 1e-5f, 1e-5f);
  const Tensor onehot = Tensor::from_vector<float>({0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0}, Shape{3, 4});
  kt::require_close(ops::softmax_cross_entropy(z, onehot, false).to_vector<float>(), loss, 1e-5f, 1e-5f);
  kt::require_throws_with<ValueError>(
      [&] {
        ops::softmax_cross_entropy(z, Tensor::from_vector<int64_t>({3, 4, 0}, Shape{3}), true);
      },
      {"label 4", "[0, 4)"});
  // Large logits stay finite.
  const Tensor big = Tensor::from_vector<float>({1000, 0}, Shape{1, 2});
  CHECK(std::isfinite(ops::log_softmax(big).to_vector<float>()[1]));
}

TEST_CASE("embedding gathers rows and refuses out-of-range ids", "[cpu][ops]") {
  const Tensor table = Tensor::from_vector<float>({0, 1, 10, 11, 20, 21}, Shape{3, 2});
  const Tensor ids = Tensor::from_vector<int32_t>({2, 0, 2, 1}, Shape{2, 2});
  const Tensor y = ops::embedding(table, ids);
  REQUIRE(y.shape() == Shape{2, 2, 2});
  CHECK(y.to_vector<float>() == std::vector<float>{20, 21, 0, 1, 20, 21, 10, 11});
  kt::require_throws_with<ValueError>(
      [&] {
        ops::embedding(table, Tensor::from_vector<int32_t>({1, 3}, Shape{2}));
      },
      {"id 3", "position 1", "[0, 3)"});
  kt::require_throws_with<ValueError>([&] { ops::embedding(table, Tensor::from_vector<int64_t>({-1}, Shape{1})); },
                                      {"id -1"});
  kt::require_throws_with<TypeError>([&] { ops::embedding(table, ops::zeros(Shape{2})); },
                                     {"int32 or int64", "float32"});
}
