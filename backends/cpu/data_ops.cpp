// Data movement, embedding, cross-entropy, random numbers and optimizer updates.
#include <cmath>
#include <cstring>

#include <omp.h>

#include "backends/cpu/cpu_backend.h"
#include "core/random.h"

namespace keras::cpu {
namespace {

const char* bytes(const Tensor& t) { return static_cast<const char*>(t.raw_data()); }
char* bytes(Tensor& t) { return static_cast<char*>(t.raw_data()); }

// Calls f(row, in_offset) for every row (all axes but the last) of `out`, where in_offset is the
// element offset in the source for that row given per-axis source strides.
template <typename F>
void for_each_row(const Shape& out, const std::vector<int64_t>& src_strides, int64_t base, F f) {
  const size_t r = out.rank();
  if (r == 0) {
    f(0, base);
    return;
  }
  const int64_t inner = out[r - 1];
  if (inner == 0) return;
  const int64_t rows = out.num_elements() / inner;
  parallel_for(
      rows,
      [&](int64_t row) {
        int64_t off = base, rest = row;
        for (size_t d = r - 1; d-- > 0;) {
          off += (rest % out[d]) * src_strides[d];
          rest /= out[d];
        }
        f(row, off);
      },
      std::max<int64_t>(1, (1 << 14) / inner));
}

// Rows for for_each_row when copying the block `part` of a contiguous tensor `whole`: trailing axes
// the block spans entirely are merged into one contiguous row (a batch of images (n, 28, 28, 1) is
// one row per image, not per pixel). Returns the merged block shape and the matching strides.
std::pair<Shape, std::vector<int64_t>> merged_rows(const Shape& part, const Shape& whole) {
  const auto strides = whole.strides();
  size_t k = part.rank();
  while (k > 1 && part[k - 1] == whole[k - 1]) --k;  // axes k.. are spanned entirely
  if (k == part.rank()) return {part, strides};
  std::vector<int64_t> dims(part.dims().begin(), part.dims().begin() + static_cast<std::ptrdiff_t>(k));
  int64_t inner = 1;
  for (size_t d = k - 1; d < part.rank(); ++d) inner *= part[d];
  dims.back() = inner;
  return {Shape(dims), std::vector<int64_t>(strides.begin(), strides.begin() + static_cast<std::ptrdiff_t>(k))};
}

int64_t offset_of(const std::vector<int64_t>& starts, const std::vector<int64_t>& strides) {
  int64_t off = 0;
  for (size_t i = 0; i < starts.size(); ++i) off += starts[i] * strides[i];
  return off;
}

template <typename I>
void check_ids(const Tensor& ids, int64_t limit, const char* op, const char* what) {
  const I* p = static_cast<const I*>(ids.raw_data());
  for (int64_t i = 0; i < ids.num_elements(); ++i)
    KCPP_CHECK(p[i] >= 0 && p[i] < limit, ValueError, "{}: {} {} at position {} is out of range [0, {})", op, what,
               static_cast<int64_t>(p[i]), i, limit);
}

int64_t read_id(const Tensor& ids, int64_t i) {
  return ids.dtype() == DType::int32 ? static_cast<const int32_t*>(ids.raw_data())[i]
                                     : static_cast<const int64_t*>(ids.raw_data())[i];
}

void check_index_tensor(const Tensor& ids, int64_t limit, const char* op, const char* what) {
  if (ids.dtype() == DType::int32)
    check_ids<int32_t>(ids, limit, op, what);
  else
    check_ids<int64_t>(ids, limit, op, what);
}

// Counter-based random bits: the same (key, counter) gives the same value on every backend.
inline float uniform01(uint64_t key, uint64_t counter) {
  return static_cast<float>(random::splitmix64(key ^ random::splitmix64(counter)) >> 40) * (1.f / 16777216.f);
}
inline float normal01(uint64_t key, uint64_t counter) {
  const float u1 = std::max(uniform01(key, 2 * counter), 1e-12f);
  const float u2 = uniform01(key, 2 * counter + 1);
  return std::sqrt(-2.f * std::log(u1)) * std::cos(6.2831853071795865f * u2);
}

}  // namespace

void CpuBackend::concat(const std::vector<Tensor>& inputs, int64_t axis, Tensor& y) {
  if (y.num_elements() == 0) return;
  const size_t es = dtype_size(y.dtype());
  int64_t outer = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= y.shape()[static_cast<size_t>(i)];
  const int64_t y_row = y.num_elements() / std::max<int64_t>(outer, 1);
  int64_t col = 0;
  for (const Tensor& t : inputs) {
    const int64_t t_row = t.num_elements() / std::max<int64_t>(outer, 1);
    if (t_row == 0) continue;
    const char* src = bytes(t);
    char* dst = bytes(y) + col * es;
    parallel_for(
        outer,
        [&](int64_t o) { std::memcpy(dst + o * y_row * es, src + o * t_row * es, static_cast<size_t>(t_row) * es); },
        std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(t_row, 1)));
    col += t_row;
  }
}

void CpuBackend::slice(const Tensor& x, const std::vector<int64_t>& starts, Tensor& y) {
  if (y.num_elements() == 0) return;
  const size_t es = dtype_size(x.dtype());
  const int64_t base = offset_of(starts, x.shape().strides());
  const auto [rows, xs] = merged_rows(y.shape(), x.shape());
  const int64_t inner = rows.rank() ? rows[rows.rank() - 1] : 1;
  for_each_row(rows, xs, base, [&](int64_t row, int64_t off) {
    std::memcpy(bytes(y) + row * inner * es, bytes(x) + off * es, static_cast<size_t>(inner) * es);
  });
}

void CpuBackend::slice_assign(const Tensor& x, const std::vector<int64_t>& starts, Tensor& y) {
  if (x.num_elements() == 0) return;
  const size_t es = dtype_size(x.dtype());
  const int64_t base = offset_of(starts, y.shape().strides());
  const auto [rows, ys] = merged_rows(x.shape(), y.shape());
  const int64_t inner = rows.rank() ? rows[rows.rank() - 1] : 1;
  for_each_row(rows, ys, base, [&](int64_t row, int64_t off) {
    std::memcpy(bytes(y) + off * es, bytes(x) + row * inner * es, static_cast<size_t>(inner) * es);
  });
}

void CpuBackend::pad(const Tensor& x, const std::vector<std::array<int64_t, 2>>& pads, Scalar value, Tensor& y) {
  fill(y, value);
  std::vector<int64_t> starts;
  for (const auto& p : pads) starts.push_back(p[0]);
  if (x.num_elements()) slice_assign(x, starts, y);
}

void CpuBackend::transpose(const Tensor& x, const std::vector<int64_t>& perm, Tensor& y) {
  const auto xs = x.shape().strides();
  std::vector<int64_t> src(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) src[i] = xs[static_cast<size_t>(perm[i])];
  const int64_t inner = y.rank() ? y.shape()[y.rank() - 1] : 1;
  const int64_t step = y.rank() ? src.back() : 1;
  const size_t es = dtype_size(x.dtype());
  auto run = [&]<typename T>() {
    const T* px = reinterpret_cast<const T*>(bytes(x));
    T* py = reinterpret_cast<T*>(bytes(y));
    for_each_row(y.shape(), src, 0, [&](int64_t row, int64_t off) {
      T* out = py + row * inner;
      for (int64_t i = 0; i < inner; ++i) out[i] = px[off + i * step];
    });
  };
  switch (es) {
    case 1:
      run.template operator()<uint8_t>();
      break;
    case 2:
      run.template operator()<uint16_t>();
      break;
    case 4:
      run.template operator()<uint32_t>();
      break;
    default:
      run.template operator()<uint64_t>();
      break;
  }
}

void CpuBackend::gather(const Tensor& x, const Tensor& indices, int64_t axis, Tensor& y) {
  if (y.num_elements() == 0) return;
  const int64_t d = x.shape()[static_cast<size_t>(axis)];
  check_index_tensor(indices, d, "take", "index");
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < static_cast<int64_t>(x.rank()); ++i) {
    if (i < axis) outer *= x.shape()[static_cast<size_t>(i)];
    if (i > axis) inner *= x.shape()[static_cast<size_t>(i)];
  }
  const int64_t n = indices.num_elements();
  const size_t row = static_cast<size_t>(inner) * dtype_size(x.dtype());
  parallel_for(
      outer * n,
      [&](int64_t on) {
        const int64_t o = on / n, j = on % n;
        std::memcpy(bytes(y) + static_cast<size_t>(on) * row,
                    bytes(x) + static_cast<size_t>(o * d + read_id(indices, j)) * row, row);
      },
      256);
}

void CpuBackend::scatter_add(const Tensor& dy, const Tensor& indices, int64_t axis, Tensor& dx) {
  KCPP_CHECK(dx.dtype() == DType::float32, TypeError, "scatter_add: expected float32, received {}",
             dtype_name(dx.dtype()));
  const int64_t d = dx.shape()[static_cast<size_t>(axis)];
  check_index_tensor(indices, d, "scatter_add", "index");
  fill(dx, 0);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < static_cast<int64_t>(dx.rank()); ++i) {
    if (i < axis) outer *= dx.shape()[static_cast<size_t>(i)];
    if (i > axis) inner *= dx.shape()[static_cast<size_t>(i)];
  }
  const int64_t n = indices.num_elements();
  const float* g = static_cast<const float*>(dy.raw_data());
  float* out = static_cast<float*>(dx.raw_data());
  // Parallel over outer rows only: repeated indices within a row must not race.
  parallel_for(
      outer,
      [&](int64_t o) {
        for (int64_t j = 0; j < n; ++j) {
          float* dst = out + (o * d + read_id(indices, j)) * inner;
          const float* src = g + (o * n + j) * inner;
          for (int64_t k = 0; k < inner; ++k) dst[k] += src[k];
        }
      },
      1);
}

void CpuBackend::embedding_forward(const Tensor& table, const Tensor& ids, Tensor& y) {
  if (y.num_elements() == 0) return;
  check_index_tensor(ids, table.dim(0), "Embedding", "id");
  const size_t row = static_cast<size_t>(table.dim(1)) * sizeof(float);
  parallel_for(
      ids.num_elements(),
      [&](int64_t i) {
        std::memcpy(bytes(y) + static_cast<size_t>(i) * row, bytes(table) + static_cast<size_t>(read_id(ids, i)) * row,
                    row);
      },
      256);
}

void CpuBackend::embedding_backward(const Tensor& dy, const Tensor& ids, Tensor& dtable) {
  check_index_tensor(ids, dtable.dim(0), "Embedding", "id");
  fill(dtable, 0);
  const int64_t dim = dtable.dim(1);
  const float* g = static_cast<const float*>(dy.raw_data());
  float* out = static_cast<float*>(dtable.raw_data());
  // Split the embedding dimension across threads: no two threads touch one element. One chunk per
  // thread, of at least 16 floats, so each thread's row loop stays long and vectorized.
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(dim / 16, omp_get_max_threads()));
  parallel_for(
      chunks,
      [&](int64_t c) {
        const int64_t begin = dim * c / chunks, end = dim * (c + 1) / chunks;
        for (int64_t i = 0; i < ids.num_elements(); ++i) {
          float* dst = out + read_id(ids, i) * dim;
          const float* src = g + i * dim;
          for (int64_t k = begin; k < end; ++k) dst[k] += src[k];
        }
      },
      ids.num_elements() * dim > (1 << 16) ? 1 : chunks + 1);
}

void CpuBackend::softmax_cross_entropy(const Tensor& logits, const Tensor& labels, bool sparse, Tensor& loss,
                                       Tensor* dlogits) {
  const int64_t n = logits.dim(0), c = logits.dim(1);
  if (sparse) check_index_tensor(labels, c, "softmax_cross_entropy", "label");
  const float* z = static_cast<const float*>(logits.raw_data());
  float* l = static_cast<float*>(loss.raw_data());
  float* dz = dlogits ? static_cast<float*>(dlogits->raw_data()) : nullptr;
  const float* t = sparse ? nullptr : static_cast<const float*>(labels.raw_data());
  parallel_for(
      n,
      [&](int64_t i) {
        const float* row = z + i * c;
        float mx = row[0];
        for (int64_t k = 1; k < c; ++k) mx = std::max(mx, row[k]);
        double s = 0;
        for (int64_t k = 0; k < c; ++k) s += std::exp(static_cast<double>(row[k] - mx));
        const float lse = mx + static_cast<float>(std::log(s));
        if (sparse) {
          const int64_t y = read_id(labels, i);
          l[i] = lse - row[y];
          if (dz)
            for (int64_t k = 0; k < c; ++k) dz[i * c + k] = std::exp(row[k] - lse) - (k == y ? 1.f : 0.f);
        } else {
          double acc = 0, tsum = 0;
          for (int64_t k = 0; k < c; ++k) {
            acc += static_cast<double>(t[i * c + k]) * (lse - row[k]);
            tsum += t[i * c + k];
          }
          l[i] = static_cast<float>(acc);
          if (dz)
            for (int64_t k = 0; k < c; ++k)
              dz[i * c + k] = static_cast<float>(std::exp(row[k] - lse) * tsum) - t[i * c + k];
        }
      },
      64);
}

void CpuBackend::random(RandomDistribution dist, const RandomKey& random_key, float a, float b, Tensor& y) {
  const uint64_t key =
      random_key.on_device.defined() ? *static_cast<const uint64_t*>(random_key.on_device.raw_data()) : random_key.value;
  float* p = static_cast<float*>(y.raw_data());
  const int64_t n = y.num_elements();
  switch (dist) {
    case RandomDistribution::uniform:
      parallel_for(n, [&](int64_t i) { p[i] = a + (b - a) * uniform01(key, static_cast<uint64_t>(i)); });
      return;
    case RandomDistribution::normal:
      parallel_for(n, [&](int64_t i) { p[i] = a + b * normal01(key, static_cast<uint64_t>(i)); });
      return;
    case RandomDistribution::truncated_normal:
      parallel_for(n, [&](int64_t i) {
        // Redraw beyond two standard deviations; each attempt uses its own counters.
        float v = 0;
        for (uint64_t attempt = 0; attempt < 1000; ++attempt) {
          v = normal01(key, static_cast<uint64_t>(i) + attempt * 0x100000000ULL);
          if (std::fabs(v) <= 2.f) break;
        }
        p[i] = a + b * v;
      });
      return;
  }
}

namespace {
// Also compiled for AVX-512 (chosen when the library loads): the hash's 64-bit multiplies vectorize
// there, eight masks at a time; the baseline build computes them one by one.
__attribute__((target_clones("default", "arch=x86-64-v4"))) void dropout_mask_range(float* p, int64_t begin,
                                                                                     int64_t end, uint64_t key,
                                                                                     float rate, float keep) {
  for (int64_t i = begin; i < end; ++i) p[i] = uniform01(key, static_cast<uint64_t>(i)) < rate ? 0.f : keep;
}
}  // namespace

void CpuBackend::dropout_mask(float rate, const RandomKey& random_key, Tensor& mask) {
  const uint64_t key =
      random_key.on_device.defined() ? *static_cast<const uint64_t*>(random_key.on_device.raw_data()) : random_key.value;
  float* p = static_cast<float*>(mask.raw_data());
  const float keep = 1.f / (1.f - rate);
  const int64_t n = mask.num_elements(), chunk = 4096, chunks = (n + chunk - 1) / chunk;
  parallel_for(
      chunks, [&](int64_t c) { dropout_mask_range(p, c * chunk, std::min(n, (c + 1) * chunk), key, rate, keep); },
      /*grain=*/4);
}

void CpuBackend::sgd_update(Tensor& variable, const Tensor& gradient, Tensor* momentum_buffer, const SGDAttrs& at) {
  float* w = static_cast<float*>(variable.raw_data());
  const float* g = static_cast<const float*>(gradient.raw_data());
  const int64_t n = variable.num_elements();
  const float lr = at.learning_rate_on_device.defined() ? *static_cast<const float*>(at.learning_rate_on_device.raw_data())
                                                         : at.learning_rate;
  const float mu = at.momentum;
  if (!momentum_buffer) {
    parallel_for(n, [&](int64_t i) { w[i] -= lr * g[i]; });
    return;
  }
  float* m = static_cast<float*>(momentum_buffer->raw_data());
  parallel_for(n, [&](int64_t i) {
    m[i] = mu * m[i] - lr * g[i];
    w[i] += at.nesterov ? mu * m[i] - lr * g[i] : m[i];
  });
}

void CpuBackend::adam_update(Tensor& variable, const Tensor& gradient, Tensor& m_t, Tensor& v_t, Tensor* vhat_t,
                             const AdamAttrs& at) {
  float* w = static_cast<float*>(variable.raw_data());
  const float* g = static_cast<const float*>(gradient.raw_data());
  float* m = static_cast<float*>(m_t.raw_data());
  float* v = static_cast<float*>(v_t.raw_data());
  float* vh = vhat_t ? static_cast<float*>(vhat_t->raw_data()) : nullptr;
  const double t = static_cast<double>(at.step);
  const float alpha =
      at.step_size_on_device.defined()
          ? *static_cast<const float*>(at.step_size_on_device.raw_data())
          : static_cast<float>(at.learning_rate * std::sqrt(1.0 - std::pow(at.beta_2, t)) / (1.0 - std::pow(at.beta_1, t)));
  const float b1 = 1.f - at.beta_1, b2 = 1.f - at.beta_2, eps = at.epsilon;
  parallel_for(variable.num_elements(), [&](int64_t i) {
    m[i] += (g[i] - m[i]) * b1;
    v[i] += (g[i] * g[i] - v[i]) * b2;
    float denom = v[i];
    if (vh) {
      vh[i] = std::max(vh[i], v[i]);
      denom = vh[i];
    }
    w[i] -= alpha * m[i] / (std::sqrt(denom) + eps);
  });
}

}  // namespace keras::cpu
