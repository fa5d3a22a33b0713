// Small-M float32 GEMM with B packed once (sgemm_small.h).
//
// Why: a batch-1 forward of a dense autoencoder is four products of one row by a weight. The
// general kernel (sgemm_avx512.cpp) packs B on every call, and for x W^T that packing transposes
// the whole weight in registers: with one row of A that costs more than the product. Here W^T is
// packed once into 64-wide column panels (cached per weight and version, below), and the kernel
// streams each panel once per tile of up to 6 rows, holding a 6 x 64 block of C in 24 zmm
// registers. With few rows the FMA chains are too few to hide the FMA latency, so the k loop is
// unrolled into U independent accumulator sets (U = 4, 2, 1 for 1-3, 4-7 and 8+ accumulators)
// that are summed before the store. Bias and relu are applied in the store, as in the general
// kernel.
#include "sgemm_small.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "../../autograd/error.h"
#include "../../autograd/storage.h"
#include "isa.h"
#include "vec_math.h"
#include "workers.h"

namespace latent::cpu {

size_t PackedB::bytes() const {
  const int64_t padded = (n + 15) / 16 * 16;
  return sizeof(float) * static_cast<size_t>(padded * k);
}

std::shared_ptr<const PackedB> pack_b_small(int64_t k, int64_t n, const float* b, int64_t stride_k, int64_t stride_n,
                                            int64_t panel_width) {
  auto packed = std::make_shared<PackedB>();
  packed->k = k;
  packed->n = n;
  packed->panel = panel_width;
  const size_t bytes = std::max<size_t>(64, (packed->bytes() + 63) / 64 * 64);
  packed->data = {static_cast<float*>(std::aligned_alloc(64, bytes)), &std::free};
  if (!packed->data) fail("linear", "out of memory packing a {} x {} weight ({} bytes)", n, k, bytes);
  float* dst = packed->data.get();
  for (int64_t j0 = 0; j0 < n; j0 += panel_width) {
    const int64_t cols = std::min(panel_width, n - j0), width = (cols + 15) / 16 * 16;
    float* panel = dst + j0 * k;
    for (int64_t p = 0; p < k; ++p) {
      float* row = panel + p * width;
      const float* src = b + p * stride_k + j0 * stride_n;
      for (int64_t j = 0; j < cols; ++j) row[j] = src[j * stride_n];
      for (int64_t j = cols; j < width; ++j) row[j] = 0.0f;
    }
  }
  return packed;
}

#if defined(__x86_64__) && defined(__GNUC__)

namespace {

constexpr int kMaxMR = 6;  // rows of C per tile (6 x 4 accumulators)

#define LATENT_AVX512_INLINE LATENT_TARGET_AVX512 __attribute__((always_inline)) inline

LATENT_AVX512_INLINE __mmask16 lanes(int64_t count) {
  return count >= 16 ? __mmask16(0xFFFF) : count <= 0 ? __mmask16(0) : __mmask16((1u << count) - 1u);
}

/// C[0:MR, 0:cols] = A[0:MR, 0:k] Bp (+ bias, relu or sigmoid), Bp one panel of 16 * NV columns.
template <int MR, int NV>
LATENT_TARGET_AVX512 void small_kernel(int64_t k, const float* a, int64_t lda, const float* bp, float* c,
                                       int64_t ldc, int64_t cols, const float* bias, bool relu, bool sigmoid) {
  constexpr int kAcc = MR * NV;
  constexpr int U = kAcc >= 8 ? 1 : kAcc >= 4 ? 2 : 4;  // independent accumulator sets
  constexpr int W = 16 * NV;
  __m512 acc[U][MR][NV];
#pragma GCC unroll 4
  for (int u = 0; u < U; ++u)
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[u][i][v] = _mm512_setzero_ps();
  const float* row[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) row[i] = a + i * lda;
  int64_t p = 0;
  for (; p + U <= k; p += U) {
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) {
      __m512 b[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) b[v] = _mm512_load_ps(bp + (p + u) * W + 16 * v);
#pragma GCC unroll 6
      for (int i = 0; i < MR; ++i) {
        const __m512 ai = _mm512_set1_ps(row[i][p + u]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[u][i][v] = _mm512_fmadd_ps(ai, b[v], acc[u][i][v]);
      }
    }
  }
  for (; p < k; ++p) {
    __m512 b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = _mm512_load_ps(bp + p * W + 16 * v);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(row[i][p]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[0][i][v] = _mm512_fmadd_ps(ai, b[v], acc[0][i][v]);
    }
  }
  __mmask16 mask[NV];
  __m512 bias_v[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    mask[v] = lanes(cols - 16 * v);
    bias_v[v] = bias ? _mm512_maskz_loadu_ps(mask[v], bias + 16 * v) : _mm512_setzero_ps();
  }
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      __m512 r = acc[0][i][v];
#pragma GCC unroll 4
      for (int u = 1; u < U; ++u) r = _mm512_add_ps(r, acc[u][i][v]);
      r = _mm512_add_ps(r, bias_v[v]);
      if (relu) r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, zero, _CMP_GT_OQ), r);  // NaN -> 0, as ReluF32
      if (sigmoid) r = (__m512)vx::sigmoid<16>((vx::Lanes<16>::F)r);  // bit for bit SigmoidF32
      _mm512_mask_storeu_ps(c + i * ldc + 16 * v, mask[v], r);
    }
  }
}

using SmallKernel = void (*)(int64_t, const float*, int64_t, const float*, float*, int64_t, int64_t, const float*,
                             bool, bool);

template <int MR, int... NV>
constexpr std::array<SmallKernel, 4> row_of(std::integer_sequence<int, NV...>) {
  return {&small_kernel<MR, NV + 1>...};
}
template <int... MR>
constexpr std::array<std::array<SmallKernel, 4>, kMaxMR> table(std::integer_sequence<int, MR...>) {
  return {row_of<MR + 1>(std::make_integer_sequence<int, 4>{})...};
}
/// kKernels[rows - 1][panel width / 16 - 1].
constexpr auto kKernels = table(std::make_integer_sequence<int, kMaxMR>{});

/// Products of at least this many multiply-adds are split by panels over the pool, as in
/// blas_gemm. A 784 x 128 layer at batch 1 (100k) stays on the caller: split at 48k, the deep
/// autoencoder's batch-1 pass took 9.2-10.0 us at 2 threads against 7.2-7.9 us at 1 on this
/// shared 2-core machine (the hand-off, and a worker that often has no core to run on).
constexpr int64_t kMinParallelMacs = 256 * 1024;
/// sgemm_large_packed splits from here, as blas_gemm does (cpu_blas.cpp).
constexpr double kMinParallelLargeMacs = 256.0 * 1024;

}  // namespace

void sgemm_small(int64_t m, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
                 const GemmEpilogue& epilogue) {
  const int64_t n = b.n, k = b.k;
  if (m <= 0 || n <= 0) return;
  const float* data = b.data.get();
  const int64_t tiles = (m + kMaxMR - 1) / kMaxMR;
  const int64_t panels = (n + PackedB::kPanel - 1) / PackedB::kPanel;
  auto run_panels = [&](int64_t lo, int64_t hi) {
    for (int64_t pi = lo; pi < hi; ++pi) {
      const int64_t j0 = pi * PackedB::kPanel, cols = std::min(PackedB::kPanel, n - j0);
      const int64_t nv = (cols + 15) / 16;
      const float* panel = data + j0 * k;
      const float* bias = epilogue.bias ? epilogue.bias + j0 : nullptr;
      for (int64_t t = 0; t < tiles; ++t) {  // rows split evenly: 16 rows are 6 + 5 + 5
        const int64_t r0 = m * t / tiles, r1 = m * (t + 1) / tiles;
        kKernels[r1 - r0 - 1][nv - 1](k, a + r0 * lda, lda, panel, c + r0 * ldc + j0, ldc, cols, bias, epilogue.relu,
                                 epilogue.sigmoid);
      }
    }
  };
  const int threads = pool_threads();
  const int parts = m * n * k >= kMinParallelMacs ? static_cast<int>(std::min<int64_t>(threads, panels)) : 1;
  if (parts <= 1) return run_panels(0, panels);
  auto part = [&](int p) { run_panels(panels * p / parts, panels * (p + 1) / parts); };
  run_parallel(parts, part);
}

void sgemm_large_packed(int64_t m, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
                        const GemmEpilogue& epilogue) {
  const int64_t n = b.n, k = b.k;
  if (m <= 0 || n <= 0) return;
  const float* data = b.data.get();
  // As blas_gemm splits: columns when each part gets a 32-wide panel or more, else rows in 12s.
  const double macs = double(m) * double(n) * double(k);
  int parts = macs < kMinParallelLargeMacs ? 1 : pool_threads();
  const int64_t panels = (n + PackedB::kPanelLarge - 1) / PackedB::kPanelLarge;
  const bool by_cols = panels >= parts;
  const int64_t units = by_cols ? panels : (m + 11) / 12;
  parts = static_cast<int>(std::min<int64_t>(parts, units));
  auto part = [&](int p) {
    const int64_t lo = units * p / parts, hi = units * (p + 1) / parts;
    if (hi <= lo) return;
    if (by_cols)
      sgemm_avx512_packed(m, n, k, lo * PackedB::kPanelLarge, std::min(n, hi * PackedB::kPanelLarge), a, lda, data, c,
                          ldc, epilogue);
    else
      sgemm_avx512_packed(std::min(m, hi * 12) - lo * 12, n, k, 0, n, a + lo * 12 * lda, lda, data, c + lo * 12 * ldc,
                          ldc, epilogue);
  };
  if (parts <= 1) return part(0);
  run_parallel(parts, part);
}

#else

void sgemm_small(int64_t, const float*, int64_t, const PackedB&, float*, int64_t, const GemmEpilogue&) {}
void sgemm_large_packed(int64_t, const float*, int64_t, const PackedB&, float*, int64_t, const GemmEpilogue&) {}

#endif

// ---- the cache of packed weights ----

namespace {

struct CacheEntry {
  std::weak_ptr<Storage> storage;  // expired once the weight's storage is freed
  int64_t offset = 0, n = 0, k = 0, stride_n = 0, stride_k = 0, panel = 0;
  uint32_t version = 0;
  std::shared_ptr<const PackedB> packed;
};

struct Cache {
  std::mutex mutex;
  std::unordered_map<const Storage*, std::vector<CacheEntry>> entries;
  size_t bytes = 0;
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: safe to use from other static destructors
  return *c;
}

/// Bumped whenever the cache drops entries wholesale (clear, the size limit): the threads' hot
/// entries of an older generation are misses.
std::atomic<uint64_t> cache_generation{0};

/// A thread's last hits, direct-mapped by storage address: a hit costs no lock and no hashing
/// (a batch-1 forward looks up every layer's weight on every call). An entry matches only the
/// same live storage (weak_ptr), offset, shape, strides, panel, version and generation, so it
/// never returns what the shared cache would not; at most kHot packings per thread outlive their
/// removal from the shared cache, until the slot is reused.
struct HotEntry {
  const Storage* key = nullptr;
  std::weak_ptr<Storage> storage;
  int64_t offset = 0, n = 0, k = 0, stride_n = 0, stride_k = 0, panel = 0;
  uint32_t version = 0;
  uint64_t generation = 0;
  std::shared_ptr<const PackedB> packed;
};
constexpr size_t kHot = 16;
thread_local std::array<HotEntry, kHot> hot_entries;

HotEntry& hot_slot(const Storage* key, int64_t offset, int64_t panel) {
  const auto h = reinterpret_cast<uintptr_t>(key) / 64 + static_cast<uintptr_t>(offset) + static_cast<uintptr_t>(panel);
  return hot_entries[h % kHot];
}

/// Above this many bytes of packed weights the cache is emptied before the next insertion.
constexpr size_t kMaxCacheBytes = size_t{512} << 20;

/// prepacked_weight_t's lookup in the shared cache (under its lock), packing on a miss.
std::shared_ptr<const PackedB> shared_prepacked(const Tensor& weight, const std::shared_ptr<Storage>& storage,
                                                int64_t n, int64_t k, int64_t stride_n, int64_t stride_k,
                                                int64_t offset, uint32_t version, int64_t panel) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  std::vector<CacheEntry>& list = c.entries[storage.get()];
  for (CacheEntry& e : list) {
    if (e.offset != offset || e.n != n || e.k != k || e.stride_n != stride_n || e.stride_k != stride_k ||
        e.panel != panel)
      continue;
    // A live weak_ptr means the storage at this address is still the one packed.
    if (e.version == version && !e.storage.expired()) return e.packed;
    c.bytes -= e.packed->bytes();
    e.packed.reset();
  }
  // Drop entries that were replaced above or whose storage is gone (at most a sweep per packing).
  for (auto it = c.entries.begin(); it != c.entries.end();) {
    auto& l = it->second;
    l.erase(std::remove_if(l.begin(), l.end(),
                           [&](const CacheEntry& e) {
                             if (e.packed && !e.storage.expired()) return false;
                             if (e.packed) c.bytes -= e.packed->bytes();
                             return true;
                           }),
            l.end());
    it = l.empty() && it->first != storage.get() ? c.entries.erase(it) : std::next(it);
  }
  // B = W^T: B[p][j] = W[j][p].
  std::shared_ptr<const PackedB> packed = pack_b_small(k, n, weight.data_ptr<float>(), stride_k, stride_n, panel);
  if (c.bytes + packed->bytes() > kMaxCacheBytes) {
    cache_generation.fetch_add(1, std::memory_order_acq_rel);
    c.entries.clear();
    c.bytes = 0;
  }
  c.entries[storage.get()].push_back(CacheEntry{storage, offset, n, k, stride_n, stride_k, panel, version, packed});
  c.bytes += packed->bytes();
  return packed;
}

}  // namespace

std::shared_ptr<const PackedB> prepacked_weight_t(const Tensor& weight, int64_t panel) {
  const int64_t n = weight.shape()[0], k = weight.shape()[1];
  const int64_t stride_n = weight.strides()[0], stride_k = weight.strides()[1];
  const std::shared_ptr<Storage>& storage = weight.storage();
  const uint32_t version = storage->version();
  const int64_t offset = weight.storage_offset();
  HotEntry& hot = hot_slot(storage.get(), offset, panel);
  if (hot.key == storage.get() && hot.offset == offset && hot.n == n && hot.k == k && hot.stride_n == stride_n &&
      hot.stride_k == stride_k && hot.panel == panel && hot.version == version &&
      hot.generation == cache_generation.load(std::memory_order_acquire) && !hot.storage.expired())
    return hot.packed;
  const uint64_t generation = cache_generation.load(std::memory_order_acquire);  // before: a racing clear misses
  std::shared_ptr<const PackedB> found = shared_prepacked(weight, storage, n, k, stride_n, stride_k, offset, version,
                                                          panel);
  hot.key = storage.get();
  hot.storage = storage;
  hot.offset = offset, hot.n = n, hot.k = k, hot.stride_n = stride_n, hot.stride_k = stride_k, hot.panel = panel;
  hot.version = version;
  hot.generation = generation;
  hot.packed = found;
  return found;
}

void clear_prepacked_weights() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  cache_generation.fetch_add(1, std::memory_order_acq_rel);
  c.entries.clear();
  c.bytes = 0;
}

size_t prepacked_weight_count() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  size_t count = 0;
  for (const auto& [key, list] : c.entries) count += list.size();
  return count;
}

}  // namespace latent::cpu
