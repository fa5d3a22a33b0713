// ONNX's node conformance tests (Debian libonnx-testdata: data/node/test_*/model.onnx with
// test_data_set_N/input_K.pb and output_K.pb). Every folder whose model the importer accepts is
// run on every data set and compared with |got - expected| <= atol + rtol * |expected|; folders it
// rejects at load time are skipped with the load error as the reason. The suite asserts no
// failures and a floor on the number run, so it cannot pass by skipping everything, and every skip
// must be allowed (allowed_skip): an op latent does not claim, a data type outside the ones it
// reads, another domain's op, a non-tensor type, or a folder of kKnownSkips with its reason; any
// other skip (a claimed op that stopped loading) fails, and so does a known skip that now runs (the
// list must shrink with the importer). A second case does the same for the pytorch-converted,
// pytorch-operator and simple model folders.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "latent.h"
#include "onnx_io/onnx_import.h"
#include "onnx_io/onnx_model.h"
#include "skip.h"

#ifndef LATENT_ONNX_TESTDATA_DIR
#define LATENT_ONNX_TESTDATA_DIR "/usr/share/libonnx-testdata/data"
#endif

namespace fs = std::filesystem;
namespace onnx = latent::onnx;
using latent::Tensor;

namespace {

/// The fewest folders that must run: all 492 of the 932 in Debian's libonnx-testdata that run today
/// (the rest are skipped for ops, data types or attributes the importer rejects at load time), so a
/// regression in the importer cannot hide in slack. Raise it when the importer learns more.
/// (435 before int32/int8/uint8 tensors and the quantized ops: +14 quantized-op folders (kMustRun),
/// +20 int32/int8/uint8 folders of other ops: Add, Sub, Mul, Div, Max, Min, Clip, Pow, MaxPool...;
/// +2 ConstantOfShape with an int32 value, +10 Resize cubic and tf_crop_and_resize, +2 MaxPool's Indices, +2 BatchNormalization training_mode, +3 3-d pooling and transposed convolution, +4 Round and Cast to the storage dtypes)
constexpr int kMinRan = 492;

/// Folders of the ops latent claims that must run and pass by name (a skip of one fails the suite):
/// every node test of the quantized ops, and the three *_expanded DynamicQuantizeLinear folders
/// (the op written with Round, Cast to UINT8, Clip and others).
const std::vector<std::string> kMustRun = {
    "test_basic_convinteger", "test_convinteger_with_padding", "test_convinteger_without_padding",
    "test_dequantizelinear", "test_dequantizelinear_axis", "test_dynamicquantizelinear",
    "test_dynamicquantizelinear_max_adjusted", "test_dynamicquantizelinear_min_adjusted", "test_matmulinteger", "test_qlinearconv",
    "test_qlinearmatmul_2D", "test_qlinearmatmul_3D", "test_quantizelinear", "test_quantizelinear_axis",
    "test_dynamicquantizelinear_expanded", "test_dynamicquantizelinear_max_adjusted_expanded",
    "test_dynamicquantizelinear_min_adjusted_expanded", "test_round",
};
/// Folders of ops latent claims that still fail to load, each with what is missing. A folder here
/// that loads fails the suite, so the list only shrinks. Empty since 3-d convolution and pooling,
/// MaxPool's Indices, BatchNormalization's training mode and Resize's cubic and tf_crop_and_resize
/// modes landed (2026-12-03): every node test of an op latent claims runs.
const std::map<std::string, std::string> kKnownSkips = {};

/// Why a load error is an allowed skip, or "" when it is not: the importer's own messages for an
/// op it does not claim, a data type outside float32, float64, int64, int32, int8 and uint8, an op
/// of another domain (ai.onnx.preview.training), a sequence/map/optional value; else kKnownSkips.
std::string allowed_skip(const std::string& folder, const std::string& error) {
  auto contains = [&error](const char* text) { return error.find(text) != std::string::npos; };
  const size_t op = error.rfind(": op ");
  if (op != std::string::npos && error.ends_with(" is not supported") && error.find(' ', op + 5) == error.size() - 17)
    return "an op latent does not claim";
  for (const char* dtype : {"BOOL", "FLOAT16", "BFLOAT16", "STRING", "INT16", "UINT16", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128"})
    if (contains(fmt::format("has data type {},", dtype).c_str())) return fmt::format("data type {}", dtype);
  if (contains("imports no default (ai.onnx) operator set") || contains("domain 'ai.onnx.preview.training' is not supported"))
    return "an op of the ai.onnx.preview.training domain";
  if (contains("is not a tensor (sequence, map, optional")) return "a sequence, map or optional value";
  auto it = kKnownSkips.find(folder);
  return it == kKnownSkips.end() ? std::string() : "not yet: " + it->second;
}

/// Likewise for pytorch-converted (82 of 82), pytorch-operator (35 of 35) and simple (5 of 23).
constexpr int kMinRanModels = 122;

struct Tolerance {
  double atol = 1e-5, rtol = 1e-4;
};

/// Looser tolerances per test folder, each with its reason. None is needed today: every folder that
/// runs passes at ONNX's own defaults (atol 1e-5, rtol 1e-4 here; the backend tests use 1e-7/1e-3).
Tolerance tolerance_for(const std::string& name) {
  (void)name;
  return {};
}

/// Empty when `got` matches `expected`, else what differs.
std::string compare(const Tensor& got, const onnx::TensorProto& expected_proto, Tolerance tol) {
  Tensor expected = onnx::tensor_from_proto(expected_proto);
  if (got.dtype() != expected.dtype())
    return fmt::format("dtype {} instead of {}", latent::dtype_name(got.dtype()), latent::dtype_name(expected.dtype()));
  if (!(got.shape() == expected.shape())) return fmt::format("shape {} instead of {}", got.shape(), expected.shape());
  std::vector<double> a = got.to_vector<double>(), b = expected.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(b[i])) {
      if (!std::isnan(a[i])) return fmt::format("element {}: {} instead of NaN", i, a[i]);
    } else if (std::isinf(b[i])) {
      if (a[i] != b[i]) return fmt::format("element {}: {} instead of {}", i, a[i], b[i]);
    } else if (!(std::abs(a[i] - b[i]) <= tol.atol + tol.rtol * std::abs(b[i]))) {
      return fmt::format("element {}: {} instead of {} (difference {:.3g})", i, a[i], b[i], std::abs(a[i] - b[i]));
    }
  }
  return {};
}

std::vector<fs::path> numbered(const fs::path& dir, const char* prefix) {
  std::vector<fs::path> out;
  for (int k = 0; fs::exists(dir / fmt::format("{}_{}.pb", prefix, k)); ++k) out.push_back(dir / fmt::format("{}_{}.pb", prefix, k));
  return out;
}

struct Summary {
  int folders = 0, ran = 0, passed = 0, skipped = 0, data_sets = 0;
  std::vector<std::string> failures;
  std::vector<std::string> skipped_names;
  std::vector<std::string> unexpected_skips;  ///< skips allowed_skip does not allow
  std::vector<std::string> ran_names;
};

/// Runs every model folder under `root` (skipping those the importer rejects) and prints each skip,
/// each failure and a summary line.
Summary run_folders(const fs::path& root) {
  Summary sum;
  std::vector<fs::path> folders;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_directory() && fs::exists(entry.path() / "model.onnx")) folders.push_back(entry.path());
  }
  std::sort(folders.begin(), folders.end());
  sum.folders = int(folders.size());
  std::vector<std::string> skips;
  for (const fs::path& folder : folders) {
    const std::string name = folder.filename().string();
    std::shared_ptr<onnx::OnnxModule> model;
    try {
      model = onnx::import_model(folder / "model.onnx");
    } catch (const latent::Error& e) {
      ++sum.skipped;
      sum.skipped_names.push_back(name);
      const std::string reason = allowed_skip(name, e.what());
      if (reason.empty()) sum.unexpected_skips.push_back(fmt::format("{}: {}", name, e.what()));
      skips.push_back(fmt::format("skip {} ({}): {}", name, reason.empty() ? "NOT ALLOWED" : reason, e.what()));
      continue;
    }
    ++sum.ran;
    sum.ran_names.push_back(name);
    std::string failure;
    std::vector<fs::path> sets;
    for (const auto& entry : fs::directory_iterator(folder)) {
      if (entry.is_directory() && entry.path().filename().string().starts_with("test_data_set_")) sets.push_back(entry.path());
    }
    std::sort(sets.begin(), sets.end());
    for (const fs::path& set : sets) {
      ++sum.data_sets;
      try {
        std::vector<Tensor> inputs;
        for (const fs::path& p : numbered(set, "input")) inputs.push_back(onnx::tensor_from_proto(onnx::load_tensor(p)));
        std::vector<Tensor> outputs = model->run(inputs);
        std::vector<fs::path> expected = numbered(set, "output");
        if (expected.size() != outputs.size()) {
          failure = fmt::format("{}: {} outputs instead of {}", set.filename().string(), outputs.size(), expected.size());
          break;
        }
        for (size_t k = 0; k < expected.size() && failure.empty(); ++k) {
          std::string diff = compare(outputs[k], onnx::load_tensor(expected[k]), tolerance_for(name));
          if (!diff.empty()) failure = fmt::format("{} output {}: {}", set.filename().string(), k, diff);
        }
      } catch (const std::exception& e) {
        failure = fmt::format("{}: {}", set.filename().string(), e.what());
      }
      if (!failure.empty()) break;
    }
    if (failure.empty()) {
      ++sum.passed;
    } else {
      sum.failures.push_back(fmt::format("FAIL {}: {}", name, failure));
    }
  }
  for (const std::string& s : skips) std::printf("%s\n", s.c_str());
  for (const std::string& f : sum.failures) std::printf("%s\n", f.c_str());
  std::printf("onnx tests in %s: %d folders, %d ran (%d data sets), %d passed, %zu failed, %d skipped\n",
              root.c_str(), sum.folders, sum.ran, sum.data_sets, sum.passed, sum.failures.size(), sum.skipped);
  return sum;
}

/// Fails on skips allowed_skip does not allow and on kKnownSkips folders that ran.
void check_skips(const Summary& sum) {
  for (const std::string& u : sum.unexpected_skips) FAIL_CHECK("skip not allowed (a claimed op no longer loads?): " << u);
  for (const std::string& name : sum.ran_names)
    if (kKnownSkips.count(name)) FAIL_CHECK(name << " runs now: remove it from kKnownSkips");
}

}  // namespace

TEST_CASE("ONNX node conformance tests (libonnx-testdata)") {
  const fs::path root = fs::path(LATENT_ONNX_TESTDATA_DIR) / "node";
  if (!fs::is_directory(root)) {
    std::printf("onnx node tests: skipped: %s is absent (install Debian's libonnx-testdata)\n", root.c_str());
    latent::testing::skip_suite(root.string() + " is absent (apt-get install libonnx-testdata)");
    return;
  }
  const Summary sum = run_folders(root);
  for (const std::string& f : sum.failures) FAIL_CHECK(f);
  CHECK(sum.failures.empty());
  CHECK(sum.ran >= kMinRan);
  check_skips(sum);
  for (const std::string& name : kMustRun) {
    const bool present = fs::is_directory(root / name);
    const bool skipped = std::find(sum.skipped_names.begin(), sum.skipped_names.end(), name) != sum.skipped_names.end();
    if (!present || skipped) FAIL_CHECK(fmt::format("{} {} (a node test of an op latent claims)", name, present ? "was skipped" : "is missing"));
  }
}

TEST_CASE("ONNX's PyTorch-converted, PyTorch-operator and simple model tests (libonnx-testdata)") {
  int ran = 0;
  for (const char* set : {"pytorch-converted", "pytorch-operator", "simple"}) {
    const fs::path root = fs::path(LATENT_ONNX_TESTDATA_DIR) / set;
    if (!fs::is_directory(root)) {
      std::printf("onnx %s tests: skipped: %s is absent (install Debian's libonnx-testdata)\n", set, root.c_str());
      latent::testing::skip_suite(root.string() + " is absent (apt-get install libonnx-testdata)");
      return;
    }
    const Summary sum = run_folders(root);
    for (const std::string& f : sum.failures) FAIL_CHECK(f);
    CHECK(sum.failures.empty());
    check_skips(sum);
    ran += sum.ran;
  }
  CHECK(ran >= kMinRanModels);
}
