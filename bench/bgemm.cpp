// bfloat16 GEMM (autocast's products, ops/cpu/bgemm.h: VDPBF16PS on CPUs with AVX512_BF16)
// against latent's float32 GEMM (blas_gemm) on the autoencoders' shapes, interleaved in the same
// run, one thread and two. The bf16 side includes its packing, which converts float32 to
// bfloat16 (what autocast pays per call).
//
//   build/bench/bgemm [--reps 7] [--min-ms 20]
#include <fmt/format.h>

#include <random>
#include <vector>

#include "../ops/cpu/bgemm.h"
#include "../ops/cpu/cpu_blas.h"
#include "bench_util.h"
#include "latent.h"

namespace {
struct Shape3 {
  const char* name;
  int64_t m, n, k;
  bool ta, tb;
};
const Shape3 kShapes[] = {
    {"dense L1 fwd   x W^T ", 128, 128, 784, false, true},  {"dense L4 dgrad g W   ", 128, 128, 784, false, false},
    {"dense L4 fwd   x W^T ", 128, 784, 128, false, true},  {"dense L1 wgrad g^T x ", 128, 784, 128, true, false},
    {"vae L1 fwd     x W^T ", 128, 400, 784, false, true},  {"vae L1 wgrad   g^T x ", 400, 784, 128, true, false},
    {"conv im2col  W col   ", 32, 784, 144, false, false},  {"big square           ", 512, 512, 512, false, false},
};
}  // namespace

int main(int argc, char** argv) {
  const int reps = static_cast<int>(bench::int_flag(argc, argv, "--reps", 7));
  const double min_s = static_cast<double>(bench::int_flag(argc, argv, "--min-ms", 20)) / 1e3;
  const bool vdp = latent::cpu::bgemm_avx512_available();
  fmt::print("# bf16 kernel: {}\n", vdp ? "VDPBF16PS (AVX512_BF16)" : "fallback (round, then float32)");
  fmt::print("{:<22} {:>5} {:>5} {:>5} {:>3} | {:>9} {:>9} {:>6} | {:>9} {:>9}\n", "shape", "m", "n", "k", "thr",
             "bf16 us", "f32 us", "ratio", "bf16 GF", "f32 GF");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (const Shape3& s : kShapes) {
    std::vector<float> a(size_t(s.m * s.k)), b(size_t(s.k * s.n)), c(size_t(s.m * s.n));
    for (float& v : a) v = dist(rng);
    for (float& v : b) v = dist(rng);
    const int64_t lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
    const double flops = 2.0 * double(s.m) * double(s.n) * double(s.k);
    for (int threads : {1, 2}) {
      latent::set_num_threads(threads);
      auto bf16 = [&] {
        latent::cpu::lowp_gemm(latent::kBFloat16, s.ta, s.tb, s.m, s.n, s.k, a.data(), lda, b.data(), ldb, 0.f,
                               c.data(), s.n);
      };
      auto f32 = [&] {
        latent::cpu::blas_gemm<float>(s.ta, s.tb, s.m, s.n, s.k, a.data(), lda, b.data(), ldb, 0.f, c.data(), s.n);
      };
      const int64_t iters = std::max<int64_t>(10, int64_t(min_s / (flops / 50e9)));
      std::vector<double> tb, tf;
      for (int r = 0; r < reps; ++r) {  // interleaved
        tb.push_back(bench::us_per_call(iters, bf16));
        tf.push_back(bench::us_per_call(iters, f32));
      }
      const double ub = bench::median(tb), uf = bench::median(tf);
      fmt::print("{:<22} {:>5} {:>5} {:>5} {:>3} | {:>9.1f} {:>9.1f} {:>6.2f} | {:>9.0f} {:>9.0f}\n", s.name, s.m, s.n,
                 s.k, threads, ub, uf, ub / uf, flops / ub / 1e3, flops / uf / 1e3);
    }
  }
  fmt::print("ratio = bf16 time / float32 time (medians of {} interleaved repetitions)\n", reps);
}
