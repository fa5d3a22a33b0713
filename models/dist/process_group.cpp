#include "process_group.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "backends.h"

namespace latent::dist {
namespace {

/// One process: every collective leaves the tensor as it is (the mean over one rank is itself).
class LocalGroup final : public ProcessGroup {
 public:
  std::string backend() const override { return "local"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void broadcast(Tensor& t, int root) override {
    if (root != 0) fail("broadcast", "root rank {} does not exist in a group of 1", root);
    (void)t;
  }
  std::shared_ptr<Work> allreduce_async(Tensor& t, ReduceOp) override {
    struct Done final : Work {
      bool test() override { return true; }
      void wait() override {}
    };
    if (t.dtype() != kFloat32 && t.dtype() != kFloat64)
      fail("allreduce", "dtype {} is not supported (float32, float64)", t.dtype());
    return std::make_shared<Done>();
  }
  void barrier() override {}
  [[noreturn]] void abort(const std::string& message, int code) override {
    std::fprintf(stderr, "%s\n", message.c_str());
    std::fflush(stderr);
    std::_Exit(code);
  }
};

}  // namespace

#ifndef LATENT_HAVE_MPI
namespace detail {
std::shared_ptr<ProcessGroup> make_mpi_group() { return nullptr; }
}  // namespace detail
#endif
#ifndef LATENT_HAVE_NCCL
namespace detail {
std::shared_ptr<ProcessGroup> make_nccl_group(const std::shared_ptr<ProcessGroup>&) { return nullptr; }
}  // namespace detail
#endif

bool backend_available(const std::string& backend) {
  if (backend == "local") return true;
#ifdef LATENT_HAVE_MPI
  if (backend == "mpi") return true;
#endif
#ifdef LATENT_HAVE_NCCL
  if (backend == "nccl") return true;
#endif
  return false;
}

std::string available_backends() {
  std::string out = "local";
  for (const char* b : {"mpi", "nccl"})
    if (backend_available(b)) out += std::string(", ") + b;
  return out;
}

bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(var)) return true;
  return false;
}

std::shared_ptr<ProcessGroup> init_process_group(const std::string& backend) {
  static std::mutex mutex;
  static std::shared_ptr<ProcessGroup> local, mpi, nccl;
  std::lock_guard<std::mutex> lock(mutex);
  if (backend == "local") return local ? local : (local = std::make_shared<LocalGroup>());
  if (backend != "mpi" && backend != "nccl") fail("dist", "unknown backend '{}' ({})", backend, "local, mpi, nccl");
  if (!backend_available(backend)) {
    if (backend == "mpi")
      fail("dist", "latent was built without MPI (meson -Dmpi=disabled, or libopenmpi-dev was missing); "
           "install libopenmpi-dev and rebuild with -Dmpi=enabled");
    fail("dist", "latent was built without NCCL (it needs the CUDA build, nccl.h and libnccl beside the CUDA "
         "toolkit, and MPI); backends here: {}", available_backends());
  }
  if (!mpi) mpi = detail::make_mpi_group();
  if (backend == "mpi") return mpi;
  if (!nccl) nccl = detail::make_nccl_group(mpi);
  return nccl;
}

}  // namespace latent::dist
