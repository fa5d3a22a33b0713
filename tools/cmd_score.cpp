// `latent score`: every sample of a new file, scored with the run's stored preprocessing and
// streamed in batches to a CSV (memory does not grow with the file).
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "cli.h"
#include "commands.h"
#include "latent.h"

namespace latent::tools {

int cmd_score(const std::vector<std::string>& argv) {
  std::string dir, data, out = "scores.csv";
  int64_t batch_size = 256;
  bool codes = false, ignore_extra = false;
  Options opts("score",
               "Scores every sample of PATH, in order, with the preprocessing stored in the run (CSV columns\n"
               "matched by header name and min-max scaled with the training statistics; images times 1/255),\n"
               "and writes one CSV row per sample:\n\n"
               "  index (or file, for PNG images), error (mean squared reconstruction error; VAEs reconstruct\n"
               "  from z = mu), neg_elbo (VAEs: reconstruction NLL + analytic KL), is_anomaly (error > the\n"
               "  threshold stored at training), label (when the data has labels), z0, z1, ... (with --codes)");
  opts.positional("RUN", dir, "a run directory");
  opts.text("data", "PATH", data,
            "CSV, IDX (.gz or not), PNG, folder of PNGs (name order) or Fashion-MNIST folder (test set)")
      .required();
  opts.text("out", "FILE", out, "output CSV (- for standard output)");
  opts.flag("codes", codes, "add the code (the VAE mean) of each sample");
  opts.integer("batch-size", "N", batch_size, 1, 1 << 20, "samples per forward pass");
  opts.flag("ignore-extra-columns", ignore_extra, "CSV: skip columns the run was not trained on instead of failing");
  if (!opts.parse(argv)) return 0;
  models::InferenceSession session(open_run(dir));
  std::unique_ptr<models::SampleSource> source = session.open(data, ignore_extra);

  // Rows go to a temporary file renamed over `out` at the end: an error leaves no partial file.
  std::unique_ptr<AtomicFile> file;
  if (out != "-") file = std::make_unique<AtomicFile>(out);
  std::string text = source->named() ? "file,error" : "index,error";
  if (session.variational()) text += ",neg_elbo";
  text += ",is_anomaly";
  if (source->has_labels()) text += ",label";
  if (codes)
    for (int64_t j = 0; j < session.code_dim(); ++j) text += fmt::format(",z{}", j);
  text += '\n';
  int64_t rows = 0, flagged = 0;
  double error_sum = 0;
  auto flush = [&] {
    if (file) file->write(text);
    else std::fwrite(text.data(), 1, text.size(), stdout);
    text.clear();
  };
  while (auto batch = source->next(batch_size)) {
    const models::Scores s = session.score(batch->inputs);
    const std::vector<int64_t> labels = batch->labels.defined() ? batch->labels.to_vector<int64_t>() : std::vector<int64_t>{};
    const std::vector<float> z = codes ? s.code.to_vector<float>() : std::vector<float>{};
    const int64_t code_dim = s.code.size(1);
    for (size_t i = 0; i < s.error.size(); ++i) {
      if (source->named()) text += batch->names[i];
      else fmt::format_to(std::back_inserter(text), "{}", batch->first_index + static_cast<int64_t>(i));
      fmt::format_to(std::back_inserter(text), ",{:.9g}", s.error[i]);
      if (session.variational()) fmt::format_to(std::back_inserter(text), ",{:.9g}", s.neg_elbo[i]);
      text += s.is_anomaly[i] ? ",1" : ",0";
      if (!labels.empty()) fmt::format_to(std::back_inserter(text), ",{}", labels[i]);
      for (int64_t j = 0; codes && j < code_dim; ++j)
        fmt::format_to(std::back_inserter(text), ",{:.9g}", z[static_cast<size_t>(static_cast<int64_t>(i) * code_dim + j)]);
      text += '\n';
      error_sum += s.error[i];
      flagged += s.is_anomaly[i];
    }
    rows += static_cast<int64_t>(s.error.size());
    if (text.size() > (1 << 20)) flush();
  }
  flush();
  if (file) file->commit();
  if (source->out_of_range() > 0)
    fmt::print(stderr, "warning: {} value{} in {} fell outside the training range (scaled beyond [0, 1], not clipped)\n",
               source->out_of_range(), source->out_of_range() == 1 ? "" : "s", source->description());
  const double threshold = session.threshold();
  std::FILE* summary = out == "-" ? stderr : stdout;
  fmt::print(summary, "scored {} sample{} from {}: mean error {:.6g}", rows, rows == 1 ? "" : "s", source->description(),
             error_sum / static_cast<double>(rows));
  if (std::isnan(threshold)) fmt::print(summary, "; no anomaly threshold stored (training did not finish)");
  else fmt::print(summary, "; {} above the threshold {:.6g}", flagged, threshold);
  if (file) fmt::print(summary, "; wrote {}", out);
  fmt::print(summary, "\n");
  return 0;
}

}  // namespace latent::tools
