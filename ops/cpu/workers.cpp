#include "workers.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "../threads.h"

namespace latent::cpu {
namespace {

/// How long an idle worker spins before it sleeps: LATENT_SPIN_US in the environment, default 500
/// (a training step's GEMMs come a few to a few hundred microseconds apart).
const std::chrono::microseconds kSpin = [] {
  const char* env = std::getenv("LATENT_SPIN_US");
  const long us = env ? std::strtol(env, nullptr, 10) : 500;
  return std::chrono::microseconds(std::clamp(us, 0L, 1000000L));
}();

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

/// The parts of a region are claimed one at a time from one atomic word that also carries the
/// region's generation and part count, so a thread that was descheduled (our machines are VMs
/// whose second core is sometimes taken away) never holds up the others: whoever is running takes
/// the next part, and the caller only waits for parts already being worked on.
class Pool {
 public:
  static Pool& instance() {
    static Pool pool;
    return pool;
  }

  ~Pool() {
    stop_.store(true);
    epoch_.fetch_add(1);
    epoch_.notify_all();
    for (auto& t : workers_) t.join();
  }

  void run(int parts, void (*body)(void*, int), void* ctx) {
    const int threads = get_num_threads();
    bool expected = false;
    if (parts <= 1 || threads <= 1 || parts > kMaxParts ||
        !busy_.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
      for (int p = 0; p < parts; ++p) body(ctx, p);
      return;
    }
    while (static_cast<int>(workers_.size()) < threads - 1) add_worker();
    body_ = body;
    ctx_ = ctx;
    completed_.store(0, std::memory_order_relaxed);
    generation_ = (generation_ + 1) & kGenMask;
    // Publishes body_, ctx_ and the reset count with the region's first claimable part.
    claim_.store(pack(generation_, parts, 0), std::memory_order_release);
    epoch_.fetch_add(1, std::memory_order_release);
    epoch_.notify_all();
    for (int p; (p = claim(generation_)) >= 0;) {
      body(ctx, p);
      completed_.fetch_add(1, std::memory_order_release);
    }
    while (completed_.load(std::memory_order_acquire) < parts) cpu_relax();
    busy_.store(false, std::memory_order_release);
  }

 private:
  // claim_ = generation (24 bits) | parts (20 bits) | next part (20 bits).
  static constexpr uint64_t kGenMask = (1u << 24) - 1, kFieldMask = (1u << 20) - 1;
  static constexpr int kMaxParts = (1 << 20) - 1;
  static uint64_t pack(uint64_t gen, uint64_t parts, uint64_t next) { return gen << 40 | parts << 20 | next; }

  /// The next unclaimed part of generation `gen`, or -1 when that region has none left (or is over).
  int claim(uint64_t gen) {
    uint64_t v = claim_.load(std::memory_order_acquire);
    for (;;) {
      const uint64_t parts = v >> 20 & kFieldMask, next = v & kFieldMask;
      if ((v >> 40) != gen || next >= parts) return -1;
      if (claim_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel, std::memory_order_acquire))
        return static_cast<int>(next);
    }
  }

  void add_worker() { workers_.emplace_back([this] { work(); }); }

  void work() {
    // From 0, not the current epoch: a worker started just before the pool is destroyed must still
    // see the destructor's bump (it then finds stop_ set).
    uint32_t seen = 0;
    for (;;) {
      uint32_t e;
      const auto start = std::chrono::steady_clock::now();
      for (int spins = 1; (e = epoch_.load(std::memory_order_acquire)) == seen; ++spins) {
        cpu_relax();
        if (spins % 512 == 0 && std::chrono::steady_clock::now() - start > kSpin) epoch_.wait(seen);
      }
      seen = e;
      if (stop_.load()) return;
      // The region now open (if any): its generation is in claim_; a successful claim makes
      // body_ and ctx_ (written before claim_) visible, and they stay valid until every claimed
      // part is completed.
      const uint64_t gen = claim_.load(std::memory_order_acquire) >> 40;
      for (int p; (p = claim(gen)) >= 0;) {
        body_(ctx_, p);
        completed_.fetch_add(1, std::memory_order_release);
      }
    }
  }

  std::atomic<bool> busy_{false};  // set by the caller of run for the whole parallel region
  std::vector<std::thread> workers_;
  std::atomic<bool> stop_{false};
  std::atomic<uint32_t> epoch_{0};      // bumped once per region: wakes the workers
  std::atomic<uint64_t> claim_{0};      // see pack()
  std::atomic<int> completed_{0};       // parts of the current region finished
  void (*body_)(void*, int) = nullptr;  // the current region's work
  void* ctx_ = nullptr;
  uint64_t generation_ = 0;
};

}  // namespace

void run_parallel(int parts, void (*body)(void*, int), void* ctx) { Pool::instance().run(parts, body, ctx); }

int pool_threads() { return get_num_threads(); }

}  // namespace latent::cpu
