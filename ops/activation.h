// Activation functions (PyTorch's definitions and defaults).
#pragma once

#include "../autograd/tensor.h"

namespace latent {

/// max(x, 0); int64 allowed; gradient 0 at 0.
Tensor relu(const Tensor& x);
/// x for x > 0, negative_slope * x otherwise; floating dtypes only.
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
/// 1 / (1 + exp(-x)); floating only; backward reads the saved output.
Tensor sigmoid(const Tensor& x);
/// Hyperbolic tangent; floating only; backward reads the saved output.
Tensor tanh(const Tensor& x);
/// log(1 + exp(beta x)) / beta; linear where beta x > threshold.
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);
/// x for x > 0, alpha * (exp(x) - 1) otherwise; floating only.
Tensor elu(const Tensor& x, double alpha = 1.0);
/// scale * elu(x, alpha) with PyTorch's constants (alpha 1.6732632423543772, scale 1.0507009873554805).
Tensor selu(const Tensor& x);
/// Exact GELU: x * Phi(x) with the Gaussian CDF (erf form).
Tensor gelu(const Tensor& x);
/// The error function, 2/sqrt(pi) * integral of e^-t^2 from 0 to x (ONNX Erf).
Tensor erf(const Tensor& x);

}  // namespace latent
