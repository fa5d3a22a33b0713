// VQ-VAE (van den Oord et al., NeurIPS 2017, "Neural discrete representation learning") as a model
// of the family: `latent train --model vq-vae`.
//
// The dense VAE's shape without its variance head: fc1 (input -> hidden, ReLU), fc21 (hidden ->
// latent_dim), then the code is cut into latent_dim / codebook_dim vectors of codebook_dim numbers
// and each is replaced by its nearest codebook entry (K = codebook_size entries); fc3 and fc4 decode
// (ReLU, sigmoid). Training:
//
//   loss = |x - decode(z_st)|^2 + |sg(z_e) - e|^2 (--codebook-update loss only) + beta |z_e - sg(e)|^2
//
// per image, where z_e is the encoder's output, e its nearest entries, sg stops gradients and z_st =
// z_e + sg(e - z_e) is the straight-through estimator (e's values forward, the identity backward).
// With --codebook-update ema the codebook is a buffer updated by exponential moving averages of the
// entries' counts and code sums (the paper's appendix A.1), not by a loss. The codebook starts as
// codes of the first training batch (rows of z_e drawn without replacement), so no entry starts
// far from every code. Exports to ONNX as Gemm/Relu, MatMul for the distances, ArgMin, Gather.
#pragma once

#include <memory>

#include "autoencoder.h"

namespace latent::models {

/// Squared distances |z_r - e_k|^2 of each row of z (R, D) to each entry of codebook (K, D): (R, K),
/// computed as |z|^2 - 2 z e^T + |e|^2 (one matrix product).
Tensor codebook_distances(const Tensor& z, const Tensor& codebook);

/// The index of each row's nearest entry: argmin over codebook_distances, int64 (R).
Tensor nearest_entries(const Tensor& z, const Tensor& codebook);

/// The straight-through estimator z_e + sg(z_q - z_e): z_q's values forward; backward, the incoming
/// gradient goes to z_e unchanged and nothing to z_q.
Tensor straight_through(const Tensor& z_e, const Tensor& z_q);

/// How a batch of indices uses the codebook.
struct CodebookUsage {
  /// exp(-sum_k p_k log p_k) with p_k the fraction of indices equal to k: K when every entry is
  /// used equally, 1 when one entry takes everything.
  double perplexity = 0;
  int64_t used = 0;  ///< entries chosen at least once
};

/// The usage of `indices` (int64, any shape) among `codebook_size` entries.
CodebookUsage codebook_usage(const Tensor& indices, int64_t codebook_size);

/// One step of the codebook's moving averages (no gradient; tensors updated in place):
///   cluster_size = decay cluster_size + (1 - decay) n_k      (n_k: rows of z assigned to k)
///   embed_sum    = decay embed_sum + (1 - decay) sum of those rows
///   codebook_k   = embed_sum_k / smoothed_k,  smoothed_k = (cluster_size_k + eps) / (N + K eps) N,
/// N = sum_k cluster_size_k (Laplace smoothing, so an entry that is never chosen keeps a finite value).
/// z (R, D), indices int64 (R), codebook and embed_sum (K, D), cluster_size (K).
void ema_codebook_update(Tensor& codebook, Tensor& cluster_size, Tensor& embed_sum, const Tensor& z,
                         const Tensor& indices, double decay, double epsilon = 1e-5);

/// The model (see the top of this file).
class VQVAE : public Autoencoder {
 public:
  /// The layers and codebook for `c` (input_dim, hidden[0] or 400, latent_dim, codebook_size,
  /// codebook_dim, codebook_update); "[autoencoder] vq-vae ..." when latent_dim is not a multiple
  /// of codebook_dim.
  explicit VQVAE(const AEConfig& c);
  /// The encoder's continuous output z_e: (N, input) -> (N, latent).
  Tensor encode_continuous(const Tensor& x);
  /// The quantized code: each codebook_dim-long piece of z_e replaced by its nearest entry, (N, latent).
  Tensor encode(const Tensor& x) override;
  /// (N, latent) -> (N, input) in [0, 1].
  Tensor decode(const Tensor& z) override;
  /// The chosen entries of each image: (N, latent / codebook_dim) int64.
  Tensor code_indices(const Tensor& x);
  /// Squared error per image (batch mean) + codebook loss (loss update only) + commitment times the
  /// commitment loss. Terms: "codebook_loss" (loss update only), "commitment_loss" (unweighted), and
  /// the batch's "perplexity" and "used_entries". In training mode with the ema update it also
  /// moves the codebook (ema_codebook_update); the first training batch sets the codebook.
  AELoss loss(const Tensor& input, const Tensor& target, double progress) override;

  std::shared_ptr<nn::Linear> fc1,  ///< input -> hidden
      fc21,                         ///< hidden -> latent (z_e)
      fc3,                          ///< latent -> hidden
      fc4;                          ///< hidden -> input
  /// (K, codebook_dim): a parameter with --codebook-update loss, a buffer with ema.
  Tensor codebook;
  /// ema only: the moving averages of the entries' counts (K) and code sums (K, codebook_dim).
  /// @{
  Tensor ema_cluster_size, ema_embed_sum;
  /// @}
  /// A buffer holding 1 once the first training batch has set the codebook (0 before).
  Tensor initialized;

 private:
  /// Sets the codebook from rows of z (R, D) drawn without replacement (with repeats when R < K).
  void initialize_codebook(const Tensor& z);
};

}  // namespace latent::models
