// The int8 convolution kernels (ops/cpu/qconv.h) and the gathered-rows form of the int8 GEMM they
// run on (qgemm_u8s8_gather): against plain int64 / float64 references on odd shapes, batch 1,
// padding, stride and dilation corners (phases no tap reaches), every output layout, the
// saturation corners, and the sigmoid store. The variants: this suite runs again under
// LATENT_CPU_ISA=avx2 and =base (tests/meson.build).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "helpers.h"
#include "ops/cpu/qconv.h"
#include "ops/cpu/qgemm.h"

using namespace latent;
using latent::cpu::QIsa;

namespace {

std::vector<QIsa> isas_here() {
  std::vector<QIsa> out{QIsa::Base};
  if (int(cpu::qgemm_best_isa()) >= int(QIsa::Avx2)) out.push_back(QIsa::Avx2);
  if (cpu::qgemm_best_isa() == QIsa::Avx512Vnni) out.push_back(QIsa::Avx512Vnni);
  return out;
}

// A random gather problem: `image` bytes, m rows at random offsets, `segments` runs of seg bytes
// at random (possibly overlapping, possibly negative-relative) offsets.
struct GatherProblem {
  std::vector<uint8_t> image;
  std::vector<int64_t> rows, segs;
  int64_t m = 0, n = 0, segments = 0, seg = 0;
  std::vector<int8_t> w;  // n x (segments * seg)
  std::vector<float> w_scale, bias;
  int32_t zero = 0;
};

GatherProblem random_gather(int64_t m, int64_t n, int64_t segments, int64_t seg, uint32_t seed, bool saturate) {
  std::mt19937 gen(seed);
  GatherProblem p;
  p.m = m, p.n = n, p.segments = segments, p.seg = seg;
  std::uniform_int_distribution<int> ua(0, 255), uw(-128, 127);
  std::uniform_real_distribution<float> us(0.001f, 0.02f), ub(-1.0f, 1.0f);
  const int64_t span = 3 * seg * segments + 40;
  p.image.resize(size_t(span + 64 * m));
  for (auto& v : p.image) v = saturate ? 255 : uint8_t(ua(gen));
  std::uniform_int_distribution<int64_t> us_off(-seg, span - seg - 1), ur(0, 64 * m - 1);
  for (int64_t s = 0; s < segments; ++s) p.segs.push_back(us_off(gen));
  const int64_t lowest = *std::min_element(p.segs.begin(), p.segs.end());
  for (int64_t i = 0; i < m; ++i) p.rows.push_back(ur(gen) + std::max<int64_t>(0, -lowest));
  p.image.resize(size_t(64 * m + span + seg + 8), 255);
  p.w.resize(size_t(n * segments * seg));
  for (auto& v : p.w) v = saturate ? int8_t(-128) : int8_t(uw(gen));
  for (int64_t j = 0; j < n; ++j) p.w_scale.push_back(us(gen)), p.bias.push_back(ub(gen));
  p.zero = ua(gen);
  return p;
}

// int64 sums (sum - zero * colsum) from the gathered rows, written out as a plain matrix first.
std::vector<int64_t> reference_gather(const GatherProblem& p) {
  const int64_t k = p.segments * p.seg;
  std::vector<int64_t> c(size_t(p.m * p.n));
  for (int64_t i = 0; i < p.m; ++i) {
    std::vector<int64_t> row;
    for (int64_t s = 0; s < p.segments; ++s)
      for (int64_t b = 0; b < p.seg; ++b) row.push_back(p.image[size_t(p.rows[size_t(i)] + p.segs[size_t(s)] + b)]);
    for (int64_t j = 0; j < p.n; ++j) {
      int64_t sum = 0;
      for (int64_t q = 0; q < k; ++q) sum += (row[size_t(q)] - p.zero) * int64_t(p.w[size_t(j * k + q)]);
      c[size_t(i * p.n + j)] = sum;
    }
  }
  return c;
}

}  // namespace

TEST_CASE("qgemm_u8s8_gather: int32 sums, scattered output rows and column strides equal the reference") {
  // m, n, segments, seg bytes, saturate
  const int64_t shapes[][5] = {{1, 1, 1, 4, 0},   {1, 16, 3, 4, 0},  {5, 17, 9, 4, 0},  {7, 33, 3, 48, 0},
                               {13, 9, 4, 16, 0}, {49, 64, 9, 32, 0}, {6, 20, 5, 12, 1}, {3, 70, 2, 8, 1}};
  uint32_t seed = 900;
  for (const auto& v : shapes) {
    GatherProblem p = random_gather(v[0], v[1], v[2], v[3], seed++, v[4] != 0);
    const int64_t k = p.segments * p.seg;
    const cpu::PackedQWeight packed = cpu::pack_qweight(p.n, k, p.w.data(), k);
    const std::vector<int64_t> ref = reference_gather(p);
    const cpu::QRowGather gather{p.rows.data(), p.segs.data(), p.segments, p.seg};
    // output rows in reverse order through the epilogue's row table
    std::vector<int64_t> out_rows(size_t(p.m));
    for (int64_t i = 0; i < p.m; ++i) out_rows[size_t(i)] = (p.m - 1 - i) * p.n;
    for (QIsa isa : isas_here()) {
      INFO("isa " << cpu::qisa_name(isa) << ", m " << p.m << ", n " << p.n << ", " << p.segments << " runs of " << p.seg);
      std::vector<int32_t> c(size_t(p.m * p.n), -1);
      cpu::QEpilogue ep;
      ep.a_zero = p.zero;
      ep.out_i32 = c.data();
      ep.row_offset = out_rows.data();
      cpu::qgemm_u8s8_gather(p.m, p.image.data(), gather, packed, ep, isa);
      int64_t bad = 0;
      for (int64_t i = 0; i < p.m; ++i)
        for (int64_t j = 0; j < p.n; ++j) bad += c[size_t((p.m - 1 - i) * p.n + j)] != ref[size_t(i * p.n + j)];
      CHECK(bad == 0);
      // planar: column j at j * m (rows consecutive), the conv's (C, H, W) store
      std::vector<int32_t> planar(size_t(p.m * p.n), -1);
      cpu::QEpilogue pl;
      pl.a_zero = p.zero;
      pl.out_i32 = planar.data();
      pl.ldc = 1;
      pl.col_stride = p.m;
      cpu::qgemm_u8s8_gather(p.m, p.image.data(), gather, packed, pl, isa);
      bad = 0;
      for (int64_t i = 0; i < p.m; ++i)
        for (int64_t j = 0; j < p.n; ++j) bad += planar[size_t(j * p.m + i)] != ref[size_t(i * p.n + j)];
      CHECK(bad == 0);
      // float32 with relu through the row table, against the float64 dequantization
      std::vector<float> f(size_t(p.m * p.n), -99.0f);
      cpu::QEpilogue fe;
      fe.a_scale = 0.02f;
      fe.a_zero = p.zero;
      fe.w_scale = p.w_scale.data();
      fe.bias = p.bias.data();
      fe.relu = true;
      fe.out_f32 = f.data();
      fe.row_offset = out_rows.data();
      cpu::qgemm_u8s8_gather(p.m, p.image.data(), gather, packed, fe, isa);
      bad = 0;
      for (int64_t i = 0; i < p.m; ++i)
        for (int64_t j = 0; j < p.n; ++j) {
          const double want = std::max(0.0, double(ref[size_t(i * p.n + j)]) * 0.02 * p.w_scale[size_t(j)] + p.bias[size_t(j)]);
          const double got = f[size_t((p.m - 1 - i) * p.n + j)];
          bad += std::abs(got - want) > 1e-4 + 1e-5 * std::abs(want);
        }
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("qgemm_u8s8_gather: runs that do not cover the packed k are one-line errors") {
  std::vector<int8_t> w(2 * 8, 1);
  const cpu::PackedQWeight packed = cpu::pack_qweight(2, 8, w.data(), 8);
  std::vector<uint8_t> a(64, 1);
  std::vector<int32_t> out(4);
  const int64_t rows[2] = {0, 8}, segs[2] = {0, 4};
  cpu::QEpilogue ep;
  ep.out_i32 = out.data();
  ep.ldc = 2;
  CHECK_THROWS_WITH_SUBSTR(cpu::qgemm_u8s8_gather(2, a.data(), cpu::QRowGather{rows, segs, 1, 4}, packed, ep),
                           "[qgemm] row gather of 1 runs of 4 bytes does not cover the packed k 8");
  CHECK_THROWS_WITH_SUBSTR(cpu::qgemm_u8s8_gather(2, a.data(), cpu::QRowGather{rows, segs, 4, 2}, packed, ep),
                           "[qgemm] row gather of 4 runs of 2 bytes does not cover the packed k 8");
  cpu::qgemm_u8s8_gather(2, a.data(), cpu::QRowGather{rows, segs, 2, 4}, packed, ep);
  CHECK(out == std::vector<int32_t>{8, 8, 8, 8});
}

namespace {

struct ConvProblem {
  cpu::QConvShape s;
  std::vector<uint8_t> x;        // (n, c_in, h, w)
  std::vector<int8_t> w;         // conv (c_out, c_in, kh, kw); transposed (c_in, c_out, kh, kw)
  std::vector<float> w_scale, bias;
  int32_t zero = 0;
  float a_scale = 0.01f;
};

ConvProblem random_conv(bool transposed, int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t kh,
                        int64_t kw, int64_t stride, int64_t pad, int64_t dil, int64_t out_pad, int64_t dil_w,
                        uint32_t seed) {
  std::mt19937 gen(seed);
  ConvProblem p;
  cpu::QConvShape& s = p.s;
  s.n = n, s.c_in = c_in, s.h = h, s.w = w, s.c_out = c_out, s.kh = kh, s.kw = kw;
  s.sh = stride, s.sw = stride == 1 ? 1 : stride - 1 > 0 ? stride - 1 : 1;  // unequal strides where possible
  s.ph = pad, s.pw = pad > 0 ? pad - 1 : 0;
  s.dh = dil, s.dw = dil_w;
  if (!transposed) {
    s.ho = (h + 2 * s.ph - s.dh * (kh - 1) - 1) / s.sh + 1;
    s.wo = (w + 2 * s.pw - s.dw * (kw - 1) - 1) / s.sw + 1;
  } else {
    s.ho = (h - 1) * s.sh - 2 * s.ph + s.dh * (kh - 1) + 1 + std::min(out_pad, s.sh - 1);
    s.wo = (w - 1) * s.sw - 2 * s.pw + s.dw * (kw - 1) + 1 + std::min(out_pad, s.sw - 1);
  }
  std::uniform_int_distribution<int> ua(0, 255), uw(-128, 127);
  std::uniform_real_distribution<float> us(0.001f, 0.02f), ub(-1.0f, 1.0f);
  p.x.resize(size_t(n * c_in * h * w));
  for (auto& v : p.x) v = uint8_t(ua(gen));
  p.w.resize(size_t(c_in * c_out * kh * kw));
  for (auto& v : p.w) v = int8_t(uw(gen));
  for (int64_t c = 0; c < c_out; ++c) p.w_scale.push_back(us(gen)), p.bias.push_back(ub(gen));
  p.zero = ua(gen);
  return p;
}

// Plain float64 convolution from the definitions (no im2col), then the store's arithmetic.
std::vector<double> reference_conv(const ConvProblem& p, bool transposed, bool relu) {
  const cpu::QConvShape& s = p.s;
  std::vector<double> out(size_t(s.n * s.c_out * s.ho * s.wo), 0.0);
  const auto x_at = [&](int64_t i, int64_t c, int64_t y, int64_t x) {
    return double(p.x[size_t(((i * s.c_in + c) * s.h + y) * s.w + x)]) - p.zero;
  };
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t ci = 0; ci < s.c_in; ++ci)
      for (int64_t co = 0; co < s.c_out; ++co)
        for (int64_t ki = 0; ki < s.kh; ++ki)
          for (int64_t kj = 0; kj < s.kw; ++kj) {
            const double wv = transposed ? p.w[size_t(((ci * s.c_out + co) * s.kh + ki) * s.kw + kj)]
                                         : p.w[size_t(((co * s.c_in + ci) * s.kh + ki) * s.kw + kj)];
            if (!transposed) {
              for (int64_t oh = 0; oh < s.ho; ++oh)
                for (int64_t ow = 0; ow < s.wo; ++ow) {
                  const int64_t ih = oh * s.sh - s.ph + ki * s.dh, iw = ow * s.sw - s.pw + kj * s.dw;
                  if (ih >= 0 && ih < s.h && iw >= 0 && iw < s.w)
                    out[size_t(((i * s.c_out + co) * s.ho + oh) * s.wo + ow)] += x_at(i, ci, ih, iw) * wv;
                }
            } else {
              for (int64_t ih = 0; ih < s.h; ++ih)
                for (int64_t iw = 0; iw < s.w; ++iw) {
                  const int64_t oh = ih * s.sh - s.ph + ki * s.dh, ow = iw * s.sw - s.pw + kj * s.dw;
                  if (oh >= 0 && oh < s.ho && ow >= 0 && ow < s.wo)
                    out[size_t(((i * s.c_out + co) * s.ho + oh) * s.wo + ow)] += x_at(i, ci, ih, iw) * wv;
                }
            }
          }
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t co = 0; co < s.c_out; ++co)
      for (int64_t q = 0; q < s.ho * s.wo; ++q) {
        double& v = out[size_t((i * s.c_out + co) * s.ho * s.wo + q)];
        v = v * double(p.a_scale) * p.w_scale[size_t(co)] + p.bias[size_t(co)];
        if (relu) v = std::max(v, 0.0);
      }
  return out;
}

}  // namespace

TEST_CASE("qconv: conv2d and conv_transpose2d against a float64 reference on random shapes") {
  // n, c_in, h, w, c_out, kh, kw, stride, pad, dilation (height), output_padding, dilation (width).
  // Row strides 3 over kernels of 2 leave transposed-conv phases no tap reaches (bias only); a
  // width dilation of 2 takes conv2d's gathered (not in-place) rows; C_out 16, 17, 32, 33 take the
  // transposed conv's phase GEMMs, fewer its planar sums and gather.
  const int64_t shapes[][12] = {{1, 1, 28, 28, 16, 3, 3, 2, 1, 1, 1, 1}, {3, 16, 14, 14, 32, 3, 3, 2, 1, 1, 1, 1},
                                {1, 3, 7, 9, 5, 3, 3, 1, 1, 1, 0, 1},    {2, 5, 11, 6, 17, 2, 3, 3, 2, 1, 2, 1},
                                {1, 7, 9, 9, 3, 1, 1, 1, 0, 1, 0, 1},    {2, 4, 10, 13, 33, 3, 2, 2, 0, 2, 1, 1},
                                {5, 32, 7, 7, 16, 3, 3, 2, 1, 1, 1, 1},  {1, 16, 14, 14, 1, 3, 3, 2, 1, 1, 1, 1},
                                {2, 3, 9, 12, 18, 3, 3, 2, 2, 1, 1, 2},  {1, 2, 5, 5, 2, 3, 2, 3, 1, 2, 2, 3}};
  uint32_t seed = 500;
  int64_t cases = 0;
  for (const auto& v : shapes)
    for (bool transposed : {false, true})
      for (bool relu : {false, true}) {
        ConvProblem p =
            random_conv(transposed, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], seed++);
        const cpu::QConvShape& s = p.s;
        INFO((transposed ? "conv_transpose2d" : "conv2d") << " n " << s.n << " c_in " << s.c_in << " " << s.h << "x"
             << s.w << " c_out " << s.c_out << " kernel " << s.kh << "x" << s.kw << " stride " << s.sh << "," << s.sw
             << " pad " << s.ph << "," << s.pw << " dilation " << s.dh << "," << s.dw << " out " << s.ho << "x" << s.wo << " relu " << relu);
        const cpu::PackedQWeight packed = transposed ? cpu::pack_qconv_transpose_weight(s.c_in, s.c_out, s.kh, s.kw, p.w.data())
                                                     : cpu::pack_qconv_weight(s.c_out, s.c_in, s.kh, s.kw, p.w.data());
        std::vector<float> out(size_t(s.n * s.c_out * s.ho * s.wo), -99.0f);
        cpu::QConvStore st;
        st.a_scale = p.a_scale;
        st.a_zero = p.zero;
        st.w_scale = p.w_scale.data();
        st.bias = p.bias.data();
        st.relu = relu;
        st.out = out.data();
        if (transposed) cpu::qconv_transpose2d_u8s8(s, p.x.data(), packed, st);
        else cpu::qconv2d_u8s8(s, p.x.data(), packed, st);
        const std::vector<double> want = reference_conv(p, transposed, relu);
        int64_t bad = 0;
        double worst = 0;
        for (size_t i = 0; i < want.size(); ++i) {
          const double d = std::abs(double(out[i]) - want[i]);
          worst = std::max(worst, d);
          bad += d > 1e-4 + 1e-5 * std::abs(want[i]);
        }
        INFO("worst |diff| " << worst);
        CHECK(bad == 0);
        // The sigmoid store (the decoder's last layer): sigmoid of the same values.
        std::vector<float> sig(out.size(), -99.0f);
        st.out = sig.data();
        st.sigmoid = true;
        if (transposed) cpu::qconv_transpose2d_u8s8(s, p.x.data(), packed, st);
        else cpu::qconv2d_u8s8(s, p.x.data(), packed, st);
        int64_t bad_sig = 0;
        for (size_t i = 0; i < want.size(); ++i) bad_sig += std::abs(double(sig[i]) - 1.0 / (1.0 + std::exp(-want[i]))) > 3e-5;
        CHECK(bad_sig == 0);
        st.sigmoid = false;
        st.out = out.data();
        // The same call writing uint8 for a next layer: the float64 result requantized (round half
        // to even, zero point, clamp; relu first), within one level where the float32 value sits on
        // a rounding tie's edge.
        const float out_scale = 0.037f;
        const int32_t out_zero = relu ? 0 : 101;
        std::vector<uint8_t> q8(out.size(), 7);
        st.out = nullptr;
        st.out_u8 = q8.data();
        st.out_scale = out_scale;
        st.out_zero = out_zero;
        if (transposed) cpu::qconv_transpose2d_u8s8(s, p.x.data(), packed, st);
        else cpu::qconv2d_u8s8(s, p.x.data(), packed, st);
        int64_t off = 0, far = 0;
        for (size_t i = 0; i < want.size(); ++i) {
          const double ref = std::clamp(std::nearbyint(want[i] / out_scale) + out_zero, 0.0, 255.0);
          const double d = std::abs(double(q8[i]) - ref);
          off += d != 0;
          far += d > 1;
        }
        CHECK(far == 0);
        CHECK(off * 100 <= int64_t(want.size()));  // ties only
        // Channels last, out and in (the layout int8 layers chain in): the same values.
        const int64_t p_out = s.ho * s.wo, p_in = s.h * s.w;
        std::vector<uint8_t> q8n(out.size(), 7);
        st.out_u8 = q8n.data();
        st.out_nhwc = true;
        if (transposed) cpu::qconv_transpose2d_u8s8(s, p.x.data(), packed, st);
        else cpu::qconv2d_u8s8(s, p.x.data(), packed, st);
        int64_t moved = 0;
        for (int64_t i = 0; i < s.n; ++i)
          for (int64_t co = 0; co < s.c_out; ++co)
            for (int64_t q = 0; q < p_out; ++q)
              moved += q8n[size_t((i * p_out + q) * s.c_out + co)] != q8[size_t((i * s.c_out + co) * p_out + q)];
        CHECK(moved == 0);
        std::vector<uint8_t> xn(p.x.size());
        for (int64_t i = 0; i < s.n; ++i)
          for (int64_t ci = 0; ci < s.c_in; ++ci)
            for (int64_t q = 0; q < p_in; ++q)
              xn[size_t((i * p_in + q) * s.c_in + ci)] = p.x[size_t((i * s.c_in + ci) * p_in + q)];
        std::vector<float> out_n(out.size(), -99.0f);
        st.out_u8 = nullptr;
        st.out_nhwc = false;
        st.out = out_n.data();
        st.in_nhwc = true;
        if (transposed) cpu::qconv_transpose2d_u8s8(s, xn.data(), packed, st);
        else cpu::qconv2d_u8s8(s, xn.data(), packed, st);
        CHECK(out_n == out);
        ++cases;
      }
  CHECK(cases == 40);
}

TEST_CASE("qconv: bad packed weights are one-line errors") {
  std::vector<int8_t> w(16 * 9, 1);
  const cpu::PackedQWeight packed = cpu::pack_qconv_weight(16, 1, 3, 3, w.data());
  cpu::QConvShape s;
  s.n = 1, s.c_in = 2, s.h = 4, s.w = 4, s.c_out = 16, s.ho = 4, s.wo = 4, s.kh = 3, s.kw = 3, s.ph = 1, s.pw = 1;
  std::vector<uint8_t> x(32);
  std::vector<float> out(256), scale(16, 1.0f);
  cpu::QConvStore st;
  st.w_scale = scale.data();
  st.out = out.data();
  CHECK_THROWS_WITH_SUBSTR(cpu::qconv2d_u8s8(s, x.data(), packed, st), "[qconv] packed weight [16, 12] does not fit a 3x3 kernel from 2 to 16 channels");
  s.c_in = 1;
  std::vector<uint8_t> q8(256);
  st.out_u8 = q8.data();
  CHECK_THROWS_WITH_SUBSTR(cpu::qconv2d_u8s8(s, x.data(), packed, st), "[qconv] exactly one output (float32 or uint8) must be given");
  st.out = nullptr;
  st.out_scale = 0.0f;
  CHECK_THROWS_WITH_SUBSTR(cpu::qconv2d_u8s8(s, x.data(), packed, st), "[qconv] uint8 output needs a positive scale and a zero point in [0, 255]; got 0 and 0");
  st.out_scale = 0.1f;
  st.sigmoid = true;
  CHECK_THROWS_WITH_SUBSTR(cpu::qconv_transpose2d_u8s8(s, x.data(), cpu::pack_qconv_transpose_weight(1, 16, 3, 3, w.data()), st),
                           "[qconv] the sigmoid store needs the float32 output");
}

TEST_CASE("quantize_u8_nhwc: quantize_u8's levels, channels last, on odd pixel counts and channel counts") {
  // n, c, p: 16-channel blocks with pixel tails (the AVX-512 path), and channel counts it leaves to the loop
  const int64_t shapes[][3] = {{1, 16, 1}, {2, 32, 49}, {3, 16, 17}, {1, 48, 196}, {2, 3, 10}, {1, 17, 33}};
  std::mt19937 gen(77);
  std::uniform_real_distribution<float> ux(-3.0f, 5.0f);
  for (const auto& v : shapes) {
    const int64_t n = v[0], c = v[1], p = v[2];
    INFO("n " << n << " c " << c << " p " << p);
    std::vector<float> x(size_t(n * c * p));
    for (auto& e : x) e = ux(gen);
    x[0] = NAN, x[1] = 1e9f, x[size_t(n * c * p - 1)] = -1e9f;  // NaN to the zero point, saturation both ways
    const float scale = 0.031f;
    const int32_t zero = 97;
    std::vector<uint8_t> plain(x.size()), nhwc(x.size(), 7);
    cpu::quantize_u8(1, int64_t(x.size()), x.data(), int64_t(x.size()), scale, zero, plain.data(), int64_t(x.size()));
    cpu::quantize_u8_nhwc(n, c, p, x.data(), scale, zero, nhwc.data());
    int64_t bad = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t s = 0; s < p; ++s) bad += nhwc[size_t((i * p + s) * c + ch)] != plain[size_t((i * c + ch) * p + s)];
    CHECK(bad == 0);
    CHECK(plain[0] == zero);
    CHECK(plain[1] == 255);
  }
}
