// Data tests: IDX round trips (plain and gzip) and every malformed-file error, real Fashion-MNIST
// checks (skipped without the Debian package), CSV, datasets, the DataLoader's batching and seeded
// shuffling, transforms' statistics and seeding, JSON, and the progress bar's plain-line mode.
#include <sys/resource.h>
#include <sys/stat.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <sstream>

#include "helpers.h"

using namespace latent;
using namespace latent::testing;
namespace fs = std::filesystem;

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

/// Raw IDX bytes: magic, dims, then `data_bytes` bytes counting 0, 1, 2, ...
std::string idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims, size_t data_bytes) {
  std::string s = be32(magic);
  for (uint32_t d : dims) s += be32(d);
  for (size_t i = 0; i < data_bytes; ++i) s += static_cast<char>(i % 251);
  return s;
}

/// The peak resident memory of this process so far, in MiB.
double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // KiB on Linux
}

IdxArray small_images(int64_t n, int64_t h, int64_t w) {
  // Bytes from a linear congruential generator: not compressible, so a cut gzip stream loses data.
  IdxArray a{{n, h, w}, {}};
  uint32_t state = 12345;
  for (int64_t i = 0; i < n * h * w; ++i) {
    state = state * 1103515245u + 12345u;
    a.data.push_back(static_cast<uint8_t>(state >> 24));
  }
  return a;
}

/// A dataset whose sample i is the row [i, i + 0.5] with label i % 3.
TensorDataset index_dataset(int64_t n) {
  std::vector<float> values;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) {
    values.push_back(static_cast<float>(i));
    values.push_back(static_cast<float>(i) + 0.5f);
    labels.push_back(i % 3);
  }
  return TensorDataset(from_vector(values, {n, 2}), from_vector(labels, {n}));
}

/// The sample indices of a batch of index_dataset.
std::vector<int64_t> batch_indices(const Batch& b) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < b.inputs.size(0); ++i) out.push_back(static_cast<int64_t>(b.inputs.at<double>({i, 0})));
  return out;
}

}  // namespace

// ================================================================= IDX

TEST_CASE("idx: round trip of images and labels, plain and gzip") {
  TempDir dir;
  const IdxArray images = small_images(5, 4, 3);
  const IdxArray labels{{5}, {9, 0, 3, 255, 1}};
  for (bool gzip : {false, true}) {
    INFO("gzip " << gzip);
    const std::string ip = dir / (gzip ? "i.gz" : "i.idx"), lp = dir / (gzip ? "l.gz" : "l.idx");
    write_idx(ip, images, gzip);
    write_idx(lp, labels, gzip);
    // A gzip file starts with 1f 8b; a plain one with the magic number.
    std::ifstream raw(ip, std::ios::binary);
    unsigned char head[4];
    raw.read(reinterpret_cast<char*>(head), 4);
    if (gzip) {
      CHECK(head[0] == 0x1f);
      CHECK(head[1] == 0x8b);
    } else {
      CHECK(head[2] == 0x08);
      CHECK(head[3] == 0x03);
    }
    const IdxArray back = read_idx(ip, 3);
    CHECK(back.dims == images.dims);
    CHECK(back.data == images.data);
    const IdxArray lback = read_idx(lp, 1);
    CHECK(lback.dims == std::vector<int64_t>{5});
    CHECK(lback.data == labels.data);
    CHECK(read_idx(lp).dims.size() == 1);  // no expectation: any unsigned-byte IDX
  }
}

TEST_CASE("idx: malformed files fail with one line naming the file, magic and what was found") {
  TempDir dir;
  const std::string labels = dir / "train-labels.idx";
  write_idx(labels, {{4}, {1, 2, 3, 4}}, false);
  CHECK_THROWS_WITH_SUBSTR(read_idx(labels, 3),
                           "[idx] " + labels + ": magic number 0x00000801, expected 0x00000803 (images)");
  const std::string images = dir / "imgs.gz";
  write_idx(images, small_images(2, 2, 2), true);
  CHECK_THROWS_WITH_SUBSTR(read_idx(images, 1), "magic number 0x00000803, expected 0x00000801 (labels)");

  const std::string missing = dir / "nope.gz";
  CHECK_THROWS_WITH_SUBSTR(read_idx(missing, 3), "[idx] " + missing + ": cannot open (No such file or directory)");

  const std::string p = dir / "bad.idx";
  write_bytes(p, idx_bytes(0x00000803, {5, 4, 3}, 50));
  CHECK_THROWS_WITH_SUBSTR(read_idx(p, 3), "truncated: the header says 5 x 4 x 3 = 60 bytes of data, found 50");
  write_bytes(p, idx_bytes(0x00000803, {2, 2, 2}, 9));
  CHECK_THROWS_WITH_SUBSTR(read_idx(p, 3), "1 bytes after the 2 x 2 x 2 = 8 bytes of data");
  write_bytes(p, idx_bytes(0x00000803, {2, 2}, 0));
  CHECK_THROWS_WITH_SUBSTR(read_idx(p, 3), "truncated header: 3 dims announced, the file ends inside dim 2");
  write_bytes(p, std::string("\x00\x00", 2));
  CHECK_THROWS_WITH_SUBSTR(read_idx(p), "truncated: 2 bytes, the IDX magic number needs 4");
  write_bytes(p, idx_bytes(0x00000D03, {1, 1, 1}, 4));
  CHECK_THROWS_WITH_SUBSTR(read_idx(p), "element type 0x0d (float32) is not supported, expected 0x08");
  write_bytes(p, idx_bytes(0x89504E47, {}, 0));
  CHECK_THROWS_WITH_SUBSTR(read_idx(p), "magic number 0x89504e47 does not start with two zero bytes");
  write_bytes(p, idx_bytes(0x00000800, {}, 0));
  CHECK_THROWS_WITH_SUBSTR(read_idx(p), "gives 0 dims, expected 1 to 8");
  write_bytes(p, idx_bytes(0x00000803, {0xFFFFFFFF, 0xFFFFFFFF, 28}, 0));
  CHECK_THROWS_WITH_SUBSTR(read_idx(p), "ask for more than");

  // A gzip stream cut short.
  const std::string gz = dir / "cut.gz";
  write_idx(gz, small_images(50, 28, 28), true);
  const auto full = fs::file_size(gz);
  fs::resize_file(gz, full / 2);
  CHECK_THROWS_WITH_SUBSTR(read_idx(gz, 3), "truncated: the header says 50 x 28 x 28 = 39200 bytes of data, found");
}

TEST_CASE("resource limits: an IDX header claiming more images than the file holds fails without allocating them") {
  TempDir dir;
  const std::string p = dir / "train-images-idx3-ubyte";
  // 20 million 28x28 images (15.68 GB, under the 16 GiB cap) announced; one image present.
  write_bytes(p, idx_bytes(0x00000803, {20'000'000, 28, 28}, 784));
  const double before = peak_rss_mib();
  CHECK_THROWS_WITH_SUBSTR(read_idx(p, 3), "[idx] " + p + ": truncated: the header says 20000000 x 28 x 28 = "
                                           "15680000000 bytes of data, found 784");
  // The reader grows its buffer as data arrives (from 1 MiB, doubling), so the claim costs 1 MiB.
  CHECK(peak_rss_mib() - before < 64);
  // The same through gzip, where the file size says nothing about the data size.
  const std::string gz = dir / "train-images-idx3-ubyte.gz";
  {
    const std::string raw = idx_bytes(0x00000803, {20'000'000, 28, 28}, 784);
    gzFile f = gzopen(gz.c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(gzwrite(f, raw.data(), static_cast<unsigned>(raw.size())) == static_cast<int>(raw.size()));
    gzclose(f);
  }
  CHECK_THROWS_WITH_SUBSTR(read_idx(gz, 3), "[idx] " + gz + ": truncated: the header says 20000000 x 28 x 28 = "
                                            "15680000000 bytes of data, found 784");
  CHECK(peak_rss_mib() - before < 64);
  write_bytes(p, idx_bytes(0x00000803, {0xFFFFFFFF, 0xFFFFFFFF, 28}, 0));
  CHECK_THROWS_WITH_SUBSTR(read_idx(p, 3), "[idx] " + p + ": dims 4294967295 x 4294967295 ask for more than 17179869184 bytes: corrupt header");
}

TEST_CASE("idx: IdxDataset batches bytes into float32 in [0, 1] with int64 labels") {
  auto images = std::make_shared<IdxArray>(small_images(6, 2, 3));
  auto labels = std::make_shared<IdxArray>(IdxArray{{6}, {5, 4, 3, 2, 1, 0}});
  IdxDataset ds(images, labels);
  CHECK(ds.size() == 6);
  CHECK(ds.sample_shape() == Shape{1, 2, 3});
  CHECK(ds.has_labels());
  const std::vector<int64_t> idx = {4, 1};
  Batch b = ds.get_batch(idx);
  CHECK(b.inputs.shape() == Shape{2, 1, 2, 3});
  CHECK(b.inputs.dtype() == kFloat32);
  std::vector<double> expected;
  for (int64_t i : idx)
    for (int k = 0; k < 6; ++k) expected.push_back(static_cast<float>(images->data[static_cast<size_t>(i * 6 + k)]) / 255.0f);
  check_values(b.inputs, expected, 0, 0);
  CHECK(b.targets.dtype() == kInt64);
  CHECK(b.targets.to_vector<int64_t>() == std::vector<int64_t>{1, 4});
  CHECK(b.clean.is_same(b.inputs));

  IdxDataset flat(images, nullptr, {.flatten = true, .scale = false});
  CHECK(flat.sample_shape() == Shape{6});
  CHECK(!flat.has_labels());
  Batch f = flat.get_batch(idx);
  CHECK(f.inputs.shape() == Shape{2, 6});
  CHECK(f.inputs.at<double>({0, 5}) == images->data[4 * 6 + 5]);
  CHECK(!f.targets.defined());

  const std::vector<int64_t> bad = {6};
  CHECK_THROWS_WITH_SUBSTR(ds.get_batch(bad), "[data] index 6 is out of range for a dataset of 6");
  auto short_labels = std::make_shared<IdxArray>(IdxArray{{5}, {1, 2, 3, 4, 5}});
  CHECK_THROWS_WITH_SUBSTR(IdxDataset(images, short_labels), "[idx] 5 labels for 6 images");
  CHECK_THROWS_WITH_SUBSTR(IdxDataset(labels, nullptr), "images must be 3-d [N, H, W]; got 1 dims (6)");
}

TEST_CASE("idx: real Fashion-MNIST headers, shapes, labels and pixel mean") {
  if (!fs::exists(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz")) {
    MESSAGE("skipped: " << kFashionMnistDir << " is missing (apt-get install dataset-fashion-mnist)");
    return;
  }
  IdxDataset train = load_fashion_mnist();
  CHECK(train.size() == 60000);
  CHECK(train.sample_shape() == Shape{1, 28, 28});
  CHECK(train.images().dims == std::vector<int64_t>{60000, 28, 28});
  REQUIRE(train.labels() != nullptr);
  std::vector<int64_t> counts(10, 0);
  for (uint8_t l : train.labels()->data) counts.at(l)++;
  CHECK(counts == std::vector<int64_t>(10, 6000));
  const std::vector<int64_t> first = {0, 1, 2, 3};
  Batch b = train.get_batch(first);
  CHECK(b.targets.to_vector<int64_t>() == std::vector<int64_t>{9, 0, 0, 3});  // ankle boot, t-shirt, t-shirt, dress
  CHECK(fashion_mnist_classes()[9] == "Ankle boot");
  CHECK(b.inputs[0].sum().item<double>() * 255.0 == doctest::Approx(76247).epsilon(1e-6));
  double total = 0;
  for (uint8_t v : train.images().data) total += v;
  CHECK(total / 255.0 / static_cast<double>(train.images().data.size()) == doctest::Approx(0.2860406).epsilon(1e-6));

  IdxDataset test = load_fashion_mnist(kFashionMnistDir, false, {.flatten = true});
  CHECK(test.size() == 10000);
  CHECK(test.sample_shape() == Shape{784});
  CHECK(test.get_batch(first).targets.to_vector<int64_t>() == std::vector<int64_t>{9, 2, 1, 1});
}

TEST_CASE("idx: a missing Fashion-MNIST folder says how to install it") {
  CHECK_THROWS_WITH_SUBSTR(load_fashion_mnist("/nonexistent/fmnist"),
                           "[data] Fashion-MNIST file /nonexistent/fmnist/train-images-idx3-ubyte.gz is missing");
  CHECK_THROWS_WITH_SUBSTR(load_fashion_mnist("/nonexistent/fmnist", false),
                           "install it with 'apt-get install dataset-fashion-mnist' or pass the folder");
}

// ================================================================= CSV

TEST_CASE("csv: numeric columns with and without a label column") {
  TempDir dir;
  const std::string p = dir / "t.csv";
  write_bytes(p, "a, \"b c\" ,label,d\r\n1,2.5,0,-3\r\n\r\n4e1, .5 ,2, +7\n-0.25,1,1,1e-3\n\n");
  CsvTable t = read_csv(p, {.label_column = "label"});
  CHECK(t.columns == std::vector<std::string>{"a", "b c", "d"});
  CHECK(t.features.shape() == Shape{3, 3});
  CHECK(t.features.dtype() == kFloat32);
  check_values(t.features, {1, 2.5, -3, 40, 0.5, 7, -0.25, 1, 1e-3});
  CHECK(t.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 2, 1});
  CHECK(t.class_names.empty());

  CsvTable all = read_csv(p);
  CHECK(all.columns.size() == 4);
  CHECK(!all.labels.defined());
  check_values(all.features.select(1, 2), {0, 2, 1});

  write_bytes(p, "x;species\n1;virginica\n2;setosa\n3;virginica\n");
  CsvDataset ds(p, {.label_column = "species", .delimiter = ';'});
  CHECK(ds.table().class_names == std::vector<std::string>{"setosa", "virginica"});
  CHECK(ds.table().labels.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1});
  CHECK(ds.size() == 3);
  CHECK(ds.sample_shape() == Shape{1});
  const std::vector<int64_t> idx = {2, 1};
  Batch b = ds.get_batch(idx);
  check_values(b.inputs, {3, 2});
  CHECK(b.targets.to_vector<int64_t>() == std::vector<int64_t>{1, 0});
}

TEST_CASE("resource limits: a 10-million-column CSV line fails with one line, storing at most the limit") {
  TempDir dir;
  const std::string p = dir / "wide.csv";
  std::string wide;
  wide.reserve(20'000'000);
  for (int i = 0; i < 10'000'000; ++i) wide += i ? ",1" : "1";
  const double before = peak_rss_mib();
  write_bytes(p, wide + "\n" + wide + "\n");
  CHECK_THROWS_WITH_SUBSTR(read_csv(p), "[csv] " + p + ": line 1 has 10000000 columns, more than the limit of 1000000 "
                                        "(is the delimiter right?)");
  // As a data line under a 3-column header: counted, 3 fields kept.
  write_bytes(p, "a,b,c\n" + wide + "\n");
  CHECK_THROWS_WITH_SUBSTR(read_csv(p), "[csv] " + p + ": line 2 has 10000000 fields, expected 3 (as in the header)");
  CHECK(split_csv_line("1,2,3", ',', p, 9, 3) == std::vector<std::string>{"1", "2", "3"});
  CHECK_THROWS_WITH_SUBSTR(split_csv_line("1,\"2,3\",4,5", ',', p, 9, 2), "line 9 has 4 fields, expected 2");
  // 2 x 20 MB of text, the 1 million stored header fields (about 32 MB) and the line index: well
  // under what 10 million field strings and a pairwise duplicate check would take.
  CHECK(peak_rss_mib() - before < 200);
  // A header of a million distinct names is accepted (duplicates found in linear time).
  std::string names;
  for (int i = 0; i < 1'000'000; ++i) names += (i ? ",c" : "c") + std::to_string(i);
  write_bytes(p, names + ",c17\n");
  CHECK_THROWS_WITH_SUBSTR(read_csv(p), "line 1 has 1000001 columns, more than the limit of 1000000");
  write_bytes(p, names.substr(0, names.find(",c500000")) + ",c17\n");
  CHECK_THROWS_WITH_SUBSTR(read_csv(p), "duplicate column name 'c17' (columns 18 and 500001)");
}

TEST_CASE("csv: errors name the file, line and column") {
  TempDir dir;
  const std::string p = dir / "bad.csv";
  write_bytes(p, "a,b,c\n1,2,3\n4,x5,6\n");
  CHECK_THROWS_WITH_SUBSTR(read_csv(p), "[csv] " + p + ": line 3, column 2 ('b'): 'x5' is not a number");
  write_bytes(p, "a,b,c\n1,2,3\n4,5\n");
  CHECK_THROWS_WITH_SUBSTR(read_csv(p), "line 3 has 2 fields, expected 3 (as in the header)");
  write_bytes(p, "a,b,c\n1,,3\n");
  CHECK_THROWS_WITH_SUBSTR(read_csv(p), "line 2, column 2 ('b'): empty field, expected a number");
  write_bytes(p, "a,b,c\n1,2,3\n");
  CHECK_THROWS_WITH_SUBSTR(read_csv(p, {.label_column = "y"}), "label column 'y' not found; the columns are: a, b, c");
  write_bytes(p, "a,b,a\n1,2,3\n");
  CHECK_THROWS_WITH_SUBSTR(read_csv(p), "duplicate column name 'a' (columns 1 and 3)");
  write_bytes(p, "\n \n");
  CHECK_THROWS_WITH_SUBSTR(read_csv(p), "the file is empty: expected a header row");
  write_bytes(p, "a,\"b\n1,2\n");
  CHECK_THROWS_WITH_SUBSTR(read_csv(p), "line 1: unterminated quoted field");
  write_bytes(p, "a,y\n1,\n");
  CHECK_THROWS_WITH_SUBSTR(read_csv(p, {.label_column = "y"}), "line 2, column 2 ('y'): empty label");
  CHECK_THROWS_WITH_SUBSTR(read_csv(dir / "none.csv"), "[csv] " + (dir / "none.csv") + ": cannot open");
  // A fuzz finding (tests/fuzz/corpus/csv/crash-90488775...): a value finite as a double but not as
  // float32 became inf in the features.
  write_bytes(p, "a\n" + std::string(66, '4') + "\n");
  CHECK_THROWS_WITH_SUBSTR(read_csv(p), "line 2, column 1 ('a'): '" + std::string(66, '4') +
                                            "' is not a finite number (float32 holds up to 3.4e38)");
  write_bytes(p, "a\n-3.4e38\n");
  CHECK(read_csv(p).features.at<double>({0, 0}) == static_cast<double>(-3.4e38f));
}

TEST_CASE("data: TensorDataset gathers rows and checks labels") {
  TensorDataset ds = index_dataset(5);
  CHECK(ds.size() == 5);
  CHECK(ds.sample_shape() == Shape{2});
  const std::vector<int64_t> idx = {3, 0, 3};
  Batch b = ds.get_batch(idx);
  check_values(b.inputs, {3, 3.5, 0, 0.5, 3, 3.5});
  CHECK(b.targets.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 0});
  CHECK_THROWS_WITH_SUBSTR(TensorDataset(zeros({4, 2}), zeros({4})), "labels must be int64 [4]; got float32 [4]");
  CHECK_THROWS_WITH_SUBSTR(TensorDataset(zeros({4, 2}), arange(3)), "labels must be int64 [4]; got int64 [3]");
  // Non-contiguous inputs are gathered by logical rows.
  TensorDataset t(arange(0, 6, 1, kFloat32).view({2, 3}).t());
  const std::vector<int64_t> one = {2};
  check_values(t.get_batch(one).inputs, {2, 5});
}

// ================================================================= DataLoader

TEST_CASE("loader: batch counts, last batch and drop_last") {
  auto ds = std::make_shared<TensorDataset>(index_dataset(10));
  DataLoader keep(ds, {.batch_size = 3, .shuffle = false});
  CHECK(keep.num_batches() == 4);
  CHECK(keep.size() == 4);
  std::vector<int64_t> sizes, seen;
  for (auto& [x, y] : keep) {
    sizes.push_back(x.size(0));
    CHECK(y.size(0) == x.size(0));
    for (int64_t i : batch_indices(Batch{x, y, x})) seen.push_back(i);
  }
  CHECK(sizes == std::vector<int64_t>{3, 3, 3, 1});
  CHECK(seen == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});

  DataLoader drop(ds, {.batch_size = 3, .shuffle = false, .drop_last = true});
  CHECK(drop.num_batches() == 3);
  int64_t count = 0;
  for (const Batch& b : drop) {
    CHECK(b.inputs.size(0) == 3);
    ++count;
  }
  CHECK(count == 3);
  CHECK(DataLoader(ds, {.batch_size = 10, .drop_last = true}).num_batches() == 1);
  CHECK(DataLoader(ds, {.batch_size = 11, .drop_last = true}).num_batches() == 0);
  CHECK(DataLoader(ds, {.batch_size = 11}).num_batches() == 1);
  CHECK_THROWS_WITH_SUBSTR(DataLoader(ds, {.batch_size = 0}), "[data_loader] batch_size must be at least 1; got 0");
  CHECK_THROWS_WITH_SUBSTR(keep.batch(0, 4), "batch 4 is out of range for 4 batches");
}

TEST_CASE("loader: shuffling sees every index once, is reproducible by seed and differs across epochs") {
  auto ds = std::make_shared<TensorDataset>(index_dataset(100));
  DataLoader loader(ds, {.batch_size = 16, .seed = 42});
  std::vector<std::vector<int64_t>> epochs;
  for (int e = 0; e < 3; ++e) {
    CHECK(loader.epoch() == e);
    std::vector<int64_t> order;
    for (const Batch& b : loader) {
      for (int64_t i : batch_indices(b)) order.push_back(i);
      // Labels travel with their samples.
      const auto ids = batch_indices(b);
      const auto labels = b.targets.to_vector<int64_t>();
      for (size_t k = 0; k < ids.size(); ++k) CHECK(labels[k] == ids[k] % 3);
    }
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> all(100);
    std::iota(all.begin(), all.end(), 0);
    CHECK(sorted == all);  // every index exactly once
    CHECK(order == loader.order(e));
    epochs.push_back(order);
  }
  CHECK(epochs[0] != epochs[1]);
  CHECK(epochs[1] != epochs[2]);

  // The same seed gives the same orders; set_epoch resumes mid-run; another seed differs.
  DataLoader again(ds, {.batch_size = 16, .seed = 42});
  again.set_epoch(2);
  std::vector<int64_t> resumed;
  for (const Batch& b : again)
    for (int64_t i : batch_indices(b)) resumed.push_back(i);
  CHECK(resumed == epochs[2]);
  CHECK(again.epoch() == 3);
  DataLoader other(ds, {.batch_size = 16, .seed = 43});
  CHECK(other.order(0) != epochs[0]);
  // Without shuffle the order is 0..N-1 every epoch.
  DataLoader seq(ds, {.batch_size = 16, .shuffle = false});
  CHECK(seq.order(5)[7] == 7);
}

// ================================================================= transforms

TEST_CASE("transforms: scale, normalize and flatten values") {
  Generator gen(0);
  Tensor x = from_vector(std::vector<float>{0, 51, 255, 102}, {2, 2});
  check_values(transforms::scale(0, 255)(x, gen), {0, 0.2, 1, 0.4});
  check_values(x, {0, 51, 255, 102});  // inputs are not modified
  check_values(transforms::normalize({51}, {2})(x, gen), {-25.5, 0, 102, 25.5});
  // Per channel: [B=1, C=2, 2].
  Tensor c = from_vector(std::vector<double>{1, 2, 3, 4}, {1, 2, 2});
  Tensor n = transforms::normalize({1, 3}, {1, 0.5})(c, gen);
  CHECK(n.dtype() == kFloat64);
  check_values(n, {0, 1, 0, 2});
  CHECK_THROWS_WITH_SUBSTR(transforms::normalize({1, 2, 3}, {1, 1, 1})(c, gen),
                           "[normalize] 3 mean/std values need inputs [B, 3, ...]; got [1, 2, 2]");
  CHECK_THROWS_WITH_SUBSTR(transforms::normalize({1}, {0}), "std values must be positive; got 0");
  CHECK_THROWS_WITH_SUBSTR(transforms::scale(1, 1), "high must differ from low");
  CHECK(transforms::flatten()(zeros({4, 1, 28, 28}), gen).shape() == Shape{4, 784});
  CHECK_THROWS_WITH_SUBSTR(transforms::scale(0, 1)(arange(4), gen), "[scale] dtype int64 is not supported");
}

TEST_CASE("transforms: noise statistics and exact fractions") {
  const int64_t B = 64, D = 784;
  Tensor x = full({B, D}, 0.5);
  Generator gen(7);
  {
    Tensor y = transforms::gaussian_noise(0.2)(x, gen);
    const std::vector<double> v = y.to_vector<double>();
    double mean = 0, sq = 0;
    for (double e : v) mean += e - 0.5;
    mean /= static_cast<double>(v.size());
    for (double e : v) sq += (e - 0.5 - mean) * (e - 0.5 - mean);
    const double sd = std::sqrt(sq / static_cast<double>(v.size()));
    CHECK(std::abs(mean) < 0.003);          // 4 standard errors of 0.2/sqrt(50176)
    CHECK(sd == doctest::Approx(0.2).epsilon(0.02));
    Tensor clipped = transforms::gaussian_noise(2.0, true)(x, gen);
    CHECK(clipped.min().item<double>() == 0.0);
    CHECK(clipped.max().item<double>() == 1.0);
  }
  {
    Tensor y = transforms::masking_noise(0.3)(x, gen);
    for (int64_t b = 0; b < B; ++b) {
      const auto row = y[b].to_vector<double>();
      CHECK(std::count(row.begin(), row.end(), 0.0) == 235);  // round(0.3 * 784)
      CHECK(std::count(row.begin(), row.end(), 0.5) == 784 - 235);
    }
  }
  {
    Tensor y = transforms::salt_and_pepper(0.1, -1, 2)(x, gen);
    int64_t salt = 0, pepper = 0;
    for (int64_t b = 0; b < B; ++b) {
      const auto row = y[b].to_vector<double>();
      const auto lo = std::count(row.begin(), row.end(), -1.0), hi = std::count(row.begin(), row.end(), 2.0);
      CHECK(lo + hi == 78);  // round(0.1 * 784)
      pepper += lo;
      salt += hi;
    }
    CHECK(static_cast<double>(salt) / static_cast<double>(salt + pepper) == doctest::Approx(0.5).epsilon(0.08));
  }
  CHECK_THROWS_WITH_SUBSTR(transforms::masking_noise(1.5), "[masking_noise] fraction must be in [0, 1]; got 1.5");
  CHECK_THROWS_WITH_SUBSTR(transforms::gaussian_noise(-1), "std must be non-negative");
}

TEST_CASE("transforms: horizontal flip, and seeding") {
  Generator gen(1);
  // [B=2, 1, H=2, W=3]
  Tensor x = arange(0, 12, 1, kFloat32).view({2, 1, 2, 3});
  check_values(transforms::random_horizontal_flip(1.0)(x, gen), {2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9});
  check_values(transforms::random_horizontal_flip(0.0)(x, gen), x.to_vector<double>());
  // Flattened images with an explicit width.
  check_values(transforms::random_horizontal_flip(1.0, 3)(x.view({2, 6}), gen), {2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9});
  CHECK_THROWS_WITH_SUBSTR(transforms::random_horizontal_flip(1.0)(x.view({2, 6}), gen),
                           "inputs [2, 6] have no width dim; pass width");
  CHECK_THROWS_WITH_SUBSTR(transforms::random_horizontal_flip(1.0, 4)(x.view({2, 6}), gen), "not a multiple of width 4");
  // About half of many samples flip.
  Tensor many = arange(0, 2000, 1, kFloat32).view({1000, 1, 1, 2});
  Tensor flipped = transforms::random_horizontal_flip(0.5)(many, gen);
  int64_t n = 0;
  for (int64_t i = 0; i < 1000; ++i) n += flipped.at<double>({i, 0, 0, 0}) > flipped.at<double>({i, 0, 0, 1});
  CHECK(n > 430);
  CHECK(n < 570);

  // The same generator state gives the same noise; another seed differs.
  Tensor img = rand({8, 100});
  Generator a(5), b(5), c(6);
  const Transform t = transforms::gaussian_noise(0.1);
  CHECK(t(img, a).to_vector<float>() == t(img, b).to_vector<float>());
  CHECK(t(img, a).to_vector<float>() != t(img, c).to_vector<float>());
}

TEST_CASE("loader: transforms per batch, clean targets for denoising, reproducible by (seed, epoch, batch)") {
  auto images = std::make_shared<IdxArray>(small_images(20, 4, 4));
  auto ds = std::make_shared<IdxDataset>(images, nullptr);
  DataLoader loader(ds, {.batch_size = 8, .seed = 3},
                    {transforms::masking_noise(0.5), transforms::random_horizontal_flip(0.5),
                     transforms::flatten()});
  int64_t batches = 0;
  for (const Batch& b : loader) {
    ++batches;
    CHECK(b.inputs.dim() == 2);
    CHECK(b.inputs.size(1) == 16);
    CHECK(b.clean.shape() == b.inputs.shape());
    CHECK(!b.targets.defined());
    // Wherever the noisy input is not zero it equals the clean one: the flip mirrored both alike.
    const auto noisy = b.inputs.to_vector<float>(), clean = b.clean.to_vector<float>();
    int64_t zeros_count = 0;
    for (size_t i = 0; i < noisy.size(); ++i) {
      if (noisy[i] != 0) CHECK(noisy[i] == clean[i]);
      zeros_count += noisy[i] == 0 && clean[i] != 0;
    }
    CHECK(zeros_count > 0);
  }
  CHECK(batches == 3);
  // Random access reproduces what iteration gave; another epoch gives other noise.
  Batch first = loader.batch(0, 1), again = loader.batch(0, 1), later = loader.batch(1, 1);
  CHECK(first.inputs.to_vector<float>() == again.inputs.to_vector<float>());
  CHECK(first.inputs.to_vector<float>() != later.inputs.to_vector<float>());
  // Without corrupting transforms the clean tensor is the input tensor.
  DataLoader plain(ds, {.batch_size = 8}, {transforms::flatten()});
  Batch p = plain.batch(0, 0);
  CHECK(p.clean.is_same(p.inputs));
}

TEST_CASE("loader: Fashion-MNIST's 60000 training images batch into 469 batches of 128, with and without noise (times printed)") {
  if (!fs::exists(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz")) {
    MESSAGE("skipped: " << kFashionMnistDir << " is missing");
    return;
  }
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  IdxDataset train = load_fashion_mnist(kFashionMnistDir, true, {.flatten = true});
  const auto t1 = clock::now();
  DataLoader loader(train, {.batch_size = 128, .seed = 0});
  int64_t samples = 0;
  double checksum = 0;
  for (auto& [x, y] : loader) {
    samples += x.size(0);
    checksum += x.data_ptr<float>()[0] + static_cast<double>(y.data_ptr<int64_t>()[0]);
  }
  const auto t2 = clock::now();
  DataLoader noisy(train, {.batch_size = 128, .seed = 0}, {transforms::masking_noise(0.25)});
  for (auto& [x, y] : noisy) checksum += x.data_ptr<float>()[0];
  const auto t3 = clock::now();
  CHECK(samples == 60000);
  CHECK(loader.num_batches() == 469);
  auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  MESSAGE("Fashion-MNIST: load 60000 images " << ms(t1 - t0) << " ms; one epoch of 469 batches of 128 "
                                              << ms(t2 - t1) << " ms; with masking noise " << ms(t3 - t2)
                                              << " ms (checksum " << checksum << ")");
}

// ================================================================= JSON

TEST_CASE("json: -0.0 writes as a number that reads back as -0.0 (fuzz finding: \"-0.0\" dumped \"-0\", then \"0\")") {
  json::Value v = json::parse("-0.0");
  CHECK(v.dump() == "-0.0");
  CHECK(std::signbit(json::parse(v.dump()).as_double()));
  CHECK(json::parse(v.dump()).dump() == "-0.0");
  CHECK(json::parse("[-0, 0.0, -1.5]").dump() == "[0,0,-1.5]");
}

TEST_CASE("json: parse and write round trip") {
  const std::string text =
      R"({"b":true,"n":null,"i":-42,"u":18446744073709551615,"d":0.1,"e":1e-300,"s":"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","a":[1,[],{}],"o":{"z":1,"a":2}})";
  json::Value v = json::parse(text);
  CHECK(v.at("b").as_bool());
  CHECK(v.at("n").is_null());
  CHECK(v.at("i").as_int64() == -42);
  CHECK(v.at("u").as_uint64() == UINT64_MAX);
  CHECK(v.at("d").as_double() == 0.1);
  CHECK(v.at("e").as_double() == 1e-300);
  CHECK(v.at("s").as_string() == "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(v.at("a").size() == 3);
  CHECK(v.at("o").as_object()[0].first == "z");  // insertion order kept
  // Compact output re-parses to an equal value; pretty output too.
  const std::string compact = v.dump();
  CHECK(json::parse(compact) == v);
  CHECK(json::parse(v.dump(2)) == v);
  CHECK(compact.find("\"o\":{\"z\":1,\"a\":2}") != std::string::npos);
  CHECK(json::Value(0.1).dump() == "0.1");
  CHECK(json::Value(1.0 / 3.0).dump() == "0.3333333333333333");
  CHECK(json::Value(std::nan("")).dump() == "null");
  CHECK(json::Value(uint64_t{1} << 63).dump() == "9223372036854775808");

  json::Value built;
  built["name"] = "ae";
  built["layers"].push_back(784);
  built["layers"].push_back(32);
  built["lr"] = 1e-3;
  CHECK(built.dump() == R"({"name":"ae","layers":[784,32],"lr":0.001})");
  CHECK(built.dump(2) == "{\n  \"name\": \"ae\",\n  \"layers\": [\n    784,\n    32\n  ],\n  \"lr\": 0.001\n}");
  CHECK(json::quote("\x01") == "\"\\u0001\"");
  CHECK(json::parse(" [ 1 , 2 ] \n").size() == 2);
  CHECK(json::parse("2.5e3").as_int64() == 2500);
  CHECK(json::parse("123456789012345678901234").as_double() == 1.2345678901234568e23);
}

TEST_CASE("json: strict errors with byte offsets") {
  CHECK_THROWS_WITH_SUBSTR(json::parse(R"({"a":1 "b":2})"), "[json] expected ',' or '}' at byte 7 (found '\"')");
  CHECK_THROWS_WITH_SUBSTR(json::parse("[1,2,]"), "expected a value at byte 5 (found ']')");
  CHECK_THROWS_WITH_SUBSTR(json::parse("{\"a\":1,}"), "expected a string key at byte 7");
  CHECK_THROWS_WITH_SUBSTR(json::parse("[1 2]"), "expected ',' or ']' at byte 3");
  CHECK_THROWS_WITH_SUBSTR(json::parse("01"), "leading zeros are not allowed at byte 1");
  CHECK_THROWS_WITH_SUBSTR(json::parse("1."), "expected a digit after '.' at byte 2 (found end of input)");
  CHECK_THROWS_WITH_SUBSTR(json::parse("NaN"), "expected a value at byte 0");
  CHECK_THROWS_WITH_SUBSTR(json::parse("tru"), "expected 'true' at byte 0");
  CHECK_THROWS_WITH_SUBSTR(json::parse("\"abc"), "unterminated string at byte 4");
  CHECK_THROWS_WITH_SUBSTR(json::parse("\"a\tb\""), "unescaped control character in string at byte 2 (found byte 0x09)");
  CHECK_THROWS_WITH_SUBSTR(json::parse("\"\\x\""), "invalid escape at byte 2");
  CHECK_THROWS_WITH_SUBSTR(json::parse("\"\\ud800\""), "expected a low surrogate");
  CHECK_THROWS_WITH_SUBSTR(json::parse("\"\xc3\x28\""), "invalid UTF-8 at byte 1");
  CHECK_THROWS_WITH_SUBSTR(json::parse("\"\xc0\xaf\""), "invalid UTF-8 at byte 1");
  CHECK_THROWS_WITH_SUBSTR(json::parse(R"({"k":1,"k":2})"), "duplicate key \"k\" at byte 7");
  CHECK_THROWS_WITH_SUBSTR(json::parse("{} x"), "unexpected text after the JSON value at byte 3");
  CHECK_THROWS_WITH_SUBSTR(json::parse(""), "expected a value at byte 0 (found end of input)");
  CHECK_THROWS_WITH_SUBSTR(json::parse("1e999"), "number is out of the double range at byte 0");
  CHECK_THROWS_WITH_SUBSTR(json::parse(std::string(200, '[') + std::string(200, ']')),
                           "nesting deeper than 128 levels at byte 128");
  CHECK(json::parse(std::string(100, '[') + std::string(100, ']'), 100).is_array());
  // A hostile depth does not overflow the stack.
  CHECK_THROWS_WITH_SUBSTR(json::parse(std::string(1000000, '[')), "nesting deeper than");
  // Accessors of the wrong kind.
  CHECK_THROWS_WITH_SUBSTR(json::parse("1.5").as_int64(), "[json] 1.5 is not an int64 integer");
  CHECK_THROWS_WITH_SUBSTR(json::parse("\"x\"").as_double(), "[json] expected a number, found a string");
  CHECK_THROWS_WITH_SUBSTR(json::parse("{}").at("epoch"), "[json] missing key 'epoch'");
  CHECK_THROWS_WITH_SUBSTR(json::parse("-1").as_uint64(), "-1 is negative");
  CHECK_THROWS_WITH_SUBSTR(json::parse("[1]").at(size_t{3}), "index 3 is out of range for an array of 1");
}

// ================================================================= progress

TEST_CASE("progress: plain lines when not a terminal") {
  std::ostringstream out;
  double t = 100.0;
  ProgressBar bar(2, 10, out,
                  {.mode = ProgressOptions::Mode::Lines, .line_interval_s = 3.0, .clock = [&] { return t; }});
  CHECK(!bar.is_terminal());
  bar.start_epoch(0);
  for (int i = 0; i < 10; ++i) {
    t += 1.0;
    bar.update(i < 5 ? 1.0 : 0.5, 100);
  }
  bar.end_epoch("val_loss 0.25");
  const std::string text = out.str();
  CHECK(text.find('\r') == std::string::npos);
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 4);  // after 3, 6 and 9 seconds, then the epoch's end
  CHECK(lines[0] == "epoch 1/2 batch 3/10 loss 1 100 samples/s ETA 0:07");
  CHECK(lines[1] == "epoch 1/2 batch 6/10 loss 0.9167 100 samples/s ETA 0:04");
  CHECK(lines[2] == "epoch 1/2 batch 9/10 loss 0.7778 100 samples/s ETA 0:01");
  CHECK(lines[3] == "epoch 1/2 done 10/10 loss 0.75 100 samples/s 0:10 val_loss 0.25");
  CHECK(bar.mean_loss() == 0.75);

  // Terminal mode redraws one line in place.
  std::ostringstream tty;
  ProgressBar live(1, 4, tty, {.mode = ProgressOptions::Mode::Terminal, .bar_width = 4, .clock = [&] { return t; }});
  CHECK(live.is_terminal());
  live.start_epoch(0);
  t += 2;
  live.update(2.0, 1000);
  live.end_epoch();
  const std::string drawn = tty.str();
  CHECK(drawn.find("\repoch 1/1 [....] 0/4\x1b[K") == 0);
  CHECK(drawn.find("\repoch 1/1 [#...] 1/4 loss 2 500 samples/s ETA 0:06\x1b[K") != std::string::npos);
  CHECK(drawn.substr(drawn.size() - 1) == "\n");

  // A FILE* works the same; a string stream is never a terminal.
  FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  {
    ProgressBar to_file(1, 2, file, {.mode = ProgressOptions::Mode::Lines, .clock = [&] { return t; }});
    to_file.start_epoch(0);
    t += 1;
    to_file.update(0.5, 10);
    t += 1;
    to_file.update(0.5, 10);
    to_file.end_epoch();
  }
  std::rewind(file);
  char buffer[256] = {};
  CHECK(std::fgets(buffer, sizeof buffer, file) != nullptr);
  CHECK(std::string(buffer) == "epoch 1/1 done 2/2 loss 0.5 10 samples/s 0:02\n");
  std::fclose(file);
  std::ostringstream plain;
  CHECK(!ProgressBar(1, 1, plain).is_terminal());

  CHECK(ProgressBar::format_duration(3725) == "1:02:05");
  CHECK(ProgressBar::format_duration(65) == "1:05");
  CHECK(ProgressBar::format_rate(5234) == "5.2k");
  CHECK(ProgressBar::format_rate(2.5e6) == "2.50M");
  CHECK_THROWS_WITH_SUBSTR(ProgressBar(0, 10, out), "[progress] need at least 1 epoch");
}
