#include "threads.h"

#include <cblas.h>
#include <fmt/format.h>

#include <cstdlib>

#include "../autograd/error.h"

namespace latent {
namespace {
// Applied at load time so LATENT_NUM_THREADS holds before the first BLAS call.
const bool env_threads_applied = [] {
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
  return fmt::format("{} ({}), {} threads", openblas_get_config(), model, openblas_get_num_threads());
}

}  // namespace latent
