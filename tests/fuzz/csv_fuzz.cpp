// libFuzzer target for the CSV readers: read_csv (models/data/data.cpp, training data) with and without
// a label column, and the streaming reader new data goes through (models/data/samples.cpp open_samples),
// which matches the file's columns by name to a run's stored preprocessing (columns a, b, c with
// min-max statistics, label column y with class names). The bytes go to a scratch .csv file.
// Everything must load or fail with a one-line latent::Error; what loads must have the announced
// shape, finite values and in-range labels. Anything else is a finding.
#include <algorithm>
#include <cmath>

#include "autograd/error.h"
#include "models/data/data.h"
#include "models/data/samples.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

void check_error(const latent::Error& e) {
  if (std::string_view(e.what()).find('\n') != std::string_view::npos) latent::fuzz::finding("csv_fuzz", "a multi-line error");
}

void check_finite(const latent::Tensor& t) {
  for (float v : t.to_vector<float>())
    if (!std::isfinite(v)) latent::fuzz::finding("csv_fuzz", "a non-finite value was accepted");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace latent;
  const std::string path = fuzz::scratch_file({reinterpret_cast<const char*>(data), size}, "fuzz.csv");
  for (const char* label : {"", "y"}) {
    try {
      const CsvTable t = read_csv(path, {.label_column = label});
      const int64_t rows = t.features.size(0);
      if (t.features.dim() != 2 || t.features.size(1) != static_cast<int64_t>(t.columns.size()))
        fuzz::finding("csv_fuzz", "features do not have one column per header name");
      check_finite(t.features);
      if (*label && (!t.labels.defined() || t.labels.numel() != rows)) fuzz::finding("csv_fuzz", "labels do not match the rows");
      if (!t.class_names.empty()) {
        if (!std::is_sorted(t.class_names.begin(), t.class_names.end())) fuzz::finding("csv_fuzz", "class names not sorted");
        for (int64_t v : t.labels.to_vector<int64_t>())
          if (v < 0 || v >= static_cast<int64_t>(t.class_names.size())) fuzz::finding("csv_fuzz", "a label outside the class names");
      }
    } catch (const Error& e) {
      check_error(e);
    }
  }
  // New data scored against a run trained on columns a, b, c (labels y: cat, dog).
  static const models::Preprocessing stored = [] {
    models::Preprocessing p;
    p.kind = models::Preprocessing::Kind::Table;
    p.columns = {"a", "b", "c"};
    p.minimum = {0.0, -1.0, 5.0};
    p.maximum = {1.0, 1.0, 5.0};
    return p;
  }();
  for (bool ignore_extra : {false, true}) {
    try {
      models::SampleOptions o;
      o.label_column = "y";
      o.ignore_extra_columns = ignore_extra;
      o.class_names = {"cat", "dog"};
      auto source = models::open_samples(path, stored, o);
      int64_t seen = 0;
      while (auto batch = source->next(3)) {
        if (batch->inputs.dim() != 2 || batch->inputs.size(1) != 3 || batch->inputs.size(0) < 1 || batch->inputs.size(0) > 3)
          fuzz::finding("csv_fuzz", "a batch of the wrong shape");
        if (batch->first_index != seen) fuzz::finding("csv_fuzz", "batches skip rows");
        if (source->has_labels() && batch->labels.numel() != batch->inputs.size(0)) fuzz::finding("csv_fuzz", "labels do not match the batch");
        seen += batch->inputs.size(0);
        check_finite(batch->inputs);
      }
    } catch (const Error& e) {
      check_error(e);
    }
  }
  return 0;
}
