// bfloat16 and float16: 16-bit storage types with conversions to and from float32
// (round to nearest even; NaN stays NaN, made quiet; Inf stays Inf; float16 keeps subnormals).
// They are storage dtypes (autograd/dtype.h): stored, converted, printed, saved; computed on only
// by the kernels made for them (the bf16 GEMM in ops/cpu/bgemm.h) and through autocast.
#pragma once

#include <bit>
#include <cstdint>

namespace latent {
/// Bit-level conversions of float32 to and from bfloat16 and float16 (constexpr; BFloat16 and Float16 call them).
namespace half_bits {
/// float32 -> bfloat16 bits, round to nearest even; NaN -> a quiet NaN with the same sign.
constexpr uint16_t bf16_from_float(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}
/// bfloat16 bits -> float32 (exact).
constexpr float bf16_to_float(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

/// float32 -> float16 bits, round to nearest even, subnormals kept, >= 65520 -> Inf; NaN -> quiet NaN.
constexpr uint16_t f16_from_float(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));
  if (ax >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // 65520 and up (and Inf)
  if (ax < 0x38800000u) {                                               // below 2^-14: subnormal or zero
    if (ax <= 0x33000000u) return static_cast<uint16_t>(sign);          // <= 2^-25 rounds to 0
    const uint32_t e = ax >> 23, m = (ax & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126u - e;                                    // value / 2^-24 = m >> shift
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t h = (ax - 0x38000000u) >> 13;  // rebias the exponent (127 -> 15)
  const uint32_t rem = ax & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}
/// float16 bits -> float32 (exact).
constexpr float f16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
  if (e == 0) {
    const float v = static_cast<float>(m) * 0x1p-24f;
    return sign ? -v : v;
  }
  if (e == 31) return std::bit_cast<float>(sign | 0x7F800000u | (m << 13));
  return std::bit_cast<float>(sign | ((e + 112u) << 23) | (m << 13));
}
}  // namespace half_bits

/// bfloat16: float32's sign and 8-bit exponent with a 7-bit mantissa (the dtype kBFloat16).
/// Converts from any arithmetic value through float32 (round to nearest even) and to float32 exactly.
struct BFloat16 {
  uint16_t bits = 0;  ///< the raw 16 bits
  constexpr BFloat16() = default;
  /// Rounds v (through float32) to the nearest bfloat16, ties to even.
  template <class U>
  explicit constexpr BFloat16(U v) : bits(half_bits::bf16_from_float(static_cast<float>(v))) {}
  /// The value as float32 (exact).
  constexpr operator float() const { return half_bits::bf16_to_float(bits); }
  /// A value from its raw bits.
  static constexpr BFloat16 from_bits(uint16_t b) { BFloat16 v; v.bits = b; return v; }
};

/// IEEE 754 binary16 (the dtype kFloat16): 5-bit exponent, 10-bit mantissa, subnormals.
/// Converts from any arithmetic value through float32 (round to nearest even) and to float32 exactly.
struct Float16 {
  uint16_t bits = 0;  ///< the raw 16 bits
  constexpr Float16() = default;
  /// Rounds v (through float32) to the nearest float16, ties to even; beyond 65504 gives Inf.
  template <class U>
  explicit constexpr Float16(U v) : bits(half_bits::f16_from_float(static_cast<float>(v))) {}
  /// The value as float32 (exact).
  constexpr operator float() const { return half_bits::f16_to_float(bits); }
  /// A value from its raw bits.
  static constexpr Float16 from_bits(uint16_t b) { Float16 v; v.bits = b; return v; }
};

static_assert(sizeof(BFloat16) == 2 && sizeof(Float16) == 2);

}  // namespace latent
