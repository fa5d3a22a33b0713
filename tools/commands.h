// The subcommands of `latent` (tools/latent.cpp dispatches to them).
#pragma once

#include <string>
#include <vector>

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

}  // namespace latent::tools
