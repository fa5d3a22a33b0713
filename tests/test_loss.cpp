// Loss tests: every loss and reduction against hand-derived numbers and a float64 loop reference,
// gradcheck for every differentiable input, stability at extreme inputs, and the error messages.
#include <algorithm>
#include <cmath>
#include <vector>

#include "helpers.h"

using namespace latent;
using namespace latent::testing;

namespace {

constexpr Reduction kReductions[] = {Reduction::None, Reduction::Mean, Reduction::Sum};
const char* reduction_name(Reduction r) {
  return r == Reduction::None ? "None" : r == Reduction::Mean ? "Mean" : "Sum";
}

using LossFn = Tensor (*)(const Tensor&, const Tensor&, Reduction);

/// The float64 reference reduction of per-element terms.
std::vector<double> reduce_ref(const std::vector<double>& terms, Reduction r) {
  if (r == Reduction::None) return terms;
  double total = 0;
  for (double v : terms) total += v;
  return {r == Reduction::Mean ? total / static_cast<double>(terms.size()) : total};
}

/// Checks loss(x, t, r) for every reduction against ref applied elementwise in float64 loops.
template <class Ref>
void check_pointwise(LossFn loss, const Tensor& x, const Tensor& t, Ref ref, double atol = 1e-6,
                     double rtol = 1e-5) {
  const std::vector<double> xv = x.to_vector<double>(), tv = t.to_vector<double>();
  std::vector<double> terms;
  for (size_t i = 0; i < xv.size(); ++i) terms.push_back(ref(xv[i], tv[i]));
  for (Reduction r : kReductions) {
    INFO("reduction " << reduction_name(r) << ", dtype " << dtype_name(x.dtype()));
    Tensor out = loss(x, t, r);
    CHECK(out.dtype() == x.dtype());
    CHECK(out.shape() == (r == Reduction::None ? x.shape() : Shape{}));
    check_values(out, reduce_ref(terms, r), atol, rtol);
  }
}

/// gradcheck (float64, tight tolerances) of loss(a, b, r) for every reduction. None is weighted by
/// fixed uneven weights and Mean/Sum scaled by 1.7, so the incoming gradient is not all ones.
void gradcheck_reductions(LossFn loss, const Tensor& a, const Tensor& b) {
  GradcheckOptions options;
  options.atol = 1e-7;
  options.rtol = 1e-6;
  for (Reduction r : kReductions) {
    INFO("reduction " << reduction_name(r));
    auto fn = [&](const std::vector<Tensor>& in) {
      Tensor l = loss(in[0], in[1], r);
      return r == Reduction::None ? sum(mul(l, det_uniform(l.shape(), 99, 0.5, 2.0, false))) : mul(l, 1.7);
    };
    GradcheckResult result = gradcheck(fn, {a, b}, options);
    INFO(result.report);
    CHECK(result.ok);
  }
}

Tensor f64(const std::vector<double>& values, const Shape& shape, bool requires_grad = false) {
  Tensor t = from_vector(values, shape);
  if (requires_grad) t.requires_grad_(true);
  return t;
}
Tensor labels_of(const std::vector<int64_t>& values) {
  return from_vector(values, {static_cast<int64_t>(values.size())});
}

double sq(double d) { return d * d; }
double bce_ref(double p, double t) {
  return -(t * std::max(std::log(p), -100.0) + (1 - t) * std::max(std::log1p(-p), -100.0));
}
double bce_logits_ref(double x, double t) { return std::max(x, 0.0) - x * t + std::log1p(std::exp(-std::abs(x))); }
double kl_ref(double mu, double lv) { return -0.5 * (1 + lv - mu * mu - std::exp(lv)); }

/// -log_softmax(x)[i, label_i] per row, in float64 loops.
std::vector<double> cross_entropy_ref(const Tensor& logits, const std::vector<int64_t>& labels) {
  const std::vector<double> x = logits.to_vector<double>();
  const int64_t n = logits.size(0), c = logits.size(1);
  std::vector<double> out;
  for (int64_t i = 0; i < n; ++i) {
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < c; ++j) m = std::max(m, x[i * c + j]);
    for (int64_t j = 0; j < c; ++j) s += std::exp(x[i * c + j] - m);
    out.push_back(m + std::log(s) - x[i * c + labels[i]]);
  }
  return out;
}

}  // namespace

TEST_CASE("mse_loss and l1_loss: hand-derived values") {
  Tensor x = tensor({1, 2}), zero = tensor({0, 0});
  check_values(mse_loss(x, zero, Reduction::None), {1, 4});
  check_values(mse_loss(x, zero), {2.5});  // (1 + 4) / 2, Mean is the default
  check_values(mse_loss(x, zero, Reduction::Sum), {5});
  // Diffs 1, -2, 2, 0: squares sum to 9, absolute values to 5.
  Tensor a = tensor({{1, -1}, {3, 0}}), b = tensor({{0, 1}, {1, 0}});
  check_values(mse_loss(a, b), {2.25});
  check_values(mse_loss(a, b, Reduction::None), {1, 4, 4, 0});
  check_values(l1_loss(a, b), {1.25});
  check_values(l1_loss(a, b, Reduction::Sum), {5});
  check_values(l1_loss(tensor({1, -3}), zero, Reduction::None), {1, 3});
  check_values(l1_loss(tensor({1, -3}), zero), {2});
}

TEST_CASE("mse_loss and l1_loss match a float64 reference") {
  Generator gen(7);
  // The training-step shape in float32, a small one in float64, and a transposed (strided) input.
  Tensor x32 = randn({128, 784}, kFloat32, &gen), t32 = randn({128, 784}, kFloat32, &gen);
  Tensor x64 = det_randn({3, 4}, 1, false), t64 = det_randn({3, 4}, 2, false);
  Tensor xt = det_randn({4, 3}, 3, false).t();
  auto mse = [](double x, double t) { return sq(x - t); };
  auto l1 = [](double x, double t) { return std::abs(x - t); };
  check_pointwise(&mse_loss, x32, t32, mse);
  check_pointwise(&mse_loss, x64, t64, mse, 1e-12, 1e-12);
  check_pointwise(&mse_loss, xt, t64, mse, 1e-12, 1e-12);
  check_pointwise(&l1_loss, x32, t32, l1);
  check_pointwise(&l1_loss, x64, t64, l1, 1e-12, 1e-12);
  check_pointwise(&l1_loss, xt, t64, l1, 1e-12, 1e-12);
}

TEST_CASE("mse_loss and l1_loss: gradients through backward, and l1's is 0 at equality") {
  Tensor x = f64({1, 2, 3, 4}, {2, 2}, true), t = f64({0, 4, 3, 1}, {2, 2}, true);
  mse_loss(x, t).backward();  // 2 (x - t) / 4
  check_values(x.grad(), {0.5, -1, 0, 1.5}, 1e-12);
  check_values(t.grad(), {-0.5, 1, 0, -1.5}, 1e-12);
  x.zero_grad();
  t.zero_grad();
  l1_loss(x, t, Reduction::Sum).backward();  // sign(x - t), 0 where x == t
  check_values(x.grad(), {1, -1, 0, 1}, 0);
  check_values(t.grad(), {-1, 1, 0, -1}, 0);
  CHECK(std::string(mse_loss(x, t).grad_fn()->name()) == "mse_loss");
}

TEST_CASE("mse_loss: the no-grad path gives the same values as the recorded one") {
  Tensor x = det_randn({5, 6}, 4), t = det_randn({5, 6}, 5, false);
  for (Reduction r : kReductions) {
    Tensor recorded_mse = mse_loss(x, t, r), recorded_l1 = l1_loss(x, t, r);
    CHECK(recorded_mse.requires_grad());
    NoGradGuard no_grad;
    Tensor plain = mse_loss(x, t, r);
    CHECK_FALSE(plain.requires_grad());
    check_close(plain, recorded_mse, 0, 0);
    check_close(l1_loss(x, t, r), recorded_l1, 0, 0);
  }
}

TEST_CASE("empty inputs: None is empty, Sum is 0, Mean is NaN") {
  Tensor e = zeros({0, 3}), f = zeros({0, 3});
  CHECK(mse_loss(e, f, Reduction::None).shape() == Shape{0, 3});
  check_values(mse_loss(e, f, Reduction::Sum), {0});
  check_values(mse_loss(e, f), {NAN});
  check_values(binary_cross_entropy(e, f, Reduction::Sum), {0});
  check_values(cross_entropy(zeros({0, 4}), from_vector(std::vector<int64_t>{}, {0})), {NAN});
}

TEST_CASE("binary_cross_entropy: values, and finite at probabilities 0 and 1") {
  // -log(0.75) and -log(0.5).
  check_values(binary_cross_entropy(tensor({0.25, 0.5}), tensor({0, 1}), Reduction::None),
               {0.28768207245178090, 0.69314718055994531});
  check_values(binary_cross_entropy(tensor({0.25, 0.5}), tensor({0, 1})), {0.49041462650586310});

  Generator gen(11);
  Tensor p32 = rand({128, 784}, kFloat32, &gen), t32 = rand({128, 784}, kFloat32, &gen);
  check_pointwise(&binary_cross_entropy, p32, t32, bce_ref, 1e-5, 1e-5);
  check_pointwise(&binary_cross_entropy, det_uniform({3, 4}, 6, 0.01, 0.99, false),
                  det_uniform({3, 4}, 7, 0, 1, false), bce_ref, 1e-12, 1e-12);

  // Probabilities outside [0, 1] give NaN (the logs of negative numbers), not a silent value.
  check_values(binary_cross_entropy(tensor({-0.1, 1.1}), tensor({0, 1}), Reduction::None), {NAN, NAN});

  // log 0 is floored at -100 (PyTorch), so confident mistakes cost 100, not inf.
  for (DType dtype : {kFloat32, kFloat64}) {
    Tensor p = tensor({0, 1, 0, 1, 0}, TensorOptions().dtype(dtype)).requires_grad_(true);
    Tensor t = tensor({0, 1, 1, 0, 0.5}, TensorOptions().dtype(dtype));
    check_values(binary_cross_entropy(p, t, Reduction::None), {0, 0, 100, 100, 50});
    Tensor loss = binary_cross_entropy(p, t);
    check_values(loss, {50});
    loss.backward();
    // PyTorch's gradient: (p - t) / max((1 - p) p, 1e-12), over n = 5.
    check_values(p.grad(), {0, 0, -1e12 / 5, 1e12 / 5, -0.5e12 / 5}, 0, 1e-5);
  }
}

TEST_CASE("binary_cross_entropy_with_logits: stable at +-1000 and equal to bce(sigmoid)") {
  for (DType dtype : {kFloat32, kFloat64}) {
    INFO(dtype_name(dtype));
    Tensor x = tensor({1000, -1000, 1000, -1000, 0}, TensorOptions().dtype(dtype)).requires_grad_(true);
    Tensor t = tensor({1, 0, 0, 1, 0}, TensorOptions().dtype(dtype));
    check_values(binary_cross_entropy_with_logits(x, t, Reduction::None), {0, 0, 1000, 1000, std::log(2.0)});
    Tensor loss = binary_cross_entropy_with_logits(x, t, Reduction::Sum);
    check_values(loss, {2000 + std::log(2.0)});
    loss.backward();
    check_values(x.grad(), {0, 0, 1, -1, 0.5});  // sigmoid(x) - t, exact at 0
  }
  Generator gen(12);
  Tensor x32 = mul(randn({128, 784}, kFloat32, &gen), 4.0), t32 = rand({128, 784}, kFloat32, &gen);
  check_pointwise(&binary_cross_entropy_with_logits, x32, t32, bce_logits_ref, 1e-5, 1e-5);
  Tensor x = mul(det_randn({3, 4}, 8, false), 3.0), t = det_uniform({3, 4}, 9, 0, 1, false);
  check_pointwise(&binary_cross_entropy_with_logits, x, t, bce_logits_ref, 1e-12, 1e-12);
  check_close(binary_cross_entropy_with_logits(x, t), binary_cross_entropy(sigmoid(x), t), 1e-12, 1e-12);
}

TEST_CASE("cross_entropy and nll_loss: values") {
  // Rows: uniform (log 2), a confident mistake (1000), a confident hit (0): stable at 1000.
  Tensor logits = tensor({{0, 0}, {1000, 0}, {1000, 0}});
  Tensor labels = labels_of({0, 1, 0});
  check_values(cross_entropy(logits, labels, Reduction::None), {std::log(2.0), 1000, 0});
  check_values(cross_entropy(logits, labels), {(std::log(2.0) + 1000) / 3});
  check_values(cross_entropy(logits, labels, Reduction::Sum), {std::log(2.0) + 1000});

  Tensor log_probs = tensor({{-1, -2, -3}, {-4, -5, -6}});
  check_values(nll_loss(log_probs, labels_of({2, 0}), Reduction::None), {3, 4});
  check_values(nll_loss(log_probs, labels_of({2, 0})), {3.5});
  check_values(nll_loss(log_probs, labels_of({2, 0}), Reduction::Sum), {7});

  // Strided labels (every other element of a longer tensor) are read through their strides.
  Tensor strided = labels_of({2, 9, 0, 9}).slice(0, 0, 4, 2);
  check_values(nll_loss(log_probs, strided, Reduction::None), {3, 4});

  const std::vector<int64_t> picks = {3, 0, 6, 6, 1};
  for (DType dtype : {kFloat32, kFloat64}) {
    Generator gen(13);
    Tensor x = mul(randn({5, 7}, dtype, &gen), 5.0);
    std::vector<double> ref = cross_entropy_ref(x, picks);
    for (Reduction r : kReductions) {
      INFO("reduction " << reduction_name(r) << ", dtype " << dtype_name(dtype));
      Tensor out = cross_entropy(x, labels_of(picks), r);
      CHECK(out.shape() == (r == Reduction::None ? Shape{5} : Shape{}));
      check_values(out, reduce_ref(ref, r), 1e-5, 1e-5);
      check_close(nll_loss(log_softmax(x, 1), labels_of(picks), r), out, 1e-6, 1e-6);
    }
  }
}

TEST_CASE("cross_entropy and nll_loss: gradients by hand") {
  Tensor logits = f64({0, 0, std::log(3.0), 0}, {2, 2}, true);
  cross_entropy(logits, labels_of({0, 0}), Reduction::Sum).backward();
  // softmax - one_hot: row 0 is [0.5, 0.5], row 1 is [0.75, 0.25].
  check_values(logits.grad(), {-0.5, 0.5, -0.25, 0.25}, 1e-12);
  Tensor log_probs = f64({-1, -2, -3, -4, -5, -6}, {2, 3}, true);
  nll_loss(log_probs, labels_of({2, 0})).backward();
  check_values(log_probs.grad(), {0, 0, -0.5, -0.5, 0, 0}, 0);
}

TEST_CASE("gaussian_kl_divergence: values and the VAE's sum") {
  Tensor mu = f64({0, 1, 0}, {3}), logvar = f64({0, 0, std::log(2.0)}, {3});
  // Terms: 0 (the prior itself), mu^2 / 2 = 0.5, (exp(lv) - 1 - lv) / 2 = (1 - log 2) / 2.
  const double third = 0.5 * (1 - std::log(2.0));
  check_values(gaussian_kl_divergence(mu, logvar, Reduction::None), {0, 0.5, third}, 1e-12);
  check_values(gaussian_kl_divergence(mu, logvar), {0.5 + third}, 1e-12);  // Sum is the default
  check_values(gaussian_kl_divergence(mu, logvar, Reduction::Mean), {(0.5 + third) / 3}, 1e-12);

  Generator gen(14);
  Tensor m = randn({16, 8}, kFloat32, &gen), lv = randn({16, 8}, kFloat32, &gen);
  check_pointwise(&gaussian_kl_divergence, m, lv, kl_ref, 1e-5, 1e-5);
  check_pointwise(&gaussian_kl_divergence, det_randn({3, 4}, 15, false), det_randn({3, 4}, 16, false), kl_ref,
                  1e-12, 1e-12);
}

TEST_CASE("gradcheck: every loss, every reduction, every differentiable input") {
  SUBCASE("mse_loss") { gradcheck_reductions(&mse_loss, det_randn({3, 4}, 21), det_randn({3, 4}, 22)); }
  SUBCASE("l1_loss") { gradcheck_reductions(&l1_loss, det_randn({3, 4}, 23), det_randn({3, 4}, 24)); }
  SUBCASE("binary_cross_entropy") {
    gradcheck_reductions(&binary_cross_entropy, det_uniform({3, 4}, 25, 0.05, 0.95), det_uniform({3, 4}, 26, 0, 1));
  }
  SUBCASE("binary_cross_entropy_with_logits") {
    Tensor x = det_randn({3, 4}, 27, false);
    {
      NoGradGuard no_grad;
      x.mul_(3.0);
    }
    gradcheck_reductions(&binary_cross_entropy_with_logits, x.requires_grad_(true), det_uniform({3, 4}, 28, 0, 1));
  }
  SUBCASE("cross_entropy") {
    gradcheck_reductions(&cross_entropy, det_randn({3, 4}, 29), labels_of({1, 3, 1}));
  }
  SUBCASE("nll_loss") { gradcheck_reductions(&nll_loss, det_randn({3, 4}, 30), labels_of({0, 2, 0})); }
  SUBCASE("gaussian_kl_divergence") {
    gradcheck_reductions(&gaussian_kl_divergence, det_randn({3, 4}, 31), det_randn({3, 4}, 32));
  }
  SUBCASE("only the target requires grad") {
    gradcheck_reductions(&mse_loss, det_randn({3, 4}, 33, false), det_randn({3, 4}, 34));
    gradcheck_reductions(&binary_cross_entropy, det_uniform({3, 4}, 35, 0.05, 0.95, false),
                         det_uniform({3, 4}, 36, 0, 1));
  }
}

TEST_CASE("loss errors name the loss and the values") {
  CHECK_THROWS_WITH_SUBSTR(mse_loss(zeros({128, 784}), zeros({128, 10})),
                           "[mse_loss] input shape [128, 784] and target shape [128, 10] differ");
  // Broadcastable shapes are still an error: no silent broadcasting.
  CHECK_THROWS_WITH_SUBSTR(l1_loss(zeros({3, 4}), zeros({4})),
                           "[l1_loss] input shape [3, 4] and target shape [4] differ");
  CHECK_THROWS_WITH_SUBSTR(binary_cross_entropy(zeros({2, 3}), zeros({2, 1})),
                           "[binary_cross_entropy] probs shape [2, 3] and target shape [2, 1] differ");
  CHECK_THROWS_WITH_SUBSTR(binary_cross_entropy_with_logits(zeros({2}), zeros({3})),
                           "[binary_cross_entropy_with_logits] logits shape [2] and target shape [3] differ");
  CHECK_THROWS_WITH_SUBSTR(gaussian_kl_divergence(zeros({2, 8}), zeros({2, 4})),
                           "[gaussian_kl_divergence] mu shape [2, 8] and logvar shape [2, 4] differ");

  Tensor ints = from_vector(std::vector<int64_t>{1, 2}, {2});
  CHECK_THROWS_WITH_SUBSTR(mse_loss(ints, zeros({2})),
                           "[mse_loss] input dtype int64 is not supported: expected float32 or float64");
  CHECK_THROWS_WITH_SUBSTR(l1_loss(zeros({2}), ints), "[l1_loss] target dtype int64 is not supported");
  CHECK_THROWS_WITH_SUBSTR(mse_loss(zeros({2}), zeros({2}, kFloat64)),
                           "[mse_loss] input dtype float32 and target dtype float64 differ");
  CHECK_THROWS_WITH_SUBSTR(mse_loss(zeros({2}), Tensor()), "[mse_loss] argument 'target' is an undefined tensor");

  Tensor logits = zeros({5, 10});
  CHECK_THROWS_WITH_SUBSTR(cross_entropy(logits, labels_of({1, 2, 3, 12, 0})),
                           "[cross_entropy] label 12 at position 3 is out of range for 10 classes");
  CHECK_THROWS_WITH_SUBSTR(cross_entropy(logits, labels_of({0, 10, 0, 0, 0})),
                           "[cross_entropy] label 10 at position 1 is out of range for 10 classes");
  CHECK_THROWS_WITH_SUBSTR(nll_loss(logits, labels_of({-1, 0, 0, 0, 0})),
                           "[nll_loss] label -1 at position 0 is out of range for 10 classes");
  CHECK_THROWS_WITH_SUBSTR(cross_entropy(logits, zeros({5})),
                           "[cross_entropy] labels must have dtype int64 (class indices); got float32");
  CHECK_THROWS_WITH_SUBSTR(cross_entropy(from_vector(std::vector<int64_t>(6, 0), {2, 3}), labels_of({0, 1})),
                           "[cross_entropy] logits dtype int64 is not supported: expected float32 or float64");
  CHECK_THROWS_WITH_SUBSTR(cross_entropy(zeros({10}), labels_of({3})),
                           "[cross_entropy] logits must have shape (N, C); got [10]");
  CHECK_THROWS_WITH_SUBSTR(nll_loss(zeros({4, 3}), labels_of({0, 1, 2})),
                           "[nll_loss] labels must have shape [4] to match log_probs shape [4, 3]; got [3]");
}

TEST_CASE("an in-place change to a saved probability before backward is an error") {
  Tensor p = det_uniform({2, 2}, 40, 0.1, 0.9);
  Tensor q = mul(p, 1.0);
  Tensor loss = binary_cross_entropy(q, det_uniform({2, 2}, 41, 0, 1, false));
  {
    NoGradGuard no_grad;
    q.mul_(0.5);
  }
  CHECK_THROWS_WITH_SUBSTR(loss.backward(), "binary_cross_entropy");
}

TEST_CASE("fused loss passes: float32 values and gradients match float64, every reduction") {
  // 1000 elements: the fused float32 kernels' vector loops and their tails both run.
  Generator gen(50);
  Tensor p32 = (rand({10, 100}, kFloat32, &gen) * 0.9 + 0.05), t32 = rand({10, 100}, kFloat32, &gen);
  Tensor x32 = randn({10, 100}, kFloat32, &gen) * 3.0;
  const LossFn losses[] = {&mse_loss, &binary_cross_entropy, &binary_cross_entropy_with_logits};
  for (LossFn loss : losses) {
    const bool probs = loss == &binary_cross_entropy;
    Tensor input = probs ? p32 : x32;
    for (Reduction r : kReductions) {
      INFO("loss " << (loss == &mse_loss ? "mse" : probs ? "bce" : "bce_with_logits") << ", reduction "
                   << reduction_name(r));
      Tensor a = input.clone().requires_grad_(), b = t32.clone().requires_grad_();
      Tensor a64 = input.to(kFloat64).requires_grad_(), b64 = t32.to(kFloat64).requires_grad_();
      Tensor out = loss(a, b, r), ref = loss(a64, b64, r);
      check_values(out, ref.to_vector<double>(), 1e-4, 1e-5);
      Tensor g = r == Reduction::None ? randn({10, 100}, kFloat32, &gen) : full({}, 0.75);
      out.backward(g);
      ref.backward(g.to(kFloat64));
      check_values(a.grad(), a64.grad().to_vector<double>(), 1e-6, 1e-4);
      check_values(b.grad(), b64.grad().to_vector<double>(), 1e-6, 1e-4);
    }
  }
}

TEST_CASE("mse_loss saves its input: an in-place change before backward is an error") {
  Tensor x = det_randn({2, 3}, 60);
  Tensor y = mul(x, 2.0);
  Tensor loss = mse_loss(y, det_randn({2, 3}, 61, false));
  {
    NoGradGuard no_grad;
    y.add_(1.0);
  }
  CHECK_THROWS_WITH_SUBSTR(loss.backward(), "mse_loss");
}

TEST_CASE("log_float and log1p_float (the vectorised logs of the fused losses) agree with libm") {
  // A sweep over every binade, denormals included, plus the special values.
  double worst_log = 0, worst_log1p = 0;
  // Steps by a factor in double: a float factor near 1 cannot move a denormal with few bits.
  for (double xd = 1e-44; xd < 3e38; xd *= 1.0137) {
    const float x = static_cast<float>(xd);
    const double ref = std::log(static_cast<double>(x));
    worst_log = std::max(worst_log, std::abs(math::log_float(x) - ref) / std::max(std::abs(ref), 1e-30));
    if (std::abs(ref) < 1e-30) CHECK(math::log_float(x) == 0.f);
  }
  std::vector<float> xs;
  for (double m = 0.9999; m > 1e-30; m *= 0.93) xs.push_back(static_cast<float>(-m));
  for (double m = 1e-30; m < 1e30; m *= 1.07) xs.push_back(static_cast<float>(m));
  for (float x : xs) {
    const double ref = std::log1p(static_cast<double>(x));
    worst_log1p = std::max(worst_log1p, std::abs(math::log1p_float(x) - ref) / std::max(std::abs(ref), 1e-38));
  }
  CHECK(worst_log < 2.5e-7);   // about 2 ulp
  CHECK(worst_log1p < 4e-7);
  CHECK(math::log_float(1.f) == 0.f);
  CHECK(math::log_float(0.f) == -INFINITY);
  CHECK(math::log_float(INFINITY) == INFINITY);
  CHECK(std::isnan(math::log_float(-1.f)));
  CHECK(std::isnan(math::log_float(NAN)));
  CHECK(math::log1p_float(-1.f) == -INFINITY);
  CHECK(math::log1p_float(INFINITY) == INFINITY);
  CHECK(math::log1p_float(1e-30f) == 1e-30f);
  CHECK(std::isnan(math::log1p_float(-2.f)));
}

TEST_CASE("binary_cross_entropy Sum in float32 at the edges: probabilities 0, 1, denormal and near 1") {
  const std::vector<double> ps = {0.0, 1.0, 1e-40, 1e-30, 1e-8, 0.3, 0.5, 0.999999, 1.0 - 1e-7, 0.9999999};
  const std::vector<double> ts = {0.0, 1.0, 0.0, 1.0, 0.5, 0.2, 1.0, 0.0, 0.3, 1.0};
  for (int rep : {1, 7}) {  // 10 and 70 elements: the scalar tail and the vector loop
    std::vector<double> p, t;
    for (int r = 0; r < rep; ++r) {
      p.insert(p.end(), ps.begin(), ps.end());
      t.insert(t.end(), ts.begin(), ts.end());
    }
    const int64_t n = static_cast<int64_t>(p.size());
    Tensor p32 = from_vector(p, {n}).to(kFloat32), t32 = from_vector(t, {n}).to(kFloat32);
    // The reference: the unfused per-element terms of the same float32 inputs, summed in float64.
    double expected = 0;
    for (double v : binary_cross_entropy(p32, t32, Reduction::None).to_vector<double>()) expected += v;
    check_values(binary_cross_entropy(p32, t32, Reduction::Sum), {expected}, 1e-4, 1e-6);
  }
}

// ---- vec_math.h: the explicit-SIMD log behind the fused binary cross entropy, at every width ----
#include <cstring>

#include "../ops/cpu/isa.h"
#include "../ops/cpu/vec_math.h"

namespace {
/// Applies vx::log<W> and vx::log1m<W> to n values (n a multiple of W).
template <int W>
[[gnu::always_inline]] inline void vec_logs_body(const float* x, float* log_out, float* log1m_out, int64_t n) {
  using F = typename latent::cpu::vx::Lanes<W>::F;
  for (int64_t i = 0; i < n; i += W) {
    F v;
    std::memcpy(&v, x + i, sizeof v);
    const F l = latent::cpu::vx::log<W>(v), m = latent::cpu::vx::log1m<W>(v);
    std::memcpy(log_out + i, &l, sizeof l);
    std::memcpy(log1m_out + i, &m, sizeof m);
  }
}
#if defined(__x86_64__) && defined(__GNUC__)
LATENT_TARGET_AVX512 void vec_logs16(const float* x, float* l, float* m, int64_t n) { vec_logs_body<16>(x, l, m, n); }
LATENT_TARGET_AVX2 void vec_logs8(const float* x, float* l, float* m, int64_t n) { vec_logs_body<8>(x, l, m, n); }
#endif
void vec_logs4(const float* x, float* l, float* m, int64_t n) { vec_logs_body<4>(x, l, m, n); }
}  // namespace

TEST_CASE("vec_math log and log1m agree with libm at 4, 8 and 16 lanes, special values included") {
  std::vector<float> xs = {0.f, -0.f, 1.f, INFINITY, -1.f, NAN, 1e-45f, 0.5f, 0.999999f, 1e-8f};
  for (double v = 1e-44; v < 3e38; v *= 1.0137) xs.push_back(static_cast<float>(v));
  while (xs.size() % 16) xs.push_back(0.25f);
  const int64_t n = static_cast<int64_t>(xs.size());
  using Fn = void (*)(const float*, float*, float*, int64_t);
  std::vector<std::pair<int, Fn>> widths = {{4, vec_logs4}};
#if defined(__x86_64__) && defined(__GNUC__)
  if (latent::cpu::cpu_isa() >= 1) widths.push_back({8, vec_logs8});
  if (latent::cpu::cpu_isa() >= 2) widths.push_back({16, vec_logs16});
#endif
  for (auto [w, fn] : widths) {
    INFO("lanes " << w);
    std::vector<float> l(n), m(n);
    fn(xs.data(), l.data(), m.data(), n);
    double worst_log = 0, worst_log1m = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double x = xs[i], ref = std::log(x);
      if (std::isnan(ref)) CHECK(std::isnan(l[i]));
      else if (std::isinf(ref)) CHECK(l[i] == ref);
      else worst_log = std::max(worst_log, std::abs(l[i] - ref) / std::max(std::abs(ref), 1e-30));
      if (x <= 1.0) {  // log1m is log(1 - p) for probabilities
        const double ref1 = std::log1p(-x);
        if (std::isinf(ref1)) CHECK(m[i] == ref1);
        else if (!std::isnan(ref1)) worst_log1m = std::max(worst_log1m, std::abs(m[i] - ref1) / std::max(std::abs(ref1), 1e-38));
      }
    }
    CHECK(worst_log < 2.5e-7);
    CHECK(worst_log1m < 4e-7);
    CHECK(l[2] == 0.f);  // log 1
  }
  MESSAGE("checked widths: " << widths.size() << " of 3 (the CPU's instruction sets)");
}
