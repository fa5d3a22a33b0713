#include "creation.h"

#include <cmath>

#include "apply.h"
#include "backend.h"
#include "check.h"

namespace latent {

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  check_device_available("full", device);
  Tensor out = empty(shape, dtype, device);
  backend(device, "full").fill(out, value);
  return out;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }
Tensor scalar_tensor(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

namespace {
/// Moves a freshly built CPU tensor to `device` (no autograd: factories make leaves).
Tensor placed(Tensor host, Device device) {
  if (device.is_cpu()) return host;
  NoGradGuard no_grad;
  return to_device(host, device);
}

struct ToDeviceOp {
  static constexpr const char* name = "to";
  struct Ctx : OpContext {
    Device source = kCPU;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, Device device) {
    // The backend of the non-CPU side copies across (CUDA: cudaMemcpy plus its strided kernels).
    Tensor out = empty(x.shape(), x.dtype(), device);
    backend(device.is_cpu() ? x.device() : device, name).copy(x, out);
    if (ctx) ctx->source = x.device();
    return out;
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) { return {to_device(g, ctx.source)}; }
};
}  // namespace

Tensor to_device(const Tensor& x, Device device) {
  check::defined("to", x);
  if (device == x.device()) return x;
  check_device_available("to", device);
  check_device_available("to", x.device());
  return apply<ToDeviceOp>(x, device);
}

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  if (step == 0) fail("arange", "step must be nonzero");
  if (!std::isfinite(start) || !std::isfinite(end)) fail("arange", "start {} and end {} must be finite", start, end);
  const double count = std::ceil((end - start) / step);
  const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  Tensor out = empty({n}, dtype);
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = out.data_ptr<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  return placed(out, device);
}
Tensor arange(int64_t end, DType dtype, Device device) {
  return arange(0.0, static_cast<double>(end), 1.0, dtype, device);
}

static Generator& gen_or_default(Generator* gen) { return gen ? *gen : default_generator(); }

static void check_random_dtype(const char* op, DType dtype) {
  if (!is_floating(dtype)) fail(op, "dtype {} is not supported: expected float32 or float64", dtype);
}

Tensor rand(const Shape& shape, DType dtype, Generator* gen, Device device) {
  check_random_dtype("rand", dtype);
  check_device_available("rand", device);
  Tensor out = empty(shape, dtype);
  cpu_backend().uniform(out, gen_or_default(gen), 0.0, 1.0);
  return placed(out, device);
}
Tensor randn(const Shape& shape, DType dtype, Generator* gen, Device device) {
  check_random_dtype("randn", dtype);
  check_device_available("randn", device);
  Tensor out = empty(shape, dtype);
  cpu_backend().normal(out, gen_or_default(gen), 0.0, 1.0);
  return placed(out, device);
}
Tensor rand_like(const Tensor& t, Generator* gen) { return rand(t.shape(), t.dtype(), gen, t.device()); }
Tensor randn_like(const Tensor& t, Generator* gen) { return randn(t.shape(), t.dtype(), gen, t.device()); }

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator* gen) {
  if (high <= low) fail("randint", "high {} must be greater than low {}", high, low);
  Tensor out = empty(shape, kInt64);
  Generator& g = gen_or_default(gen);
  int64_t* p = out.data_ptr<int64_t>();
  for (int64_t i = 0, n = out.numel(); i < n; ++i)
    p[i] = low + static_cast<int64_t>(g.below(static_cast<uint64_t>(high - low)));
  return out;
}

Tensor randperm(int64_t n, Generator* gen) {
  if (n < 0) fail("randperm", "n must be non-negative; got {}", n);
  Tensor out = arange(n);
  Generator& g = gen_or_default(gen);
  int64_t* p = out.data_ptr<int64_t>();
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[g.below(static_cast<uint64_t>(i + 1))]);
  return out;
}

namespace {
template <class T>
Tensor from_values(const T* values, size_t count, const Shape& shape, const TensorOptions& options,
                   DType fallback = dtype_of<T>::value) {
  if (static_cast<int64_t>(count) != shape.numel())
    fail("tensor", "{} values do not fill shape {} ({} elements)", count, shape, shape.numel());
  const DType dtype = options.dtype_set_ ? options.dtype_ : fallback;
  Tensor out = empty(shape, dtype);
  visit_dtype(dtype, [&](auto tag) {
    using D = decltype(tag);
    D* p = out.data_ptr<D>();
    for (size_t i = 0; i < count; ++i) p[i] = static_cast<D>(values[i]);
  });
  out = placed(out, options.device_);
  if (options.requires_grad_) out.requires_grad_(true);
  return out;
}
}  // namespace

Tensor tensor(std::initializer_list<float> values, const TensorOptions& options) {
  return from_values(values.begin(), values.size(), {static_cast<int64_t>(values.size())}, options);
}
Tensor from_vector(const std::vector<float>& values, const Shape& shape, const TensorOptions& options) {
  return from_values(values.data(), values.size(), shape, options);
}
Tensor from_vector(const std::vector<double>& values, const Shape& shape, const TensorOptions& options) {
  return from_values(values.data(), values.size(), shape, options);
}
Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape, const TensorOptions& options) {
  return from_values(values.data(), values.size(), shape, options);
}
Tensor tensor(std::initializer_list<std::initializer_list<double>> rows, const TensorOptions& options) {
  std::vector<double> flat;
  const size_t cols = rows.size() ? rows.begin()->size() : 0;
  for (const auto& row : rows) {
    if (row.size() != cols) fail("tensor", "rows have different lengths: {} and {}", cols, row.size());
    flat.insert(flat.end(), row.begin(), row.end());
  }
  return from_values(flat.data(), flat.size(), {static_cast<int64_t>(rows.size()), static_cast<int64_t>(cols)},
                     options, kFloat32);
}

}  // namespace latent
