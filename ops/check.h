// Validation helpers shared by ops: each throws latent::Error naming the op and the values.
#pragma once

#include "../autograd/tensor.h"

namespace latent::check {

/// "[op] argument 'name' is an undefined tensor".
inline void defined(const char* op, const Tensor& t, const char* what = "input") {
  if (!t.defined()) fail(op, "argument '{}' is an undefined tensor", what);
}

/// Both tensors on one device ("[op] expected all tensors on one device; got cpu and cuda").
inline void same_device(const char* op, const Tensor& a, const Tensor& b) {
  if (a.device() != b.device()) fail(op, "expected all tensors on one device; got {} and {}", a.device(), b.device());
}

/// float32 or float64 ("[op] dtype int64 is not supported: expected float32 or float64").
inline void floating(const char* op, const Tensor& t) {
  if (!t.is_floating_point()) fail(op, "dtype {} is not supported: expected float32 or float64", t.dtype());
}

/// Throws "[op] dtypes differ: float32 and float64" unless a and b have one dtype.
inline void same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype()) fail(op, "dtypes differ: {} and {}", a.dtype(), b.dtype());
}

/// Throws "[op] shapes differ: [2, 3] and [3]" unless a and b have one shape.
inline void same_shape(const char* op, const Tensor& a, const Tensor& b) {
  if (!(a.shape() == b.shape())) fail(op, "shapes differ: {} and {}", a.shape(), b.shape());
}

}  // namespace latent::check
