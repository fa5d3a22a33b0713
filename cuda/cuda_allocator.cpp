// CUDA caching allocator.
//
// Policy: requests are rounded up to a size class (multiples of 512 bytes up to 1 MiB, then four
// classes per power of two, so at most 25% waste) and freed blocks go on a free list of their class,
// to be handed out again to the next request of that class. Nothing returns to the driver until
// empty_cache() or a failed cudaMalloc, which synchronises, frees every cached block and retries
// once. A training step therefore calls cudaMalloc only in its first iteration.
//
// Stream safety: every kernel, cuBLAS and cuDNN call and cudaMemcpy of latent goes to the legacy
// default stream, which orders all of them, so a block freed on the host can be reused at once: any
// kernel still reading it was queued before the kernel that will overwrite it.
//
// Bypass: LATENT_NO_CACHING_ALLOCATOR=1 (or the caching_allocator=false build) sends every request
// straight to cudaMalloc/cudaFree, for compute-sanitizer.
#include "cuda_backend.h"

#include "../autograd/allocator.h"

#include <cuda_runtime.h>

#include <bit>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace latent::cuda {
namespace {

size_t round_size(size_t n) {
  if (n == 0) n = 1;
  if (n <= (size_t{1} << 20)) return (n + 511) / 512 * 512;
  const int log2p = 63 - std::countl_zero(static_cast<uint64_t>(n - 1));  // p < n <= 2p
  const size_t p = size_t{1} << log2p, step = p / 4;
  return p + (n - p + step - 1) / step * step;
}

class CachingCudaAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    const size_t bytes = round_size(nbytes);
    if (caching_) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= bytes;
        return p;
      }
    }
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free error state of the runtime
      empty_cache();
      e = cudaMalloc(&p, bytes);
      if (e != cudaSuccess) {
        cudaGetLastError();
        size_t free_bytes = 0, total = 0;
        cudaMemGetInfo(&free_bytes, &total);
        fail("allocator", "out of memory allocating {} bytes on cuda ({}; {} MiB free of {} MiB)", nbytes,
             cudaGetErrorString(e), free_bytes >> 20, total >> 20);
      }
    }
    return p;
  }

  void deallocate(void* ptr, size_t nbytes) override {
    if (!ptr) return;
    if (!caching_) {
      cudaFree(ptr);  // errors at process exit (runtime already torn down) are harmless
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    const size_t bytes = round_size(nbytes);
    free_[bytes].push_back(ptr);
    cached_bytes_ += bytes;
  }

  void synchronize() override {
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) fail("cuda", "cudaDeviceSynchronize: {}", cudaGetErrorString(e));
  }

  void copy_to_host(void* dst, const void* src, size_t nbytes) override {
    if (nbytes == 0) return;
    const cudaError_t e = cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) fail("to", "cudaMemcpy to the host: {}", cudaGetErrorString(e));
  }

  void empty_cache() override {
    cudaDeviceSynchronize();
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [bytes, list] : free_) {
      for (void* p : list) cudaFree(p);
      list.clear();
    }
    cached_bytes_ = 0;
  }

 private:
  bool caching_ = caching_allocator_enabled();
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_bytes_ = 0;
};

}  // namespace

Allocator& cuda_allocator() {
  // Leaked on purpose: storages released during static destruction must still find it.
  static auto* allocator = new CachingCudaAllocator();
  return *allocator;
}

}  // namespace latent::cuda
