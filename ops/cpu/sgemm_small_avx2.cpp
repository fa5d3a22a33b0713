// The prepacked inference products of sgemm_small.h for CPUs with AVX2 + FMA and no AVX-512 (or
// LATENT_CPU_ISA=avx2): sgemm_small_avx2 on the 64-wide panels, sgemm_large_packed_avx2 on the
// 32-wide ones (through sgemm_avx2_packed, sgemm_avx2.cpp). sgemm_small_dispatch.h picks these or
// the AVX-512 versions by cpu_isa().
//
// With 16 ymm registers a 64-wide panel is run as four 16-column strips: a tile of up to 6 rows x
// 16 columns in 12 accumulators, the A rows re-read (from L1) for each strip. With few rows the
// FMA chains are too few to hide the FMA latency (4 cycles, 2 per cycle), so the k loop is
// unrolled into U independent accumulator sets, summed before the store, as the AVX-512 kernel does.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <utility>

#include "../scalar_math.h"
#include "isa.h"
#include "sgemm_small.h"
#include "sgemm_small_dispatch.h"
#include "workers.h"

namespace latent::cpu {

#if defined(__x86_64__) && defined(__GNUC__)

namespace {

constexpr int kMaxMR = 6;

#define LATENT_AVX2_INLINE LATENT_TARGET_AVX2 __attribute__((always_inline)) inline

LATENT_AVX2_INLINE __m256i lanes8(int64_t count) {
  const int c = static_cast<int>(std::clamp<int64_t>(count, 0, 8));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// C[0:MR, 0:cols] = A[0:MR, 0:k] B (+ bias, relu), B a 16-column strip of a packed panel whose
/// rows are `width` floats apart (zero padded to 16 columns, so both halves may always be loaded).
template <int MR, int NV>
LATENT_TARGET_AVX2 void small_kernel(int64_t k, const float* a, int64_t lda, const float* bp, int64_t width,
                                     float* c, int64_t ldc, int64_t cols, const float* bias, bool relu) {
  constexpr int kAcc = MR * NV;
  constexpr int U = kAcc >= 6 ? 1 : kAcc >= 3 ? 2 : 4;  // independent accumulator sets
  __m256 acc[U][MR][NV];
#pragma GCC unroll 4
  for (int u = 0; u < U; ++u)
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[u][i][v] = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + U <= k; p += U) {
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) {
      __m256 b[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) b[v] = _mm256_load_ps(bp + (p + u) * width + 8 * v);
#pragma GCC unroll 6
      for (int i = 0; i < MR; ++i) {
        const __m256 ai = _mm256_broadcast_ss(a + i * lda + p + u);
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[u][i][v] = _mm256_fmadd_ps(ai, b[v], acc[u][i][v]);
      }
    }
  }
  for (; p < k; ++p) {
    __m256 b[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) b[v] = _mm256_load_ps(bp + p * width + 8 * v);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i * lda + p);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[0][i][v] = _mm256_fmadd_ps(ai, b[v], acc[0][i][v]);
    }
  }
  const bool full = cols >= 8 * NV;
  __m256i mask[NV];
  __m256 bias_v[NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    mask[v] = lanes8(cols - 8 * v);
    bias_v[v] = !bias ? _mm256_setzero_ps() : full ? _mm256_loadu_ps(bias + 8 * v) : _mm256_maskload_ps(bias + 8 * v, mask[v]);
  }
  const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      __m256 r = acc[0][i][v];
#pragma GCC unroll 4
      for (int u = 1; u < U; ++u) r = _mm256_add_ps(r, acc[u][i][v]);
      r = _mm256_add_ps(r, bias_v[v]);
      if (relu) r = _mm256_and_ps(r, _mm256_cmp_ps(r, zero, _CMP_GT_OQ));  // NaN -> 0, as ReluF32
      if (full) _mm256_storeu_ps(c + i * ldc + 8 * v, r);
      else _mm256_maskstore_ps(c + i * ldc + 8 * v, mask[v], r);
    }
  }
}

using SmallKernel = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t,
                             const float*, bool);

template <int... MR>
constexpr std::array<std::array<SmallKernel, 2>, kMaxMR> table(std::integer_sequence<int, MR...>) {
  return {std::array<SmallKernel, 2>{&small_kernel<MR + 1, 1>, &small_kernel<MR + 1, 2>}...};
}
/// kKernels[rows - 1][strip columns > 8].
constexpr auto kKernels = table(std::make_integer_sequence<int, kMaxMR>{});

/// As sgemm_small.cpp: products below this many multiply-adds stay on the calling thread.
constexpr int64_t kMinParallelMacs = 256 * 1024;

}  // namespace

void sgemm_small_avx2(int64_t m, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
                      const GemmEpilogue& epilogue) {
  const int64_t n = b.n, k = b.k, pw = b.panel;
  if (m <= 0 || n <= 0) return;
  const float* data = b.data.get();
  const int64_t tiles = (m + kMaxMR - 1) / kMaxMR;
  const int64_t panels = (n + pw - 1) / pw;
  auto run_panels = [&](int64_t lo, int64_t hi) {
    for (int64_t pi = lo; pi < hi; ++pi) {
      const int64_t j0 = pi * pw, cols = std::min(pw, n - j0), width = (cols + 15) / 16 * 16;
      const float* panel = data + j0 * k;
      for (int64_t s = 0; s * 16 < cols; ++s) {  // 16-column strips
        const int64_t sc = std::min<int64_t>(16, cols - 16 * s);
        const float* bias = epilogue.bias ? epilogue.bias + j0 + 16 * s : nullptr;
        for (int64_t t = 0; t < tiles; ++t) {  // rows split evenly: 16 rows are 6 + 5 + 5
          const int64_t r0 = m * t / tiles, r1 = m * (t + 1) / tiles;
          kKernels[r1 - r0 - 1][sc > 8 ? 1 : 0](k, a + r0 * lda, lda, panel + 16 * s, width, c + r0 * ldc + j0 + 16 * s,
                                                ldc, sc, bias, epilogue.relu);
        }
      }
    }
  };
  const int threads = pool_threads();
  const int parts = m * n * k >= kMinParallelMacs ? static_cast<int>(std::min<int64_t>(threads, panels)) : 1;
  if (parts <= 1) return run_panels(0, panels);
  auto part = [&](int p) { run_panels(panels * p / parts, panels * (p + 1) / parts); };
  run_parallel(parts, part);
}

void sgemm_large_packed_avx2(int64_t m, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
                             const GemmEpilogue& epilogue) {
  const int64_t n = b.n, k = b.k;
  if (m <= 0 || n <= 0) return;
  const float* data = b.data.get();
  // As sgemm_large_packed: columns when each part gets a 32-wide panel or more, else rows in 12s.
  const double macs = double(m) * double(n) * double(k);
  int parts = macs < double(kMinParallelMacs) ? 1 : pool_threads();
  const int64_t panels = (n + PackedB::kPanelLarge - 1) / PackedB::kPanelLarge;
  const bool by_cols = panels >= parts;
  const int64_t units = by_cols ? panels : (m + 11) / 12;
  parts = static_cast<int>(std::min<int64_t>(parts, units));
  auto part = [&](int p) {
    const int64_t lo = units * p / parts, hi = units * (p + 1) / parts;
    if (hi <= lo) return;
    if (by_cols)
      sgemm_avx2_packed(m, n, k, lo * PackedB::kPanelLarge, std::min(n, hi * PackedB::kPanelLarge), a, lda, data, c,
                        ldc, epilogue);
    else
      sgemm_avx2_packed(std::min(m, hi * 12) - lo * 12, n, k, 0, n, a + lo * 12 * lda, lda, data, c + lo * 12 * ldc,
                        ldc, epilogue);
  };
  if (parts <= 1) return part(0);
  run_parallel(parts, part);
}

#else

void sgemm_small_avx2(int64_t, const float*, int64_t, const PackedB&, float*, int64_t, const GemmEpilogue&) {}
void sgemm_large_packed_avx2(int64_t, const float*, int64_t, const PackedB&, float*, int64_t, const GemmEpilogue&) {}

#endif

bool sgemm_packed_available() { return cpu_isa() >= 1; }

namespace {
using PackedKernel = void (*)(int64_t, const float*, int64_t, const PackedB&, float*, int64_t, const GemmEpilogue&);

/// An AVX2 kernel with the whole epilogue: the kernel's store takes bias and relu; the sigmoid
/// (which only the AVX-512 store fuses) runs after it, with the same math::sigmoid as the
/// separate pass.
void with_epilogue(PackedKernel kernel, int64_t m, const float* a, int64_t lda, const PackedB& b, float* c,
                   int64_t ldc, const GemmEpilogue& epilogue) {
  GemmEpilogue store = epilogue;
  store.sigmoid = false;
  kernel(m, a, lda, b, c, ldc, store);
  if (!epilogue.sigmoid) return;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < b.n; ++j) c[i * ldc + j] = math::sigmoid(c[i * ldc + j]);
}
}  // namespace

void sgemm_small_any(int64_t m, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
                     const GemmEpilogue& epilogue) {
  if (cpu_isa() >= 2) return sgemm_small(m, a, lda, b, c, ldc, epilogue);
  with_epilogue(sgemm_small_avx2, m, a, lda, b, c, ldc, epilogue);
}

void sgemm_large_packed_any(int64_t m, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
                            const GemmEpilogue& epilogue) {
  if (cpu_isa() >= 2) return sgemm_large_packed(m, a, lda, b, c, ldc, epilogue);
  with_epilogue(sgemm_large_packed_avx2, m, a, lda, b, c, ldc, epilogue);
}

}  // namespace latent::cpu
