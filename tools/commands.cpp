// `latent train` and the commands that use a trained run.
#include "commands.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "cli.h"
#include "image.h"
#include "plot.h"
#include "latent.h"
#include "projection.h"
#include "report.h"

namespace latent::tools {
namespace fs = std::filesystem;
using models::LoadedRun;

void check_run_dir(const std::string& dir) {
  if (!fs::exists(dir)) throw UsageError{fmt::format("run directory '{}' does not exist", dir)};
  if (!fs::exists(dir + "/config.json")) throw UsageError{fmt::format("'{}' is not a run directory: {}/config.json is missing", dir, dir)};
  if (!fs::exists(dir + "/model.safetensors")) throw UsageError{fmt::format("'{}' has no weights: {}/model.safetensors is missing", dir, dir)};
}

LoadedRun open_run(const std::string& dir) {
  check_run_dir(dir);
  return models::load(dir);
}

Batch first_samples(const Dataset& d, int64_t n) {
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < std::min(n, d.size()); ++i) idx.push_back(i);
  return d.get_batch(idx);
}

namespace {

constexpr const char* kIgnoreExtraHelp = "CSV: skip columns the run was not trained on instead of failing";
constexpr const char* kNewDataKinds = "CSV, IDX, PNG, PNG folder or Fashion-MNIST folder";

std::pair<int64_t, int64_t> image_size(const LoadedRun& run) {
  const json::Value& d = run.config_json.at("data");
  const int64_t h = d.at("height").as_int64(), w = d.at("width").as_int64();
  if (h <= 0) throw UsageError{fmt::format("the run in '{}' was trained on tabular data: there are no images to draw", run.dir)};
  return {h, w};
}

std::vector<std::string> class_names(const LoadedRun& run) {
  std::vector<std::string> names;
  for (const json::Value& n : run.config_json.at("data").at("class_names").as_array()) names.push_back(n.as_string());
  return names;
}

/// The --device choice, checked now so a missing backend or GPU fails in one line before any
/// data is loaded: "--device cuda: this build has no CUDA backend (meson -Dcuda=enabled); use --device cpu".
void check_device(Device device) {
  if (device != kCPU && !device_available(device))
    throw UsageError{fmt::format("--device cuda: {}; use --device cpu", device_unavailable_reason(device))};
}

constexpr const char* kJsonHelp = "print the result as one JSON line (for scripts)";

/// Declares every `latent train` option into `o` (whose starting values are the defaults): the
/// training fields, then the model's, from the lists config.json is written and read with.
void declare_train_options(Options& opts, models::TrainOptions& o) {
  FieldOptions declare(opts);
  models::AEConfig::fields(o.model, declare);  // the model's options first, as --help lists them
  models::TrainOptions::fields(o, declare);
}

}  // namespace

int cmd_train(const std::vector<std::string>& argv) {
  models::TrainOptions o;
  Options opts("train",
               "Trains an autoencoder and writes a run directory (model.safetensors, config.json, metrics.jsonl,\n"
               "checkpoint.safetensors, loss.svg).");
  declare_train_options(opts, o);
  if (!opts.parse(argv)) return 0;
  check_device(o.device);
  if (o.sync_batchnorm && !o.distributed)
    throw UsageError{"--sync-batchnorm synchronises batch norm over the ranks of a --distributed run; add --distributed "
                     "(under mpirun -np N), or drop it"};
  if (!o.resume.empty() && !fs::exists(o.resume)) throw UsageError{fmt::format("--resume: run directory '{}' does not exist", o.resume)};
  if (o.data.size() < 4 || o.data.substr(o.data.size() - 4) != ".csv") {
    if (!fs::exists(o.data)) throw UsageError{fmt::format("--data: '{}' does not exist (for Fashion-MNIST: apt-get install dataset-fashion-mnist)", o.data)};
  } else if (!fs::exists(o.data)) {
    throw UsageError{fmt::format("--data: file '{}' does not exist", o.data)};
  }
  const std::string dir = models::train(o, stderr);
  if (dir.empty()) return 0;  // a rank other than 0 of a --distributed run: rank 0 wrote the run
  // Loss curve from metrics.jsonl.
  std::vector<double> train_loss, test_loss;
  std::vector<std::vector<double>> train_curve;
  std::ifstream metrics(dir + "/metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    json::Value v = json::parse(line);
    train_loss.push_back(v.at("train_loss").as_double());
    test_loss.push_back(v.at("test_loss").as_double());
    train_curve.emplace_back();
    if (const json::Value* c = v.find("train_curve"))
      for (const json::Value& x : c->as_array()) train_curve.back().push_back(x.as_double());
  }
  write_loss_svg(dir + "/loss.svg", train_curve, train_loss, test_loss, "latent " + o.model.model + ": loss");
  fmt::print("{}\n", dir);
  return 0;
}

int cmd_eval(const std::vector<std::string>& argv) {
  std::string dir, data;
  bool ignore_extra = false;
  int64_t limit = 0, k = 0;
  bool as_json = false;
  Options opts("eval",
               "Prints the test loss of a trained run (MSE per element; for VAEs the negative ELBO per image,\n"
               "and with --iw-samples K an importance-weighted estimate of -log p(x) per image).");
  opts.positional("RUN", dir, "a run directory");
  opts.text("data", "PATH", data, fmt::format("file to test on, read with the run's preprocessing: {}", kNewDataKinds)).shown_default("the run's test data");
  opts.flag("ignore-extra-columns", ignore_extra, kIgnoreExtraHelp);
  opts.integer("limit", "N", limit, 1, 1LL << 40, "test on at most N samples").shown_default("all");
  opts.integer("iw-samples", "K", k, 1, 100000, "VAE: importance-weighted -log p(x) with K samples per image");
  opts.flag("json", as_json, kJsonHelp);
  if (!opts.parse(argv)) return 0;
  LoadedRun run = open_run(dir);
  if (k > 0 && !run.model->variational()) throw UsageError{"--iw-samples needs a VAE run"};
  models::DataSplit split = models::run_data(run, data, ignore_extra);
  const int64_t n = limit > 0 ? std::min(limit, split.test->size()) : split.test->size();
  double total = 0, iw_total = 0;
  int64_t elements = 0;
  const Generator::State rng = default_generator().state();  // an int8 run's float source sees the same VAE noise
  models::for_each_chunk(*split.test, n, 500, [&](const Tensor& x) {
    total += run.model->test_metric_sum(x);
    elements += x.numel();
    if (k > 0) iw_total += static_cast<models::VariationalAutoencoder&>(*run.model).importance_weighted_nll_sum(x, k);
  });
  const bool vae = run.model->variational();
  const double loss = vae ? total / static_cast<double>(n) : total / static_cast<double>(elements);
  Report report;
  report.add("run", run.dir, "run");
  report.add("samples", n, "test samples");
  report.add("test_loss", loss, "test loss",
             fmt::format("{:.6g} {}", loss, vae ? "nats per image (negative ELBO)" : "MSE per element"));
  if (const json::Value* q = run.config_json.find("quantization")) {  // an int8 run: its float source beside it
    LoadedRun source = open_run(q->at("source").as_string());
    default_generator().set_state(rng);
    double source_total = 0;
    models::for_each_chunk(*split.test, n, 500, [&](const Tensor& x) { source_total += source.model->test_metric_sum(x); });
    const double float_loss = vae ? source_total / static_cast<double>(n) : source_total / static_cast<double>(elements);
    report.add("float_test_loss", float_loss, "float32 loss",
               fmt::format("{:.6g} (int8 / float32 = {:.4f}, {})", float_loss, loss / float_loss, source.dir));
  }
  if (k > 0) {
    const double iw = iw_total / static_cast<double>(n);
    report.add("iw_nll", iw, "-log p(x)", fmt::format("{:.6g} nats per image ({} importance samples)", iw, k));
  }
  report.print(as_json);
  return 0;
}

int cmd_reconstruct(const std::vector<std::string>& argv) {
  std::string dir, data, out = "recon.png";
  bool ignore_extra = false;
  int64_t n = 16;
  Options opts("reconstruct", "Writes a PNG grid: test images on the top row, their reconstructions below.");
  opts.positional("RUN", dir, "a run directory");
  opts.text("out", "FILE", out, "the PNG to write");
  opts.integer("n", "N", n, 1, 256, "images");
  opts.text("data", "PATH", data, fmt::format("file to draw from, read with the run's preprocessing: {}", kNewDataKinds)).shown_default("the run's test data");
  opts.flag("ignore-extra-columns", ignore_extra, kIgnoreExtraHelp);
  if (!opts.parse(argv)) return 0;
  LoadedRun run = open_run(dir);
  auto [h, w] = image_size(run);
  models::DataSplit split = models::run_data(run, data, ignore_extra);
  Tensor x = first_samples(*split.test, n).inputs;
  NoGradGuard no_grad;
  Tensor recon = run.model->forward(x);
  write_image_grid(out, cat({x, recon}, 0), h, w, x.size(0));
  fmt::print("wrote {} ({} inputs above their reconstructions)\n", out, x.size(0));
  return 0;
}

int cmd_sample(const std::vector<std::string>& argv) {
  std::string dir, out = "samples.png";
  int64_t n = 64;
  uint64_t seed = 0;
  Options opts("sample", "Decodes samples from the prior of a VAE run (an rae run: its ex-post Gaussian mixture)\ninto a PNG grid.");
  opts.positional("RUN", dir, "a run directory");
  opts.integer("n", "N", n, 1, 4096, "samples");
  opts.text("out", "FILE", out, "the PNG to write");
  opts.integer("seed", "S", seed, 0, 1LL << 62, "random seed");
  if (!opts.parse(argv)) return 0;
  LoadedRun run = open_run(dir);
  if (!run.model->variational() && run.config.model != "rae")
    throw UsageError{fmt::format("sample needs a VAE run or an rae run; '{}' holds a {} model", run.dir, run.config.model)};
  auto [h, w] = image_size(run);
  Generator gen(seed);
  Tensor images = models::sample_images(run, n, &gen);
  write_image_grid(out, images, h, w, 8);
  fmt::print("wrote {} ({} samples)\n", out, n);
  return 0;
}

int cmd_interpolate(const std::vector<std::string>& argv) {
  std::string dir, data, out = "interp.png";
  bool ignore_extra = false;
  int64_t steps = 10, from = 0, to = -1;
  Options opts("interpolate",
               "Encodes test images I and J, walks the straight line between their codes and decodes each\n"
               "step into a PNG strip.");
  opts.positional("RUN", dir, "a run directory");
  opts.text("out", "FILE", out, "the PNG to write");
  opts.integer("steps", "N", steps, 2, 100, "images along the line");
  opts.integer("from", "I", from, 0, 1LL << 40, "index of the first test image");
  opts.integer("to", "J", to, 0, 1LL << 40, "index of the last test image")
      .shown_default("the first of another class than I");
  opts.text("data", "PATH", data, fmt::format("file to draw from, read with the run's preprocessing: {}", kNewDataKinds)).shown_default("the run's test data");
  opts.flag("ignore-extra-columns", ignore_extra, kIgnoreExtraHelp);
  if (!opts.parse(argv)) return 0;
  LoadedRun run = open_run(dir);
  auto [h, w] = image_size(run);
  models::DataSplit split = models::run_data(run, data, ignore_extra);
  const int64_t last = split.test->size() - 1;
  if (from > last) throw UsageError{fmt::format("--from expects an integer in [0, {}]; got '{}'", last, from)};
  if (to > last) throw UsageError{fmt::format("--to expects an integer in [0, {}]; got '{}'", last, to)};
  Batch head = first_samples(*split.test, 100);
  if (to < 0) {
    to = 1;
    if (head.targets.defined())
      for (int64_t i = 1; i < head.inputs.size(0); ++i)
        if (head.targets.at<int64_t>({i}) != head.targets.at<int64_t>({from})) {
          to = i;
          break;
        }
  }
  std::vector<int64_t> pair_idx{from, to};
  Tensor pair = split.test->get_batch(pair_idx).inputs;
  NoGradGuard no_grad;
  Tensor codes = run.model->encode(pair);
  std::vector<Tensor> rows;
  for (int64_t s = 0; s < steps; ++s) {
    const double t = static_cast<double>(s) / static_cast<double>(steps - 1);
    rows.push_back(codes.narrow(0, 0, 1) * (1 - t) + codes.narrow(0, 1, 1) * t);
  }
  Tensor images = run.model->decode(cat(rows, 0));
  write_image_grid(out, images, h, w, steps);
  fmt::print("wrote {} ({} steps from test image {} to {})\n", out, steps, from, to);
  return 0;
}

int cmd_embed(const std::vector<std::string>& argv) {
  std::string dir, data, out = "codes.csv", plot;
  bool ignore_extra = false;
  int64_t limit = 0;
  bool as_json = false;
  Options opts("embed",
               "Writes the latent code of each test sample with its label as CSV (dimensionality\n"
               "reduction), and a 2-D scatter of the codes coloured by class (the first two principal\n"
               "components when the code has more than two dims).");
  opts.positional("RUN", dir, "a run directory");
  opts.text("out", "FILE", out, "the CSV to write");
  opts.integer("limit", "N", limit, 1, 1LL << 40, "embed at most N test samples").shown_default("all");
  opts.text("plot", "FILE", plot, "the SVG scatter plot to write").shown_default("the CSV's name with .svg");
  opts.text("data", "PATH", data, fmt::format("file to embed, read with the run's preprocessing: {}", kNewDataKinds)).shown_default("the run's test data");
  opts.flag("ignore-extra-columns", ignore_extra, kIgnoreExtraHelp);
  opts.flag("json", as_json, kJsonHelp);
  if (!opts.parse(argv)) return 0;
  LoadedRun run = open_run(dir);
  models::DataSplit split = models::run_data(run, data, ignore_extra);
  const int64_t n = limit > 0 ? std::min(limit, split.test->size()) : split.test->size();
  Batch b = first_samples(*split.test, n);
  NoGradGuard no_grad;
  Tensor codes = run.model->encode(b.inputs);
  std::string csv;
  for (int64_t j = 0; j < codes.size(1); ++j) csv += fmt::format("z{},", j);
  csv += "label\n";
  std::vector<float> values = codes.to_vector<float>();
  std::vector<int64_t> labels = b.targets.defined() ? b.targets.to_vector<int64_t>() : std::vector<int64_t>(n, -1);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < codes.size(1); ++j) csv += fmt::format("{:.6g},", values[static_cast<size_t>(i * codes.size(1) + j)]);
    csv += fmt::format("{}\n", labels[static_cast<size_t>(i)]);
  }
  write_file_atomic(out, csv);
  // 2-D view: the top two principal directions of the centred codes (tools/projection.h, which
  // the web page of `latent serve` shares).
  const CodePlane plane = principal_plane(codes);
  std::vector<double> px(static_cast<size_t>(n)), py(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    std::tie(px[static_cast<size_t>(i)], py[static_cast<size_t>(i)]) = plane.project(values.data() + i * codes.size(1));
  if (plot.empty()) plot = fs::path(out).replace_extension(".svg").string();
  write_scatter_svg(plot, px, py, labels, class_names(run), "latent codes (first two principal components)");
  Report report;
  report.add("codes", out, "codes", fmt::format("{} (CSV: one row per sample, label last)", out));
  report.add("samples", n, "samples");
  report.add("dims", codes.size(1), "code dims");
  report.add("plot", plot, "plot", fmt::format("{} (first two principal components)", plot));
  report.print(as_json);
  return 0;
}

int cmd_anomaly(const std::vector<std::string>& argv) {
  std::string dir, data, out, roc;
  bool ignore_extra = false;
  int64_t limit = 0, k = -1;
  bool as_json = false;
  Options opts("anomaly",
               "Scores test samples by reconstruction error against the threshold stored in config.json\n"
               "(a quantile of the training errors). With the class that training left out (--exclude-class),\n"
               "reports precision, recall and ROC AUC for detecting it.");
  opts.positional("RUN", dir, "a run directory");
  opts.integer("anomaly-class", "K", k, 0, 1 << 20, "the label of the anomalies (precision, recall, ROC AUC)");
  opts.integer("limit", "N", limit, 1, 1LL << 40, "score at most N test samples").shown_default("all");
  opts.text("out", "FILE", out, "also write each sample's error, flag and label as CSV");
  opts.text("roc", "FILE", roc, "with --anomaly-class: draw the ROC curve as SVG");
  opts.text("data", "PATH", data, fmt::format("file to score, read with the run's preprocessing: {}", kNewDataKinds)).shown_default("the run's test data");
  opts.flag("ignore-extra-columns", ignore_extra, kIgnoreExtraHelp);
  opts.flag("json", as_json, kJsonHelp);
  if (!opts.parse(argv)) return 0;
  if (!roc.empty() && k < 0) throw UsageError{"--roc needs --anomaly-class K (the label of the anomalies)"};
  LoadedRun run = open_run(dir);
  const json::Value* anomaly = run.config_json.find("anomaly");
  if (!anomaly) throw UsageError{fmt::format("{}/config.json has no anomaly threshold (training did not finish)", run.dir)};
  const double threshold = anomaly->at("threshold").as_double();
  models::DataSplit split = models::run_data(run, data, ignore_extra);
  std::vector<double> errors = models::reconstruction_errors(*run.model, *split.test, limit);
  Batch b = first_samples(*split.test, static_cast<int64_t>(errors.size()));
  int64_t flagged = 0;
  for (double e : errors) flagged += e > threshold;
  const auto samples = static_cast<int64_t>(errors.size());
  Report report;
  report.add("samples", samples, "samples");
  report.add("threshold", threshold, "threshold", fmt::format("{:.6g} mean squared error per sample", threshold));
  report.add("flagged", flagged, "flagged",
             fmt::format("{} ({} of the samples)", flagged, percent(samples ? static_cast<double>(flagged) / static_cast<double>(samples) : 0.0)));
  if (!out.empty()) {
    std::string csv = "index,error,flagged,label\n";
    std::vector<int64_t> labels = b.targets.defined() ? b.targets.to_vector<int64_t>() : std::vector<int64_t>(errors.size(), -1);
    for (size_t i = 0; i < errors.size(); ++i) csv += fmt::format("{},{:.6g},{},{}\n", i, errors[i], errors[i] > threshold ? 1 : 0, labels[i]);
    write_file_atomic(out, csv);
  }
  if (k >= 0) {
    if (!b.targets.defined()) throw UsageError{"--anomaly-class needs labelled test data"};
    std::vector<int64_t> labels = b.targets.to_vector<int64_t>();
    std::vector<bool> positive;
    int64_t tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < errors.size(); ++i) {
      const bool is_anomaly = labels[i] == k, flag = errors[i] > threshold;
      positive.push_back(is_anomaly);
      tp += is_anomaly && flag;
      fp += !is_anomaly && flag;
      fn += is_anomaly && !flag;
    }
    if (tp + fn == 0) throw UsageError{fmt::format("--anomaly-class {}: no test sample has that label", k)};
    const double precision = tp + fp > 0 ? static_cast<double>(tp) / static_cast<double>(tp + fp) : 0.0;
    const double recall = static_cast<double>(tp) / static_cast<double>(tp + fn);
    const double auc = models::roc_auc(errors, positive);
    report.add("anomaly_class", k, "anomaly class");
    report.add("precision", precision, "precision", fmt::format("{:.4f} (flagged samples of class {})", precision, k));
    report.add("recall", recall, "recall", fmt::format("{:.4f} (class {} samples flagged)", recall, k));
    report.add("roc_auc", auc, "ROC AUC", fmt::format("{:.4f} (over all thresholds)", auc));
    if (!roc.empty()) {
      const auto [fpr, tpr] = models::roc_curve(errors, positive);
      write_roc_svg(roc, fpr, tpr, auc, fmt::format("{}: class {} as anomalies", run.dir, k));
    }
  }
  if (!out.empty() && !as_json) fmt::print("wrote {} (error, flag and label per sample)\n", out);
  report.print(as_json);
  return 0;
}

int cmd_classify(const std::vector<std::string>& argv) {
  std::string dir, data;
  bool ignore_extra = false;
  int64_t per_class = 100, steps = 500;
  uint64_t seed = 0;
  bool as_json = false;
  Options opts("classify",
               "Semi-supervised learning: trains a softmax classifier on the frozen latent codes of only N\n"
               "labelled training samples per class, and the same classifier on raw pixels; prints both\n"
               "test accuracies.");
  opts.positional("RUN", dir, "a run directory");
  opts.integer("labels", "N", per_class, 1, 100000, "labelled training samples per class");
  opts.integer("steps", "N", steps, 1, 1000000, "Adam steps of each classifier");
  opts.integer("seed", "S", seed, 0, 1LL << 62, "random seed of the classifiers' weights");
  opts.text("data", "PATH", data, fmt::format("labelled file, read with the run's preprocessing: {}", kNewDataKinds)).shown_default("the run's test data");
  opts.flag("ignore-extra-columns", ignore_extra, kIgnoreExtraHelp);
  opts.flag("json", as_json, kJsonHelp);
  if (!opts.parse(argv)) return 0;
  LoadedRun run = open_run(dir);
  models::DataSplit split = models::run_data(run, data, ignore_extra);
  if (!split.train->has_labels()) throw UsageError{"classify needs labelled data"};
  // N labelled samples per class from the training set.
  Batch all = first_samples(*split.train, std::min<int64_t>(split.train->size(), 20000));
  std::vector<int64_t> labels = all.targets.to_vector<int64_t>();
  const int64_t classes = *std::max_element(labels.begin(), labels.end()) + 1;
  std::vector<int64_t> chosen, count(static_cast<size_t>(classes), 0);
  for (size_t i = 0; i < labels.size(); ++i)
    if (count[static_cast<size_t>(labels[i])]++ < per_class) chosen.push_back(static_cast<int64_t>(i));
  Tensor idx = from_vector(chosen, {static_cast<int64_t>(chosen.size())});
  Tensor x_few = index_select(all.inputs, 0, idx), y_few = index_select(all.targets, 0, idx);
  Batch test = first_samples(*split.test, std::min<int64_t>(split.test->size(), 10000));
  auto accuracy = [&](const Tensor& train_x, const Tensor& test_x) {
    // Standardise with the labelled set's statistics, then softmax regression with Adam.
    Tensor mu = mean(train_x, {0}, true), sd = sqrt(mean(square(train_x - mu), {0}, true)) + 1e-6;
    Tensor xs = (train_x - mu) / sd, ts = (test_x - mu) / sd;
    Generator gen(seed);
    Tensor w = (randn({classes, xs.size(1)}, kFloat32, &gen) * 0.01).requires_grad_();
    Tensor b = zeros({classes}).requires_grad_();
    optim::Adam opt({w, b}, optim::AdamOptions(0.01).weight_decay(1e-3));
    for (int64_t s = 0; s < steps; ++s) {
      opt.zero_grad();
      cross_entropy(linear(xs, w, b), y_few).backward();
      opt.step();
    }
    NoGradGuard no_grad;
    Tensor pred = argmax(linear(ts, w, b), 1);
    return mean(eq(pred, test.targets).to(kFloat64)).item<double>();
  };
  Tensor codes_few, codes_test;
  {
    NoGradGuard no_grad;
    codes_few = run.model->encode(x_few);
    codes_test = run.model->encode(test.inputs);
  }
  const double acc_codes = accuracy(codes_few, codes_test);
  const double acc_raw = accuracy(x_few, test.inputs);
  Report report;
  report.add("labels_per_class", per_class, "labels per class");
  report.add("labelled_samples", static_cast<int64_t>(chosen.size()), "labelled samples");
  report.add("test_samples", test.inputs.size(0), "test samples");
  report.add("accuracy_latent", acc_codes, "accuracy, codes", fmt::format("{} (classifier on the latent codes)", percent(acc_codes)));
  report.add("accuracy_raw", acc_raw, "accuracy, pixels", fmt::format("{} (same classifier on raw pixels)", percent(acc_raw)));
  report.print(as_json);
  return 0;
}

int cmd_version(const std::vector<std::string>& argv) {
  bool as_json = false;
  Options opts("version", "Prints the version of latent, its BLAS build and whether CUDA is usable.");
  opts.flag("json", as_json, kJsonHelp);
  if (!opts.parse(argv)) return 0;
  const bool cuda = device_available(kCUDA);
  Report report(fmt::format("latent {}", LATENT_VERSION));
  report.add_json("version", LATENT_VERSION);
  report.add("blas", blas_info(), "BLAS");
  report.add("cuda", cuda ? std::string("available") : device_unavailable_reason(kCUDA), "CUDA");
  report.print(as_json);
  return 0;
}

}  // namespace latent::tools
