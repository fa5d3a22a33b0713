// CUDA elementwise kernels: the X-macro lists of ops/scalar_math.h instantiated in device code
// (the very formulas the CPU backend runs), plus where, copy with dtype conversion, fill and
// all_finite. One grid-stride kernel per dtype holds every op of a list as a switch case around
// its own loop (the op is uniform, so the switch costs one branch per thread, and nvcc compiles
// 3 kernels instead of 150). Any strides and broadcasting go through Layout.
#include <cmath>

#include "../ops/scalar_math.h"
#include "common.cuh"

namespace latent::cuda {
namespace int_math {
// The math functions the lists call, for every dtype the kernels instantiate. The using-directive
// in the kernels makes these names visible at latent::cuda scope, which HIDES latent::math's
// `using std::log` (found only at latent scope), so each name needs its float and double
// overloads here too, not only the int64 one: with int64 alone, log(0.5) silently converted its
// argument to an integer (found by the first GPU run of tests/test_cuda.cpp). int64 arguments are
// computed in double, as <cmath>'s integral overloads do on the CPU.
#define LATENT_DEVICE_MATH1(name, fname)                                         \
  __device__ inline float name(float x) { return ::fname(x); }                  \
  __device__ inline double name(double x) { return ::name(x); }                 \
  __device__ inline double name(int64_t x) { return ::name(static_cast<double>(x)); }
LATENT_DEVICE_MATH1(log, logf)
LATENT_DEVICE_MATH1(sqrt, sqrtf)
LATENT_DEVICE_MATH1(tanh, tanhf)
LATENT_DEVICE_MATH1(expm1, expm1f)
LATENT_DEVICE_MATH1(log1p, log1pf)
LATENT_DEVICE_MATH1(erf, erff)
#undef LATENT_DEVICE_MATH1
__device__ inline float pow(float a, float b) { return ::powf(a, b); }
__device__ inline double pow(double a, double b) { return ::pow(a, b); }
__device__ inline double pow(int64_t a, int64_t b) { return ::pow(double(a), double(b)); }
__device__ inline float abs(float x) { return ::fabsf(x); }
__device__ inline double abs(double x) { return ::fabs(x); }
__device__ inline int64_t abs(int64_t x) { return x < 0 ? -x : x; }
}  // namespace int_math

namespace {

template <class T>
__global__ void unary_kernel(int op, Layout<2> l, T* out, const T* in, T p0, T p1) {
  using namespace latent::math;
  using namespace int_math;
  switch (op) {
#define LATENT_CASE(name, expr)                         \
  case static_cast<int>(UnaryOp::name):                 \
    LATENT_GRID_LOOP(i, l.numel) {                      \
      int64_t off[2];                                   \
      offsets_of(l, i, off);                            \
      const T x = in[off[1]];                           \
      out[off[0]] = static_cast<T>(expr);               \
    }                                                   \
    break;
    LATENT_UNARY_OPS(LATENT_CASE)
#undef LATENT_CASE
  }
}

template <class T>
__global__ void binary_kernel(int op, Layout<3> l, T* out, const T* in_a, const T* in_b, T p0, T p1) {
  using namespace latent::math;
  using namespace int_math;
  switch (op) {
#define LATENT_CASE(name, expr)                         \
  case static_cast<int>(BinaryOp::name):                \
    LATENT_GRID_LOOP(i, l.numel) {                      \
      int64_t off[3];                                   \
      offsets_of(l, i, off);                            \
      const T a = in_a[off[1]], b = in_b[off[2]];       \
      out[off[0]] = static_cast<T>(expr);               \
    }                                                   \
    break;
    LATENT_BINARY_OPS(LATENT_CASE)
#undef LATENT_CASE
  }
}

template <class T, class C>
__global__ void where_kernel(Layout<4> l, T* out, const C* cond, const T* a, const T* b) {
  LATENT_GRID_LOOP(i, l.numel) {
    int64_t off[4];
    offsets_of(l, i, off);
    out[off[0]] = cond[off[1]] != C(0) ? a[off[2]] : b[off[3]];
  }
}

template <class To, class From>
__global__ void copy_kernel(Layout<2> l, To* out, const From* src) {
  LATENT_GRID_LOOP(i, l.numel) {
    int64_t off[2];
    offsets_of(l, i, off);
    out[off[0]] = static_cast<To>(src[off[1]]);
  }
}

template <class T>
__global__ void fill_kernel(Layout<1> l, T* out, T value) {
  LATENT_GRID_LOOP(i, l.numel) {
    int64_t off[1];
    offsets_of(l, i, off);
    out[off[0]] = value;
  }
}

template <class T>
__global__ void finite_kernel(Layout<1> l, const T* x, int* bad) {
  LATENT_GRID_LOOP(i, l.numel) {
    int64_t off[1];
    offsets_of(l, i, off);
    if (!isfinite(x[off[0]])) *bad = 1;
  }
}

}  // namespace

void launch_unary(int op, Dt dt, const Layout<2>& l, void* out, const void* x, double p0, double p1) {
  if (l.numel == 0) return;
  visit(dt, [&](auto tag) {
    using T = decltype(tag);
    unary_kernel<T><<<blocks_for(l.numel), kThreads>>>(op, l, static_cast<T*>(out), static_cast<const T*>(x),
                                                       static_cast<T>(p0), static_cast<T>(p1));
  });
  check_launch("unary");
}

void launch_binary(int op, Dt dt, const Layout<3>& l, void* out, const void* a, const void* b, double p0, double p1) {
  if (l.numel == 0) return;
  visit(dt, [&](auto tag) {
    using T = decltype(tag);
    binary_kernel<T><<<blocks_for(l.numel), kThreads>>>(op, l, static_cast<T*>(out), static_cast<const T*>(a),
                                                        static_cast<const T*>(b), static_cast<T>(p0),
                                                        static_cast<T>(p1));
  });
  check_launch("binary");
}

void launch_where(Dt dt, Dt cond_dt, const Layout<4>& l, void* out, const void* cond, const void* a, const void* b) {
  if (l.numel == 0) return;
  visit(dt, [&](auto tag) {
    using T = decltype(tag);
    visit(cond_dt, [&](auto ctag) {
      using C = decltype(ctag);
      where_kernel<T, C><<<blocks_for(l.numel), kThreads>>>(l, static_cast<T*>(out), static_cast<const C*>(cond),
                                                            static_cast<const T*>(a), static_cast<const T*>(b));
    });
  });
  check_launch("where");
}

void launch_copy(Dt out_dt, Dt src_dt, const Layout<2>& l, void* out, const void* src) {
  if (l.numel == 0) return;
  visit(out_dt, [&](auto otag) {
    using To = decltype(otag);
    visit(src_dt, [&](auto stag) {
      using From = decltype(stag);
      copy_kernel<To, From><<<blocks_for(l.numel), kThreads>>>(l, static_cast<To*>(out), static_cast<const From*>(src));
    });
  });
  check_launch("copy");
}

void launch_fill(Dt dt, const Layout<1>& l, void* out, double value) {
  if (l.numel == 0) return;
  visit(dt, [&](auto tag) {
    using T = decltype(tag);
    fill_kernel<T><<<blocks_for(l.numel), kThreads>>>(l, static_cast<T*>(out), static_cast<T>(value));
  });
  check_launch("fill");
}

bool launch_all_finite(Dt dt, const Layout<1>& l, const void* x) {
  if (l.numel == 0 || dt == Dt::I64) return true;
  int* bad = nullptr;
  cudaError_t e = cudaMallocManaged(&bad, sizeof(int));  // tiny and rare (anomaly mode): no cache needed
  if (e != cudaSuccess) raise_cuda_error("all_finite", "cudaMallocManaged", e, cudaGetErrorString(e));
  *bad = 0;
  visit_floating(dt, [&](auto tag) {
    using T = decltype(tag);
    finite_kernel<T><<<blocks_for(l.numel), kThreads>>>(l, static_cast<const T*>(x), bad);
  });
  check_launch("all_finite");
  cudaDeviceSynchronize();
  const bool finite = *bad == 0;
  cudaFree(bad);
  return finite;
}

}  // namespace latent::cuda
