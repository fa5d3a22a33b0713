// New data scored the way the run was trained: stored preprocessing, CSV columns matched by name,
// PNG files against the same images from IDX, the inference session and its errors.
#include <zlib.h>

#include <fstream>

#include "helpers.h"

using namespace latent;
using namespace latent::models;
using latent::testing::TempDir;

namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

/// A CSV of `rows` rows: columns a, b, c (floats with different ranges) and an integer label y.
std::string make_csv(int rows, uint64_t seed) {
  Generator gen(seed);
  std::vector<double> u = rand({rows, 3}, kFloat64, &gen).to_vector<double>();
  std::string text = "a,b,c,y\n";
  for (int r = 0; r < rows; ++r)
    text += fmt::format("{:.6f},{:.6f},{:.6f},{}\n", u[static_cast<size_t>(3 * r)] * 10 - 5,
                        u[static_cast<size_t>(3 * r + 1)] * 100, u[static_cast<size_t>(3 * r + 2)], r % 2);
  return text;
}

/// A loaded run of an untrained deep autoencoder on 28x28 images (weights from a fixed seed).
LoadedRun image_run(double threshold) {
  manual_seed(7);
  AEConfig c;
  c.model = "deep";
  c.input_dim = 784;
  LoadedRun run;
  run.dir = "(test)";
  run.config = c;
  run.model = make_autoencoder(c);
  run.model->eval();
  run.config_json = json::parse(R"({"training": {"label_column": ""}, "data": {"class_names": [], "height": 28, "width": 28}})");
  json::Value anomaly = json::Value::object();
  anomaly["threshold"] = threshold;
  run.config_json["anomaly"] = anomaly;
  run.preprocessing = Preprocessing::image(28, 28);
  return run;
}

}  // namespace

TEST_CASE("preprocessing: min-max fitted per column, constant columns by 1, JSON round trip") {
  Tensor f = from_vector(std::vector<float>{0, 5, 2, 10, 5, 2, 4, 5, 2}, {3, 3});
  Preprocessing p = Preprocessing::fit_table({"a", "b", "c"}, f);
  CHECK(p.minimum == std::vector<double>{0, 5, 2});
  CHECK(p.maximum == std::vector<double>{10, 5, 2});
  // Constant columns subtract their value and divide by 1; values outside the range are kept.
  latent::testing::check_values(p.apply(from_vector(std::vector<float>{5, 6, 2, -10, 5, 1}, {2, 3})),
                                {0.5, 1, 0, -1, 0, -1});
  Preprocessing q = Preprocessing::from_json(json::parse(p.to_json().dump()));
  CHECK(q.kind == Preprocessing::Kind::Table);
  CHECK(q.columns == p.columns);
  CHECK(q.minimum == p.minimum);
  CHECK(q.maximum == p.maximum);
  CHECK_THROWS_WITH_SUBSTR(p.apply(from_vector(std::vector<float>{1, 2}, {1, 2})), "expected (N, 3) features for columns a, b, c");
  CHECK_THROWS_WITH_SUBSTR(Preprocessing::from_json(json::parse(R"({"kind": "table", "columns": ["a"], "minimum": [], "maximum": [1]})")),
                           "1 columns but 0 minimum and 1 maximum values");
}

TEST_CASE("load_data: CSV scaling is fitted on the training rows only") {
  TempDir dir;
  write_text(dir / "t.csv", make_csv(100, 3));
  DataSplit split = load_data(dir / "t.csv", DataOptions{"y", 0, -1});
  REQUIRE(split.preprocessing.kind == Preprocessing::Kind::Table);
  CHECK(split.preprocessing.columns == std::vector<std::string>{"a", "b", "c"});
  std::vector<int64_t> all(static_cast<size_t>(split.train->size()));
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  Tensor x = split.train->get_batch(all).inputs;  // (80, 3)
  // Exactly [0, 1] on the rows the statistics came from.
  latent::testing::check_values(std::get<0>(min(x, 0)), {0, 0, 0}, 0, 0);
  latent::testing::check_values(std::get<0>(max(x, 0)), {1, 1, 1}, 1e-7, 0);
  CHECK(split.train->size() == 80);
  CHECK(split.test->size() == 20);
  // Applying the stored statistics gives the same split back.
  DataSplit again = load_data(dir / "t.csv", DataOptions{"y", 0, -1, &split.preprocessing});
  latent::testing::check_close(again.train->get_batch(all).inputs, x, 0, 0);
}

TEST_CASE("csv source: columns matched by header, labels read, extra/missing/bad values named") {
  TempDir dir;
  Preprocessing p = Preprocessing::fit_table({"a", "b"}, from_vector(std::vector<float>{0, 10, 2, 30}, {2, 2}));
  SampleOptions o;
  o.label_column = "y";
  write_text(dir / "n.csv", "y,b,a\n1,20,1\n0,40,3\n\n1,10,0\n");
  auto source = open_samples(dir / "n.csv", p, o);
  CHECK(source->has_labels());
  auto b1 = source->next(2);
  REQUIRE(b1);
  latent::testing::check_values(b1->inputs, {0.5, 0.5, 1.5, 1.5});
  latent::testing::check_values(b1->labels, {1, 0});
  auto b2 = source->next(2);
  REQUIRE(b2);
  CHECK(b2->first_index == 2);
  latent::testing::check_values(b2->inputs, {0, 0});
  CHECK_FALSE(source->next(2));
  CHECK(source->out_of_range() == 2);  // 3 > max 2 and 40 > max 30

  write_text(dir / "x.csv", "a,b,z\n1,2,3\n");
  CHECK_THROWS_WITH_SUBSTR(open_samples(dir / "x.csv", p), "column 'z' was not in the training data (trained on: a, b); pass --ignore-extra-columns");
  SampleOptions ignore;
  ignore.ignore_extra_columns = true;
  auto skipped = open_samples(dir / "x.csv", p, ignore)->next(10);
  REQUIRE(skipped);
  latent::testing::check_values(skipped->inputs, {0.5, -0.4});
  write_text(dir / "m.csv", "a\n1\n");
  CHECK_THROWS_WITH_SUBSTR(open_samples(dir / "m.csv", p), "column 'b' of the training data is missing");
  const std::vector<std::pair<std::string, std::string>> bad{
      {"", "the file is empty: expected a header row"},
      {"a,b\n", "no data rows after the header (line 1)"},
      {"a,b\n1,2\n3\n", "line 3 has 1 fields, expected 2 (as in the header)"},
      {"a,b\n1,nan\n", "line 2, column 2 ('b'): 'nan' is not a finite number"},
      {"a,b\n1,2\ninf,2\n", "line 3, column 1 ('a'): 'inf' is not a finite number"},
      {"a,b\n1,two\n", "line 2, column 2 ('b'): 'two' is not a number"},
  };
  for (const auto& [text, message] : bad) {
    write_text(dir / "bad.csv", text);
    CHECK_THROWS_WITH_SUBSTR(
        [&] {
          auto s = open_samples(dir / "bad.csv", p);
          while (s->next(1)) {
          }
        }(),
        "[csv] " + (dir / "bad.csv") + ": " + message);
  }
  CHECK_THROWS_WITH_SUBSTR(open_samples(dir / "none.csv", p), "no such file or folder");
  CHECK_THROWS_WITH_SUBSTR(open_samples(dir / "n.csv", Preprocessing::image(28, 28)),
                           "a CSV file, but the run was trained on 28x28 images");
}

TEST_CASE("png: encode and decode round trip; corrupt and truncated files are named") {
  TempDir dir;
  GrayImage img;
  img.height = 3;
  img.width = 5;
  for (int i = 0; i < 15; ++i) img.pixels.push_back(static_cast<uint8_t>(i * 17));
  write_png(dir / "a.png", img);
  GrayImage back = read_png(dir / "a.png");
  CHECK(back.height == 3);
  CHECK(back.width == 5);
  CHECK(back.pixels == img.pixels);
  const std::string bytes = encode_png(img, "x");
  CHECK_THROWS_WITH_SUBSTR(decode_png(bytes.substr(0, bytes.size() / 2), "half.png"), "[png] half.png: ");
  CHECK_THROWS_WITH_SUBSTR(decode_png("GIF89a....", "g.png"), "[png] g.png: not a PNG file");
  std::string flipped = bytes;
  flipped[20] ^= 0x55;  // inside IHDR: its CRC no longer matches
  CHECK_THROWS_WITH_SUBSTR(decode_png(flipped, "crc.png"), "[png] crc.png: ");
}

TEST_CASE("resource limits: a PNG header claiming more pixels than its bytes can hold fails before allocating") {
  GrayImage img;
  img.height = img.width = 1;
  img.pixels = {7};
  std::string bytes = encode_png(img, "x");
  // IHDR's width and height (big-endian at bytes 16 and 20), with its CRC (over type + data) fixed
  // so libpng accepts the header: 16384 x 16384 (2^28 pixels, 256 MB) from a file of ~70 bytes.
  auto set_size = [&](uint32_t w, uint32_t h) {
    for (int i = 0; i < 4; ++i) {
      bytes[16 + i] = static_cast<char>(w >> (24 - 8 * i));
      bytes[20 + i] = static_cast<char>(h >> (24 - 8 * i));
    }
    const uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(bytes.data() + 12), 17));
    for (int i = 0; i < 4; ++i) bytes[29 + i] = static_cast<char>(crc >> (24 - 8 * i));
  };
  set_size(16384, 16384);
  CHECK_THROWS_WITH_SUBSTR(decode_png(bytes, "upload.png"),
                           "[png] upload.png: the header claims 16384x16384 pixels, more than its " +
                               std::to_string(bytes.size()) + " bytes can hold (a truncated or corrupt file?)");
  // A claim the bytes could hold gets past the check and fails on the missing data instead.
  set_size(64, 64);
  CHECK_THROWS_WITH_SUBSTR(decode_png(bytes, "upload.png"), "[png] upload.png: cannot decode the image data");
  set_size(1, 1);
  CHECK(decode_png(bytes, "upload.png").pixels == std::vector<uint8_t>{7});
}

TEST_CASE("score: PNG files score exactly as the same images read from IDX") {
  TempDir dir;
  IdxArray images;
  if (std::filesystem::exists(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz")) {
    IdxArray all = read_idx(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz", 3);
    images.dims = {10, 28, 28};
    images.data.assign(all.data.begin(), all.data.begin() + 10 * 784);
  } else {
    MESSAGE("Fashion-MNIST is not installed: using 10 synthetic images");
    images.dims = {10, 28, 28};
    for (int i = 0; i < 10 * 784; ++i) images.data.push_back(static_cast<uint8_t>((i * 37) % 256));
  }
  write_idx(dir / "ten-idx3-ubyte", images, false);
  std::filesystem::create_directory(dir / "png");
  for (int i = 0; i < 10; ++i) {
    GrayImage img;
    img.height = img.width = 28;
    img.pixels.assign(images.data.begin() + i * 784, images.data.begin() + (i + 1) * 784);
    write_png(dir / fmt::format("png/{:02d}.png", i), img);
  }
  InferenceSession session(image_run(0.05));
  auto from_idx = session.open(dir / "ten-idx3-ubyte")->next(100);
  auto png_source = session.open(dir / "png");
  CHECK(png_source->named());
  auto from_png = png_source->next(100);
  REQUIRE(from_idx);
  REQUIRE(from_png);
  CHECK(from_png->names.front() == "00.png");
  CHECK(from_png->names.back() == "09.png");
  Scores a = session.score(from_idx->inputs), b = session.score(from_png->inputs);
  REQUIRE(a.error.size() == 10);
  CHECK(a.error == b.error);  // bit for bit
  for (size_t i = 0; i < 10; ++i) CHECK(a.is_anomaly[i] == (a.error[i] > 0.05));
  // A single PNG, and a PNG of the wrong size.
  auto one = session.open(dir / "png/03.png")->next(5);
  REQUIRE(one);
  CHECK(session.score(one->inputs).error[0] == a.error[3]);
  GrayImage big;
  big.height = big.width = 32;
  big.pixels.assign(32 * 32, 0);
  write_png(dir / "big.png", big);
  CHECK_THROWS_WITH_SUBSTR(session.open(dir / "big.png")->next(1), "images are 32x32 (width x height), the model takes 28x28");
  std::filesystem::create_directory(dir / "empty");
  CHECK_THROWS_WITH_SUBSTR(session.open(dir / "empty"), "the folder holds no *.png files and no Fashion-MNIST files");
  write_text(dir / "notes.txt", "hello");
  CHECK_THROWS_WITH_SUBSTR(session.open(dir / "notes.txt"), "not a CSV file (.csv), a PNG image (.png), an IDX file");
}

TEST_CASE("score: a trained CSV run scores a permuted one-row file as the row in the whole file") {
  TempDir dir;
  const std::string csv = make_csv(60, 11);
  write_text(dir / "train.csv", csv);
  TrainOptions o;
  o.model.model = "deep";
  o.epochs = 1;
  o.batch_size = 16;
  o.data = dir / "train.csv";
  o.label_column = "y";
  o.out = dir / "run";
  o.progress = false;
  o.threads = 1;
  FILE* log = std::tmpfile();
  train(o, log);
  std::fclose(log);
  InferenceSession session(load(dir / "run"));
  REQUIRE(session.run().preprocessing_stored);
  CHECK(session.run().preprocessing.columns == std::vector<std::string>{"a", "b", "c"});
  CHECK_FALSE(std::isnan(session.threshold()));
  auto whole = session.open(dir / "train.csv")->next(1000);
  REQUIRE(whole);
  REQUIRE(whole->inputs.size(0) == 60);
  Scores all = session.score(whole->inputs);
  // Row 17 of the file, columns permuted, label dropped.
  std::vector<std::string> lines;
  std::istringstream in(csv);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  const std::vector<std::string> f = split_csv_line(lines[18], ',', "x", 18);
  write_text(dir / "one.csv", fmt::format("c,a,b\n{},{},{}\n", f[2], f[0], f[1]));
  auto one = session.open(dir / "one.csv")->next(10);
  REQUIRE(one);
  CHECK(one->inputs.size(0) == 1);
  CHECK_FALSE(one->labels.defined());
  Scores s = session.score(one->inputs);
  CHECK(std::abs(s.error[0] - all.error[17]) <= 1e-6 * std::max(1.0, all.error[17]));
  CHECK(s.is_anomaly[0] == all.is_anomaly[17]);
  // A run from before stored statistics refuses new CSV data.
  LoadedRun legacy = load(dir / "run");
  legacy.preprocessing_stored = false;
  CHECK_THROWS_WITH_SUBSTR(open_new_data(legacy, dir / "one.csv"), "retrain: this run has no stored column statistics");
}

TEST_CASE("score: VAE scores are deterministic, with the analytic KL in neg_elbo") {
  manual_seed(3);
  AEConfig c;
  c.model = "vae";
  c.input_dim = 784;
  LoadedRun run = image_run(1.0);
  run.config = c;
  run.model = make_autoencoder(c);
  run.model->eval();
  InferenceSession session(std::move(run));
  Generator gen(5);
  Tensor x = rand({4, 784}, kFloat32, &gen);
  Scores a = session.score(x), b = session.score(x);
  CHECK(a.error == b.error);
  CHECK(a.neg_elbo == b.neg_elbo);
  REQUIRE(a.neg_elbo.size() == 4);
  // Against the formula written out in float64.
  auto& vae = static_cast<VariationalAutoencoder&>(*session.run().model);
  NoGradGuard no_grad;
  auto [mu, logvar] = vae.encode_distribution(x);
  Tensor recon = vae.decode(mu);
  std::vector<double> m = mu.to(kFloat64).to_vector<double>(), lv = logvar.to(kFloat64).to_vector<double>();
  std::vector<double> nll = vae.reconstruction_nll(recon, x).to(kFloat64).to_vector<double>();
  const int64_t k = mu.size(1);
  for (int64_t i = 0; i < 4; ++i) {
    double kl = 0;
    for (int64_t j = 0; j < k; ++j) {
      const double mj = m[static_cast<size_t>(i * k + j)], lj = lv[static_cast<size_t>(i * k + j)];
      kl += -0.5 * (1 + lj - mj * mj - std::exp(lj));
    }
    CHECK(a.neg_elbo[static_cast<size_t>(i)] == doctest::Approx(nll[static_cast<size_t>(i)] + kl).epsilon(1e-5));
  }
  CHECK_THROWS_WITH_SUBSTR(session.score(zeros({2, 10})), "[score] expected inputs of shape (N, 784); got [2, 10]");
}
