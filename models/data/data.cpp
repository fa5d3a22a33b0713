// IDX and CSV readers, datasets and the DataLoader. Transforms live in data_transforms below.
#include "data.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <unordered_map>

#include "../../ops/creation.h"
#include "../io/checkpoint.h"

namespace latent {

namespace {

// A sanity cap on IDX payloads, so a corrupt header cannot ask for an absurd allocation.
constexpr uint64_t kMaxIdxBytes = uint64_t{1} << 34;  // 16 GiB

const char* idx_kind(int ndim) { return ndim == 3 ? "images" : ndim == 1 ? "labels" : "array"; }

std::string type_code_name(unsigned code) {
  switch (code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "unknown";
  }
}

/// A gzFile that closes itself.
struct GzReader {
  gzFile f = nullptr;
  explicit GzReader(const std::string& path) {
    f = gzopen(path.c_str(), "rb");
    if (!f) fail("idx", "{}: cannot open ({})", path, errno ? std::strerror(errno) : "out of memory");
    gzbuffer(f, 1 << 17);
  }
  ~GzReader() {
    if (f) gzclose(f);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;
  /// Reads up to n bytes; returns how many were read (fewer at end of file or on error).
  size_t read(void* dst, size_t n) {
    size_t done = 0;
    while (done < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      const int got = gzread(f, static_cast<char*>(dst) + done, chunk);
      if (got <= 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }
  /// zlib's error text, or "" when the stream simply ended.
  std::string error() {
    int code = Z_OK;
    const char* msg = gzerror(f, &code);
    return code == Z_OK || !msg ? std::string() : fmt::format(" ({})", msg);
  }
};

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void append_be32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xFF);
}

/// A gzip stream of `bytes` (deflate with the gzip wrapper), built in memory.
std::string gzip_bytes(const std::string& bytes, const std::string& path) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    fail("idx", "{}: deflateInit2 failed", path);
  std::string out(deflateBound(&zs, bytes.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) fail("idx", "{}: gzip compression failed (zlib code {})", path, rc);
  return out;
}

std::string dims_text(const std::vector<int64_t>& dims) { return fmt::format("{}", fmt::join(dims, " x ")); }

}  // namespace

// ---------------------------------------------------------------- IDX

IdxArray read_idx(const std::string& path, int expected_ndim) {
  errno = 0;
  GzReader in(path);
  uint8_t magic_bytes[4];
  const size_t got_magic = in.read(magic_bytes, 4);
  if (got_magic < 4)
    fail("idx", "{}: truncated: {} bytes, the IDX magic number needs 4{}", path, got_magic, in.error());
  const uint32_t magic = read_be32(magic_bytes);
  if (expected_ndim > 0 && magic != idx_magic(expected_ndim))
    fail("idx", "{}: magic number 0x{:08x}, expected 0x{:08x} ({})", path, magic, idx_magic(expected_ndim),
         idx_kind(expected_ndim));
  if (magic_bytes[0] != 0 || magic_bytes[1] != 0)
    fail("idx", "{}: magic number 0x{:08x} does not start with two zero bytes: not an IDX file", path, magic);
  if (magic_bytes[2] != 0x08)
    fail("idx", "{}: magic number 0x{:08x}: element type 0x{:02x} ({}) is not supported, expected 0x08 (unsigned byte)",
         path, magic, magic_bytes[2], type_code_name(magic_bytes[2]));
  const int ndim = magic_bytes[3];
  if (ndim < 1 || ndim > kMaxDims)
    fail("idx", "{}: magic number 0x{:08x} gives {} dims, expected 1 to {}", path, magic, ndim, kMaxDims);

  IdxArray array;
  uint64_t total = 1;
  for (int d = 0; d < ndim; ++d) {
    uint8_t b[4];
    const size_t got = in.read(b, 4);
    if (got < 4)
      fail("idx", "{}: truncated header: {} dims announced, the file ends inside dim {}{}", path, ndim, d,
           in.error());
    const uint32_t size = read_be32(b);
    array.dims.push_back(size);
    if (__builtin_mul_overflow(total, uint64_t{size}, &total) || total > kMaxIdxBytes)
      fail("idx", "{}: dims {} ask for more than {} bytes: corrupt header", path,
           dims_text(array.dims), kMaxIdxBytes);
  }
  // Grow the buffer as data arrives (1 MiB, then doubling) rather than trusting the header: a
  // header claiming a million images in a file that holds one allocates 1 MiB before failing, and
  // a real file at most twice its data.
  uint64_t got = 0;
  while (got < total) {
    const uint64_t want = std::min(std::max(got, uint64_t{1} << 20), total - got);
    array.data.resize(got + want);
    const size_t n = in.read(array.data.data() + got, want);
    got += n;
    if (n < want) break;
  }
  if (got < total)
    fail("idx", "{}: truncated: the header says {} = {} bytes of data, found {}{}", path, dims_text(array.dims),
         total, got, in.error());
  uint8_t extra[64];
  const size_t trailing = in.read(extra, sizeof extra);
  if (trailing > 0)
    fail("idx", "{}: {}{} bytes after the {} = {} bytes of data the header announces", path,
         trailing == sizeof extra ? "at least " : "", trailing, dims_text(array.dims), total);
  return array;
}

void write_idx(const std::string& path, const IdxArray& array, bool gzip) {
  uint64_t total = 1;
  for (int64_t d : array.dims) {
    if (d < 0 || d > UINT32_MAX) fail("idx", "{}: dim {} does not fit the IDX header", path, d);
    total *= static_cast<uint64_t>(d);
  }
  if (array.dims.empty() || array.dims.size() > static_cast<size_t>(kMaxDims))
    fail("idx", "{}: {} dims, expected 1 to {}", path, array.dims.size(), kMaxDims);
  if (total != array.data.size())
    fail("idx", "{}: dims {} need {} bytes, the array holds {}", path, dims_text(array.dims), total, array.data.size());
  std::string bytes;
  append_be32(bytes, idx_magic(static_cast<int>(array.dims.size())));
  for (int64_t d : array.dims) append_be32(bytes, static_cast<uint32_t>(d));
  bytes.append(reinterpret_cast<const char*>(array.data.data()), array.data.size());
  write_file_atomic(path, gzip ? gzip_bytes(bytes, path) : bytes);
}

// ---------------------------------------------------------------- CSV

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::vector<std::string> split_csv_line(std::string_view line, char delimiter, const std::string& path,
                                        size_t line_no, size_t expected) {
  const size_t limit = expected > 0 ? expected : kMaxCsvColumns;
  std::vector<std::string> fields;
  size_t count = 0;  // fields seen; only the first `limit` are stored
  auto finish = [&]() -> std::vector<std::string> {
    if (expected > 0 && count != expected)
      fail("csv", "{}: line {} has {} fields, expected {} (as in the header)", path, line_no, count, expected);
    if (count > limit)
      fail("csv", "{}: line {} has {} columns, more than the limit of {} (is the delimiter right?)", path, line_no,
           count, limit);
    return std::move(fields);
  };
  size_t i = 0;
  while (true) {
    std::string field;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i < line.size() && line[i] == '"') {
      ++i;
      while (true) {
        if (i >= line.size()) fail("csv", "{}: line {}: unterminated quoted field", path, line_no);
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += line[i++];
      }
      while (i < line.size() && line[i] != delimiter) {
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
          fail("csv", "{}: line {}: text after a closing quote in field {}", path, line_no, count + 1);
        ++i;
      }
    } else {
      const size_t end = std::min(line.find(delimiter, i), line.size());
      field = std::string(trim(line.substr(i, end - i)));
      i = end;
    }
    if (++count <= limit) fields.push_back(std::move(field));
    if (i >= line.size()) return finish();
    ++i;  // delimiter
  }
}

bool parse_csv_number(std::string_view s, double& out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

namespace {

bool parse_int(std::string_view s, int64_t& out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

}  // namespace

CsvTable read_csv(const std::string& path, const CsvOptions& options) {
  const std::string text = read_file(path, "csv");
  std::vector<std::pair<size_t, std::string_view>> lines;  // (1-based line number, text)
  size_t start = 0, line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    std::string_view line(text.data() + start, end - start);
    if (!trim(line).empty()) lines.emplace_back(line_no, line);
    start = end + 1;
  }
  if (lines.empty()) fail("csv", "{}: the file is empty: expected a header row", path);

  const std::vector<std::string> header = split_csv_line(lines[0].second, options.delimiter, path, lines[0].first);
  int label_index = -1;
  CsvTable table;
  std::unordered_map<std::string_view, size_t> seen;  // name -> first column, so wide headers stay linear
  for (size_t c = 0; c < header.size(); ++c) {
    if (header[c].empty()) fail("csv", "{}: line {}: column {} of the header has no name", path, lines[0].first, c + 1);
    if (const auto [it, fresh] = seen.emplace(header[c], c); !fresh)
      fail("csv", "{}: line {}: duplicate column name '{}' (columns {} and {})", path, lines[0].first, header[c],
           it->second + 1, c + 1);
    if (!options.label_column.empty() && header[c] == options.label_column)
      label_index = static_cast<int>(c);
    else
      table.columns.push_back(header[c]);
  }
  if (!options.label_column.empty() && label_index < 0)
    fail("csv", "{}: label column '{}' not found; the columns are: {}", path, options.label_column,
         fmt::join(header, ", "));

  const size_t rows = lines.size() - 1, cols = table.columns.size();
  std::vector<float> values;
  // Every value takes at least one byte of the file, so this never reserves beyond its size.
  values.reserve(std::min(rows * cols, text.size()));
  std::vector<std::string> label_text;
  for (size_t r = 1; r < lines.size(); ++r) {
    const auto [no, line] = lines[r];
    const std::vector<std::string> fields = split_csv_line(line, options.delimiter, path, no, header.size());
    for (size_t c = 0; c < fields.size(); ++c) {
      if (static_cast<int>(c) == label_index) {
        if (fields[c].empty()) fail("csv", "{}: line {}, column {} ('{}'): empty label", path, no, c + 1, header[c]);
        label_text.push_back(fields[c]);
        continue;
      }
      double v = 0;
      if (fields[c].empty())
        fail("csv", "{}: line {}, column {} ('{}'): empty field, expected a number", path, no, c + 1, header[c]);
      if (!parse_csv_number(fields[c], v))
        fail("csv", "{}: line {}, column {} ('{}'): '{}' is not a number", path, no, c + 1, header[c], fields[c]);
      if (!std::isfinite(static_cast<float>(v)))  // float32 features: 1e39 overflows too
        fail("csv", "{}: line {}, column {} ('{}'): '{}' is not a finite number (float32 holds up to 3.4e38)", path, no, c + 1,
             header[c], fields[c]);
      values.push_back(static_cast<float>(v));
    }
  }
  table.features = from_vector(values, {static_cast<int64_t>(rows), static_cast<int64_t>(cols)});
  if (label_index >= 0) {
    std::vector<int64_t> labels(rows);
    bool integers = true;
    for (size_t r = 0; r < rows && integers; ++r) integers = parse_int(label_text[r], labels[r]);
    if (!integers) {
      // Class names: indices follow the sorted names (as scikit-learn's LabelEncoder does).
      std::map<std::string, int64_t> index;
      for (const std::string& s : label_text) index.emplace(s, 0);
      for (auto& [name, i] : index) {
        i = static_cast<int64_t>(table.class_names.size());
        table.class_names.push_back(name);
      }
      for (size_t r = 0; r < rows; ++r) labels[r] = index[label_text[r]];
    }
    table.labels = from_vector(labels, {static_cast<int64_t>(rows)});
  }
  return table;
}

// ---------------------------------------------------------------- datasets

namespace {

void check_indices(std::span<const int64_t> indices, int64_t n) {
  for (int64_t i : indices)
    if (i < 0 || i >= n) fail("data", "index {} is out of range for a dataset of {}", i, n);
}

}  // namespace

IdxDataset::IdxDataset(std::shared_ptr<const IdxArray> images, std::shared_ptr<const IdxArray> labels,
                       IdxOptions options)
    : images_(std::move(images)), labels_(std::move(labels)), options_(options) {
  if (!images_) fail("idx", "images are null");
  if (images_->dims.size() != 3)
    fail("idx", "images must be 3-d [N, H, W]; got {} dims ({})", images_->dims.size(), dims_text(images_->dims));
  if (labels_) {
    if (labels_->dims.size() != 1)
      fail("idx", "labels must be 1-d [N]; got {} dims ({})", labels_->dims.size(), dims_text(labels_->dims));
    if (labels_->dims[0] != images_->dims[0])
      fail("idx", "{} labels for {} images", labels_->dims[0], images_->dims[0]);
  }
}

IdxDataset::IdxDataset(const std::string& images_path, const std::string& labels_path, IdxOptions options)
    : IdxDataset(std::make_shared<const IdxArray>(read_idx(images_path, 3)),
                 labels_path.empty() ? nullptr : std::make_shared<const IdxArray>(read_idx(labels_path, 1)),
                 options) {}

int64_t IdxDataset::size() const { return images_->dims[0]; }

Shape IdxDataset::sample_shape() const {
  const int64_t h = images_->dims[1], w = images_->dims[2];
  return options_.flatten ? Shape{h * w} : Shape{1, h, w};
}

Batch IdxDataset::get_batch(std::span<const int64_t> indices) const {
  check_indices(indices, size());
  const int64_t batch = static_cast<int64_t>(indices.size());
  const size_t sample = static_cast<size_t>(images_->dims[1] * images_->dims[2]);
  Shape shape = sample_shape();
  shape.insert(0, batch);
  Batch out;
  out.inputs = empty(shape, kFloat32);
  // The same float as PyTorch's byte_tensor.float() / 255 (a true division, which the compiler
  // vectorises; dividing by 1 is exact when not scaling).
  const float divisor = options_.scale ? 255.0f : 1.0f;
  float* dst = out.inputs.data_ptr<float>();
  for (int64_t b = 0; b < batch; ++b) {
    const uint8_t* __restrict src = images_->data.data() + static_cast<size_t>(indices[static_cast<size_t>(b)]) * sample;
    float* __restrict row = dst + static_cast<size_t>(b) * sample;
    for (size_t k = 0; k < sample; ++k) row[k] = static_cast<float>(src[k]) / divisor;
  }
  if (labels_) {
    out.targets = empty({batch}, kInt64);
    int64_t* t = out.targets.data_ptr<int64_t>();
    for (int64_t b = 0; b < batch; ++b) t[b] = labels_->data[static_cast<size_t>(indices[static_cast<size_t>(b)])];
  }
  out.clean = out.inputs;
  return out;
}

TensorDataset::TensorDataset(Tensor inputs, Tensor labels) {
  if (!inputs.defined() || inputs.dim() < 1) fail("data", "inputs must be a tensor with a sample dim [N, ...]");
  if (!inputs.device().is_cpu()) fail("data", "inputs are on {}; datasets hold CPU tensors", inputs.device());
  inputs_ = inputs.contiguous();
  if (labels.defined()) {
    if (labels.dtype() != kInt64 || labels.dim() != 1 || labels.size(0) != inputs.size(0))
      fail("data", "labels must be int64 [{}]; got {} {}", inputs.size(0), labels.dtype(), labels.shape());
    labels_ = labels.contiguous();
  }
}

int64_t TensorDataset::size() const { return inputs_.size(0); }

Shape TensorDataset::sample_shape() const {
  Shape s = inputs_.shape();
  s.erase(0);
  return s;
}

Batch TensorDataset::get_batch(std::span<const int64_t> indices) const {
  check_indices(indices, size());
  const int64_t batch = static_cast<int64_t>(indices.size());
  Shape shape = inputs_.shape();
  shape[0] = batch;
  Batch out;
  out.inputs = empty(shape, inputs_.dtype());
  const size_t row = static_cast<size_t>(inputs_.numel() / std::max<int64_t>(size(), 1)) * inputs_.element_size();
  const char* src = static_cast<const char*>(inputs_.raw_data());
  char* dst = static_cast<char*>(out.inputs.raw_data());
  for (int64_t b = 0; b < batch; ++b)
    std::memcpy(dst + static_cast<size_t>(b) * row, src + static_cast<size_t>(indices[static_cast<size_t>(b)]) * row,
                row);
  if (labels_.defined()) {
    out.targets = empty({batch}, kInt64);
    const int64_t* l = labels_.data_ptr<int64_t>();
    int64_t* t = out.targets.data_ptr<int64_t>();
    for (int64_t b = 0; b < batch; ++b) t[b] = l[indices[static_cast<size_t>(b)]];
  }
  out.clean = out.inputs;
  return out;
}

CsvDataset::CsvDataset(const std::string& path, const CsvOptions& options) : CsvDataset(read_csv(path, options)) {}

CsvDataset::CsvDataset(CsvTable table) : TensorDataset(table.features, table.labels), table_(std::move(table)) {}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

IdxDataset load_fashion_mnist(const std::string& dir, bool train, IdxOptions options) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string images = dir + "/" + prefix + "-images-idx3-ubyte.gz";
  const std::string labels = dir + "/" + prefix + "-labels-idx1-ubyte.gz";
  for (const std::string& path : {images, labels}) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
      fail("data", "Fashion-MNIST file {} is missing ({}); install it with 'apt-get install dataset-fashion-mnist' "
           "or pass the folder that holds it", path, std::strerror(errno));
  }
  return IdxDataset(images, labels, options);
}

// ---------------------------------------------------------------- transforms

namespace transforms {

namespace {

/// A fresh contiguous copy of x (float32 or float64) with `body(T* data, batch, sample)` applied.
template <class Body>
Tensor map_samples(const char* name, const Tensor& x, Body body) {
  if (!x.defined() || x.dim() < 1) fail(name, "inputs must be a batch [B, ...]");
  return visit_floating(name, x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Tensor out = x.contiguous();
    if (out.is_same(x) || out.storage() == x.storage()) out = x.clone().contiguous();
    const int64_t batch = out.size(0);
    body(out.template data_ptr<T>(), batch, batch ? out.numel() / batch : 0);
    return out;
  });
}

void check_fraction(const char* name, double fraction) {
  if (!(fraction >= 0 && fraction <= 1)) fail(name, "fraction must be in [0, 1]; got {}", fraction);
}

/// Calls pick(sample_index, element_index) for exactly round(fraction * D) distinct random elements
/// of each sample: a partial Fisher-Yates shuffle over a permutation kept across samples (the first
/// k entries of a partial shuffle of any arrangement are a uniformly random k-subset).
template <class Pick>
void for_random_subset(int64_t batch, int64_t sample, double fraction, Generator& gen, Pick pick) {
  const int64_t k = std::llround(fraction * static_cast<double>(sample));
  std::vector<int64_t> perm(static_cast<size_t>(sample));
  for (int64_t i = 0; i < sample; ++i) perm[static_cast<size_t>(i)] = i;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < k; ++j) {
      const int64_t r = j + static_cast<int64_t>(gen.below(static_cast<uint64_t>(sample - j)));
      std::swap(perm[static_cast<size_t>(j)], perm[static_cast<size_t>(r)]);
      pick(b, perm[static_cast<size_t>(j)]);
    }
}

}  // namespace

Transform scale(double low, double high) {
  if (!(high != low)) fail("scale", "high must differ from low; got low {} and high {}", low, high);
  return {"scale", [=](const Tensor& x, Generator&) {
            return map_samples("scale", x, [=](auto* p, int64_t batch, int64_t sample) {
              using T = std::remove_pointer_t<decltype(p)>;
              const T lo = static_cast<T>(low), inv = static_cast<T>(1.0 / (high - low));
              for (int64_t i = 0; i < batch * sample; ++i) p[i] = (p[i] - lo) * inv;
            });
          }};
}

Transform normalize(std::vector<double> mean, std::vector<double> stddev) {
  if (mean.empty() || mean.size() != stddev.size())
    fail("normalize", "mean and std need the same non-zero length; got {} and {}", mean.size(), stddev.size());
  for (double s : stddev)
    if (!(s > 0)) fail("normalize", "std values must be positive; got {}", s);
  return {"normalize", [=](const Tensor& x, Generator&) {
            const int64_t channels = static_cast<int64_t>(mean.size());
            if (channels > 1 && (x.dim() < 2 || x.size(1) != channels))
              fail("normalize", "{} mean/std values need inputs [B, {}, ...]; got {}", channels, channels, x.shape());
            return map_samples("normalize", x, [&](auto* p, int64_t batch, int64_t sample) {
              const int64_t inner = sample / channels;
              for (int64_t b = 0; b < batch; ++b)
                for (int64_t c = 0; c < channels; ++c) {
                  auto* q = p + b * sample + c * inner;
                  const double m = mean[static_cast<size_t>(c)], inv = 1.0 / stddev[static_cast<size_t>(c)];
                  for (int64_t i = 0; i < inner; ++i) q[i] = static_cast<std::remove_reference_t<decltype(*q)>>((q[i] - m) * inv);
                }
            });
          }};
}

Transform flatten() {
  return {"flatten", [](const Tensor& x, Generator&) {
            if (x.dim() < 1) fail("flatten", "inputs must be a batch [B, ...]");
            const int64_t batch = x.size(0);
            return x.contiguous().view({batch, batch ? x.numel() / batch : 0});
          }};
}

Transform gaussian_noise(double stddev, bool clip) {
  if (!(stddev >= 0)) fail("gaussian_noise", "std must be non-negative; got {}", stddev);
  return {"gaussian_noise",
          [=](const Tensor& x, Generator& gen) {
            return map_samples("gaussian_noise", x, [&](auto* p, int64_t batch, int64_t sample) {
              using T = std::remove_pointer_t<decltype(p)>;
              for (int64_t i = 0; i < batch * sample; ++i) {
                T v = static_cast<T>(p[i] + stddev * gen.normal());
                p[i] = clip ? std::clamp(v, T(0), T(1)) : v;
              }
            });
          },
          true};
}

Transform masking_noise(double fraction) {
  check_fraction("masking_noise", fraction);
  return {"masking_noise",
          [=](const Tensor& x, Generator& gen) {
            return map_samples("masking_noise", x, [&](auto* p, int64_t batch, int64_t sample) {
              for_random_subset(batch, sample, fraction, gen, [&](int64_t b, int64_t i) { p[b * sample + i] = 0; });
            });
          },
          true};
}

Transform salt_and_pepper(double fraction, double low, double high) {
  check_fraction("salt_and_pepper", fraction);
  return {"salt_and_pepper",
          [=](const Tensor& x, Generator& gen) {
            return map_samples("salt_and_pepper", x, [&](auto* p, int64_t batch, int64_t sample) {
              using T = std::remove_pointer_t<decltype(p)>;
              for_random_subset(batch, sample, fraction, gen, [&](int64_t b, int64_t i) {
                p[b * sample + i] = static_cast<T>(gen.uniform() < 0.5 ? low : high);
              });
            });
          },
          true};
}

Transform random_horizontal_flip(double p, int64_t width) {
  check_fraction("random_horizontal_flip", p);
  if (width < 0) fail("random_horizontal_flip", "width must be non-negative; got {}", width);
  return {"random_horizontal_flip", [=](const Tensor& x, Generator& gen) {
            if (width == 0 && x.dim() < 3)
              fail("random_horizontal_flip",
                   "inputs {} have no width dim; pass width (28 for flattened 28x28 images)", x.shape());
            const int64_t w = width ? width : x.size(-1);
            if (x.numel() % std::max<int64_t>(x.size(-1), 1) != 0 || x.size(-1) % w != 0)
              fail("random_horizontal_flip", "the last dim {} of inputs {} is not a multiple of width {}",
                   x.size(-1), x.shape(), w);
            return map_samples("random_horizontal_flip", x, [&](auto* data, int64_t batch, int64_t sample) {
              for (int64_t b = 0; b < batch; ++b) {
                if (!(gen.uniform() < p)) continue;
                for (int64_t row = 0; row < sample / w; ++row) std::reverse(data + b * sample + row * w,
                                                                            data + b * sample + (row + 1) * w);
              }
            });
          }};
}

}  // namespace transforms

// ---------------------------------------------------------------- loader

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// The seed of stream `stream` (-1: the order; i >= 0: batch i's transforms) of `epoch`.
uint64_t derive_seed(uint64_t seed, int64_t epoch, int64_t stream) {
  return splitmix64(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(epoch)) ^ static_cast<uint64_t>(stream));
}

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options,
                       std::vector<Transform> transforms)
    : dataset_(std::move(dataset)), options_(options), transforms_(std::move(transforms)) {
  if (!dataset_) fail("data_loader", "dataset is null");
  if (options_.batch_size < 1) fail("data_loader", "batch_size must be at least 1; got {}", options_.batch_size);
  for (const Transform& t : transforms_)
    if (!t.fn) fail("data_loader", "transform '{}' has no function", t.name);
  if (options_.num_replicas < 1 || options_.rank < 0 || options_.rank >= options_.num_replicas)
    fail("data_loader", "rank {} of {} replicas does not exist", options_.rank, options_.num_replicas);
  if (options_.num_replicas > 1 && options_.shard_drop_last && dataset_->size() < options_.num_replicas)
    fail("data_loader", "{} samples cannot give each of {} replicas one with drop_last", dataset_->size(),
         options_.num_replicas);
}

std::vector<int64_t> distributed_shard(const std::vector<int64_t>& order, int64_t num_replicas, int64_t rank,
                                       bool drop_last) {
  if (num_replicas < 1 || rank < 0 || rank >= num_replicas)
    fail("distributed_shard", "rank {} of {} replicas does not exist", rank, num_replicas);
  const int64_t n = static_cast<int64_t>(order.size());
  if (n == 0) return {};
  const int64_t per_rank = drop_last ? n / num_replicas : (n + num_replicas - 1) / num_replicas;
  std::vector<int64_t> shard;
  shard.reserve(static_cast<size_t>(per_rank));
  for (int64_t j = 0; j < per_rank; ++j) shard.push_back(order[static_cast<size_t>((j * num_replicas + rank) % n)]);
  return shard;
}

int64_t DataLoader::num_batches() const {
  const int64_t r = options_.num_replicas, all = dataset_->size();
  const int64_t n = r == 1 ? all : options_.shard_drop_last ? all / r : (all + r - 1) / r;  // the shard's length
  const int64_t b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void DataLoader::set_epoch(int64_t epoch) {
  if (epoch < 0) fail("data_loader", "epoch must be non-negative; got {}", epoch);
  epoch_ = epoch;
}

std::vector<int64_t> DataLoader::order(int64_t epoch) const {
  const int64_t n = dataset_->size();
  std::vector<int64_t> seq;
  if (!options_.shuffle) {
    seq.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) seq[static_cast<size_t>(i)] = i;
  } else {
    Generator gen(derive_seed(options_.seed, epoch, -1));
    seq = randperm(n, &gen).to_vector<int64_t>();
  }
  if (options_.num_replicas == 1) return seq;
  return distributed_shard(seq, options_.num_replicas, options_.rank, options_.shard_drop_last);
}

Batch DataLoader::make_batch(std::span<const int64_t> indices, int64_t epoch, int64_t i) const {
  Batch b = dataset_->get_batch(indices);
  Generator gen(derive_seed(options_.seed, epoch, i * options_.num_replicas + options_.rank));
  Tensor x = b.inputs, clean;
  bool corrupted = false;
  for (const Transform& t : transforms_) {
    if (t.corrupts) {
      if (!corrupted) clean = x;
      corrupted = true;
      x = t(x, gen);
    } else if (!corrupted) {
      x = t(x, gen);
    } else {
      // After noise, clean and noisy inputs get the same non-corrupting transform with the same
      // random draws (a copy of the generator), so a flip mirrors both alike.
      Generator same = gen;
      clean = t(clean, same);
      x = t(x, gen);
    }
  }
  b.inputs = x;
  b.clean = corrupted ? clean : x;
  return b;
}

Batch DataLoader::batch(int64_t epoch, int64_t i) const {
  if (i < 0 || i >= num_batches()) fail("data_loader", "batch {} is out of range for {} batches", i, num_batches());
  const std::vector<int64_t> ord = order(epoch);
  const size_t begin = static_cast<size_t>(i * options_.batch_size);
  const size_t end = std::min(ord.size(), begin + static_cast<size_t>(options_.batch_size));
  return make_batch(std::span<const int64_t>(ord).subspan(begin, end - begin), epoch, i);
}

DataLoader::Iterator::Iterator(DataLoader* loader, int64_t index) : loader_(loader), index_(index) {
  if (index_ < loader_->num_batches()) {
    const auto& ord = loader_->running_;
    const size_t begin = static_cast<size_t>(index_ * loader_->options_.batch_size);
    const size_t end = std::min(ord.size(), begin + static_cast<size_t>(loader_->options_.batch_size));
    batch_ = loader_->make_batch(std::span<const int64_t>(ord).subspan(begin, end - begin), loader_->running_epoch_,
                                 index_);
  }
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  *this = Iterator(loader_, index_ + 1);
  return *this;
}

DataLoader::Iterator DataLoader::begin() {
  running_epoch_ = epoch_++;
  running_ = order(running_epoch_);
  return Iterator(this, 0);
}

DataLoader::Iterator DataLoader::end() { return Iterator(this, num_batches()); }

}  // namespace latent
