// Linear 784 -> 128, forward + backward at batch 128 in float32: latent against the bare OpenBLAS
// calls the same step needs, timed in the same binary on the same data.
//
//   latent: y = linear(x, W, b); y.backward(g)   (g: a fixed random (128, 128) upstream gradient;
//           the parameters' grads are dropped before each step, as zero_grad(set_to_none) does)
//   bare:   y = bias rows; y += x W^T (sgemm, beta 1); dW = g^T x (sgemm); db = column sums of g;
//           dx = g W (sgemm) when x needs a gradient. Buffers are allocated once.
//
// Two cases: x without grad (the first layer of a model: dx is not computed) and x with grad (a
// hidden layer). The issue's target is latent/bare within 1.2x.
//
// Same threads on both sides: latent holds OpenBLAS at one thread and splits products over its own
// pool of N threads, so the bare calls run with openblas_set_num_threads(N) around them (restored to
// 1 after), as bench/gemm does. The overhead figure (what latent adds around the same GEMMs) comes
// from LATENT_SGEMM=openblas, where latent's float32 products are OpenBLAS's too; without it, on an
// AVX-512 CPU latent's products are its own kernel and the ratio compares kernels as well.
//
// usage: [LATENT_SGEMM=openblas] linear [--steps 100] [--reps 7] [--warmup 10] [--threads N]
// Threads default to LATENT_NUM_THREADS (else latent's default).
#include <cblas.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.h"
#include "latent.h"

namespace {

constexpr int kBatch = 128, kIn = 784, kOut = 128;

/// The bare step's buffers and the pieces of the step, each callable alone for the breakdown.
struct Bare {
  const float* x;  // (N, in)
  const float* w;  // (out, in)
  const float* bias;  // (out)
  const float* g;  // (N, out)
  std::vector<float> y = std::vector<float>(kBatch * kOut);
  std::vector<float> dw = std::vector<float>(kOut * kIn);
  std::vector<float> db = std::vector<float>(kOut);
  std::vector<float> dx = std::vector<float>(kBatch * kIn);

  void bias_rows() {
    for (int r = 0; r < kBatch; ++r) std::memcpy(y.data() + r * kOut, bias, kOut * sizeof(float));
  }
  // y (N, out) += x (N, in) @ W^T (in, out)
  void forward_gemm() {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, kBatch, kOut, kIn, 1.0f, x, kIn, w, kIn, 1.0f, y.data(),
                kOut);
  }
  // dW (out, in) = g^T (out, N) @ x (N, in)
  void grad_weight() {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kOut, kIn, kBatch, 1.0f, g, kOut, x, kIn, 0.0f, dw.data(),
                kIn);
  }
  // dx (N, in) = g (N, out) @ W (out, in)
  void grad_input() {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, kBatch, kIn, kOut, 1.0f, g, kOut, w, kIn, 0.0f, dx.data(),
                kIn);
  }
  // db (out) = sum over rows of g
  void grad_bias() {
    std::fill(db.begin(), db.end(), 0.0f);
    for (int r = 0; r < kBatch; ++r) {
      const float* row = g + r * kOut;
      for (int c = 0; c < kOut; ++c) db[c] += row[c];
    }
  }
  void step(bool input_grad) {
    bias_rows();
    forward_gemm();
    grad_weight();
    if (input_grad) grad_input();
    grad_bias();
  }
};

double max_abs_diff(const latent::Tensor& t, const std::vector<float>& ref) {
  std::vector<float> v = t.to_vector<float>();
  double m = 0;
  for (size_t i = 0; i < v.size(); ++i) m = std::max(m, std::abs(double(v[i]) - double(ref[i])));
  return m;
}

struct Pair {
  double latent_us, bare_us;
};

/// OpenBLAS at `threads` for the bare side's calls while it lives; back to latent's 1 after.
struct BareThreads {
  explicit BareThreads(int threads) { openblas_set_num_threads(threads); }
  ~BareThreads() { openblas_set_num_threads(1); }
  BareThreads(const BareThreads&) = delete;
  BareThreads& operator=(const BareThreads&) = delete;
};

/// Median us per step of both sides; repetitions alternate latent and bare so drift in the
/// machine's load hits both alike.
template <class L, class B>
Pair measure_pair(int64_t warmup, int64_t steps, int reps, L&& latent_step, B&& bare_step) {
  const int threads = latent::get_num_threads();
  for (int64_t i = 0; i < warmup; ++i) {
    latent_step();
    BareThreads bt(threads);
    bare_step();
  }
  std::vector<double> lat, bare;
  for (int r = 0; r < reps; ++r) {
    lat.push_back(bench::us_per_call(steps, latent_step));
    BareThreads bt(threads);
    bare.push_back(bench::us_per_call(steps, bare_step));
  }
  return {bench::median(lat), bench::median(bare)};
}

/// Median us per call of fn; with `bare`, OpenBLAS runs at latent's thread count meanwhile.
template <class F>
double measure_one(int64_t warmup, int64_t steps, int reps, F&& fn, bool bare = true) {
  const int threads = bare ? latent::get_num_threads() : 1;
  BareThreads bt(threads);
  for (int64_t i = 0; i < warmup; ++i) fn();
  std::vector<double> us;
  for (int r = 0; r < reps; ++r) us.push_back(bench::us_per_call(steps, fn));
  return bench::median(us);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t steps = bench::int_flag(argc, argv, "--steps", 100);
  const int reps = static_cast<int>(bench::int_flag(argc, argv, "--reps", 7));
  const int64_t warmup = bench::int_flag(argc, argv, "--warmup", 10);
  const int64_t threads = bench::int_flag(argc, argv, "--threads", 0);
  if (steps < 1 || reps < 1 || warmup < 0) {
    fmt::print(stderr, "linear: --steps and --reps must be at least 1, --warmup at least 0\n");
    return 2;
  }
  if (threads > 0) latent::set_num_threads(static_cast<int>(threads));

  const char* sgemm_env = std::getenv("LATENT_SGEMM");
  const bool via_openblas = sgemm_env && std::string(sgemm_env) == "openblas";
  fmt::print("BLAS: {}\n", latent::blas_info());
  fmt::print("threads: {} (latent's pool; the bare OpenBLAS calls get openblas_set_num_threads({}))\n",
             latent::get_num_threads(), latent::get_num_threads());
  fmt::print("latent's float32 products: {}\n",
             via_openblas ? "OpenBLAS (LATENT_SGEMM=openblas): the ratio is latent's overhead around the same GEMMs"
                          : "latent's default (its own AVX-512 kernel where the CPU has it; see BLAS above): the "
                            "ratio compares kernels too; LATENT_SGEMM=openblas gives the overhead figure");
  fmt::print("Linear {} -> {}, batch {}, float32; median of {} reps x {} steps\n", kIn, kOut, kBatch, reps, steps);

  latent::Tensor x = latent::rand({kBatch, kIn});
  latent::Tensor w = latent::rand({kOut, kIn}).requires_grad_();
  latent::Tensor b = latent::rand({kOut}).requires_grad_();
  latent::Tensor g = latent::rand({kBatch, kOut});
  latent::Tensor xg = x.detach().clone().requires_grad_();  // same values, needs a gradient

  Bare bare{x.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(), g.data_ptr<float>()};

  std::string json = R"({"workload": "linear784x128_b128")";
  json += fmt::format(R"(, "threads": {}, "latent_sgemm": "{}")", latent::get_num_threads(),
                      via_openblas ? "openblas" : "default");
  for (const bool input_grad : {false, true}) {
    latent::Tensor& in = input_grad ? xg : x;
    latent::Tensor y;
    auto latent_step = [&] {
      w.zero_grad();
      b.zero_grad();
      if (input_grad) in.zero_grad();
      y = latent::linear(in, w, b);
      y.backward(g);
    };
    auto bare_step = [&] { bare.step(input_grad); };

    // Both sides must compute the same numbers, or the timing compares different work.
    latent_step();
    bare_step();
    double err = std::max({max_abs_diff(y.detach(), bare.y), max_abs_diff(w.grad(), bare.dw),
                           max_abs_diff(b.grad(), bare.db)});
    if (input_grad) err = std::max(err, max_abs_diff(in.grad(), bare.dx));
    if (err > 1e-2) fmt::print(stderr, "linear: warning: latent and bare differ by {:.3g}\n", err);

    const Pair p = measure_pair(warmup, steps, reps, latent_step, bare_step);
    const double ratio = p.latent_us / p.bare_us;
    const char* label = input_grad ? "x needs grad (hidden layer)" : "x without grad (first layer)";
    fmt::print("{:<30} latent {:8.1f} us/step   bare BLAS {:8.1f} us/step   ratio {:.3f}   (max |diff| {:.1e})\n",
               label, p.latent_us, p.bare_us, ratio, err);
    const char* key = input_grad ? "hidden" : "first";
    json += fmt::format(R"(, "{0}_latent_us": {1:.1f}, "{0}_bare_us": {2:.1f}, "{0}_ratio": {3:.4f})", key,
                        p.latent_us, p.bare_us, ratio);
  }

  // Where the bare time goes, piece by piece (and latent's forward alone, node recorded).
  const double t_bias = measure_one(warmup, steps, reps, [&] { bare.bias_rows(); });
  const double t_fwd = measure_one(warmup, steps, reps, [&] { bare.forward_gemm(); });
  const double t_dw = measure_one(warmup, steps, reps, [&] { bare.grad_weight(); });
  const double t_dx = measure_one(warmup, steps, reps, [&] { bare.grad_input(); });
  const double t_db = measure_one(warmup, steps, reps, [&] { bare.grad_bias(); });
  latent::Tensor y;
  const double t_lat_fwd = measure_one(warmup, steps, reps, [&] { y = latent::linear(x, w, b); }, false);
  fmt::print("bare pieces: bias rows {:.1f}, forward sgemm {:.1f}, dW sgemm {:.1f}, dx sgemm {:.1f}, db {:.1f} us\n",
             t_bias, t_fwd, t_dw, t_dx, t_db);
  fmt::print("latent forward alone (linear, node recorded): {:.1f} us; bare forward (bias rows + sgemm): {:.1f} us\n",
             t_lat_fwd, t_bias + t_fwd);
  json += fmt::format(R"(, "stat": "median", "reps": {}, "steps": {}}})", reps, steps);
  fmt::print("{}\n", json);
  return 0;
}
