// The `latent` command: train autoencoders and use trained runs (tools/commands.cpp), plus
// `latent demo`, a self-contained fit on synthetic data.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "latent.h"

namespace {

constexpr const char* kUsage = R"(usage: latent <command> [options]

commands:
  train        train an autoencoder (linear, deep, conv, sparse, denoising, vae, conv-vae)
  eval         test loss of a trained run
  reconstruct  PNG of test images above their reconstructions
  sample       PNG of images sampled from a VAE's prior
  interpolate  PNG of decodings along a line between two codes
  embed        latent codes with labels as CSV, and a 2-D scatter plot
  anomaly      reconstruction-error anomaly scores, precision/recall/ROC AUC
  score        score every sample of a new file (CSV, PNG, IDX) with the stored preprocessing
  classify     semi-supervised accuracy from few labels: latent codes vs raw pixels
  serve        HTTP inference service (KServe v2 / Triton JSON, v1) for trained runs
  export       write a run's model (or its encoder, decoder, anomaly scorer) as ONNX
  demo         fit a small autoencoder to synthetic data and print the loss falling
  version      print the version and the BLAS build

run `latent <command> --help` for the options of a command.
)";

constexpr const char* kDemoUsage = R"(usage: latent demo [--steps N] [--seed S] [--threads T] [--lr LR]

Fits a 16-8-4-8-16 tanh autoencoder to 512 synthetic 16-d points that lie near a 4-d subspace,
with full-batch Adam (latent::optim::Adam), and prints the reconstruction MSE.

options:
  --steps N     training steps (default 300)
  --seed S      random seed (default 0)
  --threads T   threads for latent and OpenBLAS together (default: OpenBLAS's own choice)
  --lr LR       Adam learning rate (default 0.01)
  -h, --help    show this help
)";

using latent::tools::UsageError;

long long parse_int(std::string_view flag, const std::string& value, long long lo, long long hi) {
  char* end = nullptr;
  long long v = std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || v < lo || v > hi)
    throw UsageError{fmt::format("{} expects an integer in [{}, {}]; got '{}'", flag, lo, hi, value)};
  return v;
}

double parse_double(std::string_view flag, const std::string& value) {
  char* end = nullptr;
  double v = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || !(v > 0) || v > 1e3)
    throw UsageError{fmt::format("{} expects a positive number; got '{}'", flag, value)};
  return v;
}

struct DemoOptions {
  long long steps = 300, seed = 0, threads = 0;
  double lr = 0.01;
};

DemoOptions parse_demo(const std::vector<std::string>& args) {
  DemoOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw UsageError{fmt::format("{} needs a value", a)};
      return args[++i];
    };
    if (a == "--steps") o.steps = parse_int(a, value(), 1, 1000000);
    else if (a == "--seed") o.seed = parse_int(a, value(), 0, 1LL << 62);
    else if (a == "--threads") o.threads = parse_int(a, value(), 1, 256);
    else if (a == "--lr") o.lr = parse_double(a, value());
    else throw UsageError{fmt::format("unknown option '{}' for demo (see latent demo --help)", a)};
  }
  return o;
}

int run_demo(const DemoOptions& o) {
  using namespace latent;
  if (o.threads > 0) set_num_threads(static_cast<int>(o.threads));
  manual_seed(static_cast<uint64_t>(o.seed));
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
  optim::Adam adam({w1, b1, w2, b2, w3, b3, w4, b4}, optim::AdamOptions(o.lr));

  fmt::print("latent demo: 16-8-4-8-16 tanh autoencoder, 512 synthetic points, Adam lr {}\n", o.lr);
  fmt::print("{}\n", blas_info());
  const auto start = std::chrono::steady_clock::now();
  double first = 0, last = 0;
  const long long report_every = std::max<long long>(1, o.steps / 10);
  for (long long step = 1; step <= o.steps; ++step) {
    Tensor code = tanh(linear(tanh(linear(data, w1, b1)), w2, b2));
    Tensor recon = linear(tanh(linear(code, w3, b3)), w4, b4);
    Tensor diff = recon - data;
    Tensor loss = (diff * diff).mean();
    adam.zero_grad();
    loss.backward();
    adam.step();
    last = loss.item<double>();
    if (step == 1) first = last;
    if (step == 1 || step % report_every == 0 || step == o.steps)
      fmt::print("step {:5d}  loss {:.6f}\n", step, last);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("loss fell from {:.6f} to {:.6f} ({:.1f}x) in {:.2f} s\n", first, last, first / last, seconds);
  return last < first ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty()) {
      std::fputs(kUsage, stderr);
      return 2;
    }
    const std::string command = args[0];
    std::vector<std::string> rest(args.begin() + 1, args.end());
    const bool help = !rest.empty() && (rest[0] == "--help" || rest[0] == "-h");
    if (command == "--help" || command == "-h" || command == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (command == "version" || command == "--version") {
      fmt::print("latent 0.1.0\n{}\n", latent::blas_info());
      return 0;
    }
    using Command = int (*)(const std::vector<std::string>&);
    static const std::vector<std::pair<std::string, Command>> commands{
        {"train", latent::tools::cmd_train},           {"eval", latent::tools::cmd_eval},
        {"reconstruct", latent::tools::cmd_reconstruct}, {"sample", latent::tools::cmd_sample},
        {"interpolate", latent::tools::cmd_interpolate}, {"embed", latent::tools::cmd_embed},
        {"anomaly", latent::tools::cmd_anomaly},       {"classify", latent::tools::cmd_classify},
        {"export", latent::tools::cmd_export},
        {"score", latent::tools::cmd_score},
        {"serve", latent::tools::cmd_serve}};
    for (const auto& [name, fn] : commands)
      if (command == name) return fn(rest);
    if (command == "demo") {
      if (help) {
        std::fputs(kDemoUsage, stdout);
        return 0;
      }
      return run_demo(parse_demo(rest));
    }
    throw UsageError{fmt::format("unknown command '{}' (see latent --help)", command)};
  } catch (const UsageError& e) {
    fmt::print(stderr, "latent: {}\n", e.message);
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "latent: {}\n", e.what());
    return 1;
  }
}
