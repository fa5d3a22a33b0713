#include "inference.h"

#include <cmath>

#include "../../autograd/grad_mode.h"
#include "../../ops/elementwise.h"
#include "../../ops/reduce.h"

namespace latent::models {

InferenceSession::InferenceSession(LoadedRun run) : run_(std::move(run)), threshold_(run_.anomaly_threshold()) {
  run_.model->eval();
}

std::unique_ptr<SampleSource> InferenceSession::open(const std::string& path, bool ignore_extra_columns) const {
  return open_new_data(run_, path, ignore_extra_columns);
}

void InferenceSession::check_inputs(const char* what, const Tensor& x, int64_t features) const {
  if (!x.defined() || x.dim() != 2 || x.size(1) != features)
    fail(what, "expected inputs of shape (N, {}); got {}", features, x.defined() ? fmt::format("{}", x.shape()) : "none");
  if (x.dtype() != kFloat32) fail(what, "expected float32 inputs; got {}", dtype_name(x.dtype()));
}

Tensor InferenceSession::encode(const Tensor& x) const {
  check_inputs("encode", x, input_dim());
  NoGradGuard no_grad;
  return run_.model->encode(x);
}

Tensor InferenceSession::decode(const Tensor& z) const {
  check_inputs("decode", z, code_dim());
  NoGradGuard no_grad;
  return run_.model->decode(z);
}

Scores InferenceSession::score(const Tensor& x) const {
  check_inputs("score", x, input_dim());
  NoGradGuard no_grad;
  Scores s;
  Tensor logvar;
  if (run_.model->variational()) {
    auto [mu, lv] = static_cast<VariationalAutoencoder&>(*run_.model).encode_distribution(x);
    s.code = mu;
    logvar = lv;
  } else {
    s.code = run_.model->encode(x);
  }
  s.reconstruction = run_.model->decode(s.code);
  // The same formula as training's threshold (reconstruction_errors): mean over features in float32.
  Tensor d = s.reconstruction - x;
  s.error = mean(d * d, {1}).to(kFloat64).to_vector<double>();
  if (run_.model->variational()) {
    auto& vae = static_cast<VariationalAutoencoder&>(*run_.model);
    // KL(q(z|x) || p(z)) per sample, deterministic: analytic for N(0, I), the model's own
    // estimate for a learned prior.
    Tensor kl = vae.kl_to_prior(s.code, logvar);
    Tensor nll = vae.reconstruction_nll(s.reconstruction, x);
    s.neg_elbo = (nll + kl).to(kFloat64).to_vector<double>();
  }
  s.is_anomaly.resize(s.error.size());
  for (size_t i = 0; i < s.error.size(); ++i) s.is_anomaly[i] = s.error[i] > threshold_;
  return s;
}

}  // namespace latent::models
