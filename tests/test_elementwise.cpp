// Elementwise ops against float64 references computed here, with broadcasting, non-contiguous
// inputs, dtype promotion, scalar overloads and error messages.
#include <functional>

#include "helpers.h"

using namespace latent;
using latent::testing::check_values;
using latent::testing::det_randn;
using latent::testing::det_uniform;

namespace {

/// Naive broadcast of a binary function over two tensors of any shapes, in float64.
std::vector<double> naive_binary(const Tensor& a, const Tensor& b, const std::function<double(double, double)>& f) {
  Shape shape = broadcast_shapes("test", a.shape(), b.shape());
  std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>(), out;
  auto index_into = [&](const Tensor& t, const Shape& at) {
    int64_t flat = 0;
    const int lead = shape.size() - t.dim();
    for (int d = 0; d < t.dim(); ++d) flat = flat * t.shape()[d] + (t.shape()[d] == 1 ? 0 : at[lead + d]);
    return flat;
  };
  Shape at = Shape::filled(shape.size(), 0);
  for (int64_t k = 0; k < shape.numel(); ++k) {
    out.push_back(f(av[static_cast<size_t>(index_into(a, at))], bv[static_cast<size_t>(index_into(b, at))]));
    for (int d = shape.size() - 1; d >= 0; --d) {
      if (++at[d] < shape[d]) break;
      at[d] = 0;
    }
  }
  return out;
}

std::vector<double> naive_unary(const Tensor& x, const std::function<double(double)>& f) {
  std::vector<double> out;
  for (double v : x.to_vector<double>()) out.push_back(f(v));
  return out;
}

}  // namespace

TEST_CASE("binary ops match the reference with broadcasting") {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {3, 1}}, {{4}, {2, 3, 4}}, {{3, 4}, {}}};
  for (const auto& [sa, sb] : shapes) {
    CAPTURE(sa);
    CAPTURE(sb);
    Tensor a = det_uniform(sa, 1, 0.5, 2.0, false).to(kFloat32);
    Tensor b = det_uniform(sb, 2, 0.5, 2.0, false).to(kFloat32);
    check_values(a + b, naive_binary(a, b, [](double x, double y) { return x + y; }));
    check_values(a - b, naive_binary(a, b, [](double x, double y) { return x - y; }));
    check_values(a * b, naive_binary(a, b, [](double x, double y) { return x * y; }));
    check_values(a / b, naive_binary(a, b, [](double x, double y) { return x / y; }));
    check_values(pow(a, b), naive_binary(a, b, [](double x, double y) { return std::pow(x, y); }));
    check_values(maximum(a, b), naive_binary(a, b, [](double x, double y) { return std::max(x, y); }));
    check_values(minimum(a, b), naive_binary(a, b, [](double x, double y) { return std::min(x, y); }));
    check_values(add(a, b, -2.5), naive_binary(a, b, [](double x, double y) { return x - 2.5 * y; }));
    check_values(gt(a, b), naive_binary(a, b, [](double x, double y) { return x > y ? 1.0 : 0.0; }));
  }
}

TEST_CASE("non-contiguous operands give the same values as contiguous ones") {
  Tensor base = det_randn({4, 6}, 3, false);
  Tensor tr = base.t();                    // (6, 4), strides (1, 6)
  Tensor sl = base.slice(1, 0, 6, 2);      // (4, 3), strides (6, 2)
  Tensor trc = tr.contiguous(), slc = sl.contiguous();
  Tensor other = det_randn({6, 4}, 4, false);
  check_values(tr * other, (trc * other).to_vector<double>(), 0, 0);
  check_values(exp(sl), exp(slc).to_vector<double>(), 0, 0);
  check_values(sl + sl.t().t(), (slc + slc).to_vector<double>(), 0, 0);
  // Expanded (stride-0) inputs.
  Tensor row = tensor({1, 2, 3});
  check_values(row.expand({2, 3}) * tensor({{1, 1, 1}, {2, 2, 2}}), {1, 2, 3, 2, 4, 6});
}

TEST_CASE("unary math matches the reference") {
  Tensor x = det_uniform({5, 3}, 5, 0.1, 3.0, false);
  check_values(neg(x), naive_unary(x, [](double v) { return -v; }), 0, 0);
  check_values(exp(x), naive_unary(x, [](double v) { return std::exp(v); }), 0, 1e-15);
  check_values(log(x), naive_unary(x, [](double v) { return std::log(v); }), 0, 1e-15);
  check_values(sqrt(x), naive_unary(x, [](double v) { return std::sqrt(v); }), 0, 1e-15);
  check_values(square(x), naive_unary(x, [](double v) { return v * v; }), 0, 1e-15);
  check_values(pow(x, 1.5), naive_unary(x, [](double v) { return std::pow(v, 1.5); }), 0, 1e-15);
  check_values(pow(2.0, x), naive_unary(x, [](double v) { return std::pow(2.0, v); }), 0, 1e-15);
  Tensor s = det_randn({7}, 6, false);
  check_values(abs(s), naive_unary(s, [](double v) { return std::abs(v); }), 0, 0);
  check_values(clamp(s, -0.5, 0.25), naive_unary(s, [](double v) { return std::clamp(v, -0.5, 0.25); }), 0, 0);
}

TEST_CASE("float32 exp (vectorised polynomial) is accurate over the whole float range") {
  std::vector<float> xs;
  for (float x = -110.0f; x < 90.0f; x += 0.0137f) xs.push_back(x);
  Tensor e = exp(from_vector(xs, {static_cast<int64_t>(xs.size())}));
  std::vector<float> got = e.to_vector<float>();
  double worst = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double want = std::exp(static_cast<double>(xs[i]));
    if (want > 3.4028234e38) {
      CHECK(std::isinf(got[i]));
    } else if (want < 1.1754944e-38) {
      CHECK(std::abs(got[i] - want) <= 1.5e-45 + 1e-6 * want);  // denormal and zero results
    } else {
      worst = std::max(worst, std::abs(got[i] - want) / want);
    }
  }
  INFO("worst relative error " << worst);
  CHECK(worst < 3e-7);
  check_values(exp(tensor({-INFINITY, INFINITY, 0.0f})), {0, INFINITY, 1});
  CHECK(std::isnan(exp(tensor({NAN})).item<float>()));
}

TEST_CASE("scalar overloads on both sides") {
  Tensor x = tensor({1, 2, 4});
  check_values(x + 1.0, {2, 3, 5});
  check_values(1.0 + x, {2, 3, 5});
  check_values(x - 1.0, {0, 1, 3});
  check_values(1.0 - x, {0, -1, -3});
  check_values(x * 3.0, {3, 6, 12});
  check_values(3.0 * x, {3, 6, 12});
  check_values(x / 2.0, {0.5, 1, 2});
  check_values(2.0 / x, {2, 1, 0.5});
  check_values(-x, {-1, -2, -4});
  check_values(x > 1.5, {0, 1, 1});
  check_values(x <= 2.0, {1, 1, 0});
  check_values(eq(x, 2.0), {0, 1, 0});
  check_values(ne(x, 2.0), {1, 0, 1});
  check_values(x >= tensor({1, 3, 3}), {1, 0, 1});
  check_values(x < tensor({1, 3, 3}), {0, 1, 0});
}

TEST_CASE("dtype promotion: int64 < float32 < float64") {
  Tensor f = tensor({1.5f, 2.5f});
  Tensor d = from_vector(std::vector<double>{1.0, 2.0}, {2});
  Tensor i = from_vector(std::vector<int64_t>{2, 3}, {2});
  CHECK((f + d).dtype() == kFloat64);
  CHECK((i + f).dtype() == kFloat32);
  CHECK((i * i).dtype() == kInt64);
  check_values(i + f, {3.5, 5.5});
  check_values(i * i, {4, 9});
}

TEST_CASE("where selects with broadcasting and gives gradients to both branches") {
  Tensor cond = tensor({1, 0, 1});
  Tensor a = tensor({1, 2, 3}).requires_grad_();
  Tensor b = full({1}, -1.0).requires_grad_();
  Tensor w = where(cond, a, b);
  check_values(w, {1, -1, 3});
  (w * tensor({1, 2, 3})).sum().backward();
  check_values(a.grad(), {1, 0, 3});
  check_values(b.grad(), {2});
  check_values(where(tensor({0.5f, -0.5f}) > 0.0, tensor({1, 1}), tensor({0, 0})), {1, 0});
}

TEST_CASE("elementwise error messages") {
  Tensor a = zeros({2, 3}), b = zeros({4});
  CHECK_THROWS_WITH_SUBSTR(a + b, "[add] shapes [2, 3] and [4] cannot broadcast: 3 != 4 at dim 1");
  CHECK_THROWS_WITH_SUBSTR(a * b, "[mul] shapes [2, 3] and [4] cannot broadcast");
  CHECK_THROWS_WITH_SUBSTR(a - Tensor(), "[sub] argument 'b' is an undefined tensor");
  CHECK_THROWS_WITH_SUBSTR(log(arange(3)), "[log] dtype int64 is not supported: expected float32 or float64");
  CHECK_THROWS_WITH_SUBSTR(clamp(a, 1.0, 0.0), "[clamp] min 1 is greater than max 0");
  CHECK_THROWS_WITH_SUBSTR(where(zeros({2}), zeros({3}), zeros({3})), "[where] shapes [2] and [3] cannot broadcast");
}

TEST_CASE("round: nearest integer, halves to even, in float32 and float64; zero gradient; integers refused") {
  const std::vector<double> x = {-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999997, -3.7, 3.7, 1e20, 123456789.5, -0.0};
  const std::vector<double> expected = {-2, -2, -0, 0, 2, 2, 0, -4, 4, 1e20, 123456790, -0.0};
  check_values(round(from_vector(x, {12}).to(kFloat64)), expected, 0, 0);
  // float32: 123456789.5 is not a float32; its nearest float32 (123456792) is already an integer.
  std::vector<double> expected32 = expected;
  expected32[10] = 123456792;
  expected32[9] = double(float(1e20));
  check_values(round(from_vector(x, {12}).to(kFloat32)), expected32, 0, 0);
  // Strided input: a transposed view rounds like its contiguous copy.
  Tensor m = from_vector(std::vector<double>{0.5, 1.5, 2.5, 3.5, 4.5, 5.5}, {2, 3}).to(kFloat32);
  check_values(round(transpose(m, 0, 1)), {0, 4, 2, 4, 2, 6}, 0, 0);
  Tensor p = from_vector(std::vector<double>{0.2, 1.7, -2.5}, {3}).to(kFloat32).requires_grad_();
  Tensor loss = sum(mul(round(p), 3.0));
  loss.backward();
  check_values(p.grad(), {0, 0, 0}, 0, 0);
  CHECK_THROWS_WITH_SUBSTR(round(from_vector(std::vector<double>{1, 2}, {2}).to(kInt64)), "[round] dtype int64 is not supported");
}
