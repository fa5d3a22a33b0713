// Activation functions (PyTorch's definitions and defaults).
#pragma once

#include "../autograd/tensor.h"

namespace latent {

Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
/// log(1 + exp(beta x)) / beta; linear where beta x > threshold.
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);
Tensor elu(const Tensor& x, double alpha = 1.0);
Tensor selu(const Tensor& x);
/// Exact GELU: x * Phi(x) with the Gaussian CDF (erf form).
Tensor gelu(const Tensor& x);
/// The error function, 2/sqrt(pi) * integral of e^-t^2 from 0 to x (ONNX Erf).
Tensor erf(const Tensor& x);

}  // namespace latent
