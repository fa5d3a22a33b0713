// int8 against float32 inference of the same trained run (issue 13): batch-256 throughput and
// batch-1 latency of RUN and RUN/int8 (`latent quantize`), interleaved repetitions, medians and
// ratios; the mean per-sample reconstruction error of both on the run's test set; the weight
// files' sizes. bench/quantize_compare.py runs this beside ONNX Runtime's float32 and QDQ int8
// sessions of the same model. Prints one JSON line with --json.
//
// usage: build/bench/quantize RUN [--int8 DIR (RUN/int8)] [--threads 1] [--reps 7] [--json]
//        build/bench/quantize RUN --profile SECONDS [--batch 256]: only the int8 forward, in a loop
//        (for `perf record -g`), then its thread-CPU time per call
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>

#include "bench_util.h"
#include "latent.h"

using namespace latent;

namespace {

double mean_error(models::Autoencoder& model, const Dataset& test) {
  const std::vector<double> e = models::reconstruction_errors(model, test);
  double s = 0;
  for (double v : e) s += v;
  return s / static_cast<double>(e.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: %s RUN [--int8 DIR] [--threads N] [--reps N] [--json]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const std::string int8_dir = bench::str_flag(argc, argv, "--int8", dir + "/int8");
  const int threads = static_cast<int>(bench::int_flag(argc, argv, "--threads", 1));
  const int reps = static_cast<int>(bench::int_flag(argc, argv, "--reps", 7));
  bool json = false;
  for (int i = 1; i < argc; ++i) json = json || std::string(argv[i]) == "--json";
  set_num_threads(threads);

  models::LoadedRun f = models::load(dir), q = models::load(int8_dir);
  models::DataSplit split = models::run_data(f, "");
  std::vector<int64_t> idx(256);
  for (int64_t i = 0; i < 256; ++i) idx[size_t(i)] = i;
  const Tensor x256 = split.test->get_batch(idx).inputs.view({256, -1});
  const Tensor x1 = x256.slice(0, 0, 1).contiguous();

  NoGradGuard no_grad;
  f.model->eval();
  q.model->eval();
  if (const double seconds = double(bench::int_flag(argc, argv, "--profile", 0)); seconds > 0) {
    const int64_t batch = bench::int_flag(argc, argv, "--batch", 256);
    const Tensor xb = batch == 1 ? x1 : x256.slice(0, 0, std::min<int64_t>(batch, 256)).contiguous();
    int64_t calls = 0;
    const double t0 = bench::thread_cpu_s();
    while (bench::thread_cpu_s() - t0 < seconds) {
      for (int i = 0; i < 20; ++i) (void)q.model->forward(xb);
      calls += 20;
    }
    std::printf("int8 batch-%lld: %.2f us per call (thread-CPU, %lld calls)\n", static_cast<long long>(xb.shape()[0]),
                (bench::thread_cpu_s() - t0) * 1e6 / double(calls), static_cast<long long>(calls));
    return 0;
  }
  // Thread-CPU time per call (with one thread, what the call cost its core; on a shared machine the
  // wall time also counts waiting for a core) and wall time, interleaved: both engines see the
  // same machine state.
  std::vector<double> f256, q256, f1, q1, wf256, wq256, wf1, wq1;
  auto add = [](std::vector<double>& cpu, std::vector<double>& wall, bench::WallCpu t) {
    cpu.push_back(t.cpu_us);
    wall.push_back(t.wall_us);
  };
  for (int r = 0; r < reps; ++r) {
    add(f256, wf256, bench::wall_cpu_per_call(40, [&] { (void)f.model->forward(x256); }));
    add(q256, wq256, bench::wall_cpu_per_call(40, [&] { (void)q.model->forward(x256); }));
    add(f1, wf1, bench::wall_cpu_per_call(2000, [&] { (void)f.model->forward(x1); }));
    add(q1, wq1, bench::wall_cpu_per_call(2000, [&] { (void)q.model->forward(x1); }));
  }
  if (threads > 1) {  // thread-CPU time misses the workers: use wall time
    f256 = wf256, q256 = wq256, f1 = wf1, q1 = wq1;
  }
  const double tf = 256e6 / bench::median(f256), tq = 256e6 / bench::median(q256);
  const double lf = bench::median(f1), lq = bench::median(q1);
  const double ef = mean_error(*f.model, *split.test), eq = mean_error(*q.model, *split.test);
  const double sf = double(std::filesystem::file_size(dir + "/model.safetensors"));
  const double sq = double(std::filesystem::file_size(int8_dir + "/model.safetensors"));
  if (json) {
    std::printf(
        "{\"model\":\"%s\",\"threads\":%d,\"f32_throughput\":%.1f,\"int8_throughput\":%.1f,\"f32_latency_us\":%.2f,"
        "\"int8_latency_us\":%.2f,\"f32_error\":%.9g,\"int8_error\":%.9g,\"f32_bytes\":%.0f,\"int8_bytes\":%.0f}\n",
        f.config.model.c_str(), threads, tf, tq, lf, lq, ef, eq, sf, sq);
    return 0;
  }
  std::printf("%s, %d thread(s), medians of %d repetitions (%s time; wall: batch-256 %.0f / %.0f us, batch-1 %.2f / %.2f us)\n",
              f.config.model.c_str(), threads, reps, threads > 1 ? "wall" : "thread-CPU", bench::median(wf256),
              bench::median(wq256), bench::median(wf1), bench::median(wq1));
  std::printf("  batch-256 throughput: float32 %.0f samples/s, int8 %.0f samples/s: int8/float32 %.2fx\n", tf, tq, tq / tf);
  std::printf("  batch-1 latency:      float32 %.2f us, int8 %.2f us: int8/float32 %.2fx\n", lf, lq, lq / lf);
  std::printf("  test error (mean per-sample MSE): float32 %.6g, int8 %.6g: ratio %.4f\n", ef, eq, eq / ef);
  std::printf("  weights file: float32 %.0f bytes, int8 %.0f bytes: ratio %.3f\n", sf, sq, sq / sf);
  return 0;
}
