// Data-parallel training steps (issue 14), run under mpirun by bench/distributed.sh: the deep or
// conv autoencoder on Fashion-MNIST (random images when it is not installed), global batch 128
// split over the ranks, Adam, as `latent train --distributed` runs them. On one rank it trains
// without DistributedDataParallel (what `latent train` does); on more it attaches it and reports
// what the gradient averaging cost:
//   - bytes allreduced per step and the buckets they went in,
//   - the time backward's end waited for allreduces (not hidden behind computation), its share of
//     the step,
//   - the same bytes allreduced alone (blocking, nothing to overlap with) and how much of that time
//     the overlapped steps hid: 1 - wait / alone,
//   - buckets started before backward ended and buckets already complete when it ended.
//
//   mpirun -np 2 build/bench/distributed [--model deep|conv] [--steps 40] [--reps 5] [--warmup 5] [--threads 1]
#include <cstdio>
#include <memory>
#include <optional>

#include "bench_util.h"
#include "latent.h"

using namespace latent;

int main(int argc, char** argv) {
  const std::string model = bench::str_flag(argc, argv, "--model", "deep");
  const int64_t steps = bench::int_flag(argc, argv, "--steps", 40);
  const int64_t reps = bench::int_flag(argc, argv, "--reps", 5);
  const int64_t warmup = bench::int_flag(argc, argv, "--warmup", 5);
  const int64_t threads = bench::int_flag(argc, argv, "--threads", 1);
  const double bucket_mb = std::atof(bench::str_flag(argc, argv, "--bucket-mb", "1").c_str());
  auto group = dist::init_process_group(dist::launched_by_mpi() ? "mpi" : "local");
  const int rank = group->rank(), ranks = group->size();
  set_num_threads(static_cast<int>(threads));
  manual_seed(0);

  std::shared_ptr<const Dataset> data;
  try {
    IdxOptions o;
    o.flatten = true;  // as latent train and bench/ae_step load it
    data = std::make_shared<IdxDataset>(load_fashion_mnist(kFashionMnistDir, true, o));
  } catch (const Error&) {
    if (rank == 0) std::printf("# Fashion-MNIST not installed: random images\n");
    data = std::make_shared<TensorDataset>(rand({60000, 784}));
  }
  models::AEConfig config;
  config.model = model;
  auto net = models::make_autoencoder(config);
  net->train();
  std::unique_ptr<dist::DistributedDataParallel> ddp;
  if (ranks > 1) ddp = std::make_unique<dist::DistributedDataParallel>(net, group, dist::DDPOptions{bucket_mb, true});
  optim::Adam adam(net->parameters(), optim::AdamOptions(1e-3));
  DataLoaderOptions lo;
  lo.batch_size = 128 / ranks;
  lo.num_replicas = ranks;
  lo.rank = rank;
  DataLoader loader(data, lo);
  std::optional<DataLoader::Iterator> it, end;
  auto run_steps = [&](int64_t n) {
    for (int64_t s = 0; s < n; ++s) {
      if (!it || *it == *end) {
        it.emplace(loader.begin());
        end.emplace(loader.end());
      }
      const Batch& batch = **it;
      models::AELoss loss = net->loss(batch.inputs, batch.clean, 0.0);
      adam.zero_grad();
      loss.total.backward();
      adam.step();
      ++*it;
    }
  };

  run_steps(warmup);
  std::vector<double> wall, wait;
  if (ddp) ddp->reset_stats();
  for (int64_t r = 0; r < reps; ++r) {
    group->barrier();
    const double w0 = bench::now_s(), wait0 = ddp ? ddp->stats().wait_seconds : 0;
    run_steps(steps);
    wall.push_back((bench::now_s() - w0) / static_cast<double>(steps) * 1e3);
    wait.push_back(((ddp ? ddp->stats().wait_seconds : 0) - wait0) / static_cast<double>(steps) * 1e3);
  }
  // The same bytes allreduced alone, bucket by bucket as DDP sends them, nothing to hide behind.
  std::vector<double> alone;
  if (ddp) {
    std::vector<Tensor> buffers;
    for (const auto& b : ddp->buckets()) {
      int64_t n = 0;
      for (size_t k : b) n += net->parameters()[k].numel();
      buffers.push_back(zeros({n}));
    }
    for (int r = 0; r < 20; ++r) {
      group->barrier();
      const double t0 = bench::now_s();
      for (Tensor& b : buffers) group->allreduce(b, dist::ReduceOp::Avg);
      alone.push_back((bench::now_s() - t0) * 1e3);
    }
  }
  if (rank == 0) {
    const double wm = bench::median(wall);
    std::printf("%s ranks=%d threads=%lld: %.3f ms/step (min %.3f), epoch (469 steps) %.2f s", model.c_str(), ranks,
                static_cast<long long>(threads), wm, bench::min_of(wall), wm * 469e-3);
    if (ddp) {
      const dist::DDPStats& s = ddp->stats();
      const double waited = bench::median(wait), al = bench::median(alone);
      std::printf("; allreduce %lld bytes/step in %lld buckets; wait %.3f ms/step (%.1f%% of the step); "
                  "alone %.3f ms; hidden %.0f%%; buckets started in backward %.2f/%lld, done before its end %.2f/%lld",
                  static_cast<long long>(s.bytes_per_step), static_cast<long long>(s.buckets), waited,
                  100 * waited / wm, al, al > 0 ? 100 * std::max(0.0, 1 - waited / al) : 0.0,
                  static_cast<double>(s.started_in_backward) / static_cast<double>(s.steps),
                  static_cast<long long>(s.buckets),
                  static_cast<double>(s.done_before_wait) / static_cast<double>(s.steps),
                  static_cast<long long>(s.buckets));
    }
    std::printf("\n");
  }
  return 0;
}
