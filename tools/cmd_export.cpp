// `latent export` (placeholder; being written).
#include <string>
#include <vector>

#include "cli.h"
#include "commands.h"

namespace latent::tools {
int cmd_export(const std::vector<std::string>&) { throw UsageError{"export: not implemented yet"}; }
}  // namespace latent::tools
