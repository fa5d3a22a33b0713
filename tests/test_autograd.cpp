// The tape: recording, backward order and accumulation, retain_graph, explicit gradients,
// no-grad, detach, version checks, deep graphs, freeing, DOT output and anomaly mode.
#include <memory>
#include <thread>

#include "helpers.h"

using namespace latent;
using latent::testing::check_values;

TEST_CASE("backward accumulates into leaves through shared subexpressions") {
  Tensor x = tensor({1, 2, 3}).requires_grad_();
  Tensor y = x * x;          // dy/dx = 2x
  Tensor z = (y + x).sum();  // used twice: dz/dx = 2x + 1
  z.backward();
  check_values(x.grad(), {3, 5, 7});
  CHECK(x.is_leaf());
  CHECK_FALSE(y.is_leaf());
  CHECK(std::string(y.grad_fn()->name()) == "mul");
  CHECK_FALSE(y.grad().defined());  // only leaves keep gradients
}

TEST_CASE("gradients accumulate across backward calls until zero_grad") {
  Tensor w = tensor({2}).requires_grad_();
  (w * 3.0).sum().backward();
  (w * 3.0).sum().backward();
  check_values(w.grad(), {6});
  w.zero_grad();
  CHECK_FALSE(w.grad().defined());
  (w * w).sum().backward();
  check_values(w.grad(), {4});
}

TEST_CASE("a gradient passed through unchanged is not shared between leaves") {
  Tensor a = tensor({1, 2}).requires_grad_();
  Tensor b = tensor({3, 4}).requires_grad_();
  (a + b).backward(tensor({1, 1}));
  (a * 2.0).sum().backward();  // accumulates in place into a.grad only
  check_values(a.grad(), {3, 3});
  check_values(b.grad(), {1, 1});
}

TEST_CASE("non-scalar backward needs an explicit gradient of the right shape") {
  Tensor x = tensor({1, 2, 3}).requires_grad_();
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH_SUBSTR(y.backward(), "[backward] a gradient can be created implicitly only for one-element tensors; got shape [3]");
  CHECK_THROWS_WITH_SUBSTR(y.backward(tensor({1, 1})), "[backward] gradient has shape [2] and dtype float32, expected [3]");
  y.backward(tensor({1, 10, 100}));
  check_values(x.grad(), {2, 20, 200});
}

TEST_CASE("backward on a tensor that does not require grad is an error") {
  Tensor x = tensor({1, 2});
  CHECK_THROWS_WITH_SUBSTR(x.sum().backward(), "[backward] tensor of shape [] does not require grad");
  CHECK_THROWS_WITH_SUBSTR(Tensor().backward(), "[backward] tensor is undefined");
}

TEST_CASE("retain_graph allows a second backward; without it saved tensors are freed") {
  Tensor x = tensor({1, 2}).requires_grad_();
  Tensor y = (x * x).sum();
  y.backward({}, /*retain_graph=*/true);
  y.backward();
  check_values(x.grad(), {4, 8});
  CHECK_THROWS_WITH_SUBSTR(y.backward(), "the saved tensors of 'mul' were freed by an earlier backward; pass retain_graph=true");
  // Ops that save nothing can run backward twice, as in PyTorch.
  Tensor z = (x + 1.0).sum();
  z.backward();
  z.backward();
}

TEST_CASE("saved tensors are released after backward") {
  Tensor x = tensor({1, 2, 3}).requires_grad_();
  Tensor h = x * 2.0;
  std::weak_ptr<Storage> h_storage = h.storage();
  Tensor y = (h * h).sum();  // mul saves h
  h = Tensor();
  CHECK_FALSE(h_storage.expired());
  y.backward();
  CHECK(h_storage.expired());
}

TEST_CASE("no-grad mode records nothing; detach cuts the graph") {
  Tensor x = tensor({1, 2}).requires_grad_();
  {
    NoGradGuard guard;
    CHECK_FALSE(is_grad_enabled());
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    {
      EnableGradGuard enable;
      CHECK((x * 2.0).requires_grad());
    }
  }
  CHECK(is_grad_enabled());
  Tensor d = (x * 2.0).detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  Tensor y = (d * x).sum();
  y.backward();
  check_values(x.grad(), {2, 4});  // d acts as a constant
}

TEST_CASE("grad mode is per thread") {
  NoGradGuard guard;
  bool other_thread_enabled = false;
  std::thread t([&] { other_thread_enabled = is_grad_enabled(); });
  t.join();
  CHECK(other_thread_enabled);
  CHECK_FALSE(is_grad_enabled());
}

TEST_CASE("modifying a saved tensor in place before backward is an error naming the op") {
  Tensor x = tensor({1, 2}).requires_grad_();
  Tensor h = x * 1.0;
  Tensor y = (h * h).sum();
  Tensor alias = h.detach();  // shares storage with h
  alias.add_(1.0);
  CHECK_THROWS_WITH_SUBSTR(y.backward(), "a tensor saved by 'mul' was modified by an in-place op (version 0 -> 1)");
}

TEST_CASE("requires_grad_ only on floating-point leaves") {
  Tensor x = tensor({1}).requires_grad_();
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH_SUBSTR(y.requires_grad_(false), "[requires_grad_] only leaves can change requires_grad; this tensor was produced by 'mul'");
}

TEST_CASE("a 100,000-op chain runs backward and is destroyed without recursion") {
  Tensor x = tensor({1.0f}).requires_grad_();
  Tensor h = x;
  for (int i = 0; i < 100000; ++i) h = h * 1.0 + 0.0;
  h.sum().backward();
  check_values(x.grad(), {1});

  // Destroyed without ever running backward.
  Tensor k = x;
  for (int i = 0; i < 100000; ++i) k = k + 1.0;
  CHECK(k.item<float>() == 100001.0f);
  k = Tensor();
  CHECK(x.defined());
}

TEST_CASE("backward visits nodes after all their consumers (diamond graph)") {
  Tensor x = tensor({2.0}, TensorOptions().dtype(kFloat64)).requires_grad_();
  Tensor a = exp(x);       // used by two branches
  Tensor b = a * 3.0;
  Tensor c = a * a;
  Tensor y = (b + c).sum();  // dy/dx = 3e^x + 2e^(2x)
  y.backward();
  const double e = std::exp(2.0);
  check_values(x.grad(), {3 * e + 2 * e * e}, 1e-9, 1e-12);
}

TEST_CASE("graph_to_dot shows ops and leaves") {
  Tensor w = ones({2, 3}).requires_grad_();
  Tensor y = sigmoid(matmul(ones({4, 2}), w)).sum();
  std::string dot = graph_to_dot(y);
  CHECK(dot.find("digraph autograd") != std::string::npos);
  CHECK(dot.find("label=\"sum\"") != std::string::npos);
  CHECK(dot.find("label=\"sigmoid\"") != std::string::npos);
  CHECK(dot.find("label=\"matmul\"") != std::string::npos);
  CHECK(dot.find("leaf [2, 3] float32") != std::string::npos);
}

TEST_CASE("anomaly mode names the op whose backward produced NaN") {
  Tensor x = tensor({0.0f, 1.0f}).requires_grad_();
  Tensor y = sqrt(x).sum();  // d sqrt(x)/dx = inf at 0
  {
    AnomalyGuard anomaly;
    CHECK_THROWS_WITH_SUBSTR(y.backward({}, true), "anomaly: the backward of 'sqrt' produced NaN or Inf");
  }
  y.backward();  // outside anomaly mode the inf just propagates
  CHECK(std::isinf(x.grad().at<float>({0})));
}

// A custom op written by a user in the apply<Op> pattern, with a wrong derivative of x^3.
struct WrongCube {
  static constexpr const char* name = "wrong_cube";
  using Ctx = OpContext;
  static Tensor forward(Ctx* ctx, const Tensor& x) {
    if (ctx) ctx->save(x);
    return x * x * x;
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    Tensor x = ctx.saved(0, name);
    return {g * x * x * 2.0};  // should be 3 x^2
  }
};
struct RightCube {
  static constexpr const char* name = "cube";
  using Ctx = OpContext;
  static Tensor forward(Ctx* ctx, const Tensor& x) {
    if (ctx) ctx->save(x);
    return x * x * x;
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    Tensor x = ctx.saved(0, name);
    return {g * x * x * 3.0};
  }
};

TEST_CASE("gradcheck catches a deliberately wrong backward") {
  Tensor x = latent::testing::det_randn({3, 2}, 1);
  GradcheckResult bad = gradcheck([](const std::vector<Tensor>& in) { return apply<WrongCube>(in[0]).sum(); }, {x});
  CHECK_FALSE(bad.ok);
  CHECK_FALSE(static_cast<bool>(bad));
  CHECK(bad.op == "sum");
  CHECK(bad.input == 0);
  CHECK(bad.element >= 0);
  CHECK(std::abs(bad.analytic / bad.numeric - 2.0 / 3.0) < 1e-4);
  CHECK(bad.report.find("FAILED") != std::string::npos);
  GradcheckResult good = gradcheck([](const std::vector<Tensor>& in) { return apply<RightCube>(in[0]).sum(); }, {x});
  INFO(good.report);
  CHECK(good.ok);
}

TEST_CASE("gradcheck input validation") {
  Tensor f = tensor({1, 2}).requires_grad_();
  auto fn = [](const std::vector<Tensor>& in) { return in[0].sum(); };
  CHECK_THROWS_WITH_SUBSTR(gradcheck(fn, {f}), "[gradcheck] input 0 has dtype float32; gradcheck runs in float64");
  Tensor d = latent::testing::det_randn({2}, 3);
  CHECK_THROWS_WITH_SUBSTR(gradcheck([](const std::vector<Tensor>& in) { return in[0] * 2.0; }, {d}),
                           "[gradcheck] fn must return a one-element tensor; got shape [2]");
}
