// Fused optimizer updates: one pass over each parameter instead of one per arithmetic step.
#include <cmath>

#include "cpu_backend.h"
#include "isa.h"
#include "workers.h"

namespace latent::cpu {
namespace {

template <class T, bool kAmsgrad>
[[gnu::always_inline]] inline void adam_loop(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v,
                                             T* __restrict vmax, int64_t n, const AdamStep& s) {
  const T b1 = T(s.beta1), b2 = T(s.beta2), one_b1 = T(1 - s.beta1), one_b2 = T(1 - s.beta2);
  const T wd = T(s.weight_decay), decay = T(1 - s.lr * s.weight_decay), eps = T(s.eps);
  const T step_size = T(s.lr / s.bias_correction1), inv_sqrt_bc2 = T(1 / std::sqrt(s.bias_correction2));
  const bool coupled = !s.decoupled && s.weight_decay != 0, decoupled = s.decoupled && s.weight_decay != 0;
  for (int64_t i = 0; i < n; ++i) {
    T pi = p[i], gi = g[i];
    if (decoupled) pi *= decay;
    if (coupled) gi += wd * pi;
    const T mi = b1 * m[i] + one_b1 * gi;
    const T vi = b2 * v[i] + one_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    T second = vi;
    if constexpr (kAmsgrad) {
      second = vmax[i] > vi ? vmax[i] : vi;
      vmax[i] = second;
    }
    p[i] = pi - step_size * mi / (std::sqrt(second) * inv_sqrt_bc2 + eps);
  }
}

// The float32 update without AMSGrad (what `latent train` runs) for the widest instruction set.
[[gnu::always_inline]] inline void adam_f32_body(float* p, const float* g, float* m, float* v, int64_t n,
                                                 const AdamStep& s) {
  adam_loop<float, false>(p, g, m, v, nullptr, n, s);
}
LATENT_CPU_MULTI_ISA(adam_f32, (float* p, const float* g, float* m, float* v, int64_t n, const AdamStep& s),
                     (p, g, m, v, n, s))

/// Parameters below this many elements update on the calling thread (a 64k-element update takes
/// about 15 us; handing half to a spinning worker costs about 1).
constexpr int64_t kMinParallelAdam = 1 << 16;

}  // namespace

void CpuBackend::adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                           const Tensor& max_exp_avg_sq, const AdamStep& s) {
  visit_floating("adam", param.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* vmax = max_exp_avg_sq.defined() ? max_exp_avg_sq.data_ptr<T>() : nullptr;
    if constexpr (std::is_same_v<T, float>) {
      if (!vmax) {
        // Large parameters are split over the pool (the VAE's 784 x 400 weights: 314k elements).
        float* p = param.data_ptr<float>();
        const float* g = grad.data_ptr<float>();
        float* m = exp_avg.data_ptr<float>();
        float* v = exp_avg_sq.data_ptr<float>();
        parallel_ranges(param.numel(), kMinParallelAdam, 64,
                        [&](int64_t lo, int64_t hi) { adam_f32(p + lo, g + lo, m + lo, v + lo, hi - lo, s); });
        return;
      }
    }
    if (vmax)
      adam_loop<T, true>(param.data_ptr<T>(), grad.data_ptr<T>(), exp_avg.data_ptr<T>(), exp_avg_sq.data_ptr<T>(), vmax,
                         param.numel(), s);
    else
      adam_loop<T, false>(param.data_ptr<T>(), grad.data_ptr<T>(), exp_avg.data_ptr<T>(), exp_avg_sq.data_ptr<T>(),
                          nullptr, param.numel(), s);
  });
}

}  // namespace latent::cpu
