// latent's own float32 GEMM for CPUs with AVX-512: C = A B + beta C, row-major, on the calling
// thread (cpu_blas.cpp splits a product over the worker threads and calls this per part).
//
// Why our own: the autoencoders' products are small (128 x 784 x 128 and smaller), where a BLAS's
// fixed costs show, and Debian 12's OpenBLAS runs its AVX2 kernels on AMD Zen 5 (it predates the
// CPU; environments also pin OPENBLAS_CORETYPE=Haswell). On those shapes this kernel reaches 83-93%
// of one Zen 5 core's measured AVX-512 FMA peak (263 GFLOP/s), 0.86-0.95x the time of OpenBLAS's
// own AVX-512 (Cooperlake) kernels on one thread; bench/gemm prints both.
//
// Blocking (GotoBLAS/BLIS style, written from the papers' description):
//   for each kKC-deep slice of k and kNC-wide slice of n: pack B into 16- or 32-wide column
//   panels (zero padded), then for each panel (kept in L1) run the micro-kernel down the rows.
// A is not packed: the micro-kernel broadcasts its elements straight from A, either from kMR
// rows (A as stored) or from one contiguous run per k (A transposed, as in dW = g^T x).
// The micro-kernel holds a kMR x 32 block of C in 24 zmm registers.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include "cpu_blas.h"
#include "isa.h"
#include "vec_math.h"

#if defined(__x86_64__) && defined(__GNUC__)

namespace latent::cpu {
namespace {

constexpr int kMR = 12;         // rows of C per micro-tile
constexpr int64_t kKC = 256;    // depth of one packed slice of B
constexpr int64_t kNC = 512;    // width of one packed slice of B (a multiple of 32)
constexpr int kActNone = 0, kActRelu = 1, kActSigmoid = 2;  // the micro-kernel's store activation

#define LATENT_AVX512 LATENT_TARGET_AVX512 __attribute__((always_inline)) inline

/// Mask of the first `count` of 16 lanes (none for count <= 0, all for count >= 16).
LATENT_AVX512 __mmask16 lanes(int64_t count) {
  return count >= 16 ? __mmask16(0xFFFF) : count <= 0 ? __mmask16(0) : __mmask16((1u << count) - 1u);
}

/// C[0:MR, 0:16*NV] (+)= A[0:MR, 0:kc] Bp, Bp a packed panel (kc rows of 16*NV floats). Only
/// the first `cols` columns are stored. On the last slice of k, bias (per column, or null) is
/// added and the activation `act` (kActNone, kActRelu, kActSigmoid) applied before the store.
template <int MR, int NV, bool kTransA>
LATENT_TARGET_AVX512 void micro_kernel(int64_t kc, const float* a, int64_t lda, const float* bp, float* c,
                                       int64_t ldc, int64_t cols, bool accumulate, const float* bias, int act) {
  __m512 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  if constexpr (kTransA) {
    // A[i][p] = a[p * lda + i]: the MR values of step p are contiguous.
    for (int64_t p = 0; p < kc; ++p) {
      __m512 b[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) b[v] = _mm512_load_ps(bp + 16 * v);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, b[v], acc[i][v]);
      }
      a += lda;
      bp += 16 * NV;
    }
  } else {
    // A[i][p] = a[i * lda + p]: MR row streams.
    const float* row[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) row[i] = a + i * lda;
    for (int64_t p = 0; p < kc; ++p) {
      __m512 b[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) b[v] = _mm512_load_ps(bp + 16 * v);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m512 ai = _mm512_set1_ps(row[i][p]);
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, b[v], acc[i][v]);
      }
      bp += 16 * NV;
    }
  }
  __mmask16 mask[NV];
  __m512 bias_v[NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    mask[v] = lanes(cols - 16 * v);
    bias_v[v] = bias ? _mm512_maskz_loadu_ps(mask[v], bias + 16 * v) : _mm512_setzero_ps();
  }
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      __m512 r = acc[i][v];
      if (accumulate) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mask[v], ci + 16 * v));
      if (bias) r = _mm512_add_ps(r, bias_v[v]);
      if (act == kActRelu) r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, zero, _CMP_GT_OQ), r);  // NaN -> 0, as ReluF32
      else if (act == kActSigmoid) r = (__m512)vx::sigmoid<16>((vx::Lanes<16>::F)r);
      _mm512_mask_storeu_ps(ci + 16 * v, mask[v], r);
    }
  }
}

using MicroKernel = void (*)(int64_t, const float*, int64_t, const float*, float*, int64_t, int64_t, bool,
                             const float*, int);

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

/// 16 x 16 transpose in registers: four rounds that swap the off-diagonal halves of 8-, 4-, 2-
/// and 1-wide blocks (row i, column c trade the bit s of their indices in round s).
LATENT_AVX512 void transpose16(__m512 r[16]) {
#pragma GCC unroll 4
  for (int s = 8; s >= 1; s >>= 1) {
    alignas(64) int lo_idx[16], hi_idx[16];
    for (int c = 0; c < 16; ++c) {
      lo_idx[c] = (c & s) ? 16 + c - s : c;  // row i:     keep the s-clear columns, take row i+s's
      hi_idx[c] = (c & s) ? 16 + c : c + s;   // row i + s: take row i's s-set columns, keep its own
    }
    const __m512i lo = _mm512_load_si512(lo_idx), hi = _mm512_load_si512(hi_idx);
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      if (i & s) continue;
      const __m512 x = r[i], y = r[i + s];
      r[i] = _mm512_permutex2var_ps(x, lo, y);
      r[i + s] = _mm512_permutex2var_ps(x, hi, y);
    }
  }
}

/// Packs B[0:kc, 0:cols] (cols <= width, width 16 or 32) into dst as kc rows of `width` floats,
/// zero beyond cols. B[p][j] = b[p * ldb + j], or b[j * ldb + p] when trans_b.
LATENT_TARGET_AVX512 void pack_panel(bool trans_b, const float* b, int64_t ldb, int64_t kc, int64_t cols, int width,
                                     float* dst) {
  if (!trans_b) {
    const __mmask16 m0 = lanes(cols), m1 = lanes(cols - 16);
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = b + p * ldb;
      _mm512_store_ps(dst + p * width, _mm512_maskz_loadu_ps(m0, src));
      if (width == 32) _mm512_store_ps(dst + p * width + 16, _mm512_maskz_loadu_ps(m1, src + 16));
    }
    return;
  }
  // Transposed: 16 columns (rows of b) x 16 steps of k at a time, turned in registers.
  for (int half = 0; half * 16 < width; ++half) {
    const int64_t j0 = half * 16, jn = std::clamp<int64_t>(cols - j0, 0, 16);
    for (int64_t p0 = 0; p0 < kc; p0 += 16) {
      const int64_t pn = std::min<int64_t>(16, kc - p0);
      const __mmask16 pm = lanes(pn);
      __m512 r[16];
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j)
        r[j] = j < jn ? _mm512_maskz_loadu_ps(pm, b + (j0 + j) * ldb + p0) : _mm512_setzero_ps();
      transpose16(r);
      for (int64_t q = 0; q < pn; ++q) _mm512_store_ps(dst + (p0 + q) * width + j0, r[q]);
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

LATENT_TARGET_AVX512 void scale_rows(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    if (beta == 0.0f) std::fill(ci, ci + n, 0.0f);
    else
      for (int64_t j = 0; j < n; ++j) ci[j] *= beta;
  }
}

/// The epilogue alone, for k = 0 (C holds beta C already).
void apply_epilogue(int64_t m, int64_t n, const GemmEpilogue& e, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float v = c[i * ldc + j] + (e.bias ? e.bias[j] : 0.0f);
      v = e.relu && !(v > 0.0f) ? 0.0f : v;
      c[i * ldc + j] = e.sigmoid ? math::sigmoid(v) : v;
    }
}

}  // namespace

bool sgemm_avx512_available() { return cpu_isa() >= 2; }

void sgemm_avx512(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                  const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const GemmEpilogue* epilogue) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || (beta != 0.0f && beta != 1.0f)) {
    scale_rows(m, n, beta, c, ldc);
    if (k <= 0) {
      if (epilogue) apply_epilogue(m, n, *epilogue, c, ldc);
      return;
    }
    beta = 1.0f;
  }
  const float* bias = epilogue ? epilogue->bias : nullptr;
  const bool relu = epilogue && epilogue->relu;
  float* packed = pack_buffer();
  const auto& kernels = kKernels[trans_a ? 1 : 0];
  for (int64_t jc = 0; jc < n; jc += kNC) {
    const int64_t nc = std::min(kNC, n - jc);
    for (int64_t pc = 0; pc < k; pc += kKC) {
      const int64_t kc = std::min(kKC, k - pc);
      const bool accumulate = pc > 0 || beta != 0.0f, last = pc + kc == k;
      // Pack this slice of B panel by panel: 32 wide, the last one 16 wide when 16 columns do.
      float* panel = packed;
      for (int64_t jr = 0; jr < nc; jr += 32) {
        const int64_t cols = std::min<int64_t>(32, nc - jr);
        const int width = cols > 16 ? 32 : 16;
        const float* src = trans_b ? b + (jc + jr) * ldb + pc : b + pc * ldb + jc + jr;
        pack_panel(trans_b, src, ldb, kc, cols, width, panel);
        panel += kc * width;
      }
      panel = packed;
      for (int64_t jr = 0; jr < nc; jr += 32) {
        const int64_t cols = std::min<int64_t>(32, nc - jr);
        const int width = cols > 16 ? 32 : 16;
        const auto& by_rows = kernels[width / 16 - 1];
        for (int64_t ir = 0; ir < m; ir += kMR) {
          const int64_t rows = std::min<int64_t>(kMR, m - ir);
          const float* ap = trans_a ? a + pc * lda + ir : a + ir * lda + pc;
          by_rows[rows](kc, ap, lda, panel, c + ir * ldc + jc + jr, ldc, cols, accumulate,
                        last && bias ? bias + jc + jr : nullptr, last && relu ? kActRelu : kActNone);
        }
        panel += kc * width;
      }
    }
  }
}

void sgemm_avx512_packed(int64_t m, int64_t n, int64_t k, int64_t j_lo, int64_t j_hi, const float* a, int64_t lda,
                         const float* b, float* c, int64_t ldc, const GemmEpilogue& epilogue) {
  if (m <= 0 || j_hi <= j_lo) return;
  if (k <= 0) {
    GemmEpilogue shifted = epilogue;
    if (shifted.bias) shifted.bias += j_lo;
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc + j_lo, c + i * ldc + j_hi, 0.0f);
    return apply_epilogue(m, j_hi - j_lo, shifted, c + j_lo, ldc);
  }
  const auto& kernels = kKernels[0];
  const int act = epilogue.relu ? kActRelu : epilogue.sigmoid ? kActSigmoid : kActNone;
  for (int64_t pc = 0; pc < k; pc += kKC) {
    const int64_t kc = std::min(kKC, k - pc);
    const bool accumulate = pc > 0, last = pc + kc == k;
    for (int64_t jr = j_lo; jr < j_hi; jr += 32) {
      const int64_t cols = std::min<int64_t>(32, std::min(n, j_hi) - jr);
      const int width = n - jr > 16 ? 32 : 16;  // the packing's panel width, from the full n
      const auto& by_rows = kernels[width / 16 - 1];
      const float* panel = b + jr * k + pc * width;
      for (int64_t ir = 0; ir < m; ir += kMR) {
        const int64_t rows = std::min<int64_t>(kMR, m - ir);
        by_rows[rows](kc, a + ir * lda + pc, lda, panel, c + ir * ldc + jr, ldc, cols, accumulate,
                      last && epilogue.bias ? epilogue.bias + jr : nullptr, last ? act : kActNone);
      }
    }
  }
}

}  // namespace latent::cpu

#else

namespace latent::cpu {
bool sgemm_avx512_available() { return false; }
void sgemm_avx512(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float, float*,
                  int64_t, const GemmEpilogue*) {}
void sgemm_avx512_packed(int64_t, int64_t, int64_t, int64_t, int64_t, const float*, int64_t, const float*, float*,
                         int64_t, const GemmEpilogue&) {}
}  // namespace latent::cpu

#endif
