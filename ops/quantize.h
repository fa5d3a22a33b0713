// int8 inference for linear layers: a float32 weight can carry an int8 form (symmetric
// per-output-channel int8 weights, packed for ops/cpu/qgemm.h, and the uint8 quantization of the
// layer's input), and every inference-path `linear`/`fused_linear` call on that weight then runs
// the int8 GEMM: quantize the input rows to uint8, multiply with int32 accumulation, dequantize
// with the bias and relu in the store, sigmoid/tanh in float32 after. Calls that record a tape
// node (training) always run float32.
//
// The int8 form is keyed like the prepacked float weights (ops/cpu/sgemm_small.h): the weight's
// storage (weak), offset, shape, strides and version. An in-place change of the weight (an
// optimizer step, copy_, load_state_dict) bumps the version and the float path runs again.
//
// Calibration: while a CalibrationGuard lives, every inference-path linear call records its
// input's values per weight (min/max, and a strided sample for percentiles), which
// models/deploy/quantize.cpp turns into the input's scale and zero point.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "../autograd/tensor.h"
#include "linalg.h"
#include "params.h"

namespace latent {

namespace cpu {
struct PackedQWeight;  // ops/cpu/qgemm.h (not installed)
}

/// The int8 form of one linear layer's weight (out, in).
struct QuantizedLinear {
  std::shared_ptr<const cpu::PackedQWeight> packed;  ///< int8 weights, packed
  Tensor int8_weight;                                ///< the same int8 weights (out, in), unpacked (export)
  std::vector<float> weight_scale;                   ///< out values (per channel; all equal when per tensor)
  float input_scale = 1.0f;                          ///< uint8 input: x ~ (q - zero) * scale
  int32_t input_zero = 0;                            ///< the input's zero point (0..255)
};

/// Symmetric int8 quantization of a float32 weight (out, in): per output channel (or one scale for
/// the whole tensor), q = clamp(round_half_even(w / scale), -127, 127), scale = max|w| / 127
/// (1 where a channel is all zero). Returns q (int8, (out, in)) and the scales (float32, (out)).
std::pair<Tensor, Tensor> quantize_weight_symmetric(const Tensor& weight, bool per_channel = true);

/// Uint8 affine parameters covering [lo, hi] (widened to include 0, so zero is exact):
/// scale = (hi - lo) / 255, zero = round(-lo / scale).
std::pair<float, int32_t> uint8_params(double lo, double hi);

/// The QuantizedLinear of int8 weights q (out, in), scales (out) and the input's parameters.
std::shared_ptr<const QuantizedLinear> make_quantized_linear(const Tensor& q, const Tensor& weight_scale,
                                                             float input_scale, int32_t input_zero);

/// Makes inference calls of `linear(x, weight, ...)` run int8 with `q` (weight: a float32 CPU
/// tensor (out, in) matching q's shape). Replaces an earlier entry for the same weight.
void set_quantized_linear(const Tensor& weight, std::shared_ptr<const QuantizedLinear> q);
/// The int8 form registered for exactly this weight tensor and version, or null.
std::shared_ptr<const QuantizedLinear> find_quantized_linear(const Tensor& weight);
/// Drops every entry (tests).
void clear_quantized_linears();

/// The int8 form of one conv2d or conv_transpose2d weight (groups 1): symmetric int8 weights with
/// one scale per output channel (axis 0 of a conv2d weight (C_out, C_in, kH, kW), axis 1 of a
/// conv_transpose2d weight (C_in, C_out, kH, kW)), packed for ops/cpu/qconv.h, and the uint8
/// quantization of the layer's input. Inference calls (no tape node) on that weight run int8.
struct QuantizedConv {
  std::shared_ptr<const cpu::PackedQWeight> packed;  ///< int8 weights packed for the int8 conv kernels
  Tensor int8_weight;                                ///< the same int8 weights in the weight's own layout (export)
  std::vector<float> weight_scale;                   ///< C_out values (per channel; all equal when per tensor)
  float input_scale = 1.0f;                          ///< uint8 input: x ~ (q - zero) * scale
  int32_t input_zero = 0;                            ///< the input's zero point (0..255)
  bool transposed = false;                           ///< a conv_transpose2d weight
};

/// Symmetric int8 quantization of a 4-d conv weight with one scale per index of `axis` (0 for
/// conv2d, 1 for conv_transpose2d; per tensor when per_channel is false), as
/// quantize_weight_symmetric. Returns q (int8, the weight's shape) and the scales (float32, (C_out)).
std::pair<Tensor, Tensor> quantize_conv_weight_symmetric(const Tensor& weight, int64_t axis, bool per_channel = true);

/// The QuantizedConv of int8 weights q (4-d, the float weight's layout), scales (C_out values) and
/// the input's parameters.
std::shared_ptr<const QuantizedConv> make_quantized_conv(const Tensor& q, const Tensor& weight_scale, float input_scale,
                                                         int32_t input_zero, bool transposed);

/// Makes inference calls of conv2d (or conv_transpose2d when q->transposed) on `weight` (a 4-d
/// float32 CPU tensor of q's shape) run int8. Replaces an earlier entry for the same weight.
void set_quantized_conv(const Tensor& weight, std::shared_ptr<const QuantizedConv> q);
/// The int8 conv form registered for exactly this weight tensor and version, or null.
std::shared_ptr<const QuantizedConv> find_quantized_conv(const Tensor& weight);

/// Input statistics of one weight's linear (or conv) calls while calibrating.
struct CalibrationStats {
  double min = 0;             ///< smallest value seen
  double max = 0;             ///< largest value seen
  int64_t count = 0;          ///< values seen
  std::vector<float> sample;  ///< every value up to a cap, then a strided subsample (percentiles)
  bool transposed = false;    ///< the weight was used by conv_transpose2d (a 4-d weight's layout)
};

/// While alive (one at a time, process-wide), inference-path linear and conv calls record their inputs.
class CalibrationGuard {
 public:
  /// Starts recording ("[quantize] a calibration is already running" when another guard lives).
  CalibrationGuard();
  /// Stops recording and drops the statistics.
  ~CalibrationGuard();
  CalibrationGuard(const CalibrationGuard&) = delete;
  CalibrationGuard& operator=(const CalibrationGuard&) = delete;
  /// The statistics recorded for `weight` (count 0 when it was never called).
  CalibrationStats stats(const Tensor& weight) const;
};

// ---- ONNX's affine quantization as tensor functions (ops/quantize_linear.cpp) ----
// Plain CPU loops that follow ONNX's definitions exactly (the importer's QuantizeLinear,
// DequantizeLinear and DynamicQuantizeLinear run them); not differentiable.

/// ONNX QuantizeLinear: q = saturate(round_half_even(x / scale) + zero), of `zero`'s dtype (uint8
/// or int8; uint8 when `zero` is undefined). `scale` (float32, positive) and `zero` hold one value
/// (per tensor) or one per index of x's dimension `axis` (per axis). x is float32 (divided in
/// float32, as ONNX Runtime does), float64 or int32 (divided in float64).
Tensor quantize_linear(const Tensor& x, const Tensor& scale, const Tensor& zero = {}, int64_t axis = 1);
/// ONNX DequantizeLinear: (q - zero) * scale as float32, computed in float32; q is uint8, int8 or
/// int32 (then `zero` must be absent or 0). Per tensor or per axis as in quantize_linear.
Tensor dequantize_linear(const Tensor& q, const Tensor& scale, const Tensor& zero = {}, int64_t axis = 1);

/// The three outputs of dynamic_quantize_linear.
struct DynamicQuantized {
  Tensor q;      ///< uint8, x's shape
  Tensor scale;  ///< float32 scalar: (max(x, 0) - min(x, 0)) / 255 (1 when x is all zero)
  Tensor zero;   ///< uint8 scalar: saturate(round_half_even(-min(x, 0) / scale))
};
/// ONNX DynamicQuantizeLinear: uint8 quantization of float32 x over its own range widened to 0.
DynamicQuantized dynamic_quantize_linear(const Tensor& x);

namespace detail {
/// Called by the CPU backend's inference linear: records x when a CalibrationGuard lives.
void observe_linear_input(const Tensor& weight, const Tensor& x);
/// Whether any int8 form or a calibration is active (one relaxed load).
bool quantization_active();
/// Called by the CPU backend's linear_inference (x 2-d float32, out contiguous float32 (N, out)):
/// runs out = activation(x W^T + b) with the int8 GEMM (bias, relu and sigmoid in its store, tanh
/// after) and returns true when `weight` has an int8 form; otherwise records x when calibrating and
/// returns false. Takes this thread's Int8Chain request when it names `weight`.
bool linear_inference_int8(const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation,
                           const Tensor& out);
/// Called by conv2d/conv_transpose2d's forward when it records no tape node: runs the int8 kernel
/// into `out` and returns true when `weight` has an int8 conv form of that direction (x float32
/// (N, C_in, H, W) on the CPU, groups 1); otherwise records x when calibrating and returns false.
/// `p` is the op's parameters; the bias (or undefined) is added in the int8 store.
bool conv_inference_int8(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
                         bool transposed, const Tensor& out);

/// What a Sequential (models/nn/layers.cpp) asks of the int8 layer (Linear, Conv2d or
/// ConvTranspose2d) it is about to run at inference, so consecutive int8 layers pass uint8
/// activations without a float32 round trip: relu in the store (a conv; a linear takes its
/// activation as the op's argument), the input already quantized in this layer's input parameters
/// (the previous layer's uint8 output; x is then only a placeholder of the right shape), and the
/// output written as uint8 in the next layer's input parameters (`out` is then left unwritten).
/// Layouts: a linear's uint8 rows are (N, K4), K4 = in_features rounded up to a multiple of 4
/// (the int8 GEMM's packed k; the bytes past in_features are never read as values); a conv's are
/// channels last, (N, H, W, C).
struct Int8Chain {
  const Tensor* weight = nullptr;  ///< the layer's weight: only a call on it takes the request
  bool relu = false;               ///< a conv: apply relu in the store
  bool sigmoid = false;            ///< a conv writing float32: apply sigmoid in the store (the decoder's last layer)
  Tensor input_u8;                 ///< uint8 input in the layout above, or undefined (quantize x)
  bool requantize = false;         ///< write the output as uint8 in (out_scale, out_zero)
  float out_scale = 1.0f;          ///< the next layer's input scale (when requantize)
  int32_t out_zero = 0;            ///< the next layer's input zero point (when requantize)
  Tensor output_u8;                ///< set by the layer when it wrote uint8 (undefined: `out` holds float32)
  bool taken = false;              ///< set by the layer when its int8 path ran with the request
};

/// uint8 hand-overs (Int8Chain requests answered with output_u8) written on this thread so far (tests).
int64_t int8_chain_hand_overs();

/// While alive, the next int8 linear or conv call on this thread on chain->weight takes `chain`
/// (one call).
class Int8ChainScope {
 public:
  /// Installs chain for this thread.
  explicit Int8ChainScope(Int8Chain* chain);
  /// Removes it (taken or not).
  ~Int8ChainScope();
  Int8ChainScope(const Int8ChainScope&) = delete;
  Int8ChainScope& operator=(const Int8ChainScope&) = delete;
};
}  // namespace detail

}  // namespace latent
