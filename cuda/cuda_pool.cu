// CUDA pooling and resampling kernels, with the window and index rules of ops/cpu/cpu_pool.cpp
// (PyTorch's): one thread per output element forward; backward passes scatter with atomics.
// Sums accumulate in float64, as on the CPU. Also the conv bias add and a zero fill.
#include <cmath>

#include "common.cuh"

namespace latent::cuda {
namespace {

__device__ __forceinline__ int64_t adaptive_begin(int64_t i, int64_t in, int64_t out) { return i * in / out; }
__device__ __forceinline__ int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}
__device__ __forceinline__ int64_t nearest_source(int64_t dst, int64_t in, int64_t out) {
  const int64_t s = dst * in / out;
  return s < in - 1 ? s : in - 1;
}

struct Lerp {
  int64_t i0, i1;
  double w0, w1;
};
__device__ __forceinline__ Lerp lerp(int64_t d, int64_t in, int64_t out, bool align_corners) {
  const double scale = align_corners ? (out > 1 ? double(in - 1) / double(out - 1) : 0.0) : double(in) / double(out);
  double src = align_corners ? scale * double(d) : scale * (double(d) + 0.5) - 0.5;
  if (!align_corners && src < 0.0) src = 0.0;
  int64_t i0 = static_cast<int64_t>(src);
  if (i0 > in - 1) i0 = in - 1;
  const int64_t i1 = i0 + (i0 < in - 1 ? 1 : 0);
  const double w1 = src - double(i0);
  return {i0, i1, 1.0 - w1, w1};
}

/// Avg-pool window of output (oh, ow), clipped to the input; divisor 0 for an empty window.
struct Window {
  int64_t h0, h1, w0, w1, divisor;
};
__device__ __forceinline__ Window avg_window(const PoolGeometry& g, int64_t oh, int64_t ow) {
  int64_t h0 = oh * g.stride[0] - g.padding[0];
  int64_t h1 = min(h0 + g.kernel[0], g.in_h + g.padding[0]);
  const int64_t padded_h = h1 - h0;
  h0 = max(h0, int64_t(0));
  h1 = min(h1, g.in_h);
  int64_t w0 = ow * g.stride[1] - g.padding[1];
  int64_t w1 = min(w0 + g.kernel[1], g.in_w + g.padding[1]);
  const int64_t padded_w = w1 - w0;
  w0 = max(w0, int64_t(0));
  w1 = min(w1, g.in_w);
  const bool empty = h0 >= h1 || w0 >= w1;
  const int64_t divisor = empty ? 0 : g.count_include_pad ? padded_h * padded_w : (h1 - h0) * (w1 - w0);
  return {h0, h1, w0, w1, divisor};
}

template <class T>
__global__ void max_pool_kernel(PoolGeometry g, const T* x, T* out, int64_t* indices) {
  const int64_t out_size = g.out_h * g.out_w, n = g.planes * out_size;
  LATENT_GRID_LOOP(e, n) {
    const int64_t plane = e / out_size, k = e % out_size, oh = k / g.out_w, ow = k % g.out_w;
    const T* in = x + plane * g.in_h * g.in_w;
    const int64_t h0 = oh * g.stride[0] - g.padding[0], w0 = ow * g.stride[1] - g.padding[1];
    T best = -INFINITY;
    int64_t best_at = -1;
    for (int64_t i = 0; i < g.kernel[0]; ++i) {
      const int64_t ih = h0 + i * g.dilation[0];
      if (ih < 0 || ih >= g.in_h) continue;
      for (int64_t j = 0; j < g.kernel[1]; ++j) {
        const int64_t iw = w0 + j * g.dilation[1];
        if (iw < 0 || iw >= g.in_w) continue;
        const T v = in[ih * g.in_w + iw];
        if (best_at < 0 || v > best || isnan(v)) {
          best = v;
          best_at = ih * g.in_w + iw;
        }
      }
    }
    out[e] = best;
    indices[e] = best_at;
  }
}

template <class T>
__global__ void max_pool_backward_kernel(PoolGeometry g, const T* grad_out, const int64_t* indices, T* grad_input) {
  const int64_t out_size = g.out_h * g.out_w, n = g.planes * out_size;
  LATENT_GRID_LOOP(e, n) {
    const int64_t at = indices[e];
    if (at >= 0) atomic_add(grad_input + (e / out_size) * g.in_h * g.in_w + at, grad_out[e]);
  }
}

template <class T>
__global__ void avg_pool_kernel(PoolGeometry g, const T* x, T* out) {
  const int64_t out_size = g.out_h * g.out_w, n = g.planes * out_size;
  LATENT_GRID_LOOP(e, n) {
    const int64_t plane = e / out_size, k = e % out_size;
    const Window w = avg_window(g, k / g.out_w, k % g.out_w);
    const T* in = x + plane * g.in_h * g.in_w;
    double acc = 0;
    for (int64_t ih = w.h0; ih < w.h1; ++ih)
      for (int64_t iw = w.w0; iw < w.w1; ++iw) acc += double(in[ih * g.in_w + iw]);
    out[e] = w.divisor ? static_cast<T>(acc / double(w.divisor)) : T(0);
  }
}

template <class T>
__global__ void avg_pool_backward_kernel(PoolGeometry g, const T* grad_out, T* grad_input) {
  const int64_t out_size = g.out_h * g.out_w, n = g.planes * out_size;
  LATENT_GRID_LOOP(e, n) {
    const int64_t plane = e / out_size, k = e % out_size;
    const Window w = avg_window(g, k / g.out_w, k % g.out_w);
    const T share = w.divisor ? static_cast<T>(double(grad_out[e]) / double(w.divisor)) : T(0);
    T* gi = grad_input + plane * g.in_h * g.in_w;
    for (int64_t ih = w.h0; ih < w.h1; ++ih)
      for (int64_t iw = w.w0; iw < w.w1; ++iw) atomic_add(gi + ih * g.in_w + iw, share);
  }
}

template <class T>
__global__ void adaptive_kernel(PoolGeometry g, const T* x, T* out) {
  const int64_t out_size = g.out_h * g.out_w, n = g.planes * out_size;
  LATENT_GRID_LOOP(e, n) {
    const int64_t plane = e / out_size, k = e % out_size, oh = k / g.out_w, ow = k % g.out_w;
    const int64_t h0 = adaptive_begin(oh, g.in_h, g.out_h), h1 = adaptive_end(oh, g.in_h, g.out_h);
    const int64_t w0 = adaptive_begin(ow, g.in_w, g.out_w), w1 = adaptive_end(ow, g.in_w, g.out_w);
    const T* in = x + plane * g.in_h * g.in_w;
    double acc = 0;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) acc += double(in[ih * g.in_w + iw]);
    out[e] = static_cast<T>(acc / double((h1 - h0) * (w1 - w0)));
  }
}

template <class T>
__global__ void adaptive_backward_kernel(PoolGeometry g, const T* grad_out, T* grad_input) {
  const int64_t out_size = g.out_h * g.out_w, n = g.planes * out_size;
  LATENT_GRID_LOOP(e, n) {
    const int64_t plane = e / out_size, k = e % out_size, oh = k / g.out_w, ow = k % g.out_w;
    const int64_t h0 = adaptive_begin(oh, g.in_h, g.out_h), h1 = adaptive_end(oh, g.in_h, g.out_h);
    const int64_t w0 = adaptive_begin(ow, g.in_w, g.out_w), w1 = adaptive_end(ow, g.in_w, g.out_w);
    const T share = static_cast<T>(double(grad_out[e]) / double((h1 - h0) * (w1 - w0)));
    T* gi = grad_input + plane * g.in_h * g.in_w;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) atomic_add(gi + ih * g.in_w + iw, share);
  }
}

template <class T>
__global__ void upsample_kernel(PoolGeometry g, const T* x, T* out, bool bilinear, bool align_corners) {
  const int64_t out_size = g.out_h * g.out_w, n = g.planes * out_size;
  LATENT_GRID_LOOP(e, n) {
    const int64_t plane = e / out_size, k = e % out_size, oh = k / g.out_w, ow = k % g.out_w;
    const T* in = x + plane * g.in_h * g.in_w;
    if (!bilinear) {
      out[e] = in[nearest_source(oh, g.in_h, g.out_h) * g.in_w + nearest_source(ow, g.in_w, g.out_w)];
      continue;
    }
    const Lerp h = lerp(oh, g.in_h, g.out_h, align_corners), w = lerp(ow, g.in_w, g.out_w, align_corners);
    const T* r0 = in + h.i0 * g.in_w;
    const T* r1 = in + h.i1 * g.in_w;
    const double top = w.w0 * double(r0[w.i0]) + w.w1 * double(r0[w.i1]);
    const double bottom = w.w0 * double(r1[w.i0]) + w.w1 * double(r1[w.i1]);
    out[e] = static_cast<T>(h.w0 * top + h.w1 * bottom);
  }
}

template <class T>
__global__ void upsample_backward_kernel(PoolGeometry g, const T* grad_out, T* grad_input, bool bilinear,
                                         bool align_corners) {
  const int64_t out_size = g.out_h * g.out_w, n = g.planes * out_size;
  LATENT_GRID_LOOP(e, n) {
    const int64_t plane = e / out_size, k = e % out_size, oh = k / g.out_w, ow = k % g.out_w;
    T* gi = grad_input + plane * g.in_h * g.in_w;
    if (!bilinear) {
      atomic_add(gi + nearest_source(oh, g.in_h, g.out_h) * g.in_w + nearest_source(ow, g.in_w, g.out_w), grad_out[e]);
      continue;
    }
    const Lerp h = lerp(oh, g.in_h, g.out_h, align_corners), w = lerp(ow, g.in_w, g.out_w, align_corners);
    const double v = double(grad_out[e]);
    T* r0 = gi + h.i0 * g.in_w;
    T* r1 = gi + h.i1 * g.in_w;
    atomic_add(r0 + w.i0, static_cast<T>(h.w0 * w.w0 * v));
    atomic_add(r0 + w.i1, static_cast<T>(h.w0 * w.w1 * v));
    atomic_add(r1 + w.i0, static_cast<T>(h.w1 * w.w0 * v));
    atomic_add(r1 + w.i1, static_cast<T>(h.w1 * w.w1 * v));
  }
}

template <class T>
__global__ void add_bias_kernel(T* out, const T* bias, int64_t n, int64_t c, int64_t hw) {
  LATENT_GRID_LOOP(e, n * c * hw) { out[e] += bias[(e / hw) % c]; }
}

int64_t outputs(const PoolGeometry& g) { return g.planes * g.out_h * g.out_w; }

}  // namespace

void zero_fill(Dt dt, void* ptr, int64_t count) {
  if (count == 0) return;
  cudaError_t e = cudaMemsetAsync(ptr, 0, static_cast<size_t>(count) * (dt == Dt::F32 ? 4 : 8), 0);
  if (e != cudaSuccess) raise_cuda_error("zero_fill", "cudaMemsetAsync", e, cudaGetErrorString(e));
}

void launch_add_bias(Dt dt, void* out, const void* bias, int64_t n, int64_t c, int64_t hw) {
  if (n * c * hw == 0) return;
  visit_floating(dt, [&](auto tag) {
    using T = decltype(tag);
    add_bias_kernel<T><<<blocks_for(n * c * hw), kThreads>>>(static_cast<T*>(out), static_cast<const T*>(bias), n, c,
                                                              hw);
  });
  check_launch("conv2d bias");
}

#define LATENT_POOL_LAUNCH(op, kernel, ...)                                             \
  if (outputs(g) == 0) return;                                                          \
  visit_floating(dt, [&](auto tag) {                                                    \
    using T = decltype(tag);                                                            \
    kernel<T><<<blocks_for(outputs(g)), kThreads>>>(g, __VA_ARGS__);                    \
  });                                                                                   \
  check_launch(op);

void launch_max_pool(Dt dt, const PoolGeometry& g, const void* x, void* out, int64_t* indices) {
  LATENT_POOL_LAUNCH("max_pool2d", max_pool_kernel, static_cast<const T*>(x), static_cast<T*>(out), indices)
}
void launch_max_pool_backward(Dt dt, const PoolGeometry& g, const void* grad_out, const int64_t* indices,
                              void* grad_input) {
  zero_fill(dt, grad_input, g.planes * g.in_h * g.in_w);
  LATENT_POOL_LAUNCH("max_pool2d_backward", max_pool_backward_kernel, static_cast<const T*>(grad_out), indices,
                     static_cast<T*>(grad_input))
}
void launch_avg_pool(Dt dt, const PoolGeometry& g, const void* x, void* out) {
  LATENT_POOL_LAUNCH("avg_pool2d", avg_pool_kernel, static_cast<const T*>(x), static_cast<T*>(out))
}
void launch_avg_pool_backward(Dt dt, const PoolGeometry& g, const void* grad_out, void* grad_input) {
  zero_fill(dt, grad_input, g.planes * g.in_h * g.in_w);
  LATENT_POOL_LAUNCH("avg_pool2d_backward", avg_pool_backward_kernel, static_cast<const T*>(grad_out),
                     static_cast<T*>(grad_input))
}
void launch_adaptive_avg_pool(Dt dt, const PoolGeometry& g, const void* x, void* out) {
  LATENT_POOL_LAUNCH("adaptive_avg_pool2d", adaptive_kernel, static_cast<const T*>(x), static_cast<T*>(out))
}
void launch_adaptive_avg_pool_backward(Dt dt, const PoolGeometry& g, const void* grad_out, void* grad_input) {
  zero_fill(dt, grad_input, g.planes * g.in_h * g.in_w);
  LATENT_POOL_LAUNCH("adaptive_avg_pool2d_backward", adaptive_backward_kernel, static_cast<const T*>(grad_out),
                     static_cast<T*>(grad_input))
}
void launch_upsample(Dt dt, const PoolGeometry& g, const void* x, void* out, bool bilinear, bool align_corners) {
  LATENT_POOL_LAUNCH("upsample2d", upsample_kernel, static_cast<const T*>(x), static_cast<T*>(out), bilinear,
                     align_corners)
}
void launch_upsample_backward(Dt dt, const PoolGeometry& g, const void* grad_out, void* grad_input, bool bilinear,
                              bool align_corners) {
  zero_fill(dt, grad_input, g.planes * g.in_h * g.in_w);
  LATENT_POOL_LAUNCH("upsample2d_backward", upsample_backward_kernel, static_cast<const T*>(grad_out),
                     static_cast<T*>(grad_input), bilinear, align_corners)
}

}  // namespace latent::cuda
