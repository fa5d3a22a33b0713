// Elementwise math with NumPy broadcasting and dtype promotion (int64 < float32 < float64).
#pragma once

#include "../autograd/tensor.h"
#include "scalar_math.h"

namespace latent {

/// a + alpha * b.
Tensor add(const Tensor& a, const Tensor& b, double alpha = 1.0);
/// a - b, broadcast, in the promoted dtype; throws "[sub] ..." naming both shapes when they do not broadcast.
Tensor sub(const Tensor& a, const Tensor& b);
/// a * b, broadcast, in the promoted dtype; throws naming both shapes when they do not broadcast.
Tensor mul(const Tensor& a, const Tensor& b);
/// a / b, broadcast; true division (int64 / int64 gives float32), division by zero gives inf/nan.
Tensor div(const Tensor& a, const Tensor& b);
/// a ** b elementwise.
Tensor pow(const Tensor& a, const Tensor& b);
/// a ** exponent; a must be float32 or float64 (throws "[pow] ..." for int64).
Tensor pow(const Tensor& a, double exponent);
/// base ** exponent elementwise; exponent must be floating (base <= 0 goes through the tensor form).
Tensor pow(double base, const Tensor& exponent);
/// Elementwise max / min of two tensors (gradient goes to the larger / smaller; ties to a).
Tensor maximum(const Tensor& a, const Tensor& b);
/// Elementwise min of two tensors, broadcast (gradient goes to the smaller; ties to a).
Tensor minimum(const Tensor& a, const Tensor& b);

/// a + b; an int64 tensor meeting a fractional b is promoted to float32, as in PyTorch.
Tensor add(const Tensor& a, double b);
/// a - b; an int64 tensor meeting a fractional b is promoted to float32.
Tensor sub(const Tensor& a, double b);
/// a * b; an int64 tensor meeting a fractional b is promoted to float32.
Tensor mul(const Tensor& a, double b);
/// a / b; an int64 tensor becomes float32 first (true division).
Tensor div(const Tensor& a, double b);
Tensor rsub(double a, const Tensor& b);  ///< a - b
Tensor rdiv(double a, const Tensor& b);  ///< a / b

/// -x, any dtype.
Tensor neg(const Tensor& x);
/// e^x; floating dtypes only (throws "[exp] ..." for int64).
Tensor exp(const Tensor& x);
/// Natural log; floating only; log(0) = -inf, negative inputs give nan.
Tensor log(const Tensor& x);
/// Square root; floating only; negative inputs give nan.
Tensor sqrt(const Tensor& x);
/// |x|, any dtype.
Tensor abs(const Tensor& x);
/// Rounds to the nearest integer, halves to even (ONNX Round: round(2.5) = 2); float dtypes only;
/// the gradient is zero, as PyTorch's.
Tensor round(const Tensor& x);
/// x * x (pow(x, 2), so floating only).
Tensor square(const Tensor& x);
/// Clamps into [min, max] (gradient 1 inside, 0 outside).
Tensor clamp(const Tensor& x, double min, double max);

/// cond != 0 ? a : b, broadcasting all three; cond may have any dtype and gets no gradient.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

/// Comparisons return 0/1 in the promoted dtype of the operands (latent has no bool dtype), no grad.
Tensor eq(const Tensor& a, const Tensor& b);
/// a != b as 0/1 in the promoted dtype, broadcast; no gradient.
Tensor ne(const Tensor& a, const Tensor& b);
/// a < b as 0/1 in the promoted dtype, broadcast; no gradient.
Tensor lt(const Tensor& a, const Tensor& b);
/// a <= b as 0/1 in the promoted dtype, broadcast; no gradient.
Tensor le(const Tensor& a, const Tensor& b);
/// a > b as 0/1 in the promoted dtype, broadcast; no gradient.
Tensor gt(const Tensor& a, const Tensor& b);
/// a >= b as 0/1 in the promoted dtype, broadcast; no gradient.
Tensor ge(const Tensor& a, const Tensor& b);
/// a == b against a scalar, as 0/1; no gradient.
Tensor eq(const Tensor& a, double b);
/// a != b against a scalar, as 0/1; no gradient.
Tensor ne(const Tensor& a, double b);
/// a < b against a scalar, as 0/1; no gradient.
Tensor lt(const Tensor& a, double b);
/// a <= b against a scalar, as 0/1; no gradient.
Tensor le(const Tensor& a, double b);
/// a > b against a scalar, as 0/1; no gradient.
Tensor gt(const Tensor& a, double b);
/// a >= b against a scalar, as 0/1; no gradient.
Tensor ge(const Tensor& a, double b);

/// add(a, b).
Tensor operator+(const Tensor& a, const Tensor& b);
/// sub(a, b).
Tensor operator-(const Tensor& a, const Tensor& b);
/// mul(a, b).
Tensor operator*(const Tensor& a, const Tensor& b);
/// div(a, b).
Tensor operator/(const Tensor& a, const Tensor& b);
/// neg(x).
Tensor operator-(const Tensor& x);
/// add(a, b).
Tensor operator+(const Tensor& a, double b);
/// sub(a, b).
Tensor operator-(const Tensor& a, double b);
/// mul(a, b).
Tensor operator*(const Tensor& a, double b);
/// div(a, b).
Tensor operator/(const Tensor& a, double b);
/// add(b, a).
Tensor operator+(double a, const Tensor& b);
/// rsub(a, b): a - b.
Tensor operator-(double a, const Tensor& b);
/// mul(b, a).
Tensor operator*(double a, const Tensor& b);
/// rdiv(a, b): a / b.
Tensor operator/(double a, const Tensor& b);
/// lt(a, b).
Tensor operator<(const Tensor& a, const Tensor& b);
/// le(a, b).
Tensor operator<=(const Tensor& a, const Tensor& b);
/// gt(a, b).
Tensor operator>(const Tensor& a, const Tensor& b);
/// ge(a, b).
Tensor operator>=(const Tensor& a, const Tensor& b);
/// lt(a, b).
Tensor operator<(const Tensor& a, double b);
/// le(a, b).
Tensor operator<=(const Tensor& a, double b);
/// gt(a, b).
Tensor operator>(const Tensor& a, double b);
/// ge(a, b).
Tensor operator>=(const Tensor& a, double b);

/// Runs unary kernel `op` on x into a new tensor (no autograd): the building block of unary ops.
Tensor unary_kernel(const char* name, UnaryOp op, const Tensor& x, double p0 = 0, double p1 = 0);
/// Runs binary kernel `op` on broadcast a, b into a new tensor in their promoted dtype (no autograd).
Tensor binary_kernel(const char* name, BinaryOp op, const Tensor& a, const Tensor& b, double p0 = 1, double p1 = 0);

}  // namespace latent
