// latent's own float32 GEMM for CPUs with AVX2 + FMA and no AVX-512: C = A B + beta C, row-major,
// on the calling thread (cpu_blas.cpp splits a product over the worker threads and picks this or
// the AVX-512 kernel, sgemm_avx512.cpp, by ops/cpu/isa.h's cpu_isa()).
//
// The same blocking as the AVX-512 kernel (GotoBLAS/BLIS style): for each kKC-deep slice of k and
// kNC-wide slice of n, B is packed into 8- or 16-wide column panels (zero padded), and for each
// panel (kept in L1) the micro-kernel runs down the rows. A is not packed: its elements are
// broadcast straight from memory, from kMR row streams (A as stored) or one contiguous run per k
// (A transposed, as in dW = g^T x). The micro-kernel holds a 6 x 16 block of C in 12 of the 16
// ymm registers (two for the B row, one for the broadcast): 12 FMAs per 2 loads + 6 broadcasts.
// Every function here is compiled for AVX2 + FMA only (LATENT_TARGET_AVX2), never AVX-512.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <utility>

#include "cpu_blas.h"
#include "isa.h"

#if defined(__x86_64__) && defined(__GNUC__)

namespace latent::cpu {
namespace {

constexpr int kMR = 6;          // rows of C per micro-tile
constexpr int64_t kKC = 256;    // depth of one packed slice of B
constexpr int64_t kNC = 512;    // width of one packed slice of B (a multiple of 16)

#define LATENT_AVX2_INLINE LATENT_TARGET_AVX2 __attribute__((always_inline)) inline

/// maskload/maskstore mask of the first `count` of 8 lanes (none for count <= 0, all for >= 8).
LATENT_AVX2_INLINE __m256i lanes8(int64_t count) {
  const int c = static_cast<int>(std::clamp<int64_t>(count, 0, 8));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// C[0:MR, 0:8*NV] (+)= A[0:MR, 0:kc] Bp, Bp a packed panel (kc rows of 8*NV floats, `bstride`
/// floats apart, 32-byte aligned). Only the first `cols` columns are stored. On the last slice of k, bias (per column, or null) is added
/// and relu applied before the store (the epilogue).
template <int MR, int NV, bool kTransA>
LATENT_TARGET_AVX2 void micro_kernel(int64_t kc, const float* a, int64_t lda, const float* bp, int64_t bstride,
                                     float* c, int64_t ldc, int64_t cols, bool accumulate, const float* bias,
                                     bool relu) {
  __m256 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_ps();
  if constexpr (kTransA) {
    // A[i][p] = a[p * lda + i]: the MR values of step p are contiguous.
    for (int64_t p = 0; p < kc; ++p) {
      __m256 b[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) b[v] = _mm256_load_ps(bp + 8 * v);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m256 ai = _mm256_broadcast_ss(a + i);
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, b[v], acc[i][v]);
      }
      a += lda;
      bp += bstride;
    }
  } else {
    // A[i][p] = a[i * lda + p]: MR row streams.
    for (int64_t p = 0; p < kc; ++p) {
      __m256 b[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) b[v] = _mm256_load_ps(bp + 8 * v);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m256 ai = _mm256_broadcast_ss(a + i * lda + p);
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, b[v], acc[i][v]);
      }
      bp += bstride;
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
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      __m256 r = acc[i][v];
      if (accumulate) r = _mm256_add_ps(r, full ? _mm256_loadu_ps(ci + 8 * v) : _mm256_maskload_ps(ci + 8 * v, mask[v]));
      if (bias) r = _mm256_add_ps(r, bias_v[v]);
      if (relu) r = _mm256_and_ps(r, _mm256_cmp_ps(r, zero, _CMP_GT_OQ));  // NaN -> 0, as ReluF32
      if (full) _mm256_storeu_ps(ci + 8 * v, r);
      else _mm256_maskstore_ps(ci + 8 * v, mask[v], r);
    }
  }
}

using MicroKernel = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t,
                             bool, const float*, bool);

template <int NV, bool kTransA, int... MR>
constexpr std::array<MicroKernel, sizeof...(MR) + 1> kernel_table(std::integer_sequence<int, MR...>) {
  return {nullptr, &micro_kernel<MR + 1, NV, kTransA>...};
}

/// kernels[trans_a][nv - 1][rows]: the micro-kernel for a tile of `rows` (1..kMR) rows.
const std::array<MicroKernel, kMR + 1> kKernels[2][2] = {
    {kernel_table<1, false>(std::make_integer_sequence<int, kMR>{}),
     kernel_table<2, false>(std::make_integer_sequence<int, kMR>{})},
    {kernel_table<1, true>(std::make_integer_sequence<int, kMR>{}),
     kernel_table<2, true>(std::make_integer_sequence<int, kMR>{})},
};

/// 8 x 8 transpose in registers: interleave pairs of rows, then pairs of pairs (4 x 4 blocks in
/// each 128-bit half), then swap the halves.
LATENT_AVX2_INLINE void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);      // r0[0] r1[0] r0[1] r1[1] | [4], [5]
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);  // r0[2] r1[2] r0[3] r1[3] | [6], [7]
  }
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {  // rows 4h .. 4h + 3
    const __m256 lo0 = t[4 * h], hi0 = t[4 * h + 1], lo1 = t[4 * h + 2], hi1 = t[4 * h + 3];
    u[4 * h + 0] = _mm256_shuffle_ps(lo0, lo1, 0x44);  // columns 0 | 4
    u[4 * h + 1] = _mm256_shuffle_ps(lo0, lo1, 0xEE);  // columns 1 | 5
    u[4 * h + 2] = _mm256_shuffle_ps(hi0, hi1, 0x44);  // columns 2 | 6
    u[4 * h + 3] = _mm256_shuffle_ps(hi0, hi1, 0xEE);  // columns 3 | 7
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
    r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
  }
}

/// Packs B[0:kc, 0:cols] (cols <= width, width 8 or 16) into dst as kc rows of `width` floats,
/// zero beyond cols. B[p][j] = b[p * ldb + j], or b[j * ldb + p] when trans_b.
LATENT_TARGET_AVX2 void pack_panel(bool trans_b, const float* b, int64_t ldb, int64_t kc, int64_t cols, int width,
                                   float* dst) {
  if (!trans_b) {
    const __m256i m0 = lanes8(cols), m1 = lanes8(cols - 8);
    if (cols == width) {
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = b + p * ldb;
        _mm256_store_ps(dst + p * width, _mm256_loadu_ps(src));
        if (width == 16) _mm256_store_ps(dst + p * width + 8, _mm256_loadu_ps(src + 8));
      }
      return;
    }
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = b + p * ldb;
      _mm256_store_ps(dst + p * width, _mm256_maskload_ps(src, m0));
      if (width == 16) _mm256_store_ps(dst + p * width + 8, _mm256_maskload_ps(src + 8, m1));
    }
    return;
  }
  // Transposed: 8 columns (rows of b) x 8 steps of k at a time, turned in registers.
  for (int half = 0; half * 8 < width; ++half) {
    const int64_t j0 = half * 8, jn = std::clamp<int64_t>(cols - j0, 0, 8);
    for (int64_t p0 = 0; p0 < kc; p0 += 8) {
      const int64_t pn = std::min<int64_t>(8, kc - p0);
      const __m256i pm = lanes8(pn);
      __m256 r[8];
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j)
        r[j] = j >= jn ? _mm256_setzero_ps()
               : pn == 8 ? _mm256_loadu_ps(b + (j0 + j) * ldb + p0)
                         : _mm256_maskload_ps(b + (j0 + j) * ldb + p0, pm);
      transpose8(r);
      for (int64_t q = 0; q < pn; ++q) _mm256_store_ps(dst + (p0 + q) * width + j0, r[q]);
    }
  }
}

/// One thread's 64-byte aligned scratch for packed B, kept for the thread's lifetime.
float* pack_buffer() {
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<float, Free> buffer(
      static_cast<float*>(std::aligned_alloc(64, sizeof(float) * kKC * kNC)));
  return buffer.get();
}

/// C = beta C (beta 0 writes zeros, so NaN in C does not survive).
void scale_rows(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    if (beta == 0.0f) std::fill(ci, ci + n, 0.0f);
    else
      for (int64_t j = 0; j < n; ++j) ci[j] *= beta;
  }
}

/// The epilogue alone, for k = 0 (C holds beta C already).
void epilogue_only(int64_t m, int64_t n, const GemmEpilogue& e, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const float v = c[i * ldc + j] + (e.bias ? e.bias[j] : 0.0f);
      c[i * ldc + j] = e.relu && !(v > 0.0f) ? 0.0f : v;
    }
}

}  // namespace

bool sgemm_avx2_available() { return cpu_isa() >= 1; }

void sgemm_avx2(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const GemmEpilogue* epilogue) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || (beta != 0.0f && beta != 1.0f)) {
    scale_rows(m, n, beta, c, ldc);
    if (k <= 0) {
      if (epilogue) epilogue_only(m, n, *epilogue, c, ldc);
      return;
    }
    beta = 1.0f;
  }
  const float* bias = epilogue ? epilogue->bias : nullptr;
  const bool relu = epilogue && epilogue->relu;
  float* packed = pack_buffer();
  const auto& kernels = kKernels[trans_a ? 1 : 0];
  // k in equal slices of at most kKC (784 = 4 x 196, not 3 x 256 + 16: a thin last slice costs a
  // full load and store of C for few multiply-adds).
  const int64_t k_step = (k + (k + kKC - 1) / kKC - 1) / ((k + kKC - 1) / kKC);
  for (int64_t jc = 0; jc < n; jc += kNC) {
    const int64_t nc = std::min(kNC, n - jc);
    for (int64_t pc = 0; pc < k; pc += k_step) {
      const int64_t kc = std::min(k_step, k - pc);
      const bool accumulate = pc > 0 || beta != 0.0f, last = pc + kc == k;
      // Pack this slice of B panel by panel: 16 wide, the last one 8 wide when 8 columns do.
      float* panel = packed;
      for (int64_t jr = 0; jr < nc; jr += 16) {
        const int64_t cols = std::min<int64_t>(16, nc - jr);
        const int width = cols > 8 ? 16 : 8;
        const float* src = trans_b ? b + (jc + jr) * ldb + pc : b + pc * ldb + jc + jr;
        pack_panel(trans_b, src, ldb, kc, cols, width, panel);
        panel += kc * width;
      }
      panel = packed;
      for (int64_t jr = 0; jr < nc; jr += 16) {
        const int64_t cols = std::min<int64_t>(16, nc - jr);
        const int width = cols > 8 ? 16 : 8;
        const auto& by_rows = kernels[width / 8 - 1];
        for (int64_t ir = 0; ir < m; ir += kMR) {
          const int64_t rows = std::min<int64_t>(kMR, m - ir);
          const float* ap = trans_a ? a + pc * lda + ir : a + ir * lda + pc;
          by_rows[rows](kc, ap, lda, panel, width, c + ir * ldc + jc + jr, ldc, cols, accumulate,
                        last && bias ? bias + jc + jr : nullptr, last && relu);
        }
        panel += kc * width;
      }
    }
  }
}

void sgemm_avx2_packed(int64_t m, int64_t n, int64_t k, int64_t j_lo, int64_t j_hi, const float* a, int64_t lda,
                       const float* b, float* c, int64_t ldc, const GemmEpilogue& epilogue) {
  if (m <= 0 || j_hi <= j_lo) return;
  if (k <= 0) {
    GemmEpilogue shifted = epilogue;
    if (shifted.bias) shifted.bias += j_lo;
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc + j_lo, c + i * ldc + j_hi, 0.0f);
    return epilogue_only(m, j_hi - j_lo, shifted, c + j_lo, ldc);
  }
  const auto& kernels = kKernels[0];
  const int64_t j_end = std::min(n, j_hi);
  const int64_t k_step = (k + (k + kKC - 1) / kKC - 1) / ((k + kKC - 1) / kKC);  // equal slices, as above
  for (int64_t pc = 0; pc < k; pc += k_step) {
    const int64_t kc = std::min(k_step, k - pc);
    const bool accumulate = pc > 0, last = pc + kc == k;
    // The 32-wide panels (the last 16 wide) in 16-column halves, each `width` floats a row.
    for (int64_t jr = j_lo; jr < j_end; jr += 16) {
      const int64_t start = jr / 32 * 32, width = n - start > 16 ? 32 : 16;
      const int64_t cols = std::min<int64_t>(16, j_end - jr);
      const auto& by_rows = kernels[cols > 8 ? 1 : 0];
      const float* panel = b + start * k + pc * width + (jr - start);
      for (int64_t ir = 0; ir < m; ir += kMR) {
        const int64_t rows = std::min<int64_t>(kMR, m - ir);
        by_rows[rows](kc, a + ir * lda + pc, lda, panel, width, c + ir * ldc + jr, ldc, cols, accumulate,
                      last && epilogue.bias ? epilogue.bias + jr : nullptr, last && epilogue.relu);
      }
    }
  }
}

}  // namespace latent::cpu

#else

namespace latent::cpu {
bool sgemm_avx2_available() { return false; }
void sgemm_avx2(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float, float*,
                int64_t, const GemmEpilogue*) {}
void sgemm_avx2_packed(int64_t, int64_t, int64_t, int64_t, int64_t, const float*, int64_t, const float*, float*,
                       int64_t, const GemmEpilogue&) {}
}  // namespace latent::cpu

#endif
