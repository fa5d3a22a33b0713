// The inference session: a trained run ready to score new data. `latent score`, `latent anomaly`
// and the HTTP service all go through it, so preprocessing and scoring are written once.
//
//   latent::models::InferenceSession session(latent::models::load("runs/deep-x"));
//   auto source = session.open("new.csv");
//   while (auto batch = source->next(256)) {
//     auto s = session.score(batch->inputs);  // s.error[i], s.is_anomaly[i], s.code (N, latent)
//   }
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "../train/run.h"

namespace latent::models {

/// Per-sample results of InferenceSession::score.
struct Scores {
  Tensor reconstruction;          ///< (N, D) float32: decode(encode(x)); for VAEs decoded from z = mu
  Tensor code;                    ///< (N, code) float32: the code (VAEs: the mean mu)
  std::vector<double> error;      ///< mean squared reconstruction error per sample
  std::vector<double> neg_elbo;   ///< VAEs: reconstruction NLL at z = mu plus the analytic KL; else empty
  std::vector<bool> is_anomaly;   ///< error > the stored threshold (all false when there is none)
};

/// A loaded run in eval mode with its stored preprocessing and anomaly threshold; every call runs
/// under no-grad on the CPU and is deterministic (no sampling).
class InferenceSession {
 public:
  /// Takes over a loaded run (models::load).
  explicit InferenceSession(LoadedRun run);
  /// New data read with the run's preprocessing (see open_new_data).
  std::unique_ptr<SampleSource> open(const std::string& path, bool ignore_extra_columns = false) const;
  /// Scores preprocessed inputs x: (N, D) float32.
  Scores score(const Tensor& x) const;
  /// The code of preprocessed inputs (VAEs: the mean).
  Tensor encode(const Tensor& x) const;
  /// Reconstructions from codes.
  Tensor decode(const Tensor& z) const;
  /// Features of one preprocessed sample.
  int64_t input_dim() const { return run_.config.input_dim; }
  /// Size of the code.
  int64_t code_dim() const { return run_.config.code_dim(); }
  /// The stored anomaly threshold; NaN when the run has none.
  double threshold() const { return threshold_; }
  /// Whether the model is variational (score fills neg_elbo).
  bool variational() const { return run_.model->variational(); }
  /// The run (config, preprocessing, model).
  const LoadedRun& run() const { return run_; }

 private:
  void check_inputs(const char* what, const Tensor& x, int64_t features) const;
  LoadedRun run_;
  double threshold_;
};

}  // namespace latent::models
