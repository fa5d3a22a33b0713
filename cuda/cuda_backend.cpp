// CUDA backend host code: registration, layouts, elementwise/reduce/index/pool launches and
// host <-> device copies. See cuda_backend.h.
#include "cuda_backend.h"

#include <cuda_runtime.h>

#include <fmt/format.h>

#include "../ops/cpu/loops.h"

namespace latent::cuda {

void raise_cuda_error(const char* op, const char* what, int code, const char* name) {
  fail(op, "{}: {} (CUDA error {})", what, name, code);
}

void check_launch(const char* op) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) raise_cuda_error(op, "kernel launch", e, cudaGetErrorString(e));
}

void require_cuda(const char* op, const Tensor& t) {
  if (!t.defined()) fail(op, "argument is an undefined tensor");
  if (t.device().type != DeviceType::CUDA) fail(op, "a tensor on {} reached the CUDA backend; move it with .to(kCUDA)", t.device());
}

namespace {

/// Layout of K operands over `shape` (element strides, already broadcast), coalesced.
template <int K>
Layout<K> layout(const Shape& shape, const std::array<Shape, K>& strides) {
  std::array<int64_t, K> ones;
  ones.fill(1);
  const cpu::Layout<K> c = cpu::make_layout<K>(shape, strides, ones);
  Layout<K> l;
  l.ndim = c.ndim;
  l.numel = shape.numel();
  bool contiguous = c.ndim <= 1;
  for (int d = 0; d < c.ndim; ++d) {
    l.shape[d] = c.shape[d];
    for (int k = 0; k < K; ++k) {
      l.strides[k][d] = c.strides[k][d];
      if (c.strides[k][d] != 1) contiguous = false;
    }
  }
  l.contiguous = contiguous;
  return l;
}

/// Layout of `out` and inputs broadcast to out's shape.
template <int K>
Layout<K> layout_of(const Tensor& out, const std::array<const Tensor*, K - 1>& inputs) {
  std::array<Shape, K> strides;
  strides[0] = out.strides();
  for (int k = 1; k < K; ++k) strides[k] = cpu::broadcast_strides(*inputs[k - 1], out.shape());
  return layout<K>(out.shape(), strides);
}

void memcpy_checked(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return;
  cudaError_t e = cudaMemcpy(dst, src, bytes, kind);
  if (e != cudaSuccess) raise_cuda_error("to", "cudaMemcpy", e, cudaGetErrorString(e));
}

bool dense_same(const Tensor& a, const Tensor& b) {
  return a.is_contiguous() && b.is_contiguous() && a.shape() == b.shape() && a.dtype() == b.dtype();
}

PoolGeometry pool_geometry(const Tensor& input, const Tensor& output, const Pool2dParams* p = nullptr) {
  PoolGeometry g{};
  g.planes = input.shape()[0] * input.shape()[1];
  g.in_h = input.shape()[2];
  g.in_w = input.shape()[3];
  g.out_h = output.shape()[2];
  g.out_w = output.shape()[3];
  if (p) {
    for (int i = 0; i < 2; ++i) {
      g.kernel[i] = p->kernel[i];
      g.stride[i] = p->stride[i];
      g.padding[i] = p->padding[i];
      g.dilation[i] = p->dilation[i];
    }
    g.count_include_pad = p->count_include_pad;
  }
  return g;
}

template <int K>
IndexGeometry index_geometry(const Shape& shape, int dim, const std::array<const Tensor*, K>& ts) {
  IndexGeometry g;
  g.ndim = shape.size();
  g.dim = dim;
  for (int d = 0; d < g.ndim; ++d) {
    g.shape[d] = shape[d];
    for (int k = 0; k < K; ++k) g.strides[k][d] = ts[k]->strides()[d];
  }
  return g;
}

const void* cdata(const Tensor& t) { return t.raw_data(); }

// Registers the backend when the library loads and a GPU is present; otherwise records why not.
const bool registered = [] {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    set_device_unavailable_reason(
        DeviceType::CUDA, fmt::format("no CUDA GPU was found (cudaGetDeviceCount: {})",
                                      e != cudaSuccess ? cudaGetErrorString(e) : "0 devices"));
    cudaGetLastError();
    return false;
  }
  static CudaBackend instance;
  register_allocator(DeviceType::CUDA, &cuda_allocator());
  register_backend(DeviceType::CUDA, &instance);
  return true;
}();

}  // namespace

void CudaBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out, double p0, double p1) {
  launch_unary(static_cast<int>(op), dt_of(out), layout_of<2>(out, {&x}), out.raw_data(), cdata(x), p0, p1);
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, double p0, double p1) {
  launch_binary(static_cast<int>(op), dt_of(out), layout_of<3>(out, {&a, &b}), out.raw_data(), cdata(a), cdata(b),
                p0, p1);
}

void CudaBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  launch_where(dt_of(out), dt_of(cond), layout_of<4>(out, {&cond, &a, &b}), out.raw_data(), cdata(cond), cdata(a),
               cdata(b));
}

void CudaBackend::copy(const Tensor& src, const Tensor& out) {
  const bool src_cuda = src.device().type == DeviceType::CUDA, out_cuda = out.device().type == DeviceType::CUDA;
  if (src_cuda && out_cuda) {
    if (dense_same(src, out)) {
      cudaError_t e = cudaMemcpyAsync(out.raw_data(), src.raw_data(), out.numel() * out.element_size(),
                                      cudaMemcpyDeviceToDevice, 0);
      if (e != cudaSuccess) raise_cuda_error("copy", "cudaMemcpyAsync", e, cudaGetErrorString(e));
      return;
    }
    launch_copy(dt_of(out), dt_of(src), layout_of<2>(out, {&src}), out.raw_data(), cdata(src));
    return;
  }
  if (!src_cuda && out_cuda) {  // host -> device: a dense host buffer of out's dtype and shape
    Tensor host = src;
    if (!dense_same(src, out)) {
      host = empty(out.shape(), out.dtype());
      cpu_backend().copy(src, host);
    }
    Tensor dev = out.is_contiguous() ? out : empty(out.shape(), out.dtype(), out.device());
    memcpy_checked(dev.raw_data(), host.raw_data(), out.numel() * out.element_size(), cudaMemcpyHostToDevice);
    if (!dev.is_same(out)) launch_copy(dt_of(out), dt_of(dev), layout_of<2>(out, {&dev}), out.raw_data(), cdata(dev));
    return;
  }
  if (src_cuda && !out_cuda) {  // device -> host: a dense device buffer of out's dtype and shape
    Tensor dev = src;
    if (!dense_same(src, out)) {
      dev = empty(out.shape(), out.dtype(), src.device());
      launch_copy(dt_of(dev), dt_of(src), layout_of<2>(dev, {&src}), dev.raw_data(), cdata(src));
    }
    Tensor host = out.is_contiguous() ? out : empty(out.shape(), out.dtype());
    memcpy_checked(host.raw_data(), dev.raw_data(), out.numel() * out.element_size(), cudaMemcpyDeviceToHost);
    if (!host.is_same(out)) cpu_backend().copy(host, out);
    return;
  }
  cpu_backend().copy(src, out);
}

void CudaBackend::fill(const Tensor& out, double value) {
  launch_fill(dt_of(out), layout<1>(out.shape(), {out.strides()}), out.raw_data(), value);
}

void CudaBackend::reduce(ReduceOp op, const Tensor& x, const Tensor& out_in) {
  // Reduce into x's dtype (the kernel accumulates in float64 / int64); convert afterwards when out
  // has another dtype, as the CPU backend's final copy does.
  Tensor out = out_in.dtype() == x.dtype() ? out_in : empty(out_in.shape(), x.dtype(), x.device());
  Shape x_kept = x.strides(), reduced_shape = x.shape();
  for (int d = 0; d < x.dim(); ++d) {
    const bool reduced = out.shape()[d] == 1 && x.shape()[d] != 1;
    if (reduced) x_kept[d] = 0;
    else reduced_shape[d] = 1;
  }
  const Layout<2> kept = layout<2>(out.shape(), {out.strides(), x_kept});
  const Layout<1> red = layout<1>(reduced_shape, {x.strides()});
  if (red.numel == 0) {  // an empty reduction: the identity (sum 0; max/min of nothing is the CPU's init)
    fill(out, 0.0);
  } else {
    launch_reduce(static_cast<int>(op), dt_of(x), kept, red, out.raw_data(), cdata(x));
  }
  if (!out.is_same(out_in)) copy(out, out_in);
}

void CudaBackend::arg_reduce(ReduceOp op, const Tensor& x, int dim, const Tensor& values, const Tensor& indices) {
  const Layout<3> l = layout<3>(values.shape(), {values.strides(), indices.strides(), x.strides()});
  launch_arg_reduce(static_cast<int>(op), dt_of(x), l, x.shape()[dim], x.strides()[dim], values.raw_data(),
                    static_cast<int64_t*>(indices.raw_data()), cdata(x));
}

void CudaBackend::index_select(const Tensor& x, int dim, const Tensor& index, const Tensor& out) {
  const int64_t istride = index.strides().empty() ? 0 : index.strides()[0];
  launch_index_select(dt_of(x), index_geometry<2>(out.shape(), dim, {&out, &x}), out.raw_data(), cdata(x),
                      static_cast<const int64_t*>(cdata(index)), istride, out.numel());
}

void CudaBackend::index_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  const int64_t istride = index.strides().empty() ? 0 : index.strides()[0];
  launch_index_add(dt_of(out), index_geometry<2>(src.shape(), dim, {&src, &out}), out.raw_data(), cdata(src),
                   static_cast<const int64_t*>(cdata(index)), istride, src.numel());
}

void CudaBackend::gather(const Tensor& x, int dim, const Tensor& index, const Tensor& out) {
  launch_gather(dt_of(x), index_geometry<3>(out.shape(), dim, {&out, &x, &index}), out.raw_data(), cdata(x),
                static_cast<const int64_t*>(cdata(index)), out.numel());
}

void CudaBackend::scatter_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  launch_scatter_add(dt_of(out), index_geometry<3>(index.shape(), dim, {&src, &out, &index}), out.raw_data(),
                     cdata(src), static_cast<const int64_t*>(cdata(index)), index.numel());
}

// Random numbers are drawn on the host, in the CPU backend's order, and copied: CPU and CUDA runs
// with one seed see the same values.
void CudaBackend::uniform(const Tensor& out, Generator& gen, double low, double high) {
  Tensor host = empty(out.shape(), out.dtype());
  cpu_backend().uniform(host, gen, low, high);
  copy(host, out);
}

void CudaBackend::normal(const Tensor& out, Generator& gen, double mean, double std) {
  Tensor host = empty(out.shape(), out.dtype());
  cpu_backend().normal(host, gen, mean, std);
  copy(host, out);
}

bool CudaBackend::all_finite(const Tensor& x) {
  return launch_all_finite(dt_of(x), layout<1>(x.shape(), {x.strides()}), cdata(x));
}

void CudaBackend::adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                            const Tensor& max_exp_avg_sq, const AdamStep& s) {
  if (!is_floating(param.dtype())) fail("adam", "dtype {} is not supported: expected float32 or float64", param.dtype());
  const AdamArgs a{s.lr, s.beta1, s.beta2, s.eps, s.weight_decay, s.bias_correction1, s.bias_correction2, s.decoupled};
  launch_adam(dt_of(param), param.raw_data(), cdata(grad), exp_avg.raw_data(), exp_avg_sq.raw_data(),
              max_exp_avg_sq.defined() ? max_exp_avg_sq.raw_data() : nullptr, param.numel(), a);
}

// ---- pooling and resampling ----

void CudaBackend::max_pool2d(const Tensor& x, const Tensor& out, const Tensor& indices, const Pool2dParams& p) {
  launch_max_pool(dt_of(x), pool_geometry(x, out, &p), cdata(x), out.raw_data(),
                  static_cast<int64_t*>(indices.raw_data()));
}
void CudaBackend::max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_input) {
  launch_max_pool_backward(dt_of(grad_out), pool_geometry(grad_input, grad_out), cdata(grad_out),
                           static_cast<const int64_t*>(cdata(indices)), grad_input.raw_data());
}
void CudaBackend::avg_pool2d(const Tensor& x, const Tensor& out, const Pool2dParams& p) {
  launch_avg_pool(dt_of(x), pool_geometry(x, out, &p), cdata(x), out.raw_data());
}
void CudaBackend::avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_input, const Pool2dParams& p) {
  launch_avg_pool_backward(dt_of(grad_out), pool_geometry(grad_input, grad_out, &p), cdata(grad_out),
                           grad_input.raw_data());
}
void CudaBackend::adaptive_avg_pool2d(const Tensor& x, const Tensor& out) {
  launch_adaptive_avg_pool(dt_of(x), pool_geometry(x, out), cdata(x), out.raw_data());
}
void CudaBackend::adaptive_avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_input) {
  launch_adaptive_avg_pool_backward(dt_of(grad_out), pool_geometry(grad_input, grad_out), cdata(grad_out),
                                    grad_input.raw_data());
}
void CudaBackend::upsample2d(const Tensor& x, const Tensor& out, bool bilinear, bool align_corners) {
  launch_upsample(dt_of(x), pool_geometry(x, out), cdata(x), out.raw_data(), bilinear, align_corners);
}
void CudaBackend::upsample2d_backward(const Tensor& grad_out, const Tensor& grad_input, bool bilinear,
                                      bool align_corners) {
  launch_upsample_backward(dt_of(grad_out), pool_geometry(grad_input, grad_out), cdata(grad_out),
                           grad_input.raw_data(), bilinear, align_corners);
}

}  // namespace latent::cuda
