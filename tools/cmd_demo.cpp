// `latent demo`: a self-contained fit of a small autoencoder on synthetic data, using the library
// directly (tensors, autograd, optim::Adam), with no data set or run directory.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

#include "cli.h"
#include "commands.h"
#include "latent.h"

namespace latent::tools {

int cmd_demo(const std::vector<std::string>& argv) {
  int64_t steps = 300, threads = 0;
  uint64_t seed = 0;
  double lr = 0.01;
  Options opts("demo",
               "Fits a 16-8-4-8-16 tanh autoencoder to 512 synthetic 16-d points that lie near a 4-d subspace,\n"
               "with full-batch Adam (latent::optim::Adam), and prints the reconstruction MSE.");
  opts.integer("steps", "N", steps, 1, 1000000, "training steps");
  opts.integer("seed", "S", seed, 0, 1LL << 62, "random seed");
  opts.integer("threads", "T", threads, 1, 256, "threads for latent and OpenBLAS together")
      .shown_default("OpenBLAS's own choice");
  opts.number("lr", "LR", lr, 1e-9, 1e3, "Adam learning rate");
  if (!opts.parse(argv)) return 0;

  if (threads > 0) set_num_threads(static_cast<int>(threads));
  manual_seed(seed);
  // Data: 512 points x = z A + noise, z in R^4, A in R^{4x16}.
  Tensor basis = randn({4, 16});
  Tensor data = matmul(randn({512, 4}), basis) * 0.5 + randn({512, 16}) * 0.05;

  auto layer = [](int64_t in, int64_t out) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    Tensor w = (rand({out, in}) * 2.0 - 1.0) * bound;
    Tensor b = (rand({out}) * 2.0 - 1.0) * bound;
    return std::pair{w.requires_grad_(), b.requires_grad_()};
  };
  auto [w1, b1] = layer(16, 8);
  auto [w2, b2] = layer(8, 4);
  auto [w3, b3] = layer(4, 8);
  auto [w4, b4] = layer(8, 16);
  optim::Adam adam({w1, b1, w2, b2, w3, b3, w4, b4}, optim::AdamOptions(lr));

  fmt::print("latent demo: 16-8-4-8-16 tanh autoencoder, 512 synthetic points, Adam lr {}\n", lr);
  fmt::print("{}\n", blas_info());
  const auto start = std::chrono::steady_clock::now();
  double first = 0, last = 0;
  const int64_t report_every = std::max<int64_t>(1, steps / 10);
  for (int64_t step = 1; step <= steps; ++step) {
    Tensor code = tanh(linear(tanh(linear(data, w1, b1)), w2, b2));
    Tensor recon = linear(tanh(linear(code, w3, b3)), w4, b4);
    Tensor diff = recon - data;
    Tensor loss = (diff * diff).mean();
    adam.zero_grad();
    loss.backward();
    adam.step();
    last = loss.item<double>();
    if (step == 1) first = last;
    if (step == 1 || step % report_every == 0 || step == steps) fmt::print("step {:5d}  loss {:.6f}\n", step, last);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("loss fell from {:.6f} to {:.6f} ({:.1f}x) in {:.2f} s\n", first, last, first / last, seconds);
  return last < first ? 0 : 1;
}

}  // namespace latent::tools
