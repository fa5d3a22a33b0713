// The NCCL backend of the process group: CUDA tensors, one GPU per rank (rank's local index modulo
// the visible GPUs), the communicator's unique id made on rank 0 and broadcast over the MPI group.
// Collectives run on a blocking CUDA stream: latent's kernels run on the legacy default stream,
// with which a blocking stream is ordered both ways, so an allreduce starts after the backward
// kernels that made its bucket and the optimizer's kernels start after it. (That order also means
// no compute/communication overlap on the GPU until the CUDA backend moves off stream 0.)
// Waiting polls a CUDA event and, past the timeout, aborts the communicator and the MPI job.
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "../../ops/creation.h"
#include "backends.h"

namespace latent::dist {
namespace {

void check_cuda(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess) fail("dist", "{} failed: {}", what, cudaGetErrorString(rc));
}
void check_nccl(ncclResult_t rc, const char* what) {
  if (rc != ncclSuccess) fail("dist", "{} failed: {}", what, ncclGetErrorString(rc));
}

class NcclGroup;

class NcclWork final : public Work {
 public:
  NcclWork(NcclGroup* group, Tensor t, cudaEvent_t done) : group_(group), t_(std::move(t)), done_(done) {}
  ~NcclWork() override { cudaEventDestroy(done_); }
  bool test() override { return cudaEventQuery(done_) == cudaSuccess; }
  void wait() override;

 private:
  NcclGroup* group_;
  Tensor t_;  // kept alive until the collective has finished with it
  cudaEvent_t done_;
};

class NcclGroup final : public ProcessGroup {
 public:
  explicit NcclGroup(std::shared_ptr<ProcessGroup> mpi) : mpi_(std::move(mpi)) {
    int devices = 0;
    check_cuda(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
    if (devices == 0) fail("dist", "the nccl backend needs a GPU; none is visible");
    const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    const int local_rank = local ? std::atoi(local) : mpi_->rank();
    if (mpi_->local_size() > devices)
      fail("dist", "{} ranks on this node share {} GPU(s); NCCL needs one GPU per rank", mpi_->local_size(), devices);
    check_cuda(cudaSetDevice(local_rank % devices), "cudaSetDevice");
    ncclUniqueId id;
    if (mpi_->rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    static_assert(sizeof(ncclUniqueId) % sizeof(int64_t) == 0);
    Tensor bytes = zeros({static_cast<int64_t>(sizeof(ncclUniqueId) / sizeof(int64_t))}, kInt64);
    std::memcpy(bytes.raw_data(), &id, sizeof id);
    mpi_->broadcast(bytes, 0);
    std::memcpy(&id, bytes.raw_data(), sizeof id);
    check_nccl(ncclCommInitRank(&comm_, mpi_->size(), id, mpi_->rank()), "ncclCommInitRank");
    check_cuda(cudaStreamCreate(&stream_), "cudaStreamCreate");  // blocking: ordered with stream 0
  }

  std::string backend() const override { return "nccl"; }
  int rank() const override { return mpi_->rank(); }
  int size() const override { return mpi_->size(); }
  int local_size() const override { return mpi_->local_size(); }

  void broadcast(Tensor& t, int root) override {
    check_tensor(t, "broadcast");
    check_nccl(ncclBroadcast(t.raw_data(), t.raw_data(), t.numel() * static_cast<int64_t>(t.element_size()), ncclUint8,
                             root, comm_, stream_), "ncclBroadcast");
    record(t)->wait();
  }

  std::shared_ptr<Work> allreduce_async(Tensor& t, ReduceOp op) override {
    check_tensor(t, "allreduce");
    ncclDataType_t type;
    if (t.dtype() == kFloat32) {
      type = ncclFloat32;
    } else if (t.dtype() == kFloat64) {
      type = ncclFloat64;
    } else {
      fail("allreduce", "dtype {} is not supported (float32, float64)", t.dtype());
    }
    check_nccl(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), type,
                             op == ReduceOp::Avg ? ncclAvg : ncclSum, comm_, stream_), "ncclAllReduce");
    return record(t);
  }

  void barrier() override { mpi_->barrier(); }

  [[noreturn]] void abort(const std::string& message, int code) override {
    ncclCommAbort(comm_);
    mpi_->abort(message, code);
    std::_Exit(code);  // not reached: MPI_Abort ends the process
  }

  void wait_event(cudaEvent_t e, const char* what) {
    const auto start = std::chrono::steady_clock::now();
    while (cudaEventQuery(e) == cudaErrorNotReady) {
      const std::chrono::duration<double> waited = std::chrono::steady_clock::now() - start;
      if (waited > timeout_)
        abort(fmt::format("[dist] rank {}: nccl {} waited {:.0f} s (--dist-timeout-s); ending the job", rank(), what,
                          waited.count()), 3);
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

 private:
  void check_tensor(const Tensor& t, const char* op) {
    if (!t.defined() || t.device().type != DeviceType::CUDA || !t.is_contiguous())
      fail(op, "the nccl backend takes contiguous CUDA tensors (use the mpi backend for CPU tensors)");
  }
  std::shared_ptr<Work> record(const Tensor& t) {
    cudaEvent_t e;
    check_cuda(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
    check_cuda(cudaEventRecord(e, stream_), "cudaEventRecord");
    return std::make_shared<NcclWork>(this, t, e);
  }

  std::shared_ptr<ProcessGroup> mpi_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

void NcclWork::wait() {
  const auto t0 = std::chrono::steady_clock::now();
  group_->wait_event(done_, "collective");
  waited_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

namespace detail {
std::shared_ptr<ProcessGroup> make_nccl_group(const std::shared_ptr<ProcessGroup>& mpi) {
  return std::make_shared<NcclGroup>(mpi);
}
}  // namespace detail

}  // namespace latent::dist
