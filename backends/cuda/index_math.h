#pragma once
// The index arithmetic of the CUDA kernels: flat element indices split into coordinates. 64-bit
// integer division is a long software sequence on NVIDIA GPUs and 32-bit division some twenty
// instructions, so a division by a number fixed at launch (a dimension) is a multiply-high, an add
// and a shift where indices fit 32 bits (the round-up method of Granlund and Montgomery, as
// PyTorch's IntDivider). Plain C++ as well, without CUDA headers, so the CPU tests check it
// against 64-bit division (tests/backends/test_index_math.cpp).
#include <cstdint>

#ifdef __CUDACC__
#define KCPP_HOST_DEVICE __host__ __device__
#else
#define KCPP_HOST_DEVICE
#endif

namespace keras::cuda {

namespace kernels {
constexpr int kMaxRank = 8;

/// Shape and per-input strides (0 where broadcast) for broadcasting kernels.
struct Indexer {
  int rank = 0;
  int64_t dims[kMaxRank] = {};
  int64_t strides[3][kMaxRank] = {};  // up to three inputs
};
}  // namespace kernels

/// n / d and n % d for any n < 2^32 and 1 <= d < 2^32 (d = 0 is taken as 1: an empty dimension,
/// whose kernel never divides).
struct FastDivider {
  uint32_t d = 1, magic = 1;
  uint32_t shift = 0;

  FastDivider() = default;
  explicit FastDivider(uint32_t divisor) : d(divisor ? divisor : 1) {
    while (shift < 32 && (uint64_t{1} << shift) < d) ++shift;  // the least s with 2^s >= d
    // floor(2^32 (2^s - d) / d) + 1 < 2^32 for every d: see tests/backends/test_index_math.cpp.
    magic = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1);
  }
  KCPP_HOST_DEVICE uint32_t div(uint32_t n) const {
#ifdef __CUDA_ARCH__
    const uint32_t t = __umulhi(n, magic);
#else
    const uint32_t t = static_cast<uint32_t>((static_cast<uint64_t>(n) * magic) >> 32);
#endif
    return static_cast<uint32_t>((static_cast<uint64_t>(t) + n) >> shift);  // t + n needs 33 bits
  }
  KCPP_HOST_DEVICE uint32_t mod(uint32_t n) const { return n - div(n) * d; }
};

/// Whether every flat index of n elements fits FastDivider's 32 bits.
inline bool narrow_indices(int64_t n) { return n >= 0 && n <= int64_t{0xffffffff}; }

/// An Indexer with a divider per dimension, made by the launcher.
struct FastIndexer {
  kernels::Indexer ix;
  FastDivider dims[kernels::kMaxRank];
  bool narrow = false;  // every flat index below 2^32: split with the dividers
};
/// For a kernel over n elements.
inline FastIndexer fast_indexer(const kernels::Indexer& ix, int64_t n) {
  FastIndexer f;
  f.ix = ix;
  f.narrow = narrow_indices(n);
  if (f.narrow)
    for (int d = 0; d < ix.rank; ++d) f.dims[d] = FastDivider(static_cast<uint32_t>(ix.dims[d]));
  return f;
}

/// The element offset in input `which` of output element `flat`.
KCPP_HOST_DEVICE inline int64_t offset_of(const FastIndexer& f, int which, int64_t flat) {
  const kernels::Indexer& ix = f.ix;
  int64_t off = 0;
  if (f.narrow) {
    auto rest = static_cast<uint32_t>(flat);
    for (int d = ix.rank - 1; d >= 0; --d) {
      const uint32_t q = f.dims[d].div(rest);
      off += static_cast<int64_t>(rest - q * f.dims[d].d) * ix.strides[which][d];
      rest = q;
    }
    return off;
  }
  for (int d = ix.rank - 1; d >= 0; --d) {
    const int64_t idx = flat % ix.dims[d];
    flat /= ix.dims[d];
    off += idx * ix.strides[which][d];
  }
  return off;
}

/// i % c for the elements of (rows, c): a channel, a bias column.
struct ColumnIndex {
  int64_t c;
  FastDivider div;
  bool narrow;
  ColumnIndex(int64_t rows, int64_t columns)
      : c(columns), div(static_cast<uint32_t>(columns)), narrow(narrow_indices(rows * columns)) {}
  KCPP_HOST_DEVICE int64_t operator()(int64_t i) const {
    return narrow ? static_cast<int64_t>(div.mod(static_cast<uint32_t>(i))) : i % c;
  }
};

/// (o, j, k) of an element of an (outer, n, inner) gather or scatter: o before the axis, j the
/// position in the ids, k after the axis.
struct GatherIndex {
  int64_t n, inner;
  FastDivider ndiv, idiv;
  bool narrow;
  GatherIndex(int64_t outer, int64_t n_, int64_t inner_)
      : n(n_),
        inner(inner_),
        ndiv(static_cast<uint32_t>(n_)),
        idiv(static_cast<uint32_t>(inner_)),
        narrow(narrow_indices(outer * n_ * inner_)) {}
  KCPP_HOST_DEVICE void split(int64_t i, int64_t& o, int64_t& j, int64_t& k) const {
    if (narrow) {
      const auto r = static_cast<uint32_t>(i);
      const uint32_t q = idiv.div(r);
      k = r - q * idiv.d;
      const uint32_t p = ndiv.div(q);
      j = q - p * ndiv.d;
      o = p;
      return;
    }
    k = i % inner;
    j = (i / inner) % n;
    o = i / (inner * n);
  }
};

/// (batch, row, column, channel) of an element of an (n, h, w, c) tensor.
struct NhwcIndex {
  int64_t h, w, c;
  FastDivider hdiv, wdiv, cdiv;
  bool narrow;
  NhwcIndex(int64_t n, int64_t h_, int64_t w_, int64_t c_)
      : h(h_),
        w(w_),
        c(c_),
        hdiv(static_cast<uint32_t>(h_)),
        wdiv(static_cast<uint32_t>(w_)),
        cdiv(static_cast<uint32_t>(c_)),
        narrow(narrow_indices(n * h_ * w_ * c_)) {}
  KCPP_HOST_DEVICE void split(int64_t i, int64_t& b, int64_t& y, int64_t& x, int64_t& ch) const {
    if (narrow) {
      auto r = static_cast<uint32_t>(i);
      uint32_t q = cdiv.div(r);
      ch = r - q * cdiv.d;
      r = q;
      q = wdiv.div(r);
      x = r - q * wdiv.d;
      r = q;
      q = hdiv.div(r);
      y = r - q * hdiv.d;
      b = q;
      return;
    }
    ch = i % c;
    x = (i / c) % w;
    y = (i / (c * w)) % h;
    b = i / (c * w * h);
  }
};

}  // namespace keras::cuda
