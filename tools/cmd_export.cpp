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

int cmd_export(const std::vector<std::string>& argv) {
  std::string dir, out, part_text = "full";
  int64_t opset = 17;
  Options opts("export",
               "Writes the trained model of a run directory as an ONNX file, traced in eval mode. The batch dim of\n"
               "the inputs and outputs is symbolic (\"batch\"); parameters keep their state_dict names. The parts:\n"
               "  full      input (N, D) -> reconstruction (N, D); VAEs decode the mean code\n"
               "  encoder   input -> code (VAEs: mu and logvar)\n"
               "  decoder   code -> reconstruction\n"
               "  anomaly   input -> per-sample mean squared reconstruction error (N), with the run's\n"
               "            anomaly threshold in the model's metadata");
  opts.positional("RUN", dir, "a run directory");
  opts.text("out", "FILE", out, "the .onnx file to write").required();
  opts.integer("opset", "N", opset, 13, 17, "ONNX opset");
  opts.choice("part", "P", part_text, {"full", "encoder", "decoder", "anomaly"}, "");
  if (!opts.parse(argv)) return 0;
  check_run_dir(dir);
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
