// Device-side helpers shared by the .cu files: strided offsets, launch geometry, dtype switch.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels.h"

namespace latent::cuda {

inline constexpr int kThreads = 256;

/// Blocks for n elements with grid-stride loops (capped; the loops cover the rest).
inline unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  if (b < 1) b = 1;
  if (b > (int64_t{1} << 20)) b = int64_t{1} << 20;
  return static_cast<unsigned>(b);
}

/// Element offsets of linear index i in each of K operands of l.
template <int K>
__device__ __forceinline__ void offsets_of(const Layout<K>& l, int64_t i, int64_t (&off)[K]) {
  if (l.contiguous) {
    for (int k = 0; k < K; ++k) off[k] = i;
    return;
  }
  for (int k = 0; k < K; ++k) off[k] = 0;
  for (int d = l.ndim - 1; d >= 0; --d) {
    const int64_t n = l.shape[d];
    const int64_t idx = i % n;
    i /= n;
    for (int k = 0; k < K; ++k) off[k] += idx * l.strides[k][d];
  }
}

#define LATENT_GRID_LOOP(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)

/// Calls fn(T{}) with T the C++ type of dt.
template <class Fn>
void visit(Dt dt, Fn&& fn) {
  switch (dt) {
    case Dt::F32: fn(float{}); break;
    case Dt::F64: fn(double{}); break;
    case Dt::I64: fn(int64_t{}); break;
  }
}
template <class Fn>
void visit_floating(Dt dt, Fn&& fn) {
  if (dt == Dt::F32) fn(float{});
  else fn(double{});
}

/// atomicAdd for float, double and int64.
__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int64_t* p, int64_t v) {
  atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
}

}  // namespace latent::cuda
