// Elementwise math with NumPy broadcasting and dtype promotion (int64 < float32 < float64).
#pragma once

#include "../autograd/tensor.h"
#include "scalar_math.h"

namespace latent {

/// a + alpha * b.
Tensor add(const Tensor& a, const Tensor& b, double alpha = 1.0);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
/// a ** b elementwise.
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, double exponent);
Tensor pow(double base, const Tensor& exponent);
/// Elementwise max / min of two tensors (gradient goes to the larger / smaller; ties to a).
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);

Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
Tensor rsub(double a, const Tensor& b);  ///< a - b
Tensor rdiv(double a, const Tensor& b);  ///< a / b

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor square(const Tensor& x);
/// Clamps into [min, max] (gradient 1 inside, 0 outside).
Tensor clamp(const Tensor& x, double min, double max);

/// cond != 0 ? a : b, broadcasting all three; cond may have any dtype and gets no gradient.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

/// Comparisons return 0/1 in the promoted dtype of the operands (latent has no bool dtype), no grad.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, double b);
Tensor operator<=(const Tensor& a, double b);
Tensor operator>(const Tensor& a, double b);
Tensor operator>=(const Tensor& a, double b);

/// Runs unary kernel `op` on x into a new tensor (no autograd): the building block of unary ops.
Tensor unary_kernel(const char* name, UnaryOp op, const Tensor& x, double p0 = 0, double p1 = 0);
/// Runs binary kernel `op` on broadcast a, b into a new tensor in their promoted dtype (no autograd).
Tensor binary_kernel(const char* name, BinaryOp op, const Tensor& a, const Tensor& b, double p0 = 1, double p1 = 0);

}  // namespace latent
