// The quantized dtypes (int8, uint8, int32 in the one dtype list) and the int8 GEMM kernels
// (ops/cpu/qgemm.h): every variant this CPU runs against a plain int64/float64 reference on random
// shapes (M = 1, odd k and n, tails of every tile size) and the saturation corners.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "helpers.h"
#include "models/io/safetensors.h"
#include "ops/cpu/qconv.h"
#include "ops/cpu/qgemm.h"

using namespace latent;
using latent::cpu::QIsa;
using latent::testing::check_values;
using latent::testing::check_close;

TEST_CASE("dtype list: names, sizes, codes and promotion come from one table") {
  CHECK(dtype_name(kInt8) == "int8");
  CHECK(dtype_name(kUInt8) == "uint8");
  CHECK(dtype_name(kInt32) == "int32");
  CHECK(dtype_size(kInt8) == 1);
  CHECK(dtype_size(kUInt8) == 1);
  CHECK(dtype_size(kInt32) == 4);
  CHECK(dtype_size(kFloat64) == 8);
  CHECK(std::string(dtype_safetensors_code(kInt8)) == "I8");
  CHECK(std::string(dtype_safetensors_code(kUInt8)) == "U8");
  CHECK(std::string(dtype_safetensors_code(kInt32)) == "I32");
  CHECK(dtype_onnx_code(kUInt8) == 2);
  CHECK(dtype_onnx_code(kInt8) == 3);
  CHECK(dtype_onnx_code(kInt32) == 6);
  CHECK(dtype_onnx_code(kInt64) == 7);
  CHECK(dtype_onnx_code(kFloat32) == 1);
  CHECK(dtype_onnx_code(kFloat64) == 11);
  DType d = kFloat32;
  CHECK(dtype_from_onnx(3, d));
  CHECK(d == kInt8);
  CHECK_FALSE(dtype_from_onnx(12, d));  // uint32: not held
  CHECK(promote_types(kInt8, kFloat32) == kFloat32);
  CHECK(promote_types(kInt32, kInt64) == kInt64);
  CHECK(promote_types(kUInt8, kInt32) == kInt32);
  CHECK_FALSE(is_floating(kInt8));
  CHECK_FALSE(is_compute_dtype(kInt8));
  CHECK(is_compute_dtype(kInt64));
  CHECK(dtype_of<int8_t>::value == kInt8);
  CHECK(dtype_of<uint8_t>::value == kUInt8);
  CHECK(dtype_of<int32_t>::value == kInt32);
}

TEST_CASE("int8/uint8/int32 tensors: conversion saturates, values read back, arithmetic names the dtype") {
  Tensor x = tensor({-300.0f, -128.6f, -1.5f, -0.4f, 0.0f, 0.9f, 126.99f, 127.0f, 1e9f, NAN});
  check_values(x.to(kInt8), {-128, -128, -1, 0, 0, 0, 126, 127, 127, 0}, 0, 0);
  check_values(x.to(kUInt8), {0, 0, 0, 0, 0, 0, 126, 127, 255, 0}, 0, 0);
  check_values(x.to(kInt32), {-300, -128, -1, 0, 0, 0, 126, 127, 1e9, 0}, 0, 0);
  check_values(tensor({3e9f, -3e9f}).to(kInt32), {2147483647, -2147483648.0}, 0, 0);
  // integer -> integer conversions are C++'s (wrapping), as in PyTorch
  Tensor big = tensor({300.0f, -1.0f}).to(kInt32);
  check_values(big.to(kUInt8), {44, 255}, 0, 0);
  Tensor q = tensor({-7.0f, 5.0f}).to(kInt8);
  CHECK(q.dtype() == kInt8);
  CHECK(q.at<int>({0}) == -7);
  CHECK(q.slice(0, 1, 2).item<float>() == 5.0f);
  check_values(q.to(kFloat64), {-7, 5}, 0, 0);
  Tensor filled = full({3}, 200.0, kUInt8);
  check_values(filled, {200, 200, 200}, 0, 0);
  CHECK_THROWS_WITH_SUBSTR(q + q, "dtype int8 is not supported on CPU");
}

TEST_CASE("int8/uint8/int32 tensors round-trip through safetensors") {
  Tensor w = tensor({-128.0f, -1.0f, 0.0f, 127.0f}).to(kInt8).view({2, 2});
  Tensor u = tensor({0.0f, 255.0f, 17.0f}).to(kUInt8);
  Tensor i = tensor({-70000.0f, 70000.0f}).to(kInt32);
  const std::string bytes = safetensors::serialize({{"w", w}, {"u", u}, {"i", i}});
  CHECK(bytes.find("\"dtype\":\"I8\"") != std::string::npos);
  safetensors::File f = safetensors::deserialize(bytes);
  CHECK(f.at("w").dtype() == kInt8);
  CHECK(f.at("w").shape() == Shape{2, 2});
  check_values(f.at("w"), {-128, -1, 0, 127}, 0, 0);
  CHECK(f.at("u").dtype() == kUInt8);
  check_values(f.at("u"), {0, 255, 17}, 0, 0);
  CHECK(f.at("i").dtype() == kInt32);
  check_values(f.at("i"), {-70000, 70000}, 0, 0);
}

namespace {

std::vector<QIsa> isas_here() {
  std::vector<QIsa> out{QIsa::Base};
  if (int(cpu::qgemm_best_isa()) >= int(QIsa::Avx2)) out.push_back(QIsa::Avx2);
  if (cpu::qgemm_best_isa() == QIsa::Avx512Vnni) out.push_back(QIsa::Avx512Vnni);
  return out;
}

struct Problem {
  int64_t m, n, k, lda;
  std::vector<uint8_t> a;  // m x lda
  std::vector<int8_t> w;   // n x k
  std::vector<float> w_scale, bias;
};

Problem random_problem(int64_t m, int64_t n, int64_t k, uint32_t seed) {
  std::mt19937 gen(seed);
  Problem p{m, n, k, (k + 3) / 4 * 4 + 4, {}, {}, {}, {}};
  std::uniform_int_distribution<int> ua(0, 255), uw(-128, 127);
  std::uniform_real_distribution<float> us(0.001f, 0.02f), ub(-1.0f, 1.0f);
  p.a.resize(size_t(m * p.lda));
  for (auto& v : p.a) v = uint8_t(ua(gen));  // padding bytes too: their weights are zero
  p.w.resize(size_t(n * k));
  for (auto& v : p.w) v = int8_t(uw(gen));
  for (int64_t j = 0; j < n; ++j) {
    p.w_scale.push_back(us(gen));
    p.bias.push_back(ub(gen));
  }
  return p;
}

std::vector<int64_t> reference_sums(const Problem& p) {
  std::vector<int64_t> c(size_t(p.m * p.n));
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.n; ++j) {
      int64_t s = 0;
      for (int64_t q = 0; q < p.k; ++q) s += int64_t(p.a[size_t(i * p.lda + q)]) * p.w[size_t(j * p.k + q)];
      c[size_t(i * p.n + j)] = s;
    }
  return c;
}

}  // namespace

TEST_CASE("qgemm: int32 sums of every variant equal the reference on random shapes") {
  const int64_t shapes[][3] = {{1, 1, 1},    {1, 16, 4},   {1, 17, 5},  {1, 512, 784}, {2, 33, 7},   {3, 64, 3},
                               {5, 65, 129}, {6, 48, 64},  {7, 80, 31}, {13, 1, 9},    {37, 100, 257},
                               {64, 130, 66}};
  uint32_t seed = 1;
  for (const auto& s : shapes) {
    Problem p = random_problem(s[0], s[1], s[2], seed++);
    const std::vector<int64_t> ref = reference_sums(p);
    cpu::PackedQWeight packed = cpu::pack_qweight(p.n, p.k, p.w.data(), p.k);
    for (QIsa isa : isas_here()) {
      INFO("isa " << cpu::qisa_name(isa) << ", m " << p.m << ", n " << p.n << ", k " << p.k);
      std::vector<int32_t> c(size_t(p.m * p.n), -1);
      cpu::QEpilogue ep;
      ep.out_i32 = c.data();
      ep.ldc = p.n;
      cpu::qgemm_u8s8(p.m, p.a.data(), p.lda, packed, ep, isa);
      int64_t bad = 0;
      for (size_t i = 0; i < c.size(); ++i) bad += c[i] != ref[i];
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("qgemm: saturation corners (255 x -128, 255 x 127, mixed signs) stay exact") {
  // VPMADDUBSW would saturate pairs 255*127 + 255*127 = 64770 and 255*-128*2 = -65280 to int16.
  const int64_t m = 3, n = 20, k = 4099;
  Problem p{m, n, k, (k + 3) / 4 * 4, {}, {}, {}, {}};
  p.a.assign(size_t(m * p.lda), 255);
  for (int64_t q = 0; q < k; ++q) p.a[size_t(2 * p.lda + q)] = q % 2 ? 255 : 128;
  p.w.resize(size_t(n * k));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t q = 0; q < k; ++q)
      p.w[size_t(j * k + q)] = j % 3 == 0 ? int8_t(-128) : j % 3 == 1 ? int8_t(127) : int8_t(q % 2 ? 127 : -128);
  const std::vector<int64_t> ref = reference_sums(p);
  CHECK(ref[0] == int64_t(255) * -128 * k);
  CHECK(ref[1] == int64_t(255) * 127 * k);
  cpu::PackedQWeight packed = cpu::pack_qweight(n, k, p.w.data(), k);
  for (QIsa isa : isas_here()) {
    INFO("isa " << cpu::qisa_name(isa));
    std::vector<int32_t> c(size_t(m * n));
    cpu::QEpilogue ep;
    ep.out_i32 = c.data();
    ep.ldc = n;
    cpu::qgemm_u8s8(m, p.a.data(), p.lda, packed, ep, isa);
    for (size_t i = 0; i < c.size(); ++i) {
      INFO("element " << i);
      CHECK(int64_t(c[i]) == ref[i]);
    }
  }
}

TEST_CASE("qgemm: dequantized float32 and requantized uint8 stores match a float64 reference") {
  const int64_t shapes[][3] = {{1, 40, 33}, {1, 17, 257}, {6, 64, 64}, {7, 33, 301}, {19, 70, 130}, {256, 96, 200}};
  uint32_t seed = 100;
  for (const auto& s : shapes) {
    Problem p = random_problem(s[0], s[1], s[2], seed++);
    const std::vector<int64_t> ref = reference_sums(p);
    cpu::PackedQWeight packed = cpu::pack_qweight(p.n, p.k, p.w.data(), p.k);
    const float a_scale = 0.0125f;
    const int32_t a_zero = 77;
    std::vector<double> real(ref.size());
    for (int64_t i = 0; i < p.m; ++i)
      for (int64_t j = 0; j < p.n; ++j) {
        int64_t colsum = 0;
        for (int64_t q = 0; q < p.k; ++q) colsum += p.w[size_t(j * p.k + q)];
        real[size_t(i * p.n + j)] =
            double(a_scale) * p.w_scale[size_t(j)] * double(ref[size_t(i * p.n + j)] - a_zero * colsum) + p.bias[size_t(j)];
      }
    for (bool relu : {false, true})
      for (QIsa isa : isas_here()) {
        INFO("isa " << cpu::qisa_name(isa) << ", m " << p.m << ", relu " << relu);
        cpu::QEpilogue ep;
        ep.a_scale = a_scale;
        ep.a_zero = a_zero;
        ep.w_scale = p.w_scale.data();
        ep.bias = p.bias.data();
        ep.relu = relu;
        ep.ldc = p.n + 3;  // a strided output
        std::vector<float> out(size_t(p.m * ep.ldc), -99.0f);
        ep.out_f32 = out.data();
        cpu::qgemm_u8s8(p.m, p.a.data(), p.lda, packed, ep, isa);
        int64_t bad = 0;
        for (int64_t i = 0; i < p.m; ++i)
          for (int64_t j = 0; j < p.n; ++j) {
            const double want = relu ? std::max(real[size_t(i * p.n + j)], 0.0) : real[size_t(i * p.n + j)];
            bad += std::abs(out[size_t(i * ep.ldc + j)] - want) > 1e-4 + 1e-5 * std::abs(want);
          }
        CHECK(bad == 0);
        CHECK(out[size_t(p.n)] == -99.0f);  // the stride's gap is untouched

        const float out_scale = 0.05f;
        const int32_t out_zero = 120;
        std::vector<uint8_t> q(size_t(p.m * ep.ldc), 0);
        ep.out_f32 = nullptr;
        ep.out_u8 = q.data();
        ep.out_scale = out_scale;
        ep.out_zero = out_zero;
        cpu::qgemm_u8s8(p.m, p.a.data(), p.lda, packed, ep, isa);
        int64_t off = 0, saturated = 0;
        for (int64_t i = 0; i < p.m; ++i)
          for (int64_t j = 0; j < p.n; ++j) {
            const double r = relu ? std::max(real[size_t(i * p.n + j)], 0.0) : real[size_t(i * p.n + j)];
            const double want = std::clamp(std::nearbyint(r / out_scale) + out_zero, 0.0, 255.0);
            saturated += want == 0.0 || want == 255.0;
            // one level apart only where float32 rounding can land on the other side of a half
            const double frac = r / out_scale - std::floor(r / out_scale);
            const double allowed = std::abs(frac - 0.5) < 1e-3 ? 1.0 : 0.0;
            off += std::abs(double(q[size_t(i * ep.ldc + j)]) - want) > allowed;
          }
        CHECK(off == 0);
        CHECK(saturated > 0);  // the corner is exercised
      }
  }
}

TEST_CASE("quantize_u8: round half to even, saturation, NaN to the zero point") {
  const std::vector<float> x = {0.0f, 0.25f, 0.75f, 1.25f, -0.25f, -1.0f, 100.0f, -100.0f, 1e30f, -1e30f, NAN, INFINITY, 3.0f};
  std::vector<uint8_t> q(x.size());
  cpu::quantize_u8(1, int64_t(x.size()), x.data(), int64_t(x.size()), 0.5f, 10, q.data(), int64_t(x.size()));
  // x / 0.5: 0, 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0, -2, 200, -200, huge, -huge, NaN, inf, 6
  const std::vector<int> want = {10, 10, 12, 12, 10, 8, 210, 0, 255, 0, 10, 255, 16};
  for (size_t i = 0; i < x.size(); ++i) {
    INFO("x = " << x[i]);
    CHECK(int(q[i]) == want[i]);
  }
  CHECK_THROWS_WITH_SUBSTR(cpu::quantize_u8(1, 1, x.data(), 1, 0.0f, 0, q.data(), 1), "[quantize] scale must be positive");
}

TEST_CASE("qgemm: bad arguments are one-line errors") {
  std::vector<int8_t> w(8, 1);
  cpu::PackedQWeight packed = cpu::pack_qweight(2, 4, w.data(), 4);
  std::vector<uint8_t> a(8, 1);
  std::vector<float> out(4);
  cpu::QEpilogue ep;
  ep.ldc = 2;
  CHECK_THROWS_WITH_SUBSTR(cpu::qgemm_u8s8(1, a.data(), 4, packed, ep), "exactly one output");
  ep.out_f32 = out.data();
  CHECK_THROWS_WITH_SUBSTR(cpu::qgemm_u8s8(1, a.data(), 2, packed, ep), "row stride 2 of A is below the packed k 4");
  ep.a_zero = 300;
  CHECK_THROWS_WITH_SUBSTR(cpu::qgemm_u8s8(1, a.data(), 4, packed, ep), "zero point 300");
  CHECK_THROWS_WITH_SUBSTR(cpu::pack_qweight(0, 4, w.data(), 4), "[qgemm] weight shape [0, 4]");
}

TEST_CASE("quantize_weight_symmetric and uint8_params: values against hand-computed ones") {
  Tensor w = tensor({1.27f, -0.6f, 0.0f, 0.3f, -0.4f, 0.1f}).view({2, 3});
  auto [q, s] = quantize_weight_symmetric(w);
  CHECK(q.dtype() == kInt8);
  check_values(s, {0.01, 0.4 / 127}, 1e-9, 1e-6);
  check_values(q, {127, -60, 0, 95, -127, 32}, 0, 0);  // 0.3 / (0.4 / 127) = 95.25, 0.1 / (0.4 / 127) = 31.75
  auto [qt, st] = quantize_weight_symmetric(w, false);
  check_values(st, {0.01, 0.01}, 1e-9, 1e-6);
  check_values(qt, {127, -60, 0, 30, -40, 10}, 0, 0);
  auto [scale, zero] = uint8_params(-1.0, 3.0);
  CHECK(scale == doctest::Approx(4.0 / 255));
  CHECK(zero == 64);  // round(1 / (4/255)) = round(63.75)
  auto [s2, z2] = uint8_params(0.5, 2.0);  // widened to [0, 2]
  CHECK(s2 == doctest::Approx(2.0 / 255));
  CHECK(z2 == 0);
  CHECK_THROWS_WITH_SUBSTR(uint8_params(1.0, NAN), "[quantize] activation range");
}

TEST_CASE("a weight's int8 form runs inference-path linear calls int8; training and changed weights run float32") {
  Generator gen(7);
  Tensor w = randn({40, 70}, kFloat32, &gen), b = randn({40}, kFloat32, &gen);
  Tensor x = rand({9, 70}, kFloat32, &gen);
  auto [q, s] = quantize_weight_symmetric(w);
  const float in_scale = 1.0f / 255;
  const int32_t in_zero = 0;
  set_quantized_linear(w, make_quantized_linear(q, s, in_scale, in_zero));
  // Reference: x quantized to uint8 levels, dequantized weights, float64 sums.
  const std::vector<float> xv = x.to_vector<float>(), sv = s.to_vector<float>(), bv = b.to_vector<float>();
  const std::vector<int8_t> qv = q.to_vector<int8_t>();
  std::vector<double> want(9 * 40), want_relu(9 * 40);
  for (int i = 0; i < 9; ++i)
    for (int j = 0; j < 40; ++j) {
      double acc = 0;
      for (int p = 0; p < 70; ++p)
        acc += double(std::clamp(std::nearbyint(xv[size_t(i * 70 + p)] / in_scale), 0.0f, 255.0f)) * qv[size_t(j * 70 + p)];
      want[size_t(i * 40 + j)] = acc * in_scale * sv[size_t(j)] + bv[size_t(j)];
      want_relu[size_t(i * 40 + j)] = std::max(want[size_t(i * 40 + j)], 0.0);
    }
  {
    NoGradGuard no_grad;
    check_values(linear(x, w, b), want, 1e-4, 1e-5);
    check_values(linear(x, w, b, Activation::Relu), want_relu, 1e-4, 1e-5);
    Tensor row = x.slice(0, 3, 4).contiguous();  // M = 1
    check_values(linear(row, w, b), std::vector<double>(want.begin() + 3 * 40, want.begin() + 4 * 40), 1e-4, 1e-5);
    // the float32 result differs from the int8 one (the int8 path really ran)
    Tensor f32 = add(matmul(x, w.t()), b);
    CHECK(max(abs(sub(f32, linear(x, w, b)))).item<float>() > 1e-4f);
  }
  // a recorded forward (training) runs float32
  Tensor wg = w.detach().requires_grad_(true);
  set_quantized_linear(wg, make_quantized_linear(q, s, in_scale, in_zero));
  Tensor y = linear(x, wg, b);
  {
    NoGradGuard no_grad;
    check_close(y.detach(), add(matmul(x, w.t()), b), 1e-4, 1e-5);
  }
  // an in-place change of the weight drops the int8 form
  {
    NoGradGuard no_grad;
    w.mul_(1.0);
    CHECK(find_quantized_linear(w) == nullptr);
    check_close(linear(x, w, b), add(matmul(x, w.t()), b), 1e-4, 1e-5);
  }
  clear_quantized_linears();
  CHECK_THROWS_WITH_SUBSTR(set_quantized_linear(w, make_quantized_linear(q.slice(0, 0, 3), s.slice(0, 0, 3), 0.1f, 0)),
                           "int8 weights [3, 70] do not match the weight's shape [40, 70]");
  CHECK_THROWS_WITH_SUBSTR(make_quantized_linear(q, s.slice(0, 0, 3), 0.1f, 0), "expected 40 values");
  CHECK_THROWS_WITH_SUBSTR(make_quantized_linear(q, s, 0.1f, 256), "zero point 256");
}

TEST_CASE("CalibrationGuard records the inputs of inference-path linear calls per weight") {
  Tensor w1 = ones({4, 3}), w2 = ones({2, 4});
  CalibrationGuard guard;
  CHECK_THROWS_WITH_SUBSTR(CalibrationGuard(), "a calibration is already running");
  {
    NoGradGuard no_grad;
    Tensor h = linear(tensor({-2.0f, 0.5f, 1.0f, 3.0f, 0.0f, 0.25f}).view({2, 3}), w1, Tensor());
    (void)linear(h, w2, Tensor());
  }
  const CalibrationStats s1 = guard.stats(w1), s2 = guard.stats(w2);
  CHECK(s1.count == 6);
  CHECK(s1.min == -2.0);
  CHECK(s1.max == 3.0);
  CHECK(s1.sample.size() == 6);
  CHECK(s2.count == 8);
  CHECK(s2.min == doctest::Approx(-0.5));
  CHECK(s2.max == doctest::Approx(3.25));
  CHECK(guard.stats(ones({2, 2})).count == 0);
}

// ---- ONNX's QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear (ops/quantize_linear.cpp) ----

namespace {
Tensor f32(std::vector<float> v, Shape s) { return from_vector(v, s); }
Tensor as(std::vector<float> v, Shape s, DType d) { return from_vector(v, s).to(d); }
}  // namespace

TEST_CASE("quantize_linear: round half to even, zero point, saturation, per tensor") {
  // x / 1 = ties: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0 -> 0, -1.5 -> -2; then + zero 10
  Tensor x = f32({0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 300.0f, -300.0f}, {7});
  Tensor q = quantize_linear(x, scalar_tensor(1.0), scalar_tensor(10.0).to(kUInt8));
  CHECK(q.dtype() == kUInt8);
  CHECK(q.to_vector<double>() == std::vector<double>{10, 12, 12, 10, 8, 255, 0});
  Tensor q8 = quantize_linear(x, scalar_tensor(1.0), scalar_tensor(0.0).to(kInt8));
  CHECK(q8.dtype() == kInt8);
  CHECK(q8.to_vector<double>() == std::vector<double>{0, 2, 2, 0, -2, 127, -128});
  // no zero point: uint8, zero 0; scale 0.1 divides in float32 (0.3f / 0.1f = 3.0000001 -> 3)
  CHECK(quantize_linear(f32({0.3f, 25.5f, -1.0f}, {3}), scalar_tensor(0.1)).to_vector<double>() ==
        std::vector<double>{3, 255, 0});
}

TEST_CASE("quantize_linear and dequantize_linear per axis") {
  // x (2, 3, 2), scales per channel (axis 1): 1, 2, 4; zero points 0, 1, 2
  std::vector<float> xv = {1, 2, 4, 6, 8, 16, -1, 3, 7, 9, 40, 12};
  Tensor x = f32(xv, {2, 3, 2});
  Tensor scale = f32({1, 2, 4}, {3}), zero = as({0, 1, 2}, {3}, kUInt8);
  Tensor q = quantize_linear(x, scale, zero, 1);
  // reference: round_half_even(x / s) + z, clamped
  std::vector<double> expect;
  for (int o = 0; o < 2; ++o)
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < 2; ++i) {
        const double s = c == 0 ? 1 : c == 1 ? 2 : 4, z = c;
        expect.push_back(std::clamp(std::nearbyint(xv[size_t(o * 6 + c * 2 + i)] / s) + z, 0.0, 255.0));
      }
  CHECK(q.to_vector<double>() == expect);
  Tensor back = dequantize_linear(q, scale, zero, 1);
  CHECK(back.dtype() == kFloat32);
  std::vector<float> bv = back.to_vector<float>();
  for (size_t i = 0; i < bv.size(); ++i) {
    const int c = int(i / 2) % 3;
    CHECK(bv[i] == float((expect[i] - c) * (c == 0 ? 1 : c == 1 ? 2 : 4)));
  }
  // negative axis; int32 input of DequantizeLinear (bias form)
  CHECK(quantize_linear(x, scale, zero, -2).to_vector<double>() == expect);
  CHECK(dequantize_linear(as({-70000, 5}, {2}, kInt32), scalar_tensor(0.5)).to_vector<float>() ==
        std::vector<float>{-35000.0f, 2.5f});
}

TEST_CASE("dynamic_quantize_linear follows ONNX's definition") {
  Tensor x = f32({0, 2, -3, -2.5f, 1.34f, 0.5f}, {6});
  DynamicQuantized d = dynamic_quantize_linear(x);
  const float s = (2.0f - -3.0f) / 255.0f;
  CHECK(d.scale.item<float>() == s);
  const double z = std::nearbyint(3.0f / s);  // 153
  CHECK(d.zero.dtype() == kUInt8);
  CHECK(d.zero.to_vector<double>() == std::vector<double>{z});
  std::vector<double> expect;
  for (float v : x.to_vector<float>()) expect.push_back(std::clamp(std::nearbyint(v / s) + z, 0.0, 255.0));
  CHECK(d.q.to_vector<double>() == expect);
  // all zero: scale 1, zero 0
  DynamicQuantized z0 = dynamic_quantize_linear(f32({0, 0}, {2}));
  CHECK(z0.scale.item<float>() == 1.0f);
  CHECK(z0.q.to_vector<double>() == std::vector<double>{0, 0});
}

TEST_CASE("quantize_linear / dequantize_linear errors name the op and the values") {
  Tensor x = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK_THROWS_WITH_SUBSTR(quantize_linear(x, scalar_tensor(0.0)), "[quantize_linear] scale must be positive and finite; got 0");
  CHECK_THROWS_WITH_SUBSTR(quantize_linear(x, f32({1, 2}, {2}), {}, 1),
                           "[quantize_linear] per-axis scale has 2 values but input shape [2, 3] has 3 along axis 1");
  CHECK_THROWS_WITH_SUBSTR(quantize_linear(x, f32({1, 2, 3}, {3}), {}, 2), "[quantize_linear] axis 2 is out of range for input shape [2, 3]");
  CHECK_THROWS_WITH_SUBSTR(quantize_linear(x, scalar_tensor(1.0), scalar_tensor(0.0)),
                           "[quantize_linear] zero point must be uint8 or int8; got float32");
  CHECK_THROWS_WITH_SUBSTR(quantize_linear(x, f32({1, 2, 3}, {3}), as({0, 0}, {2}, kUInt8), 1),
                           "[quantize_linear] zero point has 2 values but scale has 3");
  CHECK_THROWS_WITH_SUBSTR(dequantize_linear(x, scalar_tensor(1.0)), "[dequantize_linear] input must be uint8, int8 or int32; got float32");
  CHECK_THROWS_WITH_SUBSTR(dequantize_linear(as({1}, {1}, kUInt8), scalar_tensor(1.0), as({0}, {1}, kInt8)),
                           "[dequantize_linear] zero point dtype int8 differs from the input's uint8");
  CHECK_THROWS_WITH_SUBSTR(dynamic_quantize_linear(f32({1, NAN}, {2})), "[dynamic_quantize_linear] input element 1 is nan");
}

// ---- the op-level form of the int8 convolutions (ops/quantize.h); the kernels: test_quant_conv.cpp ----

TEST_CASE("quantize_conv_weight_symmetric: one scale per output channel on axis 0 or 1") {
  // (2, 3, 1, 1): axis 0 channels are rows {1, -2, 4}, {0.5, 0.25, -1}; axis 1 columns.
  Tensor w = tensor({1.0f, -2.0f, 4.0f, 0.5f, 0.25f, -1.0f}).view({2, 3, 1, 1});
  auto [q0, s0] = quantize_conv_weight_symmetric(w, 0);
  check_values(s0, {4.0 / 127, 1.0 / 127}, 1e-7, 0);
  CHECK(q0.to_vector<int8_t>() == std::vector<int8_t>{32, -64, 127, 64, 32, -127});
  auto [q1, s1] = quantize_conv_weight_symmetric(w, 1);
  check_values(s1, {1.0 / 127, 2.0 / 127, 4.0 / 127}, 1e-7, 0);
  CHECK(q1.shape() == Shape{2, 3, 1, 1});
  CHECK(q1.to_vector<int8_t>() == std::vector<int8_t>{127, -127, 127, 64, 16, -32});
  CHECK_THROWS_WITH_SUBSTR(quantize_conv_weight_symmetric(w, 2), "output channels on axis 0 or 1");
}

TEST_CASE("a conv weight's int8 form runs inference-path conv2d/conv_transpose2d int8; training runs float32") {
  Generator gen(11);
  for (bool transposed : {false, true}) {
    INFO((transposed ? "conv_transpose2d" : "conv2d"));
    const int64_t c_in = 5, c_out = 6, n = 2, h = 9, wd = 8;
    Tensor w = randn(transposed ? Shape{c_in, c_out, 3, 3} : Shape{c_out, c_in, 3, 3}, kFloat32, &gen);
    Tensor b = randn({c_out}, kFloat32, &gen);
    Tensor x = rand({n, c_in, h, wd}, kFloat32, &gen);
    auto [q, s] = quantize_conv_weight_symmetric(w, transposed ? 1 : 0);
    const float in_scale = 1.0f / 250;
    const int32_t in_zero = 3;
    set_quantized_conv(w, make_quantized_conv(q, s, in_scale, in_zero, transposed));
    const auto run = [&](const Tensor& weight) {
      return transposed ? conv_transpose2d(x, weight, b, 2, 1, 1) : conv2d(x, weight, b, 2, 1);
    };
    // Reference: x at its uint8 levels, the int8 weights dequantized, float64 via the op itself
    // (float64 conv of dequantized values equals the int8 sums times the scales).
    Tensor xq = quantize_linear(x, full({}, in_scale, kFloat32), full({}, double(in_zero), kUInt8));
    Tensor xd = dequantize_linear(xq, full({}, in_scale, kFloat32), full({}, double(in_zero), kUInt8)).to(kFloat64);
    Tensor wd64 = mul(q.to(kFloat64), s.to(kFloat64).view(transposed ? Shape{1, c_out, 1, 1} : Shape{c_out, 1, 1, 1}));
    Tensor want = transposed ? conv_transpose2d(xd, wd64, b.to(kFloat64), 2, 1, 1) : conv2d(xd, wd64, b.to(kFloat64), 2, 1);
    {
      NoGradGuard no_grad;
      Tensor got = run(w);
      check_close(got.to(kFloat64), want, 1e-4, 1e-5);
      CHECK(max(abs(sub(got, run(w.detach().clone())))).item<float>() > 1e-4f);  // int8 really ran
      Tensor one = transposed ? conv_transpose2d(x.slice(0, 1, 2), w, b, 2, 1, 1) : conv2d(x.slice(0, 1, 2), w, b, 2, 1);
      check_close(one.to(kFloat64), want.slice(0, 1, 2), 1e-4, 1e-5);  // batch 1
    }
    // a recorded forward (training) runs float32
    Tensor wg = w.detach().requires_grad_(true);
    set_quantized_conv(wg, make_quantized_conv(q, s, in_scale, in_zero, transposed));
    Tensor y = run(wg);
    {
      NoGradGuard no_grad;
      check_close(y.detach(), run(w.detach().clone()), 1e-5, 1e-5);
    }
  }
  clear_quantized_linears();
  Tensor w = ones({4, 3, 3, 3});
  auto [q, s] = quantize_conv_weight_symmetric(w, 0);
  CHECK_THROWS_WITH_SUBSTR(make_quantized_conv(q, s.slice(0, 0, 2), 0.1f, 0, false), "expected 4 values");
  CHECK_THROWS_WITH_SUBSTR(make_quantized_conv(q, s, 0.1f, 0, true), "expected 3 values");
  CHECK_THROWS_WITH_SUBSTR(set_quantized_conv(ones({4, 3, 3, 2}), make_quantized_conv(q, s, 0.1f, 0, false)),
                           "do not match the weight's shape [4, 3, 3, 2]");
}

TEST_CASE("CalibrationGuard records conv2d and conv_transpose2d inputs, with the direction") {
  Tensor wc = ones({2, 1, 3, 3}), wt = ones({2, 1, 3, 3});
  CalibrationGuard guard;
  {
    NoGradGuard no_grad;
    Tensor x = tensor({-1.0f, 0.5f, 2.0f, 0.0f}).view({1, 1, 2, 2});
    Tensor h = conv2d(x, wc, Tensor(), 1, 1);            // (1, 2, 2, 2): each output sums all 4 inputs = 1.5
    (void)conv_transpose2d(h, wt, Tensor(), 1, 1);
  }
  const CalibrationStats sc = guard.stats(wc), st = guard.stats(wt);
  CHECK(sc.count == 4);
  CHECK(sc.min == -1.0);
  CHECK(sc.max == 2.0);
  CHECK_FALSE(sc.transposed);
  CHECK(st.count == 8);
  CHECK(st.min == doctest::Approx(1.5));
  CHECK(st.max == doctest::Approx(1.5));
  CHECK(st.transposed);
}

TEST_CASE("qgemm: the sigmoid store is within 2e-6 of 1 / (1 + e^-x), special values included") {
  // Zero weights: every output is sigmoid(bias[j]); 37 columns (a partial last panel), rows 1 and 5.
  std::vector<float> xs = {-1e30f, -INFINITY, -100.0f, -31.0f, -30.0f, -29.5f, -17.3f, -9.01f, -5.0f, -2.5f, -1.0f,
                           -0.3466f, -0.1f, -1e-3f, -1e-8f, 0.0f, 1e-8f, 1e-3f, 0.1f, 0.3466f, 0.5f, 0.6931f, 1.0f,
                           1.7f, 2.5f, 3.1f, 4.0f, 5.5f, 8.0f, 12.25f, 16.0f, 29.9f, 30.0f, 31.0f, 100.0f, INFINITY, NAN};
  const int64_t n = int64_t(xs.size()), k = 8;
  std::vector<int8_t> w(size_t(n * k), 0);
  cpu::PackedQWeight packed = cpu::pack_qweight(n, k, w.data(), k);
  for (int64_t m : {1, 5})
    for (QIsa isa : isas_here()) {
      INFO("isa " << cpu::qisa_name(isa) << ", m " << m);
      std::vector<uint8_t> a(size_t(m * 8), 200);
      std::vector<float> out(size_t(m * n), -5.0f);
      cpu::QEpilogue ep;
      ep.a_zero = 3;
      ep.bias = xs.data();
      ep.sigmoid = true;
      ep.out_f32 = out.data();
      ep.ldc = n;
      cpu::qgemm_u8s8(m, a.data(), 8, packed, ep, isa);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          const double x = xs[size_t(j)], got = out[size_t(i * n + j)];
          INFO("x = " << x << ", got " << got);
          if (std::isnan(x)) {
            CHECK(std::isnan(got));
          } else {
            const double want = 1.0 / (1.0 + std::exp(-x));
            CHECK(std::abs(got - want) <= 2e-6);
            CHECK(got >= 0.0);
            CHECK(got <= 1.0);
          }
        }
    }
  std::vector<uint8_t> q(4);
  cpu::QEpilogue ep;
  ep.sigmoid = true;
  ep.out_u8 = q.data();
  ep.ldc = n;
  std::vector<uint8_t> a(8, 1);
  CHECK_THROWS_WITH_SUBSTR(cpu::qgemm_u8s8(1, a.data(), 8, packed, ep), "[qgemm] the sigmoid store needs the float32 output");
}
