// A trained run as the service sees it: a protocol signature and a batch function over an
// InferenceSession. A run is served twice: NAME (input `input`, outputs reconstruction, code,
// score, is_anomaly; VAEs also neg_elbo) and NAME-decoder (input `code`, output reconstruction).
// The two share one session and one lock, so a model's forward passes never overlap.
// An .onnx file is served through latent's ONNX import under its graph's own input and output
// names (rows flattened: a [-1, 1, 28, 28] input is sent as rows of 784), with no preprocessing
// and no score.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "latent.h"
#include "onnx_io/onnx_import.h"
#include "protocol.h"

namespace latent::serve {

/// One model the service answers for.
class ServedModel {
 public:
  /// The scorer (`decoder` false) or the decoder of `session`, served under `name`.
  ServedModel(std::string name, std::shared_ptr<const models::InferenceSession> session,
              std::shared_ptr<std::mutex> lock, bool decoder);
  /// The imported ONNX model `module`, served under `name`; throws std::runtime_error naming
  /// `path` unless it has one FLOAT input and FLOAT outputs whose first dimension is the batch and
  /// whose other dimensions are fixed.
  ServedModel(std::string name, std::shared_ptr<onnx::OnnxModule> module, const std::string& path);
  /// Inputs, outputs and their widths.
  const ModelSignature& signature() const { return signature_; }
  /// Raw rows (N, D) float32 -> model inputs with the run's stored preprocessing (tables: min-max
  /// with the training statistics; images: pixel values 0..255 times the stored scale). The
  /// decoder's codes are used as they are.
  Tensor prepare(const Tensor& raw) const;
  /// PNG files (the `image` input) -> raw pixel rows (N x D values 0..255), decoded with
  /// models/data/png_io.h; throws ProtocolError 400 naming the file's index for a corrupt PNG or a size
  /// other than the training size.
  std::vector<float> pixels_from_png(const std::vector<std::string>& files) const;
  /// Runs prepared inputs (N, D) under no-grad: one OutputRows per signature output.
  std::vector<OutputRows> run(const Tensor& x) const;
  /// Index of the `score` and `is_anomaly` outputs (-1 for the decoder), for the metrics.
  int score_output() const { return signature_.output_index("score"); }
  int anomaly_output() const { return signature_.output_index("is_anomaly"); }
  /// The run's session (shared by NAME and NAME-decoder); null for an .onnx model.
  const models::InferenceSession* session() const { return session_.get(); }
  /// True for NAME-decoder.
  bool is_decoder() const { return decoder_; }
  /// The codes of prepared inputs (N, D) under the model's lock (the web page's scatter).
  Tensor encode(const Tensor& x) const;

 private:
  ModelSignature signature_;
  std::shared_ptr<const models::InferenceSession> session_;
  std::shared_ptr<std::mutex> lock_;
  bool decoder_ = false;
  std::shared_ptr<onnx::OnnxModule> onnx_;  ///< set for an .onnx model (then session_ is null)
  std::vector<int64_t> onnx_input_shape_;   ///< the input's shape with -1 for the batch
};

/// The scorer and decoder of the run in `dir`, served as `name` and `name-decoder`.
std::vector<std::shared_ptr<ServedModel>> serve_run(const std::string& name, models::LoadedRun run);
/// The .onnx file at `path`, imported with onnx::import_model and served as `name`.
std::shared_ptr<ServedModel> serve_onnx(const std::string& name, const std::string& path);

}  // namespace latent::serve
