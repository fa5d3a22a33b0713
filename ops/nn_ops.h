// Pooling, resampling, padding, batch normalization, dropout and pixel shuffle with PyTorch's
// semantics, argument order and defaults (torch.nn.functional). 2-d ops take (N, C, H, W) inputs,
// or unbatched (C, H, W) ones where PyTorch accepts them (pooling), which give unbatched outputs;
// 1-d pooling takes (N, C, L) or (C, L). Any strides are accepted; float32 and float64 (the pure
// data-movement ops, pad and pixel_shuffle, also take int64). A `Pair` attribute is {h, w}, and
// one number means both: `2` is {2, 2}.
#pragma once

#include <tuple>
#include <vector>

#include "../autograd/shape.h"
#include "../autograd/tensor.h"
#include "random.h"

namespace latent {

// ---- pooling ----
// H_out = floor or ceil((H + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1; in ceil mode a
// last window that would start in the right padding is dropped. A stride of 0 means the kernel size.
// padding must be at most half the kernel, and the (dilated) kernel must fit the padded input.

/// Max pooling: "[max_pool2d] kernel 3x3 is larger than the padded input 2x2". Padding counts as -inf;
/// NaN propagates. The gradient goes to the position of each window's maximum (the first on ties).
Tensor max_pool2d(const Tensor& x, Pair kernel, Pair stride = 0, Pair padding = 0, Pair dilation = 1,
                  bool ceil_mode = false);
/// max_pool2d and the int64 flat index h * W + w of each maximum within its (H, W) plane.
std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, Pair kernel, Pair stride = 0, Pair padding = 0,
                                                   Pair dilation = 1, bool ceil_mode = false);
/// Average pooling. count_include_pad divides by the window clipped to the padded input, otherwise
/// by the number of input elements in it.
Tensor avg_pool2d(const Tensor& x, Pair kernel, Pair stride = 0, Pair padding = 0, bool ceil_mode = false,
                  bool count_include_pad = true);
/// Average over windows [floor(i * H / H_out), ceil((i + 1) * H / H_out)), likewise for W.
Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size);

/// 1-d pooling over (N, C, L): the 2-d ops with H = 1. Index of max_pool1d_with_indices is the position in L.
Tensor max_pool1d(const Tensor& x, int64_t kernel, int64_t stride = 0, int64_t padding = 0, int64_t dilation = 1,
                  bool ceil_mode = false);
/// max_pool1d that also returns the int64 positions in L of each window's maximum.
std::tuple<Tensor, Tensor> max_pool1d_with_indices(const Tensor& x, int64_t kernel, int64_t stride = 0,
                                                   int64_t padding = 0, int64_t dilation = 1, bool ceil_mode = false);
/// Average pooling over (N, C, L) windows of `kernel` (stride 0: the kernel size).
Tensor avg_pool1d(const Tensor& x, int64_t kernel, int64_t stride = 0, int64_t padding = 0, bool ceil_mode = false,
                  bool count_include_pad = true);
/// Adaptive average pooling over (N, C, L) to length output_size.
Tensor adaptive_avg_pool1d(const Tensor& x, int64_t output_size);

// ---- resampling; x: (N, C, H, W) ----

/// Nearest neighbour to (H_out, W_out): source row floor(h * H / H_out), likewise for columns.
Tensor upsample_nearest2d(const Tensor& x, Pair size);
/// Bilinear to (H_out, W_out). align_corners maps the corner pixel centres onto each other
/// (src = dst * (H - 1) / (H_out - 1)); otherwise src = (dst + 0.5) * H / H_out - 0.5, clamped at 0.
Tensor upsample_bilinear2d(const Tensor& x, Pair size, bool align_corners = false);

/// Resampling kind of interpolate and nn::Upsample: nearest neighbour or bilinear.
enum class InterpolateMode { Nearest, Bilinear };
/// F.interpolate with a scale factor: output size floor(H * scale_factor) x floor(W * scale_factor).
/// The kernels then use the ratio of the sizes (PyTorch's recompute_scale_factor=True), which equals
/// PyTorch's default whenever H * scale_factor is a whole number. align_corners is for Bilinear only.
Tensor interpolate(const Tensor& x, double scale_factor, InterpolateMode mode = InterpolateMode::Nearest,
                   bool align_corners = false);

// ---- padding ----

/// Fill of the padded border: a constant value, a mirror image, or the edge repeated.
enum class PadMode { Constant, Reflect, Replicate };
/// F.pad: pads = {left, right} of the last dim, then {top, bottom} of the one before, and so on
/// (at most 2 * x.dim() values). Negative values crop. Reflect mirrors without repeating the edge
/// (each pad must be smaller than the dim); Replicate repeats the edge. Differentiable in x.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode = PadMode::Constant, double value = 0);

// ---- normalization and regularization ----

/// Batch normalization of x: (N, C) or (N, C, ...) per channel C. Training: normalizes with the
/// batch mean and biased variance over every dim but 1, and (when defined) updates
///   running_mean = (1 - momentum) * running_mean + momentum * mean
///   running_var  = (1 - momentum) * running_var  + momentum * unbiased variance
/// in place without recording. Eval: normalizes with the running statistics, which must be defined.
/// weight (gamma) and bias (beta) have shape (C) and may be undefined (no affine transform).
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight = {},
                  const Tensor& bias = {}, bool training = false, double momentum = 0.1, double eps = 1e-5);

/// Zeroes each element with probability p and scales the rest by 1 / (1 - p) in training; returns x
/// itself in eval or when p is 0. The mask comes from `gen` (the default generator if null), so a
/// reseeded generator gives the same mask.
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true, Generator* gen = nullptr);

// ---- pixel shuffle; x: (*, C, H, W) ----

/// (*, C * r^2, H, W) -> (*, C, H * r, W * r), r = upscale_factor (sub-pixel convolution).
Tensor pixel_shuffle(const Tensor& x, int64_t upscale_factor);
/// The inverse: (*, C, H * r, W * r) -> (*, C * r^2, H, W).
Tensor pixel_unshuffle(const Tensor& x, int64_t downscale_factor);

}  // namespace latent
