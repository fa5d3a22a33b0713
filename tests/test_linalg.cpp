// matmul, mm and linear against a naive float64 reference; no-copy BLAS layouts; errors.
#include "helpers.h"

using namespace latent;
using latent::testing::check_values;
using latent::testing::det_randn;

namespace {
/// C = A B for row-major float64 data.
std::vector<double> naive_mm(const Tensor& a, const Tensor& b) {
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  std::vector<double> out(static_cast<size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p) out[static_cast<size_t>(i * n + j)] += a.at<double>({i, p}) * b.at<double>({p, j});
  return out;
}
}  // namespace

TEST_CASE("matmul of 2-d operands in every transpose layout") {
  Tensor a = det_randn({5, 7}, 1, false), b = det_randn({7, 3}, 2, false);
  std::vector<double> expected = naive_mm(a, b);
  check_values(matmul(a, b), expected, 1e-12, 1e-12);
  Tensor at = a.t().contiguous().t();  // same values, column-major layout
  Tensor bt = b.t().contiguous().t();
  check_values(matmul(at, b), expected, 1e-12, 1e-12);
  check_values(matmul(a, bt), expected, 1e-12, 1e-12);
  check_values(matmul(at, bt), expected, 1e-12, 1e-12);
  // A layout BLAS cannot take (both strides > 1) is copied first.
  Tensor wide = det_randn({5, 14}, 3, false);
  Tensor strided = wide.slice(1, 0, 14, 2);
  check_values(matmul(strided, b), naive_mm(strided.contiguous(), b), 1e-12, 1e-12);
  // float32
  check_values(matmul(a.to(kFloat32), b.to(kFloat32)), expected, 1e-4, 1e-4);
}

TEST_CASE("matmul with vectors and batches") {
  Tensor a = det_randn({3, 4}, 4, false), v = det_randn({4}, 5, false), w = det_randn({3}, 6, false);
  Tensor mv = matmul(a, v);
  CHECK(mv.shape() == Shape{3});
  check_values(mv, naive_mm(a, v.view({4, 1})), 1e-12, 1e-12);
  Tensor vm = matmul(w, a);
  CHECK(vm.shape() == Shape{4});
  check_values(vm, naive_mm(w.view({1, 3}), a), 1e-12, 1e-12);
  Tensor dot = matmul(v, v);
  CHECK(dot.dim() == 0);
  check_values(dot, {(v * v).sum().item<double>()}, 1e-12, 1e-12);

  Tensor ba = det_randn({2, 1, 3, 4}, 7, false), bb = det_randn({3, 4, 2}, 8, false);
  Tensor bc = matmul(ba, bb);
  CHECK(bc.shape() == Shape{2, 3, 3, 2});
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) check_values(bc[i][j], naive_mm(ba[i][0], bb[j]), 1e-12, 1e-12);
}

TEST_CASE("linear computes x W^T + b") {
  Tensor x = det_randn({4, 3}, 9, false), w = det_randn({2, 3}, 10, false), b = tensor({0.5, -1.0}, TensorOptions().dtype(kFloat64));
  std::vector<double> expected = naive_mm(x, w.t());
  for (size_t i = 0; i < expected.size(); ++i) expected[i] += i % 2 == 0 ? 0.5 : -1.0;
  check_values(linear(x, w, b), expected, 1e-12, 1e-12);
  check_values(linear(x, w), naive_mm(x, w.t()), 1e-12, 1e-12);
  Tensor x3 = det_randn({2, 4, 3}, 11, false);
  Tensor y3 = linear(x3, w, b);
  CHECK(y3.shape() == Shape{2, 4, 2});
  check_values(y3[1], linear(x3[1], w, b).to_vector<double>(), 1e-12, 1e-12);

  // Gradients against the closed forms: dW = g^T x, dx = g W, db = column sums of g.
  Tensor xr = x.clone().requires_grad_(), wr = w.clone().requires_grad_(), br = b.clone().requires_grad_();
  Tensor g = det_randn({4, 2}, 12, false);
  linear(xr, wr, br).backward(g);
  check_values(wr.grad(), naive_mm(g.t().contiguous(), x), 1e-12, 1e-12);
  check_values(xr.grad(), naive_mm(g, w), 1e-12, 1e-12);
  check_values(br.grad(), g.sum({0}).to_vector<double>(), 1e-12, 1e-12);
}

TEST_CASE("matrix product errors") {
  CHECK_THROWS_WITH_SUBSTR(matmul(zeros({128, 784}), zeros({64, 128})),
                           "[matmul] shapes [128, 784] and [64, 128] cannot be multiplied: 784 != 64");
  CHECK_THROWS_WITH_SUBSTR(matmul(zeros({2, 3}), zeros({3}, kFloat64)), "[matmul] dtypes differ: float32 and float64");
  CHECK_THROWS_WITH_SUBSTR(matmul(arange(4).view({2, 2}), arange(4).view({2, 2})), "[matmul] dtype int64 is not supported");
  CHECK_THROWS_WITH_SUBSTR(matmul(zeros({2, 2, 3}), zeros({3, 3, 2})), "[matmul] shapes [2] and [3] cannot broadcast");
  CHECK_THROWS_WITH_SUBSTR(matmul(zeros({}), zeros({2})), "[matmul] both operands need at least 1 dim");
  CHECK_THROWS_WITH_SUBSTR(mm(zeros({2, 3}), zeros({2, 3})), "[mm] shapes [2, 3] and [2, 3] cannot be multiplied: 3 != 2");
  CHECK_THROWS_WITH_SUBSTR(linear(zeros({8, 5}), zeros({4, 6})),
                           "[linear] input shape [8, 5] and weight shape [4, 6] do not match: 5 input features != 6");
  CHECK_THROWS_WITH_SUBSTR(linear(zeros({8, 5}), zeros({4, 5}), zeros({5})),
                           "[linear] bias shape [5] does not match weight shape [4, 5]: expected [4]");
  CHECK_THROWS_WITH_SUBSTR(linear(zeros({8, 5}), zeros({5})), "[linear] weight must be 2-d");
}

TEST_CASE("fused_linear equals linear followed by the activation, values and gradients") {
  const std::pair<Activation, Tensor (*)(const Tensor&)> cases[] = {
      {Activation::Relu, [](const Tensor& t) { return relu(t); }},
      {Activation::Sigmoid, [](const Tensor& t) { return sigmoid(t); }},
      {Activation::Tanh, [](const Tensor& t) { return tanh(t); }}};
  for (const auto& [act, reference] : cases) {
    CAPTURE(activation_name(act));
    for (DType dtype : {kFloat64, kFloat32}) {
      CAPTURE(dtype);
      const double tol = dtype == kFloat64 ? 1e-12 : 1e-5;
      // 37 output columns: not a multiple of any vector width, so the fused kernels' tails run.
      Tensor x = det_randn({6, 5}, 21, false).to(dtype), w = det_randn({37, 5}, 22, false).to(dtype);
      Tensor b = det_randn({37}, 23, false).to(dtype), g = det_randn({6, 37}, 24, false).to(dtype);
      Tensor xr = x.clone().requires_grad_(), wr = w.clone().requires_grad_(), br = b.clone().requires_grad_();
      Tensor y = linear(xr, wr, br, act);
      REQUIRE(y.grad_fn());
      CHECK(std::string(y.grad_fn()->name()) == "fused_linear");
      Tensor x64 = x.to(kFloat64).requires_grad_(), w64 = w.to(kFloat64).requires_grad_(),
             b64 = b.to(kFloat64).requires_grad_();
      Tensor expected = reference(linear(x64, w64, b64));
      check_values(y, expected.to_vector<double>(), tol, tol);
      y.backward(g);
      expected.backward(g.to(kFloat64));
      check_values(xr.grad(), x64.grad().to_vector<double>(), tol, tol);
      check_values(wr.grad(), w64.grad().to_vector<double>(), tol, tol);
      check_values(br.grad(), b64.grad().to_vector<double>(), tol, tol);
      // Without bias, without grad mode, and on a 3-d input.
      check_values(linear(x, w, Tensor(), act), reference(linear(x64.detach(), w64.detach())).to_vector<double>(), tol,
                   tol);
      {
        NoGradGuard no_grad;
        check_values(linear(x, w, b, act), expected.detach().to_vector<double>(), tol, tol);
      }
      Tensor y3 = linear(x.view({2, 3, 5}), w, b, act);
      CHECK(y3.shape() == Shape{2, 3, 37});
      check_values(y3, expected.detach().to_vector<double>(), tol, tol);
    }
  }
  CHECK(std::string(activation_name(Activation::None)) == "none");
  // None is plain linear.
  Tensor x = det_randn({3, 4}, 25, false).requires_grad_(), w = det_randn({2, 4}, 26, false);
  CHECK(std::string(linear(x, w, Tensor(), Activation::None).grad_fn()->name()) == "linear");
}

TEST_CASE("fused_linear passes gradcheck for every activation") {
  for (Activation act : {Activation::Relu, Activation::Sigmoid, Activation::Tanh}) {
    CAPTURE(activation_name(act));
    Tensor x = det_randn({4, 3}, 31, true), w = det_randn({5, 3}, 32, true), b = det_randn({5}, 33, true);
    // Keep relu's inputs away from the kink, where finite differences are meaningless.
    const Tensor weights = tensor({0.5, 0.75, 1.0, 1.25, 1.5}, TensorOptions().dtype(kFloat64));
    auto fn = [act, weights](const std::vector<Tensor>& in) { return (linear(in[0], in[1], in[2], act) * weights).sum(); };
    if (act == Activation::Relu) {
      NoGradGuard no_grad;
      Tensor pre = linear(x, w, b);
      CHECK(min(abs(pre)).item<double>() > 1e-3);
    }
    CHECK(gradcheck(fn, {x, w, b}));
  }
}

TEST_CASE("fused_linear errors name linear") {
  CHECK_THROWS_WITH_SUBSTR(linear(zeros({8, 5}), zeros({4, 6}), Tensor(), Activation::Relu),
                           "[linear] input shape [8, 5] and weight shape [4, 6] do not match: 5 input features != 6");
  CHECK_THROWS_WITH_SUBSTR(linear(zeros({8, 5}), zeros({4, 5}), zeros({5}), Activation::Sigmoid),
                           "[linear] bias shape [5] does not match weight shape [4, 5]: expected [4]");
}

// ---- The CPU GEMM (ops/cpu/cpu_blas.h): latent's AVX-512 or AVX2 kernel where the CPU has it, OpenBLAS
// otherwise, split over the thread pool. Checked against a float64 reference at tile edges (12
// rows, 16/32 columns), across the packing slices (k > 256, n > 512), in all four layouts with
// padded leading dimensions, for beta 0 (C starts as NaN: it must be overwritten), 1 and 0.5.
#include <cmath>
#include <random>
#include <thread>

#include <tuple>

#include "../ops/cpu/cpu_blas.h"
#include "../ops/cpu/sgemm_small.h"
#include "../ops/cpu/sgemm_small_dispatch.h"
#include "../ops/cpu/workers.h"

namespace {

struct GemmCase {
  int64_t m, n, k;
};

/// Runs one product through `gemm` and checks every element within float32 rounding of the
/// float64 reference (bound: 2e-6 sqrt(k + 1) * sum of |a_ip b_pj| + 1e-6 |beta c|).
template <class Gemm>
void check_gemm(Gemm gemm, const GemmCase& cs, bool ta, bool tb, float beta, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const int64_t m = cs.m, n = cs.n, k = cs.k;
  const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 7;
  std::vector<float> a((ta ? k : m) * lda), b((tb ? n : k) * ldb), c(m * ldc);
  for (float& v : a) v = dist(rng);
  for (float& v : b) v = dist(rng);
  for (float& v : c) v = beta == 0.0f ? std::nanf("") : dist(rng);
  const std::vector<float> c0 = c;
  gemm(ta, tb, m, n, k, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  int64_t bad = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double ref = 0.0, mag = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        const double x = ta ? a[p * lda + i] : a[i * lda + p], y = tb ? b[j * ldb + p] : b[p * ldb + j];
        ref += x * y;
        mag += std::fabs(x * y);
      }
      const double old = beta == 0.0f ? 0.0 : double(beta) * c0[i * ldc + j];
      ref += old;
      const double got = c[i * ldc + j], tol = 2e-6 * std::sqrt(double(k + 1)) * mag + 1e-6 * std::fabs(old) + 1e-30;
      if (!(std::fabs(got - ref) <= tol) && bad++ < 3)
        FAIL_CHECK("m=" << m << " n=" << n << " k=" << k << " ta=" << ta << " tb=" << tb << " beta=" << beta << " at ("
                        << i << ", " << j << "): got " << got << ", expected " << ref);
    }
  CHECK(bad == 0);
  // Padding between rows is never written.
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = n; j < ldc; ++j) REQUIRE(std::isnan(c[i * ldc + j]) == std::isnan(c0[i * ldc + j]));
}

const GemmCase kGemmCases[] = {{1, 1, 1},    {5, 7, 3},     {12, 16, 8},    {13, 17, 9},   {11, 33, 40},
                               {24, 48, 1},  {37, 64, 100}, {128, 128, 64}, {64, 784, 128}, {130, 530, 300},
                               {3, 1000, 20}, {200, 5, 257}, {128, 40, 784}};

}  // namespace

TEST_CASE("blas_gemm float32 matches a float64 reference in every layout, beta and thread count") {
  const int saved = get_num_threads();
  uint32_t seed = 1;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    for (const GemmCase& cs : kGemmCases)
      for (int layout = 0; layout < 4; ++layout)
        for (float beta : {0.0f, 1.0f, 0.5f}) {
          if (threads > 1 && beta == 0.5f) continue;  // beta is handled before the split
          check_gemm(latent::cpu::blas_gemm<float>, cs, layout & 1, layout & 2, beta, seed++);
        }
  }
  set_num_threads(saved);
  MESSAGE("float32 GEMM kernel: " << std::string(latent::cpu::sgemm_kernel_name()));
}

TEST_CASE("the AVX-512 kernel alone, on one thread, where the CPU has AVX-512") {
  if (!latent::cpu::sgemm_avx512_available()) {
    MESSAGE("skipped: this CPU has no AVX-512 (or LATENT_CPU_ISA caps it); blas_gemm uses OpenBLAS here");
    return;
  }
  uint32_t seed = 1000;
  for (const GemmCase& cs : kGemmCases)
    for (int layout = 0; layout < 4; ++layout)
      for (float beta : {0.0f, 1.0f, 0.5f})
        check_gemm([](bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                      int64_t ldb, float beta, float* c, int64_t ldc) {
          latent::cpu::sgemm_avx512(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
        }, cs, layout & 1, layout & 2, beta, seed++);
}

TEST_CASE("the AVX2 kernel alone, on one thread, on odd shapes, all layouts and betas (forced on AVX-512 CPUs too)") {
  if (!latent::cpu::sgemm_avx2_available()) {
    MESSAGE("skipped: this CPU has no AVX2 + FMA (or LATENT_CPU_ISA=base); blas_gemm uses OpenBLAS here");
    return;
  }
  const auto avx2 = [](bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                       int64_t ldb, float beta, float* c, int64_t ldc) {
    latent::cpu::sgemm_avx2(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
  };
  uint32_t seed = 2000;
  for (const GemmCase& cs : kGemmCases)
    for (int layout = 0; layout < 4; ++layout)
      for (float beta : {0.0f, 1.0f, 0.5f}) check_gemm(avx2, cs, layout & 1, layout & 2, beta, seed++);
  // Random odd shapes across the 6-row tile, the 8/16-wide panels, the 256-deep k slices and the
  // 512-wide n slices; M = 1 and N = 1 included.
  std::mt19937 rng(77);
  std::uniform_int_distribution<int64_t> small(1, 40), big(1, 600);
  for (int r = 0; r < 40; ++r) {
    const GemmCase cs{r % 5 == 0 ? 1 : small(rng), r % 7 == 0 ? 1 : (r % 3 ? small(rng) : big(rng)),
                      r % 4 ? small(rng) : big(rng)};
    check_gemm(avx2, cs, r & 1, r & 2, r % 3 == 0 ? 0.0f : 1.0f, seed++);
  }
}

TEST_CASE("the AVX2 kernel's bias + relu epilogue matches the plain product plus bias then relu") {
  if (!latent::cpu::sgemm_avx2_available()) {
    MESSAGE("skipped: this CPU has no AVX2 + FMA (or LATENT_CPU_ISA=base)");
    return;
  }
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const GemmCase& cs : {GemmCase{1, 1, 1}, GemmCase{7, 9, 5}, GemmCase{6, 16, 300}, GemmCase{13, 530, 31},
                             GemmCase{1, 15, 784}, GemmCase{5, 3, 0}})
    for (int layout = 0; layout < 4; ++layout)
      for (int mode = 0; mode < 3; ++mode) {  // bias only, relu only, both
        const bool ta = layout & 1, tb = layout & 2;
        const int64_t m = cs.m, n = cs.n, k = cs.k, lda = (ta ? m : k) + 1, ldb = (tb ? k : n) + 2, ldc = n + 3;
        std::vector<float> a(std::max<int64_t>(1, (ta ? k : m) * lda)), b(std::max<int64_t>(1, (tb ? n : k) * ldb));
        std::vector<float> bias(n), c(m * ldc, std::nanf(""));
        for (float& v : a) v = dist(rng);
        for (float& v : b) v = dist(rng);
        for (float& v : bias) v = dist(rng);
        latent::cpu::GemmEpilogue e;
        e.bias = mode != 1 ? bias.data() : nullptr;
        e.relu = mode != 0;
        latent::cpu::sgemm_avx2(ta, tb, m, n, k, a.data(), lda, b.data(), ldb, 0.0f, c.data(), ldc, &e);
        int64_t bad = 0;
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double ref = e.bias ? bias[j] : 0.0, mag = std::fabs(ref);
            for (int64_t p = 0; p < k; ++p) {
              const double x = ta ? a[p * lda + i] : a[i * lda + p], y = tb ? b[j * ldb + p] : b[p * ldb + j];
              ref += x * y;
              mag += std::fabs(x * y);
            }
            if (e.relu) ref = std::max(ref, 0.0);
            const double got = c[i * ldc + j];
            if (!(std::fabs(got - ref) <= 2e-6 * std::sqrt(double(k + 1)) * mag + 1e-30) && bad++ < 3)
              FAIL_CHECK("m=" << m << " n=" << n << " k=" << k << " mode=" << mode << " at (" << i << ", " << j
                              << "): got " << got << ", expected " << ref);
          }
        CHECK(bad == 0);
      }
}

TEST_CASE("the AVX2 prepacked kernels (small M on 64-wide panels, any M on 32-wide) match a float64 reference") {
  if (!latent::cpu::sgemm_avx2_available()) {
    MESSAGE("skipped: this CPU has no AVX2 + FMA (or LATENT_CPU_ISA=base)");
    return;
  }
  using latent::cpu::PackedB;
  const int saved = get_num_threads();
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  // C = A W^T (+ bias, relu) with W (n x k) row-major or stored as W^T (k x n), through the
  // small-M kernel (large false) or the general kernel on 32-wide panels (large true).
  auto check = [&](int64_t m, int64_t n, int64_t k, bool w_t, bool with_bias, bool relu, bool large) {
    CAPTURE(m);
    CAPTURE(n);
    CAPTURE(k);
    CAPTURE(w_t);
    CAPTURE(large);
    const int64_t lda = k + 3, ldc = n + 5;
    std::vector<float> a(std::max<int64_t>(1, m * lda)), w(std::max<int64_t>(1, n * k)), bias(n),
        c(m * ldc, std::nanf(""));
    for (float& v : a) v = dist(rng);
    for (float& v : w) v = dist(rng);
    for (float& v : bias) v = dist(rng);
    auto w_at = [&](int64_t j, int64_t p) { return w_t ? w[p * n + j] : w[j * k + p]; };
    const int64_t panel = large ? PackedB::kPanelLarge : PackedB::kPanel;
    auto packed = w_t ? latent::cpu::pack_b_small(k, n, w.data(), n, 1, panel)
                      : latent::cpu::pack_b_small(k, n, w.data(), 1, k, panel);
    latent::cpu::GemmEpilogue e;
    e.bias = with_bias ? bias.data() : nullptr;
    e.relu = relu;
    if (large) latent::cpu::sgemm_large_packed_avx2(m, a.data(), lda, *packed, c.data(), ldc, e);
    else latent::cpu::sgemm_small_avx2(m, a.data(), lda, *packed, c.data(), ldc, e);
    int64_t bad = 0;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double ref = with_bias ? bias[j] : 0.0, mag = std::fabs(ref);
        for (int64_t p = 0; p < k; ++p) {
          ref += double(a[i * lda + p]) * w_at(j, p);
          mag += std::fabs(double(a[i * lda + p]) * w_at(j, p));
        }
        if (relu) ref = std::max(ref, 0.0);
        const double got = c[i * ldc + j];
        if (!(std::fabs(got - ref) <= 2e-6 * std::sqrt(double(k + 1)) * mag + 1e-30) && bad++ < 3)
          FAIL_CHECK("at (" << i << ", " << j << "): got " << got << ", expected " << ref);
      }
      for (int64_t j = n; j < ldc; ++j) REQUIRE(std::isnan(c[i * ldc + j]));
    }
    CHECK(bad == 0);
  };
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (int64_t m = 1; m <= latent::cpu::kSmallM; ++m)
      for (auto [n, k] : {std::pair<int64_t, int64_t>{1, 1}, {15, 7}, {17, 33}, {63, 129}, {65, 3}, {20, 400}})
        for (int variant = 0; variant < 4; ++variant)
          check(m, n, k, variant & 1, variant & 2, (m + variant) % 3 == 0, false);
    for (int64_t m : {1, 5, 16}) check(m, 784, 128, false, true, true, false);  // split over the pool
    check(3, 40, 0, false, true, true, false);                                  // k = 0: relu(bias)
    for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{17, 1, 1}, {20, 17, 33}, {33, 48, 257},
                           {128, 20, 784}, {256, 128, 300}, {100, 65, 300}, {300, 17, 64}, {25, 40, 0}})
      for (int variant = 0; variant < 4; ++variant)
        check(m, n, k, variant & 1, variant & 2, variant == 1 || variant == 2, true);
  }
  set_num_threads(saved);
}

TEST_CASE("run_parallel runs every part once, more parts than threads, nested, and for two callers") {
  const int saved = get_num_threads();
  set_num_threads(2);
  std::vector<int> hits(7, 0);
  auto count = [&](int p) { hits[p] += 1; };
  latent::cpu::run_parallel(7, count);  // 7 parts claimed one at a time by 2 threads
  CHECK(hits == std::vector<int>(7, 1));
  std::vector<int> inner(6, 0);
  auto outer = [&](int p) {
    auto sub = [&](int q) { inner[p * 3 + q] += 1; };
    latent::cpu::run_parallel(3, sub);  // the pool is busy: runs on this part's thread
  };
  latent::cpu::run_parallel(2, outer);
  CHECK(inner == std::vector<int>(6, 1));
  // Two program threads multiplying at once both get the right answer.
  auto job = [](uint32_t seed) { check_gemm(latent::cpu::blas_gemm<float>, {96, 200, 150}, false, true, 0.0f, seed); };
  std::thread t1(job, 7u), t2(job, 8u);
  t1.join();
  t2.join();
  set_num_threads(saved);
}

TEST_CASE("linear with an activation in float32 (bias and relu in the GEMM's store) matches float64 linear + activation") {
  // Shapes across the kernel's tile edges (12 rows, 16/32 columns), its k slices (256) and column
  // slices (512), split over 1 and 2 threads; in_features 0 gives activation(bias).
  struct Case {
    int64_t n, in, out;
  };
  const int saved = get_num_threads();
  uint64_t seed = 300;
  for (int threads : {1, 2})
    for (const Case& cs : {Case{130, 300, 45}, Case{7, 20, 530}, Case{128, 784, 128}, Case{5, 0, 17}})
      for (Activation act : {Activation::None, Activation::Relu, Activation::Sigmoid, Activation::Tanh})
        for (bool with_bias : {true, false}) {
          set_num_threads(threads);
          CAPTURE(threads);
          CAPTURE(cs.n);
          CAPTURE(cs.in);
          CAPTURE(cs.out);
          CAPTURE(static_cast<int>(act));
          CAPTURE(with_bias);
          Tensor x = det_randn({cs.n, cs.in}, seed++, false), w = det_randn({cs.out, cs.in}, seed++, false);
          Tensor b = with_bias ? det_randn({cs.out}, seed++, false) : Tensor();
          Tensor pre = linear(x, w, b);  // float64 reference
          Tensor ref = act == Activation::Relu      ? relu(pre)
                       : act == Activation::Sigmoid ? sigmoid(pre)
                       : act == Activation::Tanh    ? tanh(pre)
                                                    : pre;
          Tensor got = linear(x.to(kFloat32), w.to(kFloat32), with_bias ? b.to(kFloat32) : Tensor(), act);
          check_values(got, ref.to_vector<double>(), 2e-5 * std::sqrt(double(cs.in) + 1), 1e-5);
        }
  set_num_threads(saved);
}
