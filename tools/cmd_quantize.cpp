// `latent quantize`: an int8 copy of a trained run (models/deploy/quantize.h), calibrated on training
// samples, written as a run directory that every command loads.
#include <fmt/format.h>

#include "cli.h"
#include "commands.h"
#include "latent.h"
#include "models/deploy/quantize.h"
#include "report.h"

namespace latent::tools {

int cmd_quantize(const std::vector<std::string>& argv) {
  std::string dir, out;
  models::QuantizeOptions q;
  bool as_json = false;
  Options opts("quantize",
               "Writes an int8 copy of a trained run (linear, deep, sparse, denoising, vae, conv,\n"
               "conv-vae): static post-training quantization with symmetric int8 weights (per output\n"
               "channel: Conv2d axis 0, ConvTranspose2d axis 1) and uint8 activations (one scale and zero\n"
               "point per layer input) calibrated on training samples; biases, the sigmoid output and\n"
               "losses stay float32. The copy is a run directory: eval, score, reconstruct, anomaly and\n"
               "serve run it int8.");
  opts.positional("RUN", dir, "a run directory");
  opts.integer("calibration", "N", q.calibration, 1, 1LL << 40, "training samples that set the activation ranges");
  opts.choice("method", "M", q.method, {"minmax", "percentile"},
              "activation range: all values, or their 0.01%-99.99% quantiles");
  opts.flag("per-tensor", q.per_tensor, "one weight scale per layer instead of per output channel");
  opts.text("out", "DIR", out, "where to write the quantized run").shown_default("RUN/int8");
  opts.flag("json", as_json, "print the result as one JSON line (for scripts)");
  if (!opts.parse(argv)) return 0;
  if (out.empty()) out = dir + "/int8";
  models::LoadedRun run = open_run(dir);
  models::DataSplit split = models::run_data(run, "");
  const models::QuantizeSummary s = models::quantize_run(run, *split.train, q, out);
  Report report;
  report.add("out", s.dir, "quantized run");
  report.add("layers", static_cast<int64_t>(s.layers.size()), "int8 layers",
             fmt::format("{} ({})", s.layers.size(), fmt::join(s.layers, ", ")));
  report.add("calibration_samples", s.samples, "calibration", fmt::format("{} training samples, {}", s.samples, q.method));
  const double ratio = s.float_bytes ? double(s.int8_bytes) / double(s.float_bytes) : 0.0;
  report.add("size_ratio", ratio, "weights file",
             fmt::format("{} bytes ({:.3f}x the float32 model's {} bytes)", s.int8_bytes, ratio, s.float_bytes));
  report.print(as_json);
  return 0;
}

}  // namespace latent::tools
