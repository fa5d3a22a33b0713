#include "samples.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <unordered_map>

#include "../../ops/creation.h"
#include "../../ops/elementwise.h"
#include "../../ops/join.h"
#include "../../ops/reduce.h"
#include "png_io.h"

namespace latent::models {
namespace fs = std::filesystem;

// ---------------------------------------------------------------- Preprocessing

int64_t Preprocessing::input_dim() const {
  return kind == Kind::Image ? height * width * channels : static_cast<int64_t>(columns.size());
}

Preprocessing Preprocessing::image(int64_t height, int64_t width) {
  Preprocessing p;
  p.kind = Kind::Image;
  p.height = height;
  p.width = width;
  return p;
}

Preprocessing Preprocessing::fit_table(std::vector<std::string> columns, const Tensor& features) {
  if (features.dim() != 2 || features.size(1) != static_cast<int64_t>(columns.size()))
    fail("preprocessing", "features of shape {} do not match {} column names", features.shape(), columns.size());
  if (features.size(0) < 1) fail("preprocessing", "cannot fit min-max scaling on 0 rows");
  Preprocessing p;
  p.kind = Kind::Table;
  p.columns = std::move(columns);
  p.minimum = std::get<0>(min(features, 0)).to(kFloat64).to_vector<double>();
  p.maximum = std::get<0>(max(features, 0)).to(kFloat64).to_vector<double>();
  return p;
}

Tensor Preprocessing::apply(const Tensor& raw) const {
  if (kind == Kind::Image) return raw;
  const int64_t d = static_cast<int64_t>(columns.size());
  if (raw.dim() != 2 || raw.size(1) != d)
    fail("preprocessing", "expected (N, {}) features for columns {}; got shape {}", d, fmt::join(columns, ", "), raw.shape());
  // The same float32 arithmetic for training and new data: (x - lo) / range, range 1 for a constant column.
  std::vector<float> lo(minimum.begin(), minimum.end()), hi(maximum.begin(), maximum.end());
  Tensor lo_t = from_vector(lo, {1, d}), hi_t = from_vector(hi, {1, d});
  Tensor range = where(gt(hi_t - lo_t, 0.0), hi_t - lo_t, ones_like(hi_t));
  return (raw.to(kFloat32) - lo_t) / range;
}

json::Value Preprocessing::to_json() const {
  json::Value v = json::Value::object();
  if (kind == Kind::Image) {
    v["kind"] = "image";
    v["height"] = height;
    v["width"] = width;
    v["channels"] = channels;
    v["scale"] = scale;
  } else {
    v["kind"] = "table";
    v["scaling"] = "minmax";
    json::Value cols = json::Value::array(), lo = json::Value::array(), hi = json::Value::array();
    for (size_t i = 0; i < columns.size(); ++i) {
      cols.push_back(columns[i]);
      lo.push_back(minimum[i]);
      hi.push_back(maximum[i]);
    }
    v["columns"] = cols;
    v["minimum"] = lo;
    v["maximum"] = hi;
  }
  return v;
}

Preprocessing Preprocessing::from_json(const json::Value& v) {
  Preprocessing p;
  const std::string kind = v.at("kind").as_string();
  if (kind == "image") {
    p.kind = Kind::Image;
    p.height = v.at("height").as_int64();
    p.width = v.at("width").as_int64();
    p.channels = v.at("channels").as_int64();
    p.scale = v.at("scale").as_double();
    if (p.height <= 0 || p.width <= 0 || p.channels != 1)
      fail("config", "preprocessing: image {}x{} with {} channels is not supported", p.height, p.width, p.channels);
    return p;
  }
  if (kind != "table") fail("config", "preprocessing: field 'kind' must be \"image\" or \"table\"; got \"{}\"", kind);
  p.kind = Kind::Table;
  for (const json::Value& c : v.at("columns").as_array()) p.columns.push_back(c.as_string());
  for (const json::Value& x : v.at("minimum").as_array()) p.minimum.push_back(x.as_double());
  for (const json::Value& x : v.at("maximum").as_array()) p.maximum.push_back(x.as_double());
  if (p.minimum.size() != p.columns.size() || p.maximum.size() != p.columns.size())
    fail("config", "preprocessing: {} columns but {} minimum and {} maximum values", p.columns.size(), p.minimum.size(),
         p.maximum.size());
  return p;
}

namespace {

bool ends_with_ci(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - suffix.size() + i])) != suffix[i]) return false;
  return true;
}

std::string kind_name(const Preprocessing& p) {
  return p.kind == Preprocessing::Kind::Image ? fmt::format("{}x{} images", p.height, p.width)
                                              : fmt::format("a table of {} columns", p.columns.size());
}

// ---------------------------------------------------------------- CSV

/// A CSV file read a batch of lines at a time; columns matched to the training columns by name.
class CsvSource : public SampleSource {
 public:
  CsvSource(const std::string& path, const Preprocessing& p, const SampleOptions& o)
      : path_(path), p_(p), in_(path) {
    if (!in_) fail("csv", "{}: cannot open ({})", path, std::strerror(errno));
    std::string line;
    while (std::getline(in_, line)) {
      ++line_no_;
      if (!trim_view(line).empty()) break;
      line.clear();
    }
    if (trim_view(line).empty()) fail("csv", "{}: the file is empty: expected a header row", path);
    header_line_ = line_no_;
    header_ = split_csv_line(line, ',', path, line_no_);
    const size_t d = p.columns.size();
    position_.assign(header_.size(), -1);
    std::vector<bool> found(d, false);
    std::map<std::string, size_t> training_index;
    for (size_t i = 0; i < d; ++i) training_index[p.columns[i]] = i;
    std::vector<std::string> extra;
    std::unordered_map<std::string_view, size_t> seen;  // name -> first column, so wide headers stay linear
    for (size_t c = 0; c < header_.size(); ++c) {
      if (const auto [it, fresh] = seen.emplace(header_[c], c); !fresh)
        fail("csv", "{}: line {}: duplicate column name '{}' (columns {} and {})", path, line_no_, header_[c],
             it->second + 1, c + 1);
      if (!o.label_column.empty() && header_[c] == o.label_column) {
        label_ = static_cast<int>(c);
        continue;
      }
      auto it = training_index.find(header_[c]);
      if (it == training_index.end()) {
        extra.push_back(header_[c]);
        continue;
      }
      position_[c] = static_cast<int64_t>(it->second);
      found[it->second] = true;
    }
    for (size_t i = 0; i < d; ++i)
      if (!found[i])
        fail("csv", "{}: column '{}' of the training data is missing (the run was trained on: {})", path, p.columns[i],
             fmt::join(p.columns, ", "));
    if (!extra.empty() && !o.ignore_extra_columns) {
      // At most 10 names, so a header of a million unknown columns still gives a readable line.
      const size_t shown = std::min<size_t>(extra.size(), 10);
      const std::string more = extra.size() > shown ? fmt::format(" and {} more", extra.size() - shown) : "";
      fail("csv", "{}: column{} '{}'{} {} not in the training data (trained on: {}); pass --ignore-extra-columns to skip {}",
           path, extra.size() > 1 ? "s" : "", fmt::join(extra.begin(), extra.begin() + static_cast<std::ptrdiff_t>(shown), "', '"),
           more, extra.size() > 1 ? "were" : "was", fmt::join(p.columns, ", "), extra.size() > 1 ? "them" : "it");
    }
    class_names_ = o.class_names;
  }

  std::optional<SampleBatch> next(int64_t max_rows) override {
    const size_t d = p_.columns.size();
    std::vector<float> values;
    std::vector<int64_t> labels;
    std::string line;
    int64_t rows = 0;
    while (rows < max_rows && std::getline(in_, line)) {
      ++line_no_;
      if (trim_view(line).empty()) continue;
      const std::vector<std::string> fields = split_csv_line(line, ',', path_, line_no_, header_.size());
      values.resize(values.size() + d);
      float* row = values.data() + values.size() - d;
      for (size_t c = 0; c < fields.size(); ++c) {
        if (static_cast<int>(c) == label_) {
          labels.push_back(parse_label(fields[c], c));
          continue;
        }
        if (position_[c] < 0) continue;
        double v = 0;
        if (!parse_csv_number(fields[c], v))
          fail("csv", "{}: line {}, column {} ('{}'): '{}' is not a number", path_, line_no_, c + 1, header_[c], fields[c]);
        if (!std::isfinite(static_cast<float>(v)))  // float32 features: 1e39 overflows too
          fail("csv", "{}: line {}, column {} ('{}'): '{}' is not a finite number (float32 holds up to 3.4e38)", path_, line_no_,
               c + 1, header_[c],
               fields[c]);
        const size_t j = static_cast<size_t>(position_[c]);
        const float f = static_cast<float>(v);
        out_of_range_ += f < static_cast<float>(p_.minimum[j]) || f > static_cast<float>(p_.maximum[j]);
        row[j] = f;
      }
      ++rows;
    }
    if (rows == 0) {
      if (!any_rows_) fail("csv", "{}: no data rows after the header (line {})", path_, header_line_);
      return std::nullopt;
    }
    SampleBatch b;
    b.first_index = seen_;
    b.inputs = p_.apply(from_vector(values, {rows, static_cast<int64_t>(d)}));
    if (label_ >= 0) b.labels = from_vector(labels, {rows});
    seen_ += rows;
    any_rows_ = true;
    return b;
  }
  bool has_labels() const override { return label_ >= 0; }
  int64_t out_of_range() const override { return out_of_range_; }
  std::string description() const override { return path_; }

 private:
  static std::string_view trim_view(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
  }
  int64_t parse_label(const std::string& field, size_t c) {
    double v = 0;
    if (parse_csv_number(field, v) && v == std::floor(v) && std::isfinite(v)) return static_cast<int64_t>(v);
    auto it = std::find(class_names_.begin(), class_names_.end(), field);
    if (it == class_names_.end())
      fail("csv", "{}: line {}, column {} ('{}'): label '{}' is not an integer nor one of the training classes ({})", path_,
           line_no_, c + 1, header_[c], field, fmt::join(class_names_, ", "));
    return it - class_names_.begin();
  }

  std::string path_;
  Preprocessing p_;
  std::ifstream in_;
  std::vector<std::string> header_, class_names_;
  std::vector<int64_t> position_;  // header column -> training column, -1 for label/extra columns
  int label_ = -1;
  size_t line_no_ = 0, header_line_ = 0;
  int64_t seen_ = 0, out_of_range_ = 0;
  bool any_rows_ = false;
};

// ---------------------------------------------------------------- images

void check_image_size(const std::string& name, int64_t h, int64_t w, const Preprocessing& p) {
  if (h != p.height || w != p.width)
    fail("data", "{}: images are {}x{} (width x height), the model takes {}x{}; resize them first (latent does not resize)",
         name, w, h, p.width, p.height);
}

/// An IDX image file, or Fashion-MNIST's test set (with labels), in order.
class IdxSource : public SampleSource {
 public:
  IdxSource(std::shared_ptr<const Dataset> data, std::string description)
      : data_(std::move(data)), description_(std::move(description)) {}
  std::optional<SampleBatch> next(int64_t max_rows) override {
    if (next_ >= data_->size()) return std::nullopt;
    std::vector<int64_t> idx;
    for (int64_t i = next_; i < std::min(data_->size(), next_ + max_rows); ++i) idx.push_back(i);
    Batch b = data_->get_batch(idx);
    SampleBatch out;
    out.inputs = b.inputs;
    out.labels = b.targets;
    out.first_index = next_;
    next_ += static_cast<int64_t>(idx.size());
    return out;
  }
  bool has_labels() const override { return data_->has_labels(); }
  std::string description() const override { return description_; }

 private:
  std::shared_ptr<const Dataset> data_;
  std::string description_;
  int64_t next_ = 0;
};

/// PNG files in the order given (a folder's files in name order).
class PngSource : public SampleSource {
 public:
  PngSource(std::vector<fs::path> files, const Preprocessing& p, std::string description)
      : files_(std::move(files)), p_(p), description_(std::move(description)) {}
  std::optional<SampleBatch> next(int64_t max_rows) override {
    if (next_ >= static_cast<int64_t>(files_.size())) return std::nullopt;
    const int64_t end = std::min<int64_t>(static_cast<int64_t>(files_.size()), next_ + max_rows);
    const int64_t d = p_.height * p_.width;
    std::vector<float> values(static_cast<size_t>((end - next_) * d));
    SampleBatch out;
    for (int64_t i = next_; i < end; ++i) {
      const std::string path = files_[static_cast<size_t>(i)].string();
      GrayImage img = read_png(path);
      check_image_size(path, img.height, img.width, p_);
      float* row = values.data() + (i - next_) * d;
      // A true division, as IdxDataset converts bytes, so a PNG scores bit for bit as the same IDX image.
      const float divisor = static_cast<float>(1.0 / p_.scale);
      for (int64_t k = 0; k < d; ++k) row[k] = static_cast<float>(img.pixels[static_cast<size_t>(k)]) / divisor;
      out.names.push_back(files_[static_cast<size_t>(i)].filename().string());
    }
    out.inputs = from_vector(values, {end - next_, d});
    out.first_index = next_;
    next_ = end;
    return out;
  }
  bool has_labels() const override { return false; }
  bool named() const override { return true; }
  std::string description() const override { return description_; }

 private:
  std::vector<fs::path> files_;
  Preprocessing p_;
  std::string description_;
  int64_t next_ = 0;
};

void require_kind(const std::string& path, const char* what, Preprocessing::Kind kind, const Preprocessing& p) {
  if (p.kind != kind)
    fail("data", "{}: {}, but the run was trained on {}", path, what, kind_name(p));
}

}  // namespace

std::unique_ptr<SampleSource> open_samples(const std::string& path, const Preprocessing& p, const SampleOptions& o) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) fail("data", "{}: no such file or folder", path);
  IdxOptions flat;
  flat.flatten = true;
  if (fs::is_directory(status)) {
    if (fs::exists(fs::path(path) / "t10k-images-idx3-ubyte.gz") || fs::exists(fs::path(path) / "t10k-images-idx3-ubyte")) {
      require_kind(path, "a Fashion-MNIST folder", Preprocessing::Kind::Image, p);
      auto test = std::make_shared<IdxDataset>(load_fashion_mnist(path, false, flat));
      check_image_size(path, test->images().dims[1], test->images().dims[2], p);
      return std::make_unique<IdxSource>(test, fmt::format("the Fashion-MNIST test set in {}", path));
    }
    std::vector<fs::path> files;
    for (const fs::directory_entry& e : fs::directory_iterator(path, ec))
      if (e.is_regular_file() && ends_with_ci(e.path().filename().string(), ".png")) files.push_back(e.path());
    if (ec) fail("data", "{}: cannot list the folder ({})", path, ec.message());
    if (files.empty())
      fail("data", "{}: the folder holds no *.png files and no Fashion-MNIST files (t10k-images-idx3-ubyte.gz)", path);
    require_kind(path, "a folder of PNG images", Preprocessing::Kind::Image, p);
    std::sort(files.begin(), files.end());
    const std::string what = fmt::format("{} PNG file{} in {}", files.size(), files.size() == 1 ? "" : "s", path);
    return std::make_unique<PngSource>(std::move(files), p, what);
  }
  if (ends_with_ci(path, ".csv")) {
    require_kind(path, "a CSV file", Preprocessing::Kind::Table, p);
    return std::make_unique<CsvSource>(path, p, o);
  }
  if (ends_with_ci(path, ".png")) {
    require_kind(path, "a PNG image", Preprocessing::Kind::Image, p);
    return std::make_unique<PngSource>(std::vector<fs::path>{fs::path(path)}, p, path);
  }
  const std::string name = fs::path(path).filename().string();
  if (name.find("idx") == std::string::npos && !ends_with_ci(name, "ubyte") && !ends_with_ci(name, ".gz"))
    fail("data", "{}: not a CSV file (.csv), a PNG image (.png), an IDX file (*-idx3-ubyte[.gz]) or a folder of them",
         path);
  require_kind(path, "an IDX image file", Preprocessing::Kind::Image, p);
  auto images = std::make_shared<IdxArray>(read_idx(path, 3));
  check_image_size(path, images->dims[1], images->dims[2], p);
  auto data = std::make_shared<IdxDataset>(images, nullptr, flat);
  return std::make_unique<IdxSource>(data, path);
}

std::shared_ptr<const Dataset> read_all_samples(SampleSource& source) {
  std::vector<Tensor> inputs, labels;
  while (auto b = source.next(4096)) {
    inputs.push_back(b->inputs);
    if (b->labels.defined()) labels.push_back(b->labels);
  }
  return std::make_shared<TensorDataset>(cat(inputs, 0), labels.empty() ? Tensor() : cat(labels, 0));
}

}  // namespace latent::models
