// Reductions over all or given dims (keepdim as in PyTorch), and the softmax family.
#pragma once

#include <concepts>
#include <tuple>

#include "../autograd/tensor.h"

namespace latent {

Tensor sum(const Tensor& x);
/// Sum over `dims` (negative dims count from the end; duplicates are an error).
Tensor sum(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim = false);
/// Variance over all elements, or over `dims` (empty: all): sum((x - mean)^2) / (N - correction),
/// N the number of elements reduced. correction 1 (the default, as in PyTorch) is the unbiased
/// estimate, 0 the population variance; N <= correction gives inf or NaN, as in PyTorch.
/// Differentiable.
Tensor var(const Tensor& x);
Tensor var(const Tensor& x, const Shape& dims, int64_t correction = 1, bool keepdim = false);

/// One dim as an integer: sum(x, 1) is sum(x, {1}), as PyTorch's x.sum(1). A template, so a braced
/// list (sum(x, {}) = all dims, sum(x, {1})) still means a Shape and never a dim number.
template <class I>
concept DimIndex = std::integral<I> && !std::same_as<I, bool>;
template <DimIndex I>
Tensor sum(const Tensor& x, I dim, bool keepdim = false) {
  return sum(x, Shape{static_cast<int64_t>(dim)}, keepdim);
}
template <DimIndex I>
Tensor mean(const Tensor& x, I dim, bool keepdim = false) {
  return mean(x, Shape{static_cast<int64_t>(dim)}, keepdim);
}
template <DimIndex I>
Tensor var(const Tensor& x, I dim, int64_t correction = 1, bool keepdim = false) {
  return var(x, Shape{static_cast<int64_t>(dim)}, correction, keepdim);
}
/// Largest / smallest element (gradient shared evenly among ties).
Tensor max(const Tensor& x);
Tensor min(const Tensor& x);
/// Values and int64 indices of the largest / smallest element along dim (first one on ties).
std::tuple<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
std::tuple<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
/// log(sum(exp(x))) over dims, computed stably.
Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace latent
