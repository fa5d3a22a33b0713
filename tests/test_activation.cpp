// Activations against their definitions evaluated here in float64.
#include <functional>

#include "helpers.h"
#include "ops/backend.h"

using namespace latent;
using latent::testing::check_values;

namespace {
std::vector<double> ref(const std::vector<double>& xs, const std::function<double(double)>& f) {
  std::vector<double> out;
  for (double x : xs) out.push_back(f(x));
  return out;
}
}  // namespace

TEST_CASE("activations match their definitions") {
  const std::vector<double> xs = {-30.0, -3.0, -1.0, -0.25, 0.0, 0.25, 1.0, 3.0, 30.0};
  Tensor x = from_vector(xs, {static_cast<int64_t>(xs.size())});
  const double alpha = 1.6732632423543772848170429916717, scale = 1.0507009873554804934193349852946;
  check_values(relu(x), ref(xs, [](double v) { return v > 0 ? v : 0.0; }), 0, 0);
  check_values(leaky_relu(x, 0.1), ref(xs, [](double v) { return v > 0 ? v : 0.1 * v; }), 1e-15, 1e-15);
  check_values(sigmoid(x), ref(xs, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }), 1e-15, 1e-14);
  check_values(tanh(x), ref(xs, [](double v) { return std::tanh(v); }), 1e-15, 1e-14);
  check_values(softplus(x), ref(xs, [](double v) { return v > 20 ? v : std::log(1.0 + std::exp(v)); }), 1e-15, 1e-14);
  check_values(softplus(x, 2.0, 5.0),
               ref(xs, [](double v) { return 2 * v > 5 ? v : std::log(1.0 + std::exp(2 * v)) / 2; }), 1e-15, 1e-14);
  check_values(elu(x, 0.5), ref(xs, [](double v) { return v > 0 ? v : 0.5 * (std::exp(v) - 1); }), 1e-15, 1e-14);
  check_values(selu(x), ref(xs, [&](double v) { return scale * (v > 0 ? v : alpha * (std::exp(v) - 1)); }), 1e-15, 1e-14);
  check_values(gelu(x), ref(xs, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }), 1e-15, 1e-14);
  check_values(erf(x), ref(xs, [](double v) { return std::erf(v); }), 1e-15, 1e-14);
  // float32 agrees too, and sigmoid saturates without NaN.
  check_values(sigmoid(x.to(kFloat32)), ref(xs, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }), 1e-7, 1e-6);
  Tensor extreme = tensor({-1000, 1000});
  check_values(sigmoid(extreme), {0, 1});
  check_values(softplus(extreme), {0, 1000});
}

TEST_CASE("activation gradients at known points") {
  Tensor x = tensor({-2, 0.5, 3}, TensorOptions().dtype(kFloat64)).requires_grad_();
  relu(x).sum().backward();
  check_values(x.grad(), {0, 1, 1});
  x.zero_grad();
  sigmoid(x).sum().backward();
  std::vector<double> expected;
  for (double v : {-2.0, 0.5, 3.0}) {
    double s = 1 / (1 + std::exp(-v));
    expected.push_back(s * (1 - s));
  }
  check_values(x.grad(), expected, 1e-15, 1e-12);
  x.zero_grad();
  erf(x).sum().backward();  // d erf / dx = 2 / sqrt(pi) * e^(-x^2)
  expected.clear();
  for (double v : {-2.0, 0.5, 3.0}) expected.push_back(2 / std::sqrt(3.14159265358979323846) * std::exp(-v * v));
  check_values(x.grad(), expected, 1e-15, 1e-12);
  GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return erf(in[0] * 1.5).sum(); }, {x.detach().requires_grad_()});
  INFO(r.report);
  CHECK(r.ok);
}

TEST_CASE("activation errors") {
  CHECK_THROWS_WITH_SUBSTR(sigmoid(arange(3)), "[sigmoid] dtype int64 is not supported");
  CHECK_THROWS_WITH_SUBSTR(softplus(zeros({2}), 0.0), "[softplus] beta must be positive; got 0");
  CHECK_THROWS_WITH_SUBSTR(gelu(Tensor()), "[gelu] argument 'input' is an undefined tensor");
  check_values(relu(from_vector(std::vector<int64_t>{-2, 3}, {2})), {0, 3});
}

TEST_CASE("float32 relu and sigmoid on long contiguous tensors (the vectorised path), in place too") {
  // 1003 elements: vector loops and tails; the values span sigmoid's saturation and relu's sign.
  std::vector<double> xs;
  for (int i = 0; i < 1003; ++i) xs.push_back(-120.0 + 240.0 * i / 1002.0);
  xs[5] = 0.0;
  xs[6] = -0.0;
  Tensor x = from_vector(xs, {1003}).to(kFloat32);
  std::vector<double> xf = x.to_vector<double>();  // the float32 inputs, exactly
  const auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  check_values(relu(x), ref(xf, [](double v) { return v > 0 ? v : 0.0; }), 0, 0);
  check_values(sigmoid(x), ref(xf, sig), 1e-7, 1e-6);
  // A strided view takes the general loop and agrees.
  Tensor strided = x.view({17, 59}).t();
  check_values(sigmoid(strided), ref(strided.to_vector<double>(), sig), 1e-7, 1e-6);
  // In place through the backend (what fused_linear does).
  Tensor y = x.clone();
  cpu_backend().unary(UnaryOp::Sigmoid, y, y, 0, 0);
  check_values(y, ref(xf, sig), 1e-7, 1e-6);
  Tensor nan = tensor({NAN, 1.0f});
  CHECK(std::isnan(sigmoid(nan).to_vector<double>()[0]));
}
