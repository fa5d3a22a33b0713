#include "vae_variants.h"

#include <cmath>

#include "../../ops/creation.h"
#include "../../ops/elementwise.h"
#include "../../ops/index.h"
#include "../../ops/join.h"
#include "../../ops/linalg.h"
#include "../../ops/reduce.h"
#include "../../ops/shape_ops.h"
#include "vq_vae.h"

namespace latent::models {

namespace {

constexpr double kLog2Pi = 1.8378770664093454836;

/// log N(z; mu, exp(logvar)) summed over the code dimensions, row by row: (N, D) -> (N).
Tensor diagonal_log_density(const Tensor& z, const Tensor& mu, const Tensor& logvar) {
  Tensor d = z - mu;
  return sum(d * d * exp(-logvar) + logvar + kLog2Pi, {1}) * -0.5;
}

Tensor standard_log_density(const Tensor& z) { return sum(z * z + kLog2Pi, {1}) * -0.5; }

/// mu + eps * sigma with eps ~ N(0, I).
Tensor reparameterize(const Tensor& mu, const Tensor& logvar) { return mu + randn_like(mu) * exp(logvar * 0.5); }

/// beta-TC-VAE: the KL of the ELBO replaced by MI + beta * TC + dimension-wise KL.
class BetaTcVAE : public DenseVAE {
 public:
  explicit BetaTcVAE(const AEConfig& c) : DenseVAE(c, "BetaTCVAE") {}
  AELoss loss(const Tensor& input, const Tensor& target, double) override {
    auto [mu, logvar] = encode_distribution(input);
    Tensor z = reparameterize(mu, logvar);
    Tensor recon = sum(reconstruction_nll(decode(z), target));
    const double n = static_cast<double>(input.size(0));
    TcTerms t = total_correlation_terms(z, mu, logvar);
    Tensor penalty = (t.mutual_information + t.total_correlation * config_.beta + t.dimension_kl) * n;
    AELoss out;
    out.total = recon + penalty;
    out.reconstruction = recon.item<double>() / n;
    out.penalty = penalty.item<double>() / n;
    out.terms = {{"mutual_information", t.mutual_information.item<double>()},
                 {"total_correlation", t.total_correlation.item<double>()},
                 {"dimension_kl", t.dimension_kl.item<double>()}};
    return out;
  }
};

/// IWAE: trains on the K-sample importance-weighted bound.
class IWAE : public DenseVAE {
 public:
  explicit IWAE(const AEConfig& c) : DenseVAE(c, "IWAE") {}
  AELoss loss(const Tensor& input, const Tensor& target, double) override {
    auto [mu, logvar] = encode_distribution(input);
    const int64_t k = config_.iwae_samples, n = input.size(0), d = mu.size(1);
    Tensor eps = randn({k, n, d}, mu.dtype());
    Tensor z = (mu.unsqueeze(0) + eps * exp(logvar * 0.5).unsqueeze(0)).reshape({k * n, d});
    Tensor x = expand(target.unsqueeze(0), {k, n, target.size(1)}).reshape({k * n, target.size(1)});
    Tensor log_px_z = -reconstruction_nll(decode(z), x);
    Tensor log_pz = standard_log_density(z);
    Tensor log_qz = sum(eps * eps + logvar.unsqueeze(0) + kLog2Pi, {2}).reshape({k * n}) * -0.5;
    Tensor log_w = (log_px_z + log_pz - log_qz).reshape({k, n});
    Tensor total = sum(negative_iwae_bound(log_w));
    AELoss out;
    out.total = total;
    out.reconstruction = -mean(log_px_z).item<double>();
    out.penalty = total.item<double>() / static_cast<double>(n) - out.reconstruction;
    out.terms = {{"iwae_bound", -total.item<double>() / static_cast<double>(n)}};
    return out;
  }
};

/// VampPrior VAE: p(z) = 1/K sum_k q(z | u_k) over learned pseudo-inputs u_k in [0, 1].
class VampVAE : public DenseVAE {
 public:
  explicit VampVAE(const AEConfig& c) : DenseVAE(c, "VampVAE") {
    pseudo_inputs = register_parameter("pseudo_inputs", rand({c.components, c.input_dim}) * 0.2 + 0.4);
  }
  /// The mixture components: q(z|u_k)'s mu and logvar, (K, latent) each.
  std::pair<Tensor, Tensor> components() { return encode_distribution(clamp(pseudo_inputs, 0.0, 1.0)); }
  Tensor log_prior(const Tensor& z) override {
    auto [mu_k, logvar_k] = components();
    return gaussian_mixture_log_density(z, mu_k, logvar_k);
  }
  Tensor kl_to_prior(const Tensor& mu, const Tensor& logvar) override {
    return sigma_point_kl(mu, logvar, [this](const Tensor& z) { return log_prior(z); });
  }
  Tensor sample_prior(int64_t n, Generator* gen) override {
    NoGradGuard no_grad;
    auto [mu_k, logvar_k] = components();
    std::vector<int64_t> pick;
    for (double u : rand({n}, kFloat64, gen).to_vector<double>())
      pick.push_back(std::min<int64_t>(static_cast<int64_t>(u * static_cast<double>(config_.components)), config_.components - 1));
    Tensor idx = from_vector(pick, {n});
    Tensor mu = index_select(mu_k, 0, idx), logvar = index_select(logvar_k, 0, idx);
    return mu + randn(mu.shape(), mu.dtype(), gen) * exp(logvar * 0.5);
  }
  AELoss loss(const Tensor& input, const Tensor& target, double progress) override {
    auto [mu, logvar] = encode_distribution(input);
    Tensor z = reparameterize(mu, logvar);
    Tensor recon = sum(reconstruction_nll(decode(z), target));
    Tensor kl = sum(diagonal_log_density(z, mu, logvar) - log_prior(z));  // one-sample Monte Carlo KL
    double weight = config_.beta;
    if (config_.kl_warmup > 0) weight *= std::min(1.0, progress / config_.kl_warmup);
    const double n = static_cast<double>(input.size(0));
    AELoss out;
    out.total = recon + kl * weight;
    out.reconstruction = recon.item<double>() / n;
    out.penalty = kl.item<double>() / n;
    return out;
  }
  double test_metric_sum(const Tensor& x) override {
    NoGradGuard no_grad;
    auto [mu, logvar] = encode_distribution(x);
    Tensor z = reparameterize(mu, logvar);
    return sum(reconstruction_nll(decode(z), x) + diagonal_log_density(z, mu, logvar) - log_prior(z)).item<double>();
  }
  Tensor pseudo_inputs;
};

/// WAE-MMD and RAE: the dense VAE's shape with a deterministic code (fc1, fc21, fc3, fc4).
class DeterministicAE : public Autoencoder {
 public:
  DeterministicAE(const std::string& type, const AEConfig& c) : Autoencoder(type, c) {
    const int64_t hidden = c.hidden.empty() ? 400 : c.hidden[0];
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(c.input_dim, hidden));
    fc21 = register_module("fc21", std::make_shared<nn::Linear>(hidden, c.code_dim()));
    fc3 = register_module("fc3", std::make_shared<nn::Linear>(c.code_dim(), hidden));
    fc4 = register_module("fc4", std::make_shared<nn::Linear>(hidden, c.input_dim));
  }
  Tensor encode(const Tensor& x) override {
    fc1->check_input(x);
    return fc21->forward(linear(x, fc1->weight, fc1->bias, Activation::Relu));
  }
  Tensor decode(const Tensor& z) override {
    fc3->check_input(z);
    return linear(linear(z, fc3->weight, fc3->bias, Activation::Relu), fc4->weight, fc4->bias, Activation::Sigmoid);
  }
  AELoss loss(const Tensor& input, const Tensor& target, double) override {
    Tensor z = encode(input);
    Tensor d = decode(z) - target;
    const double n = static_cast<double>(input.size(0));
    Tensor recon = sum(d * d) / n;  // squared error per image, the batch mean
    AELoss out;
    Tensor penalty = config_.model == "wae-mmd" ? wae_penalty(z, out) : rae_penalty(z, out);
    out.total = recon + penalty;
    out.reconstruction = recon.item<double>();
    out.penalty = penalty.item<double>();
    return out;
  }
  std::shared_ptr<nn::Linear> fc1, fc21, fc3, fc4;

 private:
  /// mmd_weight * MMD^2(z, N(0, I)) summed over kernel scales C = 2 D s, s in {0.1 ... 10}
  /// (Tolstikhin et al.'s multi-scale IMQ); a batch of one sample has no MMD estimate.
  Tensor wae_penalty(const Tensor& z, AELoss& out) {
    if (z.size(0) < 2) return zeros({}, z.dtype());
    Tensor prior = randn(z.shape(), z.dtype());
    const double base = 2.0 * static_cast<double>(z.size(1));
    Tensor mmd;
    for (double s : {0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0}) {
      Tensor m = imq_mmd(z, prior, base * s);
      mmd = mmd.defined() ? mmd + m : m;
    }
    out.terms = {{"mmd", mmd.item<double>()}};
    return mmd * config_.mmd_weight;
  }
  /// code_penalty * mean 1/2 |z|^2 + decoder_l2 * (|W3|^2 + |W4|^2).
  Tensor rae_penalty(const Tensor& z, AELoss& out) {
    Tensor code = mean(sum(z * z, {1})) * 0.5;
    Tensor weights = sum(fc3->weight * fc3->weight) + sum(fc4->weight * fc4->weight);
    out.terms = {{"code_norm", code.item<double>()}, {"decoder_weight_norm", weights.item<double>()}};
    return code * config_.code_penalty + weights * config_.decoder_l2;
  }
};

}  // namespace

const std::vector<std::string>& vae_variant_names() {
  static const std::vector<std::string> names{"beta-tc-vae", "iwae", "vamp-vae", "wae-mmd", "rae", "vq-vae"};
  return names;
}

std::shared_ptr<Autoencoder> make_vae_variant(const AEConfig& c) {
  if (c.model == "beta-tc-vae") return std::make_shared<BetaTcVAE>(c);
  if (c.model == "iwae") {
    if (c.iwae_samples < 1) fail("autoencoder", "iwae needs iwae_samples >= 1; got {}", c.iwae_samples);
    return std::make_shared<IWAE>(c);
  }
  if (c.model == "vamp-vae") {
    if (c.components < 1) fail("autoencoder", "vamp-vae needs components >= 1; got {}", c.components);
    return std::make_shared<VampVAE>(c);
  }
  if (c.model == "wae-mmd") return std::make_shared<DeterministicAE>("WAE", c);
  if (c.model == "rae") return std::make_shared<DeterministicAE>("RAE", c);
  if (c.model == "vq-vae") return std::make_shared<VQVAE>(c);  // models/ae/vq_vae.h
  fail("autoencoder", "unknown variant '{}' ({})", c.model, fmt::join(vae_variant_names(), ", "));
}

Tensor gaussian_log_density_pairs(const Tensor& z, const Tensor& mu, const Tensor& logvar) {
  if (z.dim() != 2 || mu.dim() != 2 || mu.shape() != logvar.shape() || z.size(1) != mu.size(1))
    fail("gaussian_log_density_pairs", "expected z (M, D) and mu, logvar (K, D); got {}, {} and {}", z.shape(), mu.shape(),
         logvar.shape());
  Tensor d = z.unsqueeze(1) - mu.unsqueeze(0);  // (M, K, D)
  Tensor lv = logvar.unsqueeze(0);
  return (d * d * exp(-lv) + lv + kLog2Pi) * -0.5;
}

TcTerms total_correlation_terms(const Tensor& z, const Tensor& mu, const Tensor& logvar) {
  if (z.shape() != mu.shape())
    fail("total_correlation", "codes and means must have the same shape; got {} and {}", z.shape(), mu.shape());
  const double log_m = std::log(static_cast<double>(z.size(0)));
  Tensor pairs = gaussian_log_density_pairs(z, mu, logvar);        // (M, M, D)
  Tensor log_qz = logsumexp(sum(pairs, {2}), {1}) - log_m;         // (M)
  Tensor log_prod = sum(logsumexp(pairs, {1}) - log_m, {1});       // (M)
  Tensor log_qzx = diagonal_log_density(z, mu, logvar);
  Tensor log_pz = standard_log_density(z);
  return {mean(log_qzx - log_qz), mean(log_qz - log_prod), mean(log_prod - log_pz)};
}

Tensor imq_mmd(const Tensor& x, const Tensor& y, double scale) {
  if (x.dim() != 2 || y.dim() != 2 || x.size(1) != y.size(1))
    fail("imq_mmd", "expected samples (N, D) and (M, D); got {} and {}", x.shape(), y.shape());
  if (x.size(0) < 2 || y.size(0) < 2)
    fail("imq_mmd", "the unbiased estimate needs at least 2 samples on each side; got {} and {}", x.size(0), y.size(0));
  if (!(scale > 0)) fail("imq_mmd", "kernel scale must be positive; got {}", scale);
  auto kernel_sum = [&](const Tensor& a, const Tensor& b) {
    Tensor d = a.unsqueeze(1) - b.unsqueeze(0);
    return sum(rdiv(scale, sum(d * d, {2}) + scale));
  };
  const double n = static_cast<double>(x.size(0)), m = static_cast<double>(y.size(0));
  // k(a, a) = 1: the diagonal adds exactly n (m) to the within-sample sums.
  Tensor xx = (kernel_sum(x, x) - n) / (n * (n - 1));
  Tensor yy = (kernel_sum(y, y) - m) / (m * (m - 1));
  Tensor xy = kernel_sum(x, y) / (n * m);
  return xx + yy - xy * 2.0;
}

Tensor negative_iwae_bound(const Tensor& log_w) {
  if (log_w.dim() != 2) fail("iwae", "expected log weights (K, N); got {}", log_w.shape());
  return (logsumexp(log_w, {0}) - std::log(static_cast<double>(log_w.size(0)))) * -1.0;
}

Tensor sigma_point_kl(const Tensor& mu, const Tensor& logvar, const std::function<Tensor(const Tensor&)>& log_prior) {
  if (mu.dim() != 2 || logvar.shape() != mu.shape())
    fail("sigma_point_kl", "mu and logvar must be (N, D) of one shape; got {} and {}", mu.shape(), logvar.shape());
  const int64_t n = mu.size(0), d = mu.size(1);
  std::vector<float> eye(static_cast<size_t>(d * d), 0.0f);
  for (int64_t i = 0; i < d; ++i) eye[static_cast<size_t>(i * d + i)] = 1.0f;
  // (D, N, D): row i of point set d is sqrt(D) sigma_{i,d} e_d.
  Tensor offsets = from_vector(eye, {d, 1, d}).to(mu.dtype()) * unsqueeze(exp(logvar * 0.5), 0) *
                   std::sqrt(static_cast<double>(d));
  Tensor centre = unsqueeze(mu, 0);
  Tensor points = reshape(cat({centre + offsets, centre - offsets}, 0), {2 * d * n, d});
  Tensor expected_log_p = mean(reshape(log_prior(points), {2 * d, n}), Shape{0});
  Tensor expected_log_q = sum(logvar + (1.0 + kLog2Pi), {1}) * -0.5;  // minus the entropy
  return expected_log_q - expected_log_p;
}

Tensor gaussian_mixture_log_density(const Tensor& z, const Tensor& mu, const Tensor& logvar) {
  return logsumexp(sum(gaussian_log_density_pairs(z, mu, logvar), {2}), {1}) - std::log(static_cast<double>(mu.size(0)));
}

}  // namespace latent::models
