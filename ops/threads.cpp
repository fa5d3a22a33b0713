#include "threads.h"

#include <cblas.h>
#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "../autograd/error.h"
#include "cpu/cpu_blas.h"
#include "cpu/isa.h"

namespace latent {
namespace {

// OpenBLAS picks its kernels once, by CPU family and model, when it loads. A build that does not
// know the CPU falls back to its Haswell (AVX2) kernels even where the CPU has AVX-512, at half
// the sgemm speed of its SkylakeX kernels (the dense autoencoder step took 2.09 ms with Haswell
// and 1.13 ms with SkylakeX kernels, 1 thread, before latent had its own float32 GEMM). A
// DYNAMIC_ARCH build exports gotoblas_dynamic_init/quit, which re-run that choice with
// OPENBLAS_CORETYPE, so before the first BLAS call we switch to SkylakeX when the CPU has the
// AVX-512 subsets those kernels use and OpenBLAS chose an AVX2 core. (Debian 12's 0.3.21 picks
// its Cooperlake kernels on the Zen 5 EPYC of our machines by itself, so this does nothing there.)
// The user's OPENBLAS_CORETYPE always wins; LATENT_BLAS_CORETYPE=keep leaves OpenBLAS's choice
// alone, LATENT_BLAS_CORETYPE=NAME forces NAME. Since latent's AVX-512 kernel takes float32
// products on such CPUs, this matters for float64 and for LATENT_SGEMM=openblas.
void select_blas_kernels() {
  if (std::getenv("OPENBLAS_CORETYPE")) return;
  const char* env = std::getenv("LATENT_BLAS_CORETYPE");
  std::string want = env ? env : "auto";
  if (want == "keep") return;
  using Hook = void (*)();
  auto init = reinterpret_cast<Hook>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init"));
  auto quit = reinterpret_cast<Hook>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit"));
  if (!init || !quit) return;  // not a DYNAMIC_ARCH OpenBLAS: nothing to choose
  if (want == "auto") {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                        __builtin_cpu_supports("avx512cd");
    const char* core = openblas_get_corename();
    const bool avx2_core = core && (strcasecmp(core, "haswell") == 0 || strcasecmp(core, "zen") == 0);
    if (!avx512 || !avx2_core) return;
    want = "SkylakeX";
#else
    return;
#endif
  }
  ::setenv("OPENBLAS_CORETYPE", want.c_str(), 1);
  quit();
  init();  // an unknown NAME falls back to OpenBLAS's feature-based choice
  ::unsetenv("OPENBLAS_CORETYPE");
}

/// latent's thread count (the pool of ops/cpu/workers.h plus the caller). OpenBLAS itself is kept
/// at one thread: products are split over our pool and each part calls it single-threaded.
std::atomic<int> g_threads{1};

// Applied at load time (after OpenBLAS's own start-up, before any BLAS call), so the kernel choice
// and the thread count hold from the first call. The count starts at LATENT_NUM_THREADS, else at
// OpenBLAS's own start-up choice (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS or the cores).
const bool env_threads_applied = [] {
  select_blas_kernels();
  int n = openblas_get_num_threads();
  if (const char* env = std::getenv("LATENT_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 1024) n = static_cast<int>(v);
  }
  g_threads.store(std::max(1, n));
  openblas_set_num_threads(1);
  return true;
}();
}  // namespace

void set_num_threads(int n) {
  if (n < 1) fail("set_num_threads", "thread count must be at least 1; got {}", n);
  g_threads.store(n);
}

int get_num_threads() { return g_threads.load(std::memory_order_relaxed); }

std::string blas_info() {
  const int parallel = openblas_get_parallel();  // 0 sequential, 1 pthreads, 2 OpenMP
  const char* model = parallel == 0 ? "sequential" : parallel == 1 ? "pthread" : "openmp";
  // openblas_get_config() names the core chosen at load time; the corename is the one in use.
  return fmt::format("{} ({}), {} kernels, {} threads, float32 GEMM: {}", openblas_get_config(), model,
                     openblas_get_corename(), get_num_threads(),
                     !cpu::sgemm_uses_latent_kernel() ? "OpenBLAS"
                     : cpu::cpu_isa() >= 2      ? "latent AVX-512 kernel"
                                                : "latent AVX2 kernel");
}

}  // namespace latent
