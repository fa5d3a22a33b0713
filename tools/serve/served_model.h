// A trained run as the service sees it: a protocol signature and a batch function over an
// InferenceSession. A run is served twice: NAME (input `input`, outputs reconstruction, code,
// score, is_anomaly; VAEs also neg_elbo) and NAME-decoder (input `code`, output reconstruction).
// The two share one session and one lock, so a model's forward passes never overlap.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "latent.h"
#include "protocol.h"

namespace latent::serve {

/// One model the service answers for.
class ServedModel {
 public:
  /// The scorer (`decoder` false) or the decoder of `session`, served under `name`.
  ServedModel(std::string name, std::shared_ptr<const models::InferenceSession> session,
              std::shared_ptr<std::mutex> lock, bool decoder);
  /// Inputs, outputs and their widths.
  const ModelSignature& signature() const { return signature_; }
  /// Raw rows (N, D) float32 -> model inputs with the run's stored preprocessing (tables: min-max
  /// with the training statistics; images: pixel values 0..255 times the stored scale). The
  /// decoder's codes are used as they are.
  Tensor prepare(const Tensor& raw) const;
  /// PNG files (the `image` input) -> raw pixel rows (N x D values 0..255), decoded with
  /// models/png_io.h; throws ProtocolError 400 naming the file's index for a corrupt PNG or a size
  /// other than the training size.
  std::vector<float> pixels_from_png(const std::vector<std::string>& files) const;
  /// Runs prepared inputs (N, D) under no-grad: one OutputRows per signature output.
  std::vector<OutputRows> run(const Tensor& x) const;
  /// Index of the `score` and `is_anomaly` outputs (-1 for the decoder), for the metrics.
  int score_output() const { return signature_.output_index("score"); }
  int anomaly_output() const { return signature_.output_index("is_anomaly"); }

 private:
  ModelSignature signature_;
  std::shared_ptr<const models::InferenceSession> session_;
  std::shared_ptr<std::mutex> lock_;
  bool decoder_;
};

/// The scorer and decoder of the run in `dir`, served as `name` and `name-decoder`.
std::vector<std::shared_ptr<ServedModel>> serve_run(const std::string& name, models::LoadedRun run);

}  // namespace latent::serve
