// latent's one CPU thread pool. latent::set_num_threads(n) (ops/threads.h) sizes it: n - 1 worker
// threads beside the caller. OpenBLAS runs single-threaded inside our parts, so one pool owns the
// cores (DESIGN.md: two pools on two cores oversubscribe).
//
// A worker spins briefly after its part (the next GEMM of a training step usually follows within
// microseconds; waking a sleeping thread costs tens of them), then sleeps on a futex.
// LATENT_SPIN_US sets the spin (default 500 microseconds; 0 sleeps at once).
#pragma once

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

}  // namespace latent::cpu
