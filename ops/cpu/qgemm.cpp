// int8 GEMM kernels (see qgemm.h for the layout and the arithmetic). Each variant computes
// tiles of up to MR rows x NP panels (16 columns each) into int32 accumulators in registers,
// writes the tile to a small buffer, and one shared epilogue (compiled per instruction set)
// dequantizes or requantizes it into the output.
#include "qgemm.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "../../autograd/error.h"
#include "../scalar_math.h"
#include "isa.h"
#include "workers.h"

// GCC 12 warns "may be used uninitialized" about its own AVX-512 headers (the _mm512_undefined_*
// operands of the unmasked intrinsics) and about the tiles' int32 buffers, which the generic
// store reads only for the rows x panels the tile filled; neither is a real read of garbage.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace latent::cpu {

namespace {

constexpr const char* kOp = "qgemm";
constexpr int kPanel = 16;   // output channels per panel
constexpr int kMaxNP = 4;    // panels per tile
constexpr int kMaxMR = 8;    // rows per tile (buffers; the VNNI tiles take kVnniMR, or kVnniMR1 for one panel)
constexpr int kVnniMR = 4;   // 4 rows x 4 panels: 16 accumulators (tile_vnni_fixed names them)
constexpr int kVnniMR1 = 8;  // one panel (16 output channels: the small convs): 8 rows, 8 accumulators

// Per-call constants of the epilogue: v = float(acc - zero_sum[j]) * scale[j] + bias[j] is the real
// value (float32 and int32 outputs), or, for a uint8 output, the real value over out_scale plus
// out_zero (both folded into scale and bias), so the level is clamp(round_half_even(v), lo, 255)
// with lo = the zero point under relu (relu and requantizing commute), else 0.
struct ColumnTerms {
  const int32_t* zero_sum;
  const float* scale;
  const float* bias;
  int32_t lo;
};

struct Job {
  int64_t m;
  const uint8_t* a;
  int64_t lda;
  const PackedQWeight* b;
  const QEpilogue* ep;
  ColumnTerms terms;
  const QRowGather* gather;  // null: row i at a + i * lda, one run of k4 bytes
  // Row i's first byte, and the runs of every row (one of k4 bytes at offset 0 without a gather).
  const uint8_t* row(int64_t i) const { return gather ? a + gather->row_offset[i] : a + i * lda; }
  int64_t segments() const { return gather ? gather->segments : 1; }
  int64_t seg_bytes() const { return gather ? gather->seg_bytes : b->k4; }
  int64_t seg_offset(int64_t s) const { return gather ? gather->seg_offset[s] : 0; }
};

#define LATENT_ALWAYS_INLINE inline __attribute__((always_inline))

// clamp(round_half_even(v) + zero, lo, 255) as a float holding an integer. The clamp to
// [-512, 512] first keeps the magic-number rounding exact (it needs |v| < 2^22, under the default
// rounding mode: the build has no -ffast-math) and maps NaN to the zero point; written without
// calls so the compiler vectorises it.
LATENT_ALWAYS_INLINE float to_u8_level(float v, float zero, float lo) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  v = v == v ? v : 0.0f;
  v = std::min(std::max(v, -512.0f), 512.0f);
  v = ((v + kMagic) - kMagic) + zero;
  return std::min(std::max(v, lo), 255.0f);
}

// acc: rows x kMaxNP*16 int32 (row stride kMaxNP*16); columns [j0, j0 + cols).
LATENT_ALWAYS_INLINE void store_tile_body(const int32_t* acc, int rows, int64_t i0, int64_t j0, int cols,
                                          const QEpilogue& ep, const ColumnTerms& t) {
  const int32_t* zs = t.zero_sum + j0;
  const float* sc = t.scale + j0;
  const float* bi = t.bias + j0;
  if (ep.col_stride != 1 && ep.ldc == 1 && !ep.row_offset) {
    // A conv's (C, H, W) output with rows = consecutive pixels: the tile's values computed along
    // the channels (vectorized), then each channel's `rows` pixels written as one contiguous run.
    const int64_t cs = ep.col_stride;
    if (ep.out_i32) {
      int32_t* o = ep.out_i32 + i0 + j0 * cs;
      for (int c = 0; c < cols; ++c)
        for (int r = 0; r < rows; ++r) o[c * cs + r] = acc[r * kMaxNP * kPanel + c] - zs[c];
      return;
    }
    alignas(64) float v[kMaxMR][kMaxNP * kPanel];
    const float lo = ep.out_u8 ? float(t.lo) : (ep.relu ? 0.0f : -3.0e38f);
    for (int r = 0; r < rows; ++r) {
      const int32_t* row = acc + r * kMaxNP * kPanel;
      if (ep.out_u8)
        for (int c = 0; c < cols; ++c) v[r][c] = to_u8_level(float(row[c] - zs[c]) * sc[c] + bi[c], 0.0f, lo);
      else
        for (int c = 0; c < cols; ++c) v[r][c] = std::max(float(row[c] - zs[c]) * sc[c] + bi[c], lo);
      if (ep.sigmoid && ep.out_f32)
        for (int c = 0; c < cols; ++c) v[r][c] = math::sigmoid(v[r][c]);
    }
    if (ep.out_u8) {
      uint8_t* o = ep.out_u8 + i0 + j0 * cs;
      for (int c = 0; c < cols; ++c)
        for (int r = 0; r < rows; ++r) o[c * cs + r] = static_cast<uint8_t>(static_cast<int32_t>(v[r][c]));
    } else {
      float* o = ep.out_f32 + i0 + j0 * cs;
      for (int c = 0; c < cols; ++c)
        for (int r = 0; r < rows; ++r) o[c * cs + r] = v[r][c];
    }
    return;
  }
  for (int r = 0; r < rows; ++r) {
    const int32_t* row = acc + r * kMaxNP * kPanel;
    const int64_t row_at = ep.row_offset ? ep.row_offset[i0 + r] : (i0 + r) * ep.ldc;
    const int64_t at = row_at + j0;
    if (ep.out_i32 && ep.col_stride == 1) {
      int32_t* o = ep.out_i32 + at;
      for (int c = 0; c < cols; ++c) o[c] = row[c] - zs[c];
    } else if (ep.col_stride != 1) {  // a conv's (N, C, H, W) output: columns are channels
      const int64_t cs = ep.col_stride, at_strided = row_at + j0 * cs;
      if (ep.out_i32) {
        int32_t* o = ep.out_i32 + at_strided;
        for (int c = 0; c < cols; ++c) o[c * cs] = row[c] - zs[c];
      } else if (ep.out_f32) {
        float* o = ep.out_f32 + at_strided;
        for (int c = 0; c < cols; ++c) {
          const float v = float(row[c] - zs[c]) * sc[c] + bi[c], u = ep.relu ? std::max(v, 0.0f) : v;
          o[c * cs] = ep.sigmoid ? math::sigmoid(u) : u;
        }
      } else {
        uint8_t* o = ep.out_u8 + at_strided;
        const float lo = float(t.lo);
        for (int c = 0; c < cols; ++c)
          o[c * cs] = static_cast<uint8_t>(static_cast<int32_t>(to_u8_level(float(row[c] - zs[c]) * sc[c] + bi[c], 0.0f, lo)));
      }
    } else if (ep.out_f32) {
      float* o = ep.out_f32 + at;
      if (ep.relu)
        for (int c = 0; c < cols; ++c) o[c] = std::max(float(row[c] - zs[c]) * sc[c] + bi[c], 0.0f);
      else
        for (int c = 0; c < cols; ++c) o[c] = float(row[c] - zs[c]) * sc[c] + bi[c];
      if (ep.sigmoid)
        for (int c = 0; c < cols; ++c) o[c] = math::sigmoid(o[c]);
    } else {
      uint8_t* o = ep.out_u8 + at;
      const float lo = float(t.lo);
      // levels first (vectorized along the columns), then the narrowing to bytes
      alignas(64) int32_t lv[kMaxNP * kPanel];
      for (int c = 0; c < cols; ++c)
        lv[c] = static_cast<int32_t>(to_u8_level(float(row[c] - zs[c]) * sc[c] + bi[c], 0.0f, lo));
      for (int c = 0; c < cols; ++c) o[c] = static_cast<uint8_t>(lv[c]);
    }
  }
}

LATENT_ALWAYS_INLINE int32_t load_group(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// ---- portable fallback --------------------------------------------------------------------------

void tile_base(const Job& job, int64_t i0, int rows, int64_t panel0, int np) {
  const PackedQWeight& b = *job.b;
  int32_t acc[kMaxMR * kMaxNP * kPanel] = {};
  const int64_t nseg = job.segments(), sb = job.seg_bytes();
  for (int r = 0; r < rows; ++r) {
    const uint8_t* row = job.row(i0 + r);
    int32_t* out = acc + r * kMaxNP * kPanel;
    for (int p = 0; p < np; ++p) {
      const int8_t* w = b.data.get() + (panel0 + p) * b.panel_bytes();
      for (int64_t sg = 0; sg < nseg; ++sg) {
        const uint8_t* a = row + job.seg_offset(sg);
        for (int64_t g = 0; g < sb; g += 4, w += 64)
          for (int c = 0; c < kPanel; ++c) {
            int32_t s = 0;
            for (int q = 0; q < 4; ++q) s += int32_t(a[g + q]) * int32_t(w[c * 4 + q]);
            out[p * kPanel + c] += s;
          }
      }
    }
  }
  const int64_t j0 = panel0 * kPanel;
  const int cols = int(std::min<int64_t>(int64_t(np) * kPanel, b.n - j0));
  store_tile_body(acc, rows, i0, j0, cols, *job.ep, job.terms);
}

#if defined(__x86_64__) && defined(__GNUC__)

#define LATENT_TARGET_VNNI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma")))

// ---- AVX-512 VNNI: VPDPBUSD, 16 int32 lanes per panel -------------------------------------------

// acc += a (unsigned bytes) x w (signed bytes), four products per int32 lane. Inline assembly
// rather than _mm512_dpbusd_epi32: with the intrinsic GCC 12 copied every accumulator to a fresh
// register (and some to the stack) around each VPDPBUSD of the 4 x 4 tile, a third of the loop's
// instructions; "+v" keeps each accumulator in its register.
LATENT_TARGET_VNNI LATENT_ALWAYS_INLINE void dpbusd(__m512i& acc, __m512i a, __m512i w) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(w));
}

// sigmoid(x) = 1 / (1 + e^-x) on 16 lanes for the float32 store of the last layer. e^-x = 2^u with
// u = -x log2(e): 2^n (VSCALEFPS) times 2^f for f = u - n in [-1/2, 1/2] (n = round(u)), 2^f by a
// degree-4 polynomial (least-squares fit on Chebyshev nodes, relative error 2.7e-6); the
// reciprocal by VRCP14PS and one Newton step. x is clamped to [-30, 30] (beyond it the
// result is 0 or 1 within 1e-13), which keeps 1 + e^-x finite for the Newton step; NaN stays NaN.
// 14 vector operations, most of them on the FMA pipes that VPDPBUSD also uses, so each one counts;
// within 2e-6 of the exact sigmoid (tests/test_quant.cpp), not math::sigmoid bit for bit: an int8
// layer's outputs are quantization steps (1e-3 and more) from the float32 model's anyway.
LATENT_TARGET_VNNI LATENT_ALWAYS_INLINE __m512 sigmoid16(__m512 x) {
  // VMAXPS/VMINPS return their second operand when either is NaN: x's NaN goes through
  const __m512 t = _mm512_min_ps(_mm512_set1_ps(30.0f), _mm512_max_ps(_mm512_set1_ps(-30.0f), x));
  const __m512 u = _mm512_mul_ps(t, _mm512_set1_ps(-1.44269504088896341f));
  const __m512 n = _mm512_roundscale_ps(u, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(u, n);
  __m512 p = _mm512_set1_ps(9.570100345e-03f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.591785908e-02f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402474433e-01f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931217909e-01f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.999992847e-01f));
  const __m512 d = _mm512_add_ps(_mm512_scalef_ps(p, n), _mm512_set1_ps(1.0f));  // 1 + e^-x
  const __m512 y = _mm512_rcp14_ps(d);
  return _mm512_mul_ps(y, _mm512_fnmadd_ps(d, y, _mm512_set1_ps(2.0f)));  // y (2 - d y)
}

// One row of one panel of a VNNI tile, from its accumulator register into the output (row-major,
// ldc apart): the arithmetic of store_tile_body with the scale and bias as one FMA. A uint8
// level is VCVTPS2DQ's round half to even of v clamped to 512 above (larger values and +inf
// saturate to 255), then max(., lo) and VPMOVUSDB's unsigned saturation at 255; NaN, which only
// a NaN bias gives, lands on lo.
LATENT_TARGET_VNNI LATENT_ALWAYS_INLINE void store_row_vnni(__m512i acc, int p, int64_t i, int64_t j0, int cols,
                                                          const QEpilogue& ep, const ColumnTerms& t) {
  const int64_t c = j0 + p * kPanel;
  const int live = cols - p * kPanel;  // 1..16 columns of this panel hold outputs
  const __mmask16 mask = live >= kPanel ? __mmask16(0xffff) : __mmask16((1u << live) - 1);
  const __m512i v = _mm512_sub_epi32(acc, _mm512_loadu_si512(t.zero_sum + c));  // the terms hold whole panels
  const int64_t at = (ep.row_offset ? ep.row_offset[i] : i * ep.ldc) + c;
  if (ep.out_i32) {
    _mm512_mask_storeu_epi32(ep.out_i32 + at, mask, v);
    return;
  }
  __m512 f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), _mm512_loadu_ps(t.scale + c), _mm512_loadu_ps(t.bias + c));
  if (ep.out_f32) {
    if (ep.relu) f = _mm512_max_ps(f, _mm512_setzero_ps());
    if (ep.sigmoid) f = sigmoid16(f);
    _mm512_mask_storeu_ps(ep.out_f32 + at, mask, f);
    return;
  }
  const __m512i q = _mm512_cvt_roundps_epi32(_mm512_min_ps(_mm512_set1_ps(512.0f), f),
                                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  _mm_mask_storeu_epi8(ep.out_u8 + at, mask, _mm512_cvtusepi32_epi8(_mm512_max_epi32(q, _mm512_set1_epi32(t.lo))));
}

template <int MR, int NP>
LATENT_TARGET_VNNI void tile_vnni_fixed(const Job& job, int64_t i0, int64_t panel0) {
  const PackedQWeight& b = *job.b;
  // Named accumulators (c[r][p] spelled out by the macros), not an array: GCC kept an array of
  // __m512i in memory around the asm's "+v" operands.
#define LATENT_Q_ROW(r) __m512i c##r##0 = _mm512_setzero_si512(), c##r##1 = c##r##0, c##r##2 = c##r##0, c##r##3 = c##r##0;
  LATENT_Q_ROW(0) LATENT_Q_ROW(1) LATENT_Q_ROW(2) LATENT_Q_ROW(3)
#undef LATENT_Q_ROW
  const int8_t* w = b.data.get() + panel0 * b.panel_bytes();
  const int64_t pb = b.panel_bytes(), nseg = job.segments(), sb = job.seg_bytes();
  // each row's first byte (the last real row stands in for the rows past m: MR <= m - i0)
  const uint8_t* r0 = job.row(i0);
  const uint8_t* r1 = MR > 1 ? job.row(i0 + 1) : r0;
  const uint8_t* r2 = MR > 2 ? job.row(i0 + 2) : r0;
  const uint8_t* r3 = MR > 3 ? job.row(i0 + 3) : r0;
  for (int64_t sg = 0; sg < nseg; ++sg) {
    const int64_t so = job.seg_offset(sg);
    const uint8_t *a0 = r0 + so, *a1 = r1 + so, *a2 = r2 + so, *a3 = r3 + so;
    for (int64_t g = 0; g < sb; g += 4, w += 64) {
      const __m512i w0 = _mm512_load_si512(w);
      const __m512i w1 = NP > 1 ? _mm512_load_si512(w + pb) : w0;
      const __m512i w2 = NP > 2 ? _mm512_load_si512(w + 2 * pb) : w0;
      const __m512i w3 = NP > 3 ? _mm512_load_si512(w + 3 * pb) : w0;
#define LATENT_Q_ROW(r)                                              \
  if constexpr (MR > r) {                                            \
    const __m512i av = _mm512_set1_epi32(load_group(a##r + g));     \
    dpbusd(c##r##0, av, w0);                                         \
    if constexpr (NP > 1) dpbusd(c##r##1, av, w1);                   \
    if constexpr (NP > 2) dpbusd(c##r##2, av, w2);                   \
    if constexpr (NP > 3) dpbusd(c##r##3, av, w3);                   \
  }
      LATENT_Q_ROW(0) LATENT_Q_ROW(1) LATENT_Q_ROW(2) LATENT_Q_ROW(3)
#undef LATENT_Q_ROW
    }
  }
  const int64_t j0 = panel0 * kPanel;
  const int cols = int(std::min<int64_t>(int64_t(NP) * kPanel, b.n - j0));
  const QEpilogue ep = *job.ep;  // a local copy: the output stores cannot alias it, so nothing is reloaded
  if (ep.col_stride == 1) {  // row-major output: the epilogue on the registers
#define LATENT_Q_ROW(r)                                                                      \
  if constexpr (MR > r) {                                                                    \
    store_row_vnni(c##r##0, 0, i0 + r, j0, cols, ep, job.terms);                              \
    if constexpr (NP > 1) store_row_vnni(c##r##1, 1, i0 + r, j0, cols, ep, job.terms);        \
    if constexpr (NP > 2) store_row_vnni(c##r##2, 2, i0 + r, j0, cols, ep, job.terms);        \
    if constexpr (NP > 3) store_row_vnni(c##r##3, 3, i0 + r, j0, cols, ep, job.terms);        \
  }
    LATENT_Q_ROW(0) LATENT_Q_ROW(1) LATENT_Q_ROW(2) LATENT_Q_ROW(3)
#undef LATENT_Q_ROW
    return;
  }
  const __m512i acc[4][4] = {{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23}, {c30, c31, c32, c33}};
  alignas(64) int32_t buf[kMaxMR * kMaxNP * kPanel];
  for (int r = 0; r < MR; ++r)
    for (int p = 0; p < NP; ++p) _mm512_store_si512(buf + r * kMaxNP * kPanel + p * kPanel, acc[r][p]);
  store_tile_body(buf, MR, i0, j0, cols, ep, job.terms);
}

// One panel, MR <= 8 rows: a layer of 16 output channels (or fewer) gets 8 independent
// accumulators (4 left VPDPBUSD's latency exposed) and one weight load per 8 instructions.
template <int MR>
LATENT_TARGET_VNNI void tile_vnni_single(const Job& job, int64_t i0, int64_t panel0) {
  const PackedQWeight& b = *job.b;
  __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
  const int8_t* w = b.data.get() + panel0 * b.panel_bytes();
  const int64_t nseg = job.segments(), sb = job.seg_bytes();
#define LATENT_Q_PTR(i) const uint8_t* r##i = MR > i ? job.row(i0 + i) : nullptr;
  LATENT_Q_PTR(0) LATENT_Q_PTR(1) LATENT_Q_PTR(2) LATENT_Q_PTR(3) LATENT_Q_PTR(4) LATENT_Q_PTR(5) LATENT_Q_PTR(6) LATENT_Q_PTR(7)
#undef LATENT_Q_PTR
  for (int64_t sg = 0; sg < nseg; ++sg) {
    const int64_t so = job.seg_offset(sg);
    for (int64_t g = 0; g < sb; g += 4, w += 64) {
      const __m512i w0 = _mm512_load_si512(w);
#define LATENT_Q_ROW(i) \
  if constexpr (MR > i) dpbusd(c##i, _mm512_set1_epi32(load_group(r##i + so + g)), w0);
      LATENT_Q_ROW(0) LATENT_Q_ROW(1) LATENT_Q_ROW(2) LATENT_Q_ROW(3) LATENT_Q_ROW(4) LATENT_Q_ROW(5) LATENT_Q_ROW(6) LATENT_Q_ROW(7)
#undef LATENT_Q_ROW
    }
  }
  const int64_t j0 = panel0 * kPanel;
  const int cols = int(std::min<int64_t>(kPanel, b.n - j0));
  const QEpilogue ep = *job.ep;
  const __m512i acc[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
  if (ep.col_stride == 1) {
    for (int r = 0; r < MR; ++r) store_row_vnni(acc[r], 0, i0 + r, j0, cols, ep, job.terms);
    return;
  }
  alignas(64) int32_t buf[kMaxMR * kMaxNP * kPanel];
  for (int r = 0; r < MR; ++r) _mm512_store_si512(buf + r * kMaxNP * kPanel, acc[r]);
  store_tile_body(buf, MR, i0, j0, cols, ep, job.terms);
}

// ---- AVX2: VPMADDUBSW on the low 7 bits and the top bit, VPMADDWD to int32 ----------------------

template <int MR, int NP>
__attribute__((target("avx2,fma"))) void tile_avx2_fixed(const Job& job, int64_t i0, int64_t panel0) {
  const PackedQWeight& b = *job.b;
  __m256i acc[MR][2 * NP];
  for (int r = 0; r < MR; ++r)
    for (int p = 0; p < 2 * NP; ++p) acc[r][p] = _mm256_setzero_si256();
  const int8_t* w = b.data.get() + panel0 * b.panel_bytes();
  const int64_t pb = b.panel_bytes(), sb = job.seg_bytes();
  const uint8_t* rows[MR];
  for (int r = 0; r < MR; ++r) rows[r] = job.row(i0 + r);
  const __m256i low7 = _mm256_set1_epi8(0x7f), one8 = _mm256_set1_epi8(1);
  const __m256i ones16 = _mm256_set1_epi16(1), x128 = _mm256_set1_epi16(128);
  // gk: the group's byte in the packed k; (so, g): its run's offset and its byte within the run
  for (int64_t gk = 0, so = job.seg_offset(0), g = 0, sg = 0; gk < b.k4; gk += 4, g += 4) {
    if (g == sb) so = job.seg_offset(++sg), g = 0;
    __m256i wv[2 * NP];
    for (int p = 0; p < NP; ++p) {
      wv[2 * p] = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + p * pb + gk * 16));
      wv[2 * p + 1] = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + p * pb + gk * 16 + 32));
    }
    for (int r = 0; r < MR; ++r) {
      const __m256i av = _mm256_set1_epi32(load_group(rows[r] + so + g));
      const __m256i lo = _mm256_and_si256(av, low7);                           // 0..127
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(av, 7), one8);     // 0 or 1
      for (int p = 0; p < 2 * NP; ++p) {
        const __m256i plo = _mm256_maddubs_epi16(lo, wv[p]);  // |pair| <= 32512: no saturation
        const __m256i phi = _mm256_maddubs_epi16(hi, wv[p]);  // |pair| <= 256
        acc[r][p] = _mm256_add_epi32(acc[r][p], _mm256_add_epi32(_mm256_madd_epi16(plo, ones16),
                                                                  _mm256_madd_epi16(phi, x128)));
      }
    }
  }
  alignas(64) int32_t buf[kMaxMR * kMaxNP * kPanel];
  for (int r = 0; r < MR; ++r)
    for (int p = 0; p < 2 * NP; ++p)
      _mm256_store_si256(reinterpret_cast<__m256i*>(buf + r * kMaxNP * kPanel + p * 8), acc[r][p]);
  const int64_t j0 = panel0 * kPanel;
  const int cols = int(std::min<int64_t>(int64_t(NP) * kPanel, b.n - j0));
  store_tile_body(buf, MR, i0, j0, cols, *job.ep, job.terms);
}

// Tables of the instantiations, indexed [rows - 1][panels - 1].
using TileFn = void (*)(const Job&, int64_t, int64_t);
template <int MR, int NP> struct VnniTile { static void run(const Job& j, int64_t i, int64_t p) { tile_vnni_fixed<MR, NP>(j, i, p); } };
template <int MR, int NP> struct Avx2Tile { static void run(const Job& j, int64_t i, int64_t p) { tile_avx2_fixed<MR, NP>(j, i, p); } };

template <template <int, int> class K, int MR>
constexpr std::array<TileFn, kMaxNP> row_of() { return {&K<MR, 1>::run, &K<MR, 2>::run, &K<MR, 3>::run, &K<MR, 4>::run}; }

template <template <int, int> class K>
constexpr std::array<std::array<TileFn, kMaxNP>, kVnniMR> table_of() {
  return {row_of<K, 1>(), row_of<K, 2>(), row_of<K, 3>(), row_of<K, 4>()};
}

constexpr auto kVnniTiles = table_of<VnniTile>();
constexpr std::array<TileFn, kVnniMR1> kVnniSingleTiles = {
    &tile_vnni_single<1>, &tile_vnni_single<2>, &tile_vnni_single<3>, &tile_vnni_single<4>,
    &tile_vnni_single<5>, &tile_vnni_single<6>, &tile_vnni_single<7>, &tile_vnni_single<8>};
// AVX2 has 16 ymm registers: at most 2 rows x 2 panels (8 accumulators, 4 weight vectors).
constexpr int kAvx2MR = 2, kAvx2NP = 2;
constexpr std::array<std::array<TileFn, 2>, 2> kAvx2Tiles = {
    std::array<TileFn, 2>{&Avx2Tile<1, 1>::run, &Avx2Tile<1, 2>::run},
    std::array<TileFn, 2>{&Avx2Tile<2, 1>::run, &Avx2Tile<2, 2>::run}};

#endif

bool cpu_has_vnni() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

bool cpu_has_avx2() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

// Columns [panel_lo, panel_hi) for every row, with the ISA's tiles.
void run_panels(const Job& job, QIsa isa, int64_t panel_lo, int64_t panel_hi) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (isa == QIsa::Avx512Vnni) {
    for (int64_t p = panel_lo; p < panel_hi; p += kMaxNP) {
      const int np = int(std::min<int64_t>(kMaxNP, panel_hi - p));
      if (np == 1) {
        for (int64_t i = 0; i < job.m; i += kVnniMR1)
          kVnniSingleTiles[size_t(std::min<int64_t>(kVnniMR1, job.m - i) - 1)](job, i, p);
        continue;
      }
      for (int64_t i = 0; i < job.m; i += kVnniMR) {
        const int mr = int(std::min<int64_t>(kVnniMR, job.m - i));
        kVnniTiles[mr - 1][np - 1](job, i, p);
      }
    }
    return;
  }
  if (isa == QIsa::Avx2) {
    for (int64_t p = panel_lo; p < panel_hi; p += kAvx2NP) {
      const int np = int(std::min<int64_t>(kAvx2NP, panel_hi - p));
      for (int64_t i = 0; i < job.m; i += kAvx2MR) {
        const int mr = int(std::min<int64_t>(kAvx2MR, job.m - i));
        kAvx2Tiles[mr - 1][np - 1](job, i, p);
      }
    }
    return;
  }
#endif
  for (int64_t p = panel_lo; p < panel_hi; p += kMaxNP) {
    const int np = int(std::min<int64_t>(kMaxNP, panel_hi - p));
    for (int64_t i = 0; i < job.m; i += kMaxMR) tile_base(job, i, int(std::min<int64_t>(kMaxMR, job.m - i)), p, np);
  }
}

}  // namespace

PackedQWeight pack_qweight(int64_t n, int64_t k, const int8_t* w, int64_t ldw) {
  if (n <= 0 || k <= 0) fail(kOp, "weight shape [{}, {}] must be positive", n, k);
  PackedQWeight out;
  out.n = n;
  out.k = k;
  out.k4 = (k + 3) / 4 * 4;
  out.panels = (n + kPanel - 1) / kPanel;
  const size_t bytes = size_t(out.panels * out.panel_bytes() + 63) / 64 * 64;
  out.data = {static_cast<int8_t*>(std::aligned_alloc(64, bytes)), &std::free};
  if (!out.data) fail(kOp, "out of memory packing a [{}, {}] weight", n, k);
  std::memset(out.data.get(), 0, bytes);
  out.col_sum.assign(size_t(out.panels * kPanel), 0);
  for (int64_t j = 0; j < n; ++j) {
    int8_t* panel = out.data.get() + (j / kPanel) * out.panel_bytes();
    const int64_t c = j % kPanel;
    int32_t sum = 0;
    for (int64_t p = 0; p < k; ++p) {
      const int8_t v = w[j * ldw + p];
      panel[(p / 4) * 64 + c * 4 + p % 4] = v;
      sum += v;
    }
    out.col_sum[size_t(j)] = sum;
  }
  return out;
}

QIsa qgemm_best_isa() {
  static const QIsa best = [] {
    const int cap = cpu_isa();  // honours LATENT_CPU_ISA
    if (cap >= 2 && cpu_has_vnni()) return QIsa::Avx512Vnni;
    if (cap >= 1 && cpu_has_avx2()) return QIsa::Avx2;
    return QIsa::Base;
  }();
  return best;
}

const char* qisa_name(QIsa isa) {
  switch (isa) {
    case QIsa::Avx512Vnni: return "avx512-vnni";
    case QIsa::Avx2: return "avx2";
    case QIsa::Base: return "base";
  }
  return "?";
}

void qgemm_u8s8(int64_t m, const uint8_t* a, int64_t lda, const PackedQWeight& b, const QEpilogue& ep) {
  qgemm_u8s8(m, a, lda, b, ep, qgemm_best_isa());
}

namespace {
void run_qgemm(int64_t m, const uint8_t* a, int64_t lda, const QRowGather* gather, const PackedQWeight& b,
               const QEpilogue& ep, QIsa isa);
}  // namespace

void qgemm_u8s8(int64_t m, const uint8_t* a, int64_t lda, const PackedQWeight& b, const QEpilogue& ep, QIsa isa) {
  if (lda < b.k4) fail(kOp, "row stride {} of A is below the packed k {}", lda, b.k4);
  run_qgemm(m, a, lda, nullptr, b, ep, isa);
}

void qgemm_u8s8_gather(int64_t m, const uint8_t* a, const QRowGather& rows, const PackedQWeight& b,
                       const QEpilogue& ep) {
  qgemm_u8s8_gather(m, a, rows, b, ep, qgemm_best_isa());
}

void qgemm_u8s8_gather(int64_t m, const uint8_t* a, const QRowGather& rows, const PackedQWeight& b,
                       const QEpilogue& ep, QIsa isa) {
  if (!rows.row_offset || !rows.seg_offset || rows.segments <= 0 || rows.seg_bytes <= 0 || rows.seg_bytes % 4 != 0 ||
      rows.segments * rows.seg_bytes != b.k4)
    fail(kOp, "row gather of {} runs of {} bytes does not cover the packed k {} (runs must be multiples of 4)",
         rows.segments, rows.seg_bytes, b.k4);
  run_qgemm(m, a, 0, &rows, b, ep, isa);
}

namespace {
void run_qgemm(int64_t m, const uint8_t* a, int64_t lda, const QRowGather* gather, const PackedQWeight& b,
               const QEpilogue& ep, QIsa isa) {
  if (m <= 0) return;
  if (int(isa) > int(QIsa::Base) && !(isa == QIsa::Avx2 ? cpu_has_avx2() : cpu_has_vnni()))
    fail(kOp, "this CPU cannot run the {} kernel", qisa_name(isa));
  if (int(!!ep.out_f32) + int(!!ep.out_u8) + int(!!ep.out_i32) != 1)
    fail(kOp, "exactly one output (float32, uint8 or int32) must be given");
  if (ep.a_zero < 0 || ep.a_zero > 255) fail(kOp, "activation zero point {} is outside [0, 255]", ep.a_zero);
  if (ep.col_stride < 1) fail(kOp, "column stride {} must be 1 or more", ep.col_stride);
  if (ep.sigmoid && !ep.out_f32) fail(kOp, "the sigmoid store needs the float32 output");
  if (ep.out_u8 && (!(ep.out_scale > 0.0f) || !std::isfinite(ep.out_scale) || ep.out_zero < 0 || ep.out_zero > 255))
    fail(kOp, "uint8 output needs a positive finite scale and a zero point in [0, 255]; got {} and {}", ep.out_scale,
         ep.out_zero);

  // Per-column constants, in per-thread buffers reused across calls.
  thread_local std::vector<int32_t> zero_sum;
  thread_local std::vector<float> scale, bias;
  const size_t cols = size_t(b.panels * kPanel);
  zero_sum.resize(cols);
  scale.resize(cols);
  bias.resize(cols);
  // A uint8 output folds 1 / out_scale and out_zero into the scale and bias (see ColumnTerms).
  const float fold = ep.out_u8 ? 1.0f / ep.out_scale : 1.0f, shift = ep.out_u8 ? float(ep.out_zero) : 0.0f;
  for (size_t j = 0; j < cols; ++j) {
    const bool real = int64_t(j) < b.n;
    zero_sum[j] = ep.a_zero * b.col_sum[j];
    scale[j] = ep.a_scale * (real && ep.w_scale ? ep.w_scale[j] : 1.0f) * fold;
    bias[j] = (real && ep.bias ? ep.bias[j] : 0.0f) * fold + shift;
  }
  const int32_t lo = ep.out_u8 && ep.relu ? ep.out_zero : 0;
  const Job job{m, a, lda, &b, &ep, {zero_sum.data(), scale.data(), bias.data(), lo}, gather};

  const int64_t work = m * b.n * b.k;
  const RangeSplit split = split_range(b.panels, work >= (int64_t{1} << 18) ? 0 : b.panels + 1, 1);
  parallel_for(split, [&](int, int64_t lo, int64_t hi) { run_panels(job, isa, lo, hi); });
}
}  // namespace

namespace {
LATENT_ALWAYS_INLINE void quantize_u8_impl_body(int64_t m, int64_t k, const float* x, int64_t ldx, float scale,
                                           int32_t zero, uint8_t* q, int64_t ldq) {
  const float inv = 1.0f / scale, z = float(zero);
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * ldx;
    uint8_t* qi = q + i * ldq;
    for (int64_t p = 0; p < k; ++p) {
      qi[p] = static_cast<uint8_t>(static_cast<int32_t>(to_u8_level(xi[p] * inv, z, 0.0f)));
    }
  }
}
LATENT_CPU_MULTI_ISA(quantize_u8_impl,
                     (int64_t m, int64_t k, const float* x, int64_t ldx, float scale, int32_t zero, uint8_t* q,
                      int64_t ldq),
                     (m, k, x, ldx, scale, zero, q, ldq))
}  // namespace

#if defined(__x86_64__) && defined(__GNUC__)
// The AVX-512 form of quantize_u8_impl, 16 floats at a time in 6 operations: NaN to 0
// (VFIXUPIMMPS), x / scale + zero as one FMA with x times 1 / scale, clamped to 512 above,
// VCVTPS2DQ's round half to even, max(., 0) and VPMOVUSDB's unsigned saturation at 255. The zero
// point added before the rounding instead of after gives the same level (it is an integer) but
// where the float32 sum lands on the other side of a tie; GCC's vectorisation of to_u8_level's
// NaN-aware clamps spent 18% of a deep AE's int8 pass here.
LATENT_TARGET_VNNI LATENT_ALWAYS_INLINE __m128i quantize16(__m512 x, __m512 inv, __m512 zero) {
  // class table: QNaN and SNaN -> +0 (token 8), every other class -> x itself (token 1)
  x = _mm512_fixupimm_ps(x, x, _mm512_set1_epi32(0x11111188), 0);
  const __m512 v = _mm512_min_ps(_mm512_set1_ps(512.0f), _mm512_fmadd_ps(x, inv, zero));
  const __m512i q = _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm512_cvtusepi32_epi8(_mm512_max_epi32(q, _mm512_setzero_si512()));
}

LATENT_TARGET_VNNI void quantize_u8_avx512(int64_t m, int64_t k, const float* x, int64_t ldx, float scale,
                                           int32_t zero, uint8_t* q, int64_t ldq) {
  const __m512 inv = _mm512_set1_ps(1.0f / scale), z = _mm512_set1_ps(float(zero));
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * ldx;
    uint8_t* qi = q + i * ldq;
    int64_t p = 0;
    for (; p + 16 <= k; p += 16)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qi + p), quantize16(_mm512_loadu_ps(xi + p), inv, z));
    if (p < k) {
      const __mmask16 mask = __mmask16((1u << (k - p)) - 1);
      _mm_mask_storeu_epi8(qi + p, mask, quantize16(_mm512_maskz_loadu_ps(mask, xi + p), inv, z));
    }
  }
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
// quantize_u8_nhwc for c a multiple of 16 with AVX-512: a block of 16 pixels x 16 channels is 16
// quantize16 calls (one channel's 16 pixels each), then a byte transpose by unpacks (4 channels ->
// 4 pixels' 4-byte groups, then a 4 x 4 transpose of those groups), 16 stores of 16 bytes.
LATENT_TARGET_VNNI void quantize_u8_nhwc_avx512(int64_t n, int64_t c, int64_t p, const float* x, float scale,
                                                int32_t zero, uint8_t* q) {
  const __m512 inv = _mm512_set1_ps(1.0f / scale), z = _mm512_set1_ps(float(zero));
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = x + i * c * p;
    uint8_t* qi = q + i * c * p;
    for (int64_t s0 = 0; s0 < p; s0 += 16) {
      const int64_t ns = std::min<int64_t>(16, p - s0);
      const __mmask16 mask = ns == 16 ? __mmask16(0xffff) : __mmask16((1u << ns) - 1);
      for (int64_t c0 = 0; c0 < c; c0 += 16) {
        __m128i r[16];  // r[ch] = channel c0 + ch's 16 pixels
        for (int ch = 0; ch < 16; ++ch) r[ch] = quantize16(_mm512_maskz_loadu_ps(mask, xi + (c0 + ch) * p + s0), inv, z);
        __m128i g[4][4];  // g[group][quad]: pixels 4 quad .. 4 quad + 3, channels 4 group .. 4 group + 3
        for (int gr = 0; gr < 4; ++gr) {
          const __m128i a0 = _mm_unpacklo_epi8(r[4 * gr], r[4 * gr + 1]), a1 = _mm_unpackhi_epi8(r[4 * gr], r[4 * gr + 1]);
          const __m128i b0 = _mm_unpacklo_epi8(r[4 * gr + 2], r[4 * gr + 3]), b1 = _mm_unpackhi_epi8(r[4 * gr + 2], r[4 * gr + 3]);
          g[gr][0] = _mm_unpacklo_epi16(a0, b0), g[gr][1] = _mm_unpackhi_epi16(a0, b0);
          g[gr][2] = _mm_unpacklo_epi16(a1, b1), g[gr][3] = _mm_unpackhi_epi16(a1, b1);
        }
        for (int qd = 0; qd < 4; ++qd) {  // 4 x 4 transpose of 4-byte groups: one 16-byte row per pixel
          const __m128i t0 = _mm_unpacklo_epi32(g[0][qd], g[1][qd]), t1 = _mm_unpackhi_epi32(g[0][qd], g[1][qd]);
          const __m128i t2 = _mm_unpacklo_epi32(g[2][qd], g[3][qd]), t3 = _mm_unpackhi_epi32(g[2][qd], g[3][qd]);
          const __m128i px[4] = {_mm_unpacklo_epi64(t0, t2), _mm_unpackhi_epi64(t0, t2), _mm_unpacklo_epi64(t1, t3),
                                 _mm_unpackhi_epi64(t1, t3)};
          for (int j = 0; j < 4; ++j)
            if (4 * qd + j < ns) _mm_storeu_si128(reinterpret_cast<__m128i*>(qi + (s0 + 4 * qd + j) * c + c0), px[j]);
        }
      }
    }
  }
}
#endif

void quantize_u8_nhwc(int64_t n, int64_t c, int64_t p, const float* x, float scale, int32_t zero, uint8_t* q) {
  if (!(scale > 0.0f)) fail("quantize", "scale must be positive; got {}", scale);
#if defined(__x86_64__) && defined(__GNUC__)
  if (qgemm_best_isa() == QIsa::Avx512Vnni && c % 16 == 0) return quantize_u8_nhwc_avx512(n, c, p, x, scale, zero, q);
#endif
  // quantize_u8's rounding per (pixel, channel), then the transpose
  std::vector<uint8_t> row(static_cast<size_t>(p));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      quantize_u8(1, p, x + (i * c + ch) * p, p, scale, zero, row.data(), p);
      for (int64_t s = 0; s < p; ++s) q[(i * p + s) * c + ch] = row[size_t(s)];
    }
}

void quantize_u8(int64_t m, int64_t k, const float* x, int64_t ldx, float scale, int32_t zero, uint8_t* q,
                 int64_t ldq) {
  if (!(scale > 0.0f)) fail("quantize", "scale must be positive; got {}", scale);
#if defined(__x86_64__) && defined(__GNUC__)
  if (qgemm_best_isa() == QIsa::Avx512Vnni) return quantize_u8_avx512(m, k, x, ldx, scale, zero, q, ldq);
#endif
  quantize_u8_impl(m, k, x, ldx, scale, zero, q, ldq);
}

}  // namespace latent::cpu
