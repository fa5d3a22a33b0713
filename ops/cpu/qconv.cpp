// int8 conv2d and conv_transpose2d over the int8 GEMM (see qconv.h for the arithmetic).
#include "qconv.h"

#include <algorithm>
#include <cstring>
#include <cmath>
#include <limits>
#include <mutex>
#include <vector>

#include "../../autograd/error.h"
#include "../scalar_math.h"
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
  const int64_t want_k = transposed ? s.c_in : s.kh * qconv_row_bytes(s.c_in, s.kw);
  if (w.n != want_n || w.k != want_k)
    fail(kOp, "packed weight [{}, {}] does not fit a {}x{} kernel from {} to {} channels (expected [{}, {}])", w.n, w.k,
         s.kh, s.kw, s.c_in, s.c_out, want_n, want_k);
}

void check_store(const QConvStore& st) {
  if (int(!!st.out) + int(!!st.out_u8) != 1) fail(kOp, "exactly one output (float32 or uint8) must be given");
  if (st.out_u8 && (!(st.out_scale > 0.0f) || st.out_zero < 0 || st.out_zero > 255))
    fail(kOp, "uint8 output needs a positive scale and a zero point in [0, 255]; got {} and {}", st.out_scale, st.out_zero);
  if (st.out_nhwc && !st.out_u8) fail(kOp, "a channels-last output must be uint8");
  if (st.sigmoid && !st.out) fail(kOp, "the sigmoid store needs the float32 output");
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
  // Columns in (ki, [kj, ci]) order, one run of qconv_row_bytes per kernel row: a run is kw pixels
  // of a channels-last image side by side, which the GEMM reads in place (zero weights pad it to 4).
  const int64_t seg = qconv_row_bytes(c_in, kw), k = kh * seg;
  std::vector<int8_t> t(size_t(c_out * k), 0);
  for (int64_t co = 0; co < c_out; ++co)
    for (int64_t ci = 0; ci < c_in; ++ci)
      for (int64_t ki = 0; ki < kh; ++ki)
        for (int64_t kj = 0; kj < kw; ++kj)
          t[size_t(co * k + ki * seg + kj * c_in + ci)] = w[((co * c_in + ci) * kh + ki) * kw + kj];
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
// One image copied into a zero-point-filled, channels-last buffer of (hp, wp) pixels with the
// image at row `top`, column `left` (rows and columns of the image past hp / wp are not needed
// and not copied). x is (c, h, w) or, when nhwc, (h, w, c).
void pad_image(const uint8_t* x, bool nhwc, int64_t c, int64_t h, int64_t w, int64_t hp, int64_t wp, int64_t top,
               int64_t left, uint8_t zero, uint8_t* out, int64_t out_bytes) {
  const int64_t rows = std::clamp<int64_t>(hp - top, 0, h), cols = std::clamp<int64_t>(wp - left, 0, w);
  if (rows == 0 || cols == 0) {
    std::memset(out, zero, size_t(out_bytes));
    return;
  }
  // the zero point only where no pixel of the image lands: the rows above and below, each row's
  // margins and the slack past the grid
  const int64_t row_bytes = wp * c, right = (wp - left - cols) * c;
  std::memset(out, zero, size_t(top * row_bytes));
  for (int64_t y = 0; y < rows; ++y) {
    uint8_t* r = out + (y + top) * row_bytes;
    std::memset(r, zero, size_t(left * c));
    uint8_t* o = r + left * c;
    if (nhwc || c == 1) {
      std::memcpy(o, x + y * w * c, size_t(cols * c));
    } else {
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t q = 0; q < cols; ++q) o[q * c + ch] = x[(ch * h + y) * w + q];
    }
    std::memset(o + cols * c, zero, size_t(right));
  }
  const int64_t done = (top + rows) * row_bytes;
  std::memset(out + done, zero, size_t(out_bytes - done));
}

// The store of an int8 conv as qgemm's epilogue; rows are output pixels of image `img`.
QEpilogue conv_epilogue(const QConvStore& st, int64_t c_out, int64_t p_out, int64_t img) {
  QEpilogue ep;
  ep.a_scale = st.a_scale;
  ep.a_zero = st.a_zero;
  ep.w_scale = st.w_scale;
  ep.bias = st.bias;
  ep.relu = st.relu;
  ep.sigmoid = st.sigmoid;
  const int64_t out_image = c_out * p_out;
  if (st.out_u8) {
    ep.out_u8 = st.out_u8 + img * out_image;
    ep.out_scale = st.out_scale;
    ep.out_zero = st.out_zero;
  } else {
    ep.out_f32 = st.out + img * out_image;
  }
  if (st.out_nhwc || c_out == 1) {  // (pixel, channel) rows: the GEMM's own layout (one channel: NCHW too)
    ep.ldc = c_out;
    ep.col_stride = 1;
  } else {
    ep.ldc = 1;              // row = output pixel
    ep.col_stride = p_out;   // column = output channel
  }
  return ep;
}
}  // namespace

void qconv2d_u8s8(const QConvShape& s, const uint8_t* x, const PackedQWeight& w, const QConvStore& st) {
  check_shape(s, w, false);
  check_store(st);
  const int64_t c = s.c_in, p_out = s.ho * s.wo, in_image = c * s.h * s.w;
  const uint8_t zero = static_cast<uint8_t>(st.a_zero);
  // The padded image holds every pixel a kernel tap reads; with dilation 1 along the width, one
  // kernel row of one output pixel is one run of kw * c bytes of it, which the GEMM reads in place.
  const int64_t hp = (s.ho - 1) * s.sh + (s.kh - 1) * s.dh + 1, wp = (s.wo - 1) * s.sw + (s.kw - 1) * s.dw + 1;
  const int64_t seg = qconv_row_bytes(c, s.kw), pad_bytes = hp * wp * c + 64;  // + a run's rounding to 4
  const bool in_place = s.dw == 1;
  std::vector<int64_t> rows(static_cast<size_t>(p_out)), segs(static_cast<size_t>(s.kh));
  for (int64_t oh = 0; oh < s.ho; ++oh)
    for (int64_t ow = 0; ow < s.wo; ++ow)
      rows[size_t(oh * s.wo + ow)] = in_place ? (oh * s.sh * wp + ow * s.sw) * c : (oh * s.wo + ow) * w.k4;
  for (int64_t ki = 0; ki < s.kh; ++ki) segs[size_t(ki)] = in_place ? ki * s.dh * wp * c : ki * seg;
  const QRowGather gather{rows.data(), segs.data(), s.kh, seg};
  over_images(s.n, p_out * w.k * s.c_out, [&](int64_t img) {
    thread_local std::vector<uint8_t> pad_buf, col_buf;
    pad_buf.resize(size_t(pad_bytes));
    pad_image(x + img * in_image, st.in_nhwc, c, s.h, s.w, hp, wp, s.ph, s.pw, zero, pad_buf.data(), pad_bytes);
    const uint8_t* a = pad_buf.data();
    if (!in_place) {  // dilated along the width: each row's runs gathered tap by tap
      col_buf.assign(size_t(p_out * w.k4), zero);
      for (int64_t oh = 0; oh < s.ho; ++oh)
        for (int64_t ow = 0; ow < s.wo; ++ow)
          for (int64_t ki = 0; ki < s.kh; ++ki)
            for (int64_t kj = 0; kj < s.kw; ++kj)
              std::memcpy(col_buf.data() + (oh * s.wo + ow) * w.k4 + ki * seg + kj * c,
                          pad_buf.data() + ((oh * s.sh + ki * s.dh) * wp + ow * s.sw + kj * s.dw) * c, size_t(c));
      a = col_buf.data();
    }
    qgemm_u8s8_gather(p_out, a, gather, w, conv_epilogue(st, s.c_out, p_out, img));
  });
}

namespace {
// The transposed conv by stride phases: the output pixels (a + sh*m, b + sw*n) of one phase (a, b)
// each gather the same kernel taps, from input pixels (m + e_ki, n + e_kj), so each phase is an
// ordinary conv over the padded input (qgemm_u8s8_gather, one run of C_in bytes per tap) whose
// store writes every output pixel once: no int32 sums, scatter-add or second pass.
// Output channels from which a transposed conv runs a GEMM per phase: with fewer, a phase's GEMM
// fills a fraction of the 16 lanes of its one panel (the 16->1 layer: 36 VPDPBUSD per input pixel
// against 4), so those run transposed_by_sums (one GEMM into planar sums, then a gather).
constexpr int64_t kPhaseMinChannels = 16;
struct Phase {
  int64_t a = 0, b = 0, mh = 0, nw = 0;           // first output row / column, rows and columns of the phase
  std::shared_ptr<const PackedQWeight> w;         // (C_out, taps * run); null: no tap reaches the phase
  std::vector<int64_t> rows, segs;                // the gather: one row per (m, n), one run per tap
  std::vector<std::pair<int64_t, int64_t>> tap_offsets;  // (e_ki, e_kj) of each run
  std::vector<int64_t> tap_index;                 // ki * kW + kj of each run
  std::vector<int64_t> out_pixel, out_nhwc;       // output row offsets: pixel index, or pixel * C_out
};
struct PhasePlan {
  QConvShape geometry;                            // n ignored
  int64_t hp = 0, wp = 0, top = 0, left = 0, run = 0;
  std::vector<Phase> phases;
  bool fits(const QConvShape& s) const {
    const QConvShape& g = geometry;
    return g.c_in == s.c_in && g.h == s.h && g.w == s.w && g.c_out == s.c_out && g.ho == s.ho && g.wo == s.wo &&
           g.kh == s.kh && g.kw == s.kw && g.sh == s.sh && g.sw == s.sw && g.ph == s.ph && g.pw == s.pw &&
           g.dh == s.dh && g.dw == s.dw;
  }
};

// Input offset e of tap k for phase r (output index r + stride * m reads input m + e), or false
// when the tap never reaches that phase.
bool phase_offset(int64_t r, int64_t k, int64_t stride, int64_t pad, int64_t dil, int64_t& e) {
  const int64_t num = r + pad - k * dil;
  if (((num % stride) + stride) % stride != 0) return false;
  e = num / stride;
  return true;
}

std::shared_ptr<const PhasePlan> make_phase_plan(const QConvShape& s, const PackedQWeight& w, bool pack) {
  auto plan = std::make_shared<PhasePlan>();
  plan->geometry = s;
  plan->run = (s.c_in + 3) / 4 * 4;
  const auto weight = [&](int64_t row, int64_t ci) {  // Wt[row][ci], row = (ki, kj, co), from the packing
    return w.data.get()[(row / 16) * w.panel_bytes() + (ci / 4) * 64 + (row % 16) * 4 + ci % 4];
  };
  int64_t top = 0, left = 0, bottom = s.h, right = s.w;  // rows [-top, bottom), columns [-left, right) read
  for (int64_t a = 0; a < s.sh; ++a)
    for (int64_t b = 0; b < s.sw; ++b) {
      Phase ph;
      ph.a = a, ph.b = b;
      ph.mh = a < s.ho ? (s.ho - a + s.sh - 1) / s.sh : 0;
      ph.nw = b < s.wo ? (s.wo - b + s.sw - 1) / s.sw : 0;
      if (ph.mh == 0 || ph.nw == 0) continue;
      std::vector<std::pair<int64_t, int64_t>> ki_e, kj_e;
      for (int64_t k = 0, e = 0; k < s.kh; ++k)
        if (phase_offset(a, k, s.sh, s.ph, s.dh, e)) ki_e.push_back({k, e});
      for (int64_t k = 0, e = 0; k < s.kw; ++k)
        if (phase_offset(b, k, s.sw, s.pw, s.dw, e)) kj_e.push_back({k, e});
      const int64_t taps = int64_t(ki_e.size() * kj_e.size());
      if (taps > 0 && pack) {
        const int64_t k = taps * plan->run;
        std::vector<int8_t> t(size_t(s.c_out * k), 0);
        int64_t tap = 0;
        for (const auto& [ki, eh] : ki_e)
          for (const auto& [kj, ew] : kj_e) {
            for (int64_t co = 0; co < s.c_out; ++co)
              for (int64_t ci = 0; ci < s.c_in; ++ci)
                t[size_t(co * k + tap * plan->run + ci)] = weight((ki * s.kw + kj) * s.c_out + co, ci);
            ++tap;
          }
        ph.w = std::make_shared<const PackedQWeight>(pack_qweight(s.c_out, k, t.data(), k));
      }
      for (const auto& [ki, eh] : ki_e)
        for (const auto& [kj, ew] : kj_e) {
          ph.tap_offsets.push_back({eh, ew});
          ph.tap_index.push_back(ki * s.kw + kj);
          top = std::max(top, -eh), left = std::max(left, -ew);
          bottom = std::max(bottom, ph.mh + eh), right = std::max(right, ph.nw + ew);
        }
      for (int64_t m = 0; m < ph.mh; ++m)
        for (int64_t n = 0; n < ph.nw; ++n) {
          const int64_t pixel = (a + s.sh * m) * s.wo + b + s.sw * n;
          ph.out_pixel.push_back(pixel);
          ph.out_nhwc.push_back(pixel * s.c_out);
        }
      plan->phases.push_back(std::move(ph));
    }
  plan->top = top, plan->left = left, plan->hp = top + bottom, plan->wp = left + right;
  const int64_t wp = plan->wp, c = s.c_in;
  for (Phase& ph : plan->phases) {  // byte offsets in the padded image, (top, left) its origin
    for (const auto& [eh, ew] : ph.tap_offsets) ph.segs.push_back((eh * wp + ew) * c);
    for (int64_t m = 0; m < ph.mh; ++m)
      for (int64_t n = 0; n < ph.nw; ++n) ph.rows.push_back(((m + top) * wp + n + left) * c);
  }
  return plan;
}

// The plan of this weight for this geometry: the one kept with the weight, or a new one (kept).
std::shared_ptr<const PhasePlan> phase_plan(const QConvShape& s, const PackedQWeight& w) {
  static std::mutex mutex;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto kept = std::static_pointer_cast<const PhasePlan>(w.derived);
    if (kept && kept->fits(s)) return kept;
  }
  std::shared_ptr<const PhasePlan> plan = make_phase_plan(s, w, s.c_out >= kPhaseMinChannels);
  std::lock_guard<std::mutex> lock(mutex);
  w.derived = plan;
  return plan;
}

void store_bias_only(const Phase& ph, const QConvShape& s, const QConvStore& st, int64_t img);

// The transposed conv's store for few output channels (a phase's GEMM would fill 1 of 16 lanes):
// planes holds one image's zero-point-corrected int32 sums, plane j = row j of Wt ((ki, kj, co))
// over the padded input grid (zero outside the image); output pixel (a + sh*m, b + sw*n) of
// channel co is the sum of its phase's taps' planes at (m + e_ki, n + e_kj), dequantized (relu,
// sigmoid) or requantized: a gather, each output written once.
inline __attribute__((always_inline)) void phase_gather_store_body(const QConvShape& s, const PhasePlan& plan,
                                                                   const int32_t* planes, int32_t* acc, float* val,
                                                                   const QConvStore& st, int64_t img) {
  const int64_t plane = plan.hp * plan.wp, p_out = s.ho * s.wo, out_image = s.c_out * p_out, wp = plan.wp;
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds half to even
  const float inv = st.out_u8 ? 1.0f / st.out_scale : 1.0f, zero = float(st.out_zero);
  const float lo = st.out_u8 ? (st.relu ? std::max(zero, 0.0f) : 0.0f) : st.relu ? 0.0f : -std::numeric_limits<float>::infinity();
  for (const Phase& ph : plan.phases) {
    if (ph.tap_index.empty()) continue;  // bias only: the caller's
    // whole padded-grid rows (m, 0..wp): flat loops the compiler vectorizes; columns n >= nw are dropped
    const int64_t len = ph.mh * wp;
    for (int64_t co = 0; co < s.c_out; ++co) {
      const float scale = st.a_scale * st.w_scale[co] * inv, bias = (st.bias ? st.bias[co] : 0.0f) * inv;
      for (int64_t q = 0; q < len; ++q) acc[q] = 0;
      for (size_t t = 0; t < ph.tap_index.size(); ++t) {
        const int32_t* src = planes + (ph.tap_index[t] * s.c_out + co) * plane +
                             (ph.tap_offsets[t].first + plan.top) * wp + ph.tap_offsets[t].second + plan.left;
        for (int64_t q = 0; q < len; ++q) acc[q] += src[q];
      }
      if (st.out_u8) {
        for (int64_t q = 0; q < len; ++q) {
          float v = std::min(std::max(float(acc[q]) * scale + bias, -512.0f), 512.0f);
          v = ((v + kMagic) - kMagic) + zero;
          val[q] = std::min(std::max(v, lo), 255.0f);
        }
      } else {
        for (int64_t q = 0; q < len; ++q) val[q] = std::max(float(acc[q]) * scale + bias, lo);
        if (st.sigmoid)
          for (int64_t q = 0; q < len; ++q) val[q] = math::sigmoid(val[q]);
      }
      for (int64_t m = 0; m < ph.mh; ++m) {
        const int64_t first = (ph.a + s.sh * m) * s.wo + ph.b;  // output pixel of n = 0
        const float* v = val + m * wp;
        if (st.out_u8) {
          uint8_t* o = st.out_u8 + img * out_image;
          for (int64_t n = 0; n < ph.nw; ++n) {
            const int64_t pixel = first + s.sw * n;
            o[st.out_nhwc ? pixel * s.c_out + co : co * p_out + pixel] = static_cast<uint8_t>(static_cast<int32_t>(v[n]));
          }
        } else {
          float* o = st.out + img * out_image + co * p_out + first;
          for (int64_t n = 0; n < ph.nw; ++n) o[s.sw * n] = v[n];
        }
      }
    }
  }
}
LATENT_CPU_MULTI_ISA(phase_gather_store,
                     (const QConvShape& s, const PhasePlan& plan, const int32_t* planes, int32_t* acc, float* val,
                      const QConvStore& st, int64_t img),
                     (s, plan, planes, acc, val, st, img))

void transposed_by_sums(const QConvShape& s, const uint8_t* x, const PackedQWeight& w, const QConvStore& st,
                        const PhasePlan& plan) {
  const int64_t in_image = s.c_in * s.h * s.w, plane = plan.hp * plan.wp;
  const int64_t pad_bytes = plane * s.c_in + 64;  // + a row's rounding to 4
  const uint8_t zero = static_cast<uint8_t>(st.a_zero);
  // The GEMM's rows: every pixel of the padded grid (the padding's zero points give sums of exactly 0)
  std::vector<int64_t> rows(static_cast<size_t>(plane));
  for (int64_t q = 0; q < plane; ++q) rows[size_t(q)] = q * s.c_in;
  const int64_t zero_offset = 0;
  const QRowGather gather{rows.data(), &zero_offset, 1, w.k4};
  over_images(s.n, s.h * s.w * w.k * w.n, [&](int64_t img) {
    thread_local std::vector<uint8_t> pad_buf;
    thread_local std::vector<int32_t> planes_buf, acc_buf;
    thread_local std::vector<float> val_buf;
    pad_buf.resize(size_t(pad_bytes));
    pad_image(x + img * in_image, st.in_nhwc, s.c_in, s.h, s.w, plan.hp, plan.wp, plan.top, plan.left, zero,
              pad_buf.data(), pad_bytes);
    planes_buf.resize(size_t(w.n * plane + 2 * plan.wp + 16));  // + the reach of the last plane's dropped columns
    acc_buf.resize(size_t(plane));
    val_buf.resize(size_t(plane));
    QEpilogue ep;  // planar sums: column j at j * plane, row = padded-grid pixel
    ep.a_zero = st.a_zero;
    ep.out_i32 = planes_buf.data();
    ep.ldc = 1;
    ep.col_stride = plane;
    qgemm_u8s8_gather(plane, pad_buf.data(), gather, w, ep);
    phase_gather_store(s, plan, planes_buf.data(), acc_buf.data(), val_buf.data(), st, img);
    for (const Phase& ph : plan.phases)
      if (ph.tap_index.empty()) store_bias_only(ph, s, st, img);
  });
}

// Output pixels no tap reaches (stride above the kernel's extent): the bias alone, through the
// store's arithmetic (as qgemm's store computes it for a zero sum).
void store_bias_only(const Phase& ph, const QConvShape& s, const QConvStore& st, int64_t img) {
  const int64_t p_out = s.ho * s.wo;
  for (int64_t co = 0; co < s.c_out; ++co) {
    const float b = st.bias ? st.bias[co] : 0.0f;
    for (const int64_t pixel : ph.out_pixel) {
      if (st.out_u8) {
        const float v = std::min(b * (1.0f / st.out_scale) + float(st.out_zero), 512.0f);
        const float lo = st.relu ? float(st.out_zero) : 0.0f;
        const uint8_t q = static_cast<uint8_t>(std::clamp(std::nearbyint(v), lo, 255.0f));
        st.out_u8[img * s.c_out * p_out + (st.out_nhwc ? pixel * s.c_out + co : co * p_out + pixel)] = q;
      } else {
        float v = st.relu ? std::max(b, 0.0f) : b;
        if (st.sigmoid) v = 1.0f / (1.0f + std::exp(-v));
        st.out[img * s.c_out * p_out + co * p_out + pixel] = v;
      }
    }
  }
}
}  // namespace

void qconv_transpose2d_u8s8(const QConvShape& s, const uint8_t* x, const PackedQWeight& w, const QConvStore& st) {
  check_shape(s, w, true);
  check_store(st);
  const std::shared_ptr<const PhasePlan> plan = phase_plan(s, w);
  if (s.c_out < kPhaseMinChannels) return transposed_by_sums(s, x, w, st, *plan);
  const int64_t in_image = s.c_in * s.h * s.w, p_out = s.ho * s.wo;
  const int64_t pad_bytes = plan->hp * plan->wp * s.c_in + 64;  // + a run's rounding to 4
  const uint8_t zero = static_cast<uint8_t>(st.a_zero);
  over_images(s.n, s.h * s.w * w.k * w.n, [&](int64_t img) {
    thread_local std::vector<uint8_t> pad_buf;
    pad_buf.resize(size_t(pad_bytes));
    pad_image(x + img * in_image, st.in_nhwc, s.c_in, s.h, s.w, plan->hp, plan->wp, plan->top, plan->left, zero,
              pad_buf.data(), pad_bytes);
    for (const Phase& ph : plan->phases) {
      if (!ph.w) {
        store_bias_only(ph, s, st, img);
        continue;
      }
      QEpilogue ep = conv_epilogue(st, s.c_out, p_out, img);
      ep.row_offset = ep.col_stride == 1 ? ph.out_nhwc.data() : ph.out_pixel.data();
      const QRowGather gather{ph.rows.data(), ph.segs.data(), int64_t(ph.segs.size()), plan->run};
      qgemm_u8s8_gather(ph.mh * ph.nw, pad_buf.data(), gather, *ph.w, ep);
    }
  });
}

}  // namespace latent::cpu
