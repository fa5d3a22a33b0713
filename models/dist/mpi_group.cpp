// The MPI backend of the process group. Collectives are non-blocking MPI (MPI_Ibcast,
// MPI_Iallreduce, MPI_Ibarrier) issued and completed on the calling thread; MPI is initialised
// with MPI_THREAD_FUNNELED, so only that thread may use the group.
//
// Waiting: MPI_Test in a loop that spins for 1 ms, then yields, then sleeps 50 us between tests,
// so a rank that waits long (for rank 0's evaluation, say) leaves the cores to the others.
// Liveness: each collective is numbered; when a rank issues collective k, and every second it
// waits, it sends k (8 bytes, eager) to every other rank on a private communicator, and keeps a
// receive posted from each. A wait that passes the timeout names the ranks that have not reached
// k or have been silent for 3 heartbeats (a stopped rank that had issued k: it cannot progress
// it), then MPI_Abort ends every process of the job (a stopped process too: mpirun kills it).
#define OMPI_SKIP_MPICXX 1  // the C API only: no deprecated C++ bindings (and their warnings)
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "backends.h"

namespace latent::dist {
namespace {

using Clock = std::chrono::steady_clock;

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  fail("dist", "{} failed: {}", what, std::string(text, static_cast<size_t>(len)));
}

MPI_Datatype float_type(const Tensor& t, const char* op) {
  if (!t.defined()) fail(op, "tensor is undefined");
  if (!t.device().is_cpu()) fail(op, "the mpi backend reduces CPU tensors; got one on {} (use the nccl backend)", t.device());
  if (!t.is_contiguous()) fail(op, "the tensor must be contiguous (shape {})", t.shape());
  if (t.dtype() == kFloat32) return MPI_FLOAT;
  if (t.dtype() == kFloat64) return MPI_DOUBLE;
  fail(op, "dtype {} is not supported (float32, float64)", t.dtype());
}

class MpiGroup;

class MpiWork final : public Work {
 public:
  MpiWork(MpiGroup* group, Tensor t, ReduceOp op, uint64_t seq, MPI_Request req)
      : group_(group), t_(std::move(t)), op_(op), seq_(seq), req_(req) {}
  bool test() override;
  void wait() override;

 private:
  void finish();
  MpiGroup* group_;
  Tensor t_;
  ReduceOp op_;
  uint64_t seq_;
  MPI_Request req_;
  bool done_ = false;
};

class MpiGroup final : public ProcessGroup {
 public:
  MpiGroup() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    }
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &heartbeat_), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    MPI_Comm local;
    check_mpi(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
    const size_t n = static_cast<size_t>(size_);
    last_seen_.assign(n, 0);
    last_heard_.assign(n, Clock::now());
    recv_buf_.assign(n, 0);
    send_buf_.assign(n, 0);
    recv_req_.assign(n, MPI_REQUEST_NULL);
    send_req_.assign(n, MPI_REQUEST_NULL);
    for (int p = 0; p < size_; ++p)
      if (p != rank_) post_receive(p);
  }

  std::string backend() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }

  void broadcast(Tensor& t, int root) override {
    if (!t.defined() || !t.device().is_cpu() || !t.is_contiguous())
      fail("broadcast", "the mpi backend broadcasts contiguous CPU tensors");
    if (root < 0 || root >= size_) fail("broadcast", "root rank {} does not exist in a group of {}", root, size_);
    const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
    if (bytes > INT32_MAX) fail("broadcast", "{} bytes is more than one MPI message carries (2^31 - 1)", bytes);
    MPI_Request req;
    check_mpi(MPI_Ibcast(t.raw_data(), static_cast<int>(bytes), MPI_BYTE, root, comm_, &req), "MPI_Ibcast");
    wait_request(req, "broadcast", announce());
  }

  std::shared_ptr<Work> allreduce_async(Tensor& t, ReduceOp op) override {
    const MPI_Datatype type = float_type(t, "allreduce");
    if (t.numel() > INT32_MAX) fail("allreduce", "{} elements is more than one MPI message carries", t.numel());
    MPI_Request req;
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), static_cast<int>(t.numel()), type, MPI_SUM, comm_, &req),
              "MPI_Iallreduce");
    return std::make_shared<MpiWork>(this, t, op, announce(), req);
  }

  void barrier() override {
    MPI_Request req;
    check_mpi(MPI_Ibarrier(comm_, &req), "MPI_Ibarrier");
    wait_request(req, "barrier", announce());
  }

  void progress() override {
    int flag = 0;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_, &flag, MPI_STATUS_IGNORE);  // drives the progress engine
  }

  [[noreturn]] void abort(const std::string& message, int code) override {
    std::fprintf(stderr, "%s\n", message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

  /// Blocks until `req` completes; returns the seconds spent. Ends the job after the timeout.
  double wait_request(MPI_Request& req, const char* what, uint64_t seq) {
    const auto start = Clock::now();
    auto next_beat = start + heartbeat_interval();
    for (;;) {
      int flag = 0;
      check_mpi(MPI_Test(&req, &flag, MPI_STATUS_IGNORE), what);
      if (flag) break;
      poll_heartbeats();
      const auto now = Clock::now();
      if (now >= next_beat) {  // still here, still waiting for `seq`
        send_heartbeats();
        next_beat = now + heartbeat_interval();
      }
      const std::chrono::duration<double> waited = now - start;
      if (waited > timeout_) abort(missing_message(what, seq, waited.count()), 3);
      if (waited.count() > 0.010) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      } else if (waited.count() > 0.001) {
        sched_yield();
      }
    }
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

  void finalize() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    for (int p = 0; p < size_; ++p) {
      if (recv_req_[static_cast<size_t>(p)] != MPI_REQUEST_NULL) {
        MPI_Cancel(&recv_req_[static_cast<size_t>(p)]);
        MPI_Wait(&recv_req_[static_cast<size_t>(p)], MPI_STATUS_IGNORE);
      }
      if (send_req_[static_cast<size_t>(p)] != MPI_REQUEST_NULL) MPI_Wait(&send_req_[static_cast<size_t>(p)], MPI_STATUS_IGNORE);
    }
    MPI_Finalize();
  }

 private:
  void post_receive(int p) {
    MPI_Irecv(&recv_buf_[static_cast<size_t>(p)], 1, MPI_UINT64_T, p, 0, heartbeat_, &recv_req_[static_cast<size_t>(p)]);
  }

  /// Numbers the next collective and tells the other ranks this rank has reached it.
  uint64_t announce() {
    ++seq_;
    send_heartbeats();
    return seq_;
  }

  Clock::duration heartbeat_interval() const {
    return std::chrono::duration_cast<Clock::duration>(std::min(std::chrono::duration<double>(1.0), timeout_ / 4));
  }

  void send_heartbeats() {
    for (int p = 0; p < size_; ++p) {
      if (p == rank_) continue;
      MPI_Request& r = send_req_[static_cast<size_t>(p)];
      int flag = 1;
      if (r != MPI_REQUEST_NULL) MPI_Test(&r, &flag, MPI_STATUS_IGNORE);
      if (!flag) continue;  // the previous note has not left yet: this rank is ahead of p anyway
      send_buf_[static_cast<size_t>(p)] = seq_;
      MPI_Isend(&send_buf_[static_cast<size_t>(p)], 1, MPI_UINT64_T, p, 0, heartbeat_, &r);
    }
  }

  void poll_heartbeats() {
    for (int p = 0; p < size_; ++p) {
      if (p == rank_) continue;
      for (;;) {
        int flag = 0;
        MPI_Test(&recv_req_[static_cast<size_t>(p)], &flag, MPI_STATUS_IGNORE);
        if (!flag) break;
        last_seen_[static_cast<size_t>(p)] = std::max(last_seen_[static_cast<size_t>(p)], recv_buf_[static_cast<size_t>(p)]);
        last_heard_[static_cast<size_t>(p)] = Clock::now();
        post_receive(p);
      }
    }
  }

  std::string missing_message(const char* what, uint64_t seq, double waited) {
    poll_heartbeats();
    const auto now = Clock::now();
    std::string missing, detail;
    for (int p = 0; p < size_; ++p) {
      const size_t i = static_cast<size_t>(p);
      const double silent = std::chrono::duration<double>(now - last_heard_[i]).count();
      const bool behind = last_seen_[i] < seq;
      if (p == rank_ || (!behind && silent < 3 * std::chrono::duration<double>(heartbeat_interval()).count())) continue;
      missing += (missing.empty() ? "" : ", ") + std::to_string(p);
      detail += fmt::format("{}rank {} at #{}, silent for {:.0f} s", detail.empty() ? "" : "; ", p, last_seen_[i], silent);
    }
    if (missing.empty())
      return fmt::format("[dist] rank {}: {} #{} waited {:.0f} s (--dist-timeout-s) while every rank answered; "
                         "ending the job", rank_, what, seq, waited);
    return fmt::format("[dist] rank {}: {} #{} waited {:.0f} s (--dist-timeout-s); rank(s) {} stopped answering "
                       "({}); ending the job", rank_, what, seq, waited, missing, detail);
  }

  friend class MpiWork;
  MPI_Comm comm_ = MPI_COMM_NULL, heartbeat_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_size_ = 1;
  uint64_t seq_ = 0;
  std::vector<uint64_t> last_seen_, recv_buf_, send_buf_;
  std::vector<Clock::time_point> last_heard_;
  std::vector<MPI_Request> recv_req_, send_req_;
};

bool MpiWork::test() {
  if (done_) return true;
  int flag = 0;
  check_mpi(MPI_Test(&req_, &flag, MPI_STATUS_IGNORE), "allreduce");
  if (flag) finish();
  return done_;
}

void MpiWork::wait() {
  if (done_) return;
  waited_ += group_->wait_request(req_, "allreduce", seq_);
  finish();
}

void MpiWork::finish() {
  done_ = true;
  if (op_ == ReduceOp::Avg && group_->size() > 1) {
    const double scale = 1.0 / group_->size();
    const int64_t n = t_.numel();
    if (t_.dtype() == kFloat32) {
      float* p = t_.data_ptr<float>();
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(p[i] * scale);
    } else {
      double* p = t_.data_ptr<double>();
      for (int64_t i = 0; i < n; ++i) p[i] *= scale;
    }
  }
}

MpiGroup* world = nullptr;  // finalised at exit

}  // namespace

namespace detail {
std::shared_ptr<ProcessGroup> make_mpi_group() {
  if (!world) {
    world = new MpiGroup();  // lives until exit: MPI_Finalize must run after every use
    std::atexit([] { world->finalize(); });
  }
  return std::shared_ptr<ProcessGroup>(world, [](ProcessGroup*) {});
}
}  // namespace detail

}  // namespace latent::dist
