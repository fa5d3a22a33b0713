// Data: IDX files (MNIST, Fashion-MNIST), CSV tables, datasets, a DataLoader and batch transforms.
//
//   auto train = latent::load_fashion_mnist();                       // 60000 x [1, 28, 28], uint8 in memory
//   latent::DataLoader loader(train, {.batch_size = 128, .seed = 1},
//                             {latent::transforms::masking_noise(0.25)});
//   for (auto& [x, y] : loader) ...                                  // x: float32 [128, 1, 28, 28] in [0, 1]
//
// Images stay uint8 until a batch is made (Fashion-MNIST is 47 MB as bytes, 188 MB as float32).
// The order of epoch e depends only on (seed, e), and the transforms' random numbers only on
// (seed, e, batch index), so resuming at epoch k replays exactly the batches of the uninterrupted run.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "../../autograd/tensor.h"
#include "../../ops/random.h"

namespace latent {

// ---------------------------------------------------------------- IDX

/// The contents of an IDX file of unsigned bytes: dims (big-endian in the file) and the bytes.
struct IdxArray {
  std::vector<int64_t> dims;  ///< e.g. {60000, 28, 28} for images, {60000} for labels
  std::vector<uint8_t> data;  ///< row-major, product(dims) bytes
};

/// Magic number of an IDX file of unsigned bytes with `ndim` dims: 0x00000800 + ndim.
constexpr uint32_t idx_magic(int ndim) { return 0x00000800u + static_cast<uint32_t>(ndim); }

/// Reads an IDX file of unsigned bytes, gzip-compressed or plain (zlib reads both). Checks the
/// magic number against `expected_ndim` dims when it is > 0 ("[idx] /x/train-images-idx3-ubyte.gz:
/// magic number 0x00000801, expected 0x00000803 (images)"), and that the data matches the dims
/// exactly (truncated files and trailing bytes fail).
IdxArray read_idx(const std::string& path, int expected_ndim = 0);
/// Writes an IDX file of unsigned bytes, gzip-compressed when `gzip` (for tests and tools).
void write_idx(const std::string& path, const IdxArray& array, bool gzip);

// ---------------------------------------------------------------- CSV

/// How read_csv interprets a file.
struct CsvOptions {
  std::string label_column;  ///< column holding integer class labels or class names; empty: none
  char delimiter = ',';      ///< field separator
};

/// A numeric table: features [rows, columns] float32 and optional int64 labels [rows].
struct CsvTable {
  std::vector<std::string> columns;      ///< feature column names, in file order
  Tensor features;                       ///< float32 [rows, columns.size()]
  Tensor labels;                         ///< int64 [rows]; undefined without a label column
  std::vector<std::string> class_names;  ///< when labels were names: index -> name (sorted)
};

/// Reads a CSV file with a header row and numeric columns. Labels are integers, or names mapped
/// to indices of their sorted order. Errors name file, line and column:
/// "[csv] iris.csv: line 7, column 3 ('petal_length'): 'abc' is not a number".
CsvTable read_csv(const std::string& path, const CsvOptions& options = {});

/// Most columns a CSV header may have, so a corrupt or hostile line (say 10 million delimiters)
/// fails with one line instead of allocating a string per field and matching names pairwise.
inline constexpr size_t kMaxCsvColumns = 1'000'000;

/// Splits one CSV line into fields; a field may be double-quoted ("" is a quote inside). Errors
/// name `path` and `line_no` ("[csv] a.csv: line 4: unterminated quoted field"). With `expected`
/// > 0 the line must have exactly that many fields ("line 3 has 2 fields, expected 3 (as in the
/// header)"); otherwise (a header) at most kMaxCsvColumns. Fields past the limit are counted, not stored.
std::vector<std::string> split_csv_line(std::string_view line, char delimiter, const std::string& path, size_t line_no,
                                        size_t expected = 0);
/// Parses a whole field as a number (a leading '+' allowed; "nan" and "inf" parse: check isfinite).
bool parse_csv_number(std::string_view s, double& out);

// ---------------------------------------------------------------- datasets

/// A batch: inputs [B, ...], targets (int64 labels [B], undefined for unlabelled data) and clean
/// inputs (before the corrupting transforms: the denoising target; the same tensor as inputs when
/// there are none). `auto [x, y] = batch` binds inputs and targets.
struct Batch {
  Tensor inputs;   ///< float32 [B, ...] after all transforms
  Tensor targets;  ///< int64 labels [B], or undefined
  Tensor clean;    ///< inputs without the corrupting transforms (the denoising target)
  /// inputs (0) or targets (1), for structured bindings.
  template <size_t I> const Tensor& get() const {
    if constexpr (I == 0) return inputs;
    else return targets;
  }
};

/// A random-access collection of samples.
class Dataset {
 public:
  virtual ~Dataset() = default;
  /// Number of samples.
  virtual int64_t size() const = 0;
  /// Shape of one sample's inputs ([1, 28, 28], or [784] when flattened).
  virtual Shape sample_shape() const = 0;
  /// Whether batches carry labels.
  virtual bool has_labels() const = 0;
  /// The samples at `indices` stacked into a batch: inputs float32 [B, sample_shape...], targets int64 [B].
  /// Indices out of range fail ("[data] index 70000 is out of range for a dataset of 60000").
  virtual Batch get_batch(std::span<const int64_t> indices) const = 0;
};

/// Options of IdxDataset.
struct IdxOptions {
  bool flatten = false;  ///< samples as [H*W] instead of [1, H, W]
  bool scale = true;     ///< bytes / 255 (values in [0, 1]); false keeps 0..255
};

/// Images (an IDX array [N, H, W]) and optional labels ([N]) kept as bytes; converted per batch.
class IdxDataset : public Dataset {
 public:
  /// Checks that images are 3-d and labels (if any) hold one byte per image.
  IdxDataset(std::shared_ptr<const IdxArray> images, std::shared_ptr<const IdxArray> labels,
             IdxOptions options = {});
  /// Reads both files (labels_path may be empty).
  IdxDataset(const std::string& images_path, const std::string& labels_path, IdxOptions options = {});
  /// Number of images.
  int64_t size() const override;
  /// [1, H, W], or [H*W] when flattened.
  Shape sample_shape() const override;
  /// Whether a labels file was given.
  bool has_labels() const override { return labels_ != nullptr; }
  /// Converts the chosen images to float32 (bytes / 255 when scaling) and gathers their labels.
  Batch get_batch(std::span<const int64_t> indices) const override;
  /// The raw image bytes and dims.
  const IdxArray& images() const { return *images_; }
  /// The raw label bytes (null without labels).
  const IdxArray* labels() const { return labels_.get(); }

 private:
  std::shared_ptr<const IdxArray> images_, labels_;
  IdxOptions options_;
};

/// Rows of an inputs tensor [N, ...] (float32 or float64) with optional int64 labels [N].
class TensorDataset : public Dataset {
 public:
  /// Checks that labels (if defined) are int64 [N].
  explicit TensorDataset(Tensor inputs, Tensor labels = {});
  /// Number of rows.
  int64_t size() const override;
  /// The shape of one row: inputs.shape() without its first dim.
  Shape sample_shape() const override;
  /// Whether labels were given.
  bool has_labels() const override { return labels_.defined(); }
  /// Copies the chosen rows (keeping the inputs' dtype) and labels.
  Batch get_batch(std::span<const int64_t> indices) const override;

 private:
  Tensor inputs_, labels_;
};

/// A CSV table as a dataset: features as inputs, the label column as targets.
class CsvDataset : public TensorDataset {
 public:
  /// Reads `path` with read_csv.
  explicit CsvDataset(const std::string& path, const CsvOptions& options = {});
  /// The table (column names, class names).
  const CsvTable& table() const { return table_; }

 private:
  explicit CsvDataset(CsvTable table);
  CsvTable table_;
};

/// Where Debian's dataset-fashion-mnist package installs the files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
/// Fashion-MNIST's ten class names, by label.
const std::vector<std::string>& fashion_mnist_classes();
/// The Fashion-MNIST training (60000) or test (10000) set from `dir` (train-images-idx3-ubyte.gz
/// and friends). A missing file says how to get it: "... install it with 'apt-get install
/// dataset-fashion-mnist' or pass the folder that holds it".
IdxDataset load_fashion_mnist(const std::string& dir = kFashionMnistDir, bool train = true,
                              IdxOptions options = {});

// ---------------------------------------------------------------- transforms

/// A batch transform: a function of the inputs tensor [B, ...] and a generator, returning a new
/// tensor (inputs are never modified in place). Corrupting transforms (noise) are left out of Batch::clean.
struct Transform {
  std::string name;                                      ///< for printing and errors
  std::function<Tensor(const Tensor&, Generator&)> fn;   ///< the transform itself
  bool corrupts = false;                                 ///< true for noise (denoising input only)
  /// Applies the transform.
  Tensor operator()(const Tensor& x, Generator& gen) const { return fn(x, gen); }
};

namespace transforms {
/// Maps [low, high] linearly onto [0, 1]: (x - low) / (high - low), e.g. scale(0, 255).
Transform scale(double low, double high);
/// (x - mean) / stddev, with one value for all, or one per channel (dim 1 of [B, C, ...]).
Transform normalize(std::vector<double> mean, std::vector<double> stddev);
/// [B, ...] -> [B, product].
Transform flatten();
/// x + N(0, stddev^2) per element; with `clip` the result is clamped to [0, 1]. Corrupting.
Transform gaussian_noise(double stddev, bool clip = false);
/// Sets exactly round(fraction * D) randomly chosen elements of each sample (D elements) to 0. Corrupting.
Transform masking_noise(double fraction);
/// Sets exactly round(fraction * D) random elements of each sample to `low` or `high` (each with
/// probability 1/2). Corrupting.
Transform salt_and_pepper(double fraction, double low = 0.0, double high = 1.0);
/// Mirrors each sample left-right with probability p: rows are the last dim, or runs of `width`
/// elements of it when width > 0 (flattened images: width 28).
Transform random_horizontal_flip(double p = 0.5, int64_t width = 0);
}  // namespace transforms

// ---------------------------------------------------------------- loader

/// How a DataLoader batches.
struct DataLoaderOptions {
  int64_t batch_size = 64;  ///< samples per batch (the last may be smaller unless drop_last)
  bool shuffle = true;      ///< a new seeded permutation each epoch; false: 0..N-1
  bool drop_last = false;  ///< drop the last batch when it is smaller than batch_size
  uint64_t seed = 0;       ///< shuffling and transforms of epoch e depend only on (seed, e)
  /// Data-parallel training: this loader yields rank `rank`'s shard of each epoch's order (see
  /// distributed_shard; the shards' drop_last is `shard_drop_last`), and batch i draws its
  /// transforms' random numbers as batch i * num_replicas + rank.
  int64_t num_replicas = 1;        ///< ranks sharing each epoch (1: not distributed)
  int64_t rank = 0;                ///< this loader's rank, 0 .. num_replicas - 1
  bool shard_drop_last = false;    ///< cut the order to a multiple of num_replicas rather than pad it
};

/// Rank `rank`'s part of `order` among `num_replicas` ranks, as PyTorch's DistributedSampler: the
/// order is cut to a multiple of num_replicas (drop_last) or padded to one by repeating it from its
/// start, and rank r takes positions r, r + num_replicas, ... So every shard has the same length,
/// shards are disjoint (but for the padding), and batch i of each rank's shard, with local batch
/// B / num_replicas, together are batch i of `order` in batches of B.
std::vector<int64_t> distributed_shard(const std::vector<int64_t>& order, int64_t num_replicas, int64_t rank,
                                       bool drop_last);

/// Batches of a dataset in shuffled or sequential order, with transforms applied per batch.
/// Each range-for (each begin()) runs epoch() and advances it by one; set_epoch() picks one.
class DataLoader {
 public:
  /// Iterates over the batches of one epoch, yielding Batch (structured binding: [inputs, targets]).
  class Iterator {
   public:
    using value_type = Batch;                 ///< what iteration yields
    using difference_type = std::ptrdiff_t;  ///< iterator arithmetic type
    /// The current batch (made when the iterator reached it).
    const Batch& operator*() const { return batch_; }
    /// Member access to the current batch.
    const Batch* operator->() const { return &batch_; }
    /// Makes the next batch.
    Iterator& operator++();
    /// Same position (batch index).
    bool operator==(const Iterator& other) const { return index_ == other.index_; }

   private:
    friend class DataLoader;
    Iterator(DataLoader* loader, int64_t index);
    DataLoader* loader_;
    int64_t index_;
    Batch batch_;
  };

  /// Batches `dataset` with `options`; `transforms` run in order on each batch's inputs.
  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {},
             std::vector<Transform> transforms = {});
  /// Takes a dataset by value (IdxDataset shares its bytes, so copies are cheap).
  template <class D, class = std::enable_if_t<std::is_base_of_v<Dataset, std::decay_t<D>>>>
  DataLoader(D&& dataset, DataLoaderOptions options = {}, std::vector<Transform> transforms = {})
      : DataLoader(std::make_shared<std::decay_t<D>>(std::forward<D>(dataset)), options, std::move(transforms)) {}

  /// Starts epoch() and advances epoch() by one (a loop that breaks early still used its epoch).
  Iterator begin();
  /// The end of an epoch.
  Iterator end();
  /// Batches per epoch: ceil(N / B), or floor(N / B) with drop_last.
  int64_t num_batches() const;
  /// num_batches(), LibTorch style.
  int64_t size() const { return num_batches(); }
  /// The epoch the next begin() runs (0 at first).
  int64_t epoch() const { return epoch_; }
  /// Chooses the epoch the next begin() runs (for resuming).
  void set_epoch(int64_t epoch);
  /// The sample order of epoch `e`.
  std::vector<int64_t> order(int64_t epoch) const;
  /// Batch `i` of epoch `e` (random access; what the iterator yields).
  Batch batch(int64_t epoch, int64_t i) const;
  /// The dataset.
  const Dataset& dataset() const { return *dataset_; }
  /// The options.
  const DataLoaderOptions& options() const { return options_; }

 private:
  Batch make_batch(std::span<const int64_t> indices, int64_t epoch, int64_t i) const;
  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  std::vector<Transform> transforms_;
  int64_t epoch_ = 0;
  int64_t running_epoch_ = 0;      // the epoch the current iteration runs
  std::vector<int64_t> running_;   // its order
};

}  // namespace latent

// Structured bindings for Batch: auto& [inputs, targets] = batch. (Left out of the API reference:
// Doxygen cannot place specializations of std's templates.)
/// @cond
template <>
struct std::tuple_size<latent::Batch> : std::integral_constant<size_t, 2> {};
template <size_t I>
struct std::tuple_element<I, latent::Batch> {
  using type = const latent::Tensor;
};
/// @endcond
