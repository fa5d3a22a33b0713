// CUDA reductions (sum/max/min over any dims, max/min with indices), index kernels
// (index_select/index_add/gather/scatter_add; the adds use atomics) and the fused Adam step.
#include <cfloat>
#include <climits>
#include <cmath>

#include "../ops/optim_math.h"
#include "common.cuh"

namespace latent::cuda {
namespace {

template <class T> struct Acc { using type = double; };
template <> struct Acc<int64_t> { using type = int64_t; };

template <class A> __device__ __forceinline__ A lowest();
template <> __device__ __forceinline__ double lowest<double>() { return -DBL_MAX; }
template <> __device__ __forceinline__ int64_t lowest<int64_t>() { return LLONG_MIN; }
template <class A> __device__ __forceinline__ A highest();
template <> __device__ __forceinline__ double highest<double>() { return DBL_MAX; }
template <> __device__ __forceinline__ int64_t highest<int64_t>() { return LLONG_MAX; }

// Max/min keep NaN (b != b), as the CPU loop does.
template <class A> __device__ __forceinline__ A combine(int op, A a, A b) {
  if (op == 0) return a + b;
  if (op == 1) return (b > a || b != b) ? b : a;
  return (b < a || b != b) ? b : a;
}

/// One block per output element: threads stride over the reduced elements, then a shared-memory tree.
template <class T>
__global__ void reduce_kernel(int op, Layout<2> kept, Layout<1> reduced, T* out, const T* x) {
  using A = typename Acc<T>::type;
  __shared__ A partial[kThreads];
  const A init = op == 0 ? A(0) : (op == 1 ? lowest<A>() : highest<A>());
  for (int64_t o = blockIdx.x; o < kept.numel; o += gridDim.x) {
    int64_t off[2];
    offsets_of(kept, o, off);  // off[0]: out, off[1]: x base
    A acc = init;
    for (int64_t r = threadIdx.x; r < reduced.numel; r += blockDim.x) {
      int64_t roff[1];
      offsets_of(reduced, r, roff);
      acc = combine<A>(op, acc, A(x[off[1] + roff[0]]));
    }
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
      if (threadIdx.x < s) partial[threadIdx.x] = combine<A>(op, partial[threadIdx.x], partial[threadIdx.x + s]);
      __syncthreads();
    }
    if (threadIdx.x == 0) out[off[0]] = static_cast<T>(partial[0]);
    __syncthreads();
  }
}

/// One thread per output of many short rows: the whole reduced extent in a loop (small inner).
template <class T>
__global__ void reduce_rows_kernel(int op, Layout<2> kept, Layout<1> reduced, T* out, const T* x) {
  using A = typename Acc<T>::type;
  const A init = op == 0 ? A(0) : (op == 1 ? lowest<A>() : highest<A>());
  LATENT_GRID_LOOP(o, kept.numel) {
    int64_t off[2];
    offsets_of(kept, o, off);
    A acc = init;
    for (int64_t r = 0; r < reduced.numel; ++r) {
      int64_t roff[1];
      offsets_of(reduced, r, roff);
      acc = combine<A>(op, acc, A(x[off[1] + roff[0]]));
    }
    out[off[0]] = static_cast<T>(acc);
  }
}

template <class T>
__global__ void arg_reduce_kernel(int op, Layout<3> l, int64_t len, int64_t step, T* values, int64_t* indices,
                                  const T* x) {
  LATENT_GRID_LOOP(o, l.numel) {
    int64_t off[3];
    offsets_of(l, o, off);
    const T* row = x + off[2];
    T best = row[0];
    int64_t best_i = 0;
    for (int64_t i = 1; i < len && !(best != best); ++i) {
      const T v = row[i * step];
      if ((op == 1 ? v > best : v < best) || v != v) {
        best = v;
        best_i = i;
      }
    }
    values[off[0]] = best;
    indices[off[1]] = best_i;
  }
}

/// Offsets of element e of g's index space in its operands, and its coordinate along g.dim.
template <int K>
__device__ __forceinline__ int64_t index_offsets(const IndexGeometry& g, int64_t e, int64_t (&off)[K]) {
  for (int k = 0; k < K; ++k) off[k] = 0;
  int64_t at_dim = 0;
  for (int d = g.ndim - 1; d >= 0; --d) {
    const int64_t idx = e % g.shape[d];
    e /= g.shape[d];
    if (d == g.dim) at_dim = idx;
    for (int k = 0; k < K; ++k) off[k] += idx * g.strides[k][d];
  }
  return at_dim;
}

template <class T>
__global__ void index_select_kernel(IndexGeometry g, T* out, const T* x, const int64_t* index, int64_t istride,
                                    int64_t n) {
  LATENT_GRID_LOOP(e, n) {
    int64_t off[2];
    const int64_t at = index_offsets<2>(g, e, off);
    const int64_t xs = g.strides[1][g.dim];
    out[off[0]] = x[off[1] + (index[at * istride] - at) * xs];
  }
}

template <class T>
__global__ void index_add_kernel(IndexGeometry g, T* out, const T* src, const int64_t* index, int64_t istride,
                                 int64_t n) {
  LATENT_GRID_LOOP(e, n) {
    int64_t off[2];
    const int64_t at = index_offsets<2>(g, e, off);
    const int64_t os = g.strides[1][g.dim];
    atomic_add(out + off[1] + (index[at * istride] - at) * os, src[off[0]]);
  }
}

template <class T>
__global__ void gather_kernel(IndexGeometry g, T* out, const T* x, const int64_t* index, int64_t n) {
  LATENT_GRID_LOOP(e, n) {
    int64_t off[3];
    const int64_t at = index_offsets<3>(g, e, off);
    const int64_t xs = g.strides[1][g.dim];
    out[off[0]] = x[off[1] + (index[off[2]] - at) * xs];
  }
}

template <class T>
__global__ void scatter_add_kernel(IndexGeometry g, T* out, const T* src, const int64_t* index, int64_t n) {
  LATENT_GRID_LOOP(e, n) {
    int64_t off[3];
    const int64_t at = index_offsets<3>(g, e, off);
    const int64_t os = g.strides[1][g.dim];
    atomic_add(out + off[1] + (index[off[2]] - at) * os, src[off[0]]);
  }
}

template <class T>
__global__ void adam_kernel(T* p, const T* g, T* m, T* v, T* vmax, int64_t n, AdamArgs s) {
  const math::AdamCoefficients<T> c = math::adam_coefficients<T>(s);  // the math: ops/optim_math.h
  LATENT_GRID_LOOP(i, n) {
    if (vmax) math::adam_update<T, true>(p[i], g[i], m[i], v[i], vmax + i, c);
    else math::adam_update<T, false>(p[i], g[i], m[i], v[i], nullptr, c);
  }
}

}  // namespace

void launch_reduce(int op, Dt dt, const Layout<2>& kept, const Layout<1>& reduced, void* out, const void* x) {
  if (kept.numel == 0) return;
  visit(dt, [&](auto tag) {
    using T = decltype(tag);
    // Few outputs or long rows: a block per output. Many short rows: a thread per output.
    if (reduced.numel >= 64 || kept.numel < 1024) {
      const unsigned grid = kept.numel < (int64_t{1} << 20) ? unsigned(kept.numel) : (1u << 20);
      reduce_kernel<T><<<grid, kThreads>>>(op, kept, reduced, static_cast<T*>(out), static_cast<const T*>(x));
    } else {
      reduce_rows_kernel<T><<<blocks_for(kept.numel), kThreads>>>(op, kept, reduced, static_cast<T*>(out),
                                                                  static_cast<const T*>(x));
    }
  });
  check_launch("reduce");
}

void launch_arg_reduce(int op, Dt dt, const Layout<3>& l, int64_t len, int64_t step, void* values, int64_t* indices,
                       const void* x) {
  if (l.numel == 0) return;
  visit(dt, [&](auto tag) {
    using T = decltype(tag);
    arg_reduce_kernel<T><<<blocks_for(l.numel), kThreads>>>(op, l, len, step, static_cast<T*>(values), indices,
                                                            static_cast<const T*>(x));
  });
  check_launch("arg_reduce");
}

void launch_index_select(Dt dt, const IndexGeometry& g, void* out, const void* x, const int64_t* index,
                         int64_t index_stride, int64_t numel) {
  if (numel == 0) return;
  visit(dt, [&](auto tag) {
    using T = decltype(tag);
    index_select_kernel<T><<<blocks_for(numel), kThreads>>>(g, static_cast<T*>(out), static_cast<const T*>(x), index,
                                                            index_stride, numel);
  });
  check_launch("index_select");
}

void launch_index_add(Dt dt, const IndexGeometry& g, void* out, const void* src, const int64_t* index,
                      int64_t index_stride, int64_t numel) {
  if (numel == 0) return;
  visit(dt, [&](auto tag) {
    using T = decltype(tag);
    index_add_kernel<T><<<blocks_for(numel), kThreads>>>(g, static_cast<T*>(out), static_cast<const T*>(src), index,
                                                         index_stride, numel);
  });
  check_launch("index_add");
}

void launch_gather(Dt dt, const IndexGeometry& g, void* out, const void* x, const int64_t* index, int64_t numel) {
  if (numel == 0) return;
  visit(dt, [&](auto tag) {
    using T = decltype(tag);
    gather_kernel<T><<<blocks_for(numel), kThreads>>>(g, static_cast<T*>(out), static_cast<const T*>(x), index, numel);
  });
  check_launch("gather");
}

void launch_scatter_add(Dt dt, const IndexGeometry& g, void* out, const void* src, const int64_t* index,
                        int64_t numel) {
  if (numel == 0) return;
  visit(dt, [&](auto tag) {
    using T = decltype(tag);
    scatter_add_kernel<T><<<blocks_for(numel), kThreads>>>(g, static_cast<T*>(out), static_cast<const T*>(src), index,
                                                           numel);
  });
  check_launch("scatter_add");
}

void launch_adam(Dt dt, void* param, const void* grad, void* m, void* v, void* vmax, int64_t n, const AdamArgs& a) {
  if (n == 0) return;
  visit_floating(dt, [&](auto tag) {
    using T = decltype(tag);
    adam_kernel<T><<<blocks_for(n), kThreads>>>(static_cast<T*>(param), static_cast<const T*>(grad),
                                                static_cast<T*>(m), static_cast<T*>(v), static_cast<T*>(vmax), n, a);
  });
  check_launch("adam");
}

}  // namespace latent::cuda
