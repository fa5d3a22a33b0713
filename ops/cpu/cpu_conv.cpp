// CPU convolution kernels: im2col / col2im over a chunk of the batch and one GEMM (blas_gemm,
// cpu_blas.h) per (chunk, group), so a batch of small images makes one large GEMM instead of many
// small ones.
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
//
// float32 on x86-64 with AVX2 + FMA or AVX-512 takes the direct kernels of cpu_conv_direct.h where
// they apply (8 or more channels on the vectorised side, K from 16 to 1152): on the conv
// autoencoder they ran 2-3x faster than this path. float64 and everything else runs this path.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "cpu_blas.h"
#include "cpu_conv_direct.h"

namespace latent::cpu {
namespace {

using conv::Geometry;

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


/// Names the weight (and bias) tensors for the direct kernels' per-thread reuse of their packing
/// (cpu_conv_direct.h's setup_cache); null where there are no direct kernels.
#ifdef LATENT_CONV_DIRECT
using KeyPtr = const conv::WeightKey*;
#else
using KeyPtr = const void*;
#endif

// x: (N, C, H, W), w: (C_out, C/groups, kH, kW), bias: (C_out) or null, out: (N, C_out, H_out, W_out)
template <class T>
void forward(const Geometry& g, const T* x, const T* w, const T* bias, T* out, KeyPtr key = nullptr) {
  if (g.n == 0 || g.co == 0) return;
  if (g.k == 0) {  // no input channels: the output is the bias
    for (int64_t n = 0; n < g.n; ++n) fill_rows(out + n * g.co * g.p, g.co, g.p, bias);
    return;
  }
#ifdef LATENT_CONV_DIRECT
  if constexpr (std::is_same_v<T, float>)
    if (const conv::TileSet* ts = conv::direct_tiles(g, g.cog)) return conv::forward_direct(g, *ts, x, w, bias, out, key);
#endif
  const T beta = bias ? T(1) : T(0);
  if (g.pointwise) {
    for (int64_t n = 0; n < g.n; ++n) {
      T* o = out + n * g.co * g.p;
      if (bias) fill_rows(o, g.co, g.p, bias);
      for (int64_t gr = 0; gr < g.groups; ++gr)
        blas_gemm<T>(false, false, g.cog, g.p, g.cg, w + gr * g.cog * g.k, g.k, x + (n * g.c + gr * g.cg) * g.hw, g.hw,
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
      blas_gemm<T>(false, false, g.cog, ld, g.k, w + gr * g.cog * g.k, g.k, col, ld, b, dst + gr * g.cog * ld, ld);
    }
    if (cur > 1) from_rows(tmp, cur, g.co, g.p, bias, out + n0 * g.co * g.p);
  }
}

// gy: (N, C_out, H_out, W_out), w: (C_out, C/groups, kH, kW), dx: (N, C, H, W) overwritten
template <class T>
void backward_input(const Geometry& g, const T* gy, const T* w, T* dx, KeyPtr key = nullptr) {
  if (g.n == 0) return;
  if (g.co == 0 || g.k == 0) {
    std::fill(dx, dx + g.n * g.c * g.hw, T(0));
    return;
  }
#ifdef LATENT_CONV_DIRECT
  if constexpr (std::is_same_v<T, float>)
    if (const conv::TileSet* ts = conv::direct_tiles(g, g.cg)) return conv::input_direct(g, *ts, gy, w, dx, key);
#endif
  if (g.pointwise) {
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t gr = 0; gr < g.groups; ++gr)
        blas_gemm<T>(true, false, g.cg, g.p, g.cog, w + gr * g.cog * g.k, g.k, gy + (n * g.co + gr * g.cog) * g.p, g.p,
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
      blas_gemm<T>(true, false, g.k, ld, g.cog, w + gr * g.cog * g.k, g.k, src + gr * g.cog * ld, ld, T(0), col, ld);
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
    if (const conv::TileSet* ts = conv::direct_tiles(g, g.cog)) return conv::weight_direct(g, *ts, gy, x, dw);
#endif
  if (g.pointwise) {
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t gr = 0; gr < g.groups; ++gr)
        blas_gemm<T>(false, true, g.cog, g.cg, g.p, gy + (n * g.co + gr * g.cog) * g.p, g.p,
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
      blas_gemm<T>(false, true, g.cog, g.k, ld, src + gr * g.cog * ld, ld, col, ld, n0 == 0 ? T(0) : T(1),
              dw + gr * g.cog * g.k, g.k);
    }
  }
}

}  // namespace

void CpuBackend::conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out,
                        const Conv2dParams& p) {
  const Geometry g = conv::geometry(x.shape(), weight.shape(), out.shape(), p);
#ifdef LATENT_CONV_DIRECT
  if (x.dtype() == kFloat32) {
    const conv::WeightKey key = conv::WeightKey::of(weight, bias);
    return forward<float>(g, x.data_ptr<float>(), weight.data_ptr<float>(),
                          bias.defined() ? bias.data_ptr<float>() : nullptr, out.data_ptr<float>(), &key);
  }
#endif
  visit_floating("conv2d", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    forward<T>(g, x.data_ptr<T>(), weight.data_ptr<T>(), bias.defined() ? bias.data_ptr<T>() : nullptr,
               out.data_ptr<T>());
  });
}

void CpuBackend::conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Tensor& grad_input,
                                       const Conv2dParams& p) {
  const Geometry g = conv::geometry(grad_input.shape(), weight.shape(), grad_out.shape(), p);
#ifdef LATENT_CONV_DIRECT
  if (grad_out.dtype() == kFloat32) {
    const conv::WeightKey key = conv::WeightKey::of(weight, Tensor());
    return backward_input<float>(g, grad_out.data_ptr<float>(), weight.data_ptr<float>(),
                                 grad_input.data_ptr<float>(), &key);
  }
#endif
  visit_floating("conv2d", grad_out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    backward_input<T>(g, grad_out.data_ptr<T>(), weight.data_ptr<T>(), grad_input.data_ptr<T>());
  });
}

void CpuBackend::conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Tensor& grad_weight,
                                        const Conv2dParams& p) {
  const Geometry g = conv::geometry(x.shape(), grad_weight.shape(), grad_out.shape(), p);
  visit_floating("conv2d", grad_out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    backward_weight<T>(g, grad_out.data_ptr<T>(), x.data_ptr<T>(), grad_weight.data_ptr<T>());
  });
}

}  // namespace latent::cpu
