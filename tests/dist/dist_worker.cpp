// Run under mpirun by tests/dist_test.py: the process group's collectives and
// DistributedDataParallel's bucketed gradient averaging on N ranks, each against a value every
// rank computes alone (the closed-form sums, and the full-batch gradient of the same model).
// Prints "ok <check>" lines; exits 1 on the first mismatch.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "latent.h"

using namespace latent;

namespace {

dist::ProcessGroup* G = nullptr;

[[noreturn]] void failed(const std::string& what) {
  std::fprintf(stderr, "rank %d: FAILED %s\n", G ? G->rank() : -1, what.c_str());
  std::fflush(stderr);
  std::exit(1);
}

void ok(const char* what) {
  if (G->rank() == 0) std::printf("ok %s\n", what);
  std::fflush(stdout);
}

void expect_close(const Tensor& got, const Tensor& want, double rel, const std::string& what) {
  const std::vector<double> a = got.to_vector<double>(), b = want.to_vector<double>();
  if (a.size() != b.size()) failed(what + ": sizes differ");
  double scale = 1e-30;  // relative to the tensor's largest element: float32 sums of cancelling terms
  for (double x : b) scale = std::max(scale, std::abs(x));
  for (size_t i = 0; i < a.size(); ++i)
    if (std::abs(a[i] - b[i]) > rel * scale)
      failed(fmt::format("{}: element {}: {} vs {}", what, i, a[i], b[i]));
}

/// y = tanh(x W1^T) uses W1, then the decoder uses W1 again (tied): two gradients into one leaf.
struct TiedNet : nn::Module {
  std::shared_ptr<nn::Linear> enc, mid;
  TiedNet() : Module("TiedNet") {
    enc = register_module("enc", std::make_shared<nn::Linear>(12, 40));
    mid = register_module("mid", std::make_shared<nn::Linear>(40, 40));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = tanh(enc->forward(x));
    h = tanh(mid->forward(h));
    return matmul(h, enc->weight);  // [B, 40] x [40, 12]
  }
};

std::shared_ptr<TiedNet> make_net() {
  manual_seed(7);  // the same weights on every rank, so the reference model matches
  return std::make_shared<TiedNet>();
}

/// Gradients of mean((net(x) - x)^2) on the rows of x (no DDP attached).
std::vector<Tensor> grads_of(TiedNet& net, const Tensor& x) {
  for (Tensor p : net.parameters()) p.zero_grad();
  Tensor d = net.forward(x) - x;
  mean(d * d).backward();
  std::vector<Tensor> g;
  for (const Tensor& p : net.parameters()) g.push_back(p.grad().clone());
  return g;
}

/// Rows r, r + N, ... of x (this rank's shard, as DistributedSampler deals them).
Tensor shard(const Tensor& x, int rank, int size) { return x.slice(0, rank, x.size(0), size).contiguous(); }

/// `dist_worker --nccl` (1 rank): the NCCL group on CUDA tensors against the MPI group on the same
/// values on the CPU, and DDP on a CUDA model. Prints "SKIP nccl: <reason>" where it cannot run.
int nccl_check() {
  if (!dist::backend_available("nccl")) {
    std::printf("SKIP nccl: this build has no NCCL group (%s)\n", dist::available_backends().c_str());
    return 0;
  }
  if (!device_available(kCUDA)) {
    std::printf("SKIP nccl: no usable GPU: %s\n", device_unavailable_reason(kCUDA).c_str());
    return 0;
  }
  auto mpi = dist::init_process_group("mpi");
  auto nccl = dist::init_process_group("nccl");
  G = nccl.get();
  Generator gen(5);
  const Tensor values = rand({4099}, kFloat32, &gen);
  for (dist::ReduceOp op : {dist::ReduceOp::Sum, dist::ReduceOp::Avg}) {
    Tensor on_cpu = values.clone(), on_gpu = values.to(kCUDA);
    mpi->allreduce(on_cpu, op);
    nccl->allreduce(on_gpu, op);
    expect_close(on_gpu.to(kCPU), on_cpu, 1e-7, "nccl allreduce vs mpi");
  }
  Tensor b = values.to(kCUDA);
  nccl->broadcast(b, 0);
  expect_close(b.to(kCPU), values, 0, "nccl broadcast");
  auto net = make_net();
  auto ref = make_net();
  net->to(kCUDA);
  const Tensor x = rand({16, 12}, kFloat32, &gen);
  const std::vector<Tensor> want = grads_of(*ref, x);
  dist::DistributedDataParallel ddp(net, nccl, dist::DDPOptions{0.004, true});
  Tensor d = net->forward(x.to(kCUDA)) - x.to(kCUDA);
  mean(d * d).backward();
  const auto params = net->parameters();
  for (size_t i = 0; i < params.size(); ++i)
    expect_close(params[i].grad().to(kCPU), want[i], 1e-5, fmt::format("nccl ddp grad {}", i));
  std::printf("ok nccl: 1-rank allreduce and broadcast on CUDA match the mpi group; ddp gradients on the GPU\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--nccl") return nccl_check();
  auto group = dist::init_process_group("mpi");
  G = group.get();
  const int r = group->rank(), n = group->size();
  group->set_timeout(std::chrono::seconds(60));

  // broadcast: rank 0's values everywhere.
  {
    Tensor t = r == 0 ? arange(0, 1000, 1, kFloat32) : zeros({1000});
    group->broadcast(t, 0);
    expect_close(t, arange(0, 1000, 1, kFloat32), 0, "broadcast");
    ok("broadcast");
  }
  // allreduce: rank + 1 everywhere sums to n(n+1)/2, averages to (n+1)/2, in float32 and float64.
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor s = full({777}, r + 1.0, dt), a = full({777}, r + 1.0, dt);
    auto ws = group->allreduce_async(s, dist::ReduceOp::Sum);
    auto wa = group->allreduce_async(a, dist::ReduceOp::Avg);  // two in flight at once
    wa->wait();
    ws->wait();
    expect_close(s, full({777}, n * (n + 1) / 2.0, kFloat64), 0, "allreduce sum");
    expect_close(a, full({777}, (n + 1) / 2.0, kFloat64), 1e-7, "allreduce avg");
  }
  ok("allreduce sum and avg, float32 and float64");
  group->barrier();
  ok("barrier");

  // DDP: averaged shard gradients == the full-batch gradient, with many small buckets.
  Generator gen(123);
  const Tensor x = rand({8 * n, 12}, kFloat32, &gen), x2 = rand({8 * n, 12}, kFloat32, &gen);
  auto ref = make_net();
  const std::vector<Tensor> want = grads_of(*ref, x);
  auto net = make_net();
  {
    // Make rank 0's weights different on purpose: the DDP constructor must broadcast them.
    NoGradGuard ng;
    if (r != 0) net->parameters()[0].add_(1.0);
  }
  dist::DistributedDataParallel ddp(net, group, dist::DDPOptions{0.004, true});  // 4 KB buckets
  if (ddp.buckets().size() < 3) failed(fmt::format("expected several buckets, got {}", ddp.buckets().size()));
  expect_close(net->parameters()[0], ref->parameters()[0], 0, "broadcast of parameters");
  {
    Tensor d = net->forward(shard(x, r, n)) - shard(x, r, n);
    mean(d * d).backward();  // the buckets' allreduces run during backward; done when it returns
  }
  const auto params = net->parameters();
  for (size_t i = 0; i < params.size(); ++i) expect_close(params[i].grad(), want[i], 1e-5, fmt::format("ddp grad {}", i));
  if (ddp.stats().steps != 1 || ddp.stats().started_in_backward < 1)
    failed(fmt::format("stats: steps {}, buckets started in backward {}", ddp.stats().steps, ddp.stats().started_in_backward));
  ok("ddp gradients equal the full-batch gradient (tied weight, several buckets)");

  // no_sync: local accumulation, then one averaged step: the sum of two full-batch gradients.
  for (Tensor p : net->parameters()) p.zero_grad();
  {
    auto guard = ddp.no_sync();
    Tensor d = net->forward(shard(x, r, n)) - shard(x, r, n);
    mean(d * d).backward();
  }
  if (ddp.stats().steps != 1) failed("no_sync ran an allreduce");
  {
    Tensor d = net->forward(shard(x2, r, n)) - shard(x2, r, n);
    mean(d * d).backward();
  }
  const std::vector<Tensor> want2 = grads_of(*ref, x2);
  for (size_t i = 0; i < params.size(); ++i)
    expect_close(params[i].grad(), want[i] + want2[i], 1e-5, fmt::format("no_sync grad {}", i));
  ok("no_sync accumulates locally, the next backward averages the sum");
  return 0;
}
