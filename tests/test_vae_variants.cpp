// The VAE variants (models/ae/vae_variants.h): every estimator against a direct float64 computation on
// tiny fixed inputs, gradchecks of the new differentiable pieces, the MMD estimator's unbiasedness on
// two known discrete distributions, the total-correlation terms' exactness when the batch is the
// whole data set, each model's loss against its formula, and each model training.
#include <cmath>

#include "helpers.h"

using namespace latent;

namespace {

using latent::testing::affine;
using latent::testing::map_rows;
using latent::testing::named_parameter;
using latent::testing::Rows;
using latent::testing::rows_of;
constexpr double kLog2Pi = 1.8378770664093454836;

double log_normal(double z, double mu, double logvar) {
  return -0.5 * ((z - mu) * (z - mu) / std::exp(logvar) + logvar + kLog2Pi);
}

double log_mean_exp(const std::vector<double>& v) {
  double m = v[0];
  for (double x : v) m = std::max(m, x);
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s / static_cast<double>(v.size()));
}

/// MI, TC and dimension-wise KL with q(z) = 1/M sum_j q(z|x_j) (the batch is the data set).
std::array<double, 3> tc_reference(const Rows& z, const Rows& mu, const Rows& lv) {
  const size_t m = z.size(), d = z[0].size();
  double mi = 0, tc = 0, dw = 0;
  for (size_t i = 0; i < m; ++i) {
    std::vector<double> joint(m, 0.0);
    double log_prod = 0, log_qzx = 0, log_pz = 0;
    for (size_t k = 0; k < d; ++k) {
      std::vector<double> marg(m);
      for (size_t j = 0; j < m; ++j) {
        marg[j] = log_normal(z[i][k], mu[j][k], lv[j][k]);
        joint[j] += marg[j];
      }
      log_prod += log_mean_exp(marg);
      log_qzx += log_normal(z[i][k], mu[i][k], lv[i][k]);
      log_pz += log_normal(z[i][k], 0, 0);
    }
    const double log_qz = log_mean_exp(joint);
    mi += (log_qzx - log_qz) / static_cast<double>(m);
    tc += (log_qz - log_prod) / static_cast<double>(m);
    dw += (log_prod - log_pz) / static_cast<double>(m);
  }
  return {mi, tc, dw};
}

double imq(const std::vector<double>& a, const std::vector<double>& b, double c) {
  double d2 = 0;
  for (size_t k = 0; k < a.size(); ++k) d2 += (a[k] - b[k]) * (a[k] - b[k]);
  return c / (c + d2);
}

double mmd_reference(const Rows& x, const Rows& y, double c) {
  const double n = static_cast<double>(x.size()), m = static_cast<double>(y.size());
  double xx = 0, yy = 0, xy = 0;
  for (size_t i = 0; i < x.size(); ++i)
    for (size_t j = 0; j < x.size(); ++j)
      if (i != j) xx += imq(x[i], x[j], c);
  for (size_t i = 0; i < y.size(); ++i)
    for (size_t j = 0; j < y.size(); ++j)
      if (i != j) yy += imq(y[i], y[j], c);
  for (const auto& a : x)
    for (const auto& b : y) xy += imq(a, b, c);
  return xx / (n * (n - 1)) + yy / (m * (m - 1)) - 2 * xy / (n * m);
}

void check_near(double got, double expected, const std::string& what, double rel = 2e-5) {
  INFO(what << ": latent " << got << ", float64 reference " << expected);
  CHECK(std::abs(got - expected) <= 1e-6 + rel * std::abs(expected));
}

Rows dense(const nn::Module& m, const std::string& prefix, const Rows& x, bool relu) {
  const Rows y = affine(x, named_parameter(m, prefix + ".weight"), named_parameter(m, prefix + ".bias"));
  return relu ? map_rows(y, [](double v) { return std::max(v, 0.0); }) : y;
}

Rows decode_reference(const nn::Module& m, const Rows& z) {
  Rows r = dense(m, "fc4", dense(m, "fc3", z, true), false);
  for (auto& row : r)
    for (double& v : row) v = 1 / (1 + std::exp(-v));
  return r;
}

double bce_sum(const Rows& r, const Rows& x) {
  double s = 0;
  for (size_t i = 0; i < r.size(); ++i)
    for (size_t j = 0; j < r[i].size(); ++j) s -= x[i][j] * std::log(r[i][j]) + (1 - x[i][j]) * std::log(1 - r[i][j]);
  return s;
}

models::AEConfig tiny(const std::string& model) {
  models::AEConfig c;
  c.model = model;
  c.input_dim = 6;
  c.hidden = {5};
  c.latent_dim = 2;
  return c;
}

}  // namespace

TEST_CASE("total correlation terms: direct float64 sums, exact on the whole set, sum = KL within Monte Carlo error") {
  Generator gen(3);
  const Tensor mu = randn({5, 3}, kFloat64, &gen) * 0.8, lv = randn({5, 3}, kFloat64, &gen) * 0.4 - 0.5;
  const Tensor z = mu + randn({5, 3}, kFloat64, &gen) * exp(lv * 0.5);
  models::TcTerms t = models::total_correlation_terms(z, mu, lv);
  const auto ref = tc_reference(rows_of(z), rows_of(mu), rows_of(lv));
  check_near(t.mutual_information.item<double>(), ref[0], "mutual information", 1e-10);
  check_near(t.total_correlation.item<double>(), ref[1], "total correlation", 1e-10);
  check_near(t.dimension_kl.item<double>(), ref[2], "dimension-wise KL", 1e-10);
  CHECK(ref[1] > 0.01);  // the check is not vacuous: the codes are correlated through the mixture

  // The three terms add up to log q(z|x) - log p(z), whose mean over z ~ q(z|x_i) is the analytic
  // KL averaged over the data set. 4000 draws: within 4 standard errors.
  const Rows m = rows_of(mu), l = rows_of(lv);
  double kl = 0;
  for (size_t i = 0; i < 5; ++i)
    for (size_t k = 0; k < 3; ++k) kl += -0.5 * (1 + l[i][k] - m[i][k] * m[i][k] - std::exp(l[i][k])) / 5.0;
  double s = 0, s2 = 0;
  const int draws = 4000;
  for (int r = 0; r < draws; ++r) {
    const Tensor zr = mu + randn({5, 3}, kFloat64, &gen) * exp(lv * 0.5);
    models::TcTerms tr = models::total_correlation_terms(zr, mu, lv);
    const double v = (tr.mutual_information + tr.total_correlation + tr.dimension_kl).item<double>();
    s += v;
    s2 += v * v;
  }
  const double mean = s / draws, se = std::sqrt((s2 / draws - mean * mean) / draws);
  INFO("Monte Carlo " << mean << " +- " << se << ", analytic KL " << kl);
  CHECK(std::abs(mean - kl) < 4 * se);
}

TEST_CASE("IMQ MMD: direct float64 sum, unbiased on two known discrete distributions") {
  Generator gen(5);
  const Tensor x = randn({4, 3}, kFloat64, &gen), y = randn({6, 3}, kFloat64, &gen) + 0.5;
  check_near(models::imq_mmd(x, y, 1.5).item<double>(), mmd_reference(rows_of(x), rows_of(y), 1.5), "mmd", 1e-10);

  // P uniform on {a, b, c}, Q with probabilities 0.5, 0.3, 0.2 on {a, d, e} (2-D points): the exact
  // MMD^2 = E k(X, X') + E k(Y, Y') - 2 E k(X, Y) over independent copies.
  const Rows pts_p{{0, 0}, {1, 0}, {0, 2}}, pts_q{{0, 0}, {1, 1}, {-1, 0.5}};
  const std::vector<double> wp{1.0 / 3, 1.0 / 3, 1.0 / 3}, wq{0.5, 0.3, 0.2};
  const double c = 2.0;
  double exact = 0;
  for (size_t i = 0; i < 3; ++i)
    for (size_t j = 0; j < 3; ++j)
      exact += wp[i] * wp[j] * imq(pts_p[i], pts_p[j], c) + wq[i] * wq[j] * imq(pts_q[i], pts_q[j], c) -
               2 * wp[i] * wq[j] * imq(pts_p[i], pts_q[j], c);
  auto draw = [&](const Rows& pts, const std::vector<double>& w, int n) {
    std::vector<double> flat;
    for (double u : rand({n}, kFloat64, &gen).to_vector<double>()) {
      size_t k = 0;
      double acc = w[0];
      while (u > acc && k + 1 < w.size()) acc += w[++k];
      flat.insert(flat.end(), pts[k].begin(), pts[k].end());
    }
    return from_vector(flat, {n, 2});
  };
  for (const bool same : {false, true}) {
    CAPTURE(same);
    const double target = same ? 0.0 : exact;
    double s = 0, s2 = 0;
    const int trials = 3000;
    for (int r = 0; r < trials; ++r) {
      const double v = models::imq_mmd(draw(pts_p, wp, 4), same ? draw(pts_p, wp, 5) : draw(pts_q, wq, 5), c).item<double>();
      s += v;
      s2 += v * v;
    }
    const double mean = s / trials, se = std::sqrt((s2 / trials - mean * mean) / trials);
    INFO("mean estimate " << mean << " +- " << se << ", exact " << target);
    CHECK(std::abs(mean - target) < 4 * se);
  }
  CHECK(exact > 0.02);
  CHECK_THROWS_WITH(models::imq_mmd(x.narrow(0, 0, 1), y, 1.0),
                    "[imq_mmd] the unbiased estimate needs at least 2 samples on each side; got 1 and 6");
}

TEST_CASE("IWAE bound and the VampPrior mixture density against float64 sums") {
  Generator gen(7);
  const Tensor log_w = randn({5, 3}, kFloat64, &gen) * 3.0 - 100.0;  // far from 0: the log-sum-exp must be stable
  const Rows lw = rows_of(log_w);
  const std::vector<double> got = models::negative_iwae_bound(log_w).to_vector<double>();
  for (size_t n = 0; n < 3; ++n) {
    std::vector<double> col;
    for (size_t k = 0; k < 5; ++k) col.push_back(lw[k][n]);
    check_near(got[n], -log_mean_exp(col), "iwae", 1e-12);
  }
  const Tensor z = randn({4, 2}, kFloat64, &gen), mu = randn({3, 2}, kFloat64, &gen), lv = randn({3, 2}, kFloat64, &gen) * 0.3;
  const std::vector<double> mix = models::gaussian_mixture_log_density(z, mu, lv).to_vector<double>();
  const Rows zr = rows_of(z), mr = rows_of(mu), lr = rows_of(lv);
  for (size_t i = 0; i < 4; ++i) {
    std::vector<double> comp;
    for (size_t k = 0; k < 3; ++k) comp.push_back(log_normal(zr[i][0], mr[k][0], lr[k][0]) + log_normal(zr[i][1], mr[k][1], lr[k][1]));
    check_near(mix[i], log_mean_exp(comp), "mixture log density", 1e-12);
  }
}

TEST_CASE("gradcheck: total correlation terms, IMQ MMD, mixture density, IWAE bound") {
  Generator gen(11);
  auto leaf = [&](Shape s, double scale) { return (randn(s, kFloat64, &gen) * scale).requires_grad_(true); };
  const Tensor z = leaf({4, 2}, 1.0), mu = leaf({4, 2}, 0.7), lv = leaf({4, 2}, 0.3);
  for (int part = 0; part < 3; ++part) {
    CAPTURE(part);
    auto r = gradcheck([part](const std::vector<Tensor>& in) {
      models::TcTerms t = models::total_correlation_terms(in[0], in[1], in[2]);
      return part == 0 ? t.mutual_information : part == 1 ? t.total_correlation : t.dimension_kl;
    }, {z, mu, lv});
    INFO(r.report);
    CHECK(r);
  }
  const Tensor x = leaf({3, 2}, 1.0), y = leaf({4, 2}, 1.0);
  auto r1 = gradcheck([](const std::vector<Tensor>& in) { return models::imq_mmd(in[0], in[1], 0.8); }, {x, y});
  INFO(r1.report);
  CHECK(r1);
  const Tensor mk = leaf({3, 2}, 0.7), lk = leaf({3, 2}, 0.3);
  auto r2 = gradcheck([](const std::vector<Tensor>& in) { return sum(models::gaussian_mixture_log_density(in[0], in[1], in[2])); },
                      {z, mk, lk});
  INFO(r2.report);
  CHECK(r2);
  auto r3 = gradcheck([](const std::vector<Tensor>& in) { return sum(models::negative_iwae_bound(in[0])); }, {leaf({4, 3}, 2.0)});
  INFO(r3.report);
  CHECK(r3);
}

TEST_CASE("each variant's loss.total equals its formula, computed in float64 from the parameters") {
  Generator data_gen(17);
  const Tensor x = rand({4, 6}, kFloat32, &data_gen) * 0.9 + 0.05;
  const Rows xr = rows_of(x);
  auto encode_ref = [&](const nn::Module& m, Rows& mu, Rows& lv) {
    const Rows h = dense(m, "fc1", xr, true);
    mu = dense(m, "fc21", h, false);
    lv = dense(m, "fc22", h, false);
  };

  SUBCASE("beta-tc-vae: BCE sum + N (MI + beta TC + dimension KL)") {
    models::AEConfig c = tiny("beta-tc-vae");
    c.beta = 4;
    manual_seed(1);
    auto m = models::make_autoencoder(c);
    manual_seed(50);
    models::AELoss l = m->loss(x, x, 0);
    manual_seed(50);
    const Rows eps = rows_of(randn({4, 2}, kFloat32));
    Rows mu, lv;
    encode_ref(*m, mu, lv);
    Rows z = mu;
    for (size_t i = 0; i < 4; ++i)
      for (size_t k = 0; k < 2; ++k) z[i][k] = mu[i][k] + eps[i][k] * std::exp(0.5 * lv[i][k]);
    const auto t = tc_reference(z, mu, lv);
    const double recon = bce_sum(decode_reference(*m, z), xr);
    check_near(l.total.item<double>(), recon + 4 * (t[0] + 4 * t[1] + t[2]), "total", 1e-4);
    check_near(l.terms.at(1).second, t[1], "total correlation term", 1e-4);
  }
  SUBCASE("iwae: sum over images of -log mean_k p(x, z_k) / q(z_k | x)") {
    models::AEConfig c = tiny("iwae");
    c.iwae_samples = 3;
    manual_seed(2);
    auto m = models::make_autoencoder(c);
    manual_seed(51);
    models::AELoss l = m->loss(x, x, 0);
    manual_seed(51);
    const std::vector<double> eps = randn({3, 4, 2}, kFloat32).to(kFloat64).to_vector<double>();
    Rows mu, lv;
    encode_ref(*m, mu, lv);
    double total = 0;
    for (size_t i = 0; i < 4; ++i) {
      std::vector<double> log_w;
      for (size_t k = 0; k < 3; ++k) {
        Rows z(1, std::vector<double>(2));
        double lq = 0, lp = 0;
        for (size_t d = 0; d < 2; ++d) {
          const double e = eps[(k * 4 + i) * 2 + d];
          z[0][d] = mu[i][d] + e * std::exp(0.5 * lv[i][d]);
          lq += log_normal(z[0][d], mu[i][d], lv[i][d]);
          lp += log_normal(z[0][d], 0, 0);
        }
        log_w.push_back(-bce_sum(decode_reference(*m, z), Rows{xr[i]}) + lp - lq);
      }
      total -= log_mean_exp(log_w);
    }
    check_near(l.total.item<double>(), total, "total", 1e-4);
  }
  SUBCASE("vamp-vae: BCE sum + beta sum (log q(z|x) - log 1/K sum_k q(z|u_k))") {
    models::AEConfig c = tiny("vamp-vae");
    c.components = 3;
    c.beta = 0.5;
    manual_seed(3);
    auto m = models::make_autoencoder(c);
    manual_seed(52);
    models::AELoss l = m->loss(x, x, 0);
    manual_seed(52);
    const Rows eps = rows_of(randn({4, 2}, kFloat32));
    Rows mu, lv;
    encode_ref(*m, mu, lv);
    Rows u = rows_of(named_parameter(*m, "pseudo_inputs"));
    for (auto& r : u)
      for (double& v : r) v = std::clamp(v, 0.0, 1.0);
    const Rows hu = dense(*m, "fc1", u, true), mu_k = dense(*m, "fc21", hu, false), lv_k = dense(*m, "fc22", hu, false);
    Rows z = mu;
    double kl = 0;
    for (size_t i = 0; i < 4; ++i) {
      std::vector<double> comp(3, 0.0);
      for (size_t d = 0; d < 2; ++d) {
        z[i][d] = mu[i][d] + eps[i][d] * std::exp(0.5 * lv[i][d]);
        kl += log_normal(z[i][d], mu[i][d], lv[i][d]);
        for (size_t k = 0; k < 3; ++k) comp[k] += log_normal(z[i][d], mu_k[k][d], lv_k[k][d]);
      }
      kl -= log_mean_exp(comp);
    }
    check_near(l.total.item<double>(), bce_sum(decode_reference(*m, z), xr) + 0.5 * kl, "total", 1e-4);
  }
  SUBCASE("wae-mmd: squared error per image + weight * sum over 7 scales of MMD^2(z, prior draw)") {
    models::AEConfig c = tiny("wae-mmd");
    c.mmd_weight = 3;
    manual_seed(4);
    auto m = models::make_autoencoder(c);
    manual_seed(53);
    models::AELoss l = m->loss(x, x, 0);
    manual_seed(53);
    const Rows prior = rows_of(randn({4, 2}, kFloat32));
    const Rows z = dense(*m, "fc21", dense(*m, "fc1", xr, true), false);
    const Rows r = decode_reference(*m, z);
    double se = 0, mmd = 0;
    for (size_t i = 0; i < 4; ++i)
      for (size_t j = 0; j < 6; ++j) se += (r[i][j] - xr[i][j]) * (r[i][j] - xr[i][j]) / 4;
    for (double s : {0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0}) mmd += mmd_reference(z, prior, 4 * s);
    check_near(l.total.item<double>(), se + 3 * mmd, "total", 1e-4);
    check_near(l.terms.at(0).second, mmd, "mmd term", 1e-4);
  }
  SUBCASE("rae: squared error per image + code_penalty mean 1/2 |z|^2 + decoder_l2 |W|^2") {
    models::AEConfig c = tiny("rae");
    c.code_penalty = 0.3;
    c.decoder_l2 = 0.01;
    manual_seed(5);
    auto m = models::make_autoencoder(c);
    models::AELoss l = m->loss(x, x, 0);
    const Rows z = dense(*m, "fc21", dense(*m, "fc1", xr, true), false);
    const Rows r = decode_reference(*m, z);
    double se = 0, code = 0, w = 0;
    for (size_t i = 0; i < 4; ++i) {
      for (size_t j = 0; j < 6; ++j) se += (r[i][j] - xr[i][j]) * (r[i][j] - xr[i][j]) / 4;
      for (double v : z[i]) code += 0.5 * v * v / 4;
    }
    for (const char* name : {"fc3.weight", "fc4.weight"})
      for (const auto& row : rows_of(named_parameter(*m, name)))
        for (double v : row) w += v * v;
    check_near(l.total.item<double>(), se + 0.3 * code + 0.01 * w, "total", 1e-4);
  }
}

TEST_CASE("every variant trains: 300 Adam steps on a fixed batch lower the loss above its floor by a stated factor") {
  // 32 samples of 12 values in (0, 1) on a 2-D manifold: every variant should reconstruct them
  // far better after training.
  Generator gen(21);
  const Tensor codes = rand({32, 2}, kFloat32, &gen);
  const Tensor mix = randn({2, 12}, kFloat32, &gen);
  const Tensor x = sigmoid(matmul(codes * 4.0 - 2.0, mix));
  // The Bernoulli NLL of values in (0, 1) cannot go below their entropy: the VAEs' floor.
  double entropy = 0;
  for (double v : x.to(kFloat64).to_vector<double>()) entropy -= v * std::log(v) + (1 - v) * std::log(1 - v);
  for (const std::string& name : models::vae_variant_names()) {
    CAPTURE(name);
    models::AEConfig c;
    c.model = name;
    c.input_dim = 12;
    c.hidden = {16};
    c.latent_dim = 2;
    c.components = 4;
    c.codebook_dim = 2;  // vq-vae: one entry per code
    c.codebook_size = 32;
    manual_seed(9);
    auto m = models::make_autoencoder(c);
    optim::Adam opt(m->parameters(), optim::AdamOptions(1e-2));
    auto loss_at = [&]() {
      manual_seed(1234);  // the same noise for the before/after comparison
      NoGradGuard no_grad;
      return m->loss(x, x, 10).total.item<double>();
    };
    const double floor = m->variational() ? entropy : 0.0;
    const double before = loss_at() - floor;
    for (int step = 0; step < 300; ++step) {
      models::AELoss l = m->loss(x, x, 10);
      opt.zero_grad();
      l.total.backward();
      opt.step();
    }
    const double after = loss_at() - floor;
    INFO("loss above its floor " << before << " -> " << after);
    // Measured: the VAEs 0.54-0.64 of the start (their KL keeps them off the floor), wae-mmd and
    // rae below 0.01.
    CHECK(after < (m->variational() ? 0.7 : 0.1) * before);
  }
}

TEST_CASE("variants: names, config fields, errors") {
  models::AEConfig c = tiny("vamp-vae");
  c.components = 7;
  c.mmd_weight = 2.5;
  const models::AEConfig back = models::AEConfig::from_json(c.to_json());
  CHECK(back.components == 7);
  CHECK(back.mmd_weight == 2.5);
  CHECK(back.code_dim() == 2);
  models::AEConfig d;
  d.model = "wae-mmd";
  CHECK(d.code_dim() == 20);
  const auto& names = models::autoencoder_names();
  for (const std::string& v : models::vae_variant_names()) CHECK(std::find(names.begin(), names.end(), v) != names.end());
  CHECK(models::make_autoencoder(tiny("iwae"))->variational());
  CHECK_FALSE(models::make_autoencoder(tiny("rae"))->variational());
  CHECK_THROWS_WITH_SUBSTR(models::make_autoencoder(tiny("vq-vea")), "[autoencoder] unknown model 'vq-vea' (linear, deep");
  // The VampPrior samples from its own mixture: codes near the pseudo-inputs' means.
  manual_seed(3);
  auto vamp = std::dynamic_pointer_cast<models::VariationalAutoencoder>(models::make_autoencoder(tiny("vamp-vae")));
  Generator gen(4);
  CHECK(vamp->sample(5, &gen).shape() == Shape{5, 6});
}

TEST_CASE("sigma-point KL: exact for a Gaussian prior, near the Monte Carlo KL under a mixture, vamp-vae's score uses it") {
  Generator gen(11);
  const int64_t n = 4, d = 3;
  const Tensor mu = randn({n, d}, kFloat64, &gen), lv = randn({n, d}, kFloat64, &gen) * 0.4;
  const Rows mr = rows_of(mu), lr = rows_of(lv);
  // A Gaussian prior N(m, exp(s)) (log p quadratic): the sigma points give the closed-form KL.
  const std::vector<double> m = {0.3, -0.2, 0.5}, s = {0.1, -0.4, 0.2};
  auto gaussian_prior = [&](const Tensor& z) {
    const Tensor mt = from_vector(m, {1, d}), st = from_vector(s, {1, d});
    const Tensor diff = z - mt;
    return sum(diff * diff * exp(-st) + st + kLog2Pi, {1}) * -0.5;
  };
  const std::vector<double> got = models::sigma_point_kl(mu, lv, gaussian_prior).to_vector<double>();
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
    double kl = 0;
    for (size_t j = 0; j < static_cast<size_t>(d); ++j)
      kl += 0.5 * (s[j] - lr[i][j] + (std::exp(lr[i][j]) + (mr[i][j] - m[j]) * (mr[i][j] - m[j])) / std::exp(s[j]) - 1.0);
    check_near(got[i], kl, "sigma-point KL, Gaussian prior", 1e-10);
  }
  // A three-component mixture prior (log p far from quadratic): an approximation, within 10% (plus
  // 0.02 nats) of a 200,000-sample Monte Carlo KL (0.04-0.08 nats off on KLs of about 1.2 here).
  const Tensor cm = randn({3, d}, kFloat64, &gen), cl = randn({3, d}, kFloat64, &gen) * 0.3;
  auto mixture = [&](const Tensor& z) { return models::gaussian_mixture_log_density(z, cm, cl); };
  const std::vector<double> sp = models::sigma_point_kl(mu, lv, mixture).to_vector<double>();
  const int64_t samples = 200000;
  for (int64_t i = 0; i < n; ++i) {
    const Tensor mi = mu.slice(0, i, i + 1), li = lv.slice(0, i, i + 1);
    const Tensor z = mi + randn({samples, d}, kFloat64, &gen) * exp(li * 0.5);
    const Tensor log_q = sum((z - mi) * (z - mi) * exp(-li) + li + kLog2Pi, {1}) * -0.5;
    const double mc = mean(log_q - mixture(z)).item<double>();
    CAPTURE(i);
    CHECK(std::fabs(sp[static_cast<size_t>(i)] - mc) <= 0.1 * std::fabs(mc) + 0.02);
  }
  // vamp-vae's kl_to_prior is that estimate over its own mixture (deterministic: twice the same).
  manual_seed(5);
  auto vamp = std::dynamic_pointer_cast<models::VariationalAutoencoder>(models::make_autoencoder(tiny("vamp-vae")));
  const Tensor x = rand({3, 6}, kFloat32, &gen);
  NoGradGuard no_grad;
  auto [qm, ql] = vamp->encode_distribution(x);
  const std::vector<double> a = vamp->kl_to_prior(qm, ql).to(kFloat64).to_vector<double>();
  const std::vector<double> b = vamp->kl_to_prior(qm, ql).to(kFloat64).to_vector<double>();
  CHECK(a == b);
  const std::vector<double> standard = (sum(1.0 + ql - qm * qm - exp(ql), {1}) * -0.5).to(kFloat64).to_vector<double>();
  CHECK(a != standard);  // the mixture prior, not N(0, I)
}
