// Tensor factories: from data, constants, ranges and random numbers.
#pragma once

#include <initializer_list>
#include <vector>

#include "../autograd/tensor.h"
#include "random.h"

namespace latent {

/// Options for factories, LibTorch style: latent::TensorOptions().dtype(kFloat64).requires_grad(true).
struct TensorOptions {
  /// Element type set by dtype() (default float32).
  DType dtype_ = kFloat32;
  /// Whether dtype() was called.
  bool dtype_set_ = false;  // unset: factories from data follow the C++ element type
  /// Device set by device() (default CPU).
  Device device_ = kCPU;
  /// Whether the tensor is made a leaf that requires grad.
  bool requires_grad_ = false;
  /// A copy with element type `d`.
  TensorOptions dtype(DType d) const { auto o = *this; o.dtype_ = d; o.dtype_set_ = true; return o; }
  /// A copy with device `d`.
  TensorOptions device(Device d) const { auto o = *this; o.device_ = d; return o; }
  /// A copy whose tensors require grad (a leaf of the graph) when `r`.
  TensorOptions requires_grad(bool r = true) const { auto o = *this; o.requires_grad_ = r; return o; }
};

/// A new tensor of `shape` filled with 0.
Tensor zeros(const Shape& shape, DType dtype = kFloat32, Device device = kCPU);
/// A new tensor of `shape` filled with 1.
Tensor ones(const Shape& shape, DType dtype = kFloat32, Device device = kCPU);
/// A new tensor of `shape` filled with `value` (converted to dtype).
Tensor full(const Shape& shape, double value, DType dtype = kFloat32, Device device = kCPU);
/// Zeros with t's shape, dtype and device.
Tensor zeros_like(const Tensor& t);
/// Ones with t's shape, dtype and device.
Tensor ones_like(const Tensor& t);
/// An uninitialised tensor with t's shape, dtype and device (values are garbage until written).
Tensor empty_like(const Tensor& t);
/// start, start + step, ... below end (int64 unless a dtype is given).
Tensor arange(double start, double end, double step = 1.0, DType dtype = kInt64, Device device = kCPU);
/// 0, 1, ..., end - 1 (empty when end <= 0).
Tensor arange(int64_t end, DType dtype = kInt64, Device device = kCPU);
/// Uniform [0, 1) and standard normal numbers from `gen` (the default generator if null). On any
/// device the numbers are drawn on the host in row-major order and copied, so CPU and CUDA give
/// the same values for the same seed.
Tensor rand(const Shape& shape, DType dtype = kFloat32, Generator* gen = nullptr, Device device = kCPU);
/// Standard normal numbers (see rand); dtype must be float32 or float64.
/// @{
Tensor randn(const Shape& shape, DType dtype = kFloat32, Generator* gen = nullptr, Device device = kCPU);
/// @}
/// Uniform [0, 1) numbers with t's shape, dtype and device (see rand).
Tensor rand_like(const Tensor& t, Generator* gen = nullptr);
/// Standard normal numbers with t's shape, dtype and device (see rand).
Tensor randn_like(const Tensor& t, Generator* gen = nullptr);
/// Uniform integers in [low, high), int64.
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator* gen = nullptr);
/// A random permutation of 0..n-1 (Fisher-Yates), int64.
Tensor randperm(int64_t n, Generator* gen = nullptr);

/// A 1-d float32 tensor from values (another dtype through options).
Tensor tensor(std::initializer_list<float> values, const TensorOptions& options = {});
/// A tensor of `shape` from row-major values ("[tensor] 5 values do not fill shape [2, 3]"); unless
/// options name a dtype it follows the element type (float32, float64, int64).
Tensor from_vector(const std::vector<float>& values, const Shape& shape, const TensorOptions& options = {});
/// As the float overload; float64 (or int64) elements unless options name a dtype.
/// @{
Tensor from_vector(const std::vector<double>& values, const Shape& shape, const TensorOptions& options = {});
Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape, const TensorOptions& options = {});
/// @}
/// A 2-d float32 tensor from nested braces: latent::tensor({{1, 2}, {3, 4}}).
Tensor tensor(std::initializer_list<std::initializer_list<double>> rows, const TensorOptions& options = {});
/// A one-element 0-d tensor.
Tensor scalar_tensor(double value, DType dtype = kFloat32, Device device = kCPU);

/// A copy of x on `device` (x itself when it is already there), differentiable like PyTorch's
/// .to(device): the gradient flows back to x's device. Tensor::to(Device) calls this.
/// Throws "[to] device cuda is not available: ..." when the device is missing.
Tensor to_device(const Tensor& x, Device device);

}  // namespace latent
