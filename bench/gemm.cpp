// float32 GEMM on the autoencoders' shapes: latent's blas_gemm (ops/cpu/cpu_blas.h: its AVX-512
// or AVX2 kernel, whichever the CPU has and LATENT_CPU_ISA allows, split over latent's pool) against bare cblas_sgemm on the same
// data, at 1 and 2 threads, in the same binary. Also probes this core's FMA peak (a register-only
// loop) and prints each figure as a share of it.
//
//   build/bench/gemm [--reps 7] [--min-ms 20]
//   LATENT_CPU_ISA=avx2 OPENBLAS_CORETYPE=Haswell build/bench/gemm   (an AVX2-only CPU, both sides)
//   build/bench/gemm --peak 263  one core's FMA peak in GFLOP/s for %peak (default: measured here,
//                                which a loaded shared machine understates)
//   build/bench/gemm --cpu 1   one thread only, every time (peak included) the calling thread's CPU
//                              time, which other processes' load on this shared machine does not inflate
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
#include "fma_peak.h"
#include "latent.h"


namespace {

bool g_cpu_clock = false;  // --cpu 1: time by the thread's CPU time

double clock_s() { return g_cpu_clock ? bench::thread_cpu_s() : bench::now_s(); }

template <class F>
double us_per_call(int64_t iters, F&& fn) {
  fn();  // warm
  const double t0 = clock_s();
  for (int64_t i = 0; i < iters; ++i) fn();
  return (clock_s() - t0) / double(iters) * 1e6;
}

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

}  // namespace

int main(int argc, char** argv) {
  const int reps = static_cast<int>(bench::int_flag(argc, argv, "--reps", 7));
  const double min_s = static_cast<double>(bench::int_flag(argc, argv, "--min-ms", 20)) / 1e3;
  g_cpu_clock = bench::int_flag(argc, argv, "--cpu", 0) != 0;
  bench::fma_peak_cpu_clock() = g_cpu_clock;
  const double given = static_cast<double>(bench::int_flag(argc, argv, "--peak", 0));
  const double peak = given > 0 ? given : bench_peak::fma_peak_gflops();
  fmt::print("# {}\n", latent::blas_info());
  if (peak > 0)
    fmt::print("# one core's {} FMA peak, {}: {:.0f} GFLOP/s\n",
               latent::cpu::sgemm_avx512_available() ? "AVX-512" : "AVX2", given > 0 ? "given (--peak)" : "measured",
               peak);
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
    for (int threads : g_cpu_clock ? std::vector<int>{1} : std::vector<int>{1, 2}) {
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
        t_ours.push_back(us_per_call(iters, ours));
        openblas_set_num_threads(threads);  // latent holds OpenBLAS at 1 thread; the bare side gets `threads`
        t_blas.push_back(us_per_call(iters, blas));
        openblas_set_num_threads(1);
      }
      const double uo = bench::median(t_ours), ub = bench::median(t_blas);
      const double go = flops / uo / 1e3, gb = flops / ub / 1e3;
      fmt::print("{:<22} {:>5} {:>5} {:>5} {:>3} | {:>9.1f} {:>9.1f} {:>6.2f} | {:>9.0f} {:>9.0f} {:>5.0f}%\n", s.name,
                 s.m, s.n, s.k, threads, uo, ub, uo / ub, go, gb, peak > 0 ? 100.0 * go / (peak * threads) : 0.0);
    }
  }
  fmt::print("ratio = latent time / BLAS time (median of {} repetitions, {}); %peak = latent GFLOP/s over threads x "
             "one core's measured peak\n",
             reps, g_cpu_clock ? "thread CPU time" : "wall clock");
}
