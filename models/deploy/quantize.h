// Static post-training quantization of a trained run (`latent quantize`): the linear layers of the
// dense models (linear, deep, sparse, denoising AEs, the VAE) get symmetric int8 weights (one
// scale per output channel, or per tensor) and uint8 inputs with one scale and zero point per
// tensor, calibrated on training samples; biases, sigmoid outputs, losses and every other op stay
// float32. The quantized run is a run directory like any other (config.json with a
// "quantization" section, model.safetensors holding the int8 weights and their scales), so
// `models::load` opens it and every command that runs a model runs it int8 (ops/quantize.h).
//
// Conv models (conv, conv-vae) get the same scheme for their Conv2d and ConvTranspose2d layers:
// int8 weights with one scale per output channel (axis 0 of a Conv2d weight, axis 1 of a
// ConvTranspose2d weight), uint8 inputs per tensor.
//
// Stored per quantized layer L (ONNX QDQ's naming): L.weight (I8, (out, in), or a conv's 4-d
// weight), L.weight_scale (F32, (out); conv: (C_out, 1, 1, 1), ConvTranspose: (1, C_out, 1, 1),
// shapes that broadcast against the weight), L.input_scale (F32, (1)), L.input_zero_point (U8, (1)).
#pragma once

#include <string>
#include <vector>

#include "../ae/autoencoder.h"
#include "../data/data.h"
#include "../io/json.h"
#include "../io/safetensors.h"

namespace latent::models {

struct LoadedRun;

/// `latent quantize`'s settings.
struct QuantizeOptions {
  int64_t calibration = 1000;   ///< training samples the activation ranges come from
  std::string method = "minmax";  ///< "minmax" or "percentile" (0.01% / 99.99% of the values)
  bool per_tensor = false;      ///< one weight scale per tensor instead of per output channel
};

/// What quantize_run did.
struct QuantizeSummary {
  std::string dir;                  ///< the quantized run's folder
  std::vector<std::string> layers;  ///< the quantized weights' names
  int64_t samples = 0;              ///< calibration samples used
  uint64_t float_bytes = 0;         ///< the source run's model.safetensors
  uint64_t int8_bytes = 0;          ///< the quantized run's model.safetensors
};

/// Quantizes `run`'s linear and conv layers calibrated on the first `options.calibration` samples
/// of `calibration` and writes the quantized run to `out_dir` (created; config.json and
/// model.safetensors). Other models fail with "[quantize] model 'X' ...: not supported yet".
QuantizeSummary quantize_run(const LoadedRun& run, const Dataset& calibration, const QuantizeOptions& options,
                             const std::string& out_dir);

/// Whether a config.json describes a quantized run.
bool is_quantized_config(const json::Value& config);

/// The tensors of a quantized run's file as the float model loads them: each int8 weight
/// dequantized (q * scale per output channel) under its own name, the scale/zero-point tensors left out.
/// Other files' tensors come back unchanged.
NamedTensors dequantized_tensors(const NamedTensors& stored);

/// After the float weights are loaded: registers each stored int8 weight's form on the model's
/// parameter of the same name (ops/quantize.h) and turns off requires_grad on every parameter
/// (a quantized model is for inference).
void attach_int8_weights(nn::Module& model, const NamedTensors& stored);

}  // namespace latent::models
