// Variants of the variational autoencoder, each a model of the family (`latent train --model NAME`,
// AEConfig's fields): they keep DenseVAE's layers (so they export to ONNX as the VAE does) or its
// dense shape without the variance head, and change the objective.
//
//   beta-tc-vae  KL split into index-code mutual information, total correlation (weighted by
//                --beta) and dimension-wise KL (Chen et al., NeurIPS 2018), minibatch estimator
//   iwae         the importance-weighted bound with --iwae-samples K (Burda et al., ICLR 2016)
//   vamp-vae     the VampPrior: a mixture of q(z|u_k) over --components learned pseudo-inputs u_k
//                (Tomczak and Welling, AISTATS 2018)
//   wae-mmd      deterministic codes, squared error plus --mmd-weight times the unbiased MMD^2 to
//                N(0, I) with the inverse multiquadratic kernel (Tolstikhin et al., ICLR 2018)
//   rae          deterministic codes, squared error plus --code-penalty 1/2 |z|^2 and --decoder-l2
//                on the decoder weights (Ghosh et al., ICLR 2020, RAE-L2); samples from an ex-post
//                Gaussian mixture of its training codes (models/ae/gmm.h)
//   vq-vae       codes quantized to the nearest of --codebook-size learned entries (models/ae/vq_vae.h)
//
// The estimators are free functions so tests can check them on fixed inputs against float64 sums.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autoencoder.h"

namespace latent::models {

/// "beta-tc-vae", "iwae", "vamp-vae", "wae-mmd", "rae", "vq-vae".
const std::vector<std::string>& vae_variant_names();

/// Builds the variant `c.model` names ("[autoencoder] unknown variant ..." otherwise).
std::shared_ptr<Autoencoder> make_vae_variant(const AEConfig& c);

/// log N(z_i,d; mu_k,d, exp(logvar_k,d)) for every pair: z (M, D), mu and logvar (K, D) -> (M, K, D).
Tensor gaussian_log_density_pairs(const Tensor& z, const Tensor& mu, const Tensor& logvar);

/// The three parts of E[log q(z|x) - log p(z)] for codes z (M, D) drawn from q(z|x_i) = N(mu_i,
/// exp(logvar_i)), each the mean over the M rows.
struct TcTerms {
  Tensor mutual_information;  ///< E[log q(z|x) - log q(z)]
  Tensor total_correlation;   ///< E[log q(z) - sum_d log q(z_d)]
  Tensor dimension_kl;        ///< E[sum_d log q(z_d) - log p(z)], p = N(0, I)
};

/// Minibatch-weighted sampling (Chen et al. 2018): the aggregate posterior q(z) = 1/N sum_n q(z|x_n)
/// estimated on the batch as 1/M sum_j q(z|x_j), and each marginal q(z_d) alike. With the batch
/// equal to the whole data set the three terms are exact. (The paper writes the normaliser as
/// 1/(N M) with N the data set size: a constant shift of log N per density that leaves gradients
/// unchanged but stops the terms from summing to the KL; we normalise over the batch.)
TcTerms total_correlation_terms(const Tensor& z, const Tensor& mu, const Tensor& logvar);

/// The unbiased estimate of MMD^2 between the samples x (N, D) and y (M, D) with the inverse
/// multiquadratic kernel k(a, b) = scale / (scale + |a - b|^2): the means of k over pairs i != j
/// within x and within y, minus twice the mean over all cross pairs. N and M must be at least 2.
Tensor imq_mmd(const Tensor& x, const Tensor& y, double scale);

/// -log((1/K) sum_k exp(log_w_k)) per column of log_w (K, N) -> (N): the negative
/// importance-weighted bound (IWAE) from the log weights log p(x, z_k) - log q(z_k | x).
Tensor negative_iwae_bound(const Tensor& log_w);

/// KL(N(mu, exp(logvar)) || p) per row, (N, D) -> (N), with log p given by `log_prior` ((M, D) ->
/// (M)) and no sampling: the Gaussian's entropy in closed form, E_q[log p(z)] from the 2D sigma
/// points mu +- sqrt(D) sigma_d e_d with equal weights (exact when log p is quadratic, as for
/// N(0, I); vamp-vae's neg_elbo in `latent score` uses it for its mixture prior).
Tensor sigma_point_kl(const Tensor& mu, const Tensor& logvar, const std::function<Tensor(const Tensor&)>& log_prior);

/// log of the mixture (1/K) sum_k N(z; mu_k, exp(logvar_k)) per row of z (M, D) -> (M).
Tensor gaussian_mixture_log_density(const Tensor& z, const Tensor& mu, const Tensor& logvar);

}  // namespace latent::models
