// The autoencoder family: linear, deep (optionally tied), convolutional, sparse, denoising,
// variational (dense and convolutional). Every model takes flat inputs (N, D) (images are
// (N, 784) for 28x28) and exposes encode(), decode(), forward() and its training loss.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "../../autograd/grad_mode.h"
#include "../../ops/random.h"
#include "../io/fields.h"
#include "../io/json.h"
#include "../nn/layers.h"
#include "../nn/module.h"

namespace latent::models {

/// The decoder's output distribution p(x|z) in a VAE's reconstruction term (reconstruction_nll).
enum class Likelihood {
  Bernoulli,  ///< pixels in [0, 1]: binary cross-entropy summed per image (the default)
  Gaussian    ///< unit variance: 1/2 ||x - recon||^2 + D/2 log(2 pi) per image
};

/// Everything that defines an autoencoder; stored in a run's config.json.
struct AEConfig {
  std::string model = "deep";           ///< linear, deep, conv, sparse, denoising, vae, conv-vae, or a variant (vae_variants.h)
  int64_t input_dim = 784;              ///< features of one flat sample
  /// Conv models: image height in pixels (one channel of image_height x image_width = input_dim).
  int64_t image_height = 28, image_width = 28;  ///< conv models: image width in pixels
  int64_t latent_dim = 0;               ///< 0: the model's default (deep 64, linear 32, vae 20, conv-vae 16)
  std::vector<int64_t> hidden;          ///< dense widths between input and code; empty: {2 * latent}
  std::string activation = "relu";      ///< hidden activation of dense models
  bool tied = false;                    ///< dense decoders reuse the encoder weights transposed
  bool batch_norm = false;              ///< conv models: BatchNorm after each hidden conv
  std::string conv_variant = "strided"; ///< conv models: "strided" or "pool" (MaxPool + Upsample)
  std::string sparsity = "l1";          ///< sparse: "l1" activity penalty or "kl" towards rho
  /// Sparse: weight of the penalty (l1: mean over the batch of sum |code|; kl: sum over code units of
  /// KL(rho || mean activation over the batch)).
  double sparsity_weight = 1e-3, rho = 0.05;  ///< sparse kl: target mean activation of each code unit, in (0, 1)
  std::string noise = "gaussian";       ///< denoising: gaussian, mask, salt-pepper
  /// Denoising: the gaussian noise's standard deviation (result clipped to [0, 1]), or the fraction
  /// of pixels masked to 0 (mask) or set to 0 or 1 (salt-pepper).
  double noise_level = 0.3;
  double beta = 1.0;                    ///< VAE: weight of the KL term
  double kl_warmup = 0;                 ///< VAE: epochs over which the KL weight rises linearly from 0
  int64_t iwae_samples = 5;              ///< iwae: importance samples per image in the training bound
  int64_t components = 50;              ///< vamp-vae: learned pseudo-inputs of the mixture prior
  double mmd_weight = 10;               ///< wae-mmd: weight of the MMD penalty
  double code_penalty = 1e-2;           ///< rae: weight of 1/2 ||z||^2 per image
  double decoder_l2 = 1e-6;             ///< rae: weight of the decoder weights' squared norm
  int64_t gmm_components = 10;          ///< rae: components of the ex-post Gaussian mixture (models/ae/gmm.h)
  int64_t codebook_size = 512;          ///< vq-vae: K, the codebook's entries
  int64_t codebook_dim = 4;             ///< vq-vae: dimensions of one entry; the code is latent_dim / codebook_dim entries
  double commitment = 0.25;             ///< vq-vae: beta, the weight of the commitment loss
  std::string codebook_update = "ema";  ///< vq-vae: "ema" (moving averages) or "loss" (the codebook loss's gradient)
  double ema_decay = 0.99;              ///< vq-vae: decay of the codebook's moving averages
  Likelihood likelihood = Likelihood::Bernoulli;  ///< VAE: the decoder's output distribution

  /// latent_dim with the model's default applied.
  int64_t code_dim() const;
  /// The fields visited in models/io/fields.h order (config.json's "model" object, train's options).
  json::Value to_json() const;
  /// Parses what to_json wrote ("[config] field 'latent_dim': expected an integer in [1, 1048576]; got -3").
  static AEConfig from_json(const json::Value& v);

  /// Every field of `c` (an AEConfig, const or not) once, for config.json and the command line:
  /// calls `v`'s member for each field's kind (models/io/fields.h).
  template <class Self, class V>
  static void fields(Self& c, V& v);
};

/// "linear", "deep", ...: the models make_autoencoder builds.
const std::vector<std::string>& autoencoder_names();
/// "relu", "leaky_relu", ...: the hidden activations of dense models.
const std::vector<std::string>& activation_names();

template <class Self, class V>
void AEConfig::fields(Self& c, V& v) {
  constexpr unsigned stored = Field::Stored | Field::Resumed;  // not a command-line option
  v.choice(Field{"model", "M", ""}, c.model, autoencoder_names());
  v.integer(Field{"input_dim", "", "", stored}, c.input_dim, 1, 1LL << 40);
  v.integer(Field{"image_height", "", "", stored}, c.image_height, 0, 1 << 20);
  v.integer(Field{"image_width", "", "", stored}, c.image_width, 0, 1 << 20);
  v.integer(Field{"latent_dim", "D", "code size of dense models and conv-vae", Field::All,
                  "deep 64, linear 32, vae 20, conv-vae 16"},
            c.latent_dim, 1, 1 << 20);
  v.integers(Field{"hidden", "", "", stored}, c.hidden);
  v.choice(Field{"activation", "", "", stored}, c.activation, activation_names());
  v.flag(Field{"tied", "", "dense models: decoder reuses the encoder weights"}, c.tied);
  v.flag(Field{"batch_norm", "", "conv models: batch norm after hidden convolutions"}, c.batch_norm);
  v.choice(Field{"conv_variant", "", "", stored}, c.conv_variant, {"strided", "pool"});
  v.choice(Field{"sparsity", "S", "sparse"}, c.sparsity, {"l1", "kl"});
  v.number(Field{"sparsity_weight", "F", "sparse: weight of the penalty"}, c.sparsity_weight, 0, 1e6);
  v.number(Field{"rho", "F", "sparse kl: target mean activation"}, c.rho, 1e-6, 1 - 1e-6);
  v.choice(Field{"noise", "N", "denoising"}, c.noise, {"gaussian", "mask", "salt-pepper"});
  v.number(Field{"noise_level", "F", "denoising: noise standard deviation or fraction"}, c.noise_level, 0, 10);
  v.number(Field{"beta", "F", "VAE: weight of the KL term"}, c.beta, 0, 1e6);
  v.number(Field{"kl_warmup", "E", "VAE: epochs over which the KL weight rises from 0"}, c.kl_warmup, 0, 1e6);
  v.integer(Field{"iwae_samples", "K", "iwae: importance samples per image in the training bound"}, c.iwae_samples, 1, 4096);
  v.integer(Field{"components", "K", "vamp-vae: pseudo-inputs of the mixture prior"}, c.components, 1, 1 << 16);
  v.number(Field{"mmd_weight", "F", "wae-mmd: weight of the MMD penalty"}, c.mmd_weight, 0, 1e6);
  v.number(Field{"code_penalty", "F", "rae: weight of 1/2 |z|^2"}, c.code_penalty, 0, 1e6);
  v.number(Field{"decoder_l2", "F", "rae: weight of the decoder weights' squared norm"}, c.decoder_l2, 0, 1e6);
  v.integer(Field{"gmm_components", "K", "rae: components of the ex-post Gaussian mixture that sample draws from"},
            c.gmm_components, 1, 1 << 16);
  v.integer(Field{"codebook_size", "K", "vq-vae: entries of the codebook"}, c.codebook_size, 1, 1 << 20);
  v.integer(Field{"codebook_dim", "D", "vq-vae: dimensions of one entry (latent_dim / D entries per code)"},
            c.codebook_dim, 1, 1 << 20);
  v.number(Field{"commitment", "F", "vq-vae: weight of the commitment loss"}, c.commitment, 0, 1e6);
  v.choice(Field{"codebook_update", "U", "vq-vae: codebook learned by moving averages or by its loss"}, c.codebook_update,
           {"ema", "loss"});
  v.number(Field{"ema_decay", "F", "vq-vae --codebook-update ema: decay of the moving averages"}, c.ema_decay, 0, 1 - 1e-9);
  v.choice(Field{"likelihood", "L", "VAE"}, c.likelihood,
           std::vector<std::pair<std::string, Likelihood>>{{"bernoulli", Likelihood::Bernoulli},
                                                           {"gaussian", Likelihood::Gaussian}});
}

/// One batch's loss and what training reports about it.
struct AELoss {
  Tensor total;                 ///< what backward runs on
  double reconstruction = 0;    ///< the reconstruction term (its value)
  double penalty = 0;           ///< KL (VAE) or sparsity term (its value, weighted)
  double mean_activation = -1;  ///< sparse models: mean code activation; -1 otherwise
  /// A variant's own loss terms (name, per-image value), averaged per epoch into metrics.jsonl's
  /// "loss_terms" object.
  std::vector<std::pair<std::string, double>> terms;
};

/// Base of the family.
class Autoencoder : public nn::Module {
 public:
  /// `type` names the module (its checkpoint and summary name); `config` is kept for config().
  Autoencoder(std::string type, AEConfig config) : Module(std::move(type)), config_(std::move(config)) {}
  /// Code of flat inputs x: (N, D) -> (N, code features). VAEs return the mean.
  virtual Tensor encode(const Tensor& x) = 0;
  /// Reconstruction (N, D) from codes.
  virtual Tensor decode(const Tensor& z) = 0;
  Tensor forward(const Tensor& x) override { return decode(encode(x)); }
  /// Training loss of reconstructing `target` from `input` (they differ for denoising).
  /// progress = epochs done, fractional (the VAE's KL warm-up reads it).
  virtual AELoss loss(const Tensor& input, const Tensor& target, double progress);
  /// Sum over the batch of the test metric: squared error (summed over elements) for plain
  /// models; reconstruction NLL + KL per image (one z sample) for VAEs.
  virtual double test_metric_sum(const Tensor& x);
  /// Whether test_metric_sum is per image (VAE) rather than per element.
  virtual bool variational() const { return false; }
  /// The config the model was built from.
  const AEConfig& config() const { return config_; }

 protected:
  AEConfig config_;  ///< what config() returns (subclasses read their sizes and loss weights here)
};

/// The VAE interface: reparameterised sampling, prior samples, importance-weighted NLL.
class VariationalAutoencoder : public Autoencoder {
 public:
  /// Autoencoder's constructor: `type` names the module, `config` is kept for config().
  using Autoencoder::Autoencoder;
  /// mu and logvar of q(z|x).
  virtual std::pair<Tensor, Tensor> encode_distribution(const Tensor& x) = 0;
  Tensor encode(const Tensor& x) override { return encode_distribution(x).first; }
  /// decode(mu): the deterministic reconstruction (also what ONNX export uses).
  Tensor forward(const Tensor& x) override { return decode(encode(x)); }
  AELoss loss(const Tensor& input, const Tensor& target, double progress) override;
  double test_metric_sum(const Tensor& x) override;
  bool variational() const override { return true; }
  /// n images decoded from z ~ N(0, I).
  Tensor sample(int64_t n, Generator* gen = nullptr);
  /// -log p(x) per image estimated with k importance samples (IWAE bound), summed over the batch.
  double importance_weighted_nll_sum(const Tensor& x, int64_t k, Generator* gen = nullptr);
  /// Negative log-likelihood of x under the decoder output, summed per image: (N).
  Tensor reconstruction_nll(const Tensor& recon, const Tensor& x) const;
  /// log p(z) per code row, (N, latent) -> (N): the standard normal unless a variant learns its prior.
  virtual Tensor log_prior(const Tensor& z);
  /// n codes drawn from the prior (what sample() decodes).
  virtual Tensor sample_prior(int64_t n, Generator* gen = nullptr);
  /// KL(q(z|x) || p(z)) per row for q = N(mu, exp(logvar)): (N, latent) twice -> (N), deterministic
  /// (what `latent score` adds to the reconstruction NLL for neg_elbo). Analytic for the standard
  /// normal prior; a variant with a learned prior overrides it (vamp-vae: models/ae/vae_variants.h).
  virtual Tensor kl_to_prior(const Tensor& mu, const Tensor& logvar);
};

/// torch_bench.py's `vae`: fc1 (D -> hidden, default 400), fc21/fc22 (hidden -> latent: mu and
/// logvar), fc3 (latent -> hidden), fc4 (hidden -> D); ReLU hidden layers, sigmoid output. The VAE
/// variants of models/ae/vae_variants.h share these layers and change the objective.
class DenseVAE : public VariationalAutoencoder {
 public:
  /// The layers for `c` (input_dim, hidden[0], latent_dim); `type` names the module.
  explicit DenseVAE(const AEConfig& c, std::string type = "VAE");
  std::pair<Tensor, Tensor> encode_distribution(const Tensor& x) override;
  Tensor decode(const Tensor& z) override;
  std::shared_ptr<nn::Linear> fc1,  ///< input -> hidden
      fc21,                         ///< hidden -> mu
      fc22,                         ///< hidden -> logvar
      fc3,                          ///< latent -> hidden
      fc4;                          ///< hidden -> input
};

/// Builds the model a config describes ("[autoencoder] unknown model 'foo' (...)" otherwise).
std::shared_ptr<Autoencoder> make_autoencoder(const AEConfig& config);

}  // namespace latent::models
