// A Gaussian mixture fitted by EM in float64: the ex-post density of a deterministic
// autoencoder's codes (Ghosh et al., ICLR 2020, "From variational to deterministic autoencoders":
// ex-post density estimation), which `latent sample` draws from on an rae run in place of N(0, I).
//
// Covariances are diagonal. The codes are 20-dimensional by default and fitted on up to 60000
// training codes: a diagonal component has 2D + 1 numbers where a full one has D + D(D+1)/2 + 1
// (20 x 21 / 2 = 210 more per component), its M-step is closed form per dimension with no matrix
// to factor or keep positive definite, and the variance floor is a clamp per dimension (which is
// the exact constrained maximiser, so EM's log-likelihood still never decreases). Correlations
// between code dimensions are captured by the mixture of several components rather than within one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../../autograd/tensor.h"
#include "../../ops/random.h"

namespace latent {
class Dataset;
}

namespace latent::models {

class Autoencoder;
struct LoadedRun;

/// K diagonal Gaussians in D dimensions with mixing weights, all float64.
struct GaussianMixture {
  int64_t dim = 0;                 ///< D, the dimension of a point
  std::vector<double> weights;     ///< K mixing weights, non-negative, summing to 1
  std::vector<double> means;       ///< K x D component means, row-major
  std::vector<double> variances;   ///< K x D per-dimension variances, positive

  /// K, the number of components.
  int64_t components() const { return static_cast<int64_t>(weights.size()); }
  /// log p(x) of each row of `x` (N, D) (any floating dtype): a float64 vector of N values.
  std::vector<double> log_density(const Tensor& x) const;
  /// n points (n, D) as float32: a component k chosen with probability weights[k] (inverse CDF of
  /// one uniform), then its mean plus standard normal noise times its standard deviations. With
  /// `chosen`, the component of each point is written there.
  Tensor sample(int64_t n, Generator* gen = nullptr, std::vector<int64_t>* chosen = nullptr) const;
  /// Checks sizes, weights (>= 0, sum 1 within 1e-6) and variances (> 0, finite); `where` names the
  /// source in the message ("[gmm] runs/rae/gmm.safetensors: variances must be positive ...").
  void validate(const std::string& where) const;
};

/// How fit_gaussian_mixture runs EM.
struct GmmOptions {
  int64_t components = 10;        ///< K
  int64_t max_iterations = 100;   ///< EM steps at most
  /// Stop when an EM step raises the mean log-likelihood per point by less than this.
  double tolerance = 1e-7;
  /// Each variance is at least this fraction of its dimension's variance over the data (plus
  /// 1e-12), so a component collapsing onto a few points cannot make the likelihood infinite.
  double variance_floor = 1e-4;
  uint64_t seed = 0;              ///< the k-means++ initialisation's choices
};

/// A fitted mixture and EM's history.
struct GmmFit {
  GaussianMixture mixture;            ///< the parameters after the last M-step
  /// The mean log-likelihood per point before each M-step (the E-step's value), then once more for
  /// the final parameters: EM never lets it decrease.
  std::vector<double> log_likelihood;
  int64_t iterations = 0;             ///< EM steps run
  bool converged = false;             ///< stopped by `tolerance` rather than `max_iterations`
};

/// Fits K diagonal Gaussians to the rows of `x` (N, D), N >= K, by EM in float64, starting from a
/// seeded k-means++ choice of K rows as means (each row then assigned to its nearest mean gives
/// the first weights and variances). "[gmm] ..." on a bad shape, too few rows or non-finite values.
GmmFit fit_gaussian_mixture(const Tensor& x, const GmmOptions& options = {});

/// Writes `m` as safetensors (F64 tensors "weights" (K), "means" (K, D), "variances" (K, D)).
void save_gaussian_mixture(const GaussianMixture& m, const std::string& path);
/// Reads what save_gaussian_mixture wrote, checked (GaussianMixture::validate); every error names
/// the file: "[gmm] runs/rae/gmm.safetensors: missing tensor 'means' ...".
GaussianMixture load_gaussian_mixture(const std::string& path);

/// The codes (encode) of the first `limit` samples of `data` (all when limit <= 0), on the model's
/// device in chunks, returned as one (N, code) float32 tensor on the CPU.
Tensor encode_dataset(Autoencoder& model, const Dataset& data, int64_t limit = 0);

/// The ex-post density of an rae run: fits a mixture to the model's codes of `train` and writes it
/// to DIR/gmm.safetensors (what models::load reads back into LoadedRun::code_density). Returns the fit.
GmmFit save_code_density(Autoencoder& model, const Dataset& train, const std::string& dir, const GmmOptions& options);

/// n images decoded from the run's generative distribution: the prior of a VAE run, or the stored
/// ex-post mixture of an rae run (LoadedRun::code_density). "[sample] ..." for other runs, and for
/// an rae run without its mixture (naming DIR/gmm.safetensors).
Tensor sample_images(const LoadedRun& run, int64_t n, Generator* gen = nullptr);

}  // namespace latent::models
