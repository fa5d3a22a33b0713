// GPU training step of the conv and dense autoencoders of ../shared/peers/torch_bench.py, against
// PyTorch on the same GPU (bench/cuda_bench_torch.py, run by this program with --torch PYTHON).
//
// One step: forward, MSE against the input, backward, Adam (lr 1e-3), batch 128, float32, on
// synthetic images in [0, 1] already resident on the GPU (64 batches, cycled), so the figure is
// the training step itself. Steps are timed after a warm-up with one device synchronisation at
// the end (kernels run asynchronously); no side reads the loss inside the timed loop, so the host
// may run ahead of the GPU on both. ms/step = wall time / steps.
//
// usage: cuda_bench [--steps 300] [--warmup 30] [--torch /path/to/python3] [--script cuda_bench_torch.py]
// Latent's convolutions use cuDNN heuristics (LATENT_CUDNN_BENCHMARK=1 times every algorithm
// instead); both sides run float32 without TF32.
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"
#include "latent.h"
#include "models/ae/autoencoder.h"
#include "models/nn/optim.h"

#ifndef LATENT_BENCH_DIR
#define LATENT_BENCH_DIR "bench"
#endif

using namespace latent;

namespace {

constexpr int64_t kBatch = 128, kBatches = 64;

double time_model(const std::string& name, int steps, int warmup) {
  models::AEConfig cfg;
  cfg.model = name;  // "conv" or "deep" (784-128-64-128-784, torch_bench's Dense)
  manual_seed(0);
  auto model = models::make_autoencoder(cfg);
  model->to(kCUDA);
  model->train();
  optim::Adam opt(model->parameters(), optim::AdamOptions(1e-3));
  Generator gen(1);
  std::vector<Tensor> data;
  for (int64_t i = 0; i < kBatches; ++i) data.push_back(rand({kBatch, 784}, kFloat32, &gen, kCUDA));
  auto step = [&](int i) {
    const Tensor& x = data[static_cast<size_t>(i % kBatches)];
    Tensor loss = mse_loss(model->forward(x), x);
    opt.zero_grad();
    loss.backward();
    opt.step();
    return loss;
  };
  for (int i = 0; i < warmup; ++i) step(i);
  synchronize(kCUDA);
  const double t0 = bench::now_s();
  Tensor last;
  for (int i = 0; i < steps; ++i) last = step(i);
  synchronize(kCUDA);
  const double ms = (bench::now_s() - t0) * 1e3 / steps;
  fmt::print("latent {:5s} {} parameters: {:.4f} ms/step (final loss {:.5f})\n", name, model->parameter_count(), ms,
             last.item<double>());
  std::fflush(stdout);
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 300, warmup = 30;
  std::string python, script = std::string(LATENT_BENCH_DIR) + "/cuda_bench_torch.py";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--warmup")) warmup = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--torch")) python = argv[i + 1];
    else if (!std::strcmp(argv[i], "--script")) script = argv[i + 1];
  }
  if (!device_available(kCUDA)) {
    fmt::print("cuda_bench: skipped: {}\n", device_unavailable_reason(kCUDA));
    return 0;
  }
  std::map<std::string, double> latent_ms;
  for (const char* name : {"conv", "deep"}) {
    try {
      latent_ms[name] = time_model(name, steps, warmup);
    } catch (const std::exception& e) {
      fmt::print("latent {}: FAILED: {}\n", name, e.what());
    }
  }
  if (python.empty()) return 0;
  const std::string cmd = fmt::format("{} {} --steps {} --warmup {} 2>&1", python, script, steps, warmup);
  fmt::print("running: {}\n", cmd);
  std::fflush(stdout);
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return fmt::print("cannot run {}\n", cmd), 1;
  char line[512];
  std::map<std::string, double> torch_ms;
  while (std::fgets(line, sizeof line, pipe)) {
    std::fputs(line, stdout);
    char name[32];
    double ms = 0;
    if (std::sscanf(line, "torch %31s %*s %*s %lf ms/step", name, &ms) == 2) torch_ms[name] = ms;
  }
  pclose(pipe);
  for (const auto& [name, ms] : latent_ms) {
    const std::string key = name == "deep" ? "dense" : name;
    if (torch_ms.count(key))
      fmt::print("ratio {:5s}: latent {:.4f} ms / torch {:.4f} ms = {:.2f}x ({})\n", key, ms, torch_ms[key],
                 ms / torch_ms[key], ms < torch_ms[key] ? "latent faster" : "torch faster");
  }
  return 0;
}
