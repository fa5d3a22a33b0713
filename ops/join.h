// Joining and splitting along one dim: cat / stack copy into a new tensor; split / chunk return
// views of the input (narrow), so they cost nothing and are differentiable through narrow.
#pragma once

#include <vector>

#include "../autograd/tensor.h"

namespace latent {

/// Concatenates tensors along `dim`. Mixed dtypes promote (int64 < float32 < float64) as in PyTorch;
/// 1-d empty tensors (shape [0]) are skipped, PyTorch's legacy rule for accumulating into an empty start.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Joins equally shaped tensors along a new dim `dim` (in [-rank-1, rank]): cat of unsqueezed inputs.
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Views of `split_size` elements along dim; the last one may be smaller (one empty view for size 0).
/// Note: split(x, {3}) picks this overload; pass std::vector<int64_t>{3} for a one-element size list.
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
/// Views of the given sizes along dim; the sizes must be non-negative and sum to x.size(dim).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
/// Views of ceil(size / chunks) elements along dim, as in PyTorch: may return fewer than `chunks`.
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);

}  // namespace latent
