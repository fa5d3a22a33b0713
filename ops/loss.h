// Loss functions (PyTorch's definitions). Each checks its arguments strictly: input and target
// must have the same shape (no silent broadcasting), one floating dtype and one device; class
// labels are int64.
//
// Reduction, for every loss here:
//   None: the per-element terms, in the input's shape ((N) for cross_entropy and nll_loss);
//   Sum:  the sum of those terms, a 0-d tensor;
//   Mean: that sum divided by the number of terms (N for cross_entropy and nll_loss), a 0-d
//         tensor; NaN when there are no terms, as in PyTorch.
#pragma once

#include "../autograd/tensor.h"

namespace latent {

/// How a loss combines its per-element terms (see the top of this file).
enum class Reduction { None, Mean, Sum };

/// (input - target)^2; gradients for input and target.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

/// |input - target|; the gradient is sign(input - target), 0 where they are equal (as in PyTorch).
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

/// -(t log p + (1 - t) log(1 - p)) on probabilities p, each log floored at -100 (PyTorch's rule), so
/// p of exactly 0 or 1 gives a finite loss; p outside [0, 1] gives NaN (t is not range-checked).
/// Gradients for probs and target.
Tensor binary_cross_entropy(const Tensor& probs, const Tensor& target, Reduction reduction = Reduction::Mean);

/// binary_cross_entropy(sigmoid(x), t), computed stably as max(x, 0) - x t + log1p(exp(-|x|));
/// the gradient is sigmoid(x) - t (and -x for the target).
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        Reduction reduction = Reduction::Mean);

/// -log_softmax(logits)[i, labels[i]] for logits (N, C) and int64 labels (N) in [0, C).
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction = Reduction::Mean);

/// -log_probs[i, labels[i]] for log_probs (N, C) and int64 labels (N) in [0, C).
Tensor nll_loss(const Tensor& log_probs, const Tensor& labels, Reduction reduction = Reduction::Mean);

/// KL(N(mu, exp(logvar)) || N(0, I)) per element: -0.5 (1 + logvar - mu^2 - exp(logvar)). Sum (the
/// default) gives the VAE term -0.5 * sum(1 + logvar - mu^2 - exp(logvar)); Mean divides it by numel.
Tensor gaussian_kl_divergence(const Tensor& mu, const Tensor& logvar, Reduction reduction = Reduction::Sum);

}  // namespace latent
