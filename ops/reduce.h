// Reductions over all or given dims (keepdim as in PyTorch), and the softmax family.
#pragma once

#include <concepts>
#include <tuple>

#include "../autograd/tensor.h"

namespace latent {

/// Sum of all elements as a 0-d tensor of x's dtype (float64 accumulation for floats).
Tensor sum(const Tensor& x);
/// Sum over `dims` (negative dims count from the end; duplicates are an error).
Tensor sum(const Tensor& x, const Shape& dims, bool keepdim = false);
/// Mean of all elements as a 0-d tensor; floating dtypes only (throws "[mean] ..." for int64).
Tensor mean(const Tensor& x);
/// Mean over `dims` (empty: all); floating only; an empty reduction gives NaN, as in PyTorch.
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim = false);
/// Variance over all elements, or over `dims` (empty: all): sum((x - mean)^2) / (N - correction),
/// N the number of elements reduced. correction 1 (the default, as in PyTorch) is the unbiased
/// estimate, 0 the population variance; N <= correction gives inf or NaN, as in PyTorch.
/// Differentiable.
Tensor var(const Tensor& x);
/// Variance over `dims` (empty: all) with the given correction; floating only.
Tensor var(const Tensor& x, const Shape& dims, int64_t correction = 1, bool keepdim = false);

/// One dim as an integer: sum(x, 1) is sum(x, {1}), as PyTorch's x.sum(1). A template, so a braced
/// list (sum(x, {}) = all dims, sum(x, {1})) still means a Shape and never a dim number.
template <class I>
concept DimIndex = std::integral<I> && !std::same_as<I, bool>;
/// Sum over one dim (negative counts from the end).
template <DimIndex I>
Tensor sum(const Tensor& x, I dim, bool keepdim = false) {
  return sum(x, Shape{static_cast<int64_t>(dim)}, keepdim);
}
/// Mean over one dim (negative counts from the end).
template <DimIndex I>
Tensor mean(const Tensor& x, I dim, bool keepdim = false) {
  return mean(x, Shape{static_cast<int64_t>(dim)}, keepdim);
}
/// Variance over one dim with the given correction (see var above).
template <DimIndex I>
Tensor var(const Tensor& x, I dim, int64_t correction = 1, bool keepdim = false) {
  return var(x, Shape{static_cast<int64_t>(dim)}, correction, keepdim);
}
/// Largest / smallest element (gradient shared evenly among ties).
Tensor max(const Tensor& x);
/// Smallest element as a 0-d tensor (gradient shared evenly among ties).
Tensor min(const Tensor& x);
/// Values and int64 indices of the largest / smallest element along dim (first one on ties).
std::tuple<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
/// Values and int64 indices of the smallest element along dim (first one on ties).
std::tuple<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
/// Int64 indices of the largest element along dim (first on ties); no gradient.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
/// Int64 indices of the smallest element along dim (first on ties); no gradient.
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
/// log(sum(exp(x))) over dims, computed stably.
Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim = false);
/// exp(x) / sum(exp(x)) along dim, computed stably (max subtracted first).
Tensor softmax(const Tensor& x, int64_t dim);
/// x - logsumexp(x) along dim, computed stably; exported to ONNX as one LogSoftmax node.
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace latent
