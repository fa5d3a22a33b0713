// int8 conv2d and conv_transpose2d over the int8 GEMM (see qconv.h for the arithmetic).
#include "qconv.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "../../autograd/error.h"
#include "workers.h"

namespace latent::cpu {

namespace {

constexpr const char* kOp = "qconv";

void check_shape(const QConvShape& s, const PackedQWeight& w, bool transposed) {
  if (s.n < 0 || s.c_in <= 0 || s.h <= 0 || s.w <= 0 || s.c_out <= 0 || s.ho <= 0 || s.wo <= 0 || s.kh <= 0 ||
      s.kw <= 0 || s.sh <= 0 || s.sw <= 0 || s.ph < 0 || s.pw < 0 || s.dh <= 0 || s.dw <= 0)
    fail(kOp, "invalid sizes: input ({}, {}, {}, {}), output ({}, {}, {}), kernel {}x{}", s.n, s.c_in, s.h, s.w,
         s.c_out, s.ho, s.wo, s.kh, s.kw);
  const int64_t want_n = transposed ? s.c_out * s.kh * s.kw : s.c_out;
  const int64_t want_k = transposed ? s.c_in : s.c_in * s.kh * s.kw;
  if (w.n != want_n || w.k != want_k)
    fail(kOp, "packed weight [{}, {}] does not fit a {}x{} kernel from {} to {} channels (expected [{}, {}])", w.n, w.k,
         s.kh, s.kw, s.c_in, s.c_out, want_n, want_k);
}

// Images [lo, hi) split over the pool; each part reuses its own scratch buffers.
template <class F>
void over_images(int64_t n, int64_t work_per_image, F&& f) {
  const int64_t min_parallel = work_per_image >= (int64_t{1} << 16) ? 2 : std::max<int64_t>(2, (int64_t{1} << 17) / std::max<int64_t>(work_per_image, 1));
  parallel_for(split_range(n, min_parallel, 1), [&](int, int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) f(i);
  });
}

}  // namespace

PackedQWeight pack_qconv_weight(int64_t c_out, int64_t c_in, int64_t kh, int64_t kw, const int8_t* w) {
  const int64_t k = c_in * kh * kw;
  return pack_qweight(c_out, k, w, k);  // (C_out, C_in, kH, kW) row-major already is (C_out, K)
}

PackedQWeight pack_qconv_transpose_weight(int64_t c_in, int64_t c_out, int64_t kh, int64_t kw, const int8_t* w) {
  const int64_t taps = kh * kw, rows = c_out * taps;
  std::vector<int8_t> t(size_t(rows * c_in));
  for (int64_t ci = 0; ci < c_in; ++ci)
    for (int64_t j = 0; j < rows; ++j) t[size_t(j * c_in + ci)] = w[ci * rows + j];  // j = (co, ki, kj)
  return pack_qweight(rows, c_in, t.data(), c_in);
}

void qconv2d_u8s8(const QConvShape& s, const uint8_t* x, const PackedQWeight& w, const QConvStore& st) {
  check_shape(s, w, false);
  const int64_t p_out = s.ho * s.wo, in_image = s.c_in * s.h * s.w, out_image = s.c_out * p_out;
  const uint8_t zero = static_cast<uint8_t>(st.a_zero);
  over_images(s.n, p_out * w.k * s.c_out, [&](int64_t img) {
    thread_local std::vector<uint8_t> col;
    col.assign(size_t(p_out * w.k4), zero);
    const uint8_t* xi = x + img * in_image;
    // col[(oh, ow)][(ci, ki, kj)] = x[ci][oh*sh - ph + ki*dh][ow*sw - pw + kj*dw] (zero point outside)
    for (int64_t oh = 0; oh < s.ho; ++oh)
      for (int64_t ow = 0; ow < s.wo; ++ow) {
        uint8_t* row = col.data() + (oh * s.wo + ow) * w.k4;
        for (int64_t ci = 0; ci < s.c_in; ++ci)
          for (int64_t ki = 0; ki < s.kh; ++ki) {
            const int64_t ih = oh * s.sh - s.ph + ki * s.dh;
            if (ih < 0 || ih >= s.h) continue;
            const uint8_t* src = xi + (ci * s.h + ih) * s.w;
            uint8_t* dst = row + (ci * s.kh + ki) * s.kw;
            for (int64_t kj = 0; kj < s.kw; ++kj) {
              const int64_t iw = ow * s.sw - s.pw + kj * s.dw;
              if (iw >= 0 && iw < s.w) dst[kj] = src[iw];
            }
          }
      }
    QEpilogue ep;
    ep.a_scale = st.a_scale;
    ep.a_zero = st.a_zero;
    ep.w_scale = st.w_scale;
    ep.bias = st.bias;
    ep.relu = st.relu;
    ep.out_f32 = st.out + img * out_image;
    ep.ldc = 1;              // row = output pixel
    ep.col_stride = p_out;   // column = output channel
    qgemm_u8s8(p_out, col.data(), w.k4, w, ep);
  });
}

void qconv_transpose2d_u8s8(const QConvShape& s, const uint8_t* x, const PackedQWeight& w, const QConvStore& st) {
  check_shape(s, w, true);
  const int64_t p_in = s.h * s.w, in_image = s.c_in * p_in, p_out = s.ho * s.wo, out_image = s.c_out * p_out;
  const int64_t taps = s.kh * s.kw, cols = w.n;
  over_images(s.n, p_in * w.k * w.n, [&](int64_t img) {
    thread_local std::vector<uint8_t> a;
    thread_local std::vector<int32_t> sums, acc;
    a.assign(size_t(p_in * w.k4), 0);
    sums.resize(size_t(p_in * cols));
    acc.assign(size_t(out_image), 0);
    const uint8_t* xi = x + img * in_image;
    for (int64_t ci = 0; ci < s.c_in; ++ci)  // a[(ih, iw)][ci] = x[ci][ih][iw]
      for (int64_t p = 0; p < p_in; ++p) a[size_t(p * w.k4 + ci)] = xi[ci * p_in + p];
    QEpilogue ep;
    ep.out_i32 = sums.data();
    ep.ldc = cols;
    qgemm_u8s8(p_in, a.data(), w.k4, w, ep);
    // col2im: the zero-point-corrected sum of input pixel (ih, iw) and column (co, ki, kj) lands on
    // output pixel (ih*sh - ph + ki*dh, iw*sw - pw + kj*dw) when that lies inside the output.
    const int32_t* col_sum = w.col_sum.data();
    for (int64_t ih = 0; ih < s.h; ++ih)
      for (int64_t iw = 0; iw < s.w; ++iw) {
        const int32_t* row = sums.data() + (ih * s.w + iw) * cols;
        for (int64_t co = 0; co < s.c_out; ++co) {
          int32_t* out_c = acc.data() + co * p_out;
          for (int64_t ki = 0; ki < s.kh; ++ki) {
            const int64_t oh = ih * s.sh - s.ph + ki * s.dh;
            if (oh < 0 || oh >= s.ho) continue;
            for (int64_t kj = 0; kj < s.kw; ++kj) {
              const int64_t ow = iw * s.sw - s.pw + kj * s.dw;
              if (ow < 0 || ow >= s.wo) continue;
              const int64_t j = co * taps + ki * s.kw + kj;
              out_c[oh * s.wo + ow] += row[j] - st.a_zero * col_sum[j];
            }
          }
        }
      }
    float* out = st.out + img * out_image;
    for (int64_t co = 0; co < s.c_out; ++co) {
      const float scale = st.a_scale * st.w_scale[co], b = st.bias ? st.bias[co] : 0.0f;
      const int32_t* in_c = acc.data() + co * p_out;
      float* o = out + co * p_out;
      if (st.relu)
        for (int64_t p = 0; p < p_out; ++p) o[p] = std::max(float(in_c[p]) * scale + b, 0.0f);
      else
        for (int64_t p = 0; p < p_out; ++p) o[p] = float(in_c[p]) * scale + b;
    }
  });
}

}  // namespace latent::cpu
