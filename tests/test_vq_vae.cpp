// VQ-VAE (models/ae/vq_vae.h): distances and nearest entries against brute force, every loss term
// against a float64 computation from the model's weights, the straight-through estimator's defined
// gradient against finite differences of the function it stands for, gradchecks of the codebook
// and commitment losses, the EMA update against a hand computation, codebook usage, training, and
// the ONNX export (ArgMin + Gather) re-imported against the module.
#include <cmath>
#include <map>
#include <set>

#include "helpers.h"
#include "onnx_io/onnx_export.h"
#include "onnx_io/onnx_import.h"
#include "onnx_io/onnx_model.h"

using namespace latent;

namespace {

using latent::testing::affine;
using latent::testing::map_rows;
using latent::testing::Rows;
using latent::testing::rows_of;

double relu(double v) { return v > 0 ? v : 0; }
double sigmoid(double v) { return 1 / (1 + std::exp(-v)); }

size_t nearest(const std::vector<double>& z, const Rows& codebook) {
  size_t best = 0;
  double best_d = INFINITY;
  for (size_t k = 0; k < codebook.size(); ++k) {
    double d = 0;
    for (size_t j = 0; j < z.size(); ++j) d += (z[j] - codebook[k][j]) * (z[j] - codebook[k][j]);
    if (d < best_d) best_d = d, best = k;
  }
  return best;
}

models::AEConfig tiny(const std::string& update) {
  models::AEConfig c;
  c.model = "vq-vae";
  c.input_dim = 6;
  c.hidden = {5};
  c.latent_dim = 4;
  c.codebook_dim = 2;
  c.codebook_size = 3;
  c.commitment = 0.25;
  c.codebook_update = update;
  return c;
}

}  // namespace

TEST_CASE("vq-vae: distances and nearest entries against brute force") {
  Generator gen(2);
  const Tensor z = randn({7, 3}, kFloat64, &gen), e = randn({5, 3}, kFloat64, &gen);
  const Rows Z = rows_of(z), E = rows_of(e);
  std::vector<double> expected;
  std::vector<int64_t> expected_idx;
  for (const auto& row : Z) {
    for (const auto& entry : E) {
      double d = 0;
      for (size_t j = 0; j < 3; ++j) d += (row[j] - entry[j]) * (row[j] - entry[j]);
      expected.push_back(d);
    }
    expected_idx.push_back(static_cast<int64_t>(nearest(row, E)));
  }
  latent::testing::check_values(models::codebook_distances(z, e), expected, 1e-12, 1e-12);
  CHECK(models::nearest_entries(z, e).to_vector<int64_t>() == expected_idx);
  CHECK_THROWS_WITH_SUBSTR(models::codebook_distances(z, randn({5, 2})), "[vq-vae] expected codes (R, D) and a codebook (K, D); got [7, 3] and [5, 2]");
}

TEST_CASE("vq-vae: each loss term against a float64 computation from the weights") {
  for (const char* update : {"loss", "ema"}) {
    CAPTURE(update);
    manual_seed(4);
    auto model = std::make_shared<models::VQVAE>(tiny(update));
    model->eval();  // no codebook initialisation or EMA step: the loss of the weights as they are
    Generator gen(8);
    const Tensor x = rand({4, 6}, kFloat32, &gen);
    // Spread the codebook over the codes so several entries are chosen.
    {
      NoGradGuard no_grad;
      Tensor rows = model->encode_continuous(x).reshape({-1, 2});
      model->codebook.copy_(index_select(rows, 0, from_vector(std::vector<int64_t>{0, 3, 6}, {3})) + 0.01);
    }
    const models::AELoss loss = model->loss(x, x, 0);
    const Rows X = rows_of(x), cb = rows_of(model->codebook);
    const Rows z = affine(map_rows(affine(X, model->fc1->weight, model->fc1->bias), relu), model->fc21->weight, model->fc21->bias);
    Rows q = z;
    double commit = 0;
    std::vector<double> count(3, 0.0);
    for (auto& row : q)
      for (size_t part = 0; part < 2; ++part) {
        const std::vector<double> piece{row[2 * part], row[2 * part + 1]};
        const size_t k = nearest(piece, cb);
        count[k] += 1;
        for (size_t j = 0; j < 2; ++j) {
          commit += (piece[j] - cb[k][j]) * (piece[j] - cb[k][j]);
          row[2 * part + j] = cb[k][j];
        }
      }
    const Rows recon = map_rows(affine(map_rows(affine(q, model->fc3->weight, model->fc3->bias), relu), model->fc4->weight, model->fc4->bias), sigmoid);
    double rec = 0;
    for (size_t i = 0; i < 4; ++i)
      for (size_t j = 0; j < 6; ++j) rec += (recon[i][j] - X[i][j]) * (recon[i][j] - X[i][j]);
    rec /= 4;
    commit /= 4;
    double entropy = 0, used = 0;
    for (double c : count)
      if (c > 0) entropy -= c / 8 * std::log(c / 8), used += 1;
    CHECK(loss.reconstruction == doctest::Approx(rec).epsilon(1e-5));
    CHECK(loss.penalty == doctest::Approx(0.25 * commit).epsilon(1e-5));
    std::map<std::string, double> terms(loss.terms.begin(), loss.terms.end());
    CHECK(terms.at("commitment_loss") == doctest::Approx(commit).epsilon(1e-5));
    CHECK(terms.at("perplexity") == doctest::Approx(std::exp(entropy)).epsilon(1e-12));
    CHECK(terms.at("used_entries") == used);
    CHECK(used >= 2);
    const bool by_loss = std::string(update) == "loss";
    CHECK(terms.count("codebook_loss") == (by_loss ? 1u : 0u));
    if (by_loss) CHECK(terms.at("codebook_loss") == doctest::Approx(commit).epsilon(1e-5));  // same value, other gradient
    CHECK(loss.total.item<double>() == doctest::Approx(rec + 0.25 * commit + (by_loss ? commit : 0)).epsilon(1e-5));
    // The forward pass (what export traces) decodes the same quantized codes.
    NoGradGuard no_grad;
    latent::testing::check_values(model->forward(x), [&] {
      std::vector<double> flat;
      for (const auto& r : recon) flat.insert(flat.end(), r.begin(), r.end());
      return flat;
    }(), 1e-6, 1e-5);
  }
}

TEST_CASE("vq-vae: the straight-through estimator's defined gradient and the loss gradients") {
  Generator gen(5);
  const Tensor z_e = randn({3, 4}, kFloat64, &gen).requires_grad_(true);
  const Tensor z_q = randn({3, 4}, kFloat64, &gen).requires_grad_(true);
  const Tensor w = randn({3, 4}, kFloat64, &gen);
  // f(u) = sum(w * u^3) at u = straight_through(z_e, z_q): forward z_q's values ...
  Tensor u = models::straight_through(z_e, z_q);
  latent::testing::check_close(u, z_q.detach(), 1e-15, 1e-15);  // z_e + (z_q - z_e): z_q up to rounding
  sum(w * u * u * u).backward();
  // ... backward, d/dz_e of f(z_e + c) with c = z_q - z_e held constant: finite differences.
  const std::vector<double> ze = z_e.detach().to_vector<double>(), c = (z_q - z_e).detach().to_vector<double>(),
                            wv = w.to_vector<double>();
  auto f = [&](const std::vector<double>& v) {
    double s = 0;
    for (size_t i = 0; i < v.size(); ++i) s += wv[i] * std::pow(v[i] + c[i], 3);
    return s;
  };
  std::vector<double> numeric;
  for (size_t i = 0; i < ze.size(); ++i) {
    std::vector<double> plus = ze, minus = ze;
    plus[i] += 1e-6;
    minus[i] -= 1e-6;
    numeric.push_back((f(plus) - f(minus)) / 2e-6);
  }
  latent::testing::check_values(z_e.grad(), numeric, 1e-6, 1e-6);
  CHECK((!z_q.grad().defined() || max(abs(z_q.grad())).item<double>() == 0));
  // Gradchecks of the codebook loss (in the codebook) and the commitment loss (in z_e) with the
  // chosen entries held fixed, and of the distances.
  const Tensor codebook = randn({5, 4}, kFloat64, &gen).requires_grad_(true);
  const Tensor idx = models::nearest_entries(z_e.detach(), codebook.detach());
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) {
    Tensor g = z_e.detach() - index_select(in[0], 0, idx);
    return sum(g * g) / 3.0;
  }, std::vector<Tensor>{codebook});
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) {
    Tensor g = in[0] - index_select(codebook, 0, idx).detach();
    return sum(g * g) / 3.0;
  }, std::vector<Tensor>{z_e});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return sum(models::codebook_distances(in[0], in[1]) * 0.1); },
                  (std::vector<Tensor>{z_e, codebook}));
  // In the model (--codebook-update loss) the codebook's gradient is the codebook loss's alone:
  // 2 / N sum over the rows assigned to k of (e_k - z_e), never the decoder's.
  manual_seed(6);
  auto model = std::make_shared<models::VQVAE>(tiny("loss"));
  model->eval();
  const Tensor x = rand({4, 6}, kFloat32, &gen);
  model->loss(x, x, 0).total.backward();
  const Rows rows = rows_of(model->encode_continuous(x).reshape({-1, 2}).detach()), cb = rows_of(model->codebook.detach());
  std::vector<double> expected(6, 0.0);
  for (const auto& r : rows) {
    const size_t k = nearest(r, cb);
    for (size_t j = 0; j < 2; ++j) expected[k * 2 + j] += 2.0 / 4 * (cb[k][j] - r[j]);
  }
  latent::testing::check_values(model->codebook.grad(), expected, 1e-6, 1e-5);
}

TEST_CASE("vq-vae: the EMA update against a hand computation, and codebook usage") {
  Tensor codebook = from_vector(std::vector<double>{0, 0, 1, 1, 5, 5}, {3, 2});
  Tensor embed_sum = codebook.clone(), cluster_size = from_vector(std::vector<double>{1, 1, 1}, {3});
  const Tensor z = from_vector(std::vector<double>{0.2, 0, 0.8, 1.2, 1.0, 1.0, 0, -0.2}, {4, 2});
  const Tensor idx = models::nearest_entries(z, codebook);
  CHECK(idx.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 1, 0});
  const double decay = 0.9, eps = 1e-5;
  models::ema_codebook_update(codebook, cluster_size, embed_sum, z, idx, decay, eps);
  // By hand: counts (2, 2, 0), sums ((0.2, -0.2), (1.8, 2.2), (0, 0)).
  const std::vector<double> cs{0.9 + 0.2, 0.9 + 0.2, 0.9};
  const std::vector<double> es{0.02, -0.02, 0.9 + 0.18, 0.9 + 0.22, 4.5, 4.5};
  latent::testing::check_values(cluster_size, cs, 1e-15, 1e-14);
  latent::testing::check_values(embed_sum, es, 1e-15, 1e-14);
  const double n = 3.1;
  std::vector<double> expected;
  for (size_t k = 0; k < 3; ++k)
    for (size_t j = 0; j < 2; ++j) expected.push_back(es[k * 2 + j] / ((cs[k] + eps) / (n + 3 * eps) * n));
  latent::testing::check_values(codebook, expected, 1e-15, 1e-13);
  CHECK_THROWS_WITH_SUBSTR(models::ema_codebook_update(codebook, cluster_size, embed_sum, z, idx, 1.0), "ema decay must be in [0, 1); got 1");

  const models::CodebookUsage u = models::codebook_usage(from_vector(std::vector<int64_t>{0, 0, 1, 3}, {4}), 5);
  CHECK(u.used == 3);
  CHECK(u.perplexity == doctest::Approx(std::exp(-(0.5 * std::log(0.5) + 2 * 0.25 * std::log(0.25)))).epsilon(1e-14));
  CHECK(models::codebook_usage(from_vector(std::vector<int64_t>{2, 2}, {2}), 3).perplexity == doctest::Approx(1.0));
  CHECK_THROWS_WITH_SUBSTR(models::codebook_usage(from_vector(std::vector<int64_t>{7}, {1}), 3),
                           "[vq-vae] index 7 is outside a codebook of 3 entries");
}

TEST_CASE("vq-vae: the first training batch sets the codebook, EMA moves it, training lowers the loss") {
  models::AEConfig c = tiny("ema");
  c.codebook_size = 8;
  c.input_dim = 12;
  c.hidden = {16};
  manual_seed(3);
  auto model = std::make_shared<models::VQVAE>(c);
  Generator gen(1);
  const Tensor x = rand({32, 12}, kFloat32, &gen);
  // One training call: the codebook becomes 8 of the batch's code pieces, then one EMA step.
  const Tensor rows = model->encode_continuous(x).reshape({-1, 2}).detach();
  manual_seed(10);
  model->loss(x, x, 0);
  CHECK(model->initialized.item<double>() == 1);
  manual_seed(10);
  Tensor cb = index_select(rows, 0, from_vector([&] {
                auto p = randperm(64).to_vector<int64_t>();
                p.resize(8);
                return p;
              }(), {8})), es = cb.clone(), cs = ones({8});
  models::ema_codebook_update(cb, cs, es, rows, models::nearest_entries(rows, cb), c.ema_decay);
  latent::testing::check_close(model->codebook, cb, 1e-6, 1e-5);
  latent::testing::check_close(model->ema_cluster_size, cs, 1e-6, 1e-5);
  for (const char* update : {"ema", "loss"}) {
    CAPTURE(update);
    c.codebook_update = update;
    manual_seed(9);
    auto m = std::make_shared<models::VQVAE>(c);
    optim::Adam opt(m->parameters(), optim::AdamOptions(1e-2));
    m->loss(x, x, 0);  // sets the codebook
    auto recon_error = [&] {
      NoGradGuard no_grad;
      Tensor d = m->forward(x) - x;
      return sum(d * d).item<double>();
    };
    const double before = recon_error();
    double perplexity = 0;
    for (int step = 0; step < 300; ++step) {
      models::AELoss l = m->loss(x, x, 0);
      opt.zero_grad();
      l.total.backward();
      opt.step();
      perplexity = l.terms.back().first == "used_entries" ? l.terms[l.terms.size() - 2].second : 0;
    }
    const double after = recon_error();
    INFO("squared error " << before << " -> " << after << ", perplexity " << perplexity);
    CHECK(after < 0.6 * before);
    CHECK(perplexity > 2);
  }
}

TEST_CASE("vq-vae: config fields, errors, and the export round trip (ArgMin + Gather)") {
  models::AEConfig c = tiny("loss");
  c.codebook_size = 17;
  c.ema_decay = 0.95;
  c.commitment = 0.5;
  const models::AEConfig back = models::AEConfig::from_json(c.to_json());
  CHECK(back.codebook_size == 17);
  CHECK(back.codebook_dim == 2);
  CHECK(back.codebook_update == "loss");
  CHECK(back.ema_decay == 0.95);
  CHECK(back.commitment == 0.5);
  CHECK_FALSE(models::make_autoencoder(c)->variational());
  models::AEConfig bad = c;
  bad.latent_dim = 5;
  CHECK_THROWS_WITH_SUBSTR(models::make_autoencoder(bad), "[autoencoder] vq-vae needs latent_dim a multiple of codebook_dim "
                           "and codebook_size >= 1; got latent_dim 5, codebook_dim 2, codebook_size 17");
  json::Value j = c.to_json();
  j["codebook_update"] = "sometimes";
  CHECK_THROWS_WITH_SUBSTR(models::AEConfig::from_json(j), "codebook_update");
  // The export: ArgMin over the distances and Gather of the codebook, re-imported to the same outputs.
  latent::testing::TempDir dir;
  manual_seed(12);
  auto model = models::make_autoencoder(c);
  model->eval();
  for (auto part : {onnx::AutoencoderPart::Full, onnx::AutoencoderPart::Encoder}) {
    const onnx::ModelProto m = onnx::export_autoencoder(*model, part);
    std::multiset<std::string> ops;
    for (const auto& n : m.graph.node) ops.insert(n.op_type);
    CHECK(ops.count("ArgMin") == 1);
    CHECK(ops.count("Gather") == 1);
    const std::string path = dir / "vq.onnx";
    onnx::save_model(m, path);
    auto imported = onnx::import_model(path);
    const std::vector<Tensor> inputs = onnx::autoencoder_example_inputs(*model, part, 7, 3);
    NoGradGuard no_grad;
    const std::vector<Tensor> expected = onnx::autoencoder_part_function(*model, part)(inputs);
    const std::vector<Tensor> got = imported->run(inputs);
    REQUIRE(got.size() == expected.size());
    latent::testing::check_close(got[0], expected[0], 1e-6, 1e-5);
  }
}
