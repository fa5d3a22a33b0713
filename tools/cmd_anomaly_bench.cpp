// `latent anomaly-bench`: the one-class anomaly detection protocol of Ruff et al. (Deep SVDD, ICML
// 2018) on a labelled data set. For each chosen class: train on that class's training samples only
// (--normal-class), score every test sample by reconstruction error (that class normal, every other
// class an anomaly), and report the ROC AUC; then the mean over the classes. Writes a run per class
// (DIR/class-K), auc.csv, auc.md and the ROC curve of each class (DIR/roc-class-K.svg).
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "latent.h"
#include "plot.h"
#include "report.h"

namespace latent::tools {

namespace {

/// "all" -> 0..n-1; "0,3,7" -> those labels, each checked against the number of classes.
std::vector<int64_t> parse_classes(const std::string& text, int64_t n) {
  std::vector<int64_t> classes;
  if (text == "all") {
    for (int64_t k = 0; k < n; ++k) classes.push_back(k);
    return classes;
  }
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, end - start);
    int64_t k = -1;
    try {
      size_t used = 0;
      k = std::stoll(item, &used);
      if (used != item.size()) k = -1;
    } catch (const std::exception&) {
      k = -1;
    }
    if (k < 0 || k >= n)
      throw UsageError{fmt::format("--classes: '{}' is not a class label in [0, {}] (the data has {} classes)", item,
                                   n - 1, n)};
    for (int64_t seen : classes)
      if (seen == k) throw UsageError{fmt::format("--classes: class {} is listed twice", k)};
    classes.push_back(k);
    start = end + 1;
  }
  return classes;
}

}  // namespace

int cmd_anomaly_bench(const std::vector<std::string>& argv) {
  models::TrainOptions o;
  std::string classes_text = "all", out;
  bool as_json = false;
  Options opts("anomaly-bench",
               "One-class anomaly detection, the protocol of Ruff et al. (Deep SVDD, ICML 2018): for each chosen\n"
               "class, trains on that class's training samples only, scores every test sample by reconstruction\n"
               "error (mean squared; VAEs reconstruct from z = mu) with that class normal and all others\n"
               "anomalous, and reports the ROC AUC per class and their mean. Writes DIR/class-K (a run per\n"
               "class), DIR/auc.csv, DIR/auc.md and DIR/roc-class-K.svg.");
  FieldOptions declare(opts, {"out", "resume", "exclude_class", "normal_class", "metrics_file", "distributed",
                              "dist_timeout_s", "bucket_mb"});
  models::AEConfig::fields(o.model, declare);
  models::TrainOptions::fields(o, declare);
  opts.text("classes", "LIST", classes_text, "the normal classes to run: all, or labels such as 0,3,7");
  opts.text("out", "DIR", out, "where the runs and tables go").shown_default("runs/anomaly-bench-<model>");
  opts.flag("json", as_json, "print the result as one JSON line (for scripts)");
  if (!opts.parse(argv)) return 0;
  if (!std::filesystem::exists(o.data)) throw UsageError{fmt::format("--data: '{}' does not exist", o.data)};
  if (out.empty()) out = "runs/anomaly-bench-" + o.model.model;
  if (std::filesystem::exists(out + "/auc.csv"))
    throw UsageError{fmt::format("--out: '{}' already holds a benchmark (auc.csv); choose another --out", out)};

  // The class labels of the test part (all of it: the normal class filters training only).
  models::DataSplit data = models::load_data(o.data, models::DataOptions{o.label_column, o.seed});  // labels and class names only
  if (data.class_names.empty()) throw UsageError{fmt::format("anomaly-bench needs labelled data; {} has no labels", o.data)};
  const auto n_classes = static_cast<int64_t>(data.class_names.size());
  const std::vector<int64_t> classes = parse_classes(classes_text, n_classes);
  std::filesystem::create_directories(out);

  Report report(fmt::format("one-class anomaly detection, {} on {} ({} epochs), score: reconstruction error{}",
                            o.model.model, o.data, o.epochs,
                            o.validation > 0 ? fmt::format(", evaluated on {} held-out training samples (--validation)", o.validation) : ""));
  std::string csv = "class,name,auc,train_samples,test_samples\n";
  std::string md = fmt::format("| class | name | ROC AUC |\n|---|---|---|\n");
  double auc_sum = 0;
  for (int64_t k : classes) {
    models::TrainOptions ok = o;
    ok.normal_class = k;
    ok.out = fmt::format("{}/class-{}", out, k);
    const std::string dir = models::train(ok, stderr);
    models::LoadedRun run = open_run(dir);
    models::DataSplit split = models::run_data(run, "", false);
    std::vector<double> errors = models::reconstruction_errors(*run.model, *split.test, o.limit_test);
    const std::vector<int64_t> labels =
        first_samples(*split.test, static_cast<int64_t>(errors.size())).targets.to_vector<int64_t>();
    std::vector<bool> anomalous;
    for (int64_t l : labels) anomalous.push_back(l != k);
    const double auc = models::roc_auc(errors, anomalous);
    const auto [fpr, tpr] = models::roc_curve(errors, anomalous);
    const std::string name = data.class_names[static_cast<size_t>(k)];
    write_roc_svg(fmt::format("{}/roc-class-{}.svg", out, k), fpr, tpr, auc,
                  fmt::format("{} trained on class {} ({}) only", o.model.model, k, name));
    auc_sum += auc;
    csv += fmt::format("{},{},{:.6f},{},{}\n", k, name, auc, run.config_json.at("data").at("train_samples").as_int64(),
                       errors.size());
    md += fmt::format("| {} | {} | {:.4f} |\n", k, name, auc);
    report.add(fmt::format("auc_{}", k), auc, fmt::format("class {} {}", k, name), fmt::format("{:.4f}", auc));
  }
  const double mean_auc = auc_sum / static_cast<double>(classes.size());
  md += fmt::format("| mean | | **{:.4f}** |\n", mean_auc);
  write_file_atomic(out + "/auc.csv", csv);
  write_file_atomic(out + "/auc.md", md);
  report.add("mean_auc", mean_auc, "mean ROC AUC", fmt::format("{:.4f} over {} classes", mean_auc, classes.size()));
  report.add("out", out, "written", fmt::format("{}/auc.csv, auc.md, roc-class-K.svg", out));
  report.print(as_json);
  return 0;
}

}  // namespace latent::tools
