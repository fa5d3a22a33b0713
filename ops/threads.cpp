#include "threads.h"

#include <cblas.h>
#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "../autograd/error.h"

namespace latent {
namespace {

// OpenBLAS picks its kernels once, by CPU family and model, when it loads. Debian 12's 0.3.21 does
// not know AMD family 0x1A (Zen 5) and falls back to its Haswell (AVX2) kernels on a CPU that has
// AVX-512, where they reach half the sgemm speed of its SkylakeX kernels (the dense autoencoder
// step took 2.09 ms with Haswell and 1.13 ms with SkylakeX kernels, 1 thread). A DYNAMIC_ARCH build
// exports gotoblas_dynamic_init/quit, which re-run that choice with OPENBLAS_CORETYPE, so before
// the first BLAS call we switch to SkylakeX when the CPU has the AVX-512 subsets those kernels use
// and OpenBLAS chose an AVX2 core. The user's OPENBLAS_CORETYPE always wins;
// LATENT_BLAS_CORETYPE=keep leaves OpenBLAS's choice alone, LATENT_BLAS_CORETYPE=NAME forces NAME.
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

// Applied at load time (after OpenBLAS's own start-up, before any BLAS call), so the kernel choice
// and LATENT_NUM_THREADS hold from the first call.
const bool env_threads_applied = [] {
  select_blas_kernels();
  if (const char* env = std::getenv("LATENT_NUM_THREADS")) {
    char* end = nullptr;
    long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n >= 1 && n <= 1024) openblas_set_num_threads(static_cast<int>(n));
  }
  return true;
}();
}  // namespace

void set_num_threads(int n) {
  if (n < 1) fail("set_num_threads", "thread count must be at least 1; got {}", n);
  openblas_set_num_threads(n);
}

int get_num_threads() { return openblas_get_num_threads(); }

std::string blas_info() {
  const int parallel = openblas_get_parallel();  // 0 sequential, 1 pthreads, 2 OpenMP
  const char* model = parallel == 0 ? "sequential" : parallel == 1 ? "pthread" : "openmp";
  // openblas_get_config() names the core chosen at load time; the corename is the one in use.
  return fmt::format("{} ({}), {} kernels, {} threads", openblas_get_config(), model, openblas_get_corename(),
                     openblas_get_num_threads());
}

}  // namespace latent
