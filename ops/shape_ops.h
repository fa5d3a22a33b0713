// Views (no copy: the result shares storage and records a node whose backward maps the gradient
// back), and the copies contiguous / clone / to.
#pragma once

#include "../autograd/tensor.h"

namespace latent {

/// Same data, new shape; one dim may be -1. Fails on non-contiguous layouts it cannot view (use reshape).
Tensor view(const Tensor& x, const Shape& shape);
/// view() when the strides allow it, otherwise a contiguous copy.
Tensor reshape(const Tensor& x, const Shape& shape);
/// A view with dims dim0 and dim1 swapped (negative dims count from the end).
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
/// A view with dims reordered: result dim i is x's dim dims[i]; dims must be a permutation of 0..n-1.
Tensor permute(const Tensor& x, const Shape& dims);
/// Transpose of a tensor with at most 2 dims.
Tensor t(const Tensor& x);
/// length elements of `dim` from start.
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
/// Python-style x[start:end:step] along dim; negative start/end count from the end, out-of-range clamp.
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
/// Removes `dim` by taking index `index` of it.
Tensor select(const Tensor& x, int64_t dim, int64_t index);
/// Broadcasts size-1 dims (and new leading dims) to `shape`; -1 keeps a size.
Tensor expand(const Tensor& x, const Shape& shape);
/// A view without any size-1 dims.
Tensor squeeze(const Tensor& x);
/// A view without `dim` when its size is 1 (x's shape otherwise).
Tensor squeeze(const Tensor& x, int64_t dim);
/// A view with a new size-1 dim at position `dim` (in [-(n+1), n]).
Tensor unsqueeze(const Tensor& x, int64_t dim);
/// Merges dims start_dim..end_dim (inclusive) into one, as a view when possible (reshape); a 0-d
/// x gives shape [1]; throws "[flatten] start_dim 2 comes after end_dim 1".
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);

/// x itself when contiguous, else a contiguous copy (differentiable).
Tensor contiguous(const Tensor& x);
/// A contiguous copy (differentiable).
Tensor clone(const Tensor& x);
/// A copy converted to dtype (x itself when it already has it); the gradient converts back.
Tensor to_dtype(const Tensor& x, DType dtype);

}  // namespace latent
