// Direct convolution kernels for float32 on x86-64 (AVX2 + FMA, or AVX-512), and the geometry
// shared with the im2col + GEMM kernels. Private to cpu_conv.cpp, which includes it; split out only
// to keep each file readable.
#pragma once

#include <algorithm>
#include <atomic>
#include <memory>
#include <limits>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cpu_backend.h"
#include "workers.h"

namespace latent::cpu::conv {

/// Sizes of one convolution, in conv2d's terms (the transposed convolution runs backward_input).
struct Geometry {
  int64_t n, c, h, w;  // input (N, C_in, H, W)
  int64_t co, ho, wo;  // output (N, C_out, H_out, W_out)
  int64_t kh, kw, sh, sw, ph, pw, dh, dw, groups;
  int64_t cg, cog, k;  // per group: input channels, output channels, K = cg * kH * kW
  int64_t hw, p;       // H * W, H_out * W_out
  bool pointwise;      // 1x1 kernel, stride 1, no padding: the input is its own col matrix
};

inline Geometry geometry(const Shape& in, const Shape& weight, const Shape& out, const Conv2dParams& p) {
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

// For the few channels of autoencoder layers the im2col copies cost about as much as the GEMM
// (rows of 7 floats, stride-2 gathers) and OpenBLAS's Haswell kernels use half of an AVX-512
// core. These kernels skip the col matrix: images are copied once into zero-bordered buffers so
// every tap is in range, and a register tile of vectors accumulates over the taps (forward,
// weight grad) or the output channels (input grad). Lanes run along output channels (forward,
// weight grad) or input channels (input grad); pixels are numbered across the images of a chunk,
// so small images leave no partial tiles. The tiles are written once over a GCC vector type and
// inlined into one wrapper per instruction set. LATENT_CONV_DIRECT=0 turns them off (im2col +
// GEMM everywhere), =avx2 limits them to AVX2; benchmarks and tests use it to compare.
#if defined(__x86_64__) && defined(__GNUC__)
#define LATENT_CONV_DIRECT 1

typedef float Vec8 __attribute__((vector_size(32)));
typedef float Vec16 __attribute__((vector_size(64)));

/// A zero-filled 1-d scratch tensor from the caching allocator.
inline Tensor zeroed(int64_t count, DType dtype) {
  Tensor t = empty({std::max<int64_t>(count, 1)}, dtype);
  std::memset(t.raw_data(), 0, size_t(t.numel()) * t.element_size());
  return t;
}

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

/// Which weights (and bias) a packing was made from: the tensors' storages (weak, so a freed
/// storage never matches a new one at the same address), data pointers and version counters.
/// An optimizer step or any in-place change bumps the version, and the next call repacks.
struct WeightKey {
  std::weak_ptr<Storage> w, b;
  const float* wp = nullptr;
  const float* bp = nullptr;
  uint32_t wv = 0, bv = 0;
  static WeightKey of(const Tensor& weight, const Tensor& bias) {
    WeightKey k;
    k.w = weight.storage();
    k.wp = weight.data_ptr<float>();
    k.wv = weight.storage()->version();
    if (bias.defined()) {
      k.b = bias.storage();
      k.bp = bias.data_ptr<float>();
      k.bv = bias.storage()->version();
    }
    return k;
  }
  bool same(const WeightKey& o) const {
    return wp == o.wp && bp == o.bp && wv == o.wv && bv == o.bv && !w.expired() && (bp == nullptr || !b.expired()) &&
           !w.owner_before(o.w) && !o.w.owner_before(w) && !b.owner_before(o.b) && !o.b.owner_before(b);
  }
};

/// The per-call set-up of the direct kernels that depends only on the geometry (offset tables,
/// zero-bordered buffers) or on the weights (the lane-major packing), kept per thread and reused
/// while it matches, so a batch-1 inference call does no packing, table building or zero fill
/// for it. Small (a few layers' worth); round-robin replacement. In training the weights change
/// every step, so their packing is redone as before (one lookup more).
struct SetupCache {
  struct Entry {
    int kind = -1;  // which kernel's set-up
    Geometry g{};   // with n = the chunk (tables, buffers) or 0 (weights)
    WeightKey key;
    Tensor a, b;
  };
  static constexpr int kEntries = 12;
  Entry entries[kEntries];
  int next = 0;
  static bool same_geometry(const Geometry& x, const Geometry& y) { return std::memcmp(&x, &y, sizeof x) == 0; }
  /// The entry for (kind, g[, key]), or null.
  Entry* find(int kind, const Geometry& g, const WeightKey* key) {
    for (Entry& e : entries)
      if (e.kind == kind && same_geometry(e.g, g) && (!key || e.key.same(*key))) return &e;
    return nullptr;
  }
  Entry& insert(int kind, const Geometry& g) {
    Entry& e = entries[next];
    next = (next + 1) % kEntries;
    e = Entry{};
    e.kind = kind;
    e.g = g;
    return e;
  }
};
inline SetupCache& setup_cache() {
  thread_local SetupCache cache;
  return cache;
}
/// g with n set to `n` and padding bytes zero, as a cache key.
inline Geometry geometry_key(const Geometry& g, int64_t n) {
  Geometry k;
  std::memset(&k, 0, sizeof k);
  k.n = n, k.c = g.c, k.h = g.h, k.w = g.w, k.co = g.co, k.ho = g.ho, k.wo = g.wo;
  k.kh = g.kh, k.kw = g.kw, k.sh = g.sh, k.sw = g.sw, k.ph = g.ph, k.pw = g.pw, k.dh = g.dh, k.dw = g.dw;
  k.groups = g.groups, k.cg = g.cg, k.cog = g.cog, k.k = g.k, k.hw = g.hw, k.p = g.p, k.pointwise = g.pointwise;
  return k;
}
enum SetupKind { kForwardWeights = 0, kBordered = 1, kInputWeights = 2, kInputTables = 3, kInputScratch = 4 };

// res (R pixels, VB * W lanes) = bias + sum over taps k of w[k] * x[pix[r] + koff[k]].
template <class V, int VB, int R>
[[gnu::always_inline]] inline void forward_tile(const float* xp, const int64_t* koff, int64_t kc, const int64_t* pix,
                                                const float* w, int64_t ws, const float* bias, float* res) {
  constexpr int W = sizeof(V) / sizeof(float);
  V acc[R][VB];
#pragma GCC unroll 4
  for (int v = 0; v < VB; ++v) {
    V b;
    std::memcpy(&b, bias + W * v, sizeof b);
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r) acc[r][v] = b;
  }
  for (int64_t k = 0; k < kc; ++k) {
    V wv[VB];
#pragma GCC unroll 4
    for (int v = 0; v < VB; ++v) std::memcpy(&wv[v], w + k * ws + W * v, sizeof(V));
    const float* xk = xp + koff[k];
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r) {
      const float xs = xk[pix[r]];
#pragma GCC unroll 4
      for (int v = 0; v < VB; ++v) acc[r][v] += wv[v] * xs;
    }
  }
#pragma GCC unroll 24
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < VB; ++v) std::memcpy(res + (r * VB + v) * W, &acc[r][v], sizeof(V));
}

// acc rows (R taps, VB * W lanes, row stride as) += sum over pixels q of gyt[q] * x[pix[q] + koff[r]].
template <class V, int VB, int R>
[[gnu::always_inline]] inline void weight_tile(const float* xp, const int64_t* koff, const int64_t* pix, int64_t nq,
                                               const float* gyt, int64_t gs, float* acc_rows, int64_t as) {
  constexpr int W = sizeof(V) / sizeof(float);
  V acc[R][VB];
#pragma GCC unroll 24
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < VB; ++v) std::memcpy(&acc[r][v], acc_rows + r * as + W * v, sizeof(V));
  for (int64_t q = 0; q < nq; ++q) {
    V gv[VB];
#pragma GCC unroll 4
    for (int v = 0; v < VB; ++v) std::memcpy(&gv[v], gyt + q * gs + W * v, sizeof(V));
    const float* xq = xp + pix[q];
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r) {
      const float xs = xq[koff[r]];
#pragma GCC unroll 4
      for (int v = 0; v < VB; ++v) acc[r][v] += gv[v] * xs;
    }
  }
#pragma GCC unroll 24
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < VB; ++v) std::memcpy(acc_rows + r * as + W * v, &acc[r][v], sizeof(V));
}

// gxp[dst[r] + lanes] += sum over channels o of wt[o] * gt[o * ld + r], for R pixels; gt holds
// the output gradient with pixels contiguous (channel rows of the chunk's pixels).
template <class V, int VB, int R>
[[gnu::always_inline]] inline void input_tile(const float* gt, int64_t ld, const float* wt, int64_t ws, int64_t cog,
                                              float* gxp, const int64_t* dst) {
  constexpr int W = sizeof(V) / sizeof(float);
  V acc[R][VB] = {};
  for (int64_t o = 0; o < cog; ++o) {
    V wv[VB];
#pragma GCC unroll 4
    for (int v = 0; v < VB; ++v) std::memcpy(&wv[v], wt + o * ws + W * v, sizeof(V));
    const float* go = gt + o * ld;
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r) {
      const float gs = go[r];
#pragma GCC unroll 4
      for (int v = 0; v < VB; ++v) acc[r][v] += wv[v] * gs;
    }
  }
#pragma GCC unroll 24
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < VB; ++v) {
      V d;
      std::memcpy(&d, gxp + dst[r] + W * v, sizeof d);
      d += acc[r][v];
      std::memcpy(gxp + dst[r] + W * v, &d, sizeof d);
    }
}

using ForwardTileFn = void (*)(const float*, const int64_t*, int64_t, const int64_t*, const float*, int64_t,
                               const float*, float*);
using WeightTileFn = void (*)(const float*, const int64_t*, const int64_t*, int64_t, const float*, int64_t, float*,
                              int64_t);
using InputTileFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, const int64_t*);

// One wrapper per instruction set and lane count VB; ACC accumulators fit its vector registers.
#define LATENT_CONV_TILES(SUFFIX, TARGET, V, ACC)                                                                   \
  template <int VB>                                                                                                \
  __attribute__((target(TARGET))) void forward_##SUFFIX(const float* xp, const int64_t* koff, int64_t kc,         \
                                                        const int64_t* pix, const float* w, int64_t ws,            \
                                                        const float* bias, float* res) {                           \
    forward_tile<V, VB, ACC / VB>(xp, koff, kc, pix, w, ws, bias, res);                                            \
  }                                                                                                                \
  template <int VB>                                                                                                \
  __attribute__((target(TARGET))) void weight_##SUFFIX(const float* xp, const int64_t* koff, const int64_t* pix,  \
                                                       int64_t nq, const float* gyt, int64_t gs, float* acc,       \
                                                       int64_t as) {                                               \
    weight_tile<V, VB, ACC / VB>(xp, koff, pix, nq, gyt, gs, acc, as);                                             \
  }                                                                                                                \
  template <int VB>                                                                                                \
  __attribute__((target(TARGET))) void input_##SUFFIX(const float* gt, int64_t ld, const float* wt, int64_t ws,   \
                                                      int64_t cog, float* gxp, const int64_t* dst) {               \
    input_tile<V, VB, ACC / VB>(gt, ld, wt, ws, cog, gxp, dst);                                                    \
  }
LATENT_CONV_TILES(avx2, "avx2,fma", Vec8, 12)
LATENT_CONV_TILES(avx512, "avx512f", Vec16, 24)
#undef LATENT_CONV_TILES

// Tiles of R = 1, 2, 4 or 8 pixels for a chunk's last, partial tile (49 pixels of a 7 x 7 image
// are 24 + 24 + 1: a full tile for the last pixel cost a third of the layer).
#define LATENT_CONV_TAILS(SUFFIX, TARGET, V)                                                                        \
  template <int VB, int R>                                                                                         \
  __attribute__((target(TARGET))) void forward_tail_##SUFFIX(const float* xp, const int64_t* koff, int64_t kc,    \
                                                             const int64_t* pix, const float* w, int64_t ws,       \
                                                             const float* bias, float* res) {                      \
    forward_tile<V, VB, R>(xp, koff, kc, pix, w, ws, bias, res);                                                   \
  }                                                                                                                \
  template <int VB, int R>                                                                                         \
  __attribute__((target(TARGET))) void input_tail_##SUFFIX(const float* gt, int64_t ld, const float* wt,          \
                                                           int64_t ws, int64_t cog, float* gxp, const int64_t* dst) { \
    input_tile<V, VB, R>(gt, ld, wt, ws, cog, gxp, dst);                                                           \
  }
LATENT_CONV_TAILS(avx2, "avx2,fma", Vec8)
LATENT_CONV_TAILS(avx512, "avx512f", Vec16)
#undef LATENT_CONV_TAILS

/// Rows of the tail tiles, and the index of the smallest that holds `rows` (-1: none).
inline constexpr int64_t kTailRows[4] = {1, 2, 4, 8};
inline int tail_index(int64_t rows) { return rows <= 1 ? 0 : rows <= 2 ? 1 : rows <= 4 ? 2 : rows <= 8 ? 3 : -1; }

/// The tiles of one instruction set: W lanes per vector, ACC accumulators, entry VB - 1 for VB vectors.
struct TileSet {
  int64_t width, acc;
  ForwardTileFn forward[4];
  WeightTileFn weight[4];
  InputTileFn input[4];
  ForwardTileFn forward_tail[4][4];  ///< [VB - 1][tail_index(rows)]
  InputTileFn input_tail[4][4];
  /// The forward tile for `rows` (<= acc / vb) pixels: a tail tile when one is smaller.
  ForwardTileFn forward_for(int64_t vb, int64_t rows) const {
    const int t = tail_index(rows);
    return t >= 0 && kTailRows[t] < acc / vb ? forward_tail[vb - 1][t] : forward[vb - 1];
  }
  /// The input-gradient tile for `rows` (<= acc / vb) pixels.
  InputTileFn input_for(int64_t vb, int64_t rows) const {
    const int t = tail_index(rows);
    return t >= 0 && kTailRows[t] < acc / vb ? input_tail[vb - 1][t] : input[vb - 1];
  }
};
#define LATENT_TAIL_ROW(F, VB) {F<VB, 1>, F<VB, 2>, F<VB, 4>, F<VB, 8>}
#define LATENT_TAIL_TABLE(F) {LATENT_TAIL_ROW(F, 1), LATENT_TAIL_ROW(F, 2), LATENT_TAIL_ROW(F, 3), LATENT_TAIL_ROW(F, 4)}
inline const TileSet kAvx2Tiles = {
    8, 12, {forward_avx2<1>, forward_avx2<2>, forward_avx2<3>, forward_avx2<4>},
    {weight_avx2<1>, weight_avx2<2>, weight_avx2<3>, weight_avx2<4>},
    {input_avx2<1>, input_avx2<2>, input_avx2<3>, input_avx2<4>},
    LATENT_TAIL_TABLE(forward_tail_avx2), LATENT_TAIL_TABLE(input_tail_avx2)};
inline const TileSet kAvx512Tiles = {
    16, 24, {forward_avx512<1>, forward_avx512<2>, forward_avx512<3>, forward_avx512<4>},
    {weight_avx512<1>, weight_avx512<2>, weight_avx512<3>, weight_avx512<4>},
    {input_avx512<1>, input_avx512<2>, input_avx512<3>, input_avx512<4>},
    LATENT_TAIL_TABLE(forward_tail_avx512), LATENT_TAIL_TABLE(input_tail_avx512)};
#undef LATENT_TAIL_TABLE
#undef LATENT_TAIL_ROW

/// The widest tile set this CPU runs, for lanes along `channels`, or null for im2col + GEMM:
/// float32 only (the caller checks), at most a quarter of the lanes padding, and K = C/groups * kH
/// * kW between 16 and 1152. Below 16 (one input channel, 3x3) the scattered output stores
/// dominate and im2col + GEMM measured as fast; above 1152 a lane block of the packed weights
/// leaves L2, and large layers are GEMM territory, where OpenBLAS's threads help.
inline const TileSet* direct_tiles(const Geometry& g, int64_t channels) {
  static const int level = [] {  // 0: off, 1: AVX2 + FMA, 2: AVX-512
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f");
    const char* env = std::getenv("LATENT_CONV_DIRECT");
    const std::string want = env ? env : "";
    if (want == "0") return 0;
    if (want == "avx2") return avx2 ? 1 : 0;
    return avx512 ? 2 : avx2 ? 1 : 0;
  }();
  if (level == 0 || g.pointwise || g.k < 16 || g.k > 1152 || channels < 8) return nullptr;
  auto fits = [&](int64_t w) { return (round_up(channels, w) - channels) * 4 <= round_up(channels, w); };
  if (level == 2 && fits(16)) return &kAvx512Tiles;
  if (fits(8)) return &kAvx2Tiles;
  return nullptr;
}

/// Lane blocks of up to 4 vectors: calls fn(VB, first lane) over `lanes` lanes of width w.
template <class F>
void for_lane_blocks(int64_t lanes, int64_t w, F&& fn) {
  for (int64_t l0 = 0; l0 < lanes; l0 += 4 * w) fn(std::min<int64_t>(4, (lanes - l0) / w), l0);
}

/// Images per chunk of the direct kernels: buffers of about `budget` floats, so they stay in L2.
/// Measured on the autoencoder (2^12 to 2^18): the forward, whose scattered output stores want a
/// small chunk, is best near 2^14; the input gradient, which amortises its per-chunk work, near 2^16.
inline int64_t direct_chunk(const Geometry& g, int64_t budget, int64_t floats_per_image) {
  return std::clamp<int64_t>(budget / std::max<int64_t>(floats_per_image, 1), 1, g.n);
}

/// Images are split over the thread pool when a layer has at least 2^18 multiply-adds (below that,
/// handing half to a worker costs about what it saves); parallel_ranges runs serially under this.
inline int64_t direct_min_parallel(const Geometry& g) {
  const double macs = double(g.n) * double(g.p) * double(g.k) * double(g.co);
  return macs >= double(1 << 18) ? 2 : std::numeric_limits<int64_t>::max();
}

/// Zero-bordered copies of a chunk of images and the offset tables over them.
struct Bordered {
  int64_t wp, plane, stride;  // row length, (H + 2 ph) * (W + 2 pw), floats per image (C/groups planes)
  Tensor buffer, tables;
  float* xp;            // (nb, C/groups, H + 2 ph, W + 2 pw), borders zero
  int64_t* koff;        // k = (ci, ki, kj) -> ci * plane + ki * dh * wp + kj * dw; zeros up to K + 24
  int64_t* pix;         // q = (n, oh, ow) -> n * stride + oh * sh * wp + ow * sw; the last repeated up to nb * P + 24
  Bordered(const Geometry& g, int64_t nb) : wp(g.w + 2 * g.pw), plane((g.h + 2 * g.ph) * wp), stride(g.cg * plane) {
    // Reused per thread (setup_cache): load() rewrites the interiors, the borders stay zero.
    SetupCache& cache = setup_cache();
    const Geometry key = geometry_key(g, nb);
    SetupCache::Entry* e = cache.find(kBordered, key, nullptr);
    if (!e) {
      e = &cache.insert(kBordered, key);
      e->a = zeroed(nb * stride, kFloat32);
      e->b = zeroed(g.k + 24 + nb * g.p + 24, kInt64);
      int64_t* k = e->b.data_ptr<int64_t>();
      for (int64_t ci = 0; ci < g.cg; ++ci)
        for (int64_t ki = 0; ki < g.kh; ++ki)
          for (int64_t kj = 0; kj < g.kw; ++kj) *k++ = ci * plane + ki * g.dh * wp + kj * g.dw;
      int64_t* pq = e->b.data_ptr<int64_t>() + g.k + 24;
      for (int64_t q = 0; q < nb * g.p + 24; ++q) {
        const int64_t qq = std::min(q, nb * g.p - 1), n = qq / g.p, oh = qq % g.p / g.wo, ow = qq % g.wo;
        pq[q] = n * stride + oh * g.sh * wp + ow * g.sw;
      }
    }
    buffer = e->a;
    tables = e->b;
    xp = buffer.data_ptr<float>();
    koff = tables.data_ptr<int64_t>();
    pix = koff + g.k + 24;
  }
  /// Copies the group's channels of images [n0, n0 + nb) into the buffer (borders stay zero).
  void load(const Geometry& g, const float* x, int64_t n0, int64_t nb, int64_t group) {
    for (int64_t n = 0; n < nb; ++n)
      for (int64_t ci = 0; ci < g.cg; ++ci) {
        const float* src = x + ((n0 + n) * g.c + group * g.cg + ci) * g.hw;
        float* dst = xp + n * stride + ci * plane + g.ph * wp + g.pw;
        for (int64_t ih = 0; ih < g.h; ++ih)  // rows are short: a loop, not a memcpy call per row
          for (int64_t iw = 0; iw < g.w; ++iw) dst[ih * wp + iw] = src[ih * g.w + iw];
      }
  }
};

/// `key` (or null: pack every call) names the weight and bias tensors, so their packing is
/// reused per thread while they are unchanged (setup_cache).
inline void forward_direct(const Geometry& g, const TileSet& ts, const float* x, const float* w, const float* bias,
                           float* out, const WeightKey* key = nullptr) {
  const int64_t lanes = round_up(g.cog, ts.width);
  // wp (groups, K, lanes) and bp (groups, lanes): weights and bias with output channels innermost.
  const Geometry gkey = geometry_key(g, 0);
  SetupCache::Entry* cached = key ? setup_cache().find(kForwardWeights, gkey, key) : nullptr;
  Tensor packed = cached ? cached->a : zeroed(g.groups * (g.k + 1) * lanes, kFloat32);
  float* wp = packed.data_ptr<float>();
  float* bp = wp + g.groups * g.k * lanes;
  if (!cached) {
    for (int64_t gr = 0; gr < g.groups; ++gr)
      for (int64_t o = 0; o < g.cog; ++o) {
        for (int64_t k = 0; k < g.k; ++k) wp[(gr * g.k + k) * lanes + o] = w[(gr * g.cog + o) * g.k + k];
        if (bias) bp[gr * lanes + o] = bias[gr * g.cog + o];
      }
    if (key) {
      SetupCache::Entry& e = setup_cache().insert(kForwardWeights, gkey);
      e.key = *key;
      e.a = packed;
    }
  }
  const int64_t nb = direct_chunk(g, int64_t{1} << 14, g.cg * (g.h + 2 * g.ph) * (g.w + 2 * g.pw));
  // Images are split over the pool; each part has its own bordered copies and tile result.
  parallel_ranges(g.n, direct_min_parallel(g), 1, [&](int64_t n_lo, int64_t n_hi) {
    Bordered b(g, std::min(nb, n_hi - n_lo));
    Tensor res_holder = zeroed(ts.acc * 4 * ts.width, kFloat32);
    float* res = res_holder.data_ptr<float>();
    for (int64_t n0 = n_lo; n0 < n_hi; n0 += nb) {
      const int64_t cur = std::min(nb, n_hi - n0), nq = cur * g.p;
      for (int64_t gr = 0; gr < g.groups; ++gr) {
        b.load(g, x, n0, cur, gr);
        for_lane_blocks(lanes, ts.width, [&](int64_t vb, int64_t l0) {
          const int64_t r_max = ts.acc / vb, oc = std::min(vb * ts.width, g.cog - l0), row = vb * ts.width;
          for (int64_t q0 = 0; q0 < nq; q0 += r_max) {
            ts.forward_for(vb, std::min(r_max, nq - q0))(b.xp, b.koff, g.k, b.pix + q0, wp + gr * g.k * lanes + l0,
                                                         lanes, bp + gr * lanes + l0, res);
            int64_t n = q0 / g.p, p = q0 % g.p;
            for (int64_t r = 0; r < std::min(r_max, nq - q0); ++r) {
              float* dst = out + ((n0 + n) * g.co + gr * g.cog + l0) * g.p + p;
              for (int64_t o = 0; o < oc; ++o) dst[o * g.p] = res[r * row + o];
              if (++p == g.p) p = 0, ++n;
            }
          }
        });
      }
    }
  });
}

inline void weight_direct(const Geometry& g, const TileSet& ts, const float* gy, const float* x, float* dw) {
  const int64_t lanes = round_up(g.cog, ts.width), kpad = g.k + 24;
  const int64_t nb = direct_chunk(g, int64_t{1} << 16, g.cg * (g.h + 2 * g.ph) * (g.w + 2 * g.pw) + g.p * lanes);
  // Per part (a range of images): acc (groups, kpad, lanes), its images' share of the gradient
  // with output channels innermost, and gyt (nb * P, lanes); the parts' accs are added at the end.
  const int64_t acc_size = g.groups * kpad * lanes;
  const RangeSplit split = split_range(g.n, direct_min_parallel(g), 1);
  Tensor accs = zeroed(acc_size * split.parts, kFloat32);
  parallel_for(split, [&](int part, int64_t n_lo, int64_t n_hi) {
    float* acc = accs.data_ptr<float>() + part * acc_size;
    const int64_t chunk = std::min(nb, n_hi - n_lo);
    Tensor gyt_holder = zeroed(chunk * g.p * lanes, kFloat32);
    float* gyt = gyt_holder.data_ptr<float>();
    Bordered b(g, chunk);
    for (int64_t n0 = n_lo; n0 < n_hi; n0 += nb) {
      const int64_t cur = std::min(nb, n_hi - n0);
      for (int64_t gr = 0; gr < g.groups; ++gr) {
        b.load(g, x, n0, cur, gr);
        for (int64_t n = 0; n < cur; ++n) {
          const float* src = gy + ((n0 + n) * g.co + gr * g.cog) * g.p;
          float* dst = gyt + n * g.p * lanes;
          for (int64_t o = 0; o < g.cog; ++o)
            for (int64_t p = 0; p < g.p; ++p) dst[p * lanes + o] = src[o * g.p + p];
        }
        for_lane_blocks(lanes, ts.width, [&](int64_t vb, int64_t l0) {
          const int64_t rk = ts.acc / vb;
          for (int64_t k0 = 0; k0 < g.k; k0 += rk)
            ts.weight[vb - 1](b.xp, b.koff + k0, b.pix, cur * g.p, gyt + l0, lanes,
                              acc + (gr * kpad + k0) * lanes + l0, lanes);
        });
      }
    }
  });
  float* acc = accs.data_ptr<float>();
  for (int part = 1; part < split.parts; ++part)  // in part order: the same sums at any timing
    for (int64_t i = 0; i < acc_size; ++i) acc[i] += acc[part * acc_size + i];
  for (int64_t gr = 0; gr < g.groups; ++gr)
    for (int64_t o = 0; o < g.cog; ++o)
      for (int64_t k = 0; k < g.k; ++k) dw[(gr * g.cog + o) * g.k + k] = acc[(gr * kpad + k) * lanes + o];
}

/// `key` (or null) as in forward_direct, for w.
inline void input_direct(const Geometry& g, const TileSet& ts, const float* gy, const float* w, float* dx,
                         const WeightKey* key = nullptr) {
  const int64_t taps = g.kh * g.kw, lanes = round_up(g.cg, ts.width);
  const int64_t wp = g.w + 2 * g.pw, plane = (g.h + 2 * g.ph) * wp;
  const int64_t nb = direct_chunk(g, int64_t{1} << 16, plane * lanes + g.co * g.p), r_top = ts.acc;
  // wt (groups, taps, C_out/groups, lanes): weights with input channels innermost; gt (C_out,
  // nb * P + r_top): the chunk's output gradient as channel rows, padded for a partial tile; gxp
  // (nb, plane, lanes): the chunk's input gradient, bordered, channels innermost, then a slot that
  // absorbs the stores of a partial tile's unused rows.
  const int64_t ld = nb * g.p + r_top;
  SetupCache& cache = setup_cache();
  const Geometry gkey = geometry_key(g, 0), tkey = geometry_key(g, nb);
  SetupCache::Entry* cached = key ? cache.find(kInputWeights, gkey, key) : nullptr;
  Tensor holder = cached ? cached->a : zeroed(g.groups * taps * g.cog * lanes, kFloat32);
  float* wt = holder.data_ptr<float>();
  const int64_t trash = nb * plane * lanes;
  if (!cached) {
    for (int64_t gr = 0; gr < g.groups; ++gr)
      for (int64_t o = 0; o < g.cog; ++o)
        for (int64_t ci = 0; ci < g.cg; ++ci)
          for (int64_t t = 0; t < taps; ++t)
            wt[((gr * taps + t) * g.cog + o) * lanes + ci] = w[((gr * g.cog + o) * g.cg + ci) * taps + t];
    if (key) {
      SetupCache::Entry& e = cache.insert(kInputWeights, gkey);
      e.key = *key;
      e.a = holder;
    }
  }
  // gxp offset of each chunk pixel q = (n, oh, ow) (shared by the parts, read only).
  SetupCache::Entry* cached_tables = cache.find(kInputTables, tkey, nullptr);
  Tensor tables = cached_tables ? cached_tables->a : zeroed(nb * g.p, kInt64);
  int64_t* dpix = tables.data_ptr<int64_t>();
  if (!cached_tables) {
    for (int64_t q = 0; q < nb * g.p; ++q) {
      const int64_t n = q / g.p, p = q % g.p, oh = p / g.wo, ow = p % g.wo;
      dpix[q] = (n * plane + oh * g.sh * wp + ow * g.sw) * lanes;
    }
    cache.insert(kInputTables, tkey).a = tables;
  }
  // Images are split over the pool; each part has its own gt, gxp and tile row offsets.
  parallel_ranges(g.n, direct_min_parallel(g), 1, [&](int64_t n_lo, int64_t n_hi) {
    // Scratch reused per thread: gt's rows are rewritten for the chunk's pixels and its padding
    // only feeds the rows a partial tile stores into the trash slot; gxp is cleared per group.
    SetupCache& part_cache = setup_cache();
    SetupCache::Entry* s_entry = part_cache.find(kInputScratch, tkey, nullptr);
    if (!s_entry) {
      s_entry = &part_cache.insert(kInputScratch, tkey);
      s_entry->a = zeroed(g.co * ld + nb * plane * lanes + 4 * ts.width, kFloat32);
      s_entry->b = zeroed(r_top, kInt64);
    }
    const Tensor scratch = s_entry->a, rows = s_entry->b;
    float* gt = scratch.data_ptr<float>();
    float* gxp = gt + g.co * ld;
    int64_t* tile_dst = rows.data_ptr<int64_t>();
    for (int64_t n0 = n_lo; n0 < n_hi; n0 += nb) {
      const int64_t cur = std::min(nb, n_hi - n0), nq = cur * g.p;
      for (int64_t n = 0; n < cur; ++n)
        for (int64_t o = 0; o < g.co; ++o)
          std::memcpy(gt + o * ld + n * g.p, gy + ((n0 + n) * g.co + o) * g.p, size_t(g.p) * sizeof(float));
      for (int64_t gr = 0; gr < g.groups; ++gr) {
        std::memset(gxp, 0, size_t(cur * plane * lanes) * sizeof(float));
        for_lane_blocks(lanes, ts.width, [&](int64_t vb, int64_t l0) {
          const int64_t r_max = ts.acc / vb;
          for (int64_t t = 0; t < taps; ++t) {
            const int64_t toff = ((t / g.kw) * g.dh * wp + (t % g.kw) * g.dw) * lanes + l0;
            for (int64_t q0 = 0; q0 < nq; q0 += r_max) {
              const int64_t rc = std::min(r_max, nq - q0);
              for (int64_t r = 0; r < r_max; ++r) tile_dst[r] = r < rc ? dpix[q0 + r] + toff : trash;
              ts.input_for(vb, rc)(gt + gr * g.cog * ld + q0, ld, wt + (gr * taps + t) * g.cog * lanes + l0, lanes,
                                   g.cog, gxp, tile_dst);
            }
          }
        });
        for (int64_t n = 0; n < cur; ++n)
          for (int64_t ci = 0; ci < g.cg; ++ci) {
            float* o = dx + ((n0 + n) * g.c + gr * g.cg + ci) * g.hw;
            const float* src = gxp + (n * plane + g.ph * wp + g.pw) * lanes + ci;
            for (int64_t ih = 0; ih < g.h; ++ih)
              for (int64_t iw = 0; iw < g.w; ++iw) o[ih * g.w + iw] = src[(ih * wp + iw) * lanes];
          }
      }
    }
  });
}
#endif  // LATENT_CONV_DIRECT

}  // namespace latent::cpu::conv
