// Per-op overhead: the cost of one tiny op, where the arithmetic is nothing and the framework is
// everything. The same workload as `torch_bench.py opoverhead`:
//   a = rand(16) requiring grad, b = rand(16); time `c = a + b` (forward only, recording the
//   autograd node) over 100,000 iterations after 1,000 warm-up iterations.
// Also measured, as extra information: the same add without requires_grad (no node), and a
// `(a * b).sum().backward()` step (two recorded ops, a backward pass, leaf accumulation).
//
// usage: op_overhead [--iters 100000] [--warmup 1000] [--reps 7] [--mode all|grad|nograd|backward]
// --mode runs one measurement only (for callgrind: `--mode grad --iters 20000 --reps 1`).
// Prints a human line per measurement and one JSON line like torch_bench.py.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "bench_util.h"
#include "latent.h"

namespace {

struct Figure {
  double median_us = 0, min_us = 0, max_us = 0;  // wall clock, as torch_bench.py measures
  double cpu_median_us = 0;                       // this thread's CPU time
};

template <class F>
Figure measure(int64_t warmup, int64_t iters, int reps, F&& step) {
  for (int64_t i = 0; i < warmup; ++i) step();
  std::vector<double> us, cpu;
  for (int r = 0; r < reps; ++r) {
    const bench::WallCpu t = bench::wall_cpu_per_call(iters, step);
    us.push_back(t.wall_us);
    cpu.push_back(t.cpu_us);
  }
  return {bench::median(us), bench::min_of(us), bench::max_of(us), bench::median(cpu)};
}

void print_human(const char* what, const Figure& f, int64_t iters, int reps) {
  fmt::print("{:<40} {:7.3f} us/op  (median of {} x {} ops; min {:.3f}, max {:.3f}; cpu {:.3f})\n", what,
             f.median_us, reps, iters, f.min_us, f.max_us, f.cpu_median_us);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t iters = bench::int_flag(argc, argv, "--iters", 100000);
  const int64_t warmup = bench::int_flag(argc, argv, "--warmup", 1000);
  const int reps = static_cast<int>(bench::int_flag(argc, argv, "--reps", 7));
  const std::string mode = bench::str_flag(argc, argv, "--mode", "all");
  const bool all = mode == "all";
  if (!all && mode != "grad" && mode != "nograd" && mode != "backward") {
    fmt::print(stderr, "op_overhead: --mode must be all, grad, nograd or backward; got '{}'\n", mode);
    return 2;
  }
  if (iters < 1 || reps < 1 || warmup < 0) {
    fmt::print(stderr, "op_overhead: --iters and --reps must be at least 1, --warmup at least 0\n");
    return 2;
  }

  latent::Tensor a = latent::rand({16}).requires_grad_();
  latent::Tensor a_plain = latent::rand({16});
  latent::Tensor b = latent::rand({16});
  latent::Tensor c;  // like Python's `c = a + b`: each assignment frees the previous result and node

  Figure grad, nograd, backward;
  if (all || mode == "grad") {
    grad = measure(warmup, iters, reps, [&] { c = a + b; });
    if (!c.grad_fn()) fmt::print(stderr, "op_overhead: warning: a + b recorded no autograd node\n");
    print_human("add 16 floats, a requires grad (node)", grad, iters, reps);
  }
  if (all || mode == "nograd") {
    nograd = measure(warmup, iters, reps, [&] { c = a_plain + b; });
    print_human("add 16 floats, no grad", nograd, iters, reps);
  }
  if (all || mode == "backward") {
    // Fewer iterations: a step is several ops. The gradient of `a` accumulates, as in PyTorch.
    const int64_t bw_iters = std::max<int64_t>(1, iters / 5);
    backward = measure(warmup, bw_iters, reps, [&] { (a * b).sum().backward(); });
    print_human("(a * b).sum().backward() step", backward, bw_iters, reps);
  }

  // One JSON line, as torch_bench.py prints (its key for the same figure: add16_with_grad_us).
  std::string json = R"({"workload": "opoverhead")";
  if (all || mode == "grad") json += fmt::format(R"(, "us_per_op": {:.4f})", grad.median_us);
  if (all || mode == "nograd") json += fmt::format(R"(, "us_per_op_no_grad": {:.4f})", nograd.median_us);
  if (all || mode == "backward") json += fmt::format(R"(, "us_per_backward_step": {:.4f})", backward.median_us);
  if (all || mode == "grad") json += fmt::format(R"(, "cpu_us_per_op": {:.4f})", grad.cpu_median_us);
  json += fmt::format(R"(, "iters": {}, "reps": {}, "stat": "median"}})", iters, reps);
  fmt::print("{}\n", json);
  return 0;
}
