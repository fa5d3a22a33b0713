// Low-precision GEMM for autocast: see bgemm.h.
#include "bgemm.h"

#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "isa.h"

namespace latent::cpu {

bool bgemm_avx512_available() {
  static const bool on = [] {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return cpu_isa() == 2 && __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
  }();
  return on;
}

namespace {

/// k pairs per packed block: a 32-column B micro-panel of 256 pairs is 32 KiB (L1), the A rows
/// of a 12-row tile 12 KiB.
constexpr int64_t kBlockPairs = 256;

/// Rounds to `dtype` and back (the fallback's operand rounding).
inline float round_to(DType dtype, float v) {
  return dtype == kBFloat16 ? float(BFloat16(v)) : float(Float16(v));
}

}  // namespace

void lowp_gemm_fallback(DType dtype, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                   const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const GemmEpilogue* ep) {
  thread_local std::vector<float> ar, br;
  ar.resize(size_t(m * k));
  br.resize(size_t(k * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p) ar[size_t(i * k + p)] = round_to(dtype, ta ? a[p * lda + i] : a[i * lda + p]);
  for (int64_t p = 0; p < k; ++p)
    for (int64_t j = 0; j < n; ++j) br[size_t(p * n + j)] = round_to(dtype, tb ? b[j * ldb + p] : b[p * ldb + j]);
  if (sgemm_avx512_available()) {
    sgemm_avx512(false, false, m, n, k, ar.data(), k, br.data(), n, beta, c, ldc, ep);
    return;
  }
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.f ? 0.f : c[i * ldc + j] * beta;
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(n), int(k), 1.0f, ar.data(), int(k), br.data(),
                int(n), beta, c, int(ldc));
  }
  if (ep && (ep->bias || ep->relu))
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        float v = c[i * ldc + j] + (ep->bias ? ep->bias[j] : 0.f);
        c[i * ldc + j] = ep->relu && !(v > 0.f) ? 0.f : v;
      }
}

namespace {

#if defined(__x86_64__) && defined(__GNUC__)
#define LATENT_TARGET_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma,prefer-vector-width=512")))

/// Packs rows [0, m) x pairs [p0, p0 + np) of A as bf16 pairs in tiles of kMR rows, the pairs of
/// a tile's rows for one k pair adjacent: ap[(i / kMR) * np * kMR + t * kMR + i % kMR] = (a[i][2t], a[i][2t+1]).
constexpr int kMR = 12;
LATENT_TARGET_BF16 void pack_a(bool ta, int64_t m, int64_t k, const float* a, int64_t lda, int64_t p0, int64_t np,
                               uint32_t* ap) {
  const int64_t k0 = 2 * p0, kk = std::min<int64_t>(2 * np, k - k0);  // k values in this block
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                              22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  auto at = [&](int64_t i, int64_t t) -> uint32_t& { return ap[(i / kMR) * np * kMR + t * kMR + i % kMR]; };
  if (!ta) {
    thread_local std::vector<uint16_t> row;
    row.resize(size_t(2 * np));
    for (int64_t i = 0; i < m; ++i) {
      const float* src = a + i * lda + k0;
      int64_t p = 0;
      for (; p + 32 <= kk; p += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + p + 16), _mm512_loadu_ps(src + p));
        _mm512_storeu_si512(row.data() + p, (__m512i)v);
      }
      for (; p < kk; ++p) row[size_t(p)] = half_bits::bf16_from_float(src[p]);
      for (; p < 2 * np; ++p) row[size_t(p)] = 0;
      const uint32_t* pairs = reinterpret_cast<const uint32_t*>(row.data());
      uint32_t* dst = &at(i, 0);
      for (int64_t t = 0; t < np; ++t) dst[t * kMR] = pairs[t];
    }
  } else {
    // a[p * lda + i]: for each k pair, 16 rows at once, interleaved into 16 pairs.
    alignas(64) uint32_t tmp[16];
    for (int64_t t = 0; t < np; ++t) {
      const int64_t p = 2 * t;
      int64_t i = 0;
      for (; i < m; i += 16) {
        const int64_t w = std::min<int64_t>(16, m - i);
        const __mmask16 mask = static_cast<__mmask16>((1u << w) - 1u);
        const __m512 r0 = p < kk ? _mm512_maskz_loadu_ps(mask, a + (k0 + p) * lda + i) : _mm512_setzero_ps();
        const __m512 r1 = p + 1 < kk ? _mm512_maskz_loadu_ps(mask, a + (k0 + p + 1) * lda + i) : _mm512_setzero_ps();
        _mm512_store_si512(tmp, _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(r1, r0)));
        for (int64_t r = 0; r < w; ++r) at(i + r, t) = tmp[r];
      }
    }
  }
}

/// Transposes a 16 x 16 matrix of 32-bit values held as 16 rows.
LATENT_TARGET_BF16 [[gnu::always_inline]] inline void transpose16x16_epi32(__m512i* r) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // u[4i + c], lane L: rows 4i..4i+3 of column 4L + c
    u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88), v4 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xDD);
    const __m512i v8 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88), v12 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xDD);
    r[c] = _mm512_shuffle_i32x4(v0, v8, 0x88);
    r[c + 8] = _mm512_shuffle_i32x4(v0, v8, 0xDD);
    r[c + 4] = _mm512_shuffle_i32x4(v4, v12, 0x88);
    r[c + 12] = _mm512_shuffle_i32x4(v4, v12, 0xDD);
  }
}

/// Packs columns [0, n) x pairs [p0, p0 + np) of B into 16-column panels: panel q holds
/// bp[q * np * 16 + t * 16 + jj] = (b[2t][16q + jj], b[2t + 1][16q + jj]) (zeros past n and k).
LATENT_TARGET_BF16 void pack_b(bool tb, int64_t n, int64_t k, const float* b, int64_t ldb, int64_t p0, int64_t np,
                               uint32_t* bp) {
  const int64_t k0 = 2 * p0, kk = std::min<int64_t>(2 * np, k - k0);
  const int64_t panels = (n + 15) / 16;
  if (!tb) {
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                                22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int64_t q = 0; q < panels; ++q) {
      const int64_t j0 = q * 16, w = std::min<int64_t>(16, n - j0);
      const __mmask16 mask = static_cast<__mmask16>((1u << w) - 1u);
      uint32_t* o = bp + q * np * 16;
      for (int64_t t = 0; t < np; ++t) {
        const int64_t p = 2 * t;
        const __m512 r0 = p < kk ? _mm512_maskz_loadu_ps(mask, b + (k0 + p) * ldb + j0) : _mm512_setzero_ps();
        const __m512 r1 = p + 1 < kk ? _mm512_maskz_loadu_ps(mask, b + (k0 + p + 1) * ldb + j0) : _mm512_setzero_ps();
        const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(r1, r0);  // r0 in the low 16 lanes, r1 in the high
        _mm512_storeu_si512(o + t * 16, _mm512_permutexvar_epi16(interleave, both));
      }
    }
  } else {
    // b[j * ldb + p]: each column's pairs are adjacent in memory. 16 columns x 16 pairs are
    // converted as 16 rows of 32 bf16 and transposed as a 16 x 16 matrix of pairs in registers.
    for (int64_t q = 0; q < panels; ++q) {
      const int64_t j0 = q * 16, w = std::min<int64_t>(16, n - j0);
      uint32_t* o = bp + q * np * 16;
      for (int64_t t0 = 0; t0 < np; t0 += 16) {
        const int64_t rem = kk - 2 * t0;  // k values left in the block
        const auto mask_of = [](int64_t c) {
          return static_cast<__mmask16>(c >= 16 ? 0xFFFFu : c <= 0 ? 0u : (1u << c) - 1u);
        };
        const __mmask16 m0 = mask_of(rem), m1 = mask_of(rem - 16);
        __m512i r[16];
        for (int jj = 0; jj < 16; ++jj) {
          if (jj >= w) {
            r[jj] = _mm512_setzero_si512();
            continue;
          }
          const float* src = b + (j0 + jj) * ldb + k0 + 2 * t0;
          r[jj] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, src + 16), _mm512_maskz_loadu_ps(m0, src));
        }
        transpose16x16_epi32(r);
        const int64_t tn = std::min<int64_t>(16, np - t0);
        for (int64_t tt = 0; tt < tn; ++tt) _mm512_storeu_si512(o + (t0 + tt) * 16, r[tt]);
      }
    }
  }
}

/// C tile (MR rows x NV * 16 columns, the last panel `w_last` wide) from np pairs; `first`: this
/// block starts the sum (C = beta C + AB) else C += AB; `last`: apply the epilogue.
template <int MR, int NV>
LATENT_TARGET_BF16 [[gnu::always_inline]] inline void tile(const uint32_t* ap, int64_t np, const uint32_t* bp,
                                                          float* c, int64_t ldc, int w_last, bool first, float beta,
                                                          const GemmEpilogue* ep, const float* bias) {
  __m512 acc[MR][NV];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  const uint32_t* b1 = bp + np * 16;
  for (int64_t t = 0; t < np; ++t) {
    __m512bh bv[NV];
    bv[0] = (__m512bh)_mm512_loadu_si512(bp + t * 16);
    if constexpr (NV == 2) bv[1] = (__m512bh)_mm512_loadu_si512(b1 + t * 16);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(ap[t * kMR + r]));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
    }
  }
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    const __mmask16 mask = v == NV - 1 ? static_cast<__mmask16>((1u << w_last) - 1u) : __mmask16(0xFFFF);
    const __m512 bias_v = ep && ep->bias ? _mm512_maskz_loadu_ps(mask, bias + v * 16) : _mm512_setzero_ps();
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      float* cp = c + r * ldc + v * 16;
      __m512 x = acc[r][v];
      if (!first) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, cp));
      else if (beta != 0.f) x = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mask, cp), x);
      if (ep) {
        x = _mm512_add_ps(x, bias_v);
        if (ep->relu) x = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), x);  // NaN -> 0
      }
      _mm512_mask_storeu_ps(cp, mask, x);
    }
  }
}

template <int NV>
LATENT_TARGET_BF16 void tile_rows(int mr, const uint32_t* ap, int64_t np, const uint32_t* bp, float* c, int64_t ldc,
                                  int w_last, bool first, float beta, const GemmEpilogue* ep, const float* bias) {
  switch (mr) {
#define LATENT_BGEMM_CASE(R) \
  case R: return tile<R, NV>(ap, np, bp, c, ldc, w_last, first, beta, ep, bias);
    LATENT_BGEMM_CASE(1) LATENT_BGEMM_CASE(2) LATENT_BGEMM_CASE(3) LATENT_BGEMM_CASE(4)
    LATENT_BGEMM_CASE(5) LATENT_BGEMM_CASE(6) LATENT_BGEMM_CASE(7) LATENT_BGEMM_CASE(8)
    LATENT_BGEMM_CASE(9) LATENT_BGEMM_CASE(10) LATENT_BGEMM_CASE(11) LATENT_BGEMM_CASE(12)
#undef LATENT_BGEMM_CASE
    default: return;
  }
}

void bgemm_avx512(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                  int64_t ldb, float beta, float* c, int64_t ldc, const GemmEpilogue* ep) {
  thread_local std::vector<uint32_t> apack, bpack;
  const int64_t pairs = (k + 1) / 2, panels = (n + 15) / 16, mtiles = (m + kMR - 1) / kMR;
  if (pairs == 0) {  // no products: C = beta C, then the epilogue
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        float v = beta == 0.f ? 0.f : beta * c[i * ldc + j];
        if (ep) v += ep->bias ? ep->bias[j] : 0.f;
        c[i * ldc + j] = ep && ep->relu && !(v > 0.f) ? 0.f : v;
      }
    return;
  }
  for (int64_t p0 = 0; p0 < pairs; p0 += kBlockPairs) {
    const int64_t np = std::min(kBlockPairs, pairs - p0);
    apack.resize(size_t(mtiles * kMR * np));
    bpack.resize(size_t(panels * np * 16));
    pack_a(ta, m, k, a, lda, p0, np, apack.data());
    pack_b(tb, n, k, b, ldb, p0, np, bpack.data());
    const bool first = p0 == 0, last = p0 + np == pairs;
    const GemmEpilogue* e = last ? ep : nullptr;
    for (int64_t q = 0; q < panels; q += 2) {
      const int nv = q + 1 < panels ? 2 : 1;
      const int64_t j0 = q * 16;
      const int w_last = static_cast<int>(std::min<int64_t>(16, n - (q + nv - 1) * 16));
      const uint32_t* bq = bpack.data() + q * np * 16;
      const float* bias = e && e->bias ? e->bias + j0 : nullptr;
      for (int64_t i = 0; i < m; i += kMR) {
        const int mr = static_cast<int>(std::min<int64_t>(kMR, m - i));
        if (nv == 2) tile_rows<2>(mr, apack.data() + i * np, np, bq, c + i * ldc + j0, ldc, w_last, first, beta, e, bias);
        else tile_rows<1>(mr, apack.data() + i * np, np, bq, c + i * ldc + j0, ldc, w_last, first, beta, e, bias);
      }
    }
  }
}
#endif

}  // namespace

void lowp_gemm_serial(DType dtype, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                      const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const GemmEpilogue* ep) {
  if (m <= 0 || n <= 0) return;
#if defined(__x86_64__) && defined(__GNUC__)
  if (dtype == kBFloat16 && bgemm_avx512_available())
    return bgemm_avx512(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, ep);
#endif
  lowp_gemm_fallback(dtype, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, ep);
}

}  // namespace latent::cpu
