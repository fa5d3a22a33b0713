// Communication between the processes of a data-parallel job: a process group is a backend like
// a device backend. One interface (rank, size, broadcast, allreduce, barrier), three backends:
//
//   local  one process, no library: every collective is a no-op (what a build without MPI has)
//   mpi    Open MPI (or any MPI): CPU tensors, one process per rank, started by mpirun
//   nccl   NVIDIA NCCL: CUDA tensors, one GPU per rank, its unique id broadcast over MPI
//
//   auto group = latent::dist::init_process_group("mpi");  // under `mpirun -np 4 ...`
//   group->allreduce(grad, latent::dist::ReduceOp::Avg);   // grad is now the mean over the ranks
//
// Collectives are issued in the same order on every rank (MPI's rule). allreduce_async returns a
// Work at once; the collective runs as non-blocking MPI (MPI_Iallreduce) driven forward by every
// later call into the group (progress(), test(), wait()), on the calling thread: no communication
// thread competes with the compute threads for cores. wait() gives up after the group's timeout,
// naming the ranks that never reached the collective, and ends the whole job (MPI_Abort):
// "[dist] rank 0: allreduce #812 waited 300 s (--dist-timeout-s); rank(s) 1 stopped answering
// (rank 1 at #811, silent for 300 s); ending the job".
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../../autograd/tensor.h"

namespace latent::dist {

/// How allreduce combines the ranks' tensors, element by element.
enum class ReduceOp {
  Sum,  ///< the sum over ranks
  Avg   ///< the sum divided by the group size
};

/// A collective in flight. wait() finishes it (dividing by the group size for Avg).
class Work {
 public:
  virtual ~Work() = default;
  /// True once the collective has completed (advances it; never blocks).
  virtual bool test() = 0;
  /// Blocks until it completes, or ends the job after the group's timeout.
  virtual void wait() = 0;
  /// Seconds wait() spent blocked (communication not hidden behind computation).
  double waited_seconds() const { return waited_; }

 protected:
  double waited_ = 0;  ///< what waited_seconds() returns; implementations add to it
};

/// The processes of one job.
class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  /// "local", "mpi" or "nccl".
  virtual std::string backend() const = 0;
  /// This process's rank, 0 .. size() - 1.
  virtual int rank() const = 0;
  /// The number of ranks.
  virtual int size() const = 0;
  /// The ranks on this machine (threads per rank default to cores / local_size()).
  virtual int local_size() const { return 1; }
  /// Copies `t` (contiguous, any dtype) from rank `root` into every rank's `t`, in place.
  virtual void broadcast(Tensor& t, int root = 0) = 0;
  /// Starts reducing `t` (contiguous float32 or float64) over the ranks, in place.
  virtual std::shared_ptr<Work> allreduce_async(Tensor& t, ReduceOp op) = 0;
  /// allreduce_async(t, op)->wait().
  void allreduce(Tensor& t, ReduceOp op) { allreduce_async(t, op)->wait(); }
  /// Returns once every rank has called barrier() (or ends the job after the timeout).
  virtual void barrier() = 0;
  /// Drives collectives in flight forward (non-blocking MPI progresses only inside MPI calls).
  virtual void progress() {}
  /// Ends every process of the job with `code` after printing `message` (a rank that cannot go on).
  [[noreturn]] virtual void abort(const std::string& message, int code) = 0;
  /// How long wait() and barrier() wait before ending the job (default 300 s).
  void set_timeout(std::chrono::duration<double> timeout) { timeout_ = timeout; }
  /// The timeout set_timeout gave.
  std::chrono::duration<double> timeout() const { return timeout_; }

 protected:
  std::chrono::duration<double> timeout_{300.0};  ///< see set_timeout
};

/// Whether this build has the backend ("local" always; "mpi" with -Dmpi; "nccl" in a CUDA build
/// that found NCCL and MPI).
bool backend_available(const std::string& backend);
/// The backends of this build, for messages ("local, mpi").
std::string available_backends();
/// True when the process was started by mpirun/srun (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK set).
bool launched_by_mpi();

/// The world group of `backend` ("local", "mpi", "nccl"). MPI is initialised once per process,
/// on the first call, and finalised at exit; later calls return the same group. Fails with
/// "[dist] latent was built without MPI ..." when the backend is not in this build.
std::shared_ptr<ProcessGroup> init_process_group(const std::string& backend = "mpi");

}  // namespace latent::dist
