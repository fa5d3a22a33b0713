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

/// Runs body(ctx, part) once for every part in [0, parts) and returns when all are done. The
/// caller and the workers claim parts one at a time, in order, so more parts than threads balance
/// the load (a worker whose core is taken away leaves its parts to the others). body must not
/// throw. Re-entrant and thread-safe: a call made while the pool is busy (from a part, or from
/// another thread of the program) runs all its parts on its caller, in order.
void run_parallel(int parts, void (*body)(void*, int), void* ctx);

template <class F>
void run_parallel(int parts, F& f) {
  run_parallel(parts, [](void* c, int part) { (*static_cast<F*>(c))(part); }, &f);
}

int pool_threads();  // latent::get_num_threads(), without including ops/threads.h

/// [0, n) cut into `parts` ranges whose lengths are multiples of `grain` (but the last).
struct RangeSplit {
  int64_t n = 0, grain = 1, units = 0;
  int parts = 1;
  int64_t lo(int p) const { return std::min(n, units * p / parts * grain); }
  int64_t hi(int p) const { return std::min(n, units * (p + 1) / parts * grain); }
};
/// per_thread ranges per pool thread (more balance the load; each has its own fixed costs), one
/// range when n is below `min_parallel`.
inline RangeSplit split_range(int64_t n, int64_t min_parallel, int64_t grain, int per_thread = 1) {
  RangeSplit s;
  s.n = n;
  s.grain = std::max<int64_t>(grain, 1);
  s.units = (n + s.grain - 1) / s.grain;
  if (n >= min_parallel && pool_threads() > 1)
    s.parts = static_cast<int>(std::clamp<int64_t>(int64_t(pool_threads()) * per_thread, 1, std::max<int64_t>(s.units, 1)));
  return s;
}
/// Calls f(part, lo, hi) for every non-empty range of `s`, over the pool.
template <class F>
void parallel_for(const RangeSplit& s, F&& f) {
  auto part = [&](int p) {
    const int64_t lo = s.lo(p), hi = s.hi(p);
    if (hi > lo) f(p, lo, hi);
  };
  if (s.parts <= 1) return part(0);
  run_parallel(s.parts, part);
}
/// Elementwise float32 loops split over the pool from this many elements (a 128 x 512 batch);
/// below it a part's hand-off costs about what it saves. Chunks are multiples of 1024 elements.
inline constexpr int64_t kMinParallelElements = int64_t{1} << 16;
inline constexpr int64_t kElementGrain = 1024;

/// Calls f(lo, hi) over [0, n): parallel_for(split_range(n, min_parallel, grain)) without the index.
template <class F>
void parallel_ranges(int64_t n, int64_t min_parallel, int64_t grain, F&& f) {
  parallel_for(split_range(n, min_parallel, grain), [&](int, int64_t lo, int64_t hi) { f(lo, hi); });
}

}  // namespace latent::cpu
