// One training step of `latent train` (issue 5): DataLoader batch, model loss, zero_grad, backward,
// Adam step, on Fashion-MNIST (random bytes when the dataset is not installed), for the dense
// ("deep"), "vae" and "conv" models of bench/compare_autoencoders.py. The step is the same code
// path as models/train/run.cpp's epoch loop. It prints ms per step (median of --reps repetitions of
// --steps steps, wall clock and this thread's CPU time) and the 469-step epoch it implies.
//
//   build/bench/ae_step [--model deep|vae|conv] [--steps 50] [--reps 5] [--warmup 10] [--threads N]
//                       [--precision fp32|bf16|fp16|both]
//
// --precision bf16 runs the step under AutocastGuard(kBFloat16) as `latent train --precision bf16`
// does; `both` builds the model twice from the same seed and interleaves float32 and bf16
// repetitions in one run, printing both medians and their ratio (issue 18).
//
// For instruction counts (repeatable on a loaded machine) run it under callgrind and collect only
// the timed steps:
//   valgrind --tool=callgrind --toggle-collect='run_steps*' build/bench/ae_step --steps 15 --reps 1 --warmup 3
#include <cstdio>
#include <memory>
#include <optional>

#include "bench_util.h"
#include "latent.h"

using namespace latent;

namespace {

struct Workload {
  std::shared_ptr<models::Autoencoder> model;
  std::unique_ptr<optim::Adam> optimizer;
  std::unique_ptr<DataLoader> loader;
  std::optional<DataLoader::Iterator> it, end;
};

/// `steps` training steps, exactly as models/train/run.cpp runs them. Not inlined, so callgrind's
/// --toggle-collect can select it.
[[gnu::noinline]] double run_steps(Workload& w, int64_t steps, DType precision = kFloat32) {
  AutocastGuard autocast(precision, precision != kFloat32);
  double loss_sum = 0;
  for (int64_t s = 0; s < steps; ++s) {
    if (!w.it || *w.it == *w.end) {  // the next epoch, as the range-for of run.cpp starts it
      w.it.emplace(w.loader->begin());
      w.end.emplace(w.loader->end());
    }
    const Batch& batch = **w.it;
    models::AELoss loss = w.model->loss(batch.inputs, batch.clean, 0.0);
    w.optimizer->zero_grad();
    loss.total.backward();
    w.optimizer->step();
    loss_sum += loss.total.item<double>();
    ++*w.it;  // makes the next batch, as the loop in run.cpp does
  }
  return loss_sum;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string model = bench::str_flag(argc, argv, "--model", "deep");
  const int64_t steps = bench::int_flag(argc, argv, "--steps", 50);
  const int64_t reps = bench::int_flag(argc, argv, "--reps", 5);
  const int64_t warmup = bench::int_flag(argc, argv, "--warmup", 10);
  const int64_t threads = bench::int_flag(argc, argv, "--threads", 0);
  const std::string precision = bench::str_flag(argc, argv, "--precision", "fp32");
  if (threads > 0) set_num_threads(static_cast<int>(threads));

  std::shared_ptr<const Dataset> data;
  try {
    IdxOptions o;
    o.flatten = true;
    data = std::make_shared<IdxDataset>(load_fashion_mnist(kFashionMnistDir, true, o));
  } catch (const Error&) {
    std::printf("# Fashion-MNIST not installed: random images\n");
    data = std::make_shared<TensorDataset>(rand({60000, 784}));
  }
  auto make = [&] {
    manual_seed(0);
    models::AEConfig config;
    config.model = model;
    auto w = std::make_unique<Workload>();
    w->model = models::make_autoencoder(config);
    w->model->train();
    w->optimizer = std::make_unique<optim::Adam>(w->model->parameters(), optim::AdamOptions(1e-3));
    DataLoaderOptions lo;
    lo.batch_size = 128;
    w->loader = std::make_unique<DataLoader>(data, lo);
    return w;
  };
  struct Side {
    const char* name;
    DType dtype;
    std::unique_ptr<Workload> w;
    std::vector<double> wall, cpu;
    double sink = 0;
  };
  std::vector<Side> sides;
  if (precision == "fp32" || precision == "both") sides.push_back({"fp32", kFloat32, make(), {}, {}, 0});
  if (precision == "bf16" || precision == "both") sides.push_back({"bf16", kBFloat16, make(), {}, {}, 0});
  if (precision == "fp16") sides.push_back({"fp16", kFloat16, make(), {}, {}, 0});
  if (sides.empty()) {
    std::fprintf(stderr, "[ae_step] --precision is '%s', expected fp32, bf16, fp16 or both\n", precision.c_str());
    return 2;
  }
  for (Side& side : sides) run_steps(*side.w, warmup, side.dtype);
  for (int64_t r = 0; r < reps; ++r)
    for (Side& side : sides) {  // interleaved repetitions
      const double w0 = bench::now_s(), c0 = bench::thread_cpu_s();
      side.sink += run_steps(*side.w, steps, side.dtype);
      side.wall.push_back((bench::now_s() - w0) / static_cast<double>(steps) * 1e3);
      side.cpu.push_back((bench::thread_cpu_s() - c0) / static_cast<double>(steps) * 1e3);
    }
  for (const Side& side : sides) {
    const double wm = bench::median(side.wall), cm = bench::median(side.cpu);
    std::printf("%s %s: %.3f ms/step wall (min %.3f), %.3f ms/step thread cpu; epoch (469 steps) %.3f s wall; %s; loss %.5g\n",
                model.c_str(), side.name, wm, bench::min_of(side.wall), cm, wm * 469e-3, blas_info().c_str(),
                side.sink / static_cast<double>(steps * reps));
  }
  if (sides.size() == 2)
    std::printf("%s bf16/fp32 ratio: %.3f wall, %.3f thread cpu (medians of %lld interleaved repetitions)\n", model.c_str(),
                bench::median(sides[1].wall) / bench::median(sides[0].wall),
                bench::median(sides[1].cpu) / bench::median(sides[0].cpu), static_cast<long long>(reps));
  return 0;
}
