// New data for a trained run, prepared the way the training data was: the fitted preprocessing
// that a run stores in config.json, and sources that read CSV files (matched to the training
// columns by header name), IDX files, PNG files and folders of them in order, in batches.
//
//   auto run = latent::models::load("runs/deep-x");
//   auto source = latent::models::open_samples("new.csv", run.preprocessing);
//   while (auto batch = source->next(256)) score(batch->inputs);   // memory does not grow with the file
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../../autograd/tensor.h"
#include "data.h"
#include "../io/json.h"

namespace latent::models {

/// How raw samples become model inputs; fitted at training time and stored in config.json
/// ("preprocessing"). Tables: per-column min-max scaling to [0, 1] with the training rows'
/// minimum and maximum (a constant column scales by 1). Images: bytes times 1/255.
struct Preprocessing {
  /// Images (bytes scaled by `scale`) or table rows (per-column min-max).
  enum class Kind { Image, Table };
  /// Which of the two this is.
  Kind kind = Kind::Image;
  // Images.
  /// Images: the size every image must have, in pixels and channels.
  /// @{
  int64_t height = 28, width = 28, channels = 1;
  /// @}
  /// Images: the factor applied to each byte.
  double scale = 1.0 / 255.0;
  // Tables.
  std::vector<std::string> columns;  ///< feature columns, in model-input order
  /// Tables: each column's training minimum and maximum, in `columns` order.
  /// @{
  std::vector<double> minimum, maximum;
  /// @}

  /// Features of one sample after preprocessing.
  int64_t input_dim() const;
  /// Fits min-max scaling on `features` (rows, columns) float32: each column's min and max.
  static Preprocessing fit_table(std::vector<std::string> columns, const Tensor& features);
  /// Images of height x width, one channel, scaled by 1/255.
  static Preprocessing image(int64_t height, int64_t width);
  /// Raw features (N, D) float32 -> scaled (N, D) float32 (tables); images are scaled from bytes
  /// by the sources, so this is the identity for them.
  Tensor apply(const Tensor& raw) const;
  /// The "preprocessing" section of config.json.
  json::Value to_json() const;
  /// Parses what to_json wrote ("[config] preprocessing: field 'minimum' has 3 values for 4 columns").
  static Preprocessing from_json(const json::Value& v);
};

/// A batch of new samples: inputs (B, D) float32 after preprocessing, and what identifies them.
struct SampleBatch {
  Tensor inputs;                  ///< (B, D) float32, preprocessed
  Tensor labels;                  ///< int64 (B) when the source has labels; else undefined
  std::vector<std::string> names; ///< image files: the file name of each sample; else empty
  int64_t first_index = 0;        ///< index of the batch's first sample in the source
};

/// Options of open_samples.
struct SampleOptions {
  std::string label_column;           ///< CSV: a column to read as labels, not as a feature (may be absent)
  bool ignore_extra_columns = false;  ///< CSV: columns the run was not trained on are skipped, not an error
  std::vector<std::string> class_names;  ///< CSV: label names of the training data (labels that are not integers)
};

/// Samples read in order, a batch at a time.
class SampleSource {
 public:
  virtual ~SampleSource() = default;
  /// The next at most `max_rows` samples; nullopt at the end. Errors name the file and line.
  virtual std::optional<SampleBatch> next(int64_t max_rows) = 0;
  /// Whether batches carry labels.
  virtual bool has_labels() const = 0;
  /// Whether samples are named by file (PNG files) rather than by index.
  virtual bool named() const { return false; }
  /// CSV: how many values fell outside the training range so far (allowed, not clipped).
  virtual int64_t out_of_range() const { return 0; }
  /// What is being read, for messages ("new.csv", "12 PNG files in imgs/").
  virtual std::string description() const = 0;
};

/// Opens new data for a run whose preprocessing is `p`. `path` may be a CSV file (tables), an IDX
/// image file (gzipped or not), a single PNG, a folder of *.png files (name order), or a folder
/// holding Fashion-MNIST's files (its test set). Anything else is an error naming the path.
std::unique_ptr<SampleSource> open_samples(const std::string& path, const Preprocessing& p,
                                           const SampleOptions& options = {});

/// All samples of a source as a dataset (for commands that need random access; `score` streams).
std::shared_ptr<const Dataset> read_all_samples(SampleSource& source);

}  // namespace latent::models
