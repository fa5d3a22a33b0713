// Matrix products through the backend GEMM (on the CPU: blas_gemm, latent's AVX-512 float32 kernel or
// OpenBLAS; on CUDA: cuBLAS).
#pragma once

#include <cstdint>

#include "../autograd/tensor.h"

namespace latent {

/// The activation a fused linear applies in its output pass.
enum class Activation : uint8_t { None, Relu, Sigmoid, Tanh };
/// "none", "relu", "sigmoid", "tanh": the attribute the fused_linear op records.
const char* activation_name(Activation activation);

/// NumPy/PyTorch matmul: 1-d and 2-d operands, and batched products with broadcast batch dims.
/// "[matmul] shapes [128, 784] and [64, 128] cannot be multiplied: 784 != 64".
Tensor matmul(const Tensor& a, const Tensor& b);
/// 2-d matrix product (no broadcasting).
Tensor mm(const Tensor& a, const Tensor& b);
/// x W^T + b for x: (..., in), weight: (out, in), bias: (out) or undefined. The bias is written
/// into the output before the GEMM accumulates onto it, so it costs no separate pass.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});
/// activation(x W^T + b) as one op ("fused_linear", attribute `activation`): the activation runs
/// in place on the GEMM's output, and backward computes the activation's derivative and the bias
/// gradient in one pass. Same values as linear() followed by relu()/sigmoid()/tanh(); None is
/// plain linear().
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation);

}  // namespace latent
