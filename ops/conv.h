// Convolutions with PyTorch's semantics, argument order and output shapes:
//   H_out = (H + 2 * padding - dilation * (kH - 1) - 1) / stride + 1                      (conv)
//   H_out = (H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1     (transposed)
// Inputs are batched (N, C, H, W) / (N, C, L), or unbatched (C, H, W) / (C, L) as in PyTorch: an
// unbatched input gives an unbatched output. Any strides are accepted (non-contiguous inputs are
// copied before the kernel runs). float32 and float64.
#pragma once

#include "../autograd/shape.h"
#include "../autograd/tensor.h"

namespace latent {

/// 2-d convolution (cross-correlation). x: (N, C_in, H, W), weight: (C_out, C_in / groups, kH, kW),
/// bias: (C_out) or undefined. "[conv2d] input has 3 channels but weight expects 2 (groups 1)".
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, Pair stride = 1, Pair padding = 0,
              Pair dilation = 1, int64_t groups = 1);

/// 2-d transposed convolution (the gradient of conv2d w.r.t. its input). x: (N, C_in, H, W),
/// weight: (C_in, C_out / groups, kH, kW), bias: (C_out) or undefined. output_padding adds rows and
/// columns at the bottom and right; each of its values must be smaller than the stride or the dilation.
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, Pair stride = 1,
                        Pair padding = 0, Pair output_padding = 0, int64_t groups = 1, Pair dilation = 1);

/// 1-d convolution. x: (N, C_in, L), weight: (C_out, C_in / groups, k), bias: (C_out) or undefined.
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, int64_t stride = 1,
              int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);

/// 1-d transposed convolution. x: (N, C_in, L), weight: (C_in, C_out / groups, k).
Tensor conv_transpose1d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, int64_t stride = 1,
                        int64_t padding = 0, int64_t output_padding = 0, int64_t groups = 1, int64_t dilation = 1);

}  // namespace latent
