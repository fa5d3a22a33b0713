#include "gmm.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "../../autograd/grad_mode.h"
#include "../../ops/creation.h"
#include "../../ops/join.h"
#include "autoencoder.h"
#include "../train/run.h"
#include "../io/safetensors.h"

namespace latent::models {

namespace {

constexpr double kLog2Pi = 1.8378770664093454836;
constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<double> rows_f64(const Tensor& x) { return x.to(kFloat64).contiguous().to_vector<double>(); }

/// log w_k + log N(x; mu_k, diag(var_k)) for each k into `out` (K values).
void joint_log_densities(const GaussianMixture& m, const double* x, std::vector<double>& out) {
  const auto d = static_cast<size_t>(m.dim);
  for (size_t k = 0; k < m.weights.size(); ++k) {
    if (m.weights[k] <= 0) {
      out[k] = -kInf;
      continue;
    }
    const double* mu = &m.means[k * d];
    const double* var = &m.variances[k * d];
    double s = 0;
    for (size_t j = 0; j < d; ++j) {
      const double diff = x[j] - mu[j];
      s += diff * diff / var[j] + std::log(var[j]);
    }
    out[k] = std::log(m.weights[k]) - 0.5 * (s + kLog2Pi * static_cast<double>(d));
  }
}

/// log sum_k exp(v_k), with every v_k = -inf giving -inf.
double log_sum_exp(const std::vector<double>& v) {
  const double top = *std::max_element(v.begin(), v.end());
  if (top == -kInf) return -kInf;
  double s = 0;
  for (double x : v) s += std::exp(x - top);
  return top + std::log(s);
}

/// E-step: responsibilities (N x K) and the mean log-likelihood per point.
double e_step(const GaussianMixture& m, const std::vector<double>& x, size_t n, std::vector<double>& resp) {
  const auto k = static_cast<size_t>(m.components()), d = static_cast<size_t>(m.dim);
  std::vector<double> joint(k);
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    joint_log_densities(m, &x[i * d], joint);
    const double ll = log_sum_exp(joint);
    total += ll;
    for (size_t c = 0; c < k; ++c) resp[i * k + c] = std::exp(joint[c] - ll);
  }
  return total / static_cast<double>(n);
}

/// M-step from responsibilities: weights, means and floored variances.
void m_step(GaussianMixture& m, const std::vector<double>& x, size_t n, const std::vector<double>& resp,
            const std::vector<double>& floor) {
  const auto k = static_cast<size_t>(m.components()), d = static_cast<size_t>(m.dim);
  for (size_t c = 0; c < k; ++c) {
    double nk = 0;
    std::vector<double> sum(d, 0.0), sq(d, 0.0);
    for (size_t i = 0; i < n; ++i) {
      const double r = resp[i * k + c];
      if (r == 0) continue;
      nk += r;
      for (size_t j = 0; j < d; ++j) sum[j] += r * x[i * d + j];
    }
    m.weights[c] = nk / static_cast<double>(n);
    if (nk <= 0) {  // a component no point belongs to keeps weight 0 (and never comes back)
      for (size_t j = 0; j < d; ++j) m.variances[c * d + j] = floor[j];
      continue;
    }
    for (size_t j = 0; j < d; ++j) m.means[c * d + j] = sum[j] / nk;
    for (size_t i = 0; i < n; ++i) {
      const double r = resp[i * k + c];
      if (r == 0) continue;
      for (size_t j = 0; j < d; ++j) {
        const double diff = x[i * d + j] - m.means[c * d + j];
        sq[j] += r * diff * diff;
      }
    }
    for (size_t j = 0; j < d; ++j) m.variances[c * d + j] = std::max(sq[j] / nk, floor[j]);
  }
}

double squared_distance(const double* a, const double* b, size_t d) {
  double s = 0;
  for (size_t j = 0; j < d; ++j) s += (a[j] - b[j]) * (a[j] - b[j]);
  return s;
}

/// k-means++ (Arthur and Vassilvitskii 2007): the first centre uniformly, each next one with
/// probability proportional to the squared distance to the nearest centre chosen so far.
std::vector<size_t> kmeans_pp(const std::vector<double>& x, size_t n, size_t d, size_t k, Generator& gen) {
  std::vector<size_t> centres{static_cast<size_t>(gen.below(n))};
  std::vector<double> nearest(n, kInf);
  while (centres.size() < k) {
    const double* c = &x[centres.back() * d];
    double total = 0;
    for (size_t i = 0; i < n; ++i) {
      nearest[i] = std::min(nearest[i], squared_distance(&x[i * d], c, d));
      total += nearest[i];
    }
    size_t pick = static_cast<size_t>(gen.below(n));  // all points on the centres: any point
    if (total > 0) {
      double u = gen.uniform() * total;
      for (size_t i = 0; i < n; ++i) {
        u -= nearest[i];
        if (u < 0 || i + 1 == n) {
          pick = i;
          break;
        }
      }
    }
    centres.push_back(pick);
  }
  return centres;
}

}  // namespace

std::vector<double> GaussianMixture::log_density(const Tensor& x) const {
  if (x.dim() != 2 || x.size(1) != dim)
    fail("gmm", "expected points (N, {}) for a mixture in {} dimensions; got {}", dim, dim, x.shape());
  const std::vector<double> v = rows_f64(x);
  const auto n = static_cast<size_t>(x.size(0)), d = static_cast<size_t>(dim);
  std::vector<double> joint(weights.size()), out(n);
  for (size_t i = 0; i < n; ++i) {
    joint_log_densities(*this, &v[i * d], joint);
    out[i] = log_sum_exp(joint);
  }
  return out;
}

Tensor GaussianMixture::sample(int64_t n, Generator* gen, std::vector<int64_t>* chosen) const {
  if (n <= 0) fail("gmm", "number of samples must be positive; got {}", n);
  if (weights.empty()) fail("gmm", "the mixture has no components");
  Generator& g = gen ? *gen : default_generator();
  const auto d = static_cast<size_t>(dim);
  std::vector<float> out(static_cast<size_t>(n) * d);
  if (chosen) chosen->assign(static_cast<size_t>(n), 0);
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
    double u = g.uniform();
    size_t k = 0;
    while (k + 1 < weights.size() && (u -= weights[k]) >= 0) ++k;
    if (chosen) (*chosen)[i] = static_cast<int64_t>(k);
    for (size_t j = 0; j < d; ++j)
      out[i * d + j] = static_cast<float>(means[k * d + j] + std::sqrt(variances[k * d + j]) * g.normal());
  }
  return from_vector(out, {n, dim});
}

void GaussianMixture::validate(const std::string& where) const {
  const auto k = weights.size(), d = static_cast<size_t>(dim);
  if (k == 0 || dim <= 0) fail("gmm", "{}: expected at least one component in at least one dimension; got {} x {}", where, k, dim);
  if (means.size() != k * d || variances.size() != k * d)
    fail("gmm", "{}: {} components in {} dimensions need {} means and variances; got {} and {}", where, k, dim, k * d,
         means.size(), variances.size());
  double total = 0;
  for (double w : weights) {
    if (!(w >= 0 && w <= 1)) fail("gmm", "{}: mixing weights must be in [0, 1]; got {}", where, w);
    total += w;
  }
  if (std::abs(total - 1) > 1e-6) fail("gmm", "{}: mixing weights must sum to 1; got {}", where, total);
  for (double m : means)
    if (!std::isfinite(m)) fail("gmm", "{}: means must be finite; got {}", where, m);
  for (double v : variances)
    if (!(v > 0 && std::isfinite(v))) fail("gmm", "{}: variances must be positive and finite; got {}", where, v);
}

GmmFit fit_gaussian_mixture(const Tensor& x, const GmmOptions& o) {
  if (x.dim() != 2 || x.size(1) < 1) fail("gmm", "expected points (N, D); got {}", x.shape());
  if (o.components < 1 || x.size(0) < o.components)
    fail("gmm", "{} components need at least as many points; got {}", o.components, x.size(0));
  if (o.max_iterations < 1) fail("gmm", "max_iterations must be at least 1; got {}", o.max_iterations);
  if (!(o.variance_floor >= 0)) fail("gmm", "variance_floor must be non-negative; got {}", o.variance_floor);
  const std::vector<double> v = rows_f64(x);
  for (double e : v)
    if (!std::isfinite(e)) fail("gmm", "points must be finite; got {}", e);
  const auto n = static_cast<size_t>(x.size(0)), d = static_cast<size_t>(x.size(1)), k = static_cast<size_t>(o.components);
  // Per-dimension data variance -> the floor.
  std::vector<double> floor(d, 0.0), mean(d, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) mean[j] += v[i * d + j];
  for (double& m : mean) m /= static_cast<double>(n);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) floor[j] += (v[i * d + j] - mean[j]) * (v[i * d + j] - mean[j]);
  for (double& f : floor) f = o.variance_floor * f / static_cast<double>(n) + 1e-12;

  GmmFit fit;
  GaussianMixture& m = fit.mixture;
  m.dim = x.size(1);
  m.weights.assign(k, 0.0);
  m.means.assign(k * d, 0.0);
  m.variances.assign(k * d, 0.0);
  Generator gen(o.seed);
  const std::vector<size_t> centres = kmeans_pp(v, n, d, k, gen);
  // Hard assignment to the nearest centre as the first responsibilities.
  std::vector<double> resp(n * k, 0.0);
  for (size_t i = 0; i < n; ++i) {
    size_t best = 0;
    double best_d = kInf;
    for (size_t c = 0; c < k; ++c) {
      const double dist = squared_distance(&v[i * d], &v[centres[c] * d], d);
      if (dist < best_d) best_d = dist, best = c;
    }
    resp[i * k + best] = 1;
  }
  for (size_t c = 0; c < k; ++c)
    std::copy(&v[centres[c] * d], &v[centres[c] * d] + d, &m.means[c * d]);
  m_step(m, v, n, resp, floor);
  for (fit.iterations = 0; fit.iterations < o.max_iterations; ++fit.iterations) {
    const double ll = e_step(m, v, n, resp);
    if (!fit.log_likelihood.empty() && ll - fit.log_likelihood.back() < o.tolerance) {
      fit.log_likelihood.push_back(ll);
      fit.converged = true;
      return fit;  // this E-step's value belongs to the parameters we keep
    }
    fit.log_likelihood.push_back(ll);
    m_step(m, v, n, resp, floor);
  }
  fit.log_likelihood.push_back(e_step(m, v, n, resp));
  return fit;
}

void save_gaussian_mixture(const GaussianMixture& m, const std::string& path) {
  m.validate(path);
  const int64_t k = m.components();
  safetensors::save_file({{"weights", from_vector(m.weights, {k})},
                          {"means", from_vector(m.means, {k, m.dim})},
                          {"variances", from_vector(m.variances, {k, m.dim})}},
                         path, {{"format", "latent diagonal gaussian mixture"}});
}

GaussianMixture load_gaussian_mixture(const std::string& path) {
  if (!std::filesystem::exists(path)) fail("gmm", "{} is missing", path);
  safetensors::File f;
  try {
    f = safetensors::load_file(path);
  } catch (const Error& e) {
    fail("gmm", "{}: not a readable mixture file: {}", path, e.what());
  }
  auto get = [&](const char* name, int64_t dims) {
    Tensor t = find_tensor(f.tensors, name);
    if (!t.defined()) fail("gmm", "{}: missing tensor '{}' (expected weights, means, variances)", path, name);
    if (t.dim() != dims) fail("gmm", "{}: tensor '{}' must have {} dimensions; got {}", path, name, dims, t.shape());
    if (!is_floating(t.dtype())) fail("gmm", "{}: tensor '{}' must be floating point; got {}", path, name, dtype_name(t.dtype()));
    return t;
  };
  Tensor w = get("weights", 1), mu = get("means", 2), var = get("variances", 2);
  if (mu.size(0) != w.size(0) || var.shape() != mu.shape())
    fail("gmm", "{}: weights {}, means {} and variances {} do not describe one mixture", path, w.shape(), mu.shape(), var.shape());
  GaussianMixture m;
  m.dim = mu.size(1);
  m.weights = rows_f64(w);
  m.means = rows_f64(mu);
  m.variances = rows_f64(var);
  m.validate(path);
  return m;
}

Tensor encode_dataset(Autoencoder& model, const Dataset& data, int64_t limit) {
  NoGradGuard no_grad;
  const std::vector<Tensor> params = model.parameters();
  const Device device = params.empty() ? kCPU : params[0].device();
  std::vector<Tensor> codes;
  for_each_chunk(data, limit, 1000, [&](const Tensor& x) { codes.push_back(model.encode(x.to(device)).to(kCPU)); });
  if (codes.empty()) fail("gmm", "no samples to encode");
  return cat(codes, 0);
}

GmmFit save_code_density(Autoencoder& model, const Dataset& train, const std::string& dir, const GmmOptions& options) {
  GmmFit fit = fit_gaussian_mixture(encode_dataset(model, train), options);
  save_gaussian_mixture(fit.mixture, dir + "/gmm.safetensors");
  return fit;
}

Tensor sample_images(const LoadedRun& run, int64_t n, Generator* gen) {
  if (n <= 0) fail("sample", "number of samples must be positive; got {}", n);
  if (run.model->variational()) return static_cast<VariationalAutoencoder&>(*run.model).sample(n, gen);
  if (run.config.model != "rae")
    fail("sample", "'{}' holds a {} model: sampling needs a VAE run or an rae run (with its ex-post mixture)", run.dir,
         run.config.model);
  if (!run.code_density)
    fail("sample", "{}/gmm.safetensors is missing: an rae run stores its ex-post Gaussian mixture there when "
         "training ends (train again, or let the run finish)", run.dir);
  if (run.code_density->dim != run.config.code_dim())
    fail("sample", "{}/gmm.safetensors: the mixture is {}-dimensional but the model's codes have {} dimensions", run.dir,
         run.code_density->dim, run.config.code_dim());
  NoGradGuard no_grad;
  const std::vector<Tensor> params = run.model->parameters();
  Tensor z = run.code_density->sample(n, gen);
  return run.model->decode(params.empty() ? z : z.to(params[0].device()));
}

}  // namespace latent::models
