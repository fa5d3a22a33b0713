// The ex-post Gaussian mixture (models/ae/gmm.h): EM against an EM written here in float64 and against
// the generating parameters, EM's monotone log-likelihood, sampling frequencies (chi-square), the
// file format and its errors, and an rae run whose samples come from its stored mixture.
#include <cmath>
#include <fstream>

#include "helpers.h"

using namespace latent;

namespace {

constexpr double kLog2Pi = 1.8378770664093454836;

/// A diagonal mixture in plain vectors, for the reference EM.
struct RefMixture {
  std::vector<double> w;                  // K
  std::vector<std::vector<double>> mu, v; // K x D
};

double ref_log_joint(const RefMixture& m, size_t k, const std::vector<double>& x) {
  double s = 0;
  for (size_t j = 0; j < x.size(); ++j) s += (x[j] - m.mu[k][j]) * (x[j] - m.mu[k][j]) / m.v[k][j] + std::log(2 * M_PI * m.v[k][j]);
  return std::log(m.w[k]) - 0.5 * s;
}

double ref_log_density(const RefMixture& m, const std::vector<double>& x) {
  double total = 0;
  for (size_t k = 0; k < m.w.size(); ++k) total += std::exp(ref_log_joint(m, k, x));
  return std::log(total);
}

/// One EM step written from the textbook formulas (no floor: the data here never needs one).
RefMixture ref_em_step(const RefMixture& m, const std::vector<std::vector<double>>& x) {
  const size_t n = x.size(), k = m.w.size(), d = x[0].size();
  RefMixture out{std::vector<double>(k, 0.0), std::vector<std::vector<double>>(k, std::vector<double>(d, 0.0)),
                 std::vector<std::vector<double>>(k, std::vector<double>(d, 0.0))};
  std::vector<std::vector<double>> r(n, std::vector<double>(k));
  for (size_t i = 0; i < n; ++i) {
    double total = 0;
    for (size_t c = 0; c < k; ++c) total += r[i][c] = std::exp(ref_log_joint(m, c, x[i]));
    for (size_t c = 0; c < k; ++c) r[i][c] /= total;
  }
  for (size_t c = 0; c < k; ++c) {
    double nk = 0;
    for (size_t i = 0; i < n; ++i) nk += r[i][c];
    out.w[c] = nk / static_cast<double>(n);
    for (size_t j = 0; j < d; ++j) {
      double s = 0;
      for (size_t i = 0; i < n; ++i) s += r[i][c] * x[i][j];
      out.mu[c][j] = s / nk;
      double q = 0;
      for (size_t i = 0; i < n; ++i) q += r[i][c] * (x[i][j] - out.mu[c][j]) * (x[i][j] - out.mu[c][j]);
      out.v[c][j] = q / nk;
    }
  }
  return out;
}

/// n points of a two-component mixture in 2-d, drawn with a fixed generator.
std::vector<std::vector<double>> two_blobs(size_t n, const RefMixture& truth, uint64_t seed) {
  Generator g(seed);
  std::vector<std::vector<double>> x;
  for (size_t i = 0; i < n; ++i) {
    const size_t k = g.uniform() < truth.w[0] ? 0 : 1;
    x.push_back({truth.mu[k][0] + std::sqrt(truth.v[k][0]) * g.normal(), truth.mu[k][1] + std::sqrt(truth.v[k][1]) * g.normal()});
  }
  return x;
}

Tensor to_tensor(const std::vector<std::vector<double>>& x) {
  std::vector<double> flat;
  for (const auto& row : x) flat.insert(flat.end(), row.begin(), row.end());
  return from_vector(flat, {static_cast<int64_t>(x.size()), static_cast<int64_t>(x[0].size())});
}

}  // namespace

TEST_CASE("gmm: EM recovers a two-component mixture and matches a float64 EM written here") {
  const RefMixture truth{{0.3, 0.7}, {{-2.0, 0.0}, {3.0, 1.0}}, {{0.5, 1.0}, {1.0, 0.25}}};
  const auto x = two_blobs(3000, truth, 11);
  models::GmmOptions o;
  o.components = 2;
  o.max_iterations = 500;
  o.tolerance = 1e-13;
  o.variance_floor = 0;
  const models::GmmFit fit = models::fit_gaussian_mixture(to_tensor(x), o);
  CHECK(fit.converged);
  const models::GaussianMixture& m = fit.mixture;
  REQUIRE(m.components() == 2);
  // Components come out in k-means++ order: match them to the truth by their first mean.
  const size_t a = m.means[0] < m.means[2] ? 0 : 1, b = 1 - a;
  // Against the generating parameters: within a few standard errors of 3000 samples.
  CHECK(std::abs(m.weights[a] - 0.3) < 0.03);
  CHECK(std::abs(m.means[a * 2] + 2.0) < 0.1);
  CHECK(std::abs(m.means[a * 2 + 1] - 0.0) < 0.1);
  CHECK(std::abs(m.means[b * 2] - 3.0) < 0.1);
  CHECK(std::abs(m.means[b * 2 + 1] - 1.0) < 0.1);
  CHECK(std::abs(m.variances[b * 2 + 1] - 0.25) < 0.03);
  // Against the reference EM run to its fixed point from the true parameters: the same maximum.
  RefMixture ref = truth;
  for (int step = 0; step < 300; ++step) ref = ref_em_step(ref, x);
  const size_t order[2] = {a, b};
  for (size_t c = 0; c < 2; ++c) {
    CHECK(m.weights[order[c]] == doctest::Approx(ref.w[c]).epsilon(1e-6));
    for (size_t j = 0; j < 2; ++j) {
      CHECK(m.means[order[c] * 2 + j] == doctest::Approx(ref.mu[c][j]).epsilon(1e-6));
      CHECK(m.variances[order[c] * 2 + j] == doctest::Approx(ref.v[c][j]).epsilon(1e-6));
    }
  }
  // log_density and the final log-likelihood against the formula.
  RefMixture got{{m.weights[0], m.weights[1]},
                 {{m.means[0], m.means[1]}, {m.means[2], m.means[3]}},
                 {{m.variances[0], m.variances[1]}, {m.variances[2], m.variances[3]}}};
  const std::vector<double> ld = m.log_density(to_tensor(x));
  double mean_ll = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    CHECK(ld[i] == doctest::Approx(ref_log_density(got, x[i])).epsilon(1e-12));
    mean_ll += ref_log_density(got, x[i]) / static_cast<double>(x.size());
  }
  CHECK(fit.log_likelihood.back() == doctest::Approx(mean_ll).epsilon(1e-12));
}

TEST_CASE("gmm: the log-likelihood never decreases across EM steps, variance floor included") {
  // Five components on three blobs in 3-d, one dimension nearly constant (the floor binds).
  Generator g(5);
  std::vector<std::vector<double>> x;
  for (int i = 0; i < 1500; ++i) {
    const int k = i % 3;
    x.push_back({k * 4.0 + g.normal(), (k - 1) * 2.0 + 0.5 * g.normal(), 1e-7 * g.normal()});
  }
  for (double floor : {0.0, 1e-4, 0.1}) {
    models::GmmOptions o;
    o.components = 5;
    o.max_iterations = 200;
    o.tolerance = 0;  // run every step
    o.variance_floor = floor;
    o.seed = 3;
    const models::GmmFit fit = models::fit_gaussian_mixture(to_tensor(x), o);
    REQUIRE(fit.log_likelihood.size() >= 10);
    INFO("floor " << floor);
    for (size_t i = 1; i < fit.log_likelihood.size(); ++i) {
      INFO("step " << i << ": " << fit.log_likelihood[i - 1] << " -> " << fit.log_likelihood[i]);
      CHECK(fit.log_likelihood[i] >= fit.log_likelihood[i - 1] - 1e-10 * std::abs(fit.log_likelihood[i - 1]));
    }
    for (double v : fit.mixture.variances) CHECK(v > 0);
  }
  // The same seed gives the same fit; another seed starts elsewhere.
  models::GmmOptions o;
  o.components = 5;
  o.seed = 7;
  const auto f1 = models::fit_gaussian_mixture(to_tensor(x), o), f2 = models::fit_gaussian_mixture(to_tensor(x), o);
  CHECK(f1.mixture.means == f2.mixture.means);
}

TEST_CASE("gmm: samples follow the weights (chi-square) and each component's mean and variance") {
  models::GaussianMixture m;
  m.dim = 2;
  m.weights = {0.1, 0.2, 0.3, 0.4};
  m.means = {-5, 0, 0, 5, 5, 0, 0, -5};
  m.variances = {1, 0.25, 4, 1, 0.5, 0.5, 2, 3};
  Generator gen(17);
  std::vector<int64_t> chosen;
  const int64_t n = 40000;
  const std::vector<double> s = m.sample(n, &gen, &chosen).to(kFloat64).to_vector<double>();
  std::vector<double> count(4, 0.0), sum(8, 0.0), sq(8, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<size_t>(chosen[static_cast<size_t>(i)]);
    count[k] += 1;
    for (size_t j = 0; j < 2; ++j) {
      sum[k * 2 + j] += s[static_cast<size_t>(i) * 2 + j];
      sq[k * 2 + j] += s[static_cast<size_t>(i) * 2 + j] * s[static_cast<size_t>(i) * 2 + j];
    }
  }
  double chi2 = 0;
  for (size_t k = 0; k < 4; ++k) {
    const double expected = m.weights[k] * static_cast<double>(n);
    chi2 += (count[k] - expected) * (count[k] - expected) / expected;
  }
  INFO("chi-square " << chi2);
  CHECK(chi2 < 16.27);  // 3 degrees of freedom, p = 0.001
  for (size_t k = 0; k < 4; ++k)
    for (size_t j = 0; j < 2; ++j) {
      const double mean = sum[k * 2 + j] / count[k], var = sq[k * 2 + j] / count[k] - mean * mean;
      CHECK(std::abs(mean - m.means[k * 2 + j]) < 5 * std::sqrt(m.variances[k * 2 + j] / count[k]));
      CHECK(std::abs(var / m.variances[k * 2 + j] - 1) < 0.08);
    }
  // Seeded: the same generator seed, the same points.
  Generator g1(4), g2(4);
  CHECK(m.sample(10, &g1).to_vector<float>() == m.sample(10, &g2).to_vector<float>());
}

TEST_CASE("gmm: the file round trip and its errors name the file") {
  latent::testing::TempDir tmp;
  models::GaussianMixture m;
  m.dim = 3;
  m.weights = {0.25, 0.75};
  m.means = {1, 2, 3, -1, -2, -3};
  m.variances = {0.5, 1, 2, 3, 4, 5};
  const std::string path = tmp / "gmm.safetensors";
  models::save_gaussian_mixture(m, path);
  const models::GaussianMixture back = models::load_gaussian_mixture(path);
  CHECK(back.dim == 3);
  CHECK(back.weights == m.weights);
  CHECK(back.means == m.means);
  CHECK(back.variances == m.variances);
  CHECK_THROWS_WITH_SUBSTR(models::load_gaussian_mixture(tmp / "none.safetensors"),
                           "[gmm] " + (tmp / "none.safetensors") + " is missing");
  {
    std::ofstream f(tmp / "bad.safetensors");
    f << "garbage";
  }
  CHECK_THROWS_WITH_SUBSTR(models::load_gaussian_mixture(tmp / "bad.safetensors"),
                           "[gmm] " + (tmp / "bad.safetensors") + ": not a readable mixture file");
  safetensors::save_file({{"weights", from_vector(std::vector<double>{0.5, 0.6}, {2})},
                          {"means", from_vector(std::vector<double>{0, 1}, {2, 1})},
                          {"variances", from_vector(std::vector<double>{1, 1}, {2, 1})}},
                         tmp / "sum.safetensors");
  CHECK_THROWS_WITH_SUBSTR(models::load_gaussian_mixture(tmp / "sum.safetensors"),
                           "[gmm] " + (tmp / "sum.safetensors") + ": mixing weights must sum to 1; got 1.1");
  safetensors::save_file({{"weights", from_vector(std::vector<double>{1}, {1})}}, tmp / "part.safetensors");
  CHECK_THROWS_WITH_SUBSTR(models::load_gaussian_mixture(tmp / "part.safetensors"), "missing tensor 'means'");
  safetensors::save_file({{"weights", from_vector(std::vector<double>{1}, {1})},
                          {"means", from_vector(std::vector<double>{0}, {1, 1})},
                          {"variances", from_vector(std::vector<double>{-1}, {1, 1})}},
                         tmp / "neg.safetensors");
  CHECK_THROWS_WITH_SUBSTR(models::load_gaussian_mixture(tmp / "neg.safetensors"), "variances must be positive and finite; got -1");
  CHECK_THROWS_WITH_SUBSTR(models::fit_gaussian_mixture(zeros({3, 2}), models::GmmOptions{}),
                           "[gmm] 10 components need at least as many points; got 3");
}

TEST_CASE("gmm: an rae run stores its mixture and sample_images draws from it") {
  latent::testing::TempDir tmp;
  const std::string dir = tmp.path.string();
  {
    std::ofstream f(dir + "/data.csv");
    f << "a,b,c,d,e,f\n";
    Generator g(3);
    for (int i = 0; i < 300; ++i) {
      const double u = g.uniform(), v = g.uniform();
      f << u << "," << v << "," << u + v << "," << u - v << "," << u * v << "," << 0.5 * u << "\n";
    }
  }
  models::TrainOptions o;
  o.model.model = "rae";
  o.model.latent_dim = 2;
  o.model.hidden = {16};
  o.model.gmm_components = 3;
  o.data = dir + "/data.csv";
  o.batch_size = 32;
  o.progress = false;
  o.epochs = 3;
  o.out = dir + "/run";
  FILE* sink = std::fopen("/dev/null", "w");
  models::train(o, sink);
  std::fclose(sink);
  models::LoadedRun run = models::load(o.out);
  REQUIRE(run.code_density);
  CHECK(run.code_density->components() == 3);
  CHECK(run.code_density->dim == 2);
  // The stored mixture is the fit on the training codes (same seed, same data: the same numbers).
  models::DataSplit split = models::run_data(run, "");
  models::GmmOptions g;
  g.components = 3;
  const models::GmmFit refit = models::fit_gaussian_mixture(models::encode_dataset(*run.model, *split.train), g);
  for (size_t i = 0; i < refit.mixture.means.size(); ++i)
    CHECK(run.code_density->means[i] == doctest::Approx(refit.mixture.means[i]).epsilon(1e-9));
  // sample_images = decode(mixture sample), deterministic with the seed, not decode(N(0, I)).
  Generator g1(5), g2(5), g3(5), g4(5);
  const Tensor s1 = models::sample_images(run, 16, &g1), s2 = models::sample_images(run, 16, &g2);
  CHECK(s1.to_vector<float>() == s2.to_vector<float>());
  Tensor expected, prior;
  {
    NoGradGuard no_grad;
    expected = run.model->decode(run.code_density->sample(16, &g3));
    prior = run.model->decode(randn({16, 2}, kFloat32, &g4));
  }
  latent::testing::check_close(s1, expected, 0, 0);
  CHECK(max(abs(s1 - prior)).item<double>() > 1e-3);
  // Codes of the training data are likelier under the mixture than under N(0, I).
  const Tensor codes = models::encode_dataset(*run.model, *split.train);
  double ll_gmm = 0, ll_normal = 0;
  const std::vector<double> ld = run.code_density->log_density(codes), c = codes.to(kFloat64).to_vector<double>();
  for (size_t i = 0; i < ld.size(); ++i) {
    ll_gmm += ld[i];
    ll_normal += -0.5 * (c[2 * i] * c[2 * i] + c[2 * i + 1] * c[2 * i + 1] + 2 * kLog2Pi);
  }
  CHECK(ll_gmm > ll_normal);
  // Without its file: a clear error naming it.
  std::filesystem::remove(o.out + "/gmm.safetensors");
  models::LoadedRun bare = models::load(o.out);
  CHECK_FALSE(bare.code_density);
  CHECK_THROWS_WITH_SUBSTR(models::sample_images(bare, 4, &g1), "[sample] " + o.out + "/gmm.safetensors is missing");
  {
    std::ofstream f(o.out + "/gmm.safetensors");
    f << "not a mixture";
  }
  CHECK_THROWS_WITH_SUBSTR(models::load(o.out), "[gmm] " + o.out + "/gmm.safetensors: not a readable mixture file");
}
