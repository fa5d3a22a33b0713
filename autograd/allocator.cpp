// CPU caching allocator.
//
// Policy: a request is rounded up to a size class: multiples of 64 bytes up to 4 KiB, then four
// classes per power of two (so at most 25% waste). A freed block goes on a free list of its class
// and is handed out again to the next request of that class; nothing returns to the system until
// empty_cpu_cache() or a failed system allocation, which flushes the cache and retries once. A
// training step therefore allocates nothing new after the first step.
//
// Two levels: each thread keeps a small lock-free stack per class for blocks up to 4 MiB (the
// op-overhead path: no mutex, no hashing), and overflows into / refills from global per-class
// lists under one mutex. A thread's stacks drain into the global lists when it exits.
// Blocks are 64-byte aligned.
//
// Bypass: LATENT_NO_CACHING_ALLOCATOR=1 in the environment, or the build option
// caching_allocator=false (the sanitizer build), sends every request straight to the system, so
// AddressSanitizer and LeakSanitizer see each use-after-free and leak.
#include "allocator.h"

#include <new>

#include "small_alloc.h"

#include <array>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "error.h"

#define LATENT_TLS thread_local __attribute__((tls_model("initial-exec")))

namespace latent {
namespace {

constexpr size_t kAlignment = 64;
constexpr int kSmallClasses = 64;                 // 64 B .. 4 KiB in 64-byte steps
constexpr int kNumClasses = kSmallClasses + 4 * (48 - 12);  // up to 256 TiB
constexpr int kLocalClasses = kSmallClasses + 4 * (22 - 12);  // per-thread stacks up to 4 MiB
constexpr int kLocalDepth = 8;

struct SizeClass {
  int index;
  size_t bytes;
};

SizeClass size_class(size_t n) {
  if (n <= 4096) {
    size_t k = (n + 63) / 64;
    return {static_cast<int>(k == 0 ? 0 : k - 1), (k == 0 ? 1 : k) * 64};
  }
  const int log2p = 63 - std::countl_zero(static_cast<uint64_t>(n - 1));  // p = 2^log2p < n <= 2p
  const size_t p = size_t{1} << log2p, step = p / 4;
  const size_t k = (n - p + step - 1) / step;  // 1..4
  return {kSmallClasses + 4 * (log2p - 12) + static_cast<int>(k) - 1, p + k * step};
}

void* system_allocate(size_t n) { return std::aligned_alloc(kAlignment, n); }

/// Per-thread stacks; trivially destructible so it stays valid for late frees during exit.
struct LocalCache {
  void* slots[kLocalClasses][kLocalDepth];
  uint8_t count[kLocalClasses];
  bool registered;  // the owner that drains it at thread exit exists
  bool dead;        // the owner ran: go straight to the global lists
  size_t hits;
};
LATENT_TLS LocalCache local_cache{};

class CachingCpuAllocator final : public Allocator {
 public:
  CachingCpuAllocator() : caching_(caching_allocator_enabled()) {}

  void* allocate(size_t nbytes) override {
    const SizeClass c = size_class(nbytes == 0 ? 1 : nbytes);
    if (!caching_ || c.index >= kNumClasses) return checked(system_allocate(c.bytes), nbytes);
    LocalCache& local = local_cache;
    if (c.index < kLocalClasses && !local.dead) {
      if (local.count[c.index] > 0) {
        ++local.hits;
        return local.slots[c.index][--local.count[c.index]];
      }
      register_thread(local);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      std::vector<void*>& list = free_[c.index];
      if (!list.empty()) {
        void* p = list.back();
        list.pop_back();
        bytes_cached_ -= c.bytes;
        ++hits_;
        return p;
      }
      ++system_allocations_;
    }
    void* p = system_allocate(c.bytes);
    if (!p) {
      flush();
      p = system_allocate(c.bytes);
    }
    return checked(p, nbytes);
  }

  void deallocate(void* ptr, size_t nbytes) override {
    if (!ptr) return;
    const SizeClass c = size_class(nbytes == 0 ? 1 : nbytes);
    if (!caching_ || c.index >= kNumClasses) return std::free(ptr);
    LocalCache& local = local_cache;
    if (c.index < kLocalClasses && !local.dead && local.registered && local.count[c.index] < kLocalDepth) {
      local.slots[c.index][local.count[c.index]++] = ptr;
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    free_[c.index].push_back(ptr);
    bytes_cached_ += c.bytes;
  }

  /// Moves a thread's stacks to the global lists (thread exit, empty_cpu_cache).
  void drain(LocalCache& local) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (int i = 0; i < kLocalClasses; ++i) {
      const size_t bytes = class_bytes(i);
      for (int k = 0; k < local.count[i]; ++k) {
        free_[i].push_back(local.slots[i][k]);
        bytes_cached_ += bytes;
      }
      local.count[i] = 0;
    }
    hits_ += local.hits;
    local.hits = 0;
  }

  void flush() {
    drain(local_cache);
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& list : free_) {
      for (void* p : list) std::free(p);
      list.clear();
    }
    bytes_cached_ = 0;
  }

  AllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t local_bytes = 0;
    for (int i = 0; i < kLocalClasses; ++i) local_bytes += local_cache.count[i] * class_bytes(i);
    return {system_allocations_, hits_ + local_cache.hits, bytes_cached_ + local_bytes, caching_};
  }

 private:
  static size_t class_bytes(int index) {
    if (index < kSmallClasses) return static_cast<size_t>(index + 1) * 64;
    const int octave = (index - kSmallClasses) / 4, k = (index - kSmallClasses) % 4 + 1;
    const size_t p = size_t{4096} << octave;
    return p + static_cast<size_t>(k) * (p / 4);
  }
  void register_thread(LocalCache& local);
  static void* checked(void* p, size_t nbytes) {
    if (!p) fail("allocator", "out of memory allocating {} bytes on cpu", nbytes);
    return p;
  }
  bool caching_;
  std::mutex mutex_;
  std::array<std::vector<void*>, kNumClasses> free_;
  size_t bytes_cached_ = 0, hits_ = 0, system_allocations_ = 0;
};

CachingCpuAllocator& instance() {
  // Leaked on purpose: storages released during static destruction must still find it.
  static auto* allocator = new CachingCpuAllocator();
  return *allocator;
}

/// Drains the thread's stacks when the thread exits.
struct LocalCacheOwner {
  ~LocalCacheOwner() {
    instance().drain(local_cache);
    local_cache.dead = true;
  }
};

void CachingCpuAllocator::register_thread(LocalCache& local) {
  if (local.registered) return;
  thread_local LocalCacheOwner owner;  // constructing it schedules the drain at thread exit
  (void)owner;
  local.registered = true;
}

// ---- small-object pool (small_alloc.h) ----

constexpr size_t kSmallGranule = 16, kSmallMax = 1024, kSmallDepth = 256;
constexpr int kSmallPoolClasses = kSmallMax / kSmallGranule;

struct FreeBlock {
  FreeBlock* next;
};
/// Trivially destructible so frees that happen during thread exit still find valid storage.
struct SmallPool {
  FreeBlock* head[kSmallPoolClasses];
  uint16_t count[kSmallPoolClasses];
  bool registered, dead;
};
LATENT_TLS SmallPool small_pool{};

struct SmallPoolOwner {
  ~SmallPoolOwner() {
    for (int i = 0; i < kSmallPoolClasses; ++i) {
      while (FreeBlock* b = small_pool.head[i]) {
        small_pool.head[i] = b->next;
        ::operator delete(b);
      }
      small_pool.count[i] = 0;
    }
    small_pool.dead = true;
  }
};

bool small_pool_enabled() {
  static const bool enabled = caching_allocator_enabled();
  return enabled;
}

}  // namespace

void* small_allocate(size_t bytes) {
  if (bytes == 0 || bytes > kSmallMax || !small_pool_enabled()) return ::operator new(bytes);
  SmallPool& pool = small_pool;
  const size_t c = (bytes - 1) / kSmallGranule;
  if (FreeBlock* b = pool.head[c]) {
    pool.head[c] = b->next;
    --pool.count[c];
    return b;
  }
  if (!pool.registered && !pool.dead) {
    thread_local SmallPoolOwner owner;  // frees the lists when the thread exits
    (void)owner;
    pool.registered = true;
  }
  return ::operator new((c + 1) * kSmallGranule);
}

void small_deallocate(void* p, size_t bytes) noexcept {
  if (!p) return;
  if (bytes == 0 || bytes > kSmallMax || !small_pool_enabled()) return ::operator delete(p);
  SmallPool& pool = small_pool;
  const size_t c = (bytes - 1) / kSmallGranule;
  if (pool.dead || !pool.registered || pool.count[c] >= kSmallDepth) return ::operator delete(p);
  auto* b = static_cast<FreeBlock*>(p);
  b->next = pool.head[c];
  pool.head[c] = b;
  ++pool.count[c];
}

Allocator& cpu_allocator() { return instance(); }
AllocatorStats cpu_allocator_stats() { return instance().stats(); }
void empty_cpu_cache() { instance().flush(); }

bool caching_allocator_enabled() {
#ifdef LATENT_NO_CACHING_ALLOCATOR
  return false;
#else
  const char* env = std::getenv("LATENT_NO_CACHING_ALLOCATOR");
  return !(env && env[0] && std::strcmp(env, "0") != 0);
#endif
}

}  // namespace latent
