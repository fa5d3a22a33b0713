// Explicit SIMD math for the CPU backend's hot loops, written once with GCC/Clang vector
// extensions and instantiated per instruction set at its natural width (W = 16 float lanes under
// AVX-512, 8 under AVX2, 4 on baseline SSE2; see LATENT_CPU_MULTI_ISA_W in isa.h).
//
// Why not the auto-vectoriser: GCC 12 leaves loops over math::log_float scalar ("control flow in
// loop": its selects guard arithmetic that -ftrapping-math will not hoist), which made the
// binary cross entropy of a 128 x 784 batch cost 1.6 ms. Selects here are bitwise (a & m | b & ~m),
// which every width lowers to blends; the `c ? a : b` vector form was lowered lane by lane.
#pragma once

#include <cstdint>

// The helpers below are always inlined into functions compiled for their ISA, so no vector is
// ever passed by value across a call; GCC's note that doing so would change the ABI is moot. The
// note fires where the templates are instantiated, so it is off for the rest of the including
// file (only CPU kernel files include this header).
#pragma GCC diagnostic ignored "-Wpsabi"

#include "../scalar_math.h"


namespace latent::cpu::vx {

template <int W>
struct Lanes;
template <>
struct Lanes<16> {
  typedef float F __attribute__((vector_size(64)));
  typedef int32_t I __attribute__((vector_size(64)));
  typedef double D __attribute__((vector_size(128)));
};
template <>
struct Lanes<8> {
  typedef float F __attribute__((vector_size(32)));
  typedef int32_t I __attribute__((vector_size(32)));
  typedef double D __attribute__((vector_size(64)));
};
template <>
struct Lanes<4> {
  typedef float F __attribute__((vector_size(16)));
  typedef int32_t I __attribute__((vector_size(16)));
  typedef double D __attribute__((vector_size(32)));
};

template <class F>
[[gnu::always_inline]] inline F splat(float v) {
  return F{} + v;
}
/// Lane-wise c ? a : b for a comparison mask c (all ones or all zeros per lane).
template <class F, class I>
[[gnu::always_inline]] inline F select(I c, F a, F b) {
  return (F)(((I)a & c) | ((I)b & ~c));
}

/// math::log_float (scalar_math.h), W lanes at a time: the same reduction, polynomial and special
/// values (0 -> -inf, negative -> NaN, inf -> inf, NaN -> NaN, denormals scaled first).
template <int W>
[[gnu::always_inline]] inline typename Lanes<W>::F log(typename Lanes<W>::F x_in) {
  using F = typename Lanes<W>::F;
  using I = typename Lanes<W>::I;
  const I tiny = x_in < 1.17549435e-38f;
  const F x = select(tiny, x_in * 8388608.0f, x_in);
  const I bits = (I)x;
  const F m = (F)((bits & 0x007fffff) | 0x3f000000);
  const I low = m < 0.707106781186547524f;  // low is -1 where true: the exponent drops by one
  const F e = __builtin_convertvector(((bits >> 23) & 0xff) - 126 + low, F) + select(tiny, splat<F>(-23.f), F{});
  const F f = select(low, m + m, m) - 1.f;
  F r = math::log_reduced(f, e);
  r = select(x_in == __builtin_inff(), x_in, r);
  r = select(x_in == 0.f, splat<F>(-__builtin_inff()), r);
  r = select(x_in < 0.f, splat<F>(__builtin_nanf("")), r);
  return select(x_in != x_in, x_in, r);
}

/// log(1 - p) for p <= 1 as math::log1p_float(-p) computes it (log(u) * -p / (u - 1) with
/// u = 1 - p, which cancels u's rounding; -p itself where u rounds to 1). p = 1 gives -inf.
template <int W>
[[gnu::always_inline]] inline typename Lanes<W>::F log1m(typename Lanes<W>::F p) {
  using F = typename Lanes<W>::F;
  using I = typename Lanes<W>::I;
  const F u = 1.f - p, d = u - 1.f;
  const I exact = d == 0.f;
  return select(exact, -p, log<W>(u) * (-p / select(exact, splat<F>(1.f), d)));
}

/// math::exp_float (scalar_math.h), W lanes at a time, operation for operation (the same clamp,
/// rounding trick, polynomial and two-step scaling), so its results are the scalar's bit for bit.
template <int W>
[[gnu::always_inline]] inline typename Lanes<W>::F exp(typename Lanes<W>::F x_in) {
  using F = typename Lanes<W>::F;
  using I = typename Lanes<W>::I;
  const I below = x_in < -103.9f, above = x_in > 88.7228f;
  const F x = select(below, splat<F>(-103.9f), select(above, splat<F>(88.7228f), x_in));
  const F shifted = x * 1.44269504088896341f + 12582912.0f;
  const F n = shifted - 12582912.0f;
  const F r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  F p = splat<F>(1.f / 720.f);
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const I ni = __builtin_convertvector(n, I), n1 = ni >> 1, n2 = ni - n1;
  const F s1 = (F)((n1 + 127) << 23), s2 = (F)((n2 + 127) << 23);
  const F result = p * s1 * s2;
  return select(below, F{}, select(above, splat<F>(__builtin_inff()), result));
}

/// math::sigmoid for float32 (1 / (1 + e^-x)), W lanes at a time, bit for bit.
template <int W>
[[gnu::always_inline]] inline typename Lanes<W>::F sigmoid(typename Lanes<W>::F x) {
  return 1.f / (1.f + exp<W>(-x));
}

}  // namespace latent::cpu::vx
