// One core's float32 FMA peak, measured by a register-only loop, for the instruction set latent's
// float32 kernels use (ops/cpu/isa.h; LATENT_CPU_ISA caps it): benchmarks print their GFLOP/s as a
// fraction of it (bench/gemm, bench/conv_ae).
#pragma once

#include <algorithm>
#include <cstdint>

#include "../ops/cpu/cpu_blas.h"
#include "../ops/cpu/isa.h"
#include "bench_util.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace bench {
/// The clock the peak loop is timed by: the thread's CPU time when set (load on a shared machine
/// does not inflate it), else the wall clock.
inline bool& fma_peak_cpu_clock() {
  static bool on = false;
  return on;
}
inline double fma_clock_s() { return fma_peak_cpu_clock() ? thread_cpu_s() : now_s(); }
}  // namespace bench

namespace bench_peak {

#if defined(__x86_64__) && defined(__GNUC__)
/// Single-core float32 AVX-512 FMA peak in GFLOP/s: 20 independent FMA chains, each its own
/// register variable (an array of them is spilled to the stack by GCC 12, halving the figure).
LATENT_TARGET_AVX512 inline double avx512_fma_peak_gflops() {
#define LATENT_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19)
#define LATENT_INIT(i) __m512 a##i = _mm512_set1_ps(0.001f * i);
#define LATENT_STEP(i) a##i = _mm512_fmadd_ps(a##i, b, c);
#define LATENT_KEEP(i) __asm__ volatile("" : "+v"(a##i));
#define LATENT_SUM(i) sum = _mm512_add_ps(sum, a##i);
  LATENT_CHAINS(LATENT_INIT)
  const __m512 b = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-4f);
  const int64_t iters = 5'000'000;
  double seconds = 1e30;  // the best of 5 runs: a busy machine only slows a run down
  for (int run = 0; run < 5; ++run) {
    const double t0 = bench::fma_clock_s();
    for (int64_t it = 0; it < iters; ++it) {
      LATENT_CHAINS(LATENT_STEP)
      LATENT_CHAINS(LATENT_KEEP)
    }
    seconds = std::min(seconds, bench::fma_clock_s() - t0);
  }
  __m512 sum = _mm512_setzero_ps();
  LATENT_CHAINS(LATENT_SUM)
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  volatile float sink = lanes[0];
  (void)sink;
#undef LATENT_CHAINS
#undef LATENT_INIT
#undef LATENT_STEP
#undef LATENT_KEEP
#undef LATENT_SUM
  return double(iters) * 20 * 16 * 2 / seconds / 1e9;
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
/// The same for AVX2 + FMA (8 lanes): 12 chains, as many as the 16 ymm registers leave.
LATENT_TARGET_AVX2 inline double avx2_fma_peak_gflops() {
#define LATENT_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define LATENT_INIT(i) __m256 a##i = _mm256_set1_ps(0.001f * i);
#define LATENT_STEP(i) a##i = _mm256_fmadd_ps(a##i, b, c);
#define LATENT_KEEP(i) __asm__ volatile("" : "+x"(a##i));
#define LATENT_SUM(i) sum = _mm256_add_ps(sum, a##i);
  LATENT_CHAINS(LATENT_INIT)
  const __m256 b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-4f);
  const int64_t iters = 8'000'000;
  double seconds = 1e30;  // the best of 5 runs: a busy machine only slows a run down
  for (int run = 0; run < 5; ++run) {
    const double t0 = bench::fma_clock_s();
    for (int64_t it = 0; it < iters; ++it) {
      LATENT_CHAINS(LATENT_STEP)
      LATENT_CHAINS(LATENT_KEEP)
    }
    seconds = std::min(seconds, bench::fma_clock_s() - t0);
  }
  __m256 sum = _mm256_setzero_ps();
  LATENT_CHAINS(LATENT_SUM)
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  volatile float sink = lanes[0];
  (void)sink;
#undef LATENT_CHAINS
#undef LATENT_INIT
#undef LATENT_STEP
#undef LATENT_KEEP
#undef LATENT_SUM
  return double(iters) * 12 * 8 * 2 / seconds / 1e9;
}
#endif

/// One core's FMA peak for the instruction set latent's kernel uses (isa.h; LATENT_CPU_ISA caps it).
inline double fma_peak_gflops() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (latent::cpu::sgemm_avx512_available()) return avx512_fma_peak_gflops();
  if (latent::cpu::sgemm_avx2_available()) return avx2_fma_peak_gflops();
#endif
  return 0.0;
}


}  // namespace bench_peak
