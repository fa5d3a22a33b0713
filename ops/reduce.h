// Reductions over all or given dims (keepdim as in PyTorch), and the softmax family.
#pragma once

#include <tuple>

#include "../autograd/tensor.h"

namespace latent {

Tensor sum(const Tensor& x);
/// Sum over `dims` (negative dims count from the end; duplicates are an error).
Tensor sum(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim = false);
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
