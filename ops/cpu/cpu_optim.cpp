// Fused optimizer updates: one pass over each parameter instead of one per arithmetic step.
#include <cmath>

#include "../optim_math.h"
#include "cpu_backend.h"
#include "isa.h"
#include "workers.h"

namespace latent::cpu {
namespace {

template <class T, bool kAmsgrad>
[[gnu::always_inline]] inline void adam_loop(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v,
                                             T* __restrict vmax, int64_t n, const AdamStep& s) {
  const math::AdamCoefficients<T> c = math::adam_coefficients<T>(s);  // the math: ops/optim_math.h
  for (int64_t i = 0; i < n; ++i)
    math::adam_update<T, kAmsgrad>(p[i], g[i], m[i], v[i], kAmsgrad ? vmax + i : nullptr, c);
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
