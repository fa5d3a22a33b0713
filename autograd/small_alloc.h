// A thread-local pool for the small objects every op creates (TensorImpl, Storage, tape nodes),
// used through std::allocate_shared so object and control block stay one allocation.
// Freed blocks go on per-thread free lists of 16-byte size classes up to 1 KiB (at most 256 per
// class) and are reused by the next object of that class; larger objects, overflow and the
// sanitizer build (caching off) go to operator new/delete.
#pragma once

#include <cstddef>

namespace latent {

/// `bytes` of memory from this thread's pool (operator new above 1 KiB); throws std::bad_alloc when out of memory.
void* small_allocate(size_t bytes);
/// Returns memory from small_allocate; `bytes` must be the size it was allocated with (any thread may free).
void small_deallocate(void* p, size_t bytes) noexcept;

/// std::allocator replacement over small_allocate.
template <class T>
struct PoolAllocator {
  /// The allocated type.
  using value_type = T;
  PoolAllocator() = default;
  /// Rebinding copy (the pool has no per-allocator state).
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) {}  // NOLINT: rebinding must be implicit
  /// Memory for n objects of T, from small_allocate.
  T* allocate(size_t n) { return static_cast<T*>(small_allocate(n * sizeof(T))); }
  /// Returns memory from allocate(n).
  void deallocate(T* p, size_t n) noexcept { small_deallocate(p, n * sizeof(T)); }
  /// Always true: every PoolAllocator shares the same pools.
  template <class U>
  bool operator==(const PoolAllocator<U>&) const { return true; }
};

}  // namespace latent
