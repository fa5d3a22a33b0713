// CPU convolution kernels: im2col / col2im over a chunk of the batch and one OpenBLAS GEMM per
// (chunk, group), so a batch of small images makes one large GEMM instead of many small ones.
//
//   col (K, nb * P): row (ci, ki, kj) of the group's input channels and kernel taps, column
//   (n, oh, ow) of the chunk's images and output pixels; K = C_in/groups * kH * kW, P = H_out * W_out.
//
//   forward          out_T (C_out, nb * P)  = W (C_out, K) @ col             then out_T -> NCHW + bias
//   backward input   col                    = W^T (K, C_out) @ g_T            then col2im (scatter-add)
//   backward weight  dW (C_out, K)         += g_T (C_out, nb * P) @ col^T
// where g_T is grad_out (nb, C_out, P) transposed to (C_out, nb * P). A chunk of one image needs
// no transposes (its NCHW slice already is (C_out, P)); a 1x1 convolution with stride 1 and no
// padding needs no col matrix (the input is its own). Temporaries come from the caching allocator.
#include <cblas.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "cpu_backend.h"

namespace latent::cpu {
namespace {

/// Sizes of one convolution, in conv2d's terms (the transposed convolution runs backward_input).
struct Geometry {
  int64_t n, c, h, w;  // input (N, C_in, H, W)
  int64_t co, ho, wo;  // output (N, C_out, H_out, W_out)
  int64_t kh, kw, sh, sw, ph, pw, dh, dw, groups;
  int64_t cg, cog, k;  // per group: input channels, output channels, K = cg * kH * kW
  int64_t hw, p;       // H * W, H_out * W_out
  bool pointwise;      // 1x1 kernel, stride 1, no padding: the input is its own col matrix
};

Geometry geometry(const Shape& in, const Shape& weight, const Shape& out, const Conv2dParams& p) {
  Geometry g{};
  g.n = in[0], g.c = in[1], g.h = in[2], g.w = in[3];
  g.co = out[1], g.ho = out[2], g.wo = out[3];
  g.kh = weight[2], g.kw = weight[3];
  g.sh = p.stride[0], g.sw = p.stride[1];
  g.ph = p.padding[0], g.pw = p.padding[1];
  g.dh = p.dilation[0], g.dw = p.dilation[1];
  g.groups = p.groups;
  g.cg = g.c / g.groups, g.cog = g.co / g.groups;
  g.k = g.cg * g.kh * g.kw;
  g.hw = g.h * g.w, g.p = g.ho * g.wo;
  g.pointwise = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
  return g;
}

/// Images per chunk: as many as keep the chunk's temporaries (elements_per_image each) within
/// a budget that bounds memory for large inputs (at least one image).
int64_t chunk_images(const Geometry& g, int64_t elements_per_image) {
  // Measured on the conv autoencoder: budgets from 64K to 8M elements ran within noise of each
  // other, so this one only bounds memory (4 MB of float32 per temporary).
  constexpr int64_t kBudget = int64_t{1} << 20;
  return std::clamp<int64_t>(kBudget / std::max<int64_t>(elements_per_image, 1), 1, std::max<int64_t>(g.n, 1));
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Output columns [lo, hi) whose input column ow * stride + offset lies inside [0, size).
void valid_range(int64_t offset, int64_t stride, int64_t size, int64_t count, int64_t& lo, int64_t& hi) {
  lo = offset >= 0 ? 0 : ceil_div(-offset, stride);
  hi = size - offset <= 0 ? 0 : std::min(count, ceil_div(size - offset, stride));
  lo = std::min(lo, count);
  hi = std::max(hi, lo);
}

template <class T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T beta,
          T* c, int64_t ldc) {
  const auto tra = ta ? CblasTrans : CblasNoTrans, trb = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, tra, trb, int(m), int(n), int(k), 1.0f, a, int(lda), b, int(ldb), beta, c, int(ldc));
  else
    cblas_dgemm(CblasRowMajor, tra, trb, int(m), int(n), int(k), 1.0, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

/// dst[i] = src[i * stride] for i in [lo, hi), with constant strides 1 and 2 spelled out so the
/// compiler vectorises them.
template <class T>
inline void gather_row(T* __restrict dst, const T* __restrict src, int64_t lo, int64_t hi, int64_t stride) {
  if (stride == 1) {
    for (int64_t i = lo; i < hi; ++i) dst[i] = src[i];
  } else if (stride == 2) {
    for (int64_t i = lo; i < hi; ++i) dst[i] = src[2 * i];
  } else {
    for (int64_t i = lo; i < hi; ++i) dst[i] = src[i * stride];
  }
}

/// dst[i * stride] += src[i] for i in [lo, hi): the adjoint of gather_row.
template <class T>
inline void scatter_add_row(T* __restrict dst, const T* __restrict src, int64_t lo, int64_t hi, int64_t stride) {
  if (stride == 1) {
    for (int64_t i = lo; i < hi; ++i) dst[i] += src[i];
  } else if (stride == 2) {
    for (int64_t i = lo; i < hi; ++i) dst[2 * i] += src[i];
  } else {
    for (int64_t i = lo; i < hi; ++i) dst[i * stride] += src[i];
  }
}

/// For each kernel row ki and column kj: the input row/column of output 0 and the output range
/// whose taps fall inside the input. Computed once per call: the divisions would otherwise
/// dominate im2col for small images.
struct TapSpans {
  Tensor holder;
  const int64_t* rows;  // 3 per ki: ih0, oh_lo, oh_hi
  const int64_t* cols;  // 3 per kj: iw0, ow_lo, ow_hi
  explicit TapSpans(const Geometry& g) {
    holder = empty({3 * (g.kh + g.kw)}, kInt64);
    int64_t* r = holder.data_ptr<int64_t>();
    for (int64_t ki = 0; ki < g.kh; ++ki) {
      r[3 * ki] = ki * g.dh - g.ph;
      valid_range(r[3 * ki], g.sh, g.h, g.ho, r[3 * ki + 1], r[3 * ki + 2]);
    }
    int64_t* c = r + 3 * g.kh;
    for (int64_t kj = 0; kj < g.kw; ++kj) {
      c[3 * kj] = kj * g.dw - g.pw;
      valid_range(c[3 * kj], g.sw, g.w, g.wo, c[3 * kj + 1], c[3 * kj + 2]);
    }
    rows = r;
    cols = c;
  }
};

/// col (K, nb * P) from images [n0, n0 + nb) of x, channels of `group`; zeros where a tap falls
/// in the padding (only there: valid spans are copied, padded spans are filled). The loops run
/// per (channel, image) plane so the plane stays in L1 while its kH * kW rows are written.
template <class T>
void im2col(const Geometry& g, const TapSpans& taps, const T* x, int64_t n0, int64_t nb, int64_t group, T* col) {
  const int64_t ld = nb * g.p;
  for (int64_t ci = 0; ci < g.cg; ++ci) {
    for (int64_t n = 0; n < nb; ++n) {
      const T* plane = x + ((n0 + n) * g.c + group * g.cg + ci) * g.hw;
      for (int64_t ki = 0; ki < g.kh; ++ki) {
        const int64_t ih0 = taps.rows[3 * ki], oh_lo = taps.rows[3 * ki + 1], oh_hi = taps.rows[3 * ki + 2];
        for (int64_t kj = 0; kj < g.kw; ++kj) {
          const int64_t iw0 = taps.cols[3 * kj], lo = taps.cols[3 * kj + 1], hi = taps.cols[3 * kj + 2];
          T* dst = col + ((ci * g.kh + ki) * g.kw + kj) * ld + n * g.p;
          for (int64_t i = 0; i < oh_lo * g.wo; ++i) dst[i] = T(0);
          for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
            T* d = dst + oh * g.wo;
            for (int64_t ow = 0; ow < lo; ++ow) d[ow] = T(0);
            gather_row(d, plane + (oh * g.sh + ih0) * g.w + iw0, lo, hi, g.sw);
            for (int64_t ow = hi; ow < g.wo; ++ow) d[ow] = T(0);
          }
          for (int64_t i = oh_hi * g.wo; i < g.p; ++i) dst[i] = T(0);
        }
      }
    }
  }
}

/// Adds col (K, nb * P) into images [n0, n0 + nb) of dx, channels of `group`: the adjoint of im2col.
template <class T>
void col2im(const Geometry& g, const TapSpans& taps, const T* col, int64_t n0, int64_t nb, int64_t group, T* dx) {
  const int64_t ld = nb * g.p;
  for (int64_t ci = 0; ci < g.cg; ++ci) {
    for (int64_t n = 0; n < nb; ++n) {
      T* plane = dx + ((n0 + n) * g.c + group * g.cg + ci) * g.hw;
      for (int64_t ki = 0; ki < g.kh; ++ki) {
        const int64_t ih0 = taps.rows[3 * ki], oh_lo = taps.rows[3 * ki + 1], oh_hi = taps.rows[3 * ki + 2];
        for (int64_t kj = 0; kj < g.kw; ++kj) {
          const int64_t iw0 = taps.cols[3 * kj], lo = taps.cols[3 * kj + 1], hi = taps.cols[3 * kj + 2];
          const T* src = col + ((ci * g.kh + ki) * g.kw + kj) * ld + n * g.p;
          for (int64_t oh = oh_lo; oh < oh_hi; ++oh)
            scatter_add_row(plane + (oh * g.sh + ih0) * g.w + iw0, src + oh * g.wo, lo, hi, g.sw);
        }
      }
    }
  }
}

/// (nb, rows, P) -> (rows, nb * P): images side by side, as the batched GEMM reads them.
template <class T>
void to_rows(const T* src, int64_t nb, int64_t rows, int64_t p, T* dst) {
  for (int64_t n = 0; n < nb; ++n)
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(dst + r * nb * p + n * p, src + (n * rows + r) * p, size_t(p) * sizeof(T));
}

/// (rows, nb * P) -> (nb, rows, P), adding bias[r] (if any) on the way.
template <class T>
void from_rows(const T* src, int64_t nb, int64_t rows, int64_t p, const T* bias, T* dst) {
  for (int64_t n = 0; n < nb; ++n) {
    for (int64_t r = 0; r < rows; ++r) {
      const T* s = src + r * nb * p + n * p;
      T* d = dst + (n * rows + r) * p;
      if (bias) {
        const T b = bias[r];
        for (int64_t i = 0; i < p; ++i) d[i] = s[i] + b;
      } else {
        std::memcpy(d, s, size_t(p) * sizeof(T));
      }
    }
  }
}

/// rows (rows, p) filled with bias[r] per row, or zeros.
template <class T>
void fill_rows(T* dst, int64_t rows, int64_t p, const T* bias) {
  for (int64_t r = 0; r < rows; ++r) std::fill(dst + r * p, dst + (r + 1) * p, bias ? bias[r] : T(0));
}

/// A scratch buffer of `count` elements from the caching allocator.
template <class T>
T* scratch(Tensor& holder, int64_t count) {
  holder = empty({std::max<int64_t>(count, 1)}, dtype_of<T>::value);
  return holder.data_ptr<T>();
}

// ---- direct kernels: float32, AVX2 + FMA ----
// For the few channels of autoencoder layers the im2col copies and transposes cost about as much
// as the GEMM itself (rows of 7 floats, stride-2 gathers). These kernels skip them: each image is
// copied once into a zero-bordered buffer so every tap is in range, and a register tile of up to
// 12 vectors of 8 accumulates over the taps (forward, weight) or the output channels (input).
// The 8-float lanes run along output channels (forward, weight grad) or input channels (input
// grad); they are used where at most a quarter of the lanes would be padding (see `direct_for`).
#if defined(__x86_64__) && defined(__GNUC__)
#define LATENT_CONV_DIRECT 1
#define LATENT_AVX2 __attribute__((target("avx2,fma")))

bool direct_available() {
  static const bool on = [] {
    const char* env = std::getenv("LATENT_CONV_DIRECT");  // "0" forces im2col + GEMM (benchmarks, tests)
    if (env && env[0] == '0') return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return on;
}

int64_t round8(int64_t n) { return (n + 7) / 8 * 8; }

/// A zero-filled 1-d scratch tensor from the caching allocator.
Tensor zeroed(int64_t count, DType dtype) {
  Tensor t = empty({std::max<int64_t>(count, 1)}, dtype);
  std::memset(t.raw_data(), 0, size_t(t.numel()) * t.element_size());
  return t;
}

/// Whether a direct kernel with lanes along `lanes` channels serves this geometry: float32 only, at
/// most a quarter of the lanes padding, and small enough K that an 8-channel slice of the packed
/// weights stays in L1/L2 (larger layers are GEMM territory, where OpenBLAS's threads help).
bool direct_for(const Geometry& g, int64_t lanes) {
  return direct_available() && !g.pointwise && lanes >= 8 && (round8(lanes) - lanes) * 4 <= round8(lanes) &&
         g.k <= 1152;
}

/// Per-call tables and buffers of the direct kernels.
struct DirectPlan {
  int64_t hp, wp, plane;  // zero-bordered image: (H + 2 ph) x (W + 2 pw)
  Tensor holder_x, holder_tables;
  float* xp;               // (C/groups, hp, wp), borders zero
  const int64_t* koff;     // per k = (ci, ki, kj): ci * plane + ki * dh * wp + kj * dw; padded with 0 to 12
  const int64_t* pix;      // per output pixel: oh * sh * wp + ow * sw; padded with the last to P + 12
  explicit DirectPlan(const Geometry& g) : hp(g.h + 2 * g.ph), wp(g.w + 2 * g.pw), plane(hp * wp) {
    holder_x = zeroed(g.cg * plane, kFloat32);
    xp = holder_x.data_ptr<float>();
    const int64_t kpad = g.k + 12, ppad = g.p + 12;
    holder_tables = zeroed(kpad + ppad, kInt64);
    int64_t* k = holder_tables.data_ptr<int64_t>();
    for (int64_t ci = 0; ci < g.cg; ++ci)
      for (int64_t ki = 0; ki < g.kh; ++ki)
        for (int64_t kj = 0; kj < g.kw; ++kj) *k++ = ci * plane + ki * g.dh * wp + kj * g.dw;
    int64_t* p = holder_tables.data_ptr<int64_t>() + kpad;
    for (int64_t i = 0; i < ppad; ++i) {
      const int64_t q = std::min(i, g.p - 1), oh = q / g.wo, ow = q % g.wo;
      p[i] = oh * g.sh * wp + ow * g.sw;
    }
    koff = holder_tables.data_ptr<int64_t>();
    pix = koff + kpad;
  }
  /// Copies the group's channels of image n into the bordered buffer (borders stay zero).
  void load(const Geometry& g, const float* x, int64_t n, int64_t group) {
    for (int64_t ci = 0; ci < g.cg; ++ci) {
      const float* src = x + (n * g.c + group * g.cg + ci) * g.hw;
      float* dst = xp + ci * plane + g.ph * wp + g.pw;
      for (int64_t ih = 0; ih < g.h; ++ih)  // rows are short: a loop, not a memcpy call per row
        for (int64_t iw = 0; iw < g.w; ++iw) dst[ih * wp + iw] = src[ih * g.w + iw];
    }
  }
};

// res (R, VB * 8) = bias + sum over k of w[k] * x at tap k of R pixels. w: (K, ws) at the lane block.
template <int VB>
LATENT_AVX2 void forward_tile(const float* xp, const int64_t* koff, int64_t kc, const int64_t* pix, const float* w,
                              int64_t ws, const float* bias, float* res) {
  constexpr int R = 12 / VB;
  __m256 acc[R][VB];
#pragma GCC unroll 4
  for (int v = 0; v < VB; ++v) {
    const __m256 b = _mm256_loadu_ps(bias + 8 * v);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) acc[r][v] = b;
  }
  for (int64_t k = 0; k < kc; ++k) {
    __m256 wv[VB];
#pragma GCC unroll 4
    for (int v = 0; v < VB; ++v) wv[v] = _mm256_loadu_ps(w + k * ws + 8 * v);
    const float* xk = xp + koff[k];
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m256 xv = _mm256_broadcast_ss(xk + pix[r]);
#pragma GCC unroll 4
      for (int v = 0; v < VB; ++v) acc[r][v] = _mm256_fmadd_ps(wv[v], xv, acc[r][v]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < VB; ++v) _mm256_storeu_ps(res + (r * VB + v) * 8, acc[r][v]);
}

// acc rows (12 / VB taps, VB * 8 lanes at stride as) += sum over pixels of gyt[p] * x at the taps.
template <int VB>
LATENT_AVX2 void weight_tile(const float* xp, const int64_t* koff, const int64_t* pix, int64_t np, const float* gyt,
                             int64_t gs, float* acc_rows, int64_t as) {
  constexpr int R = 12 / VB;
  __m256 acc[R][VB];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < VB; ++v) acc[r][v] = _mm256_loadu_ps(acc_rows + r * as + 8 * v);
  for (int64_t p = 0; p < np; ++p) {
    __m256 gv[VB];
#pragma GCC unroll 4
    for (int v = 0; v < VB; ++v) gv[v] = _mm256_loadu_ps(gyt + p * gs + 8 * v);
    const float* xq = xp + pix[p];
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m256 xv = _mm256_broadcast_ss(xq + koff[r]);
#pragma GCC unroll 4
      for (int v = 0; v < VB; ++v) acc[r][v] = _mm256_fmadd_ps(gv[v], xv, acc[r][v]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < VB; ++v) _mm256_storeu_ps(acc_rows + r * as + 8 * v, acc[r][v]);
}

// gxp[dst[r] + lanes] += sum over o of wt[o] * gy[o][p0 + r] for r < rc; gy: (C_out/groups, P).
template <int VB>
LATENT_AVX2 void input_tile(const float* gy, int64_t np, int64_t p0, int64_t rc, const float* wt, int64_t ws,
                            int64_t cog, float* gxp, const int64_t* dst) {
  constexpr int R = 12 / VB;
  __m256 acc[R][VB];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < VB; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t o = 0; o < cog; ++o) {
    __m256 wv[VB];
#pragma GCC unroll 4
    for (int v = 0; v < VB; ++v) wv[v] = _mm256_loadu_ps(wt + o * ws + 8 * v);
    const float* go = gy + o * np + p0;
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m256 gv = _mm256_broadcast_ss(go + (r < rc ? r : rc - 1));  // stay inside gy at the tail
#pragma GCC unroll 4
      for (int v = 0; v < VB; ++v) acc[r][v] = _mm256_fmadd_ps(wv[v], gv, acc[r][v]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    if (r >= rc) break;
#pragma GCC unroll 4
    for (int v = 0; v < VB; ++v) {
      float* d = gxp + dst[r] + 8 * v;
      _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), acc[r][v]));
    }
  }
}

/// One lane block (VB vectors from lane `lane0`) of the direct forward for the loaded image.
template <int VB>
void forward_block(const Geometry& g, const DirectPlan& d, const float* w, int64_t ws, const float* bias, int64_t lane0,
                   float* out) {
  constexpr int R = 12 / VB;
  float res[R * VB * 8];
  const int64_t oc = std::min<int64_t>(VB * 8, g.cog - lane0);
  for (int64_t p0 = 0; p0 < g.p; p0 += R) {
    forward_tile<VB>(d.xp, d.koff, g.k, d.pix + p0, w + lane0, ws, bias + lane0, res);
    const int64_t rc = std::min<int64_t>(R, g.p - p0);
    for (int64_t o = 0; o < oc; ++o)
      for (int64_t r = 0; r < rc; ++r) out[(lane0 + o) * g.p + p0 + r] = res[r * VB * 8 + o];
  }
}

/// Lane blocks of up to 4 vectors over `lanes` padded lanes: calls fn(VB constant, first lane).
template <class F>
void for_lane_blocks(int64_t lanes, F&& fn) {
  for (int64_t l0 = 0; l0 < lanes; l0 += 32) {
    switch (std::min<int64_t>(4, (lanes - l0) / 8)) {
      case 1: fn(std::integral_constant<int, 1>{}, l0); break;
      case 2: fn(std::integral_constant<int, 2>{}, l0); break;
      case 3: fn(std::integral_constant<int, 3>{}, l0); break;
      default: fn(std::integral_constant<int, 4>{}, l0); break;
    }
  }
}

void forward_direct(const Geometry& g, const float* x, const float* w, const float* bias, float* out) {
  DirectPlan d(g);
  const int64_t lanes = round8(g.cog);
  // wp (groups, K, lanes) and bp (groups, lanes): weights and bias with output channels innermost.
  Tensor holder = zeroed(g.groups * (g.k + 1) * lanes, kFloat32);
  float* wp = holder.data_ptr<float>();
  float* bp = wp + g.groups * g.k * lanes;
  for (int64_t gr = 0; gr < g.groups; ++gr)
    for (int64_t o = 0; o < g.cog; ++o) {
      for (int64_t k = 0; k < g.k; ++k) wp[(gr * g.k + k) * lanes + o] = w[(gr * g.cog + o) * g.k + k];
      if (bias) bp[gr * lanes + o] = bias[gr * g.cog + o];
    }
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      d.load(g, x, n, gr);
      float* o = out + (n * g.co + gr * g.cog) * g.p;
      for_lane_blocks(lanes, [&](auto vb, int64_t l0) {
        forward_block<decltype(vb)::value>(g, d, wp + gr * g.k * lanes, lanes, bp + gr * lanes, l0, o);
      });
    }
}

void weight_direct(const Geometry& g, const float* gy, const float* x, float* dw) {
  DirectPlan d(g);
  const int64_t lanes = round8(g.cog), kpad = g.k + 12;
  // acc (groups, kpad, lanes): the gradient with output channels innermost; gyt (P, lanes).
  Tensor holder = zeroed(g.groups * kpad * lanes + g.p * lanes, kFloat32);
  float* acc = holder.data_ptr<float>();
  float* gyt = acc + g.groups * kpad * lanes;
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      d.load(g, x, n, gr);
      const float* src = gy + (n * g.co + gr * g.cog) * g.p;
      for (int64_t o = 0; o < g.cog; ++o)
        for (int64_t p = 0; p < g.p; ++p) gyt[p * lanes + o] = src[o * g.p + p];
      for_lane_blocks(lanes, [&](auto vb, int64_t l0) {
        constexpr int VB = decltype(vb)::value, R = 12 / VB;
        for (int64_t k0 = 0; k0 < g.k; k0 += R)
          weight_tile<VB>(d.xp, d.koff + k0, d.pix, g.p, gyt + l0, lanes, acc + (gr * kpad + k0) * lanes + l0, lanes);
      });
    }
  for (int64_t gr = 0; gr < g.groups; ++gr)
    for (int64_t o = 0; o < g.cog; ++o)
      for (int64_t k = 0; k < g.k; ++k) dw[(gr * g.cog + o) * g.k + k] = acc[(gr * kpad + k) * lanes + o];
}

void input_direct(const Geometry& g, const float* gy, const float* w, float* dx) {
  const DirectPlan d(g);  // for its pixel table; the bordered buffer is unused here
  const int64_t wp = d.wp, taps = g.kh * g.kw;
  const int64_t lanes = round8(g.cg);
  // wt (groups, taps, C_out/groups, lanes): weights with input channels innermost; gxp (hp * wp,
  // lanes): the image's gradient, bordered, channels innermost; dst: 12 offsets into gxp.
  Tensor holder = zeroed(g.groups * taps * g.cog * lanes + d.plane * lanes, kFloat32);
  float* wt = holder.data_ptr<float>();
  float* gxp = wt + g.groups * taps * g.cog * lanes;
  for (int64_t gr = 0; gr < g.groups; ++gr)
    for (int64_t o = 0; o < g.cog; ++o)
      for (int64_t ci = 0; ci < g.cg; ++ci)
        for (int64_t t = 0; t < taps; ++t)
          wt[((gr * taps + t) * g.cog + o) * lanes + ci] = w[((gr * g.cog + o) * g.cg + ci) * taps + t];
  int64_t dst[12];
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      std::memset(gxp, 0, size_t(d.plane * lanes) * sizeof(float));
      const float* src = gy + (n * g.co + gr * g.cog) * g.p;
      for_lane_blocks(lanes, [&](auto vb, int64_t l0) {
        constexpr int VB = decltype(vb)::value, R = 12 / VB;
        for (int64_t t = 0; t < taps; ++t) {
          const int64_t toff = (t / g.kw) * g.dh * wp + (t % g.kw) * g.dw;
          for (int64_t p0 = 0; p0 < g.p; p0 += R) {
            const int64_t rc = std::min<int64_t>(R, g.p - p0);
            for (int64_t r = 0; r < rc; ++r) dst[r] = (d.pix[p0 + r] + toff) * lanes + l0;
            input_tile<VB>(src, g.p, p0, rc, wt + (gr * taps + t) * g.cog * lanes + l0, lanes, g.cog, gxp, dst);
          }
        }
      });
      for (int64_t ci = 0; ci < g.cg; ++ci) {
        float* o = dx + (n * g.c + gr * g.cg + ci) * g.hw;
        for (int64_t ih = 0; ih < g.h; ++ih)
          for (int64_t iw = 0; iw < g.w; ++iw) o[ih * g.w + iw] = gxp[((ih + g.ph) * wp + iw + g.pw) * lanes + ci];
      }
    }
}
#endif  // LATENT_CONV_DIRECT

// x: (N, C, H, W), w: (C_out, C/groups, kH, kW), bias: (C_out) or null, out: (N, C_out, H_out, W_out)
template <class T>
void forward(const Geometry& g, const T* x, const T* w, const T* bias, T* out) {
  if (g.n == 0 || g.co == 0) return;
  if (g.k == 0) {  // no input channels: the output is the bias
    for (int64_t n = 0; n < g.n; ++n) fill_rows(out + n * g.co * g.p, g.co, g.p, bias);
    return;
  }
#ifdef LATENT_CONV_DIRECT
  if constexpr (std::is_same_v<T, float>)
    if (direct_for(g, g.cog)) return forward_direct(g, x, w, bias, out);
#endif
  const T beta = bias ? T(1) : T(0);
  if (g.pointwise) {
    for (int64_t n = 0; n < g.n; ++n) {
      T* o = out + n * g.co * g.p;
      if (bias) fill_rows(o, g.co, g.p, bias);
      for (int64_t gr = 0; gr < g.groups; ++gr)
        gemm<T>(false, false, g.cog, g.p, g.cg, w + gr * g.cog * g.k, g.k, x + (n * g.c + gr * g.cg) * g.hw, g.hw,
                beta, o + gr * g.cog * g.p, g.p);
    }
    return;
  }
  const int64_t nb = chunk_images(g, (g.k + g.co) * g.p);
  const TapSpans taps(g);
  Tensor col_holder, tmp_holder;
  T* col = scratch<T>(col_holder, g.k * nb * g.p);
  T* tmp = nb > 1 ? scratch<T>(tmp_holder, g.co * nb * g.p) : nullptr;
  for (int64_t n0 = 0; n0 < g.n; n0 += nb) {
    const int64_t cur = std::min(nb, g.n - n0), ld = cur * g.p;
    T* dst = cur == 1 ? out + n0 * g.co * g.p : tmp;  // one image: write NCHW directly
    if (cur == 1 && bias) fill_rows(dst, g.co, g.p, bias);
    const T b = cur == 1 ? beta : T(0);
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      im2col(g, taps, x, n0, cur, gr, col);
      gemm<T>(false, false, g.cog, ld, g.k, w + gr * g.cog * g.k, g.k, col, ld, b, dst + gr * g.cog * ld, ld);
    }
    if (cur > 1) from_rows(tmp, cur, g.co, g.p, bias, out + n0 * g.co * g.p);
  }
}

// gy: (N, C_out, H_out, W_out), w: (C_out, C/groups, kH, kW), dx: (N, C, H, W) overwritten
template <class T>
void backward_input(const Geometry& g, const T* gy, const T* w, T* dx) {
  if (g.n == 0) return;
  if (g.co == 0 || g.k == 0) {
    std::fill(dx, dx + g.n * g.c * g.hw, T(0));
    return;
  }
#ifdef LATENT_CONV_DIRECT
  if constexpr (std::is_same_v<T, float>)
    if (direct_for(g, g.cg)) return input_direct(g, gy, w, dx);
#endif
  if (g.pointwise) {
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t gr = 0; gr < g.groups; ++gr)
        gemm<T>(true, false, g.cg, g.p, g.cog, w + gr * g.cog * g.k, g.k, gy + (n * g.co + gr * g.cog) * g.p, g.p,
                T(0), dx + (n * g.c + gr * g.cg) * g.hw, g.hw);
    return;
  }
  const int64_t nb = chunk_images(g, (g.k + g.co) * g.p);
  const TapSpans taps(g);
  Tensor col_holder, gt_holder;
  T* col = scratch<T>(col_holder, g.k * nb * g.p);
  T* gt = nb > 1 ? scratch<T>(gt_holder, g.co * nb * g.p) : nullptr;
  std::fill(dx, dx + g.n * g.c * g.hw, T(0));
  for (int64_t n0 = 0; n0 < g.n; n0 += nb) {
    const int64_t cur = std::min(nb, g.n - n0), ld = cur * g.p;
    const T* src = gy + n0 * g.co * g.p;
    if (cur > 1) {
      to_rows(src, cur, g.co, g.p, gt);
      src = gt;
    }
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      gemm<T>(true, false, g.k, ld, g.cog, w + gr * g.cog * g.k, g.k, src + gr * g.cog * ld, ld, T(0), col, ld);
      col2im(g, taps, col, n0, cur, gr, dx);
    }
  }
}

// gy: (N, C_out, H_out, W_out), x: (N, C, H, W), dw: (C_out, C/groups, kH, kW) overwritten
template <class T>
void backward_weight(const Geometry& g, const T* gy, const T* x, T* dw) {
  if (g.co == 0 || g.k == 0) return;
  if (g.n == 0) {
    std::fill(dw, dw + g.co * g.k, T(0));
    return;
  }
#ifdef LATENT_CONV_DIRECT
  if constexpr (std::is_same_v<T, float>)
    if (direct_for(g, g.cog)) return weight_direct(g, gy, x, dw);
#endif
  if (g.pointwise) {
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t gr = 0; gr < g.groups; ++gr)
        gemm<T>(false, true, g.cog, g.cg, g.p, gy + (n * g.co + gr * g.cog) * g.p, g.p,
                x + (n * g.c + gr * g.cg) * g.hw, g.hw, n == 0 ? T(0) : T(1), dw + gr * g.cog * g.k, g.k);
    return;
  }
  const int64_t nb = chunk_images(g, (g.k + g.co) * g.p);
  const TapSpans taps(g);
  Tensor col_holder, gt_holder;
  T* col = scratch<T>(col_holder, g.k * nb * g.p);
  T* gt = nb > 1 ? scratch<T>(gt_holder, g.co * nb * g.p) : nullptr;
  for (int64_t n0 = 0; n0 < g.n; n0 += nb) {
    const int64_t cur = std::min(nb, g.n - n0), ld = cur * g.p;
    const T* src = gy + n0 * g.co * g.p;
    if (cur > 1) {
      to_rows(src, cur, g.co, g.p, gt);
      src = gt;
    }
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      im2col(g, taps, x, n0, cur, gr, col);
      gemm<T>(false, true, g.cog, g.k, ld, src + gr * g.cog * ld, ld, col, ld, n0 == 0 ? T(0) : T(1),
              dw + gr * g.cog * g.k, g.k);
    }
  }
}

}  // namespace

void CpuBackend::conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out,
                        const Conv2dParams& p) {
  const Geometry g = geometry(x.shape(), weight.shape(), out.shape(), p);
  visit_floating("conv2d", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    forward<T>(g, x.data_ptr<T>(), weight.data_ptr<T>(), bias.defined() ? bias.data_ptr<T>() : nullptr,
               out.data_ptr<T>());
  });
}

void CpuBackend::conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Tensor& grad_input,
                                       const Conv2dParams& p) {
  const Geometry g = geometry(grad_input.shape(), weight.shape(), grad_out.shape(), p);
  visit_floating("conv2d", grad_out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    backward_input<T>(g, grad_out.data_ptr<T>(), weight.data_ptr<T>(), grad_input.data_ptr<T>());
  });
}

void CpuBackend::conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Tensor& grad_weight,
                                        const Conv2dParams& p) {
  const Geometry g = geometry(x.shape(), grad_weight.shape(), grad_out.shape(), p);
  visit_floating("conv2d", grad_out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    backward_weight<T>(g, grad_out.data_ptr<T>(), x.data_ptr<T>(), grad_weight.data_ptr<T>());
  });
}

}  // namespace latent::cpu
