// The commands of `latent`, listed in tools/main.cpp's command table. Each takes the words after
// its name, declares its options in an Options table (tools/cli.h), returns the exit code and
// throws UsageError for mistakes on the command line (exit code 2).
#pragma once

#include <string>
#include <vector>

#include "latent.h"

namespace latent::tools {

int cmd_train(const std::vector<std::string>& argv);        ///< tools/commands.cpp
int cmd_eval(const std::vector<std::string>& argv);         ///< tools/commands.cpp
int cmd_reconstruct(const std::vector<std::string>& argv);  ///< tools/commands.cpp
int cmd_sample(const std::vector<std::string>& argv);       ///< tools/commands.cpp
int cmd_interpolate(const std::vector<std::string>& argv);  ///< tools/commands.cpp
int cmd_embed(const std::vector<std::string>& argv);        ///< tools/commands.cpp
int cmd_anomaly(const std::vector<std::string>& argv);      ///< tools/commands.cpp
int cmd_classify(const std::vector<std::string>& argv);     ///< tools/commands.cpp
int cmd_export(const std::vector<std::string>& argv);       ///< tools/cmd_export.cpp
int cmd_demo(const std::vector<std::string>& argv);         ///< tools/cmd_demo.cpp
int cmd_version(const std::vector<std::string>& argv);      ///< tools/commands.cpp
int cmd_score(const std::vector<std::string>& argv);        ///< tools/cmd_score.cpp
int cmd_anomaly_bench(const std::vector<std::string>& argv);  ///< tools/cmd_anomaly_bench.cpp
int cmd_quantize(const std::vector<std::string>& argv);     ///< tools/cmd_quantize.cpp
int cmd_serve(const std::vector<std::string>& argv);        ///< tools/cmd_serve.cpp

/// Throws a UsageError unless `dir` holds a trained run ("run directory 'x' does not exist",
/// "'x' is not a run directory: x/config.json is missing", "'x' has no weights: ...").
void check_run_dir(const std::string& dir);
/// check_run_dir, then models::load.
models::LoadedRun open_run(const std::string& dir);
/// The first min(n, size) samples of `d`, in order, as one batch.
Batch first_samples(const Dataset& d, int64_t n);

}  // namespace latent::tools
