#include "ddp.h"

#include <chrono>

#include "../../autograd/grad_mode.h"
#include "../../autograd/hooks.h"
#include "../../ops/apply.h"
#include "../../ops/creation.h"
#include "../nn/layers.h"

namespace latent::dist {

namespace {

/// The sum of a tensor over the ranks as an op: forward allreduces a copy, backward allreduces the
/// incoming gradient (each rank's output depends on every rank's input with derivative 1, so the
/// gradient of rank i's input is the sum over the ranks of their outputs' gradients).
struct AllreduceSumOp {
  static constexpr const char* name = "dist_allreduce_sum";
  struct Ctx : OpContext {
    ProcessGroup* group = nullptr;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, ProcessGroup* group) {
    Tensor out = x.contiguous().clone();
    group->allreduce(out, ReduceOp::Sum);
    if (ctx) ctx->group = group;
    return out;
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& grad) {
    Tensor g = grad.contiguous().clone();
    ctx.group->allreduce(g, ReduceOp::Sum);
    return {g};
  }
};

class GroupStatsReducer : public nn::BatchStatsReducer {
 public:
  explicit GroupStatsReducer(std::shared_ptr<ProcessGroup> group) : group_(std::move(group)) {}
  Tensor sum_over_processes(const Tensor& t) override { return apply<AllreduceSumOp>(t, group_.get()); }

 private:
  std::shared_ptr<ProcessGroup> group_;
};

}  // namespace

int64_t convert_sync_batchnorm(nn::Module& module, std::shared_ptr<ProcessGroup> group) {
  if (!group) fail("ddp", "process group is null");
  auto reducer = std::make_shared<GroupStatsReducer>(std::move(group));
  int64_t changed = 0;
  module.apply([&](nn::Module& m) {
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(&m)) {
      bn->stats_reducer = reducer;
      ++changed;
    }
  });
  return changed;
}

DistributedDataParallel::DistributedDataParallel(std::shared_ptr<nn::Module> module, std::shared_ptr<ProcessGroup> group,
                                                 DDPOptions options)
    : module_(std::move(module)), group_(std::move(group)), options_(options) {
  if (!module_) fail("ddp", "module is null");
  if (!group_) fail("ddp", "process group is null");
  if (!(options_.bucket_mb > 0)) fail("ddp", "bucket_mb must be positive; got {}", options_.bucket_mb);
  NoGradGuard no_grad;
  // The same starting point everywhere: rank 0's parameters and buffers.
  for (Tensor p : module_->parameters()) {
    Tensor data = p.detach();
    group_->broadcast(data, 0);
  }
  if (options_.broadcast_buffers)
    for (Tensor b : module_->buffers()) group_->broadcast(b, 0);
  if (options_.sync_batchnorm) convert_sync_batchnorm(*module_, group_);

  for (const Tensor& p : module_->parameters())
    if (p.requires_grad()) params_.push_back(p);
  if (params_.empty()) fail("ddp", "the module has no parameters that require grad");
  // Buckets in reverse registration order, each up to bucket_mb (a larger parameter alone).
  const int64_t cap = static_cast<int64_t>(options_.bucket_mb * 1024 * 1024);
  bucket_of_.assign(params_.size(), 0);
  int64_t bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k];
    if (p.dtype() != kFloat32 && p.dtype() != kFloat64)
      fail("ddp", "parameter {} has dtype {}; gradients are averaged in float32 or float64", k, p.dtype());
    const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    const bool fits = !buckets_.empty() && bytes + size <= cap && buckets_.back().flat.dtype() == p.dtype() &&
                      params_[buckets_.back().params.front()].device() == p.device();
    if (!fits) {
      buckets_.emplace_back();
      buckets_.back().flat = Tensor();
      bytes = 0;
    }
    Bucket& b = buckets_.back();
    b.offsets.push_back(b.params.empty() ? 0 : b.offsets.back() + params_[b.params.back()].numel());
    b.params.push_back(k);
    if (!b.flat.defined() || b.flat.dtype() != p.dtype()) b.flat = empty({0}, p.dtype(), p.device());  // dtype marker
    bytes += size;
    bucket_of_[k] = buckets_.size() - 1;
  }
  for (Bucket& b : buckets_) {
    const int64_t n = b.offsets.back() + params_[b.params.back()].numel();
    b.flat = zeros({n}, b.flat.dtype(), params_[b.params.front()].device());
    bucket_params_.push_back(b.params);
    stats_.bytes_per_step += n * static_cast<int64_t>(b.flat.element_size());
  }
  stats_.buckets = static_cast<int64_t>(buckets_.size());
  for (size_t k = 0; k < params_.size(); ++k)
    set_post_accumulate_grad_hook(params_[k], [this, k](const Tensor&) { on_grad_ready(k); });
}

DistributedDataParallel::~DistributedDataParallel() {
  for (const Tensor& p : params_) set_post_accumulate_grad_hook(p, nullptr);
}

void DistributedDataParallel::reset_stats() {
  const DDPStats kept = stats_;
  stats_ = DDPStats{};
  stats_.buckets = kept.buckets;
  stats_.bytes_per_step = kept.bytes_per_step;
}

void DistributedDataParallel::on_grad_ready(size_t param) {
  if (!sync_) return;
  if (!pass_started_) {
    pass_started_ = true;
    queue_backward_callback([this] { finish(); });
  }
  Bucket& b = buckets_[bucket_of_[param]];
  if (++b.ready == static_cast<int>(b.params.size())) launch_ready_buckets(false);
  group_->progress();
}

void DistributedDataParallel::launch_ready_buckets(bool all) {
  while (next_launch_ < buckets_.size()) {
    Bucket& b = buckets_[next_launch_];
    if (!all && b.ready < static_cast<int>(b.params.size())) break;
    for (size_t j = 0; j < b.params.size(); ++j) {
      const Tensor& p = params_[b.params[j]];
      Tensor slot = b.flat.narrow(0, b.offsets[j], p.numel()).view(p.shape());
      const Tensor g = p.grad();
      if (g.defined()) {
        slot.copy_(g);
      } else {
        slot.zero_();  // no gradient this pass: a zero one, so every rank reduces the same buffers
      }
    }
    b.work = group_->allreduce_async(b.flat, options_.reduce);
    if (!all) ++stats_.started_in_backward;
    ++next_launch_;
  }
}

void DistributedDataParallel::finish() {
  launch_ready_buckets(true);
  const auto t0 = std::chrono::steady_clock::now();
  for (Bucket& b : buckets_)
    if (b.work->test()) ++stats_.done_before_wait;
  for (Bucket& b : buckets_) {
    b.work->wait();
    for (size_t j = 0; j < b.params.size(); ++j) {
      Tensor p = params_[b.params[j]];
      Tensor avg = b.flat.narrow(0, b.offsets[j], p.numel()).view(p.shape());
      Tensor g = p.grad();
      if (g.defined()) {
        g.copy_(avg);
      } else {
        p.set_grad(avg.clone());
      }
    }
    b.work.reset();
    b.ready = 0;
  }
  stats_.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++stats_.steps;
  next_launch_ = 0;
  pass_started_ = false;
}

}  // namespace latent::dist
