// int8 conv2d and conv_transpose2d over the int8 GEMM (see qconv.h for the arithmetic).
#include "qconv.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "../../autograd/error.h"
#include "isa.h"
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
  // Columns in (ki, kj, ci) order, so one kernel tap's C_in values are one run of an NHWC row.
  const int64_t taps = kh * kw, k = c_in * taps;
  std::vector<int8_t> t(size_t(c_out * k));
  for (int64_t co = 0; co < c_out; ++co)
    for (int64_t ci = 0; ci < c_in; ++ci)
      for (int64_t tap = 0; tap < taps; ++tap) t[size_t(co * k + tap * c_in + ci)] = w[(co * c_in + ci) * taps + tap];
  return pack_qweight(c_out, k, t.data(), k);
}

PackedQWeight pack_qconv_transpose_weight(int64_t c_in, int64_t c_out, int64_t kh, int64_t kw, const int8_t* w) {
  // Rows in (ki, kj, co) order: one input pixel's sums for one tap are a contiguous run of C_out.
  const int64_t taps = kh * kw, rows = c_out * taps;
  std::vector<int8_t> t(size_t(rows * c_in));
  for (int64_t ci = 0; ci < c_in; ++ci)
    for (int64_t co = 0; co < c_out; ++co)
      for (int64_t tap = 0; tap < taps; ++tap) t[size_t((tap * c_out + co) * c_in + ci)] = w[(ci * c_out + co) * taps + tap];
  return pack_qweight(rows, c_in, t.data(), c_in);
}

namespace {
// dst (p, c_in) with row stride ld = src (c_in, p): an NCHW image as pixel rows.
void to_pixel_rows(const uint8_t* src, int64_t c_in, int64_t p, uint8_t* dst, int64_t ld) {
  if (c_in == 1 && ld == 1) {
    std::memcpy(dst, src, size_t(p));
    return;
  }
  for (int64_t c = 0; c < c_in; ++c)
    for (int64_t q = 0; q < p; ++q) dst[q * ld + c] = src[c * p + q];
}
// One tap (ki, kj) of the transposed conv, the same for every output channel: the input rows
// [ih_lo, ih_hi) and columns [iw_lo, iw_hi) whose output (ih * sh + off_h, iw * sw + off_w) lies
// inside the image.
struct Tap {
  int64_t ih_lo, ih_hi, iw_lo, iw_hi, off_h, off_w;
};

std::vector<Tap> transposed_taps(const QConvShape& s) {
  std::vector<Tap> taps;
  for (int64_t ki = 0; ki < s.kh; ++ki)
    for (int64_t kj = 0; kj < s.kw; ++kj) {
      Tap t;
      t.off_h = ki * s.dh - s.ph;
      t.off_w = kj * s.dw - s.pw;
      t.ih_lo = t.off_h >= 0 ? 0 : (-t.off_h + s.sh - 1) / s.sh;
      t.ih_hi = std::min(s.h, s.ho - t.off_h <= 0 ? 0 : (s.ho - t.off_h + s.sh - 1) / s.sh);
      t.iw_lo = t.off_w >= 0 ? 0 : (-t.off_w + s.sw - 1) / s.sw;
      t.iw_hi = std::min(s.w, s.wo - t.off_w <= 0 ? 0 : (s.wo - t.off_w + s.sw - 1) / s.sw);
      taps.push_back(t);
    }
  return taps;
}

// col2im of one image's int32 sums (P_in, kH*kW*C_out: row = input pixel, column (ki, kj, co))
// into acc (P_out, C_out), channels last so each (pixel, tap) adds one contiguous run of C_out
// sums; C is C_out fixed at compile time for the common counts (0: s.c_out at run time).
template <int C>
inline __attribute__((always_inline)) void col2im_nhwc(const QConvShape& s, const Tap* taps, const int32_t* sums,
                                                       int32_t* acc) {
  const int64_t c = C > 0 ? C : s.c_out, ntaps = s.kh * s.kw, n = ntaps * c;
  for (int64_t t = 0; t < ntaps; ++t) {
    const Tap& tp = taps[t];
    for (int64_t ih = tp.ih_lo; ih < tp.ih_hi; ++ih) {
      int32_t* arow = acc + (ih * s.sh + tp.off_h) * s.wo * c;
      const int32_t* srow = sums + ih * s.w * n + t * c;
      for (int64_t iw = tp.iw_lo; iw < tp.iw_hi; ++iw) {
        int32_t* a = arow + (iw * s.sw + tp.off_w) * c;
        const int32_t* sp = srow + iw * n;
        for (int64_t co = 0; co < c; ++co) a[co] += sp[co];
      }
    }
  }
}

// The transposed conv's tail for one image: col2im into acc (P_out, C_out, zeroed), then
// out (C_out, P_out) = acc * a_scale * w_scale[co] + bias[co] (relu).
inline __attribute__((always_inline)) void col2im_dequant_body(const QConvShape& s, const Tap* taps,
                                                               const int32_t* sums, int32_t* acc,
                                                               const QConvStore& st, float* out) {
  const int64_t p_out = s.ho * s.wo, c = s.c_out;
  if (c == 1) col2im_nhwc<1>(s, taps, sums, acc);
  else if (c == 16) col2im_nhwc<16>(s, taps, sums, acc);
  else if (c == 32) col2im_nhwc<32>(s, taps, sums, acc);
  else col2im_nhwc<0>(s, taps, sums, acc);
  const float lo = st.relu ? 0.0f : -std::numeric_limits<float>::infinity();
  for (int64_t co = 0; co < c; ++co) {
    const float scale = st.a_scale * st.w_scale[co], b = st.bias ? st.bias[co] : 0.0f;
    const int32_t* a = acc + co;
    float* o = out + co * p_out;
    for (int64_t p = 0; p < p_out; ++p) o[p] = std::max(float(a[p * c]) * scale + b, lo);
  }
}
LATENT_CPU_MULTI_ISA(col2im_dequant,
                     (const QConvShape& s, const Tap* taps, const int32_t* sums, int32_t* acc, const QConvStore& st,
                      float* out),
                     (s, taps, sums, acc, st, out))

}  // namespace

namespace {
// im2col of one NHWC uint8 image: col[(oh, ow)][(ki, kj, ci)] = x[ih][iw][ci] with ih = row_src[oh
// * kh + ki] and iw = col_src[ow * kw + kj] (-1: outside, the zero point): one run of C_in bytes
// per tap, C fixed at compile time for the common channel counts (0: s.c_in at run time).
template <int C>
void im2col_nhwc(const QConvShape& s, const int64_t* row_src, const int64_t* col_src, const uint8_t* x,
                 uint8_t zero, uint8_t* col, int64_t k4) {
  const int64_t c = C > 0 ? C : s.c_in;
  for (int64_t oh = 0; oh < s.ho; ++oh)
    for (int64_t ow = 0; ow < s.wo; ++ow) {
      uint8_t* dst = col + (oh * s.wo + ow) * k4;
      const int64_t* cs = col_src + ow * s.kw;
      for (int64_t ki = 0; ki < s.kh; ++ki) {
        const int64_t ih = row_src[oh * s.kh + ki];
        const uint8_t* xr = x + (ih >= 0 ? ih : 0) * s.w * c;
        for (int64_t kj = 0; kj < s.kw; ++kj, dst += c) {
          const int64_t iw = cs[kj];
          if (ih >= 0 && iw >= 0) {
            if constexpr (C > 0) std::memcpy(dst, xr + iw * C, C);
            else std::memcpy(dst, xr + iw * c, size_t(c));
          } else {
            if constexpr (C > 0) std::memset(dst, zero, C);
            else std::memset(dst, zero, size_t(c));
          }
        }
      }
    }
}
}  // namespace

void qconv2d_u8s8(const QConvShape& s, const uint8_t* x, const PackedQWeight& w, const QConvStore& st) {
  check_shape(s, w, false);
  const int64_t p_in = s.h * s.w, p_out = s.ho * s.wo, in_image = s.c_in * p_in, out_image = s.c_out * p_out;
  const uint8_t zero = static_cast<uint8_t>(st.a_zero);
  const int64_t c = s.c_in;
  // Source row / column of each (output row or column, tap), -1 outside the image: computed once.
  std::vector<int64_t> row_src(size_t(s.ho * s.kh)), col_src(size_t(s.wo * s.kw));
  for (int64_t oh = 0; oh < s.ho; ++oh)
    for (int64_t ki = 0; ki < s.kh; ++ki) {
      const int64_t ih = oh * s.sh - s.ph + ki * s.dh;
      row_src[size_t(oh * s.kh + ki)] = ih >= 0 && ih < s.h ? ih : -1;
    }
  for (int64_t ow = 0; ow < s.wo; ++ow)
    for (int64_t kj = 0; kj < s.kw; ++kj) {
      const int64_t iw = ow * s.sw - s.pw + kj * s.dw;
      col_src[size_t(ow * s.kw + kj)] = iw >= 0 && iw < s.w ? iw : -1;
    }
  over_images(s.n, p_out * w.k * s.c_out, [&](int64_t img) {
    thread_local std::vector<uint8_t> nhwc_buf, col_buf;
    nhwc_buf.resize(size_t(in_image));
    col_buf.resize(size_t(p_out * w.k4));
    uint8_t* nhwc = nhwc_buf.data();
    uint8_t* col = col_buf.data();
    const uint8_t* xi = x + img * in_image;
    if (c != 1) to_pixel_rows(xi, c, p_in, nhwc, c);
    const uint8_t* src = c == 1 ? xi : nhwc;  // one channel: NCHW is NHWC
    if (c == 1) im2col_nhwc<1>(s, row_src.data(), col_src.data(), src, zero, col, w.k4);
    else if (c == 16) im2col_nhwc<16>(s, row_src.data(), col_src.data(), src, zero, col, w.k4);
    else if (c == 32) im2col_nhwc<32>(s, row_src.data(), col_src.data(), src, zero, col, w.k4);
    else im2col_nhwc<0>(s, row_src.data(), col_src.data(), src, zero, col, w.k4);
    QEpilogue ep;
    ep.a_scale = st.a_scale;
    ep.a_zero = st.a_zero;
    ep.w_scale = st.w_scale;
    ep.bias = st.bias;
    ep.relu = st.relu;
    ep.out_f32 = st.out + img * out_image;
    ep.ldc = 1;              // row = output pixel
    ep.col_stride = p_out;   // column = output channel
    qgemm_u8s8(p_out, col, w.k4, w, ep);
  });
}

void qconv_transpose2d_u8s8(const QConvShape& s, const uint8_t* x, const PackedQWeight& w, const QConvStore& st) {
  check_shape(s, w, true);
  const int64_t p_in = s.h * s.w, in_image = s.c_in * p_in, p_out = s.ho * s.wo, out_image = s.c_out * p_out;
  const std::vector<Tap> taps = transposed_taps(s);
  over_images(s.n, p_in * w.k * w.n, [&](int64_t img) {
    thread_local std::vector<uint8_t> a_buf;
    thread_local std::vector<int32_t> sums_buf, acc_buf;
    a_buf.resize(size_t(p_in * w.k4));
    sums_buf.resize(size_t(w.n * p_in));
    acc_buf.assign(size_t(out_image), 0);
    uint8_t* a = a_buf.data();
    int32_t* sums = sums_buf.data();
    to_pixel_rows(x + img * in_image, s.c_in, p_in, a, w.k4);  // bytes [c_in, k4) meet zero weights
    // sums (P_in, kH*kW*C_out): row = input pixel, column (ki, kj, co), zero term removed
    QEpilogue ep;
    ep.a_zero = st.a_zero;
    ep.out_i32 = sums;
    ep.ldc = w.n;
    qgemm_u8s8(p_in, a, w.k4, w, ep);
    col2im_dequant(s, taps.data(), sums, acc_buf.data(), st, st.out + img * out_image);
  });
}

}  // namespace latent::cpu
