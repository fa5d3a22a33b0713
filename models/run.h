// Training runs of the autoencoder family: the training loop, the run directory
// (model.safetensors, config.json, metrics.jsonl, checkpoint.safetensors) and loading a run back.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autoencoder.h"
#include "data.h"

namespace latent::models {

/// Everything `latent train` takes.
struct TrainOptions {
  AEConfig model;
  int64_t epochs = 10;
  int64_t batch_size = 128;
  double lr = 1e-3;
  std::string optimizer = "adam";  ///< adam, adamw, sgd
  uint64_t seed = 0;
  int threads = 0;                 ///< 0: leave OpenBLAS's default
  std::string data = kFashionMnistDir;  ///< a Fashion-MNIST folder or a .csv file
  std::string label_column;        ///< CSV: the column with class labels
  std::string out;                 ///< run directory; empty: runs/<model>-<timestamp>
  std::string metrics_file;        ///< also append metrics lines here
  std::string resume;              ///< run directory to resume from
  int64_t exclude_class = -1;      ///< drop this class from training (anomaly detection)
  int64_t limit_batches = 0;       ///< > 0: train on at most this many batches per epoch
  int64_t limit_test = 0;          ///< > 0: evaluate on at most this many test samples
  bool progress = true;            ///< show the progress bar / periodic lines
  /// Where the model, its optimizer state and each batch live (data is loaded and corrupted on
  /// the CPU, then copied per batch). Checkpoints are written from CPU copies, so a CUDA run
  /// loads and resumes on either device.
  Device device = kCPU;
};

/// One line of metrics.jsonl.
struct EpochMetrics {
  int64_t epoch = 0;
  double train_loss = 0, test_loss = 0, epoch_seconds = 0, samples_per_second = 0;
  double mean_activation = -1;        ///< sparse models
  double noisy_mse = -1, denoised_mse = -1;  ///< denoising models: MSE to the clean test images
  json::Value to_json() const;
};

/// A dataset split into training and test parts, with its sample geometry.
struct DataSplit {
  std::shared_ptr<const Dataset> train, test;
  int64_t input_dim = 0, height = 0, width = 0;  ///< height/width 0 for tabular data
  std::vector<std::string> class_names;
};

/// Loads Fashion-MNIST from a folder or a CSV file (80/20 split, seeded), flattened, optionally
/// without one class in the training part.
DataSplit load_data(const std::string& path, const std::string& label_column, uint64_t seed, int64_t exclude_class);

/// Trains as `options` say and returns the run directory. Progress and summaries go to `log`.
std::string train(const TrainOptions& options, FILE* log = stderr);

/// A run directory loaded back: the model with its trained weights (eval mode) and config.json.
struct LoadedRun {
  std::string dir;
  std::shared_ptr<Autoencoder> model;
  AEConfig config;
  json::Value config_json;  ///< the whole config.json (training options, data, anomaly threshold)
};

/// Loads `dir` (config.json + model.safetensors) as a ready model:
/// `auto run = latent::models::load("runs/deep-20261127-081500");`
LoadedRun load(const std::string& dir);

/// Calls fn(inputs) for the first n samples of `data` (all of them when n <= 0), in order, in
/// batches of at most `chunk`: the evaluation loop of eval, anomaly scoring and test metrics.
void for_each_chunk(const Dataset& data, int64_t n, int64_t chunk, const std::function<void(const Tensor&)>& fn);

/// Per-sample mean squared reconstruction error of `x` (N, D) -> (N) float64 values, computed
/// on the device of the model's parameters.
std::vector<double> reconstruction_errors(Autoencoder& model, const Dataset& data, int64_t limit = 0);

/// Area under the ROC curve of scores for positives vs negatives (ties count half).
double roc_auc(const std::vector<double>& scores, const std::vector<bool>& positive);

}  // namespace latent::models
