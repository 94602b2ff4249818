// The CUDA kernels' index arithmetic (backends/cuda/index_math.h), checked on the CPU against
// 64-bit division: the same code runs in the kernels, where a wrong quotient would send a
// broadcast, a transpose, a batch norm or a pooling window to the wrong element.
#include <random>

#include "backends/cuda/index_math.h"
#include "tests/support/test_support.h"

using namespace keras::cuda;

namespace {
void check_against_division(uint32_t d, uint32_t n) {
  const FastDivider f(d);
  if (f.div(n) != n / d || f.mod(n) != n % d) {
    INFO("divisor " << d << ", dividend " << n << ": expected " << n / d << " r " << n % d << ", received " << f.div(n)
                    << " r " << f.mod(n));
    FAIL();
  }
}
}  // namespace

TEST_CASE("FastDivider gives n / d and n % d for every 32-bit dividend and divisor", "[cpu][cuda-index]") {
  constexpr uint32_t kMax = 0xffffffffu;
  // Divisors around every power of two (where the shift changes and the magic number is largest),
  // small ones (channels, widths), and the largest; dividends at the edges of their quotients and
  // at the top of the range, where t + n needs a 33rd bit.
  std::vector<uint32_t> divisors;
  for (uint32_t d = 1; d <= 1024; ++d) divisors.push_back(d);
  for (int s = 1; s < 32; ++s)
    for (int64_t delta = -2; delta <= 2; ++delta)
      if ((int64_t{1} << s) + delta > 0) divisors.push_back(static_cast<uint32_t>((int64_t{1} << s) + delta));
  divisors.push_back(kMax);
  divisors.push_back(kMax - 1);
  for (uint32_t d : divisors) {
    for (uint32_t n = 0; n < 2048; ++n) check_against_division(d, n);
    for (uint32_t n = kMax; n > kMax - 2048; --n) check_against_division(d, n);
    for (uint64_t q : {uint64_t{1}, uint64_t{7}, uint64_t{1000}, uint64_t{kMax} / d})
      for (int64_t delta = -1; delta <= 1; ++delta) {
        const int64_t n = static_cast<int64_t>(q * d) + delta;
        if (n >= 0 && n <= kMax) check_against_division(d, static_cast<uint32_t>(n));
      }
  }
  // Random pairs over the whole range.
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 2'000'000; ++i) {
    const auto d = static_cast<uint32_t>(rng() >> (32 + rng() % 32));
    check_against_division(d ? d : 1, static_cast<uint32_t>(rng()));
  }
  // Every magic number fits in 32 bits (the constructor would truncate it otherwise).
  for (uint32_t d : divisors) {
    uint32_t shift = 0;
    while (shift < 32 && (uint64_t{1} << shift) < d) ++shift;
    CHECK(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1 < (uint64_t{1} << 32));
  }
  // An empty dimension's divider divides by 1.
  CHECK(FastDivider(0).div(5) == 5);
}

TEST_CASE("Broadcast offsets, batch-norm columns and NHWC coordinates match 64-bit index arithmetic",
          "[cpu][cuda-index]") {
  std::mt19937_64 rng(7);
  // Reference: the coordinates of `flat` in `dims`, dotted with the strides.
  auto reference_offset = [](const kernels::Indexer& ix, int which, int64_t flat) {
    int64_t off = 0;
    for (int d = ix.rank - 1; d >= 0; --d) {
      off += (flat % ix.dims[d]) * ix.strides[which][d];
      flat /= ix.dims[d];
    }
    return off;
  };
  for (int round = 0; round < 300; ++round) {
    kernels::Indexer ix;
    ix.rank = 1 + static_cast<int>(rng() % kernels::kMaxRank);
    int64_t n = 1;
    for (int d = 0; d < ix.rank; ++d) {
      ix.dims[d] = 1 + static_cast<int64_t>(rng() % (d % 3 == 0 ? 300 : 7));
      n *= ix.dims[d];
    }
    for (int which = 0; which < 3; ++which)  // a broadcast input has stride 0 somewhere
      for (int d = 0, stride = 1; d < ix.rank; ++d) ix.strides[which][d] = rng() % 4 == 0 ? 0 : stride++;
    const FastIndexer f = fast_indexer(ix, n);
    REQUIRE(f.narrow == (n <= 0xffffffffLL));
    for (int k = 0; k < 200; ++k) {
      const int64_t flat = static_cast<int64_t>(rng() % static_cast<uint64_t>(n));
      for (int which = 0; which < 3; ++which)
        if (offset_of(f, which, flat) != reference_offset(ix, which, flat)) {
          INFO("rank " << ix.rank << ", flat " << flat << ", input " << which);
          CHECK(offset_of(f, which, flat) == reference_offset(ix, which, flat));
        }
    }
  }
  // Indices past 2^32 take the 64-bit path: (70000, 70000) elements.
  kernels::Indexer big;
  big.rank = 2;
  big.dims[0] = big.dims[1] = 70000;
  big.strides[0][0] = 1;
  big.strides[0][1] = 70000;  // a transpose
  const FastIndexer wide = fast_indexer(big, 70000LL * 70000LL);
  CHECK_FALSE(wide.narrow);
  CHECK(offset_of(wide, 0, 70000LL * 69999 + 12345) == 12345LL * 70000 + 69999);

  for (const auto& [rows, c] :
       std::vector<std::pair<int64_t, int64_t>>{{64 * 56 * 56, 64}, {3, 1000}, {1, 1}, {100000, 50000}}) {
    const ColumnIndex column(rows, c);
    CHECK(column.narrow == (rows * c <= 0xffffffffLL));
    for (int k = 0; k < 10000; ++k) {
      const int64_t i = static_cast<int64_t>(rng() % static_cast<uint64_t>(rows * c));
      if (column(i) != i % c) CHECK(column(i) == i % c);
    }
    CHECK(column(rows * c - 1) == c - 1);
  }

  for (const auto& s : std::vector<std::array<int64_t, 4>>{
           {128, 112, 112, 64}, {1, 1, 1, 1}, {3, 7, 5, 3}, {2, 35, 35, 288}, {4096, 600, 600, 10}}) {
    const NhwcIndex index(s[0], s[1], s[2], s[3]);
    const int64_t total = s[0] * s[1] * s[2] * s[3];
    CHECK(index.narrow == (total <= 0xffffffffLL));
    for (int k = 0; k < 10000; ++k) {
      const int64_t i = k == 0 ? total - 1 : static_cast<int64_t>(rng() % static_cast<uint64_t>(total));
      int64_t b, y, x, ch;
      index.split(i, b, y, x, ch);
      if (((b * s[1] + y) * s[2] + x) * s[3] + ch != i || y >= s[1] || x >= s[2] || ch >= s[3]) {
        INFO("shape " << s[0] << "x" << s[1] << "x" << s[2] << "x" << s[3] << ", index " << i);
        CHECK(((b * s[1] + y) * s[2] + x) * s[3] + ch == i);
      }
    }
  }
}

TEST_CASE("Gather coordinates (outer, position, inner) match 64-bit index arithmetic", "[cpu][cuda-index]") {
  std::mt19937_64 rng(9);
  // Embedding (outer 1), take along a middle axis, a single id, and one past 2^32 elements.
  for (const auto& s : std::vector<std::array<int64_t, 3>>{
           {1, 12800, 128}, {6, 5, 7}, {1, 1, 1}, {3, 1, 100000}, {70000, 3, 65537}, {1, 4095, 1048577}, {1, 4096, 1048577}}) {
    const GatherIndex index(s[0], s[1], s[2]);
    const int64_t total = s[0] * s[1] * s[2];
    CHECK(index.narrow == (total <= 0xffffffffLL));
    for (int t = 0; t < 10000; ++t) {
      const int64_t i = t == 0 ? total - 1 : static_cast<int64_t>(rng() % static_cast<uint64_t>(total));
      int64_t o, j, k;
      index.split(i, o, j, k);
      if ((o * s[1] + j) * s[2] + k != i || o >= s[0] || j >= s[1] || k >= s[2]) {
        INFO("shape " << s[0] << "x" << s[1] << "x" << s[2] << ", index " << i);
        CHECK((o * s[1] + j) * s[2] + k == i);
        CHECK(j < s[1]);
        CHECK(k < s[2]);
      }
    }
  }
}
