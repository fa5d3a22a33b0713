// A FID-free check of generated samples (issue 19): for a trained run, decode N codes drawn from
// the run's generative distribution (a VAE's prior; an rae run's stored ex-post Gaussian mixture,
// models/ae/gmm.h) and, beside them, N codes from N(0, I), and print for each set the mean over samples
// of the squared distance (summed over pixels) to the nearest training image, and their ratio.
// Samples that look like data sit close to some training image; blurry means or off-manifold
// codes sit far from all of them. (It rewards copying the training set, so it is a sanity check
// for comparing samplers of one model, not a quality score across models.)
//
//   build/bench/sample_quality RUN [N (default 1000)] [SEED (default 0)]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "latent.h"

using namespace latent;

namespace {

/// Mean over rows of s (N, D) of min over training rows t of |s - t|^2.
double mean_nearest_distance(const Tensor& s, const Dataset& train) {
  NoGradGuard no_grad;
  Tensor best;
  Tensor ss = sum(s * s, {1}, true);  // (N, 1)
  models::for_each_chunk(train, 0, 5000, [&](const Tensor& t) {
    Tensor d = ss - matmul(s, t.t()) * 2.0 + sum(t * t, {1}).unsqueeze(0);  // (N, chunk)
    Tensor m = std::get<0>(min(d, 1));
    best = best.defined() ? minimum(best, m) : m;
  });
  return mean(best).item<double>();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: sample_quality RUN [N] [SEED]\n");
    return 2;
  }
  try {
    const int64_t n = argc > 2 ? std::atoll(argv[2]) : 1000;
    const uint64_t seed = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 0;
    models::LoadedRun run = models::load(argv[1]);
    models::DataSplit split = models::run_data(run, "");
    Generator g1(seed), g2(seed);
    const Tensor own = models::sample_images(run, n, &g1);
    Tensor normal;
    {
      NoGradGuard no_grad;
      normal = run.model->decode(randn({n, run.config.code_dim()}, kFloat32, &g2));
    }
    const double d_own = mean_nearest_distance(own, *split.train);
    const double d_normal = mean_nearest_distance(normal, *split.train);
    const char* sampler = run.model->variational() ? "prior" : "ex-post GMM";
    std::printf("%s: %lld samples, mean squared distance to the nearest of %lld training images\n", argv[1],
                static_cast<long long>(n), static_cast<long long>(split.train->size()));
    std::printf("  %-12s %.3f\n  %-12s %.3f\n  ratio        %.3f\n", sampler, d_own, "N(0, I)", d_normal, d_own / d_normal);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sample_quality: %s\n", e.what());
    return 1;
  }
}
