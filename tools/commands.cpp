// `latent train` and the commands that use a trained run.
#include "commands.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli.h"
#include "image.h"
#include "latent.h"

namespace latent::tools {
namespace fs = std::filesystem;
using models::LoadedRun;

namespace {

const std::vector<std::string> kModels{"linear", "deep", "conv", "sparse", "denoising", "vae", "conv-vae"};

constexpr const char* kTrainHelp = R"(usage: latent train [options]

Trains an autoencoder and writes a run directory (model.safetensors, config.json, metrics.jsonl,
checkpoint.safetensors, loss.svg).

  --model M            linear, deep, conv, sparse, denoising, vae, conv-vae (default deep)
  --epochs N           epochs (default 10)
  --batch-size B       batch size (default 128)
  --lr LR              learning rate (default 0.001)
  --optimizer O        adam, adamw, sgd (default adam)
  --latent-dim D       code size of dense models and conv-vae (default: deep 64, linear 32, vae 20, conv-vae 16)
  --seed S             random seed (default 0)
  --threads T          threads for latent and OpenBLAS together
  --device D           cpu or cuda (default cpu)
  --data PATH          Fashion-MNIST folder or a CSV file (default /usr/share/datasets/fashion-mnist)
  --label-column NAME  CSV: the column holding class labels
  --out DIR            run directory (default runs/<model>-<timestamp>)
  --metrics FILE       also append the metrics lines to FILE
  --resume DIR         continue the run in DIR (from its last checkpoint)
  --exclude-class K    leave class K out of training (anomaly detection)
  --noise N            denoising: gaussian, mask, salt-pepper (default gaussian)
  --noise-level F      denoising: noise standard deviation or fraction (default 0.3)
  --sparsity S         sparse: l1 or kl (default l1)
  --sparsity-weight F  sparse: weight of the penalty (default 0.001)
  --rho F              sparse kl: target mean activation (default 0.05)
  --beta F             VAE: weight of the KL term (default 1)
  --kl-warmup E        VAE: epochs over which the KL weight rises from 0 (default 0)
  --likelihood L       VAE: bernoulli or gaussian (default bernoulli)
  --batch-norm         conv models: batch norm after hidden convolutions
  --tied               dense models: decoder reuses the encoder weights
  --limit-batches N    train on at most N batches per epoch (quick runs)
  --limit-test N       evaluate on at most N test samples
  --quiet              no progress output
)";

/// The --device choice, checked now so a missing backend or GPU fails in one line before any
/// data is loaded: "--device cuda: this build has no CUDA backend (meson -Dcuda=enabled); use --device cpu".
Device check_device(const Args& a) {
  const std::string device = a.choice("device", "cpu", {"cpu", "cuda"});
  if (device == "cpu") return kCPU;
  if (!device_available(kCUDA))
    throw UsageError{fmt::format("--device cuda: {}; use --device cpu", device_unavailable_reason(kCUDA))};
  return kCUDA;
}

/// The run's test data, or every sample of --data read with the run's stored preprocessing.
models::DataSplit run_data(const LoadedRun& run, const Args& a) {
  return models::run_data(run, a.str("data", ""), a.has("ignore-extra-columns"));
}

Batch first_samples(const Dataset& d, int64_t n) {
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < std::min(n, d.size()); ++i) idx.push_back(i);
  return d.get_batch(idx);
}

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

}  // namespace

LoadedRun open_run(const std::string& dir) {
  if (!fs::exists(dir)) throw UsageError{fmt::format("run directory '{}' does not exist", dir)};
  if (!fs::exists(dir + "/config.json")) throw UsageError{fmt::format("'{}' is not a run directory: {}/config.json is missing", dir, dir)};
  if (!fs::exists(dir + "/model.safetensors")) throw UsageError{fmt::format("'{}' has no weights: {}/model.safetensors is missing", dir, dir)};
  return models::load(dir);
}

int cmd_train(const std::vector<std::string>& argv) {
  Args a("train", argv,
         {"model", "epochs", "batch-size", "lr", "optimizer", "latent-dim", "seed", "threads", "device", "data",
          "label-column", "out", "metrics", "resume", "exclude-class", "noise", "noise-level", "sparsity",
          "sparsity-weight", "rho", "beta", "kl-warmup", "likelihood", "limit-batches", "limit-test"},
         {"batch-norm", "tied", "quiet"}, 0, {});
  if (a.help()) return std::fputs(kTrainHelp, stdout), 0;
  const Device device = check_device(a);
  models::TrainOptions o;
  o.device = device;
  o.model.model = a.choice("model", "deep", kModels);
  o.epochs = a.integer("epochs", 10, 1, 100000);
  o.batch_size = a.integer("batch-size", 128, 1, 1 << 20);
  o.lr = a.number("lr", 1e-3, 1e-12, 10);
  o.optimizer = a.choice("optimizer", "adam", {"adam", "adamw", "sgd"});
  o.model.latent_dim = a.integer("latent-dim", 0, 1, 1 << 20);
  o.seed = static_cast<uint64_t>(a.integer("seed", 0, 0, (1LL << 62)));
  o.threads = static_cast<int>(a.integer("threads", 0, 1, 256));
  o.data = a.str("data", kFashionMnistDir);
  o.label_column = a.str("label-column", "");
  o.out = a.str("out", "");
  o.metrics_file = a.str("metrics", "");
  o.resume = a.str("resume", "");
  o.exclude_class = a.integer("exclude-class", -1, 0, 1 << 20);
  o.model.noise = a.choice("noise", "gaussian", {"gaussian", "mask", "salt-pepper"});
  o.model.noise_level = a.number("noise-level", 0.3, 0, 10);
  o.model.sparsity = a.choice("sparsity", "l1", {"l1", "kl"});
  o.model.sparsity_weight = a.number("sparsity-weight", 1e-3, 0, 1e6);
  o.model.rho = a.number("rho", 0.05, 1e-6, 1 - 1e-6);
  o.model.beta = a.number("beta", 1.0, 0, 1e6);
  o.model.kl_warmup = a.number("kl-warmup", 0, 0, 1e6);
  o.model.likelihood = a.choice("likelihood", "bernoulli", {"bernoulli", "gaussian"}) == "bernoulli"
                           ? models::Likelihood::Bernoulli
                           : models::Likelihood::Gaussian;
  o.model.batch_norm = a.has("batch-norm");
  o.model.tied = a.has("tied");
  o.limit_batches = a.integer("limit-batches", 0, 1, 1LL << 40);
  o.limit_test = a.integer("limit-test", 0, 1, 1LL << 40);
  o.progress = !a.has("quiet");
  if (!o.resume.empty() && !fs::exists(o.resume)) throw UsageError{fmt::format("--resume: run directory '{}' does not exist", o.resume)};
  if (o.data.size() < 4 || o.data.substr(o.data.size() - 4) != ".csv") {
    if (!fs::exists(o.data)) throw UsageError{fmt::format("--data: '{}' does not exist (for Fashion-MNIST: apt-get install dataset-fashion-mnist)", o.data)};
  } else if (!fs::exists(o.data)) {
    throw UsageError{fmt::format("--data: file '{}' does not exist", o.data)};
  }
  const std::string dir = models::train(o, stderr);
  // Loss curve from metrics.jsonl.
  std::vector<double> train_loss, test_loss;
  std::ifstream metrics(dir + "/metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    json::Value v = json::parse(line);
    train_loss.push_back(v.at("train_loss").as_double());
    test_loss.push_back(v.at("test_loss").as_double());
  }
  write_loss_svg(dir + "/loss.svg", train_loss, test_loss, "latent " + o.model.model + ": loss per epoch");
  fmt::print("{}\n", dir);
  return 0;
}

int cmd_eval(const std::vector<std::string>& argv) {
  Args a("eval", argv, {"data", "iw-samples", "limit"}, {"ignore-extra-columns"}, 1, {"a run directory"});
  if (a.help()) {
    std::puts("usage: latent eval RUN [--data PATH] [--limit N] [--iw-samples K]\n\n"
              "Prints the test loss of a trained run (MSE per element; for VAEs the negative ELBO per image,\n"
              "and with --iw-samples K an importance-weighted estimate of -log p(x) per image).");
    return 0;
  }
  LoadedRun run = open_run(a.positional(0));
  models::DataSplit data = run_data(run, a);
  const int64_t limit = a.integer("limit", 0, 1, 1LL << 40);
  const int64_t n = limit > 0 ? std::min(limit, data.test->size()) : data.test->size();
  double total = 0, iw_total = 0;
  const int64_t k = a.integer("iw-samples", 0, 1, 100000);
  if (k > 0 && !run.model->variational()) throw UsageError{"--iw-samples needs a VAE run"};
  int64_t elements = 0;
  models::for_each_chunk(*data.test, n, 500, [&](const Tensor& x) {
    total += run.model->test_metric_sum(x);
    elements += x.numel();
    if (k > 0) iw_total += static_cast<models::VariationalAutoencoder&>(*run.model).importance_weighted_nll_sum(x, k);
  });
  json::Value out = json::Value::object();
  out["run"] = run.dir;
  out["samples"] = n;
  out["test_loss"] = run.model->variational() ? total / static_cast<double>(n) : total / static_cast<double>(elements);
  if (k > 0) out["iw_nll"] = iw_total / static_cast<double>(n);
  fmt::print("{}\n", out.dump());
  return 0;
}

int cmd_reconstruct(const std::vector<std::string>& argv) {
  Args a("reconstruct", argv, {"out", "n", "data"}, {"ignore-extra-columns"}, 1, {"a run directory"});
  if (a.help()) {
    std::puts("usage: latent reconstruct RUN [--out recon.png] [--n 16] [--data PATH]\n\n"
              "Writes a PNG grid: test images on the top row, their reconstructions below.");
    return 0;
  }
  LoadedRun run = open_run(a.positional(0));
  auto [h, w] = image_size(run);
  const int64_t n = a.integer("n", 16, 1, 256);
  models::DataSplit data = run_data(run, a);
  Tensor x = first_samples(*data.test, n).inputs;
  NoGradGuard no_grad;
  Tensor recon = run.model->forward(x);
  const std::string out = a.str("out", "recon.png");
  write_image_grid(out, cat({x, recon}, 0), h, w, x.size(0));
  fmt::print("wrote {} ({} inputs above their reconstructions)\n", out, x.size(0));
  return 0;
}

int cmd_sample(const std::vector<std::string>& argv) {
  Args a("sample", argv, {"out", "n", "seed"}, {}, 1, {"a run directory"});
  if (a.help()) {
    std::puts("usage: latent sample RUN [--n 64] [--out samples.png] [--seed S]\n\n"
              "Decodes samples from the prior of a VAE run into a PNG grid.");
    return 0;
  }
  LoadedRun run = open_run(a.positional(0));
  if (!run.model->variational()) throw UsageError{fmt::format("sample needs a VAE run; '{}' holds a {} model", run.dir, run.config.model)};
  auto [h, w] = image_size(run);
  const int64_t n = a.integer("n", 64, 1, 4096);
  Generator gen(static_cast<uint64_t>(a.integer("seed", 0, 0, 1LL << 62)));
  Tensor images = static_cast<models::VariationalAutoencoder&>(*run.model).sample(n, &gen);
  const std::string out = a.str("out", "samples.png");
  write_image_grid(out, images, h, w, 8);
  fmt::print("wrote {} ({} samples)\n", out, n);
  return 0;
}

int cmd_interpolate(const std::vector<std::string>& argv) {
  Args a("interpolate", argv, {"out", "steps", "data", "from", "to"}, {"ignore-extra-columns"}, 1, {"a run directory"});
  if (a.help()) {
    std::puts("usage: latent interpolate RUN [--out interp.png] [--steps 10] [--from I] [--to J]\n\n"
              "Encodes test images I and J (default: the first two of different classes), walks the\n"
              "straight line between their codes and decodes each step into a PNG strip.");
    return 0;
  }
  LoadedRun run = open_run(a.positional(0));
  auto [h, w] = image_size(run);
  models::DataSplit data = run_data(run, a);
  const int64_t steps = a.integer("steps", 10, 2, 100);
  Batch head = first_samples(*data.test, 100);
  int64_t from = a.integer("from", 0, 0, data.test->size() - 1), to = a.integer("to", -1, 0, data.test->size() - 1);
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
  Tensor pair = data.test->get_batch(pair_idx).inputs;
  NoGradGuard no_grad;
  Tensor codes = run.model->encode(pair);
  std::vector<Tensor> rows;
  for (int64_t s = 0; s < steps; ++s) {
    const double t = static_cast<double>(s) / static_cast<double>(steps - 1);
    rows.push_back(codes.narrow(0, 0, 1) * (1 - t) + codes.narrow(0, 1, 1) * t);
  }
  Tensor images = run.model->decode(cat(rows, 0));
  const std::string out = a.str("out", "interp.png");
  write_image_grid(out, images, h, w, steps);
  fmt::print("wrote {} ({} steps from test image {} to {})\n", out, steps, from, to);
  return 0;
}

int cmd_embed(const std::vector<std::string>& argv) {
  Args a("embed", argv, {"out", "limit", "data", "plot"}, {"ignore-extra-columns"}, 1, {"a run directory"});
  if (a.help()) {
    std::puts("usage: latent embed RUN [--out codes.csv] [--limit N] [--plot latent.svg]\n\n"
              "Writes the latent code of each test sample with its label as CSV (dimensionality\n"
              "reduction), and a 2-D scatter of the codes coloured by class (the first two principal\n"
              "components when the code has more than two dims).");
    return 0;
  }
  LoadedRun run = open_run(a.positional(0));
  models::DataSplit data = run_data(run, a);
  const int64_t limit = a.integer("limit", 0, 1, 1LL << 40);
  const int64_t n = limit > 0 ? std::min(limit, data.test->size()) : data.test->size();
  Batch b = first_samples(*data.test, n);
  NoGradGuard no_grad;
  Tensor codes = run.model->encode(b.inputs);
  const std::string out = a.str("out", "codes.csv");
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
  // 2-D view: the top two principal directions of the centred codes (power iteration).
  Tensor centred = codes.to(kFloat64) - mean(codes.to(kFloat64), {0}, true);
  Tensor cov = matmul(centred.t(), centred);
  std::vector<Tensor> dirs;
  for (int k = 0; k < std::min<int64_t>(2, codes.size(1)); ++k) {
    Tensor v = ones({codes.size(1), 1}, kFloat64) + arange(0.0, static_cast<double>(codes.size(1)), 1.0, kFloat64).view({-1, 1}) * 0.01;
    for (int it = 0; it < 200; ++it) {
      for (const Tensor& d : dirs) v = v - d * matmul(d.t(), v);
      v = matmul(cov, v);
      v = v / sqrt(sum(v * v));
    }
    dirs.push_back(v);
  }
  std::vector<double> px = matmul(centred, dirs[0]).to_vector<double>();
  std::vector<double> py = dirs.size() > 1 ? matmul(centred, dirs[1]).to_vector<double>() : std::vector<double>(n, 0.0);
  const std::string plot = a.str("plot", fs::path(out).replace_extension(".svg").string());
  write_scatter_svg(plot, px, py, labels, class_names(run), "latent codes (first two principal components)");
  fmt::print("wrote {} ({} codes of {} dims) and {}\n", out, n, codes.size(1), plot);
  return 0;
}

int cmd_anomaly(const std::vector<std::string>& argv) {
  Args a("anomaly", argv, {"anomaly-class", "data", "limit", "out"}, {"ignore-extra-columns"}, 1, {"a run directory"});
  if (a.help()) {
    std::puts("usage: latent anomaly RUN [--anomaly-class K] [--limit N] [--out scores.csv]\n\n"
              "Scores test samples by reconstruction error against the threshold stored in config.json\n"
              "(a quantile of the training errors). With the class that training left out (--exclude-class),\n"
              "reports precision, recall and ROC AUC for detecting it.");
    return 0;
  }
  LoadedRun run = open_run(a.positional(0));
  const json::Value* anomaly = run.config_json.find("anomaly");
  if (!anomaly) throw UsageError{fmt::format("{}/config.json has no anomaly threshold (training did not finish)", run.dir)};
  const double threshold = anomaly->at("threshold").as_double();
  models::DataSplit data = run_data(run, a);
  const int64_t limit = a.integer("limit", 0, 1, 1LL << 40);
  std::vector<double> errors = models::reconstruction_errors(*run.model, *data.test, limit);
  Batch b = first_samples(*data.test, static_cast<int64_t>(errors.size()));
  int64_t flagged = 0;
  for (double e : errors) flagged += e > threshold;
  json::Value out = json::Value::object();
  out["samples"] = static_cast<int64_t>(errors.size());
  out["threshold"] = threshold;
  out["flagged"] = flagged;
  if (a.has("out")) {
    std::string csv = "index,error,flagged,label\n";
    std::vector<int64_t> labels = b.targets.defined() ? b.targets.to_vector<int64_t>() : std::vector<int64_t>(errors.size(), -1);
    for (size_t i = 0; i < errors.size(); ++i) csv += fmt::format("{},{:.6g},{},{}\n", i, errors[i], errors[i] > threshold ? 1 : 0, labels[i]);
    write_file_atomic(a.str("out", ""), csv);
  }
  if (a.has("anomaly-class")) {
    if (!b.targets.defined()) throw UsageError{"--anomaly-class needs labelled test data"};
    const int64_t k = a.integer("anomaly-class", 0, 0, 1 << 20);
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
    out["anomaly_class"] = k;
    out["precision"] = tp + fp > 0 ? static_cast<double>(tp) / static_cast<double>(tp + fp) : 0.0;
    out["recall"] = static_cast<double>(tp) / static_cast<double>(tp + fn);
    out["roc_auc"] = models::roc_auc(errors, positive);
  }
  fmt::print("{}\n", out.dump());
  return 0;
}

int cmd_classify(const std::vector<std::string>& argv) {
  Args a("classify", argv, {"labels", "data", "steps", "seed"}, {"ignore-extra-columns"}, 1, {"a run directory"});
  if (a.help()) {
    std::puts("usage: latent classify RUN [--labels 100] [--steps 500]\n\n"
              "Semi-supervised learning: trains a softmax classifier on the frozen latent codes of only N\n"
              "labelled training samples per class, and the same classifier on raw pixels; prints both\n"
              "test accuracies.");
    return 0;
  }
  LoadedRun run = open_run(a.positional(0));
  models::DataSplit data = run_data(run, a);
  if (!data.train->has_labels()) throw UsageError{"classify needs labelled data"};
  const int64_t per_class = a.integer("labels", 100, 1, 100000);
  const int64_t steps = a.integer("steps", 500, 1, 1000000);
  // N labelled samples per class from the training set.
  Batch all = first_samples(*data.train, std::min<int64_t>(data.train->size(), 20000));
  std::vector<int64_t> labels = all.targets.to_vector<int64_t>();
  const int64_t classes = *std::max_element(labels.begin(), labels.end()) + 1;
  std::vector<int64_t> chosen, count(static_cast<size_t>(classes), 0);
  for (size_t i = 0; i < labels.size(); ++i)
    if (count[static_cast<size_t>(labels[i])]++ < per_class) chosen.push_back(static_cast<int64_t>(i));
  Tensor idx = from_vector(chosen, {static_cast<int64_t>(chosen.size())});
  Tensor x_few = index_select(all.inputs, 0, idx), y_few = index_select(all.targets, 0, idx);
  Batch test = first_samples(*data.test, std::min<int64_t>(data.test->size(), 10000));
  auto accuracy = [&](const Tensor& train_x, const Tensor& test_x) {
    // Standardise with the labelled set's statistics, then softmax regression with Adam.
    Tensor mu = mean(train_x, {0}, true), sd = sqrt(mean(square(train_x - mu), {0}, true)) + 1e-6;
    Tensor xs = (train_x - mu) / sd, ts = (test_x - mu) / sd;
    Generator gen(static_cast<uint64_t>(a.integer("seed", 0, 0, 1LL << 62)));
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
  json::Value out = json::Value::object();
  out["labels_per_class"] = per_class;
  out["labelled_samples"] = static_cast<int64_t>(chosen.size());
  out["test_samples"] = test.inputs.size(0);
  out["accuracy_latent"] = acc_codes;
  out["accuracy_raw"] = acc_raw;
  fmt::print("{}\n", out.dump());
  return 0;
}

}  // namespace latent::tools
