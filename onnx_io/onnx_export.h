// Export of any Module (or any function of tensors computed with latent ops) to ONNX by tracing
// one forward pass in eval mode under no-grad (ops/trace.h records every op application; the
// export table in onnx_op_tables.cpp maps each op's records to ONNX nodes valid at the chosen
// opset, 13 to 17).
//
//   auto model = latent::models::make_autoencoder(config);
//   latent::onnx::ModelProto m = latent::onnx::export_module(*model, {latent::rand({2, 784})});
//   latent::onnx::save_model(m, "model.onnx");
//
// Parameters and buffers become initializers under their state_dict names ("encoder.0.weight");
// other tensors the forward reads (created inside it) become constant initializers. With
// dynamic_batch (the default) the forward is traced twice, with batch sizes N and N + 1, and every
// size that differs between the two traces is the batch: reshape targets get -1 there, and graph
// inputs and outputs get the symbolic dim "batch". See docs/onnx.md ("Export").
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../autograd/tensor.h"
#include "onnx_model.h"

namespace latent::nn {
class Module;
}
namespace latent::models {
class Autoencoder;
}

namespace latent::onnx {

/// What export_module writes besides the graph.
struct ExportOptions {
  int64_t opset = 17;                      ///< default-domain opset, 13 to 17
  std::vector<std::string> input_names;    ///< default "input" (then "input_1", ...)
  std::vector<std::string> output_names;   ///< default "output" (then "output_1", ...)
  bool dynamic_batch = true;               ///< dim 0 of inputs and outputs is "batch"
  /// GraphProto.name of the exported graph (an autoencoder part exported with the default is
  /// named `type_name()` + "_" + part_name(part) instead, e.g. "..._encoder").
  std::string graph_name = "latent";
  /// ModelProto.doc_string (empty: none).
  std::string doc_string;
  std::string producer_version;            ///< default: latent's version
  std::vector<std::pair<std::string, std::string>> metadata;  ///< metadata_props
};

/// The function traced by export_function: graph inputs -> graph outputs.
using ExportFunction = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

/// Traces fn(inputs) with `module` in eval mode (its modes are restored afterwards) and no-grad,
/// and returns the ONNX model. `module` names the initializers (its parameters and buffers).
/// Errors: "[onnx export] opset 12 is not supported: expected 13 to 17", "[onnx export] op 'foo'
/// has no ONNX mapping (called from ...)".
ModelProto export_function(nn::Module& module, const ExportFunction& fn, const std::vector<Tensor>& inputs,
                           const ExportOptions& options = {});

/// export_function with module.forward(inputs[0]): `inputs` holds exactly one example tensor.
ModelProto export_module(nn::Module& module, const std::vector<Tensor>& inputs, const ExportOptions& options = {});

/// export_module, then save_model to `path`.
void export_module_to_file(nn::Module& module, const std::vector<Tensor>& inputs, const std::filesystem::path& path,
                           const ExportOptions& options = {});

/// Which part of an autoencoder to export.
enum class AutoencoderPart {
  Full,     ///< input (N, D) -> reconstruction (N, D); VAEs decode z = mu
  Encoder,  ///< input -> code (VAEs: mu and logvar)
  Decoder,  ///< code -> reconstruction
  Anomaly,  ///< input -> per-sample mean squared reconstruction error (N)
};
/// "full", "encoder", "decoder", "anomaly" ("[onnx export] unknown part 'x' (full, encoder, decoder, anomaly)").
AutoencoderPart parse_part(const std::string& name);
/// The name parse_part accepts for `part` ("full", "encoder", ...).
const char* part_name(AutoencoderPart part);

/// Exports one part of an autoencoder traced with `batch` example samples (random data of the
/// model's input or code size). The anomaly part stores `anomaly_threshold` (when given) as
/// metadata "anomaly_threshold". Input and output names default to the part's ("input",
/// "reconstruction", "code", "mu", "logvar", "error").
ModelProto export_autoencoder(models::Autoencoder& model, AutoencoderPart part, const ExportOptions& options = {},
                              std::optional<double> anomaly_threshold = std::nullopt, int64_t batch = 2);

/// The example inputs export_autoencoder traces with: (batch, D) in [0, 1) for every part but the
/// decoder, whose input is a code of the size encode() returns (normal values). Seeded, so the
/// same call gives the same tensors.
std::vector<Tensor> autoencoder_example_inputs(models::Autoencoder& model, AutoencoderPart part, int64_t batch = 2,
                                               uint64_t seed = 0);

/// The function export_autoencoder traces for `part` (outputs in the order of their names).
ExportFunction autoencoder_part_function(models::Autoencoder& model, AutoencoderPart part);

}  // namespace latent::onnx
