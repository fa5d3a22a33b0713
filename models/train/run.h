// Training runs of the autoencoder family: the training loop, the run directory
// (model.safetensors, config.json, metrics.jsonl, checkpoint.safetensors) and loading a run back.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../ae/autoencoder.h"
#include "../data/data.h"
#include "../ae/gmm.h"
#include "../data/samples.h"

namespace latent::models {

/// Everything `latent train` takes.
struct TrainOptions {
  /// The model to build (kind, sizes, penalties); see AEConfig.
  AEConfig model;
  /// Passes over the training part.
  int64_t epochs = 10;
  /// Samples per optimizer step (--distributed: the global batch).
  int64_t batch_size = 128;
  /// Learning rate.
  double lr = 1e-3;
  std::string optimizer = "adam";  ///< adam, adamw, sgd
  /// Seed of initialisation, shuffling, noise and the CSV split.
  uint64_t seed = 0;
  int threads = 0;                 ///< 0: leave OpenBLAS's default
  std::string data = kFashionMnistDir;  ///< a Fashion-MNIST folder or a .csv file
  std::string label_column;        ///< CSV: the column with class labels
  std::string out;                 ///< run directory; empty: `runs/<model>-<timestamp>`
  std::string metrics_file;        ///< also append metrics lines here
  std::string resume;              ///< run directory to resume from
  int64_t exclude_class = -1;      ///< drop this class from training (anomaly detection)
  int64_t normal_class = -1;       ///< train on this class only (one-class anomaly detection)
  int64_t limit_batches = 0;       ///< > 0: train on at most this many batches per epoch
  int64_t limit_test = 0;          ///< > 0: evaluate on at most this many test samples
  /// > 0: hold out this many training samples (chosen by the seed, before any class filter) as
  /// the evaluation part in place of the test set: model selection that never sees test labels.
  int64_t validation = 0;
  bool progress = true;            ///< show the progress bar / periodic lines
  /// Data-parallel over the ranks of mpirun (models/dist/): batch_size is the global batch,
  /// split evenly; rank 0 alone writes the run directory.
  bool distributed = false;
  int64_t dist_timeout_s = 300;    ///< a collective waiting this long ends the job, naming the missing ranks
  double bucket_mb = 1;            ///< gradient bucket size of the allreduce
  bool sync_batchnorm = false;     ///< batch-norm statistics over the global batch (dist::DDPOptions)
  /// Where the model, its optimizer state and each batch live (data is loaded and corrupted on
  /// the CPU, then copied per batch). Checkpoints are written from CPU copies, so a CUDA run
  /// loads and resumes on either device.
  Device device = kCPU;
  /// fp32, bf16 (autocast to bfloat16: VDPBF16PS products on CPUs with AVX512_BF16) or fp16
  /// (autocast to float16 with a GradScaler; on the CPU a check of the numerics, not a fast path).
  /// Parameters, checkpoints and exports stay float32 in every precision.
  std::string precision = "fp32";

  /// Every training field of `o` (a TrainOptions, const or not) once: config.json's "training"
  /// object, what --resume takes from it, and `latent train`'s options with AEConfig::fields for
  /// the model's (models/io/fields.h).
  template <class Self, class V>
  static void fields(Self& o, V& v);
};

template <class Self, class V>
void TrainOptions::fields(Self& o, V& v) {
  using F = Field;
  v.integer(F{"epochs", "N", "epochs", F::Cli | F::Stored}, o.epochs, 1, 100000);
  v.integer(F{"batch_size", "B", "batch size (--distributed: the global batch, split evenly over the ranks)"},
            o.batch_size, 1, 1 << 20);
  v.number(F{"lr", "LR", "learning rate"}, o.lr, 1e-12, 10);
  v.choice(F{"optimizer", "O", ""}, o.optimizer, {"adam", "adamw", "sgd"});
  v.integer(F{"seed", "S", "random seed"}, o.seed, 0, 1LL << 62);
  v.integer(F{"threads", "T", "threads for latent and OpenBLAS together (--distributed: per rank)", F::Cli | F::Stored,
              "OpenBLAS's own choice; --distributed: cores / ranks on the node"},
            o.threads, 0, 256);
  v.choice(F{"device", "D", "", F::Cli | F::Stored}, o.device,
           std::vector<std::pair<std::string, Device>>{{"cpu", kCPU}, {"cuda", kCUDA}});
  v.choice(F{"precision", "P", "training precision: autocast GEMMs/convolutions to bfloat16 or float16 (loss-scaled)",
             F::Cli | F::Stored}, o.precision, {"fp32", "bf16", "fp16"});
  v.text(F{"data", "PATH", "Fashion-MNIST folder or a CSV file"}, o.data);
  v.text(F{"label_column", "NAME", "CSV: the column holding class labels"}, o.label_column);
  v.text(F{"out", "DIR", "run directory", F::Cli, "runs/<model>-<timestamp>"}, o.out);
  v.text(F{"metrics_file", "FILE", "also append the metrics lines to FILE", F::Cli, "", "metrics"}, o.metrics_file);
  v.text(F{"resume", "DIR", "continue the run in DIR (from its last checkpoint)", F::Cli}, o.resume);
  v.integer(F{"exclude_class", "K", "leave class K out of training (anomaly detection)", F::All, "none"}, o.exclude_class, -1,
            1 << 20);
  v.integer(F{"normal_class", "K", "train on class K only (one-class anomaly detection)", F::All, "all classes"},
            o.normal_class, -1, 1 << 20);
  v.integer(F{"validation", "N", "hold out N training samples as the evaluation set instead of the test set",
              F::All, "none: the test set"},
            o.validation, 0, 1LL << 40);
  v.integer(F{"limit_batches", "N", "train on at most N batches per epoch (quick runs)", F::Cli}, o.limit_batches, 1,
            1LL << 40);
  v.integer(F{"limit_test", "N", "evaluate on at most N test samples", F::Cli}, o.limit_test, 1, 1LL << 40);
  v.flag(F{"progress", "", "no progress output", F::Cli, "", "quiet"}, o.progress, false);
  v.flag(F{"distributed", "", "data-parallel over the processes of mpirun -np N (MPI; see docs/distributed.md)",
           F::Cli | F::Stored}, o.distributed);
  v.integer(F{"dist_timeout_s", "S", "--distributed: end the job when a rank has not answered for S seconds", F::Cli},
            o.dist_timeout_s, 1, 1 << 20);
  v.number(F{"bucket_mb", "MB", "--distributed: gradient bucket size for the overlapped allreduce", F::Cli | F::Stored},
           o.bucket_mb, 1e-3, 1024);
  v.flag(F{"sync_batchnorm", "", "--distributed: batch norm over the global batch, not each rank's share",
           F::Cli | F::Stored}, o.sync_batchnorm);
}

/// One line of metrics.jsonl.
struct EpochMetrics {
  /// 1-based epoch number.
  int64_t epoch = 0;
  /// Mean training loss over the epoch's batches, mean test loss, the epoch's wall time in seconds,
  /// and training throughput in samples per second.
  /// @{
  double train_loss = 0, test_loss = 0, epoch_seconds = 0, samples_per_second = 0;
  /// @}
  double mean_activation = -1;        ///< sparse models
  /// VAE variants: each AELoss::terms entry averaged over the epoch's samples (this rank's).
  std::vector<std::pair<std::string, double>> loss_terms;
  /// Denoising models: MSE of the noisy and the denoised test images to the clean ones (-1 otherwise).
  /// @{
  double noisy_mse = -1, denoised_mse = -1;  ///< denoising models: MSE to the clean test images
  /// @}
  /// The training loss smoothed along the epoch: the mean over each of up to 20 equal stretches of
  /// its batches, in order ("train_curve" in metrics.jsonl; loss.svg draws it).
  std::vector<double> train_curve;
  /// The metrics.jsonl object: every field above; negative (unused) ones and an empty curve omitted.
  json::Value to_json() const;
};

/// A dataset split into training and test parts, with its sample geometry.
struct DataSplit {
  /// The training and test parts (shared, read-only).
  /// @{
  std::shared_ptr<const Dataset> train, test;
  /// @}
  /// Features per sample, and image height/width.
  /// @{
  int64_t input_dim = 0, height = 0, width = 0;  ///< height/width 0 for tabular data
  /// @}
  /// Class names by label (empty without labels).
  std::vector<std::string> class_names;
  Preprocessing preprocessing;  ///< what turned the raw samples into train and test
};

/// How load_data reads and prepares a data set.
struct DataOptions {
  std::string label_column;     ///< CSV: the column with class labels
  uint64_t seed = 0;            ///< the 80/20 split of a CSV file
  int64_t exclude_class = -1;   ///< >= 0: leave this class out of the training part
  /// Apply this stored preprocessing instead of fitting one (a trained run's own data).
  const Preprocessing* preprocessing = nullptr;
  /// CSV runs from before stored preprocessing: min-max over the whole file, as they were trained.
  bool fit_on_all_rows = false;
  int64_t normal_class = -1;    ///< >= 0: keep only this class in the training part (the test part keeps all)
  /// > 0: this many training samples (seeded choice, before the class filters) become the test
  /// part and leave the training part; the test set itself is not read.
  int64_t validation = 0;
};

/// Loads Fashion-MNIST from a folder, or a CSV file split 80/20 (seeded), flattened, optionally
/// without one class in the training part. CSV columns are min-max scaled with statistics fitted
/// on the training part only (DataSplit::preprocessing), unless options.preprocessing is given.
DataSplit load_data(const std::string& path, const DataOptions& options);
/// load_data with a label column, seed and excluded class (-1: none).
inline DataSplit load_data(const std::string& path, const std::string& label_column, uint64_t seed, int64_t exclude_class) {
  return load_data(path, DataOptions{label_column, seed, exclude_class});
}

/// Trains as `options` say and returns the run directory. Progress and summaries go to `log`.
/// With options.distributed, every rank of the MPI job calls this; rank 0 writes the run and
/// returns its directory, the other ranks return "". An error on any rank ends the whole job.
std::string train(const TrainOptions& options, FILE* log = stderr);

/// A run directory loaded back: the model with its trained weights (eval mode) and config.json.
struct LoadedRun {
  /// The run directory it was loaded from.
  std::string dir;
  /// The trained model, in eval mode.
  std::shared_ptr<Autoencoder> model;
  /// The model configuration from config.json.
  AEConfig config;
  json::Value config_json;  ///< the whole config.json (training options, data, anomaly threshold)
  /// The preprocessing fitted at training time (config.json "preprocessing"); for image runs
  /// from before it was stored, 1/255 scaling of the run's image size.
  Preprocessing preprocessing;
  /// False for CSV runs trained before column statistics were stored: new CSV data cannot be
  /// scaled as in training (open_new_data refuses; retrain).
  bool preprocessing_stored = true;
  /// rae runs: the ex-post Gaussian mixture of the training codes (gmm.safetensors, written when
  /// training ends; models/ae/gmm.h), which sample_images draws codes from. Null when the file is absent.
  std::shared_ptr<const GaussianMixture> code_density;
  /// The anomaly threshold stored at the end of training (NaN when training did not finish).
  double anomaly_threshold() const;
  /// Raw features (N, D) -> model inputs, as in training (tables: stored min-max scaling).
  Tensor preprocess(const Tensor& raw) const { return preprocessing.apply(raw); }
};

/// Loads `dir` (config.json + model.safetensors) as a ready model:
/// `auto run = latent::models::load("runs/deep-20261127-081500");`
LoadedRun load(const std::string& dir);

/// New data for a loaded run, read with its stored preprocessing (see open_samples). The run's
/// label column, if any, is read as labels. A CSV run without stored statistics fails with
/// "[data] retrain: this run has no stored column statistics ...".
std::unique_ptr<SampleSource> open_new_data(const LoadedRun& run, const std::string& path, bool ignore_extra_columns = false);

/// The data a command evaluates: with `path` empty, the run's own test split prepared with the
/// stored preprocessing; otherwise every sample of `path` (both train and test of the result).
DataSplit run_data(const LoadedRun& run, const std::string& path, bool ignore_extra_columns = false);

/// Calls fn(inputs) for the first n samples of `data` (all of them when n <= 0), in order, in
/// batches of at most `chunk`: the evaluation loop of eval, anomaly scoring and test metrics.
void for_each_chunk(const Dataset& data, int64_t n, int64_t chunk, const std::function<void(const Tensor&)>& fn);

/// Per-sample mean squared reconstruction error of `x` (N, D) -> (N) float64 values, computed
/// on the device of the model's parameters.
std::vector<double> reconstruction_errors(Autoencoder& model, const Dataset& data, int64_t limit = 0);

/// Area under the ROC curve of scores for positives vs negatives (ties count half).
double roc_auc(const std::vector<double>& scores, const std::vector<bool>& positive);
/// The ROC curve of the same scores: (false positive rate, true positive rate) after each distinct
/// threshold, from (0, 0) to (1, 1), at most `max_points` points (evenly thinned; the ends kept).
std::pair<std::vector<double>, std::vector<double>> roc_curve(const std::vector<double>& scores,
                                                              const std::vector<bool>& positive,
                                                              size_t max_points = 400);

}  // namespace latent::models
