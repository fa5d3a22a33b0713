// Tensor's computing methods (declared in autograd/tensor.h) as one-line forwards to ops/.
#include "../autograd/tensor.h"
#include "backend.h"
#include "check.h"
#include "creation.h"
#include "elementwise.h"
#include "linalg.h"
#include "reduce.h"
#include "shape_ops.h"

namespace latent {

Tensor Tensor::view(const Shape& shape) const { return latent::view(*this, shape); }
Tensor Tensor::reshape(const Shape& shape) const { return latent::reshape(*this, shape); }
Tensor Tensor::transpose(int64_t d0, int64_t d1) const { return latent::transpose(*this, d0, d1); }
Tensor Tensor::permute(const Shape& dims) const { return latent::permute(*this, dims); }
Tensor Tensor::t() const { return latent::t(*this); }
Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const { return latent::narrow(*this, d, start, length); }
Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  return latent::slice(*this, d, start, end, step);
}
Tensor Tensor::select(int64_t d, int64_t index) const { return latent::select(*this, d, index); }
Tensor Tensor::expand(const Shape& shape) const { return latent::expand(*this, shape); }
Tensor Tensor::squeeze() const { return latent::squeeze(*this); }
Tensor Tensor::squeeze(int64_t d) const { return latent::squeeze(*this, d); }
Tensor Tensor::unsqueeze(int64_t d) const { return latent::unsqueeze(*this, d); }
Tensor Tensor::flatten(int64_t s, int64_t e) const { return latent::flatten(*this, s, e); }
Tensor Tensor::operator[](int64_t index) const { return latent::select(*this, 0, index); }

Tensor Tensor::contiguous() const { return latent::contiguous(*this); }
Tensor Tensor::clone() const { return latent::clone(*this); }
Tensor Tensor::to(DType dtype) const { return latent::to_dtype(*this, dtype); }
Tensor Tensor::to(Device device) const { return latent::to_device(*this, device); }

Tensor Tensor::sum() const { return latent::sum(*this); }
Tensor Tensor::sum(const Shape& dims, bool keepdim) const { return latent::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return latent::mean(*this); }
Tensor Tensor::mean(const Shape& dims, bool keepdim) const { return latent::mean(*this, dims, keepdim); }
Tensor Tensor::var() const { return latent::var(*this); }
Tensor Tensor::var(const Shape& dims, int64_t correction, bool keepdim) const {
  return latent::var(*this, dims, correction, keepdim);
}
Tensor Tensor::max() const { return latent::max(*this); }
Tensor Tensor::min() const { return latent::min(*this); }
Tensor Tensor::abs() const { return latent::abs(*this); }
Tensor Tensor::exp() const { return latent::exp(*this); }
Tensor Tensor::log() const { return latent::log(*this); }
Tensor Tensor::sqrt() const { return latent::sqrt(*this); }
Tensor Tensor::pow(double exponent) const { return latent::pow(*this, exponent); }
Tensor Tensor::clamp(double min, double max) const { return latent::clamp(*this, min, max); }
Tensor Tensor::matmul(const Tensor& other) const { return latent::matmul(*this, other); }

}  // namespace latent
