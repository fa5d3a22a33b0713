// Data-parallel training: every rank holds the whole model, trains on its own shard of each
// batch, and the gradients are averaged over the ranks before the optimizer step.
//
//   auto group = latent::dist::init_process_group("mpi");
//   latent::dist::DistributedDataParallel ddp(model, group);  // broadcasts rank 0's weights
//   for (...) { optimizer.zero_grad(); loss.backward(); optimizer.step(); }  // grads averaged in backward
//
// Gradients are gathered into buckets of about `bucket_mb` MB, parameters in reverse
// registration order (roughly the order backward produces their gradients). A post-accumulate
// hook on each parameter (autograd/node.h) notes when its gradient is complete; when every
// gradient of a bucket is, the bucket is copied into one flat buffer and its allreduce starts
// (non-blocking MPI, on the thread running backward), while backward goes on with the layers
// below. Buckets start in index order on every rank, as MPI requires. When backward ends, a
// queued callback starts what is left, waits for every bucket and copies the averages back into
// the gradients. A parameter that got no gradient this pass counts as a zero gradient.
#pragma once

#include <memory>
#include <vector>

#include "../nn/module.h"
#include "process_group.h"

namespace latent::dist {

/// How DistributedDataParallel buckets and reduces gradients.
struct DDPOptions {
  double bucket_mb = 1;            ///< bucket size in MB (2^20 bytes); our autoencoders' gradients are 0.9-3 MB
  bool broadcast_buffers = true;   ///< also copy rank 0's buffers (batch-norm statistics) at the start
  /// Avg for a loss that is a mean over the batch (the gradient of the global batch's mean); Sum
  /// for one summed over the batch (a VAE's ELBO), so N ranks give the single process's gradient.
  ReduceOp reduce = ReduceOp::Avg;
  /// Batch-norm layers normalise with the statistics of the global batch (summed over the ranks in
  /// forward and backward; convert_sync_batchnorm) instead of each rank's own share of it.
  bool sync_batchnorm = false;
};

/// Makes every BatchNorm in `module` (itself included) sum its training-mode batch statistics over
/// `group`'s ranks (nn::BatchNorm::stats_reducer): synchronised batch norm, so N ranks with
/// batches of B/N normalise as one process with batch B. Returns the number of layers changed.
/// Every rank must run the same layers in the same order (each is a collective).
int64_t convert_sync_batchnorm(nn::Module& module, std::shared_ptr<ProcessGroup> group);

/// Communication figures since construction (or reset_stats()).
struct DDPStats {
  int64_t steps = 0;               ///< synchronised backward passes
  int64_t buckets = 0;             ///< buckets per step
  int64_t bytes_per_step = 0;      ///< bytes allreduced per step (the gradient)
  double wait_seconds = 0;         ///< time backward's end spent blocked on allreduces
  int64_t started_in_backward = 0; ///< buckets whose allreduce started before backward ended
  int64_t done_before_wait = 0;    ///< buckets already complete when backward ended (fully hidden)
};

/// Data-parallel training of one module over the ranks of a ProcessGroup: the same weights on every
/// rank, and after each backward every parameter's gradient reduced over the ranks, bucket by bucket
/// as backward produces them (docs/design.md, "Data-parallel training").
class DistributedDataParallel {
 public:
  /// Attaches to `module`'s parameters (hooks) and broadcasts its parameters (and buffers) from
  /// rank 0, so every rank starts from the same weights.
  DistributedDataParallel(std::shared_ptr<nn::Module> module, std::shared_ptr<ProcessGroup> group,
                          DDPOptions options = {});
  ~DistributedDataParallel();
  DistributedDataParallel(const DistributedDataParallel&) = delete;
  DistributedDataParallel& operator=(const DistributedDataParallel&) = delete;

  /// The wrapped module (call its forward as usual).
  nn::Module& module() { return *module_; }
  /// The ranks it reduces over.
  ProcessGroup& group() { return *group_; }
  /// Bucket b's parameter indices (into module().parameters()), for tests and docs.
  const std::vector<std::vector<size_t>>& buckets() const { return bucket_params_; }

  /// While a NoSync lives, backward only accumulates local gradients (gradient accumulation);
  /// the first backward after it averages everything accumulated.
  class NoSync {
   public:
    /// Stops `ddp` reducing until this guard is destroyed.
    explicit NoSync(DistributedDataParallel& ddp) : ddp_(ddp), was_(ddp.sync_) { ddp_.sync_ = false; }
    ~NoSync() { ddp_.sync_ = was_; }
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    DistributedDataParallel& ddp_;
    bool was_;
  };
  /// `auto guard = ddp.no_sync();` (PyTorch's `with ddp.no_sync():`).
  [[nodiscard]] NoSync no_sync() { return NoSync(*this); }

  /// Communication figures since construction or the last reset_stats().
  const DDPStats& stats() const { return stats_; }
  /// Zeroes stats().
  void reset_stats();

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    std::vector<int64_t> offsets;
    Tensor flat;
    int ready = 0;
    std::shared_ptr<Work> work;
  };
  void on_grad_ready(size_t param);
  void launch_ready_buckets(bool all);
  void finish();

  std::shared_ptr<nn::Module> module_;
  std::shared_ptr<ProcessGroup> group_;
  DDPOptions options_;
  std::vector<Tensor> params_;
  std::vector<size_t> bucket_of_;
  std::vector<Bucket> buckets_;
  std::vector<std::vector<size_t>> bucket_params_;
  size_t next_launch_ = 0;
  bool pass_started_ = false;
  bool sync_ = true;
  DDPStats stats_;
};

}  // namespace latent::dist
