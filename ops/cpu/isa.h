// Run-time choice of instruction set for the CPU backend's hot loops. The library is built for
// baseline x86-64 (SSE2); a loop that matters is written once as an always-inline body and
// compiled three times by LATENT_CPU_MULTI_ISA: for AVX-512 (16 float lanes), AVX2 + FMA and the
// baseline. The dispatcher picks the widest the CPU has. LATENT_CPU_ISA=avx2 or =base in the
// environment caps the choice (benchmarks and tests compare the variants with it).
#pragma once

#include <cstdlib>
#include <cstring>

namespace latent::cpu {

/// 0: baseline, 1: AVX2 + FMA, 2: AVX-512 (F, BW, DQ, VL).
inline int cpu_isa() {
  static const int level = [] {
    int l = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) l = 1;
    if (l == 1 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
      l = 2;
#endif
    if (const char* env = std::getenv("LATENT_CPU_ISA")) {
      if (std::strcmp(env, "base") == 0) l = 0;
      else if (std::strcmp(env, "avx2") == 0 && l > 1) l = 1;
    }
    return l;
  }();
  return level;
}

}  // namespace latent::cpu

#if defined(__x86_64__) && defined(__GNUC__)
#define LATENT_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,prefer-vector-width=512")))
#define LATENT_TARGET_AVX2 __attribute__((target("avx2,fma")))
/// Defines `void NAME PARAMS` that runs NAME##_body ARGS compiled for the widest instruction set
/// the CPU has. NAME##_body must be an always-inline function (or template) visible here.
#define LATENT_CPU_MULTI_ISA(NAME, PARAMS, ARGS)                     \
  LATENT_TARGET_AVX512 static void NAME##_avx512 PARAMS { NAME##_body ARGS; } \
  LATENT_TARGET_AVX2 static void NAME##_avx2 PARAMS { NAME##_body ARGS; }     \
  static void NAME##_base PARAMS { NAME##_body ARGS; }                        \
  static void NAME PARAMS {                                                   \
    switch (::latent::cpu::cpu_isa()) {                                       \
      case 2: NAME##_avx512 ARGS; return;                                     \
      case 1: NAME##_avx2 ARGS; return;                                       \
      default: NAME##_base ARGS; return;                                      \
    }                                                                         \
  }
/// The same for a body templated on a functor type F (PARAMS names F).
#define LATENT_CPU_MULTI_ISA_F(NAME, PARAMS, ARGS)                                          \
  template <class F> LATENT_TARGET_AVX512 static void NAME##_avx512 PARAMS { NAME##_body ARGS; } \
  template <class F> LATENT_TARGET_AVX2 static void NAME##_avx2 PARAMS { NAME##_body ARGS; }     \
  template <class F> static void NAME##_base PARAMS { NAME##_body ARGS; }                        \
  template <class F> static void NAME PARAMS {                                                   \
    switch (::latent::cpu::cpu_isa()) {                                                          \
      case 2: NAME##_avx512<F> ARGS; return;                                                     \
      case 1: NAME##_avx2<F> ARGS; return;                                                       \
      default: NAME##_base<F> ARGS; return;                                                      \
    }                                                                                            \
  }
/// The same for a body templated on its vector width W (vec_math.h): 16 float lanes for AVX-512,
/// 8 for AVX2, 4 for the baseline.
#define LATENT_CPU_MULTI_ISA_W(NAME, PARAMS, ARGS)                                \
  LATENT_TARGET_AVX512 static void NAME##_avx512 PARAMS { NAME##_body<16> ARGS; } \
  LATENT_TARGET_AVX2 static void NAME##_avx2 PARAMS { NAME##_body<8> ARGS; }      \
  static void NAME##_base PARAMS { NAME##_body<4> ARGS; }                         \
  static void NAME PARAMS {                                                       \
    switch (::latent::cpu::cpu_isa()) {                                           \
      case 2: NAME##_avx512 ARGS; return;                                         \
      case 1: NAME##_avx2 ARGS; return;                                           \
      default: NAME##_base ARGS; return;                                          \
    }                                                                             \
  }
#else
#define LATENT_CPU_MULTI_ISA_W(NAME, PARAMS, ARGS) \
  static void NAME PARAMS { NAME##_body<4> ARGS; }
#define LATENT_CPU_MULTI_ISA(NAME, PARAMS, ARGS) \
  static void NAME PARAMS { NAME##_body ARGS; }
#define LATENT_CPU_MULTI_ISA_F(NAME, PARAMS, ARGS) \
  template <class F> static void NAME PARAMS { NAME##_body ARGS; }
#endif
