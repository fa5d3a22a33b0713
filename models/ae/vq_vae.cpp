#include "vq_vae.h"

#include <cmath>

#include "../../ops/activation.h"
#include "../../ops/creation.h"
#include "../../ops/elementwise.h"
#include "../../ops/index.h"
#include "../../ops/linalg.h"
#include "../../ops/reduce.h"
#include "../../ops/shape_ops.h"

namespace latent::models {

Tensor codebook_distances(const Tensor& z, const Tensor& codebook) {
  if (z.dim() != 2 || codebook.dim() != 2 || z.size(1) != codebook.size(1))
    fail("vq-vae", "expected codes (R, D) and a codebook (K, D); got {} and {}", z.shape(), codebook.shape());
  Tensor zz = sum(z * z, {1}, true);                      // (R, 1)
  Tensor ee = sum(codebook * codebook, {1}).unsqueeze(0);  // (1, K)
  return zz - matmul(z, codebook.t()) * 2.0 + ee;
}

Tensor nearest_entries(const Tensor& z, const Tensor& codebook) { return argmin(codebook_distances(z, codebook), 1); }

Tensor straight_through(const Tensor& z_e, const Tensor& z_q) {
  if (z_e.shape() != z_q.shape())
    fail("straight_through", "the encoder output and its quantized form must have one shape; got {} and {}", z_e.shape(),
         z_q.shape());
  return z_e + (z_q - z_e).detach();
}

CodebookUsage codebook_usage(const Tensor& indices, int64_t codebook_size) {
  if (codebook_size < 1) fail("vq-vae", "codebook size must be positive; got {}", codebook_size);
  std::vector<double> count(static_cast<size_t>(codebook_size), 0.0);
  const std::vector<int64_t> idx = indices.to(kCPU).contiguous().to_vector<int64_t>();
  for (int64_t i : idx) {
    if (i < 0 || i >= codebook_size) fail("vq-vae", "index {} is outside a codebook of {} entries", i, codebook_size);
    count[static_cast<size_t>(i)] += 1;
  }
  CodebookUsage u;
  double entropy = 0;
  for (double c : count) {
    if (c == 0) continue;
    ++u.used;
    const double p = c / static_cast<double>(idx.size());
    entropy -= p * std::log(p);
  }
  u.perplexity = idx.empty() ? 0 : std::exp(entropy);
  return u;
}

namespace {
/// (R, K) rows of zeros with a 1 at each row's index, in `dtype`.
Tensor one_hot(const Tensor& indices, int64_t k, DType dtype) {
  return eq(indices.unsqueeze(1), arange(k, kInt64, indices.device()).unsqueeze(0)).to(dtype);
}
}  // namespace

void ema_codebook_update(Tensor& codebook, Tensor& cluster_size, Tensor& embed_sum, const Tensor& z, const Tensor& indices,
                         double decay, double epsilon) {
  if (z.dim() != 2 || codebook.dim() != 2 || z.size(1) != codebook.size(1) || embed_sum.shape() != codebook.shape() ||
      cluster_size.dim() != 1 || cluster_size.size(0) != codebook.size(0) || indices.dim() != 1 ||
      indices.size(0) != z.size(0))
    fail("vq-vae", "ema update: expected z (R, D), indices (R), codebook and embed_sum (K, D), cluster_size (K); got {}, "
         "{}, {}, {}, {}", z.shape(), indices.shape(), codebook.shape(), embed_sum.shape(), cluster_size.shape());
  if (!(decay >= 0 && decay < 1)) fail("vq-vae", "ema decay must be in [0, 1); got {}", decay);
  NoGradGuard no_grad;
  const int64_t k = codebook.size(0);
  Tensor onehot = one_hot(indices, k, z.dtype());  // (R, K)
  Tensor counts = sum(onehot, {0});                // (K)
  Tensor sums = matmul(onehot.t(), z.detach());    // (K, D)
  cluster_size.mul_(decay).add_(counts, 1 - decay);
  embed_sum.mul_(decay).add_(sums, 1 - decay);
  const double n = sum(cluster_size).item<double>();
  Tensor smoothed = (cluster_size + epsilon) / (n + static_cast<double>(k) * epsilon) * n;
  codebook.copy_(embed_sum / smoothed.unsqueeze(1));
}

VQVAE::VQVAE(const AEConfig& c) : Autoencoder("VQVAE", c) {
  if (c.codebook_size < 1 || c.codebook_dim < 1 || c.code_dim() % c.codebook_dim != 0)
    fail("autoencoder", "vq-vae needs latent_dim a multiple of codebook_dim and codebook_size >= 1; got latent_dim {}, "
         "codebook_dim {}, codebook_size {}", c.code_dim(), c.codebook_dim, c.codebook_size);
  if (c.codebook_update != "ema" && c.codebook_update != "loss")
    fail("autoencoder", "vq-vae codebook_update must be 'ema' or 'loss'; got '{}'", c.codebook_update);
  const int64_t hidden = c.hidden.empty() ? 400 : c.hidden[0];
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(c.input_dim, hidden));
  fc21 = register_module("fc21", std::make_shared<nn::Linear>(hidden, c.code_dim()));
  fc3 = register_module("fc3", std::make_shared<nn::Linear>(c.code_dim(), hidden));
  fc4 = register_module("fc4", std::make_shared<nn::Linear>(hidden, c.input_dim));
  // Until the first training batch replaces it: entries spread like the untrained encoder's codes.
  Tensor init = randn({c.codebook_size, c.codebook_dim}) * 0.1;
  if (c.codebook_update == "loss") {
    codebook = register_parameter("codebook", init);
  } else {
    codebook = register_buffer("codebook", init);
    ema_cluster_size = register_buffer("ema_cluster_size", ones({c.codebook_size}));
    ema_embed_sum = register_buffer("ema_embed_sum", init.clone());
  }
  initialized = register_buffer("initialized", zeros({1}));
}

Tensor VQVAE::encode_continuous(const Tensor& x) {
  fc1->check_input(x);
  return fc21->forward(linear(x, fc1->weight, fc1->bias, Activation::Relu));
}

Tensor VQVAE::encode(const Tensor& x) {
  Tensor z = encode_continuous(x);
  Tensor rows = z.reshape({-1, config_.codebook_dim});
  return index_select(codebook, 0, nearest_entries(rows, codebook)).reshape({-1, config_.code_dim()});
}

Tensor VQVAE::decode(const Tensor& z) {
  fc3->check_input(z);
  return linear(linear(z, fc3->weight, fc3->bias, Activation::Relu), fc4->weight, fc4->bias, Activation::Sigmoid);
}

Tensor VQVAE::code_indices(const Tensor& x) {
  NoGradGuard no_grad;
  Tensor rows = encode_continuous(x).reshape({-1, config_.codebook_dim});
  return nearest_entries(rows, codebook).reshape({x.size(0), -1});
}

void VQVAE::initialize_codebook(const Tensor& z) {
  NoGradGuard no_grad;
  const int64_t r = z.size(0), k = config_.codebook_size;
  std::vector<int64_t> pick = randperm(r).to_vector<int64_t>();
  while (static_cast<int64_t>(pick.size()) < k) pick.push_back(pick[pick.size() % static_cast<size_t>(r)]);
  pick.resize(static_cast<size_t>(k));
  Tensor rows = index_select(z, 0, from_vector(pick, {k}).to(z.device()));
  if (r < k) rows = rows + randn_like(rows) * 1e-3;  // repeated rows: apart, so each can win some codes
  codebook.copy_(rows);
  if (ema_embed_sum.defined()) {
    ema_embed_sum.copy_(rows);
    ema_cluster_size.fill_(1.0);
  }
  initialized.fill_(1.0);
}

AELoss VQVAE::loss(const Tensor& input, const Tensor& target, double) {
  const bool training = is_training() && is_grad_enabled();
  Tensor z_e = encode_continuous(input);
  Tensor rows = z_e.reshape({-1, config_.codebook_dim});  // (N * M, D)
  if (training && initialized.item<double>() == 0) initialize_codebook(rows.detach());
  Tensor idx = nearest_entries(rows.detach(), codebook.detach());
  Tensor e = index_select(codebook, 0, idx);
  Tensor recon = decode(straight_through(rows, e.detach()).reshape(z_e.shape()));
  const double n = static_cast<double>(input.size(0));
  Tensor d = recon - target;
  Tensor reconstruction = sum(d * d) / n;
  Tensor gap = rows - e.detach();
  Tensor commitment = sum(gap * gap) / n;  // |z_e - sg(e)|^2 per image
  AELoss out;
  out.total = reconstruction + commitment * config_.commitment;
  if (config_.codebook_update == "loss") {
    Tensor g = rows.detach() - e;
    Tensor codebook_loss = sum(g * g) / n;  // |sg(z_e) - e|^2 per image
    out.total = out.total + codebook_loss;
    out.terms.emplace_back("codebook_loss", codebook_loss.item<double>());
  } else if (training) {
    ema_codebook_update(codebook, ema_cluster_size, ema_embed_sum, rows.detach(), idx, config_.ema_decay);
  }
  const CodebookUsage usage = codebook_usage(idx, config_.codebook_size);
  out.reconstruction = reconstruction.item<double>();
  out.penalty = commitment.item<double>() * config_.commitment;
  out.terms.emplace_back("commitment_loss", commitment.item<double>());
  out.terms.emplace_back("perplexity", usage.perplexity);
  out.terms.emplace_back("used_entries", static_cast<double>(usage.used));
  return out;
}

}  // namespace latent::models
