// CPU memory for tensor storage, through a caching allocator (policy in allocator.cpp).
#pragma once

#include <cstddef>
#include <cstring>

namespace latent {

/// Allocator interface: one per device type.
class Allocator {
 public:
  virtual ~Allocator() = default;
  /// `nbytes` of device memory (suitably aligned for any element type); throws when the device is out of memory.
  virtual void* allocate(size_t nbytes) = 0;
  /// Returns memory from allocate(); `nbytes` must be the size asked for.
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
  /// Waits until all work queued on the device has finished (no-op for the CPU). Benchmarks call
  /// it through synchronize(Device) before reading a clock.
  virtual void synchronize() {}
  /// Returns cached blocks to the system.
  virtual void empty_cache() {}
  /// Copies nbytes from memory of this device to host memory (waits for queued work first).
  virtual void copy_to_host(void* dst, const void* src, size_t nbytes) { std::memcpy(dst, src, nbytes); }
};

/// The CPU allocator (cached unless LATENT_NO_CACHING_ALLOCATOR=1 or the build disables it).
Allocator& cpu_allocator();

/// Whether the caching allocators (CPU here, CUDA in cuda/cuda_allocator.cpp) cache: false when
/// LATENT_NO_CACHING_ALLOCATOR is set to anything but "0", or the build has caching_allocator=false.
bool caching_allocator_enabled();

/// Statistics of the CPU caching allocator, for tests and benchmarks.
struct AllocatorStats {
  size_t system_allocations = 0;  ///< calls that reached the system allocator
  size_t cache_hits = 0;          ///< allocations served from the cache
  size_t bytes_cached = 0;        ///< bytes held in free lists now
  bool caching = true;            ///< false when the cache is bypassed
};
/// A snapshot of the CPU allocator's counters.
AllocatorStats cpu_allocator_stats();
/// Frees every cached block back to the system.
void empty_cpu_cache();

}  // namespace latent
