#include "run.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "../../ops/creation.h"
#include "../../ops/elementwise.h"
#include "../../ops/index.h"
#include "../../ops/loss.h"
#include "../../ops/reduce.h"
#include "../../ops/shape_ops.h"
#include "../../ops/threads.h"
#include "../io/checkpoint.h"
#include "../../ops/autocast.h"
#include "../dist/ddp.h"
#include "../nn/grad_scaler.h"
#include "../nn/optim.h"
#include "progress.h"
#include "../deploy/quantize.h"
#include "../io/safetensors.h"

namespace latent::models {
namespace fs = std::filesystem;

namespace {

/// The samples of `base` at `indices` (a view: no data is copied).
class SubsetDataset : public Dataset {
 public:
  SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices)
      : base_(std::move(base)), indices_(std::move(indices)) {}
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Shape sample_shape() const override { return base_->sample_shape(); }
  bool has_labels() const override { return base_->has_labels(); }
  Batch get_batch(std::span<const int64_t> indices) const override {
    std::vector<int64_t> mapped;
    mapped.reserve(indices.size());
    for (int64_t i : indices) {
      if (i < 0 || i >= size()) fail("data", "index {} is out of range for a dataset of {}", i, size());
      mapped.push_back(indices_[static_cast<size_t>(i)]);
    }
    return base_->get_batch(mapped);
  }

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<int64_t> indices_;
};

std::vector<int64_t> labels_of(const Dataset& d) {
  if (const auto* idx = dynamic_cast<const IdxDataset*>(&d); idx && idx->labels())
    return {idx->labels()->data.begin(), idx->labels()->data.end()};  // the label bytes, no image batch
  std::vector<int64_t> labels;
  std::vector<int64_t> chunk;
  for (int64_t start = 0; start < d.size(); start += 4096) {
    chunk.clear();
    for (int64_t i = start; i < std::min(d.size(), start + 4096); ++i) chunk.push_back(i);
    for (int64_t l : d.get_batch(chunk).targets.to_vector<int64_t>()) labels.push_back(l);
  }
  return labels;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const std::string& name, const std::vector<Tensor>& params, double lr) {
  if (name == "adam") return std::make_unique<optim::Adam>(params, optim::AdamOptions(lr));
  if (name == "adamw") return std::make_unique<optim::AdamW>(params, optim::AdamWOptions(lr));
  if (name == "sgd") return std::make_unique<optim::SGD>(params, optim::SGDOptions(lr).momentum(0.9));
  fail("train", "unknown optimizer '{}' (adam, adamw, sgd)", name);
}

std::vector<Transform> noise_transforms(const AEConfig& c) {
  if (c.model != "denoising") return {};
  if (c.noise == "gaussian") return {transforms::gaussian_noise(c.noise_level, true)};
  if (c.noise == "mask") return {transforms::masking_noise(c.noise_level)};
  if (c.noise == "salt-pepper") return {transforms::salt_and_pepper(c.noise_level)};
  fail("train", "unknown noise '{}' (gaussian, mask, salt-pepper)", c.noise);
}

/// The device of a module's parameters (the CPU for a module without any).
Device device_of(const nn::Module& module) {
  const std::vector<Tensor> params = module.parameters();
  return params.empty() ? kCPU : params.front().device();
}

/// CPU copies of named tensors (safetensors files hold host data).
NamedTensors on_cpu(NamedTensors tensors) {
  for (auto& entry : tensors)
    if (entry.second.defined() && !entry.second.device().is_cpu()) entry.second = entry.second.detach().to(kCPU);
  return tensors;
}

void append_line(const std::string& path, const std::string& line) {
  std::ofstream f(path, std::ios::app);
  if (!f) fail("metrics", "{}: cannot open for appending", path);
  f << line << '\n';
}

/// Test metric over the test set (per element, or per image for VAEs) and, for denoising models,
/// MSE of noisy and denoised test images to the clean ones.
void evaluate(Autoencoder& model, const Dataset& test, int64_t limit, EpochMetrics& m) {
  NoGradGuard no_grad;
  model.eval();
  const int64_t n = limit > 0 ? std::min(limit, test.size()) : test.size();
  const std::vector<Transform> noise = noise_transforms(model.config());
  Generator gen(1234);  // the same corruption every epoch, so epochs compare
  const Device device = device_of(model);
  double total = 0, noisy = 0, denoised = 0;
  int64_t elements = 0;
  for_each_chunk(test, n, 500, [&](const Tensor& host_x) {
    const Tensor x = host_x.to(device);
    total += model.test_metric_sum(x);
    elements += x.numel();
    if (!noise.empty()) {
      Tensor corrupted = noise[0](host_x, gen).to(device);  // corrupted on the host: same numbers on every device
      noisy += mse_loss(corrupted, x, Reduction::Sum).item<double>();
      denoised += mse_loss(model.forward(corrupted), x, Reduction::Sum).item<double>();
    }
  });
  m.test_loss = model.variational() ? total / static_cast<double>(n) : total / static_cast<double>(elements);
  if (!noise.empty()) {
    m.noisy_mse = noisy / static_cast<double>(elements);
    m.denoised_mse = denoised / static_cast<double>(elements);
  }
}

json::Value training_json(const TrainOptions& o) {
  json::Value t = json::Value::object();
  FieldWriter writer(t);
  TrainOptions::fields(o, writer);
  return t;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

}  // namespace

json::Value EpochMetrics::to_json() const {
  json::Value v = json::Value::object();
  v["epoch"] = epoch;
  v["train_loss"] = train_loss;
  v["test_loss"] = test_loss;
  v["epoch_seconds"] = epoch_seconds;
  v["samples_per_second"] = samples_per_second;
  if (mean_activation >= 0) v["mean_activation"] = mean_activation;
  if (!loss_terms.empty()) {
    json::Value terms = json::Value::object();
    for (const auto& [name, value] : loss_terms) terms[name] = value;
    v["loss_terms"] = terms;
  }
  if (!train_curve.empty()) {
    json::Value c = json::Value::array();
    for (double x : train_curve) c.push_back(x);
    v["train_curve"] = c;
  }
  if (noisy_mse >= 0) {
    v["noisy_mse"] = noisy_mse;
    v["denoised_mse"] = denoised_mse;
  }
  return v;
}

/// The positions of `labels` that --exclude-class / --normal-class keep for training; an error when
/// the class is absent or (excluded) every sample has it.
std::vector<int64_t> class_filter(const std::vector<int64_t>& labels, const DataOptions& o) {
  if (o.exclude_class >= 0 && o.normal_class >= 0)
    fail("train", "--exclude-class {} and --normal-class {}: choose one", o.exclude_class, o.normal_class);
  std::vector<int64_t> keep;
  for (size_t i = 0; i < labels.size(); ++i)
    if (o.normal_class >= 0 ? labels[i] == o.normal_class : labels[i] != o.exclude_class)
      keep.push_back(static_cast<int64_t>(i));
  if (o.normal_class >= 0 && keep.empty())
    fail("train", "--normal-class {}: no training sample has that label", o.normal_class);
  if (o.exclude_class >= 0 && keep.size() == labels.size())
    fail("train", "--exclude-class {}: no training sample has that label", o.exclude_class);
  if (o.exclude_class >= 0 && keep.empty())
    fail("train", "--exclude-class {}: every training sample has that label", o.exclude_class);
  return keep;
}

DataSplit load_data(const std::string& path, const DataOptions& o) {
  DataSplit split;
  std::shared_ptr<const Dataset> train_all;
  if (ends_with(path, ".csv")) {
    CsvOptions options;
    options.label_column = o.label_column;
    CsvTable table = read_csv(path, options);
    const int64_t rows = table.features.size(0);
    if (rows < 2) fail("data", "{}: needs at least 2 rows; got {}", path, rows);
    Generator gen(o.seed);
    std::vector<int64_t> perm = randperm(rows, &gen).to_vector<int64_t>();
    const int64_t n_train = std::max<int64_t>(1, rows * 4 / 5);
    std::vector<int64_t> train_rows(perm.begin(), perm.begin() + n_train);
    std::vector<int64_t> test_rows(perm.begin() + (n_train == rows ? 0 : n_train), perm.end());
    if (o.validation > 0) {  // the last rows of the training part evaluate; the test rows stay unread
      if (o.validation >= n_train)
        fail("data", "--validation {}: {} has {} training rows; hold out fewer", o.validation, path, n_train);
      test_rows.assign(train_rows.end() - o.validation, train_rows.end());
      train_rows.resize(static_cast<size_t>(n_train - o.validation));
    }
    if (o.exclude_class >= 0 || o.normal_class >= 0) {
      if (!table.labels.defined())
        fail("train", "--{} needs labelled data; {} has no label column",
             o.exclude_class >= 0 ? "exclude-class" : "normal-class", path);
      const std::vector<int64_t> labels = table.labels.to_vector<int64_t>();
      std::vector<int64_t> row_labels;
      for (int64_t r : train_rows) row_labels.push_back(labels[static_cast<size_t>(r)]);
      std::vector<int64_t> keep;
      for (int64_t i : class_filter(row_labels, o)) keep.push_back(train_rows[static_cast<size_t>(i)]);
      train_rows = std::move(keep);
    }
    auto rows_tensor = [](const std::vector<int64_t>& r) { return from_vector(r, {static_cast<int64_t>(r.size())}); };
    // Min-max statistics from the rows the model trains on (never from test or new data).
    if (o.preprocessing) {
      split.preprocessing = *o.preprocessing;
      if (split.preprocessing.kind != Preprocessing::Kind::Table || split.preprocessing.columns != table.columns)
        fail("data", "{}: the columns ({}) are not those the run was trained on ({})", path, fmt::join(table.columns, ", "),
             fmt::join(split.preprocessing.columns, ", "));
    } else if (o.fit_on_all_rows) {
      split.preprocessing = Preprocessing::fit_table(table.columns, table.features);
    } else {
      split.preprocessing = Preprocessing::fit_table(table.columns, index_select(table.features, 0, rows_tensor(train_rows)));
    }
    Tensor scaled = split.preprocessing.apply(table.features);
    auto take = [&](const std::vector<int64_t>& r) {
      Tensor idx = rows_tensor(r);
      Tensor labels = table.labels.defined() ? index_select(table.labels, 0, idx) : Tensor();
      return std::make_shared<TensorDataset>(index_select(scaled, 0, idx), labels);
    };
    split.train = take(train_rows);
    split.test = take(test_rows);
    split.input_dim = table.features.size(1);
    split.class_names = table.class_names;
    return split;
  }
  IdxOptions options;
  options.flatten = true;
  train_all = std::make_shared<IdxDataset>(load_fashion_mnist(path, true, options));
  if (o.validation > 0) {  // a seeded hold-out of the training images stands in for the test set
    const int64_t n = train_all->size();
    if (o.validation >= n) fail("data", "--validation {}: {} has {} training images; hold out fewer", o.validation, path, n);
    Generator gen(o.seed);
    std::vector<int64_t> perm = randperm(n, &gen).to_vector<int64_t>();
    std::vector<int64_t> kept(perm.begin(), perm.end() - o.validation), held(perm.end() - o.validation, perm.end());
    std::sort(kept.begin(), kept.end());
    std::sort(held.begin(), held.end());
    split.test = std::make_shared<SubsetDataset>(train_all, held);
    train_all = std::make_shared<SubsetDataset>(train_all, kept);
  } else {
    split.test = std::make_shared<IdxDataset>(load_fashion_mnist(path, false, options));
  }
  split.input_dim = 784;
  split.height = split.width = 28;
  split.class_names = fashion_mnist_classes();
  split.preprocessing = Preprocessing::image(28, 28);
  if (o.exclude_class >= 0 || o.normal_class >= 0)
    train_all = std::make_shared<SubsetDataset>(train_all, class_filter(labels_of(*train_all), o));
  split.train = train_all;
  return split;
}

namespace {

/// What a training run carries from one step to the next.
struct TrainingState {
  TrainOptions o;             ///< the options, with a resumed run's stored ones applied
  DataSplit split;
  std::shared_ptr<Autoencoder> model;
  std::unique_ptr<optim::Optimizer> optimizer;
  std::unique_ptr<GradScaler> scaler;  ///< --precision fp16 only
  json::Value config;         ///< what config.json holds
  int64_t start_epoch = 0, step = 0;
  // --distributed: the MPI group (null otherwise) and the gradient averaging attached to the model.
  std::shared_ptr<dist::ProcessGroup> group;
  std::unique_ptr<dist::DistributedDataParallel> ddp;
  int rank = 0, ranks = 1;
  bool writes() const { return rank == 0; }  ///< rank 0 alone writes the run directory and logs
};

/// The given options with those a resumed run stored (the model's, and the training fields marked
/// Field::Resumed: batch size, lr, optimizer, seed, data, label column, excluded class).
TrainOptions resumed_options(const TrainOptions& given, const json::Value& resumed_config) {
  TrainOptions o = given;
  o.model = AEConfig::from_json(resumed_config.at("model"));
  FieldReader reader(resumed_config.at("training"), Field::Resumed);
  TrainOptions::fields(o, reader);
  if (o.out.empty()) o.out = o.resume;
  return o;
}

json::Value run_config(const TrainingState& s) {
  json::Value config = json::Value::object();
  config["version"] = 1;
  config["model"] = s.o.model.to_json();
  config["training"] = training_json(s.o);
  json::Value data = json::Value::object();
  data["input_dim"] = s.split.input_dim;
  data["height"] = s.split.height;
  data["width"] = s.split.width;
  json::Value names = json::Value::array();
  for (const auto& n : s.split.class_names) names.push_back(n);
  data["class_names"] = names;
  data["train_samples"] = s.split.train->size();
  data["test_samples"] = s.split.test->size();
  config["data"] = data;
  return config;
}

/// Step 1: a fresh model and optimizer, or (--resume) the run's options, weights, optimizer state and
/// random state from its checkpoint. Loads the data with the preprocessing fitted (or stored) for it.
TrainingState resume_or_initialize(const TrainOptions& options, std::shared_ptr<dist::ProcessGroup> group) {
  TrainingState s;
  if (group) {
    s.group = std::move(group);
    s.rank = s.group->rank();
    s.ranks = s.group->size();
  }
  json::Value resumed_config;
  Checkpoint resumed;
  s.o = options;
  if (!options.resume.empty()) {
    if (!fs::exists(options.resume)) fail("train", "run directory '{}' does not exist", options.resume);
    resumed_config = json::parse(read_file(options.resume + "/config.json", "train"));
    resumed = load_checkpoint(options.resume + "/checkpoint.safetensors");
    s.o = resumed_options(options, resumed_config);
  }
  TrainOptions& o = s.o;
  if (o.epochs <= 0) fail("train", "--epochs must be positive; got {}", o.epochs);
  if (o.batch_size <= 0) fail("train", "--batch-size must be positive; got {}", o.batch_size);
  if (!(o.lr > 0)) fail("train", "--lr must be positive; got {}", o.lr);
  if (s.group && o.batch_size % s.ranks != 0)
    fail("train", "--batch-size {} is the global batch and must split evenly over the {} ranks", o.batch_size, s.ranks);
  if (o.threads > 0) {
    set_num_threads(o.threads);
  } else if (s.group) {  // the node's cores shared by its ranks, never oversubscribed
    set_num_threads(std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / s.group->local_size()));
  }
  manual_seed(o.seed);

  // A resumed run keeps the preprocessing it stored (so --resume never refits); runs from before
  // stored preprocessing keep their whole-file scaling.
  std::optional<Preprocessing> stored;
  if (const json::Value* p = resumed_config.is_object() ? resumed_config.find("preprocessing") : nullptr)
    stored = Preprocessing::from_json(*p);
  s.split = load_data(o.data, DataOptions{o.label_column, o.seed, o.exclude_class, stored ? &*stored : nullptr,
                                          !o.resume.empty() && !stored, o.normal_class, o.validation});
  o.model.input_dim = s.split.input_dim;
  if (s.split.height > 0) {
    o.model.image_height = s.split.height;
    o.model.image_width = s.split.width;
  } else if (o.model.model == "conv" || o.model.model == "conv-vae") {
    fail("train", "model '{}' needs images; {} is tabular (use linear, deep, sparse, denoising or vae)", o.model.model,
         o.data);
  }
  check_device_available("train", o.device);
  if (o.precision != "fp32" && !o.device.is_cpu())
    fail("train", "--precision {} runs on the CPU only so far (the CUDA half-precision GEMMs are not written); use "
                  "--precision fp32 with --device cuda", o.precision);
  if (o.precision == "fp16") s.scaler = std::make_unique<GradScaler>();
  s.model = make_autoencoder(o.model);  // initialised on the host: same weights on every device
  if (!o.device.is_cpu()) s.model->to(o.device);
  s.optimizer = make_optimizer(o.optimizer, s.model->parameters(), o.lr);  // state on the parameters' device

  if (o.out.empty()) o.out = "runs/" + o.model.model + "-" + timestamp();
  if (s.writes()) {
    if (o.resume.empty() && fs::exists(o.out + "/model.safetensors"))
      fail("train", "'{}' already holds a run; pass --resume {} to continue it or choose another --out", o.out, o.out);
    std::error_code ec;
    fs::create_directories(o.out, ec);
    if (ec) fail("train", "cannot create run directory '{}': {}", o.out, ec.message());
  }

  if (!o.resume.empty()) {
    NamedTensors model_tensors = strip_prefix("model.", resumed.tensors);
    for (auto& entry : model_tensors) entry.second = entry.second.to(o.device);
    load_named_tensors(s.model->state_dict(), model_tensors, true, o.resume);
    s.optimizer->load_state(strip_prefix("optim.", resumed.tensors));
    resumed.restore_rng("default", default_generator());
    s.start_epoch = resumed.epoch;
    s.step = resumed.step;
    if (s.start_epoch >= o.epochs)
      fail("train", "the run in '{}' already has {} epochs; pass a larger --epochs to continue", o.resume, s.start_epoch);
  }
  if (s.group) {
    // Rank 0's weights everywhere; each other rank its own random stream (dropout, VAE samples).
    // Losses that are batch means average the ranks' gradients; the VAEs' (an ELBO summed over
    // the batch) add them: either way the gradient of the whole global batch, as on one process.
    const dist::ReduceOp reduce = s.model->variational() ? dist::ReduceOp::Sum : dist::ReduceOp::Avg;
    dist::DDPOptions ddp_options{o.bucket_mb, true, reduce};
    ddp_options.sync_batchnorm = o.sync_batchnorm;
    s.ddp = std::make_unique<dist::DistributedDataParallel>(s.model, s.group, ddp_options);
    if (s.rank > 0) manual_seed(o.seed ^ (0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(s.rank + s.start_epoch * 7919)));
  }
  s.config = run_config(s);
  if (o.resume.empty() || stored) s.config["preprocessing"] = s.split.preprocessing.to_json();
  return s;
}

/// Step 2: one pass over (at most `batches` of) the training batches; the epoch's training metrics.
EpochMetrics run_epoch(TrainingState& s, DataLoader& loader, int64_t epoch, int64_t batches, ProgressBar& bar) {
  s.model->train();
  loader.set_epoch(epoch);
  const bool show = s.o.progress && s.writes();
  if (show) bar.start_epoch(epoch);
  EpochMetrics m;
  m.epoch = epoch + 1;
  double loss_sum = 0, activation_sum = 0;
  int64_t seen = 0, b = 0;
  const int64_t stretches = std::min<int64_t>(20, batches);  // train_curve's points
  std::vector<double> stretch_sum(static_cast<size_t>(stretches), 0.0), stretch_n(stretch_sum);
  const auto t0 = std::chrono::steady_clock::now();
  for (const Batch& batch : loader) {
    if (b >= batches) break;
    const double progress = static_cast<double>(epoch) + static_cast<double>(b) / static_cast<double>(batches);
    const Tensor inputs = batch.inputs.to(s.o.device);
    const Tensor clean = batch.clean.is_same(batch.inputs) ? inputs : batch.clean.to(s.o.device);
    const DType low = s.o.precision == "bf16" ? kBFloat16 : s.o.precision == "fp16" ? kFloat16 : kFloat32;
    AutocastGuard autocast(low, low != kFloat32);
    AELoss loss = s.model->loss(inputs, clean, progress);
    s.optimizer->zero_grad();
    if (s.scaler) {
      s.scaler->scale(loss.total).backward();
      s.scaler->step(*s.optimizer);
    } else {
      loss.total.backward();
      s.optimizer->step();
    }
    const int64_t bs = batch.inputs.size(0);
    const double value = s.model->variational() ? loss.total.item<double>() / static_cast<double>(bs)
                                                : loss.total.item<double>();
    loss_sum += value * static_cast<double>(bs);
    const auto stretch = static_cast<size_t>(b * stretches / batches);
    stretch_sum[stretch] += value * static_cast<double>(bs);
    stretch_n[stretch] += static_cast<double>(bs);
    if (loss.mean_activation >= 0) activation_sum += loss.mean_activation * static_cast<double>(bs);
    if (m.loss_terms.empty())
      for (const auto& [name, value] : loss.terms) m.loss_terms.emplace_back(name, 0.0);
    for (size_t i = 0; i < loss.terms.size() && i < m.loss_terms.size(); ++i)
      m.loss_terms[i].second += loss.terms[i].second * static_cast<double>(bs);
    seen += bs;
    ++b;
    ++s.step;
    if (show) bar.update(value, bs * s.ranks);
  }
  if (s.group) {  // the epoch's loss and curve over every rank's samples
    std::vector<double> v{loss_sum, activation_sum, static_cast<double>(seen)};
    v.insert(v.end(), stretch_sum.begin(), stretch_sum.end());
    v.insert(v.end(), stretch_n.begin(), stretch_n.end());
    Tensor sums = from_vector(v, {static_cast<int64_t>(v.size())});
    s.group->allreduce(sums, dist::ReduceOp::Sum);
    v = sums.to_vector<double>();
    loss_sum = v[0];
    activation_sum = v[1];
    seen = static_cast<int64_t>(v[2]);
    std::copy(v.begin() + 3, v.begin() + 3 + stretches, stretch_sum.begin());
    std::copy(v.begin() + 3 + stretches, v.end(), stretch_n.begin());
  }
  m.epoch_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  m.train_loss = seen ? loss_sum / static_cast<double>(seen) : 0;
  for (size_t i = 0; i < stretch_sum.size(); ++i)
    if (stretch_n[i] > 0) m.train_curve.push_back(stretch_sum[i] / stretch_n[i]);
  for (auto& term : m.loss_terms) term.second /= static_cast<double>(std::max<int64_t>(seen, 1));
  m.samples_per_second = m.epoch_seconds > 0 ? static_cast<double>(seen) / m.epoch_seconds : 0;
  if (s.o.model.model == "sparse") m.mean_activation = activation_sum / static_cast<double>(std::max<int64_t>(seen, 1));
  return m;
}

/// Step 3 (after evaluate): the metrics line, weights, the full checkpoint and the config, each
/// written atomically.
void save_epoch(const TrainingState& s, const EpochMetrics& m) {
  const std::string line = m.to_json().dump();
  append_line(s.o.out + "/metrics.jsonl", line);
  if (!s.o.metrics_file.empty()) append_line(s.o.metrics_file, line);
  const NamedTensors weights = on_cpu(s.model->state_dict());
  safetensors::save_file(weights, s.o.out + "/model.safetensors");
  Checkpoint ck;
  ck.tensors = with_prefix("model.", weights);
  for (auto& t : with_prefix("optim.", on_cpu(s.optimizer->state()))) ck.tensors.push_back(t);
  ck.epoch = m.epoch;
  ck.step = s.step;
  ck.save_rng("default", default_generator());
  ck.config = s.config;
  save_checkpoint(s.o.out + "/checkpoint.safetensors", ck);
  write_file_atomic(s.o.out + "/config.json", s.config.dump(2) + "\n");
}

/// Step 4: the anomaly threshold, the 0.99 quantile of per-sample reconstruction errors on (at
/// most 10000 samples of) the training data, stored in config.json.
void save_anomaly_threshold(TrainingState& s) {
  std::vector<double> errors = reconstruction_errors(*s.model, *s.split.train, 10000);
  json::Value anomaly = json::Value::object();
  anomaly["quantile"] = 0.99;
  anomaly["threshold"] = quantile(errors, 0.99);
  anomaly["samples"] = static_cast<int64_t>(errors.size());
  s.config["anomaly"] = anomaly;
  write_file_atomic(s.o.out + "/config.json", s.config.dump(2) + "\n");
}

/// The training run on one process (group null) or on the ranks of `group`.
std::string train_with(const TrainOptions& options, std::shared_ptr<dist::ProcessGroup> group, FILE* log) {
  TrainingState s = resume_or_initialize(options, std::move(group));
  DataLoaderOptions loader_options;
  loader_options.batch_size = s.o.batch_size / s.ranks;  // each rank's share of the global batch
  loader_options.seed = s.o.seed;
  loader_options.num_replicas = s.ranks;
  loader_options.rank = s.rank;
  DataLoader loader(s.split.train, loader_options, noise_transforms(s.o.model));
  int64_t batches = loader.num_batches();
  if (s.o.limit_batches > 0) batches = std::min(batches, s.o.limit_batches);
  if (s.writes())
    fmt::print(log, "training {} ({} parameters) on {} samples, {} batches of {} per epoch, {}, {}{}\n",
               s.model->type_name(), s.model->parameter_count(), s.split.train->size(), batches, s.o.batch_size,
               s.o.optimizer, blas_info(),
               s.group ? fmt::format(", {} ranks x {} (mpi, {} gradient buckets)", s.ranks, loader_options.batch_size,
                                     s.ddp->buckets().size())
                       : "");
  ProgressBar bar(s.o.epochs, batches, log, ProgressOptions{});
  for (int64_t epoch = s.start_epoch; epoch < s.o.epochs; ++epoch) {
    EpochMetrics m = run_epoch(s, loader, epoch, batches, bar);
    if (s.writes()) {  // the other ranks wait at the barrier (sleeping, not spinning)
      evaluate(*s.model, *s.split.test, s.o.limit_test, m);
      if (s.o.progress) bar.end_epoch(fmt::format("test_loss {:.6g}", m.test_loss));
      save_epoch(s, m);
    }
    if (s.group) s.group->barrier();
  }
  if (s.writes()) {
    save_anomaly_threshold(s);
    if (s.o.model.model == "rae") {  // the ex-post density `latent sample` draws codes from (models/ae/gmm.h)
      GmmOptions g;
      g.components = s.o.model.gmm_components;
      g.seed = s.o.seed;
      GmmFit fit = save_code_density(*s.model, *s.split.train, s.o.out, g);
      fmt::print(log, "ex-post density: {} diagonal Gaussians on {} training codes, mean log-likelihood {:.4f} after {} EM steps\n",
                 g.components, s.split.train->size(), fit.log_likelihood.back(), fit.iterations);
    }
    fmt::print(log, "run saved in {}\n", s.o.out);
  }
  if (s.group) s.group->barrier();
  return s.writes() ? s.o.out : std::string();
}

}  // namespace

std::string train(const TrainOptions& options, FILE* log) {
  if (!options.distributed) return train_with(options, nullptr, log);
  std::shared_ptr<dist::ProcessGroup> group = dist::init_process_group("mpi");
  group->set_timeout(std::chrono::duration<double>(static_cast<double>(options.dist_timeout_s)));
  try {
    return train_with(options, group, log);
  } catch (const std::exception& e) {  // the other ranks would wait for this one: end them all
    group->abort(fmt::format("latent: rank {}: {}", group->rank(), e.what()), 1);
    throw;  // not reached: abort ends the process
  }
}

namespace {

/// A lower bound on the parameters `c` builds, computed without building it (make_autoencoder's
/// shapes): the dense models' encoder matrices between consecutive widths, the dense VAE's fc1,
/// fc21 and fc22, conv-vae's code layer (32 maps of H/4 x W/4 to the code); conv's own weights do
/// not grow with the image. Other models: each width is one side of some weight matrix. Double
/// arithmetic: widths from a file may multiply past int64.
double min_parameters(const AEConfig& c) {
  const double input = static_cast<double>(c.input_dim), code = static_cast<double>(c.code_dim());
  std::vector<double> widths{input};
  for (int64_t h : c.hidden) widths.push_back(static_cast<double>(h));
  if (c.model == "conv") return 0;
  if (c.model == "conv-vae") return 2.0 * input * code;
  if (c.model == "vae") {
    const double h = c.hidden.empty() ? 400 : widths[1];
    return input * h + 2 * h * code;
  }
  if (c.model == "linear") return input * code;
  if (c.model == "deep" || c.model == "sparse" || c.model == "denoising") {
    if (c.hidden.empty()) widths.push_back(2 * code);
    widths.push_back(code);
    double n = 0;
    for (size_t i = 1; i < widths.size(); ++i) n += widths[i - 1] * widths[i];
    return n;
  }
  widths.push_back(code);
  return *std::max_element(widths.begin(), widths.end());
}

/// A config.json claiming layers far wider than model.safetensors holds would allocate the whole
/// model (gigabytes from a few hundred bytes) before the weights are compared with it: refuse first.
void check_config_fits_weights(const AEConfig& c, const safetensors::File& weights, const std::string& dir) {
  double held = 0;
  for (const auto& [name, t] : weights.tensors) held += static_cast<double>(t.numel());
  const double needed = min_parameters(c);
  if (needed > held)
    fail("load", "{}/config.json: model '{}' with input_dim {}, hidden [{}] and latent_dim {} needs at least {:.0f} "
         "weights, but model.safetensors holds {:.0f} values", dir, c.model, c.input_dim, fmt::join(c.hidden, ", "),
         c.code_dim(), needed, held);
}

}  // namespace

LoadedRun load(const std::string& dir) {
  if (!fs::is_directory(dir)) fail("load", "run directory '{}' does not exist", dir);
  LoadedRun run;
  run.dir = dir;
  run.config_json = json::parse(read_file(dir + "/config.json", "load"));
  const json::Value* model_cfg = run.config_json.find("model");
  if (!model_cfg) fail("load", "{}/config.json has no 'model' section", dir);
  run.config = AEConfig::from_json(*model_cfg);
  safetensors::File weights = safetensors::load_file(dir + "/model.safetensors");
  check_config_fits_weights(run.config, weights, dir);  // before make_autoencoder allocates the model
  run.model = make_autoencoder(run.config);
  const bool int8 = is_quantized_config(run.config_json);  // `latent quantize`'s output (models/deploy/quantize.h)
  load_named_tensors(run.model->state_dict(), int8 ? dequantized_tensors(weights.tensors) : weights.tensors, true,
                     dir + "/model.safetensors");
  if (int8) attach_int8_weights(*run.model, weights.tensors);
  run.model->eval();
  const json::Value& data = run.config_json.at("data");
  if (const json::Value* p = run.config_json.find("preprocessing")) {
    run.preprocessing = Preprocessing::from_json(*p);
  } else if (data.at("height").as_int64() > 0) {
    run.preprocessing = Preprocessing::image(data.at("height").as_int64(), data.at("width").as_int64());
  } else {
    run.preprocessing.kind = Preprocessing::Kind::Table;  // trained before column statistics were stored
    run.preprocessing_stored = false;
  }
  if (fs::exists(dir + "/gmm.safetensors"))
    run.code_density = std::make_shared<const GaussianMixture>(load_gaussian_mixture(dir + "/gmm.safetensors"));
  if (run.preprocessing_stored && run.preprocessing.input_dim() != run.config.input_dim)
    fail("load", "{}/config.json: the preprocessing gives {} features but the model takes {}", dir,
         run.preprocessing.input_dim(), run.config.input_dim);
  return run;
}

double LoadedRun::anomaly_threshold() const {
  const json::Value* anomaly = config_json.find("anomaly");
  return anomaly ? anomaly->at("threshold").as_double() : std::nan("");
}

std::unique_ptr<SampleSource> open_new_data(const LoadedRun& run, const std::string& path, bool ignore_extra_columns) {
  if (!run.preprocessing_stored)
    fail("data", "retrain: this run has no stored column statistics ({} was trained before latent stored its "
         "preprocessing), so {} cannot be scaled as the training data was", run.dir, path);
  SampleOptions options;
  const json::Value& t = run.config_json.at("training");
  options.label_column = t.at("label_column").as_string();
  options.ignore_extra_columns = ignore_extra_columns;
  for (const json::Value& n : run.config_json.at("data").at("class_names").as_array()) options.class_names.push_back(n.as_string());
  return open_samples(path, run.preprocessing, options);
}

DataSplit run_data(const LoadedRun& run, const std::string& path, bool ignore_extra_columns) {
  const json::Value& t = run.config_json.at("training");
  const json::Value& d = run.config_json.at("data");
  DataSplit split;
  if (path.empty()) {
    DataOptions o;
    o.label_column = t.at("label_column").as_string();
    o.seed = t.at("seed").as_uint64();
    o.preprocessing = run.preprocessing_stored ? &run.preprocessing : nullptr;
    o.fit_on_all_rows = !run.preprocessing_stored;
    if (const json::Value* v = t.find("validation")) o.validation = v->as_int64();  // runs before it: 0
    split = load_data(t.at("data").as_string(), o);
  } else {
    std::unique_ptr<SampleSource> source = open_new_data(run, path, ignore_extra_columns);
    split.test = split.train = read_all_samples(*source);
    split.preprocessing = run.preprocessing;
    split.input_dim = run.preprocessing.input_dim();
    split.height = d.at("height").as_int64();
    split.width = d.at("width").as_int64();
    for (const json::Value& n : d.at("class_names").as_array()) split.class_names.push_back(n.as_string());
  }
  return split;
}

std::vector<double> reconstruction_errors(Autoencoder& model, const Dataset& data, int64_t limit) {
  NoGradGuard no_grad;
  model.eval();
  const Device device = device_of(model);
  std::vector<double> out;
  for_each_chunk(data, limit, 500, [&](const Tensor& host_x) {
    const Tensor x = host_x.to(device);
    Tensor d = model.forward(x) - x;
    for (double e : mean(d * d, {1}).to_vector<double>()) out.push_back(e);
  });
  return out;
}

void for_each_chunk(const Dataset& data, int64_t n, int64_t chunk, const std::function<void(const Tensor&)>& fn) {
  n = n > 0 ? std::min(n, data.size()) : data.size();
  std::vector<int64_t> idx;
  for (int64_t start = 0; start < n; start += chunk) {
    idx.clear();
    for (int64_t i = start; i < std::min(n, start + chunk); ++i) idx.push_back(i);
    fn(data.get_batch(idx).inputs);
  }
}

double roc_auc(const std::vector<double>& scores, const std::vector<bool>& positive) {
  if (scores.size() != positive.size()) fail("roc_auc", "{} scores for {} labels", scores.size(), positive.size());
  std::vector<size_t> order(scores.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Mann-Whitney U with average ranks for ties.
  double rank_sum = 0;
  size_t n_pos = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double avg_rank = (static_cast<double>(i) + static_cast<double>(j - 1)) / 2.0 + 1.0;
    for (size_t k = i; k < j; ++k)
      if (positive[order[k]]) {
        rank_sum += avg_rank;
        ++n_pos;
      }
    i = j;
  }
  const size_t n_neg = scores.size() - n_pos;
  if (n_pos == 0 || n_neg == 0) fail("roc_auc", "needs both positives and negatives; got {} and {}", n_pos, n_neg);
  return (rank_sum - static_cast<double>(n_pos) * static_cast<double>(n_pos + 1) / 2.0) /
         (static_cast<double>(n_pos) * static_cast<double>(n_neg));
}

std::pair<std::vector<double>, std::vector<double>> roc_curve(const std::vector<double>& scores,
                                                              const std::vector<bool>& positive, size_t max_points) {
  if (scores.size() != positive.size()) fail("roc_curve", "{} scores for {} labels", scores.size(), positive.size());
  size_t n_pos = 0;
  for (bool p : positive) n_pos += p;
  const size_t n_neg = scores.size() - n_pos;
  if (n_pos == 0 || n_neg == 0) fail("roc_curve", "needs both positives and negatives; got {} and {}", n_pos, n_neg);
  std::vector<size_t> order(scores.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  std::vector<double> fpr{0}, tpr{0};
  size_t tp = 0, fp = 0;
  for (size_t i = 0; i < order.size();) {  // flag every sample scoring at least scores[order[i]]
    const double s = scores[order[i]];
    for (; i < order.size() && scores[order[i]] == s; ++i) (positive[order[i]] ? tp : fp) += 1;
    fpr.push_back(static_cast<double>(fp) / static_cast<double>(n_neg));
    tpr.push_back(static_cast<double>(tp) / static_cast<double>(n_pos));
  }
  if (max_points >= 2 && fpr.size() > max_points) {
    std::vector<double> f, t;
    for (size_t k = 0; k < max_points; ++k) {
      const size_t i = k * (fpr.size() - 1) / (max_points - 1);
      f.push_back(fpr[i]);
      t.push_back(tpr[i]);
    }
    fpr = std::move(f);
    tpr = std::move(t);
  }
  return {fpr, tpr};
}

}  // namespace latent::models
