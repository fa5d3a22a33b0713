// The inference fast path: the small-M GEMM with prepacked B (ops/cpu/sgemm_small.h) against a
// float64 reference, the cache of packed weights (hits, invalidation by version, freed storages),
// and linear / the autoencoders under NoGradGuard against the same computation with grad on.
#include <cmath>
#include <cstring>
#include <random>
#include <tuple>

#include "../models/ae/autoencoder.h"
#include "../ops/cpu/isa.h"
#include "../ops/cpu/sgemm_small.h"
#include "../ops/cpu/sgemm_small_dispatch.h"
#include "../ops/cpu/vec_math.h"
#include "helpers.h"

using namespace latent;
using latent::testing::check_close;
using latent::testing::det_randn;

namespace {

/// C = A W^T (+ bias, then relu for act 1 or sigmoid for act 2) through sgemm_small with W (n x k) stored row-major (w_t false) or
/// as its transpose W^T (k x n, a tied decoder's layout); every element checked against float64
/// within float32 rounding, and the row padding of C never written.
void check_small(int64_t m, int64_t n, int64_t k, bool w_t, bool with_bias, int act, uint32_t seed,
                 bool large = false) {
  const bool relu = act == 1, sigmoid = act == 2;
  CAPTURE(m);
  CAPTURE(n);
  CAPTURE(k);
  CAPTURE(w_t);
  CAPTURE(with_bias);
  CAPTURE(act);
  CAPTURE(large);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const int64_t lda = k + 3, ldc = n + 5;
  std::vector<float> a(m * lda), w(n * k), bias(n), c(m * ldc, std::nanf(""));
  for (float& v : a) v = dist(rng);
  for (float& v : w) v = dist(rng);
  for (float& v : bias) v = dist(rng);
  // W[j][p] lives at w[j * k + p] (row-major) or w[p * n + j] (stored transposed).
  auto w_at = [&](int64_t j, int64_t p) { return w_t ? w[p * n + j] : w[j * k + p]; };
  const int64_t panel = large ? cpu::PackedB::kPanelLarge : cpu::PackedB::kPanel;
  auto packed = w_t ? cpu::pack_b_small(k, n, w.data(), n, 1, panel) : cpu::pack_b_small(k, n, w.data(), 1, k, panel);
  cpu::GemmEpilogue epilogue;
  epilogue.bias = with_bias ? bias.data() : nullptr;
  epilogue.relu = relu;
  epilogue.sigmoid = sigmoid;
  // The *_any entry points (what linear calls): the AVX-512 kernels here, the AVX2 ones under
  // LATENT_CPU_ISA=avx2 (the infer-isa-avx2 test), each with the whole epilogue.
  if (large) cpu::sgemm_large_packed_any(m, a.data(), lda, *packed, c.data(), ldc, epilogue);
  else cpu::sgemm_small_any(m, a.data(), lda, *packed, c.data(), ldc, epilogue);
  int64_t bad = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double ref = with_bias ? bias[j] : 0.0, mag = std::fabs(ref);
      for (int64_t p = 0; p < k; ++p) {
        ref += double(a[i * lda + p]) * w_at(j, p);
        mag += std::fabs(double(a[i * lda + p]) * w_at(j, p));
      }
      if (relu) ref = ref > 0 ? ref : 0.0;
      if (sigmoid) ref = 1.0 / (1.0 + std::exp(-ref));  // 1-Lipschitz: the product's tolerance holds
      const double got = c[i * ldc + j], tol = 2e-6 * std::sqrt(double(k + 1)) * mag + (sigmoid ? 1e-6 : 1e-30);
      if (!(std::fabs(got - ref) <= tol) && bad++ < 3)
        FAIL_CHECK("at (" << i << ", " << j << "): got " << got << ", expected " << ref);
    }
    for (int64_t j = n; j < ldc; ++j) REQUIRE(std::isnan(c[i * ldc + j]));
  }
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("sgemm_small matches a float64 reference for M = 1..16, odd N and K, both weight layouts, 1 and 2 threads") {
  if (!cpu::sgemm_avx512_available()) {
    MESSAGE("skipped: this CPU has no AVX-512 (or LATENT_CPU_ISA caps it); linear uses the general GEMM here");
    return;
  }
  const int saved = get_num_threads();
  uint32_t seed = 1;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    CAPTURE(threads);
    for (int64_t m = 1; m <= cpu::kSmallM; ++m)
      for (auto [n, k] : {std::pair<int64_t, int64_t>{1, 1}, {15, 7}, {17, 33}, {63, 129}, {64, 64}, {65, 3},
                          {129, 65}, {20, 400}})
        for (int variant = 0; variant < 4; ++variant)
          check_small(m, n, k, variant & 1, variant & 2, int((m + variant) % 3), seed++);
    // The autoencoders' shapes, large enough to split over the pool.
    for (int64_t m : {1, 2, 5, 16}) {
      check_small(m, 128, 784, false, true, 1, seed++);
      check_small(m, 784, 128, false, true, 2, seed++);
      check_small(m, 784, 128, true, false, 1, seed++);
    }
    check_small(3, 40, 0, false, true, 1, seed++);  // k = 0: relu(bias)
    check_small(3, 40, 0, false, true, 2, seed++);  // k = 0: sigmoid(bias)
  }
  set_num_threads(saved);
}

TEST_CASE("sgemm_large_packed (the general kernel on prepacked panels) matches a float64 reference, 1 and 2 threads") {
  if (!cpu::sgemm_avx512_available()) {
    MESSAGE("skipped: this CPU has no AVX-512 (or LATENT_CPU_ISA caps it); linear uses the general GEMM here");
    return;
  }
  const int saved = get_num_threads();
  uint32_t seed = 5000;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    CAPTURE(threads);
    // Across the 12-row tiles, the 16/32-wide panels, the 256-deep k slices; split by columns
    // (n >= 64) and by rows (n = 20, 17).
    for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{17, 1, 1}, {20, 17, 33}, {33, 48, 257},
                           {128, 20, 784}, {256, 128, 784}, {256, 784, 128}, {100, 65, 300}, {300, 17, 64},
                           {25, 40, 0}})
      for (int variant = 0; variant < 4; ++variant)
        check_small(m, n, k, variant & 1, variant & 2, variant % 3, seed++, true);
  }
  set_num_threads(saved);
}

namespace {
/// vx::sigmoid<16> (the prepacked kernels' fused store) over n values.
LATENT_TARGET_AVX512 void sigmoid16(const float* x, float* out, int64_t n) {
  using F = cpu::vx::Lanes<16>::F;
  for (int64_t i = 0; i < n; i += 16) {
    F v;
    __builtin_memcpy(&v, x + i, sizeof v);
    v = cpu::vx::sigmoid<16>(v);
    __builtin_memcpy(out + i, &v, sizeof v);
  }
}
}  // namespace

TEST_CASE("the fused store's sigmoid is the sigmoid op's (its separate pass) bit for bit, special values included") {
  if (!cpu::sgemm_avx512_available()) {
    MESSAGE("skipped: this CPU has no AVX-512");
    return;
  }
  std::vector<float> x = {0.f, -0.f, 1e-40f, -1e-40f, 88.7228f, -88.7228f, 103.9f, -103.9f, 104.f, -104.f, 1e30f,
                          -1e30f, INFINITY, -INFINITY, NAN, 0.5f};
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> wide(-120.f, 120.f), narrow(-8.f, 8.f);
  for (int i = 0; i < 4000; ++i) x.push_back(i % 2 ? wide(rng) : narrow(rng));
  std::vector<float> got(x.size());
  sigmoid16(x.data(), got.data(), int64_t(x.size()));
  Tensor xs = empty({int64_t(x.size())}, kFloat32);
  std::memcpy(xs.data_ptr<float>(), x.data(), sizeof(float) * x.size());
  const Tensor op = sigmoid(xs);
  int64_t bad = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = op.data_ptr<float>()[i];
    // The op and the float64 formula agree to float32 rounding (an independent reference).
    if (std::isnan(x[i])) CHECK(std::isnan(want));
    else CHECK(std::fabs(double(want) - 1.0 / (1.0 + std::exp(-double(x[i])))) <= 1e-6);
    const bool same = std::isnan(want) ? std::isnan(got[i]) : std::memcmp(&want, &got[i], sizeof want) == 0;
    if (!same && bad++ < 3) FAIL_CHECK("sigmoid(" << x[i] << "): got " << got[i] << ", expected " << want);
  }
  CHECK(bad == 0);
  CHECK(got[0] == 0.5f);
  CHECK(got[12] == 1.f);
  CHECK(got[13] == 0.f);
}

TEST_CASE("linear under NoGradGuard equals linear with grad on, for 1..17 rows, every activation, tied layout") {
  uint64_t seed = 50;
  for (int64_t rows : {1, 2, 3, 7, 12, 16, 17, 40})
    for (Activation act : {Activation::None, Activation::Relu, Activation::Sigmoid, Activation::Tanh})
      for (bool transposed_weight : {false, true}) {
        CAPTURE(rows);
        CAPTURE(static_cast<int>(act));
        CAPTURE(transposed_weight);
        Tensor x = det_randn({rows, 70}, seed++, false).to(kFloat32);
        Tensor w = det_randn(transposed_weight ? Shape{70, 45} : Shape{45, 70}, seed++, true).to(kFloat32).detach();
        w.requires_grad_(true);
        Tensor weight = transposed_weight ? w.t() : w;
        Tensor b = det_randn({45}, seed++, false).to(kFloat32);
        Tensor with_grad = linear(x, weight, b, act).detach();
        NoGradGuard no_grad;
        check_close(linear(x, weight, b, act), with_grad, 1e-5, 1e-5);
      }
}

TEST_CASE("the packed-weight cache: one packing per weight, repacked after an in-place change, dropped when freed") {
  if (!cpu::sgemm_uses_latent_kernel()) {
    MESSAGE("skipped: float32 products use OpenBLAS here; nothing is packed");
    return;
  }
  cpu::clear_prepacked_weights();
  NoGradGuard no_grad;
  Tensor x = det_randn({2, 33}, 1, false).to(kFloat32);
  Tensor b = det_randn({19}, 3, false).to(kFloat32);
  {
    Tensor w = det_randn({19, 33}, 2, false).to(kFloat32);
    Tensor first = linear(x, w, b, Activation::Relu);
    CHECK(cpu::prepacked_weight_count() == 1);
    auto packed = cpu::prepacked_weight_t(w);
    CHECK(packed.get() == cpu::prepacked_weight_t(w).get());  // a hit, not a second packing
    check_close(linear(x, w, b, Activation::Relu), first, 0, 0);
    // An in-place change bumps the version: the next call packs the new values.
    w.mul_(2.0);
    CHECK(cpu::prepacked_weight_t(w).get() != packed.get());
    CHECK(cpu::prepacked_weight_count() == 1);
    check_close(linear(x, w, b), linear(x.to(kFloat64), w.to(kFloat64), b.to(kFloat64)).to(kFloat32), 1e-5, 1e-5);
    // A view with other strides is a packing of its own.
    Tensor wt = w.t().contiguous().t();
    check_close(linear(x, wt, b), linear(x, w, b), 1e-6, 1e-6);
  }
  // A forward that records the tape (training: the weight changes every step) packs nothing.
  {
    EnableGradGuard grad_on;
    Tensor w = det_randn({19, 33}, 5, true).to(kFloat32).detach().requires_grad_(true);
    const size_t before = cpu::prepacked_weight_count();
    Tensor y = linear(x, w, b, Activation::Relu);
    CHECK(y.requires_grad());
    CHECK(cpu::prepacked_weight_count() == before);
  }
  // The weights above are freed: the next packing sweeps their entries.
  Tensor w2 = det_randn({19, 33}, 4, false).to(kFloat32);
  linear(x, w2, b);
  CHECK(cpu::prepacked_weight_count() == 1);
  cpu::clear_prepacked_weights();
  CHECK(cpu::prepacked_weight_count() == 0);
}

TEST_CASE("autoencoders in eval under NoGradGuard give the grad-mode forward's values at batch 1, 16 and 64, also after a step") {
  for (const char* name : {"deep", "vae", "conv", "linear"}) {
    CAPTURE(name);
    manual_seed(7);
    models::AEConfig config;
    config.model = name;
    config.tied = std::string(name) == "linear";
    auto model = models::make_autoencoder(config);
    model->eval();
    for (int64_t rows : {1, 16, 64}) {
      Tensor x = rand({rows, 784});
      Tensor with_grad = model->forward(x).detach();
      Tensor code_with_grad = model->encode(x).detach();
      NoGradGuard no_grad;
      check_close(model->forward(x), with_grad, 1e-5, 1e-5);
      check_close(model->encode(x), code_with_grad, 1e-5, 1e-5);
      // A parameter update (what an optimizer step does) is seen by the next no-grad forward.
      for (Tensor& p : model->parameters()) p.add_(0.01);
      NoGradGuard again;
      Tensor fresh;
      {
        EnableGradGuard grad_on;
        fresh = model->forward(x).detach();
      }
      check_close(model->forward(x), fresh, 1e-5, 1e-5);
    }
  }
}

namespace {
/// Bitwise equality of two float32 tensors of the same shape.
bool same_bits(const Tensor& a, const Tensor& b) {
  const Tensor x = a.contiguous(), y = b.contiguous();
  return x.shape() == y.shape() &&
         std::memcmp(x.data_ptr<float>(), y.data_ptr<float>(), sizeof(float) * size_t(x.numel())) == 0;
}
}  // namespace

TEST_CASE("conv2d and conv_transpose2d reuse their packed weights only while the weights are unchanged") {
  // The direct kernels keep the lane-major packing per thread (cpu_conv_direct.h's setup_cache);
  // a copy of the weight (a fresh storage, never cached) is the reference after each change.
  for (int threads : {1, 2}) {
    const int saved = get_num_threads();
    set_num_threads(threads);
    CAPTURE(threads);
    for (int64_t batch : {1, 3}) {
      CAPTURE(batch);
      Tensor x = det_randn({batch, 16, 7, 7}, 900 + batch, false).to(kFloat32);
      Tensor w = det_randn({32, 16, 3, 3}, 901, false).to(kFloat32);
      Tensor b = det_randn({32}, 902, false).to(kFloat32);
      Tensor wt = det_randn({16, 8, 3, 3}, 903, false).to(kFloat32);  // conv_transpose2d: (C_in, C_out, kH, kW)
      Tensor bt = det_randn({8}, 904, false).to(kFloat32);
      NoGradGuard no_grad;
      const Tensor first = conv2d(x, w, b, 2, 1), first_t = conv_transpose2d(x, wt, bt, 2, 1, 1);
      CHECK(same_bits(conv2d(x, w, b, 2, 1), first));  // a hit gives the same values
      CHECK(same_bits(first, conv2d(x, w.clone(), b.clone(), 2, 1)));
      CHECK(same_bits(first_t, conv_transpose2d(x, wt.clone(), bt.clone(), 2, 1, 1)));
      // In-place changes (an optimizer step's kind) to the weight, then the bias only.
      w.add_(0.25);
      wt.mul_(-0.5);
      const Tensor second = conv2d(x, w, b, 2, 1), second_t = conv_transpose2d(x, wt, bt, 2, 1, 1);
      CHECK_FALSE(same_bits(second, first));
      CHECK_FALSE(same_bits(second_t, first_t));
      CHECK(same_bits(second, conv2d(x, w.clone(), b.clone(), 2, 1)));
      CHECK(same_bits(second_t, conv_transpose2d(x, wt.clone(), bt.clone(), 2, 1, 1)));
      b.sub_(1.0);
      CHECK(same_bits(conv2d(x, w, b, 2, 1), conv2d(x, w.clone(), b.clone(), 2, 1)));
      // The same values against a float64 evaluation (an independent path: im2col + GEMM).
      check_close(conv2d(x, w, b, 2, 1), conv2d(x.to(kFloat64), w.to(kFloat64), b.to(kFloat64), 2, 1).to(kFloat32),
                  1e-4, 1e-4);
      check_close(conv_transpose2d(x, wt, bt, 2, 1, 1),
                  conv_transpose2d(x.to(kFloat64), wt.to(kFloat64), bt.to(kFloat64), 2, 1, 1).to(kFloat32), 1e-4,
                  1e-4);
      // A freed weight's storage: new weights of the same shape (often at the same address).
      for (int round = 0; round < 3; ++round) {
        Tensor w2 = det_randn({32, 16, 3, 3}, 950 + round, false).to(kFloat32);
        CHECK(same_bits(conv2d(x, w2, b, 2, 1), conv2d(x, w2.clone(), b.clone(), 2, 1)));
      }
    }
    set_num_threads(saved);
  }
}
