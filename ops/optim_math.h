// The math of the fused optimizer updates, written once for the CPU loops (ops/cpu/cpu_optim.cpp)
// and the CUDA kernels (cuda/cuda_reduce.cu), as scalar_math.h does for the elementwise kernels.
#pragma once

#include "scalar_math.h"

namespace latent::math {

/// The per-step constants of one Adam/AdamW update in type T. Step is AdamStep (ops/backend.h) or
/// cuda's AdamArgs: lr, beta1, beta2, eps, weight_decay, decoupled, bias_correction1/2 (1 - beta^t).
template <class T>
struct AdamCoefficients {
  T b1, b2, one_b1, one_b2, wd, decay, eps, step_size, inv_sqrt_bc2;
  bool coupled;    ///< Adam's L2 penalty: g += weight_decay * p
  bool decoupled;  ///< AdamW: p *= 1 - lr * weight_decay
};

template <class T, class Step>
LATENT_HOST_DEVICE inline AdamCoefficients<T> adam_coefficients(const Step& s) {
  AdamCoefficients<T> c;
  c.b1 = T(s.beta1);
  c.b2 = T(s.beta2);
  c.one_b1 = T(1 - s.beta1);
  c.one_b2 = T(1 - s.beta2);
  c.wd = T(s.weight_decay);
  c.decay = T(1 - s.lr * s.weight_decay);
  c.eps = T(s.eps);
  c.step_size = T(s.lr / s.bias_correction1);
  c.inv_sqrt_bc2 = T(1 / sqrt(s.bias_correction2));
  c.coupled = !s.decoupled && s.weight_decay != 0;
  c.decoupled = s.decoupled && s.weight_decay != 0;
  return c;
}

/// One element of Adam/AdamW (PyTorch's equations): updates the parameter p, the moments m and v,
/// and with kAmsgrad the running maximum vmax of v.
template <class T, bool kAmsgrad>
[[gnu::always_inline]] LATENT_HOST_DEVICE inline void adam_update(T& p, T g, T& m, T& v, T* vmax,
                                                                  const AdamCoefficients<T>& c) {
  T pi = p;
  if (c.decoupled) pi *= c.decay;
  if (c.coupled) g += c.wd * pi;
  const T mi = c.b1 * m + c.one_b1 * g;
  const T vi = c.b2 * v + c.one_b2 * g * g;
  m = mi;
  v = vi;
  T second = vi;
  if constexpr (kAmsgrad) {
    second = *vmax > vi ? *vmax : vi;
    *vmax = second;
  }
  p = pi - c.step_size * mi / (sqrt(second) * c.inv_sqrt_bc2 + c.eps);
}

}  // namespace latent::math
