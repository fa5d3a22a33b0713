// int8 conv2d and conv_transpose2d over the int8 GEMM (see qconv.h for the arithmetic).
#include "qconv.h"

#include <algorithm>
#include <cstring>
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
  const int64_t taps = kh * kw, rows = c_out * taps;
  std::vector<int8_t> t(size_t(rows * c_in));
  for (int64_t ci = 0; ci < c_in; ++ci)
    for (int64_t j = 0; j < rows; ++j) t[size_t(j * c_in + ci)] = w[ci * rows + j];  // j = (co, ki, kj)
  return pack_qweight(rows, c_in, t.data(), c_in);
}

namespace {
// One tap's run of c bytes: fixed-size copies for the common channel counts (a memcpy call per
// 16 bytes cost more than the copy).
inline void copy_run(uint8_t* dst, const uint8_t* src, int64_t c) {
  if (c == 1) *dst = *src;
  else if (c == 16) std::memcpy(dst, src, 16);
  else if (c == 32) std::memcpy(dst, src, 32);
  else std::memcpy(dst, src, size_t(c));
}
inline void fill_run(uint8_t* dst, uint8_t v, int64_t c) {
  if (c == 1) *dst = v;
  else if (c == 16) std::memset(dst, v, 16);
  else if (c == 32) std::memset(dst, v, 32);
  else std::memset(dst, v, size_t(c));
}

// dst (p, c_in) with row stride ld = src (c_in, p): an NCHW image as pixel rows.
void to_pixel_rows(const uint8_t* src, int64_t c_in, int64_t p, uint8_t* dst, int64_t ld) {
  if (c_in == 1 && ld == 1) {
    std::memcpy(dst, src, size_t(p));
    return;
  }
  for (int64_t c = 0; c < c_in; ++c)
    for (int64_t q = 0; q < p; ++q) dst[q * ld + c] = src[c * p + q];
}
// The transposed conv's tail for one image: col2im of the int32 sums (C_out*kH*kW, P_in) into
// acc (C_out, P_out, zeroed), then out = acc * a_scale * w_scale[co] + bias[co] (relu).
inline __attribute__((always_inline)) void col2im_dequant_body(const QConvShape& s, const int32_t* sums, int32_t* acc,
                                                               const QConvStore& st, float* out) {
  const int64_t p_in = s.h * s.w, p_out = s.ho * s.wo;
  // col2im: input pixel (ih, iw) of row (co, ki, kj) lands on (ih*sh - ph + ki*dh, iw*sw - pw + kj*dw).
  for (int64_t co = 0; co < s.c_out; ++co) {
    int32_t* out_c = acc + co * p_out;
    for (int64_t ki = 0; ki < s.kh; ++ki)
      for (int64_t kj = 0; kj < s.kw; ++kj) {
        const int32_t* src = sums + ((co * s.kh + ki) * s.kw + kj) * p_in;
        const int64_t off_h = ki * s.dh - s.ph, off_w = kj * s.dw - s.pw;
        // input rows/columns whose output lies inside [0, ho) x [0, wo)
        const int64_t ih_lo = off_h >= 0 ? 0 : (-off_h + s.sh - 1) / s.sh;
        const int64_t ih_hi = std::min(s.h, s.ho - off_h <= 0 ? 0 : (s.ho - off_h + s.sh - 1) / s.sh);
        const int64_t iw_lo = off_w >= 0 ? 0 : (-off_w + s.sw - 1) / s.sw;
        const int64_t iw_hi = std::min(s.w, s.wo - off_w <= 0 ? 0 : (s.wo - off_w + s.sw - 1) / s.sw);
        for (int64_t ih = ih_lo; ih < ih_hi; ++ih) {
          int32_t* o = out_c + (ih * s.sh + off_h) * s.wo + off_w;
          const int32_t* in = src + ih * s.w;
          if (s.sw == 2) {
            for (int64_t iw = iw_lo; iw < iw_hi; ++iw) o[2 * iw] += in[iw];
          } else {
            for (int64_t iw = iw_lo; iw < iw_hi; ++iw) o[iw * s.sw] += in[iw];
          }
        }
      }
  }
  for (int64_t co = 0; co < s.c_out; ++co) {
    const float scale = st.a_scale * st.w_scale[co], b = st.bias ? st.bias[co] : 0.0f;
    const int32_t* in_c = acc + co * p_out;
    float* o = out + co * p_out;
    if (st.relu)
      for (int64_t p = 0; p < p_out; ++p) o[p] = std::max(float(in_c[p]) * scale + b, 0.0f);
    else
      for (int64_t p = 0; p < p_out; ++p) o[p] = float(in_c[p]) * scale + b;
  }
}
LATENT_CPU_MULTI_ISA(col2im_dequant,
                     (const QConvShape& s, const int32_t* sums, int32_t* acc, const QConvStore& st, float* out),
                     (s, sums, acc, st, out))

}  // namespace

void qconv2d_u8s8(const QConvShape& s, const uint8_t* x, const PackedQWeight& w, const QConvStore& st) {
  check_shape(s, w, false);
  const int64_t p_in = s.h * s.w, p_out = s.ho * s.wo, in_image = s.c_in * p_in, out_image = s.c_out * p_out;
  const uint8_t zero = static_cast<uint8_t>(st.a_zero);
  const int64_t c = s.c_in;
  over_images(s.n, p_out * w.k * s.c_out, [&](int64_t img) {
    thread_local std::vector<uint8_t> nhwc, col;
    nhwc.resize(size_t(in_image));
    to_pixel_rows(x + img * in_image, c, p_in, nhwc.data(), c);
    col.resize(size_t(p_out * w.k4));
    // col[(oh, ow)][(ki, kj, ci)] = x[ci][oh*sh - ph + ki*dh][ow*sw - pw + kj*dw] (zero point outside):
    // one run of C_in bytes per tap.
    for (int64_t oh = 0; oh < s.ho; ++oh)
      for (int64_t ow = 0; ow < s.wo; ++ow) {
        uint8_t* dst = col.data() + (oh * s.wo + ow) * w.k4;
        for (int64_t ki = 0; ki < s.kh; ++ki) {
          const int64_t ih = oh * s.sh - s.ph + ki * s.dh;
          const bool row_in = ih >= 0 && ih < s.h;
          for (int64_t kj = 0; kj < s.kw; ++kj, dst += c) {
            const int64_t iw = ow * s.sw - s.pw + kj * s.dw;
            if (row_in && iw >= 0 && iw < s.w) copy_run(dst, nhwc.data() + (ih * s.w + iw) * c, c);
            else fill_run(dst, zero, c);
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
  over_images(s.n, p_in * w.k * w.n, [&](int64_t img) {
    thread_local std::vector<uint8_t> a;
    thread_local std::vector<int32_t> sums, acc;
    a.resize(size_t(p_in * w.k4));
    sums.resize(size_t(w.n * p_in));
    acc.assign(size_t(out_image), 0);
    to_pixel_rows(x + img * in_image, s.c_in, p_in, a.data(), w.k4);  // bytes [c_in, k4) meet zero weights
    // sums (C_out*kH*kW, P_in): column j = (co, ki, kj) of the GEMM stored as a row, zero term removed
    QEpilogue ep;
    ep.a_zero = st.a_zero;
    ep.out_i32 = sums.data();
    ep.ldc = 1;
    ep.col_stride = p_in;
    qgemm_u8s8(p_in, a.data(), w.k4, w, ep);
    col2im_dequant(s, sums.data(), acc.data(), st, st.out + img * out_image);
  });
}

}  // namespace latent::cpu
