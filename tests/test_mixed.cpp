// Mixed precision: the bfloat16/float16 dtypes (conversion corners, tensors, printing,
// safetensors bytes), the low-precision GEMM (ops/cpu/bgemm.h) against a float64 reference on the
// rounded operands, and autocast (ops/autocast.h) against float32 within stated bf16 tolerances.
#include <immintrin.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "helpers.h"
#include "models/io/safetensors.h"
#include "ops/cpu/bgemm.h"

using namespace latent;
using latent::testing::check_close;
using latent::testing::check_values;

namespace {
uint16_t bf16_bits(float f) { return BFloat16(f).bits; }
uint16_t f16_bits(float f) { return Float16(f).bits; }
float from_bits(uint32_t b) { return std::bit_cast<float>(b); }
}  // namespace

TEST_CASE("bfloat16: round to nearest even, NaN and Inf kept") {
  CHECK(bf16_bits(1.0f) == 0x3F80);
  CHECK(bf16_bits(-2.0f) == 0xC000);
  CHECK(bf16_bits(from_bits(0x3F808000)) == 0x3F80);  // tie, even below
  CHECK(bf16_bits(from_bits(0x3F818000)) == 0x3F82);  // tie, even above
  CHECK(bf16_bits(from_bits(0x3F808001)) == 0x3F81);  // above the tie
  CHECK(bf16_bits(from_bits(0x3F807FFF)) == 0x3F80);  // below the tie
  CHECK(bf16_bits(3.14159265f) == 0x4049);            // 3.140625
  CHECK(bf16_bits(std::numeric_limits<float>::infinity()) == 0x7F80);
  CHECK(bf16_bits(-std::numeric_limits<float>::infinity()) == 0xFF80);
  CHECK(bf16_bits(from_bits(0x7F7FFFFF)) == 0x7F80);  // float max rounds up to Inf
  CHECK(bf16_bits(from_bits(0x00000001)) == 0x0000);  // smallest float subnormal rounds to 0
  CHECK(bf16_bits(from_bits(0x00010000)) == 0x0001);  // bf16 subnormals kept
  const uint16_t nan = bf16_bits(std::numeric_limits<float>::quiet_NaN());
  CHECK((nan & 0x7F80) == 0x7F80);
  CHECK((nan & 0x007F) != 0);
  CHECK((bf16_bits(from_bits(0x7F800001)) & 0x7F) != 0);  // a signalling NaN whose payload is in the low bits stays NaN
  CHECK(std::isnan(float(BFloat16::from_bits(0x7FC0))));
  CHECK(float(BFloat16::from_bits(0x4049)) == 3.140625f);
  // every finite bf16 survives the round trip
  int bad = 0;
  for (uint32_t h = 0; h < 65536; ++h)
    if ((h & 0x7F80) != 0x7F80 && bf16_bits(float(BFloat16::from_bits(uint16_t(h)))) != h) ++bad;
  CHECK(bad == 0);
}

TEST_CASE("float16: round to nearest even, subnormals, overflow to Inf") {
  CHECK(f16_bits(1.0f) == 0x3C00);
  CHECK(f16_bits(-2.0f) == 0xC000);
  CHECK(f16_bits(65504.f) == 0x7BFF);
  CHECK(f16_bits(65519.f) == 0x7BFF);
  CHECK(f16_bits(65520.f) == 0x7C00);  // the tie above the largest finite value goes to Inf
  CHECK(f16_bits(1e9f) == 0x7C00);
  CHECK(f16_bits(0x1p-14f) == 0x0400);   // smallest normal
  CHECK(f16_bits(0x1p-24f) == 0x0001);   // smallest subnormal
  CHECK(f16_bits(0x1p-25f) == 0x0000);   // tie to even: 0
  CHECK(f16_bits(0x1.000002p-25f) == 0x0001);
  CHECK(f16_bits(0x1.8p-24f) == 0x0002);  // 1.5 units: tie to even 2
  CHECK(f16_bits(0x1.4p-23f) == 0x0002);  // 2.5 units: tie to even 2
  CHECK(f16_bits(0x3FFp-24f) == 0x03FF);  // largest subnormal
  CHECK(f16_bits(0x1.FFCp-15f) == 0x0400);  // rounds up into the normals (1023.5 units: tie to even 1024)
  CHECK(f16_bits(1.0f + 0x1p-11f) == 0x3C00);  // tie, even below
  CHECK(f16_bits(1.0f + 0x3p-11f) == 0x3C02);  // tie, even above
  CHECK(float(Float16::from_bits(0x0001)) == 0x1p-24f);
  CHECK(float(Float16::from_bits(0x8001)) == -0x1p-24f);
  CHECK(float(Float16::from_bits(0x7C00)) == std::numeric_limits<float>::infinity());
  CHECK(std::isnan(float(Float16::from_bits(0x7E00))));
  CHECK((f16_bits(std::numeric_limits<float>::quiet_NaN()) & 0x7C00) == 0x7C00);
  CHECK((f16_bits(std::numeric_limits<float>::quiet_NaN()) & 0x03FF) != 0);
  int bad = 0;
  for (uint32_t h = 0; h < 65536; ++h)
    if ((h & 0x7C00) != 0x7C00 && f16_bits(float(Float16::from_bits(uint16_t(h)))) != h) ++bad;
  CHECK(bad == 0);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("f16c"))) static uint16_t f16c_bits(float f) { return _cvtss_sh(f, 0); }
TEST_CASE("float16 conversion agrees with the F16C instruction on a sweep of float32 bit patterns") {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("f16c")) {
    MESSAGE("skipped: this CPU has no F16C");
    return;
  }
  int bad = 0, n = 0;
  for (uint64_t x = 0; x < (1ull << 32); x += 65521) {
    const float f = from_bits(uint32_t(x));
    if (std::isnan(f)) continue;
    ++n;
    if (f16_bits(f) != f16c_bits(f)) ++bad;
  }
  CHECK(n > 60000);
  CHECK(bad == 0);
}
#endif

TEST_CASE("bfloat16/float16 tensors: to(), values, printing, conversion to integers") {
  CHECK(dtype_name(kBFloat16) == "bfloat16");
  CHECK(dtype_name(kFloat16) == "float16");
  CHECK(dtype_size(kBFloat16) == 2);
  CHECK(std::string(dtype_safetensors_code(kBFloat16)) == "BF16");
  CHECK(std::string(dtype_safetensors_code(kFloat16)) == "F16");
  CHECK(dtype_onnx_code(kBFloat16) == 16);
  CHECK(dtype_onnx_code(kFloat16) == 10);
  CHECK(promote_types(kBFloat16, kFloat32) == kFloat32);
  CHECK(promote_types(kInt64, kFloat16) == kFloat16);
  CHECK(is_half(kBFloat16));
  CHECK_FALSE(is_compute_dtype(kBFloat16));
  CHECK_FALSE(is_floating(kFloat16));

  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = from_vector(std::vector<float>{1.0f, from_bits(0x3F808000), 3.14159265f, -inf, nan, 300.7f, 1e-8f}, {7});
  Tensor b = x.to(kBFloat16);
  CHECK(b.dtype() == kBFloat16);
  check_values(b, {1.0, 1.0, 3.140625, -INFINITY, NAN, 300.0, double(from_bits(0x322C0000))}, 0, 0);
  Tensor h = x.to(kFloat16);
  check_values(h, {1.0, 1.00390625, 3.140625, -INFINITY, NAN, 300.75, 0.0}, 0, 0);  // 1 + 2^-8 exact; 1e-8 < 2^-25: 0
  // float16 -> bfloat16 and back to float32 go through float32
  check_values(h.to(kBFloat16), {1.0, 1.0, 3.140625, -INFINITY, NAN, 300.0, 0.0}, 0, 0);
  // narrowing to integers saturates, NaN -> 0, as from float32
  check_values(b.to(kInt8), {1, 1, 3, -128, 0, 127, 0}, 0, 0);
  CHECK(b.at<float>({2}) == 3.140625f);
  CHECK_THROWS_WITH_SUBSTR(b.item<float>(), "a tensor with 7 elements");
  // printing shows the dtype and the stored (rounded) values
  const std::string text = from_vector(std::vector<float>{1.5f, 3.14159265f}, {2}).to(kBFloat16).to_string();
  INFO(text);
  CHECK(text.find("bfloat16") != std::string::npos);
  CHECK(text.find("3.14062") != std::string::npos);
  // to() a 16-bit float is differentiable: the gradient comes back float32
  Tensor w = from_vector(std::vector<float>{0.1f, 0.2f, 0.3f}, {3});
  w.requires_grad_(true);
  Tensor y = mul(w.to(kBFloat16).to(kFloat32), from_vector(std::vector<float>{2, 3, 4}, {3}));
  sum(y).backward();
  CHECK(w.grad().dtype() == kFloat32);
  check_values(w.grad(), {2, 3, 4}, 0, 0);
  CHECK_THROWS_WITH_SUBSTR(add(b, b), "dtype bfloat16 is not supported");
}

TEST_CASE("safetensors BF16/F16: hand-made bytes read, written bytes checked") {
  // {"a":BF16 [1, -2, 3.140625], "h":F16 [1, 2^-24, 65504]}: little-endian bit patterns by hand.
  const std::string header = R"({"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},)"
                             R"("h":{"dtype":"F16","shape":[3],"data_offsets":[6,12]}})";
  std::string bytes(8, '\0');
  const uint64_t len = header.size();
  std::memcpy(bytes.data(), &len, 8);
  bytes += header;
  const unsigned char data[] = {0x80, 0x3F, 0x00, 0xC0, 0x49, 0x40, 0x00, 0x3C, 0x01, 0x00, 0xFF, 0x7B};
  bytes.append(reinterpret_cast<const char*>(data), sizeof data);
  safetensors::File f = safetensors::deserialize(bytes);
  CHECK(f.at("a").dtype() == kBFloat16);
  check_values(f.at("a"), {1.0, -2.0, 3.140625}, 0, 0);
  CHECK(f.at("h").dtype() == kFloat16);
  check_values(f.at("h"), {1.0, 0x1p-24, 65504.0}, 0, 0);
  // writing: the data section holds the same bit patterns, and the header names BF16/F16
  const std::string out = safetensors::serialize({{"a", f.at("a")}, {"h", f.at("h")}});
  CHECK(out.find("\"BF16\"") != std::string::npos);
  CHECK(out.find("\"F16\"") != std::string::npos);
  REQUIRE(out.size() >= sizeof data);
  CHECK(std::memcmp(out.data() + out.size() - sizeof data, data, sizeof data) == 0);
  safetensors::File back = safetensors::deserialize(out);
  check_values(back.at("h"), {1.0, 0x1p-24, 65504.0}, 0, 0);
}


namespace {
/// C = A B (+ beta C0) in float64 on operands rounded to `dtype`, the layouts of blas_gemm.
std::vector<double> lowp_reference(DType dtype, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                                   const std::vector<float>& a, const std::vector<float>& b, float beta,
                                   const std::vector<float>& c0, const float* bias, bool relu) {
  auto r = [&](float v) { return dtype == kBFloat16 ? double(float(BFloat16(v))) : double(float(Float16(v))); };
  std::vector<double> c(size_t(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = beta == 0.f ? 0.0 : double(beta) * c0[size_t(i * n + j)];
      for (int64_t p = 0; p < k; ++p)
        s += r(ta ? a[size_t(p * m + i)] : a[size_t(i * k + p)]) * r(tb ? b[size_t(j * k + p)] : b[size_t(p * n + j)]);
      if (bias) s += bias[j];
      if (relu && !(s > 0)) s = 0;
      c[size_t(i * n + j)] = s;
    }
  return c;
}

void check_lowp_gemm(DType dtype, bool fallback) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  const int64_t ms[] = {1, 5, 12, 13, 30}, ns[] = {1, 15, 16, 17, 33, 70}, ks[] = {1, 2, 3, 31, 600};
  int cases = 0;
  for (int64_t m : ms)
    for (int64_t n : ns)
      for (int64_t k : ks)
        for (int t = 0; t < 4; ++t) {
          const bool ta = t & 1, tb = t & 2;
          std::vector<float> a(size_t(m * k)), b(size_t(k * n)), c(size_t(m * n)), bias(static_cast<size_t>(n));
          for (auto& v : a) v = nd(rng);
          for (auto& v : b) v = nd(rng);
          for (auto& v : c) v = nd(rng);
          for (auto& v : bias) v = nd(rng);
          const float beta = (m + n + k + t) % 3 == 0 ? 1.0f : 0.0f;
          const bool epi = beta == 0.f && (m + k) % 2 == 0;
          cpu::GemmEpilogue ep;
          ep.bias = bias.data();
          ep.relu = n % 2 == 1;
          std::vector<double> want = lowp_reference(dtype, ta, tb, m, n, k, a, b, beta, c, epi ? bias.data() : nullptr,
                                                    epi && ep.relu);
          std::vector<float> got = c;
          if (fallback)
            cpu::lowp_gemm_fallback(dtype, ta, tb, m, n, k, a.data(), ta ? m : k, b.data(), tb ? k : n, beta,
                                    got.data(), n, epi ? &ep : nullptr);
          else
            cpu::lowp_gemm(dtype, ta, tb, m, n, k, a.data(), ta ? m : k, b.data(), tb ? k : n, beta, got.data(), n,
                           epi ? &ep : nullptr);
          int bad = 0;
          for (size_t i = 0; i < got.size(); ++i) {
            // float32 sums of exact products: error below k * 2^-24 * sum |products|, ~ k * 6e-8 * sqrt(k)
            const double tol = 1e-5 + 2e-7 * double(k) * std::sqrt(double(k));
            if (!(std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i])))) ++bad;
          }
          INFO("m " << m << " n " << n << " k " << k << " ta " << ta << " tb " << tb << " beta " << beta << " epi " << epi);
          CHECK(bad == 0);
          ++cases;
        }
  CHECK(cases == 600);
}
}  // namespace

TEST_CASE("bfloat16 GEMM (VDPBF16PS where the CPU has it) against float64 on the rounded operands") {
  if (!cpu::bgemm_avx512_available()) MESSAGE("this CPU has no AVX512_BF16: the fallback runs (tested below too)");
  check_lowp_gemm(kBFloat16, false);
}

TEST_CASE("low-precision GEMM fallback: bfloat16 and float16 rounding, then the float32 kernel") {
  check_lowp_gemm(kBFloat16, true);
  check_lowp_gemm(kFloat16, true);
  check_lowp_gemm(kFloat16, false);  // float16 always takes the fallback on the CPU
}

TEST_CASE("autocast policy: one table, consulted at compile time") {
  static_assert(autocast_policy("linear") == CastPolicy::kLower);
  static_assert(autocast_policy("matmul") == CastPolicy::kLower);
  static_assert(autocast_policy("conv2d") == CastPolicy::kLower);
  static_assert(autocast_policy("conv_transpose2d") == CastPolicy::kLower);
  static_assert(autocast_policy("softmax") == CastPolicy::kFloat32);
  static_assert(autocast_policy("mse_loss") == CastPolicy::kFloat32);
  static_assert(autocast_policy("add") == CastPolicy::kNone);
  // every row names an op that exists
  for (const AutocastRule& r : kAutocastPolicy) {
    INFO(std::string(r.op));
    CHECK(op_registry().contains(std::string(r.op)));
  }
  CHECK(autocast_dtype() == kFloat32);
  {
    AutocastGuard g(kBFloat16);
    CHECK(autocast_dtype() == kBFloat16);
    {
      AutocastGuard off(kBFloat16, false);
      CHECK(autocast_dtype() == kFloat32);
    }
    CHECK(autocast_dtype() == kBFloat16);
  }
  CHECK(autocast_dtype() == kFloat32);
  CHECK_THROWS_WITH_SUBSTR(AutocastGuard(kInt8), "[autocast] dtype int8 is not supported: expected bfloat16, float16 or float32");
}

namespace {
/// x W^T + b in float64 with x and W rounded to bf16.
std::vector<double> linear_bf16_reference(const Tensor& x, const Tensor& w, const Tensor& b) {
  const auto xv = x.to_vector<float>(), wv = w.to_vector<float>(), bv = b.to_vector<float>();
  const int64_t m = x.shape()[0], k = x.shape()[1], n = w.shape()[0];
  std::vector<double> out(size_t(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = bv[size_t(j)];
      for (int64_t p = 0; p < k; ++p)
        s += double(float(BFloat16(xv[size_t(i * k + p)]))) * double(float(BFloat16(wv[size_t(j * k + p)])));
      out[size_t(i * n + j)] = s;
    }
  return out;
}
Tensor f32_randn(const Shape& s, uint64_t seed, bool grad = true) {
  Tensor t = latent::testing::det_randn(s, seed, false).to(kFloat32);
  if (grad) t.requires_grad_(true);
  return t;
}
}  // namespace

TEST_CASE("autocast bf16: linear runs on bf16-rounded operands with float32 sums; gradients float32") {
  Tensor x = f32_randn({37, 70}, 1), w = f32_randn({45, 70}, 2), b = f32_randn({45}, 3);
  Tensor y32 = linear(x, w, b);
  Tensor y;
  {
    AutocastGuard guard(kBFloat16);
    y = linear(x, w, b);
  }
  CHECK(y.dtype() == kFloat32);
  check_values(y, linear_bf16_reference(x, w, b), 1e-5, 1e-5);
  // bf16 operands: relative error per product 2^-8; the sums differ from float32 by about
  // 2^-8 * sqrt(k) * |x||w| ~ 0.06 at k = 70 with unit normals: 0.1 absolute, stated per op here.
  check_close(y, y32, 0.1, 0.02);
  CHECK(std::abs(y.to_vector<float>()[0] - y32.to_vector<float>()[0]) > 0);  // lowered, not float32
  // backward (outside the guard) runs the recorded precision; gradients are float32 and close
  Tensor g = f32_randn({37, 45}, 4, false);
  sum(mul(y, g)).backward();
  Tensor gx = x.grad(), gw = w.grad(), gb = b.grad();
  CHECK(gx.dtype() == kFloat32);
  CHECK(gw.dtype() == kFloat32);
  x.zero_grad(), w.zero_grad(), b.zero_grad();
  sum(mul(y32, g)).backward();
  check_close(gx, x.grad(), 0.15, 0.02);   // k = 45
  check_close(gw, w.grad(), 0.15, 0.02);   // k = 37
  check_close(gb, b.grad(), 1e-5, 1e-5);   // a reduction: float32
}

TEST_CASE("autocast bf16: matmul, conv2d and conv_transpose2d forward and backward within bf16 tolerance") {
  auto compare = [](auto fn, std::vector<Tensor> inputs, double atol) {
    Tensor ref = fn(inputs);
    sum(mul(ref, ref)).backward();
    std::vector<Tensor> g32;
    for (auto& t : inputs) g32.push_back(t.grad()), t.zero_grad();
    Tensor low;
    {
      AutocastGuard guard(kBFloat16);
      low = fn(inputs);
      sum(mul(low, low)).backward();  // inside the guard this time
    }
    CHECK(low.dtype() == kFloat32);
    check_close(low, ref, atol, 0.02);
    CHECK(max(abs(sub(low, ref))).item<float>() > 0);  // lowered
    for (size_t i = 0; i < inputs.size(); ++i) {
      CHECK(inputs[i].grad().dtype() == kFloat32);
      check_close(inputs[i].grad(), g32[i], 8 * atol, 0.05);
    }
  };
  compare([](const std::vector<Tensor>& t) { return matmul(t[0], t[1]); }, {f32_randn({9, 33}, 5), f32_randn({33, 20}, 6)},
          0.1);
  compare([](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], t[2], 1, 1); },
          {f32_randn({2, 3, 8, 8}, 7), f32_randn({4, 3, 3, 3}, 8), f32_randn({4}, 9)}, 0.1);
  compare([](const std::vector<Tensor>& t) { return conv_transpose2d(t[0], t[1], t[2], 2, 1); },
          {f32_randn({2, 4, 5, 5}, 10), f32_randn({4, 3, 3, 3}, 11), f32_randn({3}, 12)}, 0.1);
}

TEST_CASE("autocast: float32 ops take bf16 inputs through a recorded cast; float64 gradcheck unaffected") {
  Tensor x = f32_randn({4, 6}, 13);
  Tensor target = f32_randn({4, 6}, 19, false);
  Tensor ref = mse_loss(x, target);
  Tensor out;
  {
    AutocastGuard guard(kBFloat16);
    out = mse_loss(x.to(kBFloat16), target);  // a kFloat32 op: the bf16 input is cast back
  }
  CHECK(out.dtype() == kFloat32);
  check_close(out, ref, 0.01, 0.01);
  sum(mul(out, out)).backward();
  CHECK(x.grad().dtype() == kFloat32);
  // float64 products are never lowered: gradcheck passes inside the guard
  AutocastGuard guard(kBFloat16);
  Tensor a = latent::testing::det_randn({3, 5}, 14), w = latent::testing::det_randn({4, 5}, 15),
         bias = latent::testing::det_randn({4}, 16);
  CHECK_GRADCHECK([](const std::vector<Tensor>& t) { return sum(linear(t[0], t[1], t[2])); }, (std::vector<Tensor>{a, w, bias}));
  Tensor c = latent::testing::det_randn({1, 2, 5, 5}, 17), k = latent::testing::det_randn({3, 2, 3, 3}, 18);
  CHECK_GRADCHECK([](const std::vector<Tensor>& t) { return sum(conv2d(t[0], t[1])); }, (std::vector<Tensor>{c, k}));
}

TEST_CASE("GradScaler: skip on Inf/NaN with backoff, growth after the interval, unscaled updates") {
  Tensor p = from_vector(std::vector<float>{1.0f, 2.0f}, {2});
  p.requires_grad_(true);
  optim::SGD opt({p}, optim::SGDOptions(0.5));
  GradScalerOptions go;
  go.init_scale = 8;
  go.growth_interval = 3;
  GradScaler scaler(go);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  // each step: loss = sum(p * c): the true gradient is c
  auto run = [&](std::vector<float> c) {
    opt.zero_grad();
    Tensor loss = sum(mul(p, from_vector(c, {2})));
    scaler.scale(loss).backward();
    return scaler.step(opt);
  };
  CHECK(scaler.get_scale() == 8);
  CHECK(run({1.0f, 0.5f}));
  check_values(p, {0.5, 1.75}, 0, 0);  // p - 0.5 * c: the gradient was unscaled
  CHECK(run({1.0f, 0.5f}));
  CHECK(scaler.get_scale() == 8);
  CHECK(run({1.0f, 0.5f}));
  CHECK(scaler.get_scale() == 16);  // three finite steps: x2
  CHECK(scaler.growth_tracker() == 0);
  check_values(p, {-0.5, 1.25}, 0, 0);
  CHECK_FALSE(run({inf, 0.5f}));  // overflow: skipped, x0.5
  CHECK(scaler.get_scale() == 8);
  CHECK(scaler.skipped_steps() == 1);
  check_values(p, {-0.5, 1.25}, 0, 0);  // unchanged
  CHECK_FALSE(run({1.0f, nan}));
  CHECK(scaler.get_scale() == 4);
  CHECK(scaler.skipped_steps() == 2);
  CHECK(run({2.0f, 2.0f}));
  CHECK(run({2.0f, 2.0f}));
  CHECK(scaler.get_scale() == 4);  // the overflow reset the count: two finite steps so far
  CHECK(run({2.0f, 2.0f}));
  CHECK(scaler.get_scale() == 8);
  check_values(p, {-3.5, -1.75}, 0, 0);
  GradScalerOptions off;
  off.enabled = false;
  GradScaler disabled(off);
  CHECK(disabled.scale(p).is_same(p));
  CHECK_THROWS_WITH_SUBSTR(GradScaler(GradScalerOptions{0, 2, 0.5, 2000, true}), "[GradScaler] init_scale is 0, expected > 0");
  CHECK_THROWS_WITH_SUBSTR(GradScaler(GradScalerOptions{1, 2, 1.5, 2000, true}), "backoff_factor is 1.5, expected in (0, 1)");
}
