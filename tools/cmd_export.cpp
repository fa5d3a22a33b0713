// `latent export RUN --out model.onnx [--opset N] [--part full|encoder|decoder|anomaly]`: writes a
// trained run's model, or one part of it, as ONNX (onnx_io/onnx_export.h).
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "latent.h"
#include "onnx_io/onnx_export.h"
#include "onnx_io/onnx_model.h"

namespace latent::tools {
namespace fs = std::filesystem;

namespace {
constexpr const char* kExportHelp = R"(usage: latent export RUN --out model.onnx [--opset N] [--part P]

Writes the trained model of a run directory as an ONNX file, traced in eval mode. The batch dim of
the inputs and outputs is symbolic ("batch"); parameters keep their state_dict names.

  --out FILE    the .onnx file to write (required)
  --opset N     ONNX opset, 13 to 17 (default 17)
  --part P      full      input (N, D) -> reconstruction (N, D); VAEs decode the mean code
                encoder   input -> code (VAEs: mu and logvar)
                decoder   code -> reconstruction
                anomaly   input -> per-sample mean squared reconstruction error (N), with the
                          run's anomaly threshold in the model's metadata (default full)
)";
}  // namespace

int cmd_export(const std::vector<std::string>& argv) {
  Args a("export", argv, {"out", "opset", "part"}, {}, 1, {"a run directory"});
  if (a.help()) return std::fputs(kExportHelp, stdout), 0;
  const std::string out = a.str("out", "");
  if (out.empty()) throw UsageError{"export: --out FILE is required (the .onnx file to write)"};
  const int64_t opset = a.integer("opset", 17, 13, 17);
  const std::string part_text = a.choice("part", "full", {"full", "encoder", "decoder", "anomaly"});
  const std::string dir = a.positional(0);
  if (!fs::exists(dir)) throw UsageError{fmt::format("run directory '{}' does not exist", dir)};
  if (!fs::exists(dir + "/config.json"))
    throw UsageError{fmt::format("'{}' is not a run directory: {}/config.json is missing", dir, dir)};
  if (!fs::exists(dir + "/model.safetensors"))
    throw UsageError{fmt::format("'{}' has no weights: {}/model.safetensors is missing", dir, dir)};
  const fs::path out_dir = fs::path(out).parent_path();
  if (!out_dir.empty() && !fs::is_directory(out_dir))
    throw UsageError{fmt::format("--out {}: folder '{}' does not exist", out, out_dir.string())};

  models::LoadedRun run = models::load(dir);
  const onnx::AutoencoderPart part = onnx::parse_part(part_text);
  std::optional<double> threshold;
  if (const json::Value* anomaly = run.config_json.find("anomaly"))
    if (const json::Value* t = anomaly->find("threshold")) threshold = t->as_double();
  if (part == onnx::AutoencoderPart::Anomaly && !threshold)
    std::fprintf(stderr, "note: %s/config.json has no anomaly threshold; the model's metadata will not hold one\n",
                 dir.c_str());
  onnx::ExportOptions options;
  options.opset = opset;
  options.doc_string = fmt::format("latent {} autoencoder ({}) from {}", run.config.model, part_text, dir);
  const onnx::ModelProto model = onnx::export_autoencoder(*run.model, part, options, threshold);
  onnx::save_model(model, out);
  fmt::print("wrote {} ({} part of the {} model, opset {}, {} nodes, {} initializers)\n", out, part_text,
             run.config.model, opset, model.graph.node.size(), model.graph.initializer.size());
  return 0;
}

}  // namespace latent::tools
