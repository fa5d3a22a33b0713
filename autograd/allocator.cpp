// CPU caching allocator.
//
// Policy: requests are rounded up to a size class (64 bytes below 4 KiB, otherwise the next multiple
// of 1/4 of the enclosing power of two, so at most 25% waste). Freed blocks go on the free list of
// their class and are handed out again to the next request of that class; nothing is returned to
// the system until empty_cpu_cache() or a failed system allocation, which flushes the cache and
// retries once. A training step therefore allocates nothing new after the first step.
// Blocks are 64-byte aligned (AVX-512 friendly). One mutex guards the lists.
//
// Bypass: LATENT_NO_CACHING_ALLOCATOR=1 in the environment, or the build option
// caching_allocator=false (the sanitizer build), sends every request straight to the system, so
// AddressSanitizer and LeakSanitizer see each use-after-free and leak.
#include "allocator.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "error.h"

namespace latent {
namespace {

constexpr size_t kAlignment = 64;

size_t round_size(size_t n) {
  if (n <= 4096) return (n + 63) & ~size_t{63};
  size_t p = 4096;
  while (p * 2 < n) p *= 2;  // p < n <= 2p
  size_t step = p / 4;
  return (n + step - 1) / step * step;
}

void* system_allocate(size_t n) { return std::aligned_alloc(kAlignment, n); }

bool caching_enabled() {
#ifdef LATENT_NO_CACHING_ALLOCATOR
  return false;
#else
  const char* env = std::getenv("LATENT_NO_CACHING_ALLOCATOR");
  return !(env && env[0] && std::strcmp(env, "0") != 0);
#endif
}

class CachingCpuAllocator final : public Allocator {
 public:
  CachingCpuAllocator() : caching_(caching_enabled()) {}
  ~CachingCpuAllocator() override { flush(); }

  void* allocate(size_t nbytes) override {
    if (nbytes == 0) nbytes = 1;
    if (!caching_) return checked(system_allocate(round_size(nbytes)), nbytes);
    size_t size = round_size(nbytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        bytes_cached_ -= size;
        ++hits_;
        return p;
      }
      ++system_allocations_;
    }
    void* p = system_allocate(size);
    if (!p) {
      flush();
      p = system_allocate(size);
    }
    return checked(p, nbytes);
  }

  void deallocate(void* ptr, size_t nbytes) override {
    if (!ptr) return;
    if (!caching_) return std::free(ptr);
    size_t size = round_size(nbytes == 0 ? 1 : nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    free_[size].push_back(ptr);
    bytes_cached_ += size;
  }

  void flush() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, list] : free_)
      for (void* p : list) std::free(p);
    free_.clear();
    bytes_cached_ = 0;
  }

  AllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {system_allocations_, hits_, bytes_cached_, caching_};
  }

 private:
  static void* checked(void* p, size_t nbytes) {
    if (!p) fail("allocator", "out of memory allocating {} bytes on cpu", nbytes);
    return p;
  }
  bool caching_;
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t bytes_cached_ = 0, hits_ = 0, system_allocations_ = 0;
};

CachingCpuAllocator& instance() {
  // Leaked on purpose: storages released during static destruction must still find it.
  static auto* allocator = new CachingCpuAllocator();
  return *allocator;
}

}  // namespace

Allocator& cpu_allocator() { return instance(); }
AllocatorStats cpu_allocator_stats() { return instance().stats(); }
void empty_cpu_cache() { instance().flush(); }

}  // namespace latent
