// Optimizer tests: every optimizer and option combination runs N = 5 steps on a fixed coupled
// quadratic and every parameter value is compared with the same algorithm written out in float64
// loops below (PyTorch's documented update equations); a parameter that gets its first gradient
// late checks the per-parameter step counts. Schedulers against their closed forms (and values
// printed by PyTorch), clip_grad_norm_, state save/restore, errors, and "no allocation per step".
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "helpers.h"

using namespace latent;
using namespace latent::testing;

namespace {

using Vec = std::vector<double>;

// ---- the problem: p0 (2, 3), p1 (3) ----
//   L = sum 0.5 a0 (p0 - c0)^2 + sum 0.5 a1 (p1 - c1)^2 + 0.3 sum_{r,k} p0[r, k] p1[k]^2
//   dL/dp0[r, k] = a0 (p0 - c0) + 0.3 p1[k]^2
//   dL/dp1[k]    = a1 (p1 - c1) + 0.6 p1[k] sum_r p0[r, k]

const Vec kA0 = {1.0, 2.0, 0.5, 3.0, 1.5, 0.25}, kC0 = {0.5, -1.0, 2.0, 0.0, 1.0, -0.5};
const Vec kA1 = {0.8, 2.5, 1.2}, kC1 = {-0.3, 0.7, 1.1};
const Vec kP0 = {1.0, 0.2, -0.7, 0.4, -1.3, 2.2}, kP1 = {0.9, -0.4, 0.3};

std::vector<Vec> reference_grads(const Vec& p0, const Vec& p1) {
  Vec g0(6), g1(3);
  for (int r = 0; r < 2; ++r)
    for (int k = 0; k < 3; ++k) g0[r * 3 + k] = kA0[r * 3 + k] * (p0[r * 3 + k] - kC0[r * 3 + k]) + 0.3 * p1[k] * p1[k];
  for (int k = 0; k < 3; ++k) g1[k] = kA1[k] * (p1[k] - kC1[k]) + 0.6 * p1[k] * (p0[k] + p0[3 + k]);
  return {g0, g1};
}

Tensor loss_of(const Tensor& p0, const Tensor& p1, DType dtype) {
  Tensor a0 = from_vector(kA0, {2, 3}).to(dtype), c0 = from_vector(kC0, {2, 3}).to(dtype);
  Tensor a1 = from_vector(kA1, {3}).to(dtype), c1 = from_vector(kC1, {3}).to(dtype);
  return (a0 * square(p0 - c0) * 0.5).sum() + (a1 * square(p1 - c1) * 0.5).sum() + (p0 * square(p1)).sum() * 0.3;
}

// ---- reference optimizers in float64 (independent plain loops) ----

/// One update of parameter i given its gradient; keeps its own per-parameter state and step count.
struct RefOptimizer {
  virtual ~RefOptimizer() = default;
  virtual void update(int i, Vec& p, Vec g) = 0;
};

struct RefSGD : RefOptimizer {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
  std::map<int, Vec> buf;
  RefSGD(double lr, double momentum, double dampening, double weight_decay, bool nesterov)
      : lr(lr), momentum(momentum), dampening(dampening), weight_decay(weight_decay), nesterov(nesterov) {}
  void update(int i, Vec& p, Vec g) override {
    for (size_t j = 0; j < p.size(); ++j) g[j] += weight_decay * p[j];
    if (momentum != 0) {
      if (!buf.count(i)) {
        buf[i] = g;
      } else {
        for (size_t j = 0; j < p.size(); ++j) buf[i][j] = momentum * buf[i][j] + (1 - dampening) * g[j];
      }
      for (size_t j = 0; j < p.size(); ++j) g[j] = nesterov ? g[j] + momentum * buf[i][j] : buf[i][j];
    }
    for (size_t j = 0; j < p.size(); ++j) p[j] -= lr * g[j];
  }
};

struct RefAdam : RefOptimizer {
  double lr, beta1, beta2, eps, weight_decay;
  bool amsgrad, decoupled;
  std::map<int, Vec> m, v, v_max;
  std::map<int, int> t;
  RefAdam(double lr, double beta1, double beta2, double eps, double weight_decay, bool amsgrad, bool decoupled)
      : lr(lr), beta1(beta1), beta2(beta2), eps(eps), weight_decay(weight_decay), amsgrad(amsgrad),
        decoupled(decoupled) {}
  void update(int i, Vec& p, Vec g) override {
    const size_t n = p.size();
    if (!t.count(i)) {
      m[i] = v[i] = v_max[i] = Vec(n, 0.0);
      t[i] = 0;
    }
    const int step = ++t[i];
    for (size_t j = 0; j < n; ++j) {
      if (decoupled) p[j] *= 1 - lr * weight_decay;
      else g[j] += weight_decay * p[j];
      m[i][j] = beta1 * m[i][j] + (1 - beta1) * g[j];
      v[i][j] = beta2 * v[i][j] + (1 - beta2) * g[j] * g[j];
      v_max[i][j] = std::max(v_max[i][j], v[i][j]);
      const double m_hat = m[i][j] / (1 - std::pow(beta1, step));
      const double v_hat = (amsgrad ? v_max[i][j] : v[i][j]) / (1 - std::pow(beta2, step));
      p[j] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
};

struct RefRMSprop : RefOptimizer {
  double lr, alpha, eps, weight_decay, momentum;
  bool centered;
  std::map<int, Vec> square_avg, grad_avg, buf;
  RefRMSprop(double lr, double alpha, double eps, double weight_decay, double momentum, bool centered)
      : lr(lr), alpha(alpha), eps(eps), weight_decay(weight_decay), momentum(momentum), centered(centered) {}
  void update(int i, Vec& p, Vec g) override {
    const size_t n = p.size();
    if (!square_avg.count(i)) square_avg[i] = grad_avg[i] = buf[i] = Vec(n, 0.0);
    for (size_t j = 0; j < n; ++j) {
      g[j] += weight_decay * p[j];
      square_avg[i][j] = alpha * square_avg[i][j] + (1 - alpha) * g[j] * g[j];
      double avg;
      if (centered) {
        grad_avg[i][j] = alpha * grad_avg[i][j] + (1 - alpha) * g[j];
        avg = std::sqrt(square_avg[i][j] - grad_avg[i][j] * grad_avg[i][j]) + eps;
      } else {
        avg = std::sqrt(square_avg[i][j]) + eps;
      }
      if (momentum > 0) {
        buf[i][j] = momentum * buf[i][j] + g[j] / avg;
        p[j] -= lr * buf[i][j];
      } else {
        p[j] -= lr * g[j] / avg;
      }
    }
  }
};

using MakeOptimizer = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

/// Runs `steps` steps of the optimizer and of the reference; p1 gets no gradient during the first
/// `late` steps (so its per-parameter step count starts later). Compares every value after each step.
void run_case(const MakeOptimizer& make, RefOptimizer& ref, DType dtype, int late = 0, int steps = 5) {
  Tensor p0 = from_vector(kP0, {2, 3}).to(dtype).requires_grad_(true);
  Tensor p1 = from_vector(kP1, {3}).to(dtype).requires_grad_(true);
  auto opt = make({p0, p1});
  Vec r0 = kP0, r1 = kP1;
  const double atol = dtype == kFloat64 ? 1e-12 : 2e-5, rtol = dtype == kFloat64 ? 1e-10 : 1e-4;
  for (int step = 1; step <= steps; ++step) {
    INFO("step " << step << ", dtype " << dtype_name(dtype));
    const bool p1_trained = step > late;
    opt->zero_grad();
    loss_of(p0, p1_trained ? p1 : p1.detach(), dtype).backward();
    CHECK(p1.grad().defined() == p1_trained);
    opt->step();
    std::vector<Vec> g = reference_grads(r0, r1);
    ref.update(0, r0, g[0]);
    if (p1_trained) ref.update(1, r1, g[1]);
    check_values(p0, r0, atol, rtol);
    check_values(p1, r1, atol, rtol);
  }
  CHECK(opt->step_count() == steps);
}

template <class RefT, class... Args>
void run_both_dtypes(const MakeOptimizer& make, int late, Args... args) {
  for (DType dtype : {kFloat64, kFloat32}) {
    RefT ref(args...);
    run_case(make, ref, dtype, late);
  }
}

}  // namespace

TEST_CASE("SGD matches the float64 reference for every option combination") {
  struct Case {
    const char* name;
    double lr, momentum, dampening, weight_decay;
    bool nesterov;
    int late;
  };
  const Case cases[] = {
      {"plain", 0.1, 0, 0, 0, false, 0},
      {"momentum", 0.1, 0.9, 0, 0, false, 2},
      {"momentum + dampening", 0.05, 0.8, 0.3, 0, false, 0},
      {"nesterov", 0.1, 0.9, 0, 0, true, 1},
      {"weight decay", 0.1, 0, 0, 0.2, false, 0},
      {"nesterov + weight decay", 0.07, 0.5, 0, 0.1, true, 2},
      {"everything but nesterov", 0.07, 0.5, 0.2, 0.1, false, 1},
  };
  for (const Case& c : cases) {
    INFO("SGD " << c.name);
    auto make = [&](std::vector<Tensor> params) -> std::unique_ptr<optim::Optimizer> {
      return std::make_unique<optim::SGD>(params, optim::SGDOptions(c.lr)
                                                      .momentum(c.momentum)
                                                      .dampening(c.dampening)
                                                      .weight_decay(c.weight_decay)
                                                      .nesterov(c.nesterov));
    };
    run_both_dtypes<RefSGD>(make, c.late, c.lr, c.momentum, c.dampening, c.weight_decay, c.nesterov);
  }
}

TEST_CASE("Adam and AdamW match the float64 reference for every option combination") {
  struct Case {
    const char* name;
    bool adamw;
    double lr, beta1, beta2, eps, weight_decay;
    bool amsgrad;
    int late;
  };
  const Case cases[] = {
      {"Adam defaults (lr 0.1)", false, 0.1, 0.9, 0.999, 1e-8, 0, false, 0},
      {"Adam late parameter", false, 0.1, 0.9, 0.999, 1e-8, 0, false, 2},
      {"Adam weight decay", false, 0.05, 0.9, 0.999, 1e-8, 0.3, false, 0},
      {"Adam amsgrad", false, 0.2, 0.5, 0.6, 1e-8, 0, true, 1},
      {"Adam amsgrad + weight decay + betas + eps", false, 0.2, 0.8, 0.7, 1e-3, 0.1, true, 0},
      {"AdamW defaults (lr 0.1, weight decay 0.01)", true, 0.1, 0.9, 0.999, 1e-8, 0.01, false, 0},
      {"AdamW weight decay 0.5 + amsgrad", true, 0.1, 0.6, 0.7, 1e-6, 0.5, true, 2},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    auto make = [&](std::vector<Tensor> params) -> std::unique_ptr<optim::Optimizer> {
      if (c.adamw) {
        auto options = optim::AdamWOptions(c.lr);
        CHECK(options.weight_decay() == 0.01);  // AdamW's default
        if (c.weight_decay != 0.01) options.weight_decay(c.weight_decay);
        options.betas({c.beta1, c.beta2}).eps(c.eps).amsgrad(c.amsgrad);
        return std::make_unique<optim::AdamW>(params, options);
      }
      return std::make_unique<optim::Adam>(
          params,
          optim::AdamOptions(c.lr).betas({c.beta1, c.beta2}).eps(c.eps).weight_decay(c.weight_decay).amsgrad(c.amsgrad));
    };
    run_both_dtypes<RefAdam>(make, c.late, c.lr, c.beta1, c.beta2, c.eps, c.weight_decay, c.amsgrad, c.adamw);
  }
}

TEST_CASE("amsgrad changes the result once the second moment shrinks") {
  // Guards the Adam test above against a vacuous amsgrad case: the two runs must differ.
  std::vector<Vec> finals;
  for (bool amsgrad : {false, true}) {
    Tensor p0 = from_vector(kP0, {2, 3}).to(kFloat64).requires_grad_(true);
    Tensor p1 = from_vector(kP1, {3}).to(kFloat64).requires_grad_(true);
    optim::Adam opt({p0, p1}, optim::AdamOptions(0.2).betas({0.5, 0.6}).amsgrad(amsgrad));
    for (int i = 0; i < 5; ++i) {
      opt.zero_grad();
      loss_of(p0, p1, kFloat64).backward();
      opt.step();
    }
    finals.push_back(p0.to_vector<double>());
  }
  CHECK(finals[0] != finals[1]);
}

TEST_CASE("RMSprop matches the float64 reference for every option combination") {
  struct Case {
    const char* name;
    double lr, alpha, eps, weight_decay, momentum;
    bool centered;
    int late;
  };
  const Case cases[] = {
      {"defaults", 0.01, 0.99, 1e-8, 0, 0, false, 0},
      {"alpha + late parameter", 0.05, 0.9, 1e-8, 0, 0, false, 2},
      {"centered", 0.05, 0.9, 1e-8, 0, 0, true, 0},
      {"momentum", 0.02, 0.95, 1e-6, 0, 0.9, false, 1},
      {"weight decay", 0.02, 0.99, 1e-8, 0.2, 0, false, 0},
      {"centered + momentum + weight decay", 0.03, 0.8, 1e-4, 0.1, 0.5, true, 2},
  };
  for (const Case& c : cases) {
    INFO("RMSprop " << c.name);
    auto make = [&](std::vector<Tensor> params) -> std::unique_ptr<optim::Optimizer> {
      return std::make_unique<optim::RMSprop>(params, optim::RMSpropOptions(c.lr)
                                                          .alpha(c.alpha)
                                                          .eps(c.eps)
                                                          .weight_decay(c.weight_decay)
                                                          .momentum(c.momentum)
                                                          .centered(c.centered));
    };
    run_both_dtypes<RefRMSprop>(make, c.late, c.lr, c.alpha, c.eps, c.weight_decay, c.momentum, c.centered);
  }
}

TEST_CASE("option defaults are PyTorch's") {
  optim::AdamOptions adam;
  CHECK(adam.lr() == 1e-3);
  CHECK(adam.betas() == std::pair<double, double>{0.9, 0.999});
  CHECK(adam.eps() == 1e-8);
  CHECK(adam.weight_decay() == 0);
  CHECK(!adam.amsgrad());
  CHECK(optim::AdamWOptions().weight_decay() == 1e-2);
  optim::RMSpropOptions rms;
  CHECK(rms.lr() == 1e-2);
  CHECK(rms.alpha() == 0.99);
  CHECK(rms.eps() == 1e-8);
  CHECK(rms.momentum() == 0);
  CHECK(!rms.centered());
  optim::SGDOptions sgd(0.1);
  CHECK(sgd.momentum() == 0);
  CHECK(sgd.dampening() == 0);
  CHECK(!sgd.nesterov());
}

TEST_CASE("schedulers follow their closed forms and drive the optimizer's lr") {
  Tensor p = zeros({1}).requires_grad_(true);
  auto lrs = [](optim::Optimizer& opt, optim::LRScheduler& sched, int epochs) {
    Vec out{opt.lr()};
    for (int e = 0; e < epochs; ++e) {
      sched.step();
      CHECK(sched.get_lr() == opt.lr());
      out.push_back(opt.lr());
    }
    return out;
  };
  auto check_seq = [](const Vec& got, const Vec& expected) {
    REQUIRE(got.size() == expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("epoch " << i);
      CHECK(got[i] == doctest::Approx(expected[i]).epsilon(1e-12));
    }
  };
  {
    optim::SGD opt({p}, optim::SGDOptions(0.1));
    optim::StepLR sched(opt, 3, 0.5);
    // [s.get_last_lr()[0] for each epoch] printed by PyTorch's StepLR(step_size=3, gamma=0.5).
    check_seq(lrs(opt, sched, 7), {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025});
    CHECK(sched.last_epoch() == 7);
    CHECK(sched.base_lr() == 0.1);
  }
  {
    optim::SGD opt({p}, optim::SGDOptions(0.2));
    optim::ExponentialLR sched(opt, 0.9);
    Vec expected;
    for (int e = 0; e <= 6; ++e) expected.push_back(0.2 * std::pow(0.9, e));
    check_seq(lrs(opt, sched, 6), expected);
  }
  {
    optim::SGD opt({p}, optim::SGDOptions(1.0));
    optim::CosineAnnealingLR sched(opt, 4);
    // PyTorch's CosineAnnealingLR(T_max=4) from lr 1, including the epochs past T_max.
    check_seq(lrs(opt, sched, 6), {1.0, 0.8535533905932737, 0.5, 0.14644660940672627, 0.0, 0.14644660940672627, 0.5});
    optim::SGD opt2({p}, optim::SGDOptions(0.1));
    optim::CosineAnnealingLR sched2(opt2, 10, 0.01);
    Vec expected;
    for (int e = 0; e <= 12; ++e) expected.push_back(0.01 + 0.09 * (1 + std::cos(M_PI * e / 10)) / 2);
    check_seq(lrs(opt2, sched2, 12), expected);
  }
  {
    optim::Adam opt({p}, optim::AdamOptions(0.2));
    optim::LinearLR sched(opt, 0.25, 1.0, 4);
    CHECK(opt.lr() == doctest::Approx(0.05));  // building the scheduler sets the epoch-0 lr
    check_seq(lrs(opt, sched, 6), {0.05, 0.0875, 0.125, 0.1625, 0.2, 0.2, 0.2});
    optim::SGD opt2({p}, optim::SGDOptions(0.3));
    optim::LinearWarmup defaults(opt2);  // start_factor 1/3 over 5 epochs
    check_seq(lrs(opt2, defaults, 5), {0.1, 0.14, 0.18, 0.22, 0.26, 0.3});
    defaults.set_last_epoch(2);  // resuming
    CHECK(opt2.lr() == doctest::Approx(0.18));
  }
  {
    // The step uses the scheduled lr: plain SGD with StepLR against p -= lr_e * grad.
    Tensor q = from_vector(Vec{1.0}, {1}).requires_grad_(true);
    optim::SGD opt({q}, optim::SGDOptions(0.5));
    optim::StepLR sched(opt, 1, 0.1);
    double ref = 1.0;
    for (int e = 0; e < 3; ++e) {
      opt.zero_grad();
      (q * q).sum().backward();  // grad 2q
      opt.step();
      ref -= 0.5 * std::pow(0.1, e) * 2 * ref;
      sched.step();
    }
    CHECK(q.item<double>() == doctest::Approx(ref).epsilon(1e-12));
  }
  optim::SGD opt({p}, optim::SGDOptions(0.1));
  CHECK_THROWS_WITH_SUBSTR(optim::StepLR(opt, 0), "[StepLR] step_size must be positive; got 0");
  CHECK_THROWS_WITH_SUBSTR(optim::CosineAnnealingLR(opt, 0), "[CosineAnnealingLR] T_max must be positive");
  CHECK_THROWS_WITH_SUBSTR(optim::LinearLR(opt, 0.0), "[LinearLR] start_factor must be in (0, 1]");
}

TEST_CASE("clip_grad_norm_ returns the total norm and scales the gradients") {
  Tensor a = zeros({2}).requires_grad_(true), b = zeros({1}).requires_grad_(true), none = zeros({3}).requires_grad_(true);
  auto set = [&] {
    a.set_grad(tensor({3, 4}));
    b.set_grad(tensor({12}));
  };
  set();
  CHECK(optim::clip_grad_norm_({a, b, none}, 6.5) == doctest::Approx(13.0));
  const double scale = 6.5 / (13.0 + 1e-6);
  check_values(a.grad(), {3 * scale, 4 * scale});
  check_values(b.grad(), {12 * scale});
  // After clipping the joint norm is max_norm (up to the 1e-6 guard).
  CHECK(optim::clip_grad_norm_({a, b}, 100.0) == doctest::Approx(6.5).epsilon(1e-6));
  set();
  CHECK(optim::clip_grad_norm_({a, b}, 20.0) == doctest::Approx(13.0));
  check_values(a.grad(), {3, 4}, 0, 0);  // below max_norm: unchanged
  CHECK(optim::clip_grad_norm_({a, b}, 1.0, INFINITY) == doctest::Approx(12.0));
  check_values(b.grad(), {12 / (12 + 1e-6)});
  set();
  CHECK(optim::clip_grad_norm_({a, b}, 100.0, 1.0) == doctest::Approx(19.0));
  CHECK(optim::clip_grad_norm_({a, b}, 100.0, 3.0) == doctest::Approx(std::cbrt(27.0 + 64 + 1728)));
  CHECK(optim::clip_grad_norm_({none}, 1.0) == 0.0);
  CHECK_THROWS_WITH_SUBSTR(optim::clip_grad_norm_({a}, 1.0, 0.0), "[clip_grad_norm_] norm_type must be positive");
}

TEST_CASE("state() and load_state() resume bit for bit") {
  auto make_params = [] {
    return std::vector<Tensor>{from_vector(kP0, {2, 3}).requires_grad_(true), from_vector(kP1, {3}).requires_grad_(true)};
  };
  auto train = [](optim::Optimizer& opt, std::vector<Tensor>& params, int steps) {
    for (int i = 0; i < steps; ++i) {
      opt.zero_grad();
      loss_of(params[0], params[1], kFloat64).backward();
      opt.step();
    }
  };
  std::vector<Tensor> pa = make_params(), pb = make_params();
  optim::Adam a(pa, optim::AdamOptions(0.05).amsgrad(true).weight_decay(0.1));
  train(a, pa, 3);
  optim::OptimizerState saved = a.state();
  std::vector<std::string> names;
  for (const auto& entry : saved) names.push_back(entry.first);
  CHECK(names == std::vector<std::string>{"step", "lr", "0.step", "0.exp_avg", "0.exp_avg_sq", "0.max_exp_avg_sq",
                                          "1.step", "1.exp_avg", "1.exp_avg_sq", "1.max_exp_avg_sq"});
  CHECK(saved[0].second.item<int64_t>() == 3);
  CHECK(saved[2].second.item<int64_t>() == 3);
  {
    NoGradGuard g;
    pb[0].copy_(pa[0]);
    pb[1].copy_(pa[1]);
  }
  optim::Adam b(pb, optim::AdamOptions(0.05).amsgrad(true).weight_decay(0.1));
  b.load_state(saved);
  CHECK(b.step_count() == 3);
  train(a, pa, 2);
  train(b, pb, 2);
  CHECK(pa[0].to_vector<double>() == pb[0].to_vector<double>());
  CHECK(pa[1].to_vector<double>() == pb[1].to_vector<double>());
  // The saved copies did not move with later steps.
  CHECK(saved[0].second.item<int64_t>() == 3);

  optim::OptimizerState bad = saved;
  bad[3].second = zeros({3});
  CHECK_THROWS_WITH_SUBSTR(b.load_state(bad), "[Adam] load_state: '0.exp_avg' has shape [3] and dtype float32, expected [2, 3] and float64");
  bad = saved;
  bad.emplace_back("2.exp_avg", zeros({1}));
  CHECK_THROWS_WITH_SUBSTR(b.load_state(bad), "[Adam] load_state: unexpected entry '2.exp_avg'");
  bad = saved;
  bad.erase(bad.begin() + 4);
  CHECK_THROWS_WITH_SUBSTR(b.load_state(bad), "[Adam] load_state: missing entry '0.exp_avg_sq'");
  b.load_state(bad, false);
  bad = saved;
  bad[1].second = scalar_tensor(0.1, kFloat32);
  CHECK_THROWS_WITH_SUBSTR(b.load_state(bad), "'lr' must be a one-element float64 tensor");

  // SGD and RMSprop name their buffers as PyTorch does.
  std::vector<Tensor> pc = make_params();
  optim::SGD sgd(pc, optim::SGDOptions(0.1).momentum(0.9));
  CHECK(sgd.state()[3].first == "0.momentum_buffer");
  optim::RMSprop rms(pc, optim::RMSpropOptions().momentum(0.5).centered(true));
  CHECK(rms.state()[3].first == "0.square_avg");
  CHECK(rms.state()[4].first == "0.momentum_buffer");
  CHECK(rms.state()[5].first == "0.grad_avg");
}

TEST_CASE("optimizer errors") {
  Tensor p = zeros({2}).requires_grad_(true);
  CHECK_THROWS_WITH_SUBSTR(optim::SGD({}, optim::SGDOptions(0.1)), "[SGD] got an empty parameter list");
  CHECK_THROWS_WITH_SUBSTR(optim::SGD({p}, optim::SGDOptions(-1)), "[SGD] invalid learning rate: -1");
  CHECK_THROWS_WITH_SUBSTR(optim::SGD({p}, optim::SGDOptions(0.1).nesterov(true)),
                           "[SGD] nesterov momentum requires a momentum > 0 and zero dampening");
  CHECK_THROWS_WITH_SUBSTR(optim::Adam({p, p}), "[Adam] parameter 1 appears more than once");
  CHECK_THROWS_WITH_SUBSTR(optim::Adam({p}, optim::AdamOptions().betas({0.9, 1.0})),
                           "[Adam] invalid beta parameter at index 1: 1");
  CHECK_THROWS_WITH_SUBSTR(optim::RMSprop({p * 2.0}), "[RMSprop] parameter 0 is not a leaf tensor");
  CHECK_THROWS_WITH_SUBSTR(optim::AdamW({zeros({2}, kInt64)}), "[AdamW] parameter 0 has dtype int64");
  optim::SGD opt({p}, optim::SGDOptions(0.1));
  CHECK_THROWS_WITH_SUBSTR(opt.set_lr(NAN), "[SGD] invalid learning rate");
  CHECK(std::string(opt.name()) == "SGD");
  // zero_grad(false) zeroes in place; the default drops the gradient.
  p.set_grad(tensor({1, 2}));
  opt.zero_grad(false);
  check_values(p.grad(), {0, 0});
  opt.zero_grad();
  CHECK(!p.grad().defined());
  opt.step();  // no gradient: nothing changes
  check_values(p, {0, 0});
  // Converting the model after building the optimizer is caught instead of mixing dtypes.
  nn::Linear fc(2, 1);
  optim::Adam adam(fc.parameters());
  fc.to(kFloat64);
  fc(ones({1, 2}, kFloat64)).sum().backward();
  CHECK_THROWS_WITH_SUBSTR(adam.step(), "[Adam] parameter 0 changed from float32 [1, 2] to float64 [1, 2] after the "
                                        "optimizer was built");
}

TEST_CASE("a step allocates nothing after the first") {
  if (!cpu_allocator_stats().caching) {
    MESSAGE("skipped: the caching allocator is off (sanitizer build or LATENT_NO_CACHING_ALLOCATOR), so allocations "
            "cannot be counted");
    return;
  }
  const std::vector<std::pair<const char*, MakeOptimizer>> makers = {
      {"SGD", [](std::vector<Tensor> ps) -> std::unique_ptr<optim::Optimizer> {
         return std::make_unique<optim::SGD>(ps, optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.1));
       }},
      {"Adam", [](std::vector<Tensor> ps) -> std::unique_ptr<optim::Optimizer> {
         return std::make_unique<optim::Adam>(ps, optim::AdamOptions(0.1).amsgrad(true).weight_decay(0.1));
       }},
      {"AdamW", [](std::vector<Tensor> ps) -> std::unique_ptr<optim::Optimizer> {
         return std::make_unique<optim::AdamW>(ps, optim::AdamWOptions(0.1).amsgrad(true));
       }},
      {"RMSprop", [](std::vector<Tensor> ps) -> std::unique_ptr<optim::Optimizer> {
         return std::make_unique<optim::RMSprop>(
             ps, optim::RMSpropOptions(0.1).momentum(0.5).centered(true).weight_decay(0.1));
       }},
  };
  for (const auto& [name, make] : makers) {
    INFO(name);
    // A layer-sized problem (64 x 256 weights) so the tensors are real allocations.
    Tensor w = randn({64, 256}).requires_grad_(true), b = randn({64}).requires_grad_(true);
    w.set_grad(randn({64, 256}));
    b.set_grad(randn({64}));
    auto opt = make({w, b});
    opt->step();
    const AllocatorStats before = cpu_allocator_stats();
    for (int step = 2; step <= 5; ++step) opt->step();
    const AllocatorStats after = cpu_allocator_stats();
    CHECK(after.system_allocations == before.system_allocations);
    CHECK(after.cache_hits == before.cache_hits);  // not even a cached block: the step allocates nothing
  }
}
