// The subcommands of `latent` (tools/latent.cpp dispatches to them).
#pragma once

#include <string>
#include <vector>

#include "latent.h"

namespace latent::tools {

int cmd_train(const std::vector<std::string>& args);
int cmd_eval(const std::vector<std::string>& args);
int cmd_reconstruct(const std::vector<std::string>& args);
int cmd_sample(const std::vector<std::string>& args);
int cmd_interpolate(const std::vector<std::string>& args);
int cmd_embed(const std::vector<std::string>& args);
int cmd_anomaly(const std::vector<std::string>& args);
int cmd_classify(const std::vector<std::string>& args);
int cmd_export(const std::vector<std::string>& args);  // tools/cmd_export.cpp
int cmd_score(const std::vector<std::string>& args);   // tools/cmd_score.cpp
int cmd_serve(const std::vector<std::string>& args);   // tools/cmd_serve.cpp

/// Loads a run directory, or throws a UsageError naming what is missing (exit code 2).
models::LoadedRun open_run(const std::string& dir);

}  // namespace latent::tools
