// The autoencoder family: architectures equal to the PyTorch references, the linear AE learning
// PCA's subspace, sparse and variational objectives, config round trips, runs that train, load and
// resume bit for bit.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "helpers.h"

using namespace latent;
using latent::testing::check_values;
namespace fs = std::filesystem;

extern "C" void dsyev_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                       double* work, const int* lwork, int* info);

namespace {

std::vector<std::pair<std::string, Shape>> shapes_of(const nn::Module& m) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& [name, t] : m.named_parameters()) out.emplace_back(name, t.shape());
  return out;
}

/// Eigenvectors (columns, ascending eigenvalues) of a symmetric n x n float64 matrix, via LAPACK.
std::vector<double> eigenvectors(std::vector<double> a, int n, std::vector<double>& values) {
  values.assign(static_cast<size_t>(n), 0.0);
  int lwork = -1, info = 0;
  double query = 0;
  dsyev_("V", "U", &n, a.data(), &n, values.data(), &query, &lwork, &info);
  lwork = static_cast<int>(query);
  std::vector<double> work(static_cast<size_t>(lwork));
  dsyev_("V", "U", &n, a.data(), &n, values.data(), work.data(), &lwork, &info);
  REQUIRE(info == 0);
  return a;  // column-major: column j is eigenvector j
}

/// Orthonormal basis (Gram-Schmidt) of the k columns of a (n x k, row-major).
std::vector<double> orthonormalize(std::vector<double> a, int n, int k) {
  for (int j = 0; j < k; ++j) {
    for (int p = 0; p < j; ++p) {
      double dot = 0;
      for (int i = 0; i < n; ++i) dot += a[i * k + j] * a[i * k + p];
      for (int i = 0; i < n; ++i) a[i * k + j] -= dot * a[i * k + p];
    }
    double norm = 0;
    for (int i = 0; i < n; ++i) norm += a[i * k + j] * a[i * k + j];
    norm = std::sqrt(norm);
    for (int i = 0; i < n; ++i) a[i * k + j] /= norm;
  }
  return a;
}

}  // namespace

TEST_CASE("default architectures match torch_bench.py parameter names and shapes") {
  models::AEConfig deep;
  auto d = models::make_autoencoder(deep);
  std::vector<std::pair<std::string, Shape>> expected_deep = {
      {"encoder.0.weight", {128, 784}}, {"encoder.0.bias", {128}}, {"encoder.2.weight", {64, 128}},
      {"encoder.2.bias", {64}},         {"decoder.0.weight", {128, 64}}, {"decoder.0.bias", {128}},
      {"decoder.2.weight", {784, 128}}, {"decoder.2.bias", {784}}};
  CHECK(shapes_of(*d) == expected_deep);
  CHECK(d->parameter_count() == 218192);

  models::AEConfig conv;
  conv.model = "conv";
  std::vector<std::pair<std::string, Shape>> expected_conv = {
      {"encoder.0.weight", {16, 1, 3, 3}}, {"encoder.0.bias", {16}}, {"encoder.2.weight", {32, 16, 3, 3}},
      {"encoder.2.bias", {32}},            {"decoder.0.weight", {32, 16, 3, 3}}, {"decoder.0.bias", {16}},
      {"decoder.2.weight", {16, 1, 3, 3}}, {"decoder.2.bias", {1}}};
  auto c = models::make_autoencoder(conv);
  CHECK(shapes_of(*c) == expected_conv);
  Tensor x = rand({2, 784});
  CHECK(c->forward(x).shape() == Shape{2, 784});
  CHECK(c->encode(x).shape() == Shape{2, 32 * 7 * 7});

  models::AEConfig vae;
  vae.model = "vae";
  std::vector<std::pair<std::string, Shape>> expected_vae = {
      {"fc1.weight", {400, 784}}, {"fc1.bias", {400}}, {"fc21.weight", {20, 400}}, {"fc21.bias", {20}},
      {"fc22.weight", {20, 400}}, {"fc22.bias", {20}}, {"fc3.weight", {400, 20}},  {"fc3.bias", {400}},
      {"fc4.weight", {784, 400}}, {"fc4.bias", {784}}};
  CHECK(shapes_of(*models::make_autoencoder(vae)) == expected_vae);
}

TEST_CASE("every model of the family builds, runs and gives finite gradients") {
  for (const std::string& name : models::autoencoder_names()) {
    CAPTURE(name);
    models::AEConfig cfg;
    cfg.model = name;
    cfg.batch_norm = name == "conv";
    auto m = models::make_autoencoder(cfg);
    Tensor x = rand({4, 784});
    models::AELoss loss = m->loss(x, x, 0.5);
    CHECK(std::isfinite(loss.total.item<double>()));
    loss.total.backward();
    for (const auto& [pname, p] : m->named_parameters()) {
      CAPTURE(pname);
      REQUIRE(p.grad().defined());
      bool finite = true;
      for (double g : p.grad().to_vector<double>()) finite = finite && std::isfinite(g);
      CHECK(finite);
    }
    CHECK(m->forward(x).shape() == Shape{4, 784});
  }
}

TEST_CASE("the linear autoencoder learns the principal subspace") {
  // 600 centred points in 12-d with variances 25, 16, 9 along 3 random directions and 0.01 elsewhere.
  const int n = 600, dim = 12, k = 3;
  manual_seed(7);
  Tensor basis = randn({dim, dim}, kFloat64);
  std::vector<double> q = orthonormalize(basis.to_vector<double>(), dim, dim);
  Tensor rotation = from_vector(q, {dim, dim});
  std::vector<double> scales(dim, 0.1);
  scales[0] = 5;
  scales[1] = 4;
  scales[2] = 3;
  Tensor z = randn({n, dim}, kFloat64) * from_vector(scales, {dim});
  Tensor data = matmul(z, rotation.t());
  data = data - mean(data, {0}, true);

  models::AEConfig cfg;
  cfg.model = "linear";
  cfg.input_dim = dim;
  cfg.latent_dim = k;
  auto ae = models::make_autoencoder(cfg);
  ae->to(kFloat64);
  optim::Adam opt(ae->parameters(), optim::AdamOptions(0.01));
  for (int step = 0; step < 3000; ++step) {
    opt.zero_grad();
    ae->loss(data, data, 0).total.backward();
    opt.step();
  }
  // PCA: top-3 eigenvectors of the covariance, by LAPACK.
  Tensor cov = matmul(data.t(), data) / static_cast<double>(n);
  std::vector<double> values;
  std::vector<double> vecs = eigenvectors(cov.to_vector<double>(), dim, values);
  std::vector<double> pca(dim * k);
  for (int i = 0; i < dim; ++i)
    for (int j = 0; j < k; ++j) pca[i * k + j] = vecs[(dim - 1 - j) * dim + i];
  CHECK(values[dim - 3] / values[dim - 4] > 100.0);  // a clear spectral gap
  // Decoder weight (dim x k): its column space is the learned subspace.
  Tensor w = ae->named_parameters()[2].second;
  REQUIRE(w.shape() == Shape{dim, k});
  std::vector<double> learned = orthonormalize(w.to_vector<double>(), dim, k);
  // Principal angles: singular values of P^T L are the cosines.
  std::vector<double> m(k * k, 0.0);
  for (int a = 0; a < k; ++a)
    for (int b = 0; b < k; ++b)
      for (int i = 0; i < dim; ++i) m[a * k + b] += pca[i * k + a] * learned[i * k + b];
  std::vector<double> mtm(k * k, 0.0);
  for (int a = 0; a < k; ++a)
    for (int b = 0; b < k; ++b)
      for (int i = 0; i < k; ++i) mtm[a * k + b] += m[i * k + a] * m[i * k + b];
  std::vector<double> sv;
  eigenvectors(mtm, k, sv);
  const double largest_angle = std::acos(std::min(1.0, std::sqrt(std::max(0.0, sv[0]))));
  INFO("largest principal angle " << largest_angle << " rad");
  CHECK(largest_angle < 0.05);
}

TEST_CASE("sparsity penalties lower the mean code activation") {
  manual_seed(3);
  Tensor x = rand({256, 64});
  auto mean_activation = [&](const std::string& kind, double weight) {
    models::AEConfig cfg;
    cfg.model = "sparse";
    cfg.input_dim = 64;
    cfg.latent_dim = 32;
    cfg.sparsity = kind;
    cfg.sparsity_weight = weight;
    cfg.rho = 0.05;
    manual_seed(11);
    auto m = models::make_autoencoder(cfg);
    optim::Adam opt(m->parameters(), optim::AdamOptions(0.005));
    double act = 0;
    for (int s = 0; s < 300; ++s) {
      opt.zero_grad();
      models::AELoss l = m->loss(x, x, 0);
      l.total.backward();
      opt.step();
      act = l.mean_activation;
    }
    return act;
  };
  const double l1_off = mean_activation("l1", 0.0), l1_on = mean_activation("l1", 0.05);
  INFO("l1: " << l1_off << " -> " << l1_on);
  CHECK(l1_on < 0.5 * l1_off);
  const double kl_off = mean_activation("kl", 0.0), kl_on = mean_activation("kl", 1.0);
  INFO("kl: " << kl_off << " -> " << kl_on);
  CHECK(kl_on < kl_off);
  CHECK(std::abs(kl_on - 0.05) < std::abs(kl_off - 0.05));
}

TEST_CASE("VAE: ELBO terms, prior samples and the importance-weighted bound") {
  models::AEConfig cfg;
  cfg.model = "vae";
  cfg.input_dim = 20;
  cfg.latent_dim = 4;
  cfg.hidden = {32};
  manual_seed(5);
  auto m = models::make_autoencoder(cfg);
  auto& vae = static_cast<models::VariationalAutoencoder&>(*m);
  // Data with a 2-d latent structure, so the posterior carries information (no collapse).
  Tensor x = sigmoid(matmul(randn({64, 2}), randn({2, 20})) * 3.0);
  optim::Adam opt(m->parameters(), optim::AdamOptions(0.01));
  double first = 0, last = 0;
  for (int s = 0; s < 400; ++s) {
    opt.zero_grad();
    models::AELoss l = m->loss(x, x, 1.0);
    l.total.backward();
    opt.step();
    if (s == 0) first = l.total.item<double>();
    last = l.total.item<double>();
  }
  CHECK(last < first);
  CHECK(vae.sample(5).shape() == Shape{5, 20});
  // -ELBO >= IWAE-k estimate of -log p(x), and the bound tightens with k (in expectation; 64 images).
  Generator g1(1), g2(2);
  double elbo = 0;
  for (int r = 0; r < 20; ++r) elbo += m->test_metric_sum(x) / 20.0;
  const double iw1 = vae.importance_weighted_nll_sum(x, 1, &g1), iw64 = vae.importance_weighted_nll_sum(x, 64, &g2);
  INFO("-elbo " << elbo << ", iwae-1 " << iw1 << ", iwae-64 " << iw64);
  CHECK(iw64 <= elbo);
  CHECK(iw64 < iw1);
  CHECK(std::abs(iw1 - elbo) < 0.1 * std::abs(elbo));
  // KL warm-up: at progress 0 the KL term carries no weight.
  models::AEConfig warm = cfg;
  warm.kl_warmup = 2;
  manual_seed(5);
  auto w = models::make_autoencoder(warm);
  manual_seed(9);
  models::AELoss l0 = w->loss(x, x, 0.0);
  CHECK(std::abs(l0.total.item<double>() - l0.reconstruction * 64) < 1e-3 * std::abs(l0.reconstruction * 64));
}

TEST_CASE("tied weights share the encoder's matrices") {
  models::AEConfig cfg;
  cfg.tied = true;
  auto m = models::make_autoencoder(cfg);
  CHECK(m->parameter_count() == 784 * 128 + 128 + 128 * 64 + 64 + 128 + 784);
  auto names = shapes_of(*m);
  CHECK(names.back().first == "decoder.2.bias");
  Tensor x = rand({3, 784});
  m->loss(x, x, 0).total.backward();
  CHECK(m->named_parameters()[0].second.grad().defined());
}

TEST_CASE("config round trip and errors") {
  models::AEConfig cfg;
  cfg.model = "sparse";
  cfg.hidden = {256, 128};
  cfg.sparsity = "kl";
  cfg.rho = 0.1;
  cfg.likelihood = models::Likelihood::Gaussian;
  models::AEConfig back = models::AEConfig::from_json(json::parse(cfg.to_json().dump()));
  CHECK(back.to_json() == cfg.to_json());
  CHECK_THROWS_WITH_SUBSTR(models::make_autoencoder([] { models::AEConfig c; c.model = "foo"; return c; }()),
                           "[autoencoder] unknown model 'foo'");
  CHECK_THROWS_WITH_SUBSTR(models::AEConfig::from_json(json::parse("{\"latent_dim\": \"x\"}")),
                           "[config] field 'latent_dim': expected an integer");
  CHECK_THROWS_WITH_SUBSTR(models::make_autoencoder([] { models::AEConfig c; c.model = "conv"; c.input_dim = 100; return c; }()),
                           "convolutional models need one-channel images");
}

TEST_CASE("roc_auc") {
  CHECK(models::roc_auc({0.1, 0.2, 0.8, 0.9}, {false, false, true, true}) == 1.0);
  CHECK(models::roc_auc({0.9, 0.8, 0.2, 0.1}, {false, false, true, true}) == 0.0);
  CHECK(models::roc_auc({0.5, 0.5}, {false, true}) == 0.5);
  CHECK(std::abs(models::roc_auc({0.1, 0.4, 0.35, 0.8}, {false, false, true, true}) - 0.75) < 1e-12);
  CHECK_THROWS_WITH_SUBSTR(models::roc_auc({0.1}, {true}), "[roc_auc] needs both positives and negatives");
}

TEST_CASE("a run trains on CSV data, loads back, and resumes bit for bit") {
  latent::testing::TempDir tmp;
  const std::string dir = tmp.path.string();
  // 200 rows, 6 features on a 2-d manifold, a label column.
  {
    std::ofstream f(dir + "/data.csv");
    f << "a,b,c,d,e,f,label\n";
    Generator g(3);
    for (int i = 0; i < 200; ++i) {
      const double u = g.uniform(), v = g.uniform();
      f << u << "," << v << "," << u + v << "," << u - v << "," << u * v << "," << 0.5 * u << "," << (u > v ? 1 : 0) << "\n";
    }
  }
  models::TrainOptions o;
  o.model.model = "deep";
  o.model.latent_dim = 2;
  o.data = dir + "/data.csv";
  o.label_column = "label";
  o.batch_size = 32;
  o.progress = false;
  o.epochs = 3;
  o.out = dir + "/full";
  FILE* sink = std::fopen("/dev/null", "w");
  models::train(o, sink);
  models::TrainOptions first = o;
  first.epochs = 2;
  first.out = dir + "/part";
  models::train(first, sink);
  models::TrainOptions resume = o;
  resume.out = "";
  resume.resume = dir + "/part";
  models::train(resume, sink);
  std::fclose(sink);
  auto lines = [](const std::string& path) {
    std::vector<json::Value> out;
    std::ifstream f(path);
    for (std::string line; std::getline(f, line);) out.push_back(json::parse(line));
    return out;
  };
  auto full = lines(dir + "/full/metrics.jsonl"), resumed = lines(dir + "/part/metrics.jsonl");
  REQUIRE(full.size() == 3);
  REQUIRE(resumed.size() == 3);
  for (size_t e = 0; e < 3; ++e) {
    CHECK(full[e].at("train_loss").as_double() == resumed[e].at("train_loss").as_double());
    CHECK(full[e].at("test_loss").as_double() == resumed[e].at("test_loss").as_double());
  }
  CHECK(full[2].at("train_loss").as_double() < full[0].at("train_loss").as_double());

  models::LoadedRun run = models::load(dir + "/full");
  CHECK(run.config.model == "deep");
  CHECK(run.model->parameters().size() == 8);
  CHECK(run.config_json.at("anomaly").at("threshold").as_double() > 0);
  CHECK_THROWS_WITH_SUBSTR(models::load(dir + "/missing"), "[load] run directory");
  // resource limits: a config.json claiming layers far wider than model.safetensors holds fails
  // before the model is built (1e9 x 6 floats would be 24 GB), naming the file and the counts.
  fs::create_directories(dir + "/wide");
  fs::copy_file(dir + "/full/model.safetensors", dir + "/wide/model.safetensors");
  json::Value config = run.config_json;
  config["model"]["hidden"] = json::parse("[1000000000, 4]");
  std::ofstream(dir + "/wide/config.json") << config.dump();
  CHECK_THROWS_WITH_SUBSTR(models::load(dir + "/wide"),
                           "[load] " + dir + "/wide/config.json: model 'deep' with input_dim 6, hidden [1000000000, 4] "
                           "and latent_dim 2 needs at least 10000000008 weights, but model.safetensors holds 80 values");
  CHECK_THROWS_WITH_SUBSTR(models::train(o, nullptr), "already holds a run");
}

namespace {

/// Float64 references for the loss test below (tests/helpers.h: Rows, affine), every layer
/// computed here from the model's parameters read by name.
using latent::testing::affine;
using latent::testing::map_rows;
using latent::testing::named_parameter;
using latent::testing::Rows;
using latent::testing::rows_of;

/// x W^T + b for the Linear layer `prefix` (prefix.weight (out, in), prefix.bias (out)).
Rows dense(const nn::Module& m, const std::string& prefix, const Rows& x) {
  return affine(x, named_parameter(m, prefix + ".weight"), named_parameter(m, prefix + ".bias"));
}

double relu_d(double v) { return v > 0 ? v : 0; }
double sigmoid_d(double v) { return 1 / (1 + std::exp(-v)); }

/// The dense models' forward (hidden {5}: Linear-ReLU-Linear-code activation, Linear-ReLU-Linear-Sigmoid).
Rows dense_code(const nn::Module& m, const Rows& x, bool sigmoid_code) {
  return map_rows(dense(m, "encoder.2", map_rows(dense(m, "encoder.0", x), relu_d)), sigmoid_code ? sigmoid_d : relu_d);
}
Rows dense_decode(const nn::Module& m, const Rows& z) {
  return map_rows(dense(m, "decoder.2", map_rows(dense(m, "decoder.0", z), relu_d)), sigmoid_d);
}

double mse(const Rows& a, const Rows& b) {
  double s = 0;
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[i].size(); ++j, ++n) s += (a[i][j] - b[i][j]) * (a[i][j] - b[i][j]);
  return s / static_cast<double>(n);
}

void check_near(double got, double expected, const std::string& what) {
  INFO(what << ": latent " << got << ", float64 reference " << expected);
  CHECK(std::abs(got - expected) <= 1e-6 + 2e-5 * std::abs(expected));
}

models::AEConfig tiny_config(const std::string& model) {
  models::AEConfig c;
  c.model = model;
  c.input_dim = 6;
  c.hidden = {5};
  c.latent_dim = 3;
  return c;
}

}  // namespace

TEST_CASE("each model's loss.total equals its formula, computed in float64 from the parameters") {
  // A fixed batch of 4 samples of 6 values in (0.05, 0.95).
  Generator data_gen(17);
  const Tensor x = rand({4, 6}, kFloat32, &data_gen) * 0.9 + 0.05;
  const Rows xr = rows_of(x);

  SUBCASE("deep: mean squared error over all elements") {
    manual_seed(1);
    auto m = models::make_autoencoder(tiny_config("deep"));
    models::AELoss l = m->loss(x, x, 0);
    const double expected = mse(dense_decode(*m, dense_code(*m, xr, false)), xr);
    check_near(l.total.item<double>(), expected, "total");
    check_near(l.reconstruction, expected, "reconstruction");
  }
  SUBCASE("denoising: the reconstruction of the corrupted input against the clean target") {
    manual_seed(2);
    auto m = models::make_autoencoder(tiny_config("denoising"));
    Generator noise_gen(5);
    const Tensor noisy = clamp(x + randn({4, 6}, kFloat32, &noise_gen) * 0.3, 0.0, 1.0);
    const Rows nr = rows_of(noisy);
    const Rows recon = dense_decode(*m, dense_code(*m, nr, false));
    const double expected = mse(recon, xr);
    check_near(m->loss(noisy, x, 0).total.item<double>(), expected, "total");
    // The target is what the loss compares with: against the noisy input the value differs.
    CHECK(std::abs(mse(recon, nr) - expected) > 1e-3 * expected);
  }
  SUBCASE("sparse, L1: MSE + weight * (batch mean of each code's L1 norm)") {
    models::AEConfig c = tiny_config("sparse");
    c.sparsity_weight = 0.3;
    manual_seed(3);
    auto m = models::make_autoencoder(c);
    models::AELoss l = m->loss(x, x, 0);
    const Rows code = dense_code(*m, xr, false);
    const double recon = mse(dense_decode(*m, code), xr);
    double l1 = 0, activation = 0;
    for (const auto& r : code)
      for (double v : r) {
        l1 += std::abs(v) / 4.0;
        activation += v / 12.0;
      }
    REQUIRE(l1 > 0.05);  // the penalty carries weight in this check
    check_near(l.total.item<double>(), recon + 0.3 * l1, "total");
    check_near(l.reconstruction, recon, "reconstruction");
    check_near(l.penalty, 0.3 * l1, "penalty");
    check_near(l.mean_activation, activation, "mean activation");
  }
  SUBCASE("sparse, KL: MSE + weight * sum_j KL(rho || mean activation of unit j), sigmoid codes") {
    models::AEConfig c = tiny_config("sparse");
    c.sparsity = "kl";
    c.sparsity_weight = 0.5;
    c.rho = 0.1;
    manual_seed(4);
    auto m = models::make_autoencoder(c);
    models::AELoss l = m->loss(x, x, 0);
    const Rows code = dense_code(*m, xr, true);
    const double recon = mse(dense_decode(*m, code), xr);
    double kl = 0;
    for (size_t j = 0; j < 3; ++j) {
      double rho_hat = 0;
      for (const auto& r : code) rho_hat += r[j] / 4.0;
      kl += 0.1 * std::log(0.1 / rho_hat) + 0.9 * std::log(0.9 / (1 - rho_hat));
    }
    REQUIRE(kl > 0.05);
    check_near(l.total.item<double>(), recon + 0.5 * kl, "total");
    check_near(l.penalty, 0.5 * kl, "penalty");
  }
  for (const bool bernoulli : {true, false}) {
    CAPTURE(bernoulli);
    // VAE: sum over the batch of the reconstruction NLL at z = mu + eps * exp(logvar / 2), plus
    // beta * min(1, progress / kl_warmup) times KL(q(z|x) || N(0, I)) = -1/2 sum(1 + logvar - mu^2 - exp(logvar)).
    models::AEConfig c = tiny_config("vae");
    c.latent_dim = 2;
    c.beta = 0.7;
    c.kl_warmup = 2;
    c.likelihood = bernoulli ? models::Likelihood::Bernoulli : models::Likelihood::Gaussian;
    manual_seed(6);
    auto m = models::make_autoencoder(c);
    manual_seed(99);
    models::AELoss l = m->loss(x, x, 0.5);  // KL weight 0.7 * 0.25
    manual_seed(99);
    const Rows eps = rows_of(randn({4, 2}, kFloat32));  // the loss's one draw, repeated
    const Rows h = map_rows(dense(*m, "fc1", xr), relu_d);
    const Rows mu = dense(*m, "fc21", h), logvar = dense(*m, "fc22", h);
    Rows z = mu;
    double kl = 0;
    for (size_t i = 0; i < 4; ++i)
      for (size_t j = 0; j < 2; ++j) {
        z[i][j] = mu[i][j] + eps[i][j] * std::exp(0.5 * logvar[i][j]);
        kl += -0.5 * (1 + logvar[i][j] - mu[i][j] * mu[i][j] - std::exp(logvar[i][j]));
      }
    const Rows r = map_rows(dense(*m, "fc4", map_rows(dense(*m, "fc3", z), relu_d)), sigmoid_d);
    double nll = 0;
    for (size_t i = 0; i < 4; ++i)
      for (size_t j = 0; j < 6; ++j)
        nll += bernoulli ? -(xr[i][j] * std::log(r[i][j]) + (1 - xr[i][j]) * std::log(1 - r[i][j]))
                         : 0.5 * (xr[i][j] - r[i][j]) * (xr[i][j] - r[i][j]) + 0.5 * std::log(2 * M_PI);
    check_near(l.total.item<double>(), nll + 0.7 * 0.25 * kl, "total");
    check_near(l.reconstruction, nll / 4, "reconstruction per image");
    check_near(l.penalty, kl / 4, "KL per image");
    // At full weight (progress past the warm-up): BCE sum + beta * KL.
    manual_seed(99);
    check_near(m->loss(x, x, 3.0).total.item<double>(), nll + 0.7 * kl, "total after warm-up");
  }
}
