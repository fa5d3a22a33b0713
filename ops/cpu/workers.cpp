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

class Pool {
 public:
  static Pool& instance() {
    static Pool pool;
    return pool;
  }

  ~Pool() {
    stop_.store(true);
    for (auto& w : workers_) {
      w->go.fetch_add(1, std::memory_order_release);
      w->go.notify_one();
    }
    for (auto& w : workers_) w->thread.join();
  }

  void run(int parts, void (*body)(void*, int), void* ctx) {
    const int threads = get_num_threads();
    bool expected = false;
    if (parts <= 1 || threads <= 1 || !busy_.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
      for (int p = 0; p < parts; ++p) body(ctx, p);
      return;
    }
    while (static_cast<int>(workers_.size()) < threads - 1) add_worker();
    const int used = std::min(parts, threads) - 1;  // workers taking a part
    body_ = body;
    ctx_ = ctx;
    ++generation_;
    for (int w = 0; w < used; ++w) {
      workers_[w]->go.store(generation_, std::memory_order_release);
      workers_[w]->go.notify_one();
    }
    body(ctx, 0);
    for (int p = used + 1; p < parts; ++p) body(ctx, p);  // more parts than threads: the caller's
    for (int w = 0; w < used; ++w)
      while (workers_[w]->done.load(std::memory_order_acquire) != generation_) cpu_relax();
    busy_.store(false, std::memory_order_release);
  }

 private:
  struct Worker {
    std::atomic<uint32_t> go{0};
    std::atomic<uint32_t> done{0};
    std::thread thread;
  };

  void add_worker() {
    const int part = static_cast<int>(workers_.size()) + 1;
    auto w = std::make_unique<Worker>();
    Worker* self = w.get();
    w->thread = std::thread([this, self, part] { work(*self, part); });
    workers_.push_back(std::move(w));
  }

  void work(Worker& w, int part) {
    uint32_t seen = 0;
    for (;;) {
      uint32_t g = w.go.load(std::memory_order_acquire);
      if (g == seen) {
        const auto start = std::chrono::steady_clock::now();
        for (int spins = 1; (g = w.go.load(std::memory_order_acquire)) == seen; ++spins) {
          cpu_relax();
          if (spins % 512 == 0 && std::chrono::steady_clock::now() - start > kSpin) {
            w.go.wait(seen, std::memory_order_acquire);
            spins = 0;
          }
        }
      }
      seen = g;
      if (stop_.load()) return;
      body_(ctx_, part);
      w.done.store(g, std::memory_order_release);
    }
  }

  std::atomic<bool> busy_{false};  // set by the caller of run for the whole parallel region
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> stop_{false};
  // The region's work, written before the workers' go (release) and read after it (acquire).
  void (*body_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
  uint32_t generation_ = 0;
};

}  // namespace

void run_parallel(int parts, void (*body)(void*, int), void* ctx) { Pool::instance().run(parts, body, ctx); }

int pool_threads() { return get_num_threads(); }

}  // namespace latent::cpu
