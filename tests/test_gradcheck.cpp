// Every differentiable op of the core passes gradcheck in float64, including broadcasting and
// non-contiguous (transposed, sliced, expanded) inputs.
#include <functional>

#include "helpers.h"

using namespace latent;
using latent::testing::det_randn;
using latent::testing::det_uniform;

namespace {
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

/// Weighted sum so every output element gets a distinct gradient (a plain sum hides transposes).
Tensor weighted_sum(const Tensor& y) {
  Tensor w = arange(0.0, static_cast<double>(y.numel()), 1.0, kFloat64).reshape(y.shape()) * 0.1 + 0.5;
  return (y * w).sum();
}

/// gradcheck of fn(inputs) reduced by weighted_sum.
void check_op(const std::string& what, const Fn& fn, const std::vector<Tensor>& inputs,
              const GradcheckOptions& options = {}) {
  CAPTURE(what);
  GradcheckResult r = gradcheck([&](const std::vector<Tensor>& in) { return weighted_sum(fn(in)); }, inputs, options);
  INFO(r.report);
  CHECK(r.ok);
}
}  // namespace

TEST_CASE("binary elementwise ops, with broadcasting") {
  const std::vector<std::pair<Shape, Shape>> shapes = {{{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{3, 1}, {1, 4}}, {{2, 3}, {}}};
  for (const auto& [sa, sb] : shapes) {
    CAPTURE(sa);
    CAPTURE(sb);
    Tensor a = det_uniform(sa, 11, 0.5, 2.0), b = det_uniform(sb, 12, 0.5, 2.0);
    check_op("add", [](auto& in) { return in[0] + in[1]; }, {a, b});
    check_op("add alpha", [](auto& in) { return add(in[0], in[1], -1.5); }, {a, b});
    check_op("sub", [](auto& in) { return in[0] - in[1]; }, {a, b});
    check_op("mul", [](auto& in) { return in[0] * in[1]; }, {a, b});
    check_op("div", [](auto& in) { return in[0] / in[1]; }, {a, b});
    check_op("pow", [](auto& in) { return pow(in[0], in[1]); }, {a, b});
    check_op("maximum", [](auto& in) { return maximum(in[0], in[1]); }, {a, b});
    check_op("minimum", [](auto& in) { return minimum(in[0], in[1]); }, {a, b});
  }
}

TEST_CASE("only some inputs require grad") {
  Tensor a = det_randn({3, 2}, 13), c = det_randn({3, 2}, 14, false);
  check_op("mul by constant", [](auto& in) { return in[0] * in[1]; }, {a, c});
  check_op("div constant by x", [](auto& in) { return in[1] / (in[0] * in[0] + 1.0); }, {a, c});
}

TEST_CASE("scalar overloads and unary math") {
  Tensor x = det_uniform({3, 4}, 15, 0.2, 2.0);
  check_op("x + s", [](auto& in) { return in[0] + 2.0; }, {x});
  check_op("s - x", [](auto& in) { return 2.0 - in[0]; }, {x});
  check_op("x * s", [](auto& in) { return in[0] * -3.0; }, {x});
  check_op("x / s", [](auto& in) { return in[0] / 4.0; }, {x});
  check_op("s / x", [](auto& in) { return 3.0 / in[0]; }, {x});
  check_op("neg", [](auto& in) { return -in[0]; }, {x});
  check_op("exp", [](auto& in) { return exp(in[0]); }, {x});
  check_op("log", [](auto& in) { return log(in[0]); }, {x});
  check_op("sqrt", [](auto& in) { return sqrt(in[0]); }, {x});
  check_op("square", [](auto& in) { return square(in[0]); }, {x});
  check_op("pow scalar", [](auto& in) { return pow(in[0], 2.5); }, {x});
  check_op("scalar pow", [](auto& in) { return pow(1.7, in[0]); }, {x});
  Tensor s = det_randn({3, 4}, 16);
  check_op("abs", [](auto& in) { return abs(in[0]); }, {s});
  check_op("clamp", [](auto& in) { return clamp(in[0], -0.5, 0.5); }, {s});
  check_op("where", [](auto& in) { return where(in[0] > 0.0, in[0] * 2.0, in[1]); }, {s, det_randn({4}, 17)});
}

TEST_CASE("activations") {
  Tensor x = det_randn({4, 5}, 18);
  check_op("relu", [](auto& in) { return relu(in[0]); }, {x});
  check_op("leaky_relu", [](auto& in) { return leaky_relu(in[0], 0.2); }, {x});
  check_op("sigmoid", [](auto& in) { return sigmoid(in[0]); }, {x});
  check_op("tanh", [](auto& in) { return tanh(in[0]); }, {x});
  check_op("softplus", [](auto& in) { return softplus(in[0]); }, {x});
  check_op("softplus beta", [](auto& in) { return softplus(in[0], 2.0, 1.0); }, {x});
  check_op("elu", [](auto& in) { return elu(in[0], 0.7); }, {x});
  check_op("selu", [](auto& in) { return selu(in[0]); }, {x});
  check_op("gelu", [](auto& in) { return gelu(in[0]); }, {x});
}

TEST_CASE("non-contiguous inputs") {
  Tensor base = det_randn({4, 6}, 19);
  Tensor tr = base.detach().t();  // (6, 4) with strides (1, 6): gradcheck perturbs it in place
  tr.requires_grad_();
  Tensor sliced = det_randn({4, 6}, 20).detach().slice(1, 0, 6, 2);  // (4, 3), strides (6, 2)
  sliced.requires_grad_();
  check_op("sigmoid of transposed", [](auto& in) { return sigmoid(in[0]); }, {tr});
  check_op("mul transposed x sliced", [](auto& in) { return in[0].narrow(0, 0, 4).narrow(1, 0, 3) * in[1]; },
           {tr, sliced});
  check_op("matmul transposed", [](auto& in) { return matmul(in[0], in[1].t()); }, {tr, det_randn({5, 4}, 21)});
  check_op("sum of sliced", [](auto& in) { return in[0].sum({1}); }, {sliced});
}

TEST_CASE("matrix products") {
  check_op("mm", [](auto& in) { return mm(in[0], in[1]); }, {det_randn({3, 4}, 22), det_randn({4, 5}, 23)});
  check_op("matmul 2-d", [](auto& in) { return matmul(in[0], in[1]); }, {det_randn({3, 4}, 24), det_randn({4, 2}, 25)});
  check_op("matmul vec", [](auto& in) { return matmul(in[0], in[1]); }, {det_randn({4}, 26), det_randn({4, 3}, 27)});
  check_op("matmul mat-vec", [](auto& in) { return matmul(in[0], in[1]); }, {det_randn({3, 4}, 28), det_randn({4}, 29)});
  check_op("matmul dot", [](auto& in) { return matmul(in[0], in[1]); }, {det_randn({4}, 30), det_randn({4}, 31)});
  check_op("matmul batched", [](auto& in) { return matmul(in[0], in[1]); },
           {det_randn({2, 3, 4}, 32), det_randn({2, 4, 2}, 33)});
  check_op("matmul broadcast batch", [](auto& in) { return matmul(in[0], in[1]); },
           {det_randn({2, 1, 3, 4}, 34), det_randn({3, 4, 2}, 35)});
  check_op("linear", [](auto& in) { return linear(in[0], in[1], in[2]); },
           {det_randn({5, 4}, 36), det_randn({3, 4}, 37), det_randn({3}, 38)});
  check_op("linear no bias", [](auto& in) { return linear(in[0], in[1]); }, {det_randn({5, 4}, 39), det_randn({3, 4}, 40)});
  check_op("linear 3-d input", [](auto& in) { return linear(in[0], in[1], in[2]); },
           {det_randn({2, 5, 4}, 41), det_randn({3, 4}, 42), det_randn({3}, 43)});
}

TEST_CASE("reductions and the softmax family") {
  Tensor x = det_randn({3, 4, 2}, 44);
  check_op("sum all", [](auto& in) { return in[0].sum(); }, {x});
  check_op("sum dims", [](auto& in) { return in[0].sum({0, 2}); }, {x});
  check_op("sum keepdim", [](auto& in) { return in[0].sum({-1}, true); }, {x});
  check_op("mean all", [](auto& in) { return in[0].mean(); }, {x});
  check_op("mean dims", [](auto& in) { return in[0].mean({1}, true); }, {x});
  check_op("max all", [](auto& in) { return in[0].max(); }, {x});
  check_op("min all", [](auto& in) { return in[0].min(); }, {x});
  check_op("max dim", [](auto& in) { return std::get<0>(max(in[0], 1)); }, {x});
  check_op("min dim keepdim", [](auto& in) { return std::get<0>(min(in[0], -1, true)); }, {x});
  check_op("logsumexp", [](auto& in) { return logsumexp(in[0], {1}); }, {x});
  check_op("logsumexp 2 dims", [](auto& in) { return logsumexp(in[0], {0, 2}, true); }, {x});
  check_op("softmax", [](auto& in) { return softmax(in[0], 1); }, {x});
  check_op("log_softmax", [](auto& in) { return log_softmax(in[0], -1); }, {x});
}

TEST_CASE("views and copies") {
  Tensor x = det_randn({2, 3, 4}, 45);
  check_op("view", [](auto& in) { return in[0].view({6, 4}); }, {x});
  check_op("reshape of permuted", [](auto& in) { return in[0].permute({2, 0, 1}).reshape({4, 6}); }, {x});
  check_op("transpose", [](auto& in) { return in[0].transpose(0, 2); }, {x});
  check_op("narrow", [](auto& in) { return in[0].narrow(2, 1, 2); }, {x});
  check_op("slice step", [](auto& in) { return in[0].slice(2, 0, 4, 3); }, {x});
  check_op("select", [](auto& in) { return in[0].select(1, 2); }, {x});
  check_op("expand", [](auto& in) { return in[0].select(2, 0).unsqueeze(0).expand({3, 2, 3}); }, {x});
  check_op("squeeze/unsqueeze", [](auto& in) { return in[0].unsqueeze(1).squeeze(1).flatten(1); }, {x});
  check_op("contiguous of transposed", [](auto& in) { return in[0].transpose(1, 2).contiguous(); }, {x});
  check_op("clone", [](auto& in) { return in[0].clone() * in[0]; }, {x});
  // float32 rounding is far coarser than the default step, so this one uses a wide step.
  GradcheckOptions coarse;
  coarse.eps = 1e-2;
  coarse.atol = 1e-4;
  check_op("to float32 and back", [](auto& in) { return in[0].to(kFloat32).to(kFloat64) * 1.0; }, {x}, coarse);
}
