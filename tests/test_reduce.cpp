// Reductions and the softmax family against references computed here.
#include "helpers.h"

using namespace latent;
using latent::testing::check_values;
using latent::testing::det_randn;

TEST_CASE("sum and mean over all and given dims") {
  Tensor x = arange(0.0, 24.0, 1.0, kFloat32).view({2, 3, 4});
  CHECK(x.sum().item<double>() == 276.0);
  CHECK(x.sum().dim() == 0);
  CHECK(x.mean().item<double>() == 11.5);
  Tensor s0 = x.sum({0});
  CHECK(s0.shape() == Shape{3, 4});
  check_values(s0, {12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34});
  Tensor s12 = x.sum({1, -1}, true);
  CHECK(s12.shape() == Shape{2, 1, 1});
  check_values(s12, {66, 210});
  check_values(x.mean({2}), {1.5, 5.5, 9.5, 13.5, 17.5, 21.5});
  // Non-contiguous input.
  check_values(x.transpose(0, 2).sum({0}), x.sum({2}).t().contiguous().to_vector<double>());
  CHECK(arange(10).sum().dtype() == kInt64);
  CHECK(arange(10).sum().item<int64_t>() == 45);
}

TEST_CASE("sums where many rows fold into one output element") {
  // (3, 2, 13) summed over dims 0 and 2: each output gathers 3 rows of 13 contiguous values.
  Tensor x = det_randn({3, 2, 13}, 5, false);
  std::vector<double> v = x.to_vector<double>();
  std::vector<double> expected(2, 0.0), expected_max(2, -1e300);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 13; ++k) {
        expected[j] += v[(i * 2 + j) * 13 + k];
        expected_max[j] = std::max(expected_max[j], v[(i * 2 + j) * 13 + k]);
      }
  check_values(x.sum({0, 2}), expected, 1e-12, 1e-12);
  check_values(std::get<0>(max(std::get<0>(max(x, 2, true)), 0)).flatten(), expected_max, 0, 0);
  check_values(x.to(kFloat32).sum({2, 0}), expected, 1e-5, 1e-5);
}

TEST_CASE("float32 sums accumulate in float64") {
  // 1e6 copies of 0.1f: a float32 running sum drifts by about 1%, a float64 accumulator does not.
  Tensor x = full({1000000}, 0.1);
  CHECK(std::abs(x.sum().item<double>() - 100000.0) < 1.0);
}

TEST_CASE("max and min: values, indices, ties") {
  Tensor x = tensor({{3, 7, 7}, {-1, -5, 2}});
  CHECK(x.max().item<float>() == 7.0f);
  CHECK(x.min().item<float>() == -5.0f);
  auto [v, i] = max(x, 1);
  check_values(v, {7, 2});
  check_values(i, {1, 2});  // first index on ties
  CHECK(i.dtype() == kInt64);
  auto [vk, ik] = min(x, 0, true);
  CHECK(vk.shape() == Shape{1, 3});
  check_values(vk, {-1, -5, 2});
  check_values(ik, {1, 1, 1});
  check_values(argmax(x, 1), {1, 2});
  check_values(argmin(x, -1), {0, 1});

  // The gradient of max() over all elements is shared by the tied elements.
  Tensor t = tensor({1, 5, 5, 2}).requires_grad_();
  t.max().backward();
  check_values(t.grad(), {0, 0.5, 0.5, 0});
  Tensor u = tensor({{1, 9}, {8, 2}}).requires_grad_();
  std::get<0>(max(u, 1)).sum().backward();
  check_values(u.grad(), {0, 1, 1, 0});
}

TEST_CASE("softmax, log_softmax and logsumexp are stable and correct") {
  Tensor x = det_randn({3, 5}, 7, false);
  std::vector<double> v = x.to_vector<double>(), expected_soft, expected_lse;
  for (int r = 0; r < 3; ++r) {
    double m = -1e300, s = 0;
    for (int c = 0; c < 5; ++c) m = std::max(m, v[r * 5 + c]);
    for (int c = 0; c < 5; ++c) s += std::exp(v[r * 5 + c] - m);
    expected_lse.push_back(m + std::log(s));
    for (int c = 0; c < 5; ++c) expected_soft.push_back(std::exp(v[r * 5 + c] - m) / s);
  }
  check_values(softmax(x, 1), expected_soft, 1e-12, 1e-12);
  check_values(logsumexp(x, {1}), expected_lse, 1e-12, 1e-12);
  std::vector<double> expected_log;
  for (size_t k = 0; k < expected_soft.size(); ++k) expected_log.push_back(std::log(expected_soft[k]));
  check_values(log_softmax(x, -1), expected_log, 1e-12, 1e-12);

  // Large logits do not overflow.
  Tensor big = tensor({1000, 1001, 1002});
  check_values(softmax(big, 0), {0.09003057, 0.24472847, 0.66524096}, 1e-6, 1e-5);
  check_values(logsumexp(big, {0}), {1002.40760596}, 1e-3, 1e-6);
  Tensor neg_inf = tensor({-INFINITY, -INFINITY});
  CHECK(std::isinf(logsumexp(neg_inf, {0}).item<float>()));
}

TEST_CASE("reduction errors") {
  Tensor x = zeros({2, 3});
  CHECK_THROWS_WITH_SUBSTR(x.sum({2}), "[sum] dim 2 is out of range for a 2-d tensor");
  CHECK_THROWS_WITH_SUBSTR(x.sum({1, -1}), "[sum] dim 1 appears more than once");
  CHECK_THROWS_WITH_SUBSTR(zeros({0}).max(), "[max] cannot reduce an empty tensor");
  CHECK_THROWS_WITH_SUBSTR(max(zeros({2, 0}), 1), "[max] cannot reduce dim 1 of size 0");
  CHECK_THROWS_WITH_SUBSTR(arange(4).mean(), "[mean] dtype int64 is not supported");
  CHECK_THROWS_WITH_SUBSTR(softmax(x, 3), "dim 3 is out of range for a 2-d tensor");
}

TEST_CASE("var over all and given dims, every correction, against a float64 reference") {
  Tensor x = det_randn({3, 4, 5}, 21, false);  // float64
  const std::vector<double> v = x.to_vector<double>();
  // Over all 60 elements.
  double mean_all = 0;
  for (double e : v) mean_all += e;
  mean_all /= 60;
  double ss_all = 0;
  for (double e : v) ss_all += (e - mean_all) * (e - mean_all);
  check_values(var(x), {ss_all / 59}, 1e-12, 1e-12);
  check_values(x.var(), {ss_all / 59}, 1e-12, 1e-12);
  check_values(var(x, Shape{}, 0), {ss_all / 60}, 1e-12, 1e-12);
  // Over dims 0 and 2 (15 elements per output), keepdim, float32 too.
  std::vector<double> expected(4);
  for (int j = 0; j < 4; ++j) {
    double m = 0, ss = 0;
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 5; ++k) m += v[(i * 4 + j) * 5 + k];
    m /= 15;
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 5; ++k) ss += (v[(i * 4 + j) * 5 + k] - m) * (v[(i * 4 + j) * 5 + k] - m);
    expected[j] = ss / 14;
  }
  Tensor vk = var(x, {0, -1}, 1, true);
  CHECK(vk.shape() == Shape{1, 4, 1});
  check_values(vk, expected, 1e-12, 1e-12);
  check_values(x.to(kFloat32).var({0, 2}), expected, 1e-5, 1e-5);
  // One dim as an integer, as x.var(1) in PyTorch; population variance of [1, 2, 3, 4] is 1.25.
  Tensor r = tensor({1.0, 2.0, 3.0, 4.0}).view({1, 4});
  check_values(r.var(1), {5.0 / 3.0}, 1e-6, 1e-6);  // float32
  check_values(var(r, 1, 0), {1.25}, 1e-6, 1e-6);
  // N <= correction: 0/0 is NaN (PyTorch gives NaN for the unbiased variance of one element).
  CHECK(std::isnan(tensor({3.0}).var().item<double>()));
  CHECK_THROWS_WITH_SUBSTR(var(x, Shape{}, -1), "[var] correction must be 0 or more; got -1");
  CHECK_THROWS_WITH_SUBSTR(var(x, {3}), "var");
  CHECK_THROWS_WITH_SUBSTR(var(arange(5)), "var");
  const std::vector<Tensor> inputs = {det_randn({3, 4}, 22)};
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return (var(in[0], {1}) * tensor({1.0, 2.0, 3.0})).sum(); }, inputs);
}

TEST_CASE("sum/mean/var take one dim as an integer; a braced list is still a Shape") {
  Tensor x = arange(0.0, 24.0, 1.0, kFloat32).view({2, 3, 4});
  check_values(x.sum(1), x.sum({1}).to_vector<double>());
  check_values(sum(x, -1, true), x.sum({-1}, true).to_vector<double>());
  CHECK(sum(x, -1, true).shape() == Shape{2, 3, 1});
  check_values(x.mean(0), x.mean({0}).to_vector<double>());
  check_values(mean(x, 2), x.mean({2}).to_vector<double>());
  int64_t dim = 2;
  check_values(x.sum(dim), x.sum({2}).to_vector<double>());
  // {} is "all dims" (a Shape), never dim 0.
  CHECK(x.sum({}).dim() == 0);
  CHECK(x.sum({}).item<double>() == 276.0);
  CHECK(x.mean({}).item<double>() == 11.5);
}

TEST_CASE("Tensor::clamp is clamp, with gradient 0 where clamped") {
  Tensor x = tensor({-2.0, -0.5, 0.25, 3.0}).requires_grad_();
  Tensor y = x.clamp(-1.0, 1.0);
  check_values(y, {-1.0, -0.5, 0.25, 1.0});
  y.sum().backward();
  check_values(x.grad(), {0.0, 1.0, 1.0, 0.0});
}
