// int8 convolutions for quantized inference, built on the int8 GEMM (qgemm.h): uint8 activations
// with a zero point, symmetric int8 weights with one scale per output channel, int32 sums.
//
//   conv2d            per image: the input copied once into a channels-last buffer padded with its
//                     zero point (which adds exactly 0 after the zero-point correction);
//                     qgemm_u8s8_gather reads it in place, row = output pixel, one run per kernel
//                     row (kW pixels x C_in, padded to 4 bytes with zero weights): no im2col. The
//                     store (dequantization, bias, relu or sigmoid, or requantization) writes the
//                     (C_out, H_out, W_out) image (column stride H_out * W_out) or channels last.
//   conv_transpose2d  by stride phase: the output pixels (a + sh*m, b + sw*n) of phase (a, b) all
//                     read the same taps, from input pixels (m + e_ki, n + e_kj), so a phase is an
//                     ordinary conv over the padded input (one run of C_in per tap) whose store
//                     writes each of its pixels once through the epilogue's row table. With fewer
//                     than 16 output channels (a phase's GEMM would fill one lane in 16), the GEMM
//                     runs once per image into planar int32 sums over the padded input grid and a
//                     per-phase gather adds each output's taps and applies the store's arithmetic.
// Images are split over the thread pool (the GEMMs inside run on one thread each). Only groups = 1.
#pragma once

#include <cstdint>

#include "qgemm.h"

namespace latent::cpu {

/// Sizes of one int8 convolution, (N, C, H, W) layouts. For conv2d, out = (n, c_out, ho, wo) from
/// in = (n, c_in, h, w); for the transposed form the output sizes are given too (they depend on
/// output_padding, which the kernel does not otherwise need).
struct QConvShape {
  int64_t n = 0, c_in = 0, h = 0, w = 0;        ///< input
  int64_t c_out = 0, ho = 0, wo = 0;            ///< output
  int64_t kh = 1, kw = 1;                       ///< kernel
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;  ///< stride, padding, dilation
};

/// The store of an int8 convolution: real = a_scale * w_scale[c] * (sum - a_zero * colsum) + bias[c].
struct QConvStore {
  float a_scale = 1.0f;            ///< input's scale
  int32_t a_zero = 0;              ///< input's zero point (0..255)
  const float* w_scale = nullptr;  ///< c_out per-channel weight scales
  const float* bias = nullptr;     ///< c_out values or null
  bool relu = false;
  bool sigmoid = false;            ///< float32 output only: 1 / (1 + e^-x) after the bias (and relu)
  float* out = nullptr;            ///< (n, c_out, ho, wo) float32, or null when out_u8 is given
  /// (n, c_out, ho, wo) uint8 requantized for the next int8 layer instead of float32:
  /// q = clamp(round_half_even(real / out_scale) + out_zero, 0, 255) (after relu when relu is set).
  uint8_t* out_u8 = nullptr;
  float out_scale = 1.0f;          ///< for out_u8
  int32_t out_zero = 0;            ///< for out_u8
  /// out_u8 channels last, (n, ho, wo, c_out): what the next int8 conv reads without a transpose.
  bool out_nhwc = false;
  /// The uint8 input x is channels last, (n, h, w, c_in) (a previous layer's out_nhwc output).
  bool in_nhwc = false;
};

/// Bytes of one kernel row of a packed conv2d weight: kW pixels of C_in channels, rounded up to 4.
inline int64_t qconv_row_bytes(int64_t c_in, int64_t kw) { return (kw * c_in + 3) / 4 * 4; }
/// Packs a conv2d weight (C_out, C_in, kH, kW) int8, row-major, as qgemm's W (C_out, kH *
/// qconv_row_bytes(C_in, kW)): columns (ki, kj, ci), each kernel row zero-padded to 4 bytes.
PackedQWeight pack_qconv_weight(int64_t c_out, int64_t c_in, int64_t kh, int64_t kw, const int8_t* w);
/// Packs a conv_transpose2d weight (C_in, C_out, kH, kW) int8, row-major, as qgemm's
/// Wt (kH*kW*C_out, C_in): row (ki, kj, co), column ci.
PackedQWeight pack_qconv_transpose_weight(int64_t c_in, int64_t c_out, int64_t kh, int64_t kw, const int8_t* w);

/// int8 conv2d of the uint8 input x (n, c_in, h, w) with the packed weight (pack_qconv_weight).
void qconv2d_u8s8(const QConvShape& s, const uint8_t* x, const PackedQWeight& w, const QConvStore& store);
/// int8 conv_transpose2d of x (n, c_in, h, w) with the packed weight (pack_qconv_transpose_weight):
/// out[co][ih*sh - ph + ki*dh][iw*sw - pw + kj*dw] += x[ci][ih][iw] * W[ci][co][ki][kj].
void qconv_transpose2d_u8s8(const QConvShape& s, const uint8_t* x, const PackedQWeight& w, const QConvStore& store);

}  // namespace latent::cpu
