// float32 GEMM on the autoencoders' shapes: latent's blas_gemm (ops/cpu/cpu_blas.h: its AVX-512
// or AVX2 kernel, whichever the CPU has and LATENT_CPU_ISA allows, split over latent's pool) against bare cblas_sgemm on the same
// data, at 1 and 2 threads, in the same binary. Also probes this core's FMA peak (a register-only
// loop) and prints each figure as a share of it.
//
//   build/bench/gemm [--reps 7] [--min-ms 20]
//   LATENT_CPU_ISA=avx2 OPENBLAS_CORETYPE=Haswell build/bench/gemm   (an AVX2-only CPU, both sides)
//
// Shapes (m x n x k, layout): the dense AE's 784-128 layer at batch 128 forward (x W^T), input
// gradient (g W) and weight gradient (g^T x), and the VAE's 784-400 layer the same three ways.
// The BLAS side's kernels are OpenBLAS's choice (OPENBLAS_CORETYPE pins them; blas_info says which).
#include <cblas.h>
#include <fmt/format.h>

#include <random>
#include <vector>

#include "../ops/cpu/cpu_blas.h"
#include "../ops/cpu/isa.h"
#include "bench_util.h"
#include "latent.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

struct Shape3 {
  const char* name;
  int64_t m, n, k;
  bool ta, tb;
};

const Shape3 kShapes[] = {
    {"dense L1 fwd   x W^T ", 128, 128, 784, false, true},  {"dense L4 dgrad g W   ", 128, 128, 784, false, false},
    {"dense L4 fwd   x W^T ", 128, 784, 128, false, true},  {"dense L1 wgrad g^T x ", 128, 784, 128, true, false},
    {"dense L2 fwd   x W^T ", 128, 64, 128, false, true},   {"vae L1 fwd     x W^T ", 128, 400, 784, false, true},
    {"vae L4 dgrad   g W   ", 128, 400, 784, false, false}, {"vae L1 wgrad   g^T x ", 400, 784, 128, true, false},
};

#if defined(__x86_64__) && defined(__GNUC__)
/// Single-core float32 AVX-512 FMA peak in GFLOP/s: 20 independent FMA chains, each its own
/// register variable (an array of them is spilled to the stack by GCC 12, halving the figure).
LATENT_TARGET_AVX512 double avx512_fma_peak_gflops() {
#define LATENT_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19)
#define LATENT_INIT(i) __m512 a##i = _mm512_set1_ps(0.001f * i);
#define LATENT_STEP(i) a##i = _mm512_fmadd_ps(a##i, b, c);
#define LATENT_KEEP(i) __asm__ volatile("" : "+v"(a##i));
#define LATENT_SUM(i) sum = _mm512_add_ps(sum, a##i);
  LATENT_CHAINS(LATENT_INIT)
  const __m512 b = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-4f);
  const int64_t iters = 20'000'000;
  const double t0 = bench::now_s();
  for (int64_t it = 0; it < iters; ++it) {
    LATENT_CHAINS(LATENT_STEP)
    LATENT_CHAINS(LATENT_KEEP)
  }
  const double seconds = bench::now_s() - t0;
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
LATENT_TARGET_AVX2 double avx2_fma_peak_gflops() {
#define LATENT_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define LATENT_INIT(i) __m256 a##i = _mm256_set1_ps(0.001f * i);
#define LATENT_STEP(i) a##i = _mm256_fmadd_ps(a##i, b, c);
#define LATENT_KEEP(i) __asm__ volatile("" : "+x"(a##i));
#define LATENT_SUM(i) sum = _mm256_add_ps(sum, a##i);
  LATENT_CHAINS(LATENT_INIT)
  const __m256 b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-4f);
  const int64_t iters = 30'000'000;
  const double t0 = bench::now_s();
  for (int64_t it = 0; it < iters; ++it) {
    LATENT_CHAINS(LATENT_STEP)
    LATENT_CHAINS(LATENT_KEEP)
  }
  const double seconds = bench::now_s() - t0;
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
double fma_peak_gflops() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (latent::cpu::sgemm_avx512_available()) return avx512_fma_peak_gflops();
  if (latent::cpu::sgemm_avx2_available()) return avx2_fma_peak_gflops();
#endif
  return 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = static_cast<int>(bench::int_flag(argc, argv, "--reps", 7));
  const double min_s = static_cast<double>(bench::int_flag(argc, argv, "--min-ms", 20)) / 1e3;
  const double peak = fma_peak_gflops();
  fmt::print("# {}\n", latent::blas_info());
  if (peak > 0)
    fmt::print("# one core's {} FMA peak, measured: {:.0f} GFLOP/s\n",
               latent::cpu::sgemm_avx512_available() ? "AVX-512" : "AVX2", peak);
  fmt::print("{:<22} {:>5} {:>5} {:>5} {:>3} | {:>9} {:>9} {:>6} | {:>9} {:>9} {:>6}\n", "shape", "m", "n", "k", "thr",
             "latent us", "BLAS us", "ratio", "latent GF", "BLAS GF", "%peak");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (const Shape3& s : kShapes) {
    std::vector<float> a(s.m * s.k), b(s.k * s.n), c(s.m * s.n);
    for (float& v : a) v = dist(rng);
    for (float& v : b) v = dist(rng);
    const int64_t lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
    const double flops = 2.0 * double(s.m) * double(s.n) * double(s.k);
    for (int threads : {1, 2}) {
      latent::set_num_threads(threads);
      auto ours = [&] {
        latent::cpu::blas_gemm<float>(s.ta, s.tb, s.m, s.n, s.k, a.data(), lda, b.data(), ldb, 0.f, c.data(), s.n);
      };
      auto blas = [&] {
        cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, int(s.m),
                    int(s.n), int(s.k), 1.f, a.data(), int(lda), b.data(), int(ldb), 0.f, c.data(), int(s.n));
      };
      // Calls per repetition: enough for min_s of the slower side.
      const int64_t iters = std::max<int64_t>(10, int64_t(min_s / (flops / 50e9)));
      std::vector<double> t_ours, t_blas;
      for (int r = 0; r < reps; ++r) {
        t_ours.push_back(bench::us_per_call(iters, ours));
        openblas_set_num_threads(threads);  // latent holds OpenBLAS at 1 thread; the bare side gets `threads`
        t_blas.push_back(bench::us_per_call(iters, blas));
        openblas_set_num_threads(1);
      }
      const double uo = bench::median(t_ours), ub = bench::median(t_blas);
      const double go = flops / uo / 1e3, gb = flops / ub / 1e3;
      fmt::print("{:<22} {:>5} {:>5} {:>5} {:>3} | {:>9.1f} {:>9.1f} {:>6.2f} | {:>9.0f} {:>9.0f} {:>5.0f}%\n", s.name,
                 s.m, s.n, s.k, threads, uo, ub, uo / ub, go, gb, peak > 0 ? 100.0 * go / (peak * threads) : 0.0);
    }
  }
  fmt::print("ratio = latent time / BLAS time (median of {} repetitions); %peak = latent GFLOP/s over threads x "
             "one core's measured peak\n",
             reps);
}
