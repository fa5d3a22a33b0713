// latent's one CPU thread pool. latent::set_num_threads(n) (ops/threads.h) sizes it: n - 1 worker
// threads beside the caller. OpenBLAS runs single-threaded inside our parts, so one pool owns the
// cores (DESIGN.md: two pools on two cores oversubscribe).
//
// A worker spins briefly after its part (the next GEMM of a training step usually follows within
// microseconds; waking a sleeping thread costs tens of them), then sleeps on a futex.
// LATENT_SPIN_US sets the spin (default 500 microseconds; 0 sleeps at once).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace latent::cpu {

/// Runs body(ctx, part) for every part in [0, parts): part 0 on the calling thread, the others on
/// the workers, and returns when all are done. `parts` beyond get_num_threads() are folded onto
/// the caller. body must not throw. Re-entrant and thread-safe: a call made while the pool is busy
/// (from a part, or from another thread of the program) runs all its parts on its caller.
void run_parallel(int parts, void (*body)(void*, int), void* ctx);

template <class F>
void run_parallel(int parts, F& f) {
  run_parallel(parts, [](void* c, int part) { (*static_cast<F*>(c))(part); }, &f);
}

int pool_threads();  // latent::get_num_threads(), without including ops/threads.h

/// Calls f(lo, hi) over [0, n) cut into one range per thread, each a multiple of `grain` long
/// (but the last); a single call f(0, n) when n is below `min_parallel`.
template <class F>
void parallel_ranges(int64_t n, int64_t min_parallel, int64_t grain, F&& f) {
  const int parts = n < min_parallel ? 1 : static_cast<int>(std::min<int64_t>(pool_threads(), (n + grain - 1) / grain));
  if (parts <= 1) {
    f(int64_t{0}, n);
    return;
  }
  const int64_t units = (n + grain - 1) / grain;
  auto part = [&](int p) {
    const int64_t lo = std::min(n, units * p / parts * grain), hi = std::min(n, units * (p + 1) / parts * grain);
    if (hi > lo) f(lo, hi);
  };
  run_parallel(parts, part);
}

}  // namespace latent::cpu
