// No-grad inference of the deep, conv and VAE-encoder models (issue 11, "A fast inference path"):
// model->forward(x) (the VAE: encode_distribution(x), mu and logvar) in eval mode under
// NoGradGuard, in-process, as a service or `latent score` calls it. Weights are untrained: random
// init after manual_seed(0), so every process (and the ONNX export) has the same model.
//
//   build/bench/infer [--threads N] [--calls 1000] [--reps 7] [--model M] [--batch B]
//       a table of each model (or M) at batch 1 and 256 (or B): medians of the repetitions
//   build/bench/infer --export DIR      writes DIR/deep.onnx, conv.onnx, vae-encoder.onnx
//   build/bench/infer --serve [--threads N]
//       reads lines "MODEL BATCH CALLS" on stdin and answers each with the wall-clock and the
//       process-CPU microseconds per call of CALLS calls (one repetition); bench/infer_compare.py drives it beside ONNX Runtime and
//       PyTorch, interleaving the repetitions.
//
// For instruction counts: valgrind --tool=callgrind --toggle-collect='run_calls*' build/bench/infer --reps 1
#include <time.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "bench_util.h"
#include "latent.h"

using namespace latent;

namespace {

const char* const kModels[] = {"deep", "conv", "vae-encoder"};

struct Models {
  std::map<std::string, std::shared_ptr<models::Autoencoder>> by_name;
  std::map<std::pair<std::string, int64_t>, Tensor> inputs;  // one input per model and batch

  Models() {
    for (const char* name : kModels) {
      manual_seed(0);
      models::AEConfig config;
      config.model = std::string(name) == "vae-encoder" ? "vae" : name;
      auto model = models::make_autoencoder(config);
      model->eval();
      by_name[name] = model;
    }
  }
  models::Autoencoder& get(const std::string& name) {
    auto it = by_name.find(name);
    if (it == by_name.end()) fail("infer", "unknown model '{}' (deep, conv, vae-encoder)", name);
    return *it->second;
  }
  const Tensor& input(const std::string& name, int64_t batch) {
    Tensor& x = inputs[{name, batch}];
    if (!x.defined()) {
      manual_seed(1);
      x = rand({batch, get(name).config().input_dim});
    }
    return x;
  }
};

/// One no-grad forward; returns an element so the work cannot be dropped.
float call(Models& m, const std::string& name, const Tensor& x) {
  NoGradGuard no_grad;
  models::Autoencoder& model = m.get(name);
  if (name == "vae-encoder") {
    auto [mu, logvar] = static_cast<models::VariationalAutoencoder&>(model).encode_distribution(x);
    return mu.data_ptr<float>()[0] + logvar.data_ptr<float>()[0];
  }
  return model.forward(x).data_ptr<float>()[0];
}

/// CPU seconds of the whole process (every thread).
double process_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// Wall-clock and process-CPU microseconds per call over `calls` calls. Not inlined, so
/// callgrind can select it.
[[gnu::noinline]] bench::WallCpu run_calls(Models& m, const std::string& name, int64_t batch, int64_t calls) {
  const Tensor& x = m.input(name, batch);
  volatile float sink = 0;
  const double t0 = bench::now_s(), c0 = process_cpu_s();
  for (int64_t i = 0; i < calls; ++i) sink = sink + call(m, name, x);
  const double n = static_cast<double>(calls);
  return {(bench::now_s() - t0) / n * 1e6, (process_cpu_s() - c0) / n * 1e6};
}

void export_models(Models& m, const std::string& dir) {
  for (const char* name : kModels) {
    const bool encoder = std::string(name) == "vae-encoder";
    onnx::ModelProto proto =
        onnx::export_autoencoder(m.get(name), encoder ? onnx::AutoencoderPart::Encoder : onnx::AutoencoderPart::Full);
    onnx::save_model(proto, dir + "/" + name + ".onnx");
    std::printf("%s/%s.onnx\n", dir.c_str(), name);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const int64_t threads = bench::int_flag(argc, argv, "--threads", 0);
    if (threads > 0) set_num_threads(static_cast<int>(threads));
    Models models;
    const std::string export_dir = bench::str_flag(argc, argv, "--export", "");
    if (!export_dir.empty()) {
      export_models(models, export_dir);
      return 0;
    }
    bool serve = false;
    for (int i = 1; i < argc; ++i) serve = serve || std::string(argv[i]) == "--serve";
    if (serve) {
      std::string name;
      int64_t batch = 0, calls = 0;
      while (std::cin >> name >> batch >> calls) {
        run_calls(models, name, batch, std::min<int64_t>(calls, 20));  // warm: packing, allocator
        const bench::WallCpu t = run_calls(models, name, batch, calls);
        std::printf("%.4f %.4f\n", t.wall_us, t.cpu_us);
        std::fflush(stdout);
      }
      return 0;
    }
    const int64_t calls = bench::int_flag(argc, argv, "--calls", 1000);
    const int64_t reps = bench::int_flag(argc, argv, "--reps", 7);
    std::printf("# bench/infer: no-grad forward, eval mode, untrained weights (seed 0), %d thread(s); %lld calls x "
                "%lld reps, medians\n",
                get_num_threads(), static_cast<long long>(calls), static_cast<long long>(reps));
    std::printf("%-12s %6s %12s %14s %14s\n", "model", "batch", "us/call", "samples/s", "cpu us/call");
    const std::string only_model = bench::str_flag(argc, argv, "--model", "");
    const int64_t only_batch = bench::int_flag(argc, argv, "--batch", 0);
    for (const char* name : kModels)
      for (int64_t batch : {int64_t{1}, int64_t{256}}) {
        if ((!only_model.empty() && only_model != name) || (only_batch > 0 && only_batch != batch)) continue;
        run_calls(models, name, batch, 20);
        std::vector<double> wall, cpu;
        for (int64_t r = 0; r < reps; ++r) {
          const bench::WallCpu t = run_calls(models, name, batch, calls);
          wall.push_back(t.wall_us);
          cpu.push_back(t.cpu_us);
        }
        const double med = bench::median(wall);
        std::printf("%-12s %6lld %12.2f %14.0f %14.2f\n", name, static_cast<long long>(batch), med,
                    double(batch) / med * 1e6, bench::median(cpu));
      }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "infer: %s\n", e.what());
    return 1;
  }
}
