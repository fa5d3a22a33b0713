#include "autoencoder.h"

#include <cmath>

#include "../../ops/activation.h"
#include "../../ops/creation.h"
#include "../../ops/elementwise.h"
#include "../../ops/join.h"
#include "../../ops/linalg.h"
#include "../../ops/loss.h"
#include "../../ops/reduce.h"
#include "../../ops/shape_ops.h"
#include "../nn/layers.h"
#include "vae_variants.h"

namespace latent::models {

namespace {
bool is_variant(const std::string& model) {
  for (const std::string& v : vae_variant_names())
    if (v == model) return true;
  return false;
}
}  // namespace

using nn::Module;
using nn::Sequential;

// ---- config ----

int64_t AEConfig::code_dim() const {
  if (latent_dim > 0) return latent_dim;
  if (model == "linear") return 32;
  if (model == "vae" || is_variant(model)) return 20;
  if (model == "conv-vae") return 16;
  return 64;
}

json::Value AEConfig::to_json() const {
  json::Value v = json::Value::object();
  FieldWriter writer(v);
  fields(*this, writer);
  v["latent_dim"] = code_dim();                 // the model's default made explicit
  return v;
}

AEConfig AEConfig::from_json(const json::Value& v) {
  if (!v.is_object()) fail("config", "expected a JSON object for the model config");
  AEConfig c;
  FieldReader reader(v, Field::Stored);
  fields(c, reader);
  return c;
}

// ---- shared pieces ----

AELoss Autoencoder::loss(const Tensor& input, const Tensor& target, double) {
  AELoss out;
  out.total = mse_loss(forward(input), target);
  out.reconstruction = out.total.item<double>();
  return out;
}

double Autoencoder::test_metric_sum(const Tensor& x) {
  NoGradGuard no_grad;
  return mse_loss(forward(x), x, Reduction::Sum).item<double>();
}

namespace {

constexpr double kLog2Pi = 1.8378770664093454836;

std::shared_ptr<Module> make_activation(const std::string& name) {
  if (name == "relu") return std::make_shared<nn::ReLU>();
  if (name == "leaky_relu") return std::make_shared<nn::LeakyReLU>();
  if (name == "sigmoid") return std::make_shared<nn::Sigmoid>();
  if (name == "tanh") return std::make_shared<nn::Tanh>();
  if (name == "elu") return std::make_shared<nn::ELU>();
  if (name == "gelu") return std::make_shared<nn::GELU>();
  if (name == "softplus") return std::make_shared<nn::Softplus>();
  fail("autoencoder", "unknown activation '{}' ({})", name, fmt::join(activation_names(), ", "));
}

/// A decoder layer that reuses an encoder Linear's weight transposed, with a bias of its own.
class TiedLinear : public Module {
 public:
  explicit TiedLinear(std::shared_ptr<nn::Linear> source) : Module("TiedLinear"), source_(std::move(source)) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(source_->out_features));
    bias = register_parameter("bias", (rand({source_->in_features}) * 2.0 - 1.0) * bound);
  }
  Tensor forward(const Tensor& x) override { return linear(x, source_->weight.t(), bias); }
  std::string extra_repr() const override {
    return fmt::format("in_features={}, out_features={}, tied", source_->out_features, source_->in_features);
  }
  Tensor bias;

 private:
  std::shared_ptr<nn::Linear> source_;
};

/// linear, deep, sparse and denoising autoencoders: encoder and decoder Sequentials of Linear
/// layers, named as PyTorch names them (encoder.0.weight, ...).
class DenseAE : public Autoencoder {
 public:
  DenseAE(const std::string& type, const AEConfig& c) : Autoencoder(type, c) {
    const bool plain = c.model == "linear";
    const bool kl_sparse = c.model == "sparse" && c.sparsity == "kl";
    std::vector<int64_t> widths{c.input_dim};
    if (!plain) {
      if (c.hidden.empty()) widths.push_back(2 * c.code_dim());
      else widths.insert(widths.end(), c.hidden.begin(), c.hidden.end());
    }
    widths.push_back(c.code_dim());
    for (int64_t w : widths)
      if (w <= 0) fail("autoencoder", "layer widths must be positive; got {}", fmt::join(widths, "-"));
    encoder_ = register_module("encoder", std::make_shared<Sequential>());
    decoder_ = register_module("decoder", std::make_shared<Sequential>());
    std::vector<std::shared_ptr<nn::Linear>> enc_layers;
    for (size_t i = 0; i + 1 < widths.size(); ++i) {
      auto layer = std::make_shared<nn::Linear>(widths[i], widths[i + 1]);
      enc_layers.push_back(layer);
      encoder_->push_back(layer);
      const bool code_layer = i + 2 == widths.size();
      if (!plain) encoder_->push_back(code_layer && kl_sparse ? make_activation("sigmoid") : make_activation(c.activation));
    }
    for (size_t i = widths.size() - 1; i > 0; --i) {
      const size_t enc_index = i - 1;  // decoder layer i maps widths[i] -> widths[i - 1]
      if (c.tied) decoder_->push_back(std::make_shared<TiedLinear>(enc_layers[enc_index]));
      else decoder_->push_back(std::make_shared<nn::Linear>(widths[i], widths[i - 1]));
      if (plain) continue;
      decoder_->push_back(i == 1 ? make_activation("sigmoid") : make_activation(c.activation));
    }
  }
  Tensor encode(const Tensor& x) override { return encoder_->forward(x); }
  Tensor decode(const Tensor& z) override { return decoder_->forward(z); }

  AELoss loss(const Tensor& input, const Tensor& target, double progress) override {
    if (config_.model != "sparse") return Autoencoder::loss(input, target, progress);
    Tensor code = encode(input);
    AELoss out;
    Tensor recon = mse_loss(decode(code), target);
    Tensor penalty;
    if (config_.sparsity == "kl") {
      const double rho = config_.rho;
      Tensor rho_hat = clamp(mean(code, {0}), 1e-6, 1 - 1e-6);
      Tensor kl = rho * log(rho / rho_hat) + (1 - rho) * log((1 - rho) / (1.0 - rho_hat));
      penalty = sum(kl) * config_.sparsity_weight;
    } else {
      penalty = mean(sum(abs(code), {1})) * config_.sparsity_weight;
    }
    out.total = recon + penalty;
    out.reconstruction = recon.item<double>();
    out.penalty = penalty.item<double>();
    out.mean_activation = mean(code).item<double>();
    return out;
  }

 private:
  std::shared_ptr<Sequential> encoder_, decoder_;
};

void check_image_config(const AEConfig& c) {
  if (c.image_height * c.image_width != c.input_dim || c.image_height % 4 != 0 || c.image_width % 4 != 0)
    fail("autoencoder", "convolutional models need one-channel images with H and W divisible by 4 and "
         "H * W = input_dim; got {}x{} for input_dim {}", c.image_height, c.image_width, c.input_dim);
  if (c.conv_variant != "strided" && c.conv_variant != "pool")
    fail("autoencoder", "conv variant must be 'strided' or 'pool'; got '{}'", c.conv_variant);
}

/// The conv encoder (1 -> 16 -> 32 channels, H/4 x W/4) and decoder of torch_bench.py's `conv`
/// model, with optional batch norm and a pooling/upsampling variant.
void build_conv_stacks(const AEConfig& c, Sequential& enc, Sequential& dec) {
  const bool pool = c.conv_variant == "pool";
  auto conv_block = [&](Sequential& s, int64_t in, int64_t out) {
    if (pool) s.push_back(std::make_shared<nn::Conv2d>(in, out, 3, 1, 1));
    else s.push_back(std::make_shared<nn::Conv2d>(in, out, 3, 2, 1));
    if (c.batch_norm) s.push_back(std::make_shared<nn::BatchNorm2d>(out));
    s.push_back(std::make_shared<nn::ReLU>());
    if (pool) s.push_back(std::make_shared<nn::MaxPool2d>(2));
  };
  conv_block(enc, 1, 16);
  conv_block(enc, 16, 32);
  if (pool) {
    dec.push_back(std::make_shared<nn::Upsample>(2.0));
    dec.push_back(std::make_shared<nn::Conv2d>(32, 16, 3, 1, 1));
  } else {
    dec.push_back(std::make_shared<nn::ConvTranspose2d>(32, 16, 3, 2, 1, 1));
  }
  if (c.batch_norm) dec.push_back(std::make_shared<nn::BatchNorm2d>(16));
  dec.push_back(std::make_shared<nn::ReLU>());
  if (pool) {
    dec.push_back(std::make_shared<nn::Upsample>(2.0));
    dec.push_back(std::make_shared<nn::Conv2d>(16, 1, 3, 1, 1));
  } else {
    dec.push_back(std::make_shared<nn::ConvTranspose2d>(16, 1, 3, 2, 1, 1));
  }
  dec.push_back(std::make_shared<nn::Sigmoid>());
}

class ConvAE : public Autoencoder {
 public:
  explicit ConvAE(const AEConfig& c) : Autoencoder("ConvAE", c) {
    check_image_config(c);
    encoder_ = register_module("encoder", std::make_shared<Sequential>());
    decoder_ = register_module("decoder", std::make_shared<Sequential>());
    build_conv_stacks(c, *encoder_, *decoder_);
  }
  /// (N, H*W) -> (N, 32 * H/4 * W/4).
  Tensor encode(const Tensor& x) override {
    return flatten(encoder_->forward(x.reshape({-1, 1, config_.image_height, config_.image_width})), 1);
  }
  Tensor decode(const Tensor& z) override {
    Tensor maps = z.reshape({-1, 32, config_.image_height / 4, config_.image_width / 4});
    return flatten(decoder_->forward(maps), 1);
  }

 private:
  std::shared_ptr<Sequential> encoder_, decoder_;
};

/// Convolutional VAE: the conv encoder, linear heads to mu/logvar, a linear map back to the
/// feature maps and the conv decoder.
class ConvVAE : public VariationalAutoencoder {
 public:
  explicit ConvVAE(const AEConfig& c) : VariationalAutoencoder("ConvVAE", c) {
    check_image_config(c);
    features_ = 32 * (c.image_height / 4) * (c.image_width / 4);
    encoder = register_module("encoder", std::make_shared<Sequential>());
    fc_mu = register_module("fc_mu", std::make_shared<nn::Linear>(features_, c.code_dim()));
    fc_logvar = register_module("fc_logvar", std::make_shared<nn::Linear>(features_, c.code_dim()));
    fc_decode = register_module("fc_decode", std::make_shared<nn::Linear>(c.code_dim(), features_));
    decoder = register_module("decoder", std::make_shared<Sequential>());
    build_conv_stacks(c, *encoder, *decoder);
  }
  std::pair<Tensor, Tensor> encode_distribution(const Tensor& x) override {
    Tensor h = flatten(encoder->forward(x.reshape({-1, 1, config_.image_height, config_.image_width})), 1);
    return {fc_mu->forward(h), fc_logvar->forward(h)};
  }
  Tensor decode(const Tensor& z) override {
    Tensor maps = relu(fc_decode->forward(z)).reshape({-1, 32, config_.image_height / 4, config_.image_width / 4});
    return flatten(decoder->forward(maps), 1);
  }
  std::shared_ptr<Sequential> encoder, decoder;
  std::shared_ptr<nn::Linear> fc_mu, fc_logvar, fc_decode;

 private:
  int64_t features_ = 0;
};

}  // namespace

// ---- the dense VAE (torch_bench.py's `vae`) ----

DenseVAE::DenseVAE(const AEConfig& c, std::string type) : VariationalAutoencoder(std::move(type), c) {
  const int64_t hidden = c.hidden.empty() ? 400 : c.hidden[0];
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(c.input_dim, hidden));
  fc21 = register_module("fc21", std::make_shared<nn::Linear>(hidden, c.code_dim()));
  fc22 = register_module("fc22", std::make_shared<nn::Linear>(hidden, c.code_dim()));
  fc3 = register_module("fc3", std::make_shared<nn::Linear>(c.code_dim(), hidden));
  fc4 = register_module("fc4", std::make_shared<nn::Linear>(hidden, c.input_dim));
}

std::pair<Tensor, Tensor> DenseVAE::encode_distribution(const Tensor& x) {
  fc1->check_input(x);  // the Linear's own error messages; then Linear + ReLU as one op
  Tensor h = linear(x, fc1->weight, fc1->bias, Activation::Relu);
  return {fc21->forward(h), fc22->forward(h)};
}

Tensor DenseVAE::decode(const Tensor& z) {
  fc3->check_input(z);
  return linear(linear(z, fc3->weight, fc3->bias, Activation::Relu), fc4->weight, fc4->bias, Activation::Sigmoid);
}

// ---- VAE ----

Tensor VariationalAutoencoder::reconstruction_nll(const Tensor& recon, const Tensor& x) const {
  if (config_.likelihood == Likelihood::Bernoulli)
    return sum(binary_cross_entropy(recon, x, Reduction::None), {1});
  // Unit-variance Gaussian: 0.5 * ||x - recon||^2 + D/2 log(2 pi).
  Tensor d = recon - x;
  return sum(d * d, {1}) * 0.5 + 0.5 * kLog2Pi * static_cast<double>(x.size(1));
}

AELoss VariationalAutoencoder::loss(const Tensor& input, const Tensor& target, double progress) {
  auto [mu, logvar] = encode_distribution(input);
  Tensor z = mu + randn_like(mu) * exp(logvar * 0.5);
  // The Bernoulli NLL summed over the batch is one fused binary_cross_entropy (Sum) pass; the
  // per-image sums of reconstruction_nll are only needed for per-image metrics.
  Tensor recon = config_.likelihood == Likelihood::Bernoulli
                     ? binary_cross_entropy(decode(z), target, Reduction::Sum)
                     : sum(reconstruction_nll(decode(z), target));
  Tensor kl = gaussian_kl_divergence(mu, logvar, Reduction::Sum);
  double weight = config_.beta;
  if (config_.kl_warmup > 0) weight *= std::min(1.0, progress / config_.kl_warmup);
  AELoss out;
  out.total = weight == 1.0 ? recon + kl : recon + kl * weight;
  const double n = static_cast<double>(input.size(0));
  out.reconstruction = recon.item<double>() / n;
  out.penalty = kl.item<double>() / n;
  return out;
}

double VariationalAutoencoder::test_metric_sum(const Tensor& x) {
  NoGradGuard no_grad;
  auto [mu, logvar] = encode_distribution(x);
  Tensor z = mu + randn_like(mu) * exp(logvar * 0.5);
  return (sum(reconstruction_nll(decode(z), x)) + gaussian_kl_divergence(mu, logvar, Reduction::Sum)).item<double>();
}

Tensor VariationalAutoencoder::log_prior(const Tensor& z) {
  return sum(z * z, {1}) * -0.5 - 0.5 * kLog2Pi * static_cast<double>(z.size(1));
}

Tensor VariationalAutoencoder::kl_to_prior(const Tensor& mu, const Tensor& logvar) {
  // -1/2 sum(1 + logvar - mu^2 - exp(logvar)) per row.
  return sum(1.0 + logvar - mu * mu - exp(logvar), {1}) * -0.5;
}

Tensor VariationalAutoencoder::sample_prior(int64_t n, Generator* gen) {
  return randn({n, config_.code_dim()}, kFloat32, gen);
}

Tensor VariationalAutoencoder::sample(int64_t n, Generator* gen) {
  if (n <= 0) fail("sample", "number of samples must be positive; got {}", n);
  NoGradGuard no_grad;
  return decode(sample_prior(n, gen));
}

double VariationalAutoencoder::importance_weighted_nll_sum(const Tensor& x, int64_t k, Generator* gen) {
  if (k <= 0) fail("iwae", "number of importance samples must be positive; got {}", k);
  NoGradGuard no_grad;
  auto [mu, logvar] = encode_distribution(x);
  Tensor std = exp(logvar * 0.5);
  const double d = static_cast<double>(mu.size(1));
  std::vector<Tensor> log_w;
  for (int64_t i = 0; i < k; ++i) {
    Tensor eps = randn(mu.shape(), mu.dtype(), gen);
    Tensor z = mu + eps * std;
    Tensor log_px_z = -reconstruction_nll(decode(z), x);
    Tensor log_pz = log_prior(z);
    Tensor log_qz = sum(eps * eps + logvar, {1}) * -0.5 - 0.5 * kLog2Pi * d;
    log_w.push_back((log_px_z + log_pz - log_qz).unsqueeze(0));
  }
  Tensor all = cat(log_w, 0);  // (k, N)
  Tensor nll = (logsumexp(all, {0}) - std::log(static_cast<double>(k))) * -1.0;  // -(log mean_k w)
  return sum(nll).item<double>();
}

// ---- factory ----

const std::vector<std::string>& activation_names() {
  static const std::vector<std::string> names{"relu", "leaky_relu", "sigmoid", "tanh", "elu", "gelu", "softplus"};
  return names;
}

const std::vector<std::string>& autoencoder_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n{"linear", "deep", "conv", "sparse", "denoising", "vae", "conv-vae"};
    for (const std::string& v : vae_variant_names()) n.push_back(v);
    return n;
  }();
  return names;
}

std::shared_ptr<Autoencoder> make_autoencoder(const AEConfig& c) {
  if (c.input_dim <= 0) fail("autoencoder", "input_dim must be positive; got {}", c.input_dim);
  if (c.model == "linear") return std::make_shared<DenseAE>("LinearAE", c);
  if (c.model == "deep") return std::make_shared<DenseAE>("DeepAE", c);
  if (c.model == "sparse") {
    if (c.sparsity != "l1" && c.sparsity != "kl") fail("autoencoder", "sparsity must be 'l1' or 'kl'; got '{}'", c.sparsity);
    if (c.sparsity == "kl" && !(c.rho > 0 && c.rho < 1)) fail("autoencoder", "rho must be in (0, 1); got {}", c.rho);
    return std::make_shared<DenseAE>("SparseAE", c);
  }
  if (c.model == "denoising") return std::make_shared<DenseAE>("DenoisingAE", c);
  if (c.model == "conv") return std::make_shared<ConvAE>(c);
  if (c.model == "vae") return std::make_shared<DenseVAE>(c);
  if (is_variant(c.model)) return make_vae_variant(c);
  if (c.model == "conv-vae") return std::make_shared<ConvVAE>(c);
  fail("autoencoder", "unknown model '{}' ({})", c.model, fmt::join(autoencoder_names(), ", "));
}

}  // namespace latent::models
