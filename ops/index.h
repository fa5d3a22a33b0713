// Indexing along one dim with an int64 index tensor: index_select and gather read, scatter_add
// writes (out of place). Every index value is bounds-checked before a kernel runs.
#pragma once

#include "../autograd/tensor.h"

namespace latent {

/// Entries index[i] of x along dim; index is int64, 1-d (or 0-d for one entry); repeats are allowed.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
/// out[i][j] = x[i][index[i][j]] for dim 1 (likewise for other dims); index is int64 with x's rank and
/// index.size(d) <= x.size(d) for d != dim; the result has index's shape.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
/// A copy of self with src[i][j] added at [i][index[i][j]] for dim 1 (likewise for other dims); the
/// three have one rank, index.size(d) <= src.size(d) for all d and <= self.size(d) for d != dim.
Tensor scatter_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);

}  // namespace latent
