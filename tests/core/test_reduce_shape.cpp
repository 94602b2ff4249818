#include <cmath>
#include <numeric>

#include "tests/support/test_support.h"

using namespace keras;

namespace {
// Naive reduction of a (2, 3, 4) tensor over a set of axes, keepdims.
std::vector<float> naive_reduce(const std::vector<float>& x, std::vector<bool> reduce, const std::string& op) {
  const int d[3] = {2, 3, 4};
  int od[3];
  for (int i = 0; i < 3; ++i) od[i] = reduce[static_cast<size_t>(i)] ? 1 : d[i];
  std::vector<std::vector<double>> buckets(static_cast<size_t>(od[0] * od[1] * od[2]));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) {
        const int o = (reduce[0] ? 0 : i) * od[1] * od[2] + (reduce[1] ? 0 : j) * od[2] + (reduce[2] ? 0 : k);
        buckets[static_cast<size_t>(o)].push_back(x[static_cast<size_t>(i * 12 + j * 4 + k)]);
      }
  std::vector<float> out;
  for (auto& b : buckets) {
    const double s = std::accumulate(b.begin(), b.end(), 0.0), m = s / static_cast<double>(b.size());
    double v = 0;
    for (double e : b) v += (e - m) * (e - m);
    if (op == "sum") out.push_back(static_cast<float>(s));
    if (op == "mean") out.push_back(static_cast<float>(m));
    if (op == "max") out.push_back(static_cast<float>(*std::max_element(b.begin(), b.end())));
    if (op == "min") out.push_back(static_cast<float>(*std::min_element(b.begin(), b.end())));
    if (op == "var") out.push_back(static_cast<float>(v / static_cast<double>(b.size())));
  }
  return out;
}
}  // namespace

TEST_CASE("reductions over any axes match a naive loop", "[cpu][ops]") {
  const Tensor x = kt::random_tensor(Shape{2, 3, 4}, 11);
  const auto xv = x.to_vector<float>();
  const std::vector<std::pair<std::vector<int64_t>, std::vector<bool>>> cases = {
      {{0}, {true, false, false}},   {{1}, {false, true, false}},
      {{-1}, {false, false, true}},  {{0, 2}, {true, false, true}},  // not contiguous: goes through a transpose
      {{0, 1}, {true, true, false}}, {{}, {true, true, true}}};
  for (const auto& [axes, mask] : cases) {
    INFO("axes " << axes.size());
    kt::require_close(ops::sum(x, axes, true).to_vector<float>(), naive_reduce(xv, mask, "sum"));
    kt::require_close(ops::mean(x, axes, true).to_vector<float>(), naive_reduce(xv, mask, "mean"));
    kt::require_close(ops::max(x, axes, true).to_vector<float>(), naive_reduce(xv, mask, "max"));
    kt::require_close(ops::min(x, axes, true).to_vector<float>(), naive_reduce(xv, mask, "min"));
    kt::require_close(ops::var(x, axes, true).to_vector<float>(), naive_reduce(xv, mask, "var"));
  }
  CHECK(ops::sum(x, {0, 2}).shape() == Shape{3});
  CHECK(ops::sum(x, {0, 2}, true).shape() == Shape{1, 3, 1});
  CHECK(ops::sum(x).shape() == Shape{});
  CHECK(ops::sum(Tensor::from_vector<int32_t>({1, 2, 3}, Shape{3})).item() == 6);
  CHECK(ops::prod(Tensor::from_vector<float>({1, 2, 3, 4}, Shape{2, 2}), {1}).to_vector<float>() ==
        std::vector<float>{2, 12});
}

TEST_CASE("argmax and argmin return the first extreme index as int64", "[cpu][ops]") {
  const Tensor x = Tensor::from_vector<float>({1, 7, 7, 2, 9, 0, 3, 9}, Shape{2, 4});
  CHECK(ops::argmax(x).dtype() == DType::int64);
  CHECK(ops::argmax(x).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  CHECK(ops::argmin(x, 1).to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  CHECK(ops::argmax(x, 0).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0, 1});
  CHECK(ops::argmax(x, 0, true).shape() == Shape{1, 4});
}

TEST_CASE("reductions refuse bad axes and empty inputs", "[cpu][ops]") {
  const Tensor x = ops::zeros(Shape{2, 3});
  kt::require_throws_with<ValueError>([&] { ops::sum(x, {2}); }, {"sum", "axis 2", "rank 2"});
  kt::require_throws_with<ValueError>([&] { ops::sum(x, {1, -1}); }, {"repeated axis"});
  kt::require_throws_with<ValueError>([] { ops::max(ops::zeros(Shape{0, 3})); }, {"max", "empty", "(0, 3)"});
  CHECK(ops::sum(ops::zeros(Shape{0, 3}), {0}).to_vector<float>() == std::vector<float>{0, 0, 0});
}

TEST_CASE("reshape, transpose, concatenate, split, slice, pad and take match naive indexing", "[cpu][ops]") {
  std::vector<float> v(24);
  std::iota(v.begin(), v.end(), 0.f);
  const Tensor x = Tensor::from_vector(v, Shape{2, 3, 4});
  CHECK(ops::reshape(x, {4, -1}).shape() == Shape{4, 6});
  kt::require_throws_with<ShapeError>([&] { ops::reshape(x, {5, -1}); }, {"(2, 3, 4)", "(5, -1)"});
  kt::require_throws_with<ValueError>([&] { ops::reshape(x, {-1, -1}); }, {"only one dimension"});

  const Tensor t = ops::transpose(x, {2, 0, 1});
  REQUIRE(t.shape() == Shape{4, 2, 3});
  const auto tv = t.to_vector<float>();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        CHECK(tv[static_cast<size_t>(k * 6 + i * 3 + j)] == v[static_cast<size_t>(i * 12 + j * 4 + k)]);
  kt::require_throws_with<ValueError>([&] { ops::transpose(x, {0, 0, 1}); }, {"not a permutation"});

  const Tensor c = ops::concatenate({x, ops::ones(Shape{2, 1, 4})}, 1);
  REQUIRE(c.shape() == Shape{2, 4, 4});
  CHECK(c.to_vector<float>()[12] == 1.f);
  CHECK(c.to_vector<float>()[16] == 12.f);
  kt::require_throws_with<ShapeError>(
      [&] {
        ops::concatenate({x, ops::ones(Shape{2, 1, 5})}, 1);
      },
      {"(2, 3, 4)", "(2, 1, 5)"});

  const auto parts = ops::split(x, {1, 3}, -1);
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].shape() == Shape{2, 3, 1});
  CHECK(parts[1].to_vector<float>()[0] == 1.f);
  CHECK(parts[1].to_vector<float>()[3] == 5.f);
  kt::require_throws_with<ShapeError>([&] { ops::split(x, {1, 2}, -1); }, {"add up to 3", "size 4"});

  const Tensor s = ops::slice(x, {1, 1, 1}, {1, 2, -1});
  CHECK(s.shape() == Shape{1, 2, 3});
  CHECK(s.to_vector<float>() == std::vector<float>{17, 18, 19, 21, 22, 23});
  kt::require_throws_with<ValueError>([&] { ops::slice(x, {1, 2, 0}, {1, 2, 4}); }, {"out of range", "axis 1"});
  {
    // Blocks whose trailing axes are whole copy as longer rows: check against naive indexing, with
    // offsets on the partial axes, and the same blocks written back by pad.
    const Shape big{4, 5, 3, 2};
    std::vector<float> v(static_cast<size_t>(big.num_elements()));
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
    const Tensor t = Tensor::from_vector(v, big);
    const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> blocks = {
        {{1, 2, 0, 0}, {2, 3, 3, 2}}, {{2, 0, 0, 0}, {2, 5, 3, 2}}, {{0, 1, 1, 0}, {4, 2, 2, 2}},
        {{0, 0, 0, 1}, {4, 5, 3, 1}}, {{0, 0, 0, 0}, {4, 5, 3, 2}}};
    for (const auto& [start, size] : blocks) {
      std::vector<float> expected;
      for (int64_t a = start[0]; a < start[0] + size[0]; ++a)
        for (int64_t b = start[1]; b < start[1] + size[1]; ++b)
          for (int64_t c = start[2]; c < start[2] + size[2]; ++c)
            for (int64_t d = start[3]; d < start[3] + size[3]; ++d) expected.push_back(v[static_cast<size_t>(((a * 5 + b) * 3 + c) * 2 + d)]);
      const Tensor block = ops::slice(t, start, size);
      CHECK(block.to_vector<float>() == expected);
      std::vector<std::array<int64_t, 2>> pads;
      for (size_t k = 0; k < 4; ++k) pads.push_back({start[k], big[k] - start[k] - size[k]});
      const auto back = ops::pad(block, pads, -1.f).to_vector<float>();
      const auto again = ops::slice(Tensor::from_vector(back, big), start, size).to_vector<float>();
      CHECK(again == expected);
      int64_t padded = 0;
      for (float f : back) padded += f == -1.f;
      CHECK(padded == big.num_elements() - block.num_elements());
    }
  }

  const Tensor p = ops::pad(ops::ones(Shape{1, 2}), {{{0, 1}}, {{2, 0}}}, 5.f);
  CHECK(p.shape() == Shape{2, 4});
  CHECK(p.to_vector<float>() == std::vector<float>{5, 5, 1, 1, 5, 5, 5, 5});

  const Tensor idx = Tensor::from_vector<int32_t>({2, 0, 2}, Shape{3});
  const Tensor g = ops::take(x, idx, 1);
  REQUIRE(g.shape() == Shape{2, 3, 4});
  CHECK(g.to_vector<float>()[0] == 8.f);
  CHECK(g.to_vector<float>()[4] == 0.f);
  kt::require_throws_with<ValueError>(
      [&] {
        ops::take(x, Tensor::from_vector<int64_t>({0, 3}, Shape{2}), 1);
      },
      {"take", "index 3", "[0, 3)"});
  kt::require_throws_with<TypeError>([&] { ops::take(x, ops::zeros(Shape{2}), 1); }, {"int32 or int64"});
  CHECK(ops::squeeze(ops::zeros(Shape{1, 3, 1})).shape() == Shape{3});
  CHECK(ops::expand_dims(ops::zeros(Shape{3}), -1).shape() == Shape{3, 1});
  CHECK(ops::broadcast_to(Tensor::from_vector<float>({1, 2}, Shape{2}), Shape{3, 2}).to_vector<float>() ==
        std::vector<float>{1, 2, 1, 2, 1, 2});
}
