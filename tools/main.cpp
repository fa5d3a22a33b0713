// The `latent` command: looks the command up in kCommands and runs it. A UsageError (a bad flag or
// value, a missing run) prints one line and exits 2; any other error prints one line and exits 1.
//
// Adding a command: write `int cmd_NAME(const std::vector<std::string>& argv)` (its options declared
// in an Options table, tools/cli.h), declare it in tools/commands.h and add one line below.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "latent.h"

using namespace latent::tools;

namespace {

/// One `latent` command: its name, its line in `latent --help`, and its entry point.
struct Command {
  std::string name, summary;
  int (*run)(const std::vector<std::string>& argv);
};

const std::vector<Command>& commands() {
  static const std::vector<Command> kCommands{
      {"train", fmt::format("train an autoencoder ({})", fmt::join(latent::models::autoencoder_names(), ", ")), cmd_train},
      {"eval", "test loss of a trained run", cmd_eval},
      {"reconstruct", "PNG of test images above their reconstructions", cmd_reconstruct},
      {"sample", "PNG of images sampled from a VAE's prior", cmd_sample},
      {"interpolate", "PNG of decodings along a line between two codes", cmd_interpolate},
      {"embed", "latent codes with labels as CSV, and a 2-D scatter plot", cmd_embed},
      {"anomaly", "reconstruction-error anomaly scores, precision/recall/ROC AUC", cmd_anomaly},
      {"anomaly-bench", "one-class anomaly detection: a run per normal class, ROC AUC per class and mean", cmd_anomaly_bench},
      {"score", "score every sample of a new file (CSV, PNG, IDX) with the stored preprocessing", cmd_score},
      {"serve", "HTTP inference service (KServe v2 / Triton, v1) for trained runs", cmd_serve},
      {"classify", "semi-supervised accuracy from few labels: latent codes vs raw pixels", cmd_classify},
      {"quantize", "int8 copy of a trained dense run (static post-training quantization)", cmd_quantize},
      {"export", "write a run's model (or its encoder, decoder, anomaly scorer) as ONNX", cmd_export},
      {"demo", "fit a small autoencoder to synthetic data and print the loss falling", cmd_demo},
      {"version", "print the version, the BLAS build and whether CUDA is usable", cmd_version},
  };
  return kCommands;
}

std::string usage() {
  std::string text = "usage: latent <command> [options]\n\ncommands:\n";
  size_t width = 0;
  for (const Command& c : commands()) width = std::max(width, std::string_view(c.name).size());
  for (const Command& c : commands()) text += fmt::format("  {:<{}} {}\n", c.name, width + 1, c.summary);
  text += "\nrun `latent <command> --help` for the options of a command; the commands that report results\n"
          "(eval, anomaly, classify, embed, version) print one JSON line with --json.\n";
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty()) {
      std::fputs(usage().c_str(), stderr);
      return 2;
    }
    const std::string& name = args[0];
    if (name == "--help" || name == "-h" || name == "help") {
      std::fputs(usage().c_str(), stdout);
      return 0;
    }
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (name == "--version") return cmd_version(rest);
    for (const Command& c : commands())
      if (c.name == name) return c.run(rest);
    throw UsageError{fmt::format("unknown command '{}' (see latent --help)", name)};
  } catch (const UsageError& e) {
    fmt::print(stderr, "latent: {}\n", e.message);
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "latent: {}\n", e.what());
    return 1;
  }
}
