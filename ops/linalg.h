// Matrix products through the backend GEMM (OpenBLAS on CPU).
#pragma once

#include "../autograd/tensor.h"

namespace latent {

/// NumPy/PyTorch matmul: 1-d and 2-d operands, and batched products with broadcast batch dims.
/// "[matmul] shapes [128, 784] and [64, 128] cannot be multiplied: 784 != 64".
Tensor matmul(const Tensor& a, const Tensor& b);
/// 2-d matrix product (no broadcasting).
Tensor mm(const Tensor& a, const Tensor& b);
/// x W^T + b for x: (..., in), weight: (out, in), bias: (out) or undefined. The bias is written
/// into the output before the GEMM accumulates onto it, so it costs no separate pass.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

}  // namespace latent
