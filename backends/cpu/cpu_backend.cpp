#include "backends/cpu/cpu_backend.h"

#include <omp.h>

#include <cstdlib>
#include <cstring>

#include "core/backend_plugin.h"
#include "core/config.h"

namespace keras::cpu {

// Allocator -----------------------------------------------------------------------------------------

size_t CachingAllocator::bucket_size(size_t nbytes) {
  // 64-byte granularity below 4 KiB, then quarter-powers of two: waste stays under 25%.
  if (nbytes <= 4096) return std::max<size_t>(64, (nbytes + 63) & ~size_t{63});
  size_t p = 4096;
  while (p < nbytes) p <<= 1;
  const size_t quarter = p / 8;
  size_t s = p / 2;
  while (s < nbytes) s += quarter;
  return s;
}

void* CachingAllocator::allocate(size_t nbytes) {
  const size_t size = bucket_size(nbytes);
  use_.add(static_cast<int64_t>(size));
  {
    std::lock_guard lock(mutex_);
    auto it = free_.find(size);
    if (it != free_.end()) {
      void* p = it->second;
      free_.erase(it);
      cached_bytes_ -= size;
      return p;
    }
  }
  fresh_.fetch_add(1, std::memory_order_relaxed);
  void* p = std::aligned_alloc(64, size);
  if (!p) use_.remove(static_cast<int64_t>(size));
  KCPP_CHECK(p, BackendError, "cpu backend: out of memory allocating {} bytes", size);
  return p;
}

void CachingAllocator::release(void* ptr, size_t nbytes) {
  const size_t size = bucket_size(nbytes);
  use_.remove(static_cast<int64_t>(size));
  constexpr size_t kMaxCached = size_t{4} << 30;  // beyond this, give memory back to the system
  std::lock_guard lock(mutex_);
  if (cached_bytes_ + size > kMaxCached) {
    std::free(ptr);
    return;
  }
  free_.emplace(size, ptr);
  cached_bytes_ += size;
}

CachingAllocator::~CachingAllocator() {
  for (auto& [size, p] : free_) std::free(p);
}

// Backend ------------------------------------------------------------------------------------------

namespace {
dnnl::engine& shared_engine() {
  static dnnl::engine* e = new dnnl::engine(dnnl::engine::kind::cpu, 0);  // never destroyed, as the backends
  return *e;
}
}  // namespace

CpuBackend::CpuBackend(int index)
    : index_(index),
      engine_(shared_engine()),
      default_threads_(omp_get_max_threads()),
      winograd_enabled_(settings().conv_winograd),
      bf16_families_(settings().native_low_precision == Settings::LowPrecisionKernels::none
                         ? 0u
                         : probe_bf16_families(engine_, settings().native_low_precision ==
                                                            Settings::LowPrecisionKernels::fast)),
      bf16_eltwise_(probe_bf16_eltwise(engine_)) {}

void CpuBackend::set_thread_parallelism(int threads) {
  // OpenMP's setting is per calling thread. It matters beyond the helper's own speed: every thread
  // that opens parallel regions keeps a team of its own, and once libgomp manages more threads than
  // there are cores it stops spinning between regions and sleeps instead. The training thread's
  // oneDNN calls then pay a futex wake-up per parallel region (imdb_lstm trained at 2/3 of its speed).
  omp_set_num_threads(threads > 0 ? threads : default_threads_);
}

dnnl::stream& CpuBackend::stream() {
  thread_local dnnl::stream s(engine_);  // the engine is shared by every CpuBackend: one stream per thread
  return s;
}

bool CpuBackend::supports(Capability c) const {
  return c == Capability::fused_matmul_activation || c == Capability::fused_conv_activation ||
         c == Capability::fused_rnn || c == Capability::fused_conv_affine || c == Capability::fused_conv_residual ||
         c == Capability::fused_gru_reset_before ||
         c == Capability::fused_conv_max_pool || c == Capability::fused_layer_norm;
}

bool CpuBackend::computes_low_precision(OpFamily family, DType dtype) const {
  return dtype == DType::bfloat16 && (bf16_families_ >> static_cast<int>(family) & 1u);
}

std::map<std::string, int64_t> CpuBackend::counters() const {
  return {{"primitives_created", primitives_created_.load()},
          {"weights_kept", static_cast<int64_t>(reordered_weights_.size())},
          {"primitive_cache_hits", cache_hits_.load()},
          {"fresh_allocations", allocator_.fresh_allocations()},
          {"fused_conv_max_pools", fused_conv_max_pools_.load()},
          {"blocked_poolings", blocked_poolings_.load()},
          {"weight_reorders", weight_reorders_.load()},
          {"weight_reuses", weight_reuses_.load()}};
}

MemoryInfo CpuBackend::memory_info() const {
  return {allocator_.use().now(), allocator_.use().peak()};
}
void CpuBackend::reset_peak_memory() { allocator_.use().reset_peak(); }

std::shared_ptr<Storage> CpuBackend::allocate(size_t nbytes) {
  if (nbytes == 0) return std::make_shared<Storage>(nullptr, 0, this);
  return std::make_shared<Storage>(allocator_.allocate(nbytes), nbytes, this);
}

void CpuBackend::deallocate(void* data, size_t nbytes) { allocator_.release(data, nbytes); }

void CpuBackend::copy_from_host(void* dst, const void* src, size_t n) { std::memcpy(dst, src, n); }
void CpuBackend::copy_to_host(void* dst, const void* src, size_t n) { std::memcpy(dst, src, n); }
void CpuBackend::copy(void* dst, const void* src, size_t n) {
  if (n < (1 << 20)) {
    std::memcpy(dst, src, n);
    return;
  }
  const int64_t chunks = static_cast<int64_t>((n + (1 << 18) - 1) >> 18);
  parallel_for(
      chunks,
      [&](int64_t c) {
        const size_t begin = static_cast<size_t>(c) << 18;
        std::memcpy(static_cast<char*>(dst) + begin, static_cast<const char*>(src) + begin,
                    std::min<size_t>(size_t{1} << 18, n - begin));
      },
      2);
}

const CachedPrimitive& CpuBackend::cached(const std::string& key, const std::function<CachedPrimitive()>& make) {
  {
    std::lock_guard lock(cache_mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      cache_hits_.fetch_add(1, std::memory_order_relaxed);
      return it->second;
    }
  }
  CachedPrimitive p = make();
  if (p.primitive) {
    const dnnl_memory_desc_t* pad =
        dnnl_primitive_desc_query_md(p.primitive.get_primitive_desc(), dnnl_query_scratchpad_md, 0);
    if (pad) p.scratchpad_md = dnnl::memory::desc(*pad);
  }
  primitives_created_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(cache_mutex_);
  return cache_.emplace(key, std::move(p)).first->second;  // unordered_map references are stable
}

dnnl::primitive_attr user_scratchpad(dnnl::primitive_attr attr) {
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

void CpuBackend::execute(const CachedPrimitive& p, std::unordered_map<int, dnnl::memory> args) {
  std::shared_ptr<Storage> pad;
  if (const size_t bytes = p.scratchpad_md.get_size()) {
    pad = scratch(bytes);
    args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(p.scratchpad_md, engine_, pad->data()));
  }
  KCPP_DNNL(p.primitive.execute(stream(), args));
  stream().wait();
}

std::string md_key(const dnnl::memory::desc& md) {
  const dnnl_memory_desc_t& d = md.data;
  fmt::memory_buffer k;
  fmt::format_to(std::back_inserter(k), "{}:{}:{}", d.ndims, static_cast<int>(d.data_type),
                 static_cast<int>(d.format_kind));
  for (int i = 0; i < d.ndims; ++i) fmt::format_to(std::back_inserter(k), ",{}", d.dims[i]);
  if (d.format_kind == dnnl_blocked) {
    const auto& b = d.format_desc.blocking;
    for (int i = 0; i < d.ndims; ++i) fmt::format_to(std::back_inserter(k), "s{}", b.strides[i]);
    for (int i = 0; i < b.inner_nblks; ++i)
      fmt::format_to(std::back_inserter(k), "b{}i{}", b.inner_blks[i], b.inner_idxs[i]);
  } else if (d.format_kind == dnnl_format_kind_wino) {
    // Winograd weights come in several layouts (F(2x2,3x3), F(4x4,3x3), ...) of one format kind:
    // a reorder cached for one must never serve another.
    const auto& w = d.format_desc.wino_desc;
    fmt::format_to(std::back_inserter(k), "w{}r{}a{}i{}o{}ib{}ob{}i2{}o2{}s{}z{}", static_cast<int>(w.wino_format), w.r,
                   w.alpha, w.ic, w.oc, w.ic_block, w.oc_block, w.ic2_block, w.oc2_block, w.adj_scale, w.size);
  } else if (d.format_kind == dnnl_format_kind_rnn_packed) {
    const auto& r = d.format_desc.rnn_packed_desc;
    fmt::format_to(std::back_inserter(k), "p{}n{}ld{}z{}", static_cast<int>(r.format), r.n_parts, r.ldb, r.size);
    for (int i = 0; i < r.n_parts; ++i) fmt::format_to(std::back_inserter(k), "|{}:{}", r.parts[i], r.part_pack_size[i]);
  }
  return fmt::to_string(k);
}

void CpuBackend::reorder(const dnnl::memory::desc& from, void* src, const dnnl::memory::desc& to, void* dst) {
  const auto& p = cached("reorder|" + md_key(from) + "|" + md_key(to), [&] {
    CachedPrimitive c;
    c.primitive = KCPP_DNNL(dnnl::reorder(dnnl::reorder::primitive_desc(engine_, from, engine_, to, user_scratchpad())));
    return c;
  });
  dnnl::memory s(from, engine_, src), d(to, engine_, dst);
  execute(p, {{DNNL_ARG_FROM, s}, {DNNL_ARG_TO, d}});
}

std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out) {
  std::vector<int64_t> strides(out.rank(), 0);
  const auto own = s.strides();
  const size_t off = out.rank() - s.rank();
  for (size_t i = 0; i < s.rank(); ++i) strides[off + i] = s[i] == 1 ? 0 : own[i];
  return strides;
}

}  // namespace keras::cpu

// Plugin entry point -----------------------------------------------------------------------------------

namespace {
int cpu_score(char*, size_t) { return 10; }  // always runs; a GPU backend should outrank it
keras::Backend* cpu_create(int index) { return new keras::cpu::CpuBackend(index < 0 ? 0 : index); }
int cpu_device_count() { return -1; }  // logical devices: as many as asked (data-parallel replicas, tests)
const KerascppBackendDescriptor kDescriptor{KERASCPP_BACKEND_ABI_VERSION, "cpu", &cpu_score, &cpu_create,
                                            &cpu_device_count};
}  // namespace

extern "C" KERASCPP_API const KerascppBackendDescriptor* kerascpp_backend_descriptor() { return &kDescriptor; }
