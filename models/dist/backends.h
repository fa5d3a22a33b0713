// The constructors of the process-group backends (internal to models/dist/).
#pragma once

#include <memory>

#include "process_group.h"

namespace latent::dist::detail {

/// The MPI world group (MPI initialised on the first call); null in a build without MPI.
std::shared_ptr<ProcessGroup> make_mpi_group();
/// A NCCL group over the MPI world group's ranks (one GPU per rank); null without NCCL.
std::shared_ptr<ProcessGroup> make_nccl_group(const std::shared_ptr<ProcessGroup>& mpi);

}  // namespace latent::dist::detail
