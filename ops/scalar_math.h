// The math of every elementwise kernel, written once as X-macro lists over a scalar type T.
// The CPU backend instantiates them in its loops; the CUDA backend instantiates the same lists
// in its kernels, so forward and backward formulas live in exactly one place.
//
// Unary entries: X(Name, expression in x, p0, p1). Binary entries: X(Name, expression in a, b, p0, p1).
// p0 and p1 are op parameters (a slope, an exponent, clamp bounds) already converted to T.
// Backward helpers are binary entries taking (a = incoming gradient, b = saved input or output).
#pragma once

#include <cmath>
#include <cstdint>

/// Marks the scalar functions below callable from CUDA kernels too (empty for the C++ compiler).
#ifdef __CUDACC__
#define LATENT_HOST_DEVICE __host__ __device__
#else
#define LATENT_HOST_DEVICE
#endif

namespace latent::math {

using std::abs;
using std::erf;
using std::expm1;
using std::log;
using std::log1p;
using std::pow;
using std::sqrt;
using std::tanh;

inline constexpr double kSeluAlpha = 1.6732632423543772848170429916717;  ///< SELU's alpha (Klambauer et al. 2017)
inline constexpr double kSeluScale = 1.0507009873554804934193349852946;  ///< SELU's scale (lambda)
inline constexpr double kInvSqrt2 = 0.70710678118654752440;     ///< 1 / sqrt(2): GELU's erf argument scale
inline constexpr double kInvSqrt2Pi = 0.39894228040143267794;   ///< 1 / sqrt(2 pi): the standard normal density at 0
inline constexpr double kTwoInvSqrtPi = 1.12837916709551257390; ///< 2 / sqrt(pi): erf's derivative at 0

/// x rounded to the nearest integer, halves to the even one (ONNX Round, numpy.round): rint in the
/// default rounding mode, computed in double (exact for every float32, float64 and int64 value).
template <class T> LATENT_HOST_DEVICE inline T round_half_even(T x) {
#ifdef __CUDA_ARCH__
  return T(::rint(double(x)));
#else
  return T(std::rint(double(x)));
#endif
}

/// e^x for float32 in straight-line arithmetic, so loops over it vectorise (libm's expf is a
/// scalar call): 2^n * p(r) with n = round(x / ln 2), r = x - n ln 2 split in two parts for
/// accuracy, p the degree-6 Taylor polynomial (|r| <= ln(2)/2, relative error below 2e-7, about
/// 1-2 ulp; denormal results included). Below -103.9 the result is 0 and above 88.7228 (ln FLT_MAX) it is inf (selected without branches);
/// NaN stays NaN (it flows through p).
[[gnu::always_inline]] LATENT_HOST_DEVICE inline float exp_float(float x_in) {
  const float x = x_in < -103.9f ? -103.9f : (x_in > 88.7228f ? 88.7228f : x_in);
  // n = round(x / ln 2) by the 1.5 * 2^23 trick: adding it pushes the fraction bits out (round
  // to nearest), subtracting it back leaves the integer. Plain adds, so the loop vectorises
  // (floorf is a library call without SSE4.1).
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  const float n = shifted - 12582912.0f;  // -150 .. 128
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  // 2^n as 2^n1 * 2^n2 with both halves inside the normal exponent range.
  const int32_t ni = static_cast<int32_t>(n), n1 = ni >> 1, n2 = ni - n1;
  const int32_t bits1 = (n1 + 127) << 23, bits2 = (n2 + 127) << 23;
  float s1, s2;
  __builtin_memcpy(&s1, &bits1, sizeof s1);
  __builtin_memcpy(&s2, &bits2, sizeof s2);
  const float result = p * s1 * s2;
  return x_in < -103.9f ? 0.f : (x_in > 88.7228f ? __builtin_inff() : result);
}
/// e^x for float32: exp_float (vectorisable, 1-2 ulp), what the float kernels use.
[[gnu::always_inline]] LATENT_HOST_DEVICE inline float exp(float x) { return exp_float(x); }
/// e^x for float64: libm's std::exp (gradcheck's float64 runs need its accuracy).
LATENT_HOST_DEVICE inline double exp(double x) { return std::exp(x); }
/// e^x of an integer, computed and returned as a double.
LATENT_HOST_DEVICE inline double exp(int64_t x) { return std::exp(static_cast<double>(x)); }

/// log(m 2^e) = log(1 + f) + e ln 2 for f = m - 1 in [sqrt(1/2) - 1, sqrt(2) - 1]: Cephes' degree-8
/// polynomial for log(1 + f), e ln 2 added in two parts. V is float or a vector of floats (the
/// explicit-SIMD log of ops/cpu/vec_math.h shares it).
// Always inlined, so a vector V never crosses a call: GCC's ABI note for vector arguments is moot.
#if defined(__GNUC__) && !defined(__CUDACC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
template <class V>
[[gnu::always_inline]] LATENT_HOST_DEVICE inline V log_reduced(V f, V e) {
  const V z = f * f;
  V p = V{} + 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  const V r = f * z * p + e * -2.12194440e-4f - 0.5f * z;
  return (f + r) + e * 0.693359375f;
}
#if defined(__GNUC__) && !defined(__CUDACC__)
#pragma GCC diagnostic pop
#endif

/// log(x) for float32 in straight-line arithmetic, so loops over it vectorise (libm's logf is a
/// scalar call): x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) from Cephes' degree-8 polynomial
/// in f = m - 1, e ln 2 added in two parts. About 1 ulp; denormals are scaled first; 0 gives -inf,
/// negatives NaN, inf inf, NaN NaN (selected without branches).
[[gnu::always_inline]] LATENT_HOST_DEVICE inline float log_float(float x_in) {
  const bool tiny = x_in < 1.17549435e-38f;  // denormal, zero or negative
  const float x = tiny ? x_in * 8388608.0f : x_in;  // 2^23 makes denormals normal
  int32_t bits;
  __builtin_memcpy(&bits, &x, sizeof bits);
  const int32_t mbits = (bits & 0x007fffff) | 0x3f000000;  // mantissa as m in [0.5, 1)
  float m;
  __builtin_memcpy(&m, &mbits, sizeof m);
  const bool low = m < 0.707106781186547524f;
  const float e = static_cast<float>(((bits >> 23) & 0xff) - 126 - (low ? 1 : 0)) - (tiny ? 23.f : 0.f);
  const float f = (low ? m + m : m) - 1.f;
  float r = log_reduced(f, e);
  r = x_in == __builtin_inff() ? x_in : r;
  r = x_in == 0.f ? -__builtin_inff() : r;
  r = x_in < 0.f ? __builtin_nanf("") : r;
  return x_in != x_in ? x_in : r;
}
/// log(1 + x) for float32, vectorisable: log_float(u) * x / (u - 1) with u = 1 + x, which cancels
/// the rounding of u (Goldberg); x itself where u rounds to 1. -1 gives -inf, below -1 NaN.
[[gnu::always_inline]] LATENT_HOST_DEVICE inline float log1p_float(float x) {
  const float u = 1.f + x;
  const float r = u == 1.f ? x : log_float(u) * (x / (u - 1.f));
  return x == __builtin_inff() ? x : r;
}

/// 1 / (1 + e^-x): e^-x overflows to inf for very negative x, giving exactly 0, so no branch is
/// needed (and the loop vectorises).
template <class T> [[gnu::always_inline]] LATENT_HOST_DEVICE inline T sigmoid(T x) { return T(1) / (T(1) + exp(-x)); }
/// log(1 + e^(beta x)) / beta, linear above threshold (PyTorch's softplus).
template <class T> LATENT_HOST_DEVICE inline T softplus(T x, T beta, T threshold) {
  T bx = x * beta;
  return bx > threshold ? x : log1p(exp(bx)) / beta;
}
/// -1, 0 or 1 as x is negative, zero or positive (NaN gives 0): abs' and L1 loss's derivative.
template <class T> LATENT_HOST_DEVICE inline T sign(T x) { return T((x > T(0)) - (x < T(0))); }
/// max(v, -100), keeping NaN: binary_cross_entropy's floor on log terms (PyTorch's), so probabilities
/// of exactly 0 or 1 give a finite loss.
template <class T> LATENT_HOST_DEVICE inline T log_floor(T v) { return v < T(-100) ? T(-100) : v; }

}  // namespace latent::math

#define LATENT_UNARY_OPS(X)                                                              \
  X(Neg, -x)                                                                             \
  X(Exp, exp(x))                                                                         \
  X(Log, log(x))                                                                         \
  X(Sqrt, sqrt(x))                                                                       \
  X(Abs, x < T(0) ? -x : x)                                                              \
  X(Sign, sign(x))                                                                       \
  X(Round, round_half_even(x))                                                           \
  X(Square, x * x)                                                                       \
  X(Reciprocal, T(1) / x)                                                                \
  X(Relu, x > T(0) ? x : T(0))                                                           \
  X(LeakyRelu, x > T(0) ? x : x * p0)                                                    \
  X(Sigmoid, sigmoid(x))                                                                 \
  X(Tanh, tanh(x))                                                                       \
  X(Softplus, softplus(x, p0, p1))                                                       \
  X(Elu, x > T(0) ? x : p0 * expm1(x))                                                   \
  X(Selu, T(kSeluScale) * (x > T(0) ? x : T(kSeluAlpha) * expm1(x)))                    \
  X(Gelu, T(0.5) * x * (T(1) + erf(x * T(kInvSqrt2))))                                   \
  X(Erf, erf(x))                                                                         \
  X(PowScalar, pow(x, p0))                                                               \
  X(Clamp, x < p0 ? p0 : (x > p1 ? p1 : x))                                              \
  X(AddScalar, x + p0)                                                                   \
  X(MulScalar, x * p0)                                                                   \
  X(DivScalar, x / p0)                                                                   \
  X(RsubScalar, p0 - x)                                                                  \
  X(RdivScalar, p0 / x)                                                                  \
  X(RpowScalar, pow(p0, x))

#define LATENT_BINARY_OPS(X)                                                             \
  X(Add, a + b * p0)                                                                     \
  X(Sub, a - b)                                                                          \
  X(Mul, a * b)                                                                          \
  X(Div, a / b)                                                                          \
  X(Pow, pow(a, b))                                                                      \
  X(Maximum, a > b ? a : b)                                                              \
  X(Minimum, a < b ? a : b)                                                              \
  X(Eq, T(a == b))                                                                       \
  X(Ne, T(a != b))                                                                       \
  X(Lt, T(a < b))                                                                        \
  X(Le, T(a <= b))                                                                       \
  X(Gt, T(a > b))                                                                        \
  X(Ge, T(a >= b))                                                                       \
  X(ReluBackward, b > T(0) ? a : T(0))                                                   \
  X(LeakyReluBackward, b > T(0) ? a : a * p0)                                            \
  X(SigmoidBackward, a * b * (T(1) - b))                                                 \
  X(TanhBackward, a * (T(1) - b * b))                                                    \
  X(SoftplusBackward, b * p0 > p1 ? a : a * sigmoid(b * p0))                             \
  X(EluBackward, b > T(0) ? a : a * p0 * exp(b))                                         \
  X(SeluBackward, b > T(0) ? a * T(kSeluScale) : a * T(kSeluScale * kSeluAlpha) * exp(b)) \
  X(GeluBackward, a * (T(0.5) * (T(1) + erf(b * T(kInvSqrt2))) +                         \
                       b * T(kInvSqrt2Pi) * exp(T(-0.5) * b * b)))                       \
  X(ErfBackward, a * T(kTwoInvSqrtPi) * exp(-(b * b)))                                   \
  X(ClampBackward, (b >= p0 && b <= p1) ? a : T(0))                                      \
  X(PowScalarBackward, a * p0 * pow(b, p0 - T(1)))                                       \
  X(AbsBackward, a * sign(b))                                                            \
  /* Losses (ops/loss.cpp), pointwise terms of (a = input, b = target), PyTorch's formulas: */ \
  X(BinaryCrossEntropy, (b - T(1)) * log_floor(log1p(-a)) - b * log_floor(log(a)))      \
  X(BinaryCrossEntropyBackward, (a - b) / ((T(1) - a) * a < T(1e-12) ? T(1e-12) : (T(1) - a) * a)) \
  X(BceWithLogits, (a > T(0) ? a : T(0)) - a * b + log1p(exp(-abs(a))))                  \
  X(BceWithLogitsBackward, sigmoid(a) - b)                                              \
  X(SquaredError, (a - b) * (a - b))                                                     \
  X(MseLossBackward, T(2) * (a - b))                                                     \
  X(L1LossBackward, sign(a - b))

namespace latent {

#define LATENT_ENUM_ENTRY(name, ...) name,
/// Elementwise functions of one tensor (see LATENT_UNARY_OPS).
enum class UnaryOp : uint8_t { LATENT_UNARY_OPS(LATENT_ENUM_ENTRY) };
/// Elementwise functions of two broadcast tensors (see LATENT_BINARY_OPS).
enum class BinaryOp : uint8_t { LATENT_BINARY_OPS(LATENT_ENUM_ENTRY) };
#undef LATENT_ENUM_ENTRY

/// Reductions over dims.
enum class ReduceOp : uint8_t { Sum, Max, Min };

}  // namespace latent
