// Fused CPU kernels (see the end of ops/backend.h): the activation derivative with the bias
// gradient, a pointwise loss with its sum, a loss gradient with its scale. The float32 contiguous
// case runs one pass compiled for the widest instruction set (ops/cpu/isa.h); every other case
// (float64, strided or broadcast operands) takes the Backend default, which composes the unfused
// kernels.
#include <cstring>
#include <vector>

#include "../backend.h"
#include "../creation.h"
#include "cpu_backend.h"
#include "isa.h"
#include "vec_math.h"
#include "workers.h"

namespace latent::cpu {
namespace {

// ---- functors over the scalar_math.h entries the fused kernels use ----
// They are declared in namespace `vec`, whose float log and log1p (the straight-line log_float
// and log1p_float of scalar_math.h) hide libm's scalar calls for unqualified lookup, so the loss
// loops (binary cross entropy's two logs per element) vectorise. The formulas are the entries'.
namespace vec {
[[gnu::always_inline]] inline float log(float x) { return latent::math::log_float(x); }
[[gnu::always_inline]] inline float log1p(float x) { return latent::math::log1p_float(x); }

#define LATENT_FUNCTOR(name, expr)                                                \
  struct name##Fn {                                                                \
    float p0, p1;                                                                  \
    [[gnu::always_inline]] inline float operator()(float a, float b) const {       \
      using namespace latent::math;                                                \
      using T = float;                                                             \
      return static_cast<T>(expr);                                                 \
    }                                                                              \
  };
LATENT_BINARY_OPS(LATENT_FUNCTOR)
#undef LATENT_FUNCTOR
}  // namespace vec
using namespace vec;

/// Calls fn(Functor{p0, p1}) for the binary entries the fused kernels specialise; returns false
/// for the others (the caller then takes the Backend default).
template <class Fn>
bool with_loss_functor(BinaryOp op, float p0, float p1, Fn&& fn) {
  switch (op) {
#define LATENT_CASE(name) \
  case BinaryOp::name: fn(name##Fn{p0, p1}); return true;
    LATENT_CASE(SquaredError)
    LATENT_CASE(MseLossBackward)
    LATENT_CASE(L1LossBackward)
    LATENT_CASE(BinaryCrossEntropy)
    LATENT_CASE(BinaryCrossEntropyBackward)
    LATENT_CASE(BceWithLogits)
    LATENT_CASE(BceWithLogitsBackward)
    LATENT_CASE(ReluBackward)
    LATENT_CASE(SigmoidBackward)
    LATENT_CASE(TanhBackward)
#undef LATENT_CASE
    default: return false;
  }
}

bool contiguous_f32(const Tensor& t) { return t.dtype() == kFloat32 && t.is_contiguous(); }

// ---- activation backward + bias gradient ----

/// g, y, gp: (n, c) row-major. gp = f(g, y); acc[j] += gp[i][j] (float64) when acc is non-null.
template <class F>
[[gnu::always_inline]] inline void act_backward_body(const float* g, const float* y, float* gp, double* acc,
                                                     int64_t n, int64_t c, F f) {
  for (int64_t r = 0; r < n; ++r) {
    const float* __restrict gr = g + r * c;
    const float* __restrict yr = y + r * c;
    float* __restrict pr = gp + r * c;
    if (acc) {
      double* __restrict ar = acc;
      for (int64_t j = 0; j < c; ++j) {
        const float v = f(gr[j], yr[j]);
        pr[j] = v;
        ar[j] += static_cast<double>(v);
      }
    } else {
      for (int64_t j = 0; j < c; ++j) pr[j] = f(gr[j], yr[j]);
    }
  }
}
LATENT_CPU_MULTI_ISA_F(act_backward,
                       (const float* g, const float* y, float* gp, double* acc, int64_t n, int64_t c, F f),
                       (g, y, gp, acc, n, c, f))

// ---- pointwise loss + sum ----

/// *out = sum of f(a[i], b[i]) in float64. Blocks of 64 terms are computed into a float buffer
/// (a plain map, which vectorises like any unary loop), then added into 16 independent float64
/// partial sums (vector lanes), so no one sum is reassociated.
template <class F>
[[gnu::always_inline]] inline void loss_sum_body(const float* a, const float* b, int64_t n, double* out, F f) {
  constexpr int kLanes = 16, kBlock = 64;
  double acc[kLanes] = {};
  float terms[kBlock];
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    for (int j = 0; j < kBlock; ++j) terms[j] = f(a[i + j], b[i + j]);
    for (int j = 0; j < kBlock; j += kLanes)
      for (int l = 0; l < kLanes; ++l) acc[l] += static_cast<double>(terms[j + l]);
  }
  for (int l = 0; i < n; ++i, l = (l + 1) % kLanes) acc[l] += static_cast<double>(f(a[i], b[i]));
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  *out = acc[0];
}
LATENT_CPU_MULTI_ISA_F(loss_sum, (const float* a, const float* b, int64_t n, double* out, F f), (a, b, n, out, f))

/// The binary cross entropy sum, sum of (t - 1) max(log(1 - p), -100) - t max(log(p), -100), with
/// explicit W-lane vectors (vec_math.h): the functor loop above stays scalar for its two logs.
/// Lane partial sums in float64; the tail takes the functor.
template <int W>
[[gnu::always_inline]] inline void bce_sum_body(const float* a, const float* b, int64_t n, double* out) {
  using F = typename vx::Lanes<W>::F;
  using D = typename vx::Lanes<W>::D;
  const F floor = vx::splat<F>(-100.f);
  D acc{};
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    F p, t;
    std::memcpy(&p, a + i, sizeof p);
    std::memcpy(&t, b + i, sizeof t);
    F log_q = vx::log1m<W>(p), log_p = vx::log<W>(p);
    log_q = vx::select(log_q < floor, floor, log_q);
    log_p = vx::select(log_p < floor, floor, log_p);
    acc += __builtin_convertvector((t - 1.f) * log_q - t * log_p, D);
  }
  double sum = 0;
  for (int l = 0; l < W; ++l) sum += acc[l];
  const BinaryCrossEntropyFn f{0.f, 0.f};
  for (; i < n; ++i) sum += static_cast<double>(f(a[i], b[i]));
  *out = sum;
}
LATENT_CPU_MULTI_ISA_W(bce_sum, (const float* a, const float* b, int64_t n, double* out), (a, b, n, out))

// ---- loss gradient times scale ----

template <class F>
[[gnu::always_inline]] inline void scaled_body(const float* a, const float* b, const float* s, bool scalar,
                                               float* out, int64_t n, F f) {
  const float* __restrict x = a;
  const float* __restrict y = b;
  float* __restrict o = out;
  if (scalar) {
    const float sv = *s;
    for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]) * sv;
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]) * s[i];
  }
}
LATENT_CPU_MULTI_ISA_F(scaled, (const float* a, const float* b, const float* s, bool scalar, float* out, int64_t n, F f),
                       (a, b, s, scalar, out, n, f))

}  // namespace

void CpuBackend::activation_backward(Activation activation, const Tensor& grad_out, const Tensor& out,
                                     const Tensor& grad_pre, const Tensor& grad_bias) {
  const bool fast = activation != Activation::None && out.dim() == 2 && contiguous_f32(grad_out) &&
                    contiguous_f32(out) && contiguous_f32(grad_pre) && grad_out.shape() == out.shape() &&
                    grad_pre.shape() == out.shape() &&
                    (!grad_bias.defined() || (contiguous_f32(grad_bias) && grad_bias.numel() == out.shape()[1]));
  if (!fast) return Backend::activation_backward(activation, grad_out, out, grad_pre, grad_bias);
  const int64_t n = out.shape()[0], c = out.shape()[1];
  const float* g = grad_out.data_ptr<float>();
  const float* y = out.data_ptr<float>();
  float* gp = grad_pre.data_ptr<float>();
  const BinaryOp op = activation == Activation::Relu      ? BinaryOp::ReluBackward
                      : activation == Activation::Sigmoid ? BinaryOp::SigmoidBackward
                                                          : BinaryOp::TanhBackward;
  // Rows split over the pool; each part sums its rows' bias gradient, parts added in order.
  const RangeSplit split = split_range(n, c > 0 ? (kMinParallelElements + c - 1) / c : n + 1, 1);
  const size_t width = grad_bias.defined() ? static_cast<size_t>(c) : 0;
  std::vector<double> acc(width * static_cast<size_t>(split.parts), 0.0);
  with_loss_functor(op, 0.f, 0.f, [&](auto f) {
    parallel_for(split, [&](int part, int64_t lo, int64_t hi) {
      double* accp = width ? acc.data() + width * static_cast<size_t>(part) : nullptr;
      act_backward<decltype(f)>(g + lo * c, y + lo * c, gp + lo * c, accp, hi - lo, c, f);
    });
  });
  if (width) {
    float* gb = grad_bias.data_ptr<float>();
    for (int64_t j = 0; j < c; ++j) {
      double total = 0;
      for (int part = 0; part < split.parts; ++part) total += acc[width * static_cast<size_t>(part) + static_cast<size_t>(j)];
      gb[j] = static_cast<float>(total);
    }
  }
}

void CpuBackend::binary_sum(BinaryOp term, const Tensor& a, const Tensor& b, const Tensor& out, double p0, double p1) {
  if (contiguous_f32(a) && contiguous_f32(b) && out.dtype() == kFloat32 && out.numel() == 1 &&
      a.shape() == b.shape()) {
    const float* x = a.data_ptr<float>();
    const float* y = b.data_ptr<float>();
    // Ranges split over the pool, one float64 partial sum each, added in part order.
    const RangeSplit split = split_range(a.numel(), kMinParallelElements, kElementGrain);
    std::vector<double> partial(static_cast<size_t>(split.parts), 0.0);
    const auto finish = [&] {
      double sum = 0;
      for (double v : partial) sum += v;
      *static_cast<float*>(out.raw_data()) = static_cast<float>(sum);
    };
    if (term == BinaryOp::BinaryCrossEntropy) {
      parallel_for(split, [&](int part, int64_t lo, int64_t hi) { bce_sum(x + lo, y + lo, hi - lo, &partial[part]); });
      return finish();
    }
    if (with_loss_functor(term, float(p0), float(p1), [&](auto f) {
          parallel_for(split, [&](int part, int64_t lo, int64_t hi) {
            loss_sum<decltype(f)>(x + lo, y + lo, hi - lo, &partial[part], f);
          });
        }))
      return finish();
  }
  Backend::binary_sum(term, a, b, out, p0, p1);
}

void CpuBackend::binary_scaled(BinaryOp term, const Tensor& a, const Tensor& b, const Tensor& scale,
                               const Tensor& out, double p0, double p1) {
  const bool scalar = scale.numel() == 1;
  if (contiguous_f32(a) && contiguous_f32(b) && contiguous_f32(out) && a.shape() == b.shape() &&
      out.shape() == a.shape() && scale.dtype() == kFloat32 && (scalar || (scale.is_contiguous() && scale.shape() == a.shape()))) {
    const float* x = a.data_ptr<float>();
    const float* y = b.data_ptr<float>();
    const float* s = static_cast<const float*>(scale.raw_data());
    float* o = out.data_ptr<float>();
    if (with_loss_functor(term, float(p0), float(p1), [&](auto f) {
          parallel_ranges(a.numel(), kMinParallelElements, kElementGrain, [&](int64_t lo, int64_t hi) {
            scaled<decltype(f)>(x + lo, y + lo, scalar ? s : s + lo, scalar, o + lo, hi - lo, f);
          });
        }))
      return;
  }
  Backend::binary_scaled(term, a, b, scale, out, p0, p1);
}

}  // namespace latent::cpu
