// A ThreadSanitizer check of latent's worker pool (ops/cpu/workers.cpp) on its own, built by
// tests/run_tsan.sh in seconds from the pool's sources (the full TSan build of the suites takes
// far longer). Every pattern the library uses: parts writing plain (non-atomic) memory that the
// caller reads after run_parallel returns, more parts than threads, nested calls (run on the
// part's thread), two program threads calling at once, parallel_for ranges, and the pool resized
// between calls. Values are checked; TSan checks that every write happens-before its read.
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "ops/cpu/workers.h"
#include "ops/threads.h"

// ops/threads.cpp's blas_info() names the GEMM kernel (ops/cpu/sgemm_*.cpp, not built here); the
// check never calls it.
namespace latent::cpu {
bool sgemm_uses_latent_kernel() { return true; }
}  // namespace latent::cpu

namespace {

int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "pool_tsan: FAILED: %s\n", what);
    ++failures;
  }
}

void rounds(int n, int seed) {
  for (int r = 0; r < n; ++r) {
    std::vector<long> slots(13, 0);
    auto write = [&](int p) { slots[size_t(p)] += p + seed + r; };
    latent::cpu::run_parallel(13, write);
    for (int p = 0; p < 13; ++p) check(slots[size_t(p)] == p + seed + r, "a part's write is seen by the caller");
    std::vector<int> inner(12, 0);
    auto outer = [&](int p) {
      auto sub = [&](int q) { inner[size_t(p * 3 + q)] += 1; };
      latent::cpu::run_parallel(3, sub);
    };
    latent::cpu::run_parallel(4, outer);
    for (int v : inner) check(v == 1, "nested parts run once");
    std::vector<float> x(200000, 1.0f);
    const auto split = latent::cpu::split_range(int64_t(x.size()), 1024, 1024);
    latent::cpu::parallel_for(split, [&](int, int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) x[size_t(i)] = x[size_t(i)] * 2.0f + float(seed);
    });
    double sum = 0;
    for (float v : x) sum += v;
    check(sum == double(x.size()) * (2.0 + seed), "parallel_for covers the range once");
  }
}

}  // namespace

int main() {
  latent::set_num_threads(2);
  rounds(200, 0);
  std::thread a(rounds, 200, 1), b(rounds, 200, 2);  // two program threads at once
  a.join();
  b.join();
  latent::set_num_threads(1);
  rounds(20, 3);
  latent::set_num_threads(2);
  rounds(50, 4);
  std::printf("pool_tsan: %s\n", failures ? "FAILED" : "all checks passed");
  return failures ? 1 : 0;
}
