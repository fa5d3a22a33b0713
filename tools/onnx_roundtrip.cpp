// onnx_roundtrip: parses an ONNX model with latent's own protobuf reader, writes it back, parses
// the written bytes again and compares the two parses field by field (unknown fields included;
// the bytes themselves may differ). Then imports the model and runs it: on zeros of the declared
// input shapes, or on ONNX test data (--check-data) compared with the expected outputs.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "latent.h"
#include "onnx_io/onnx_import.h"
#include "onnx_io/onnx_model.h"

namespace {

namespace onnx = latent::onnx;

constexpr const char* kUsage = R"(usage: onnx_roundtrip MODEL.onnx [--out OUT.onnx] [--check-data DIR...] [--atol A] [--rtol R]
                      [--outliers F --outlier-atol B]

Parses MODEL.onnx, writes it back, parses the written bytes again and checks that the two parses
are equal field by field (unknown fields included; the bytes may differ). Then imports the model
and runs it: without --check-data on zeros of the declared input shapes (dynamic dims = 1), with
it on each data set, comparing every output with |got - expected| <= atol + rtol * |expected|.
Prints one pass/fail line per case and a final "N passed, M failed" line; exits 0 only if all
passed.

options:
  --out OUT.onnx        also save the re-written model to OUT.onnx
  --check-data DIR...   ONNX test data: a test_data_set_N folder (input_K.pb, output_K.pb) or a
                        folder holding test_data_set_* folders; one or more, may be repeated
  --atol A              absolute tolerance (default 1e-5)
  --rtol R              relative tolerance (default 1e-4)
  --outliers F          let up to a fraction F of each output's elements miss atol/rtol (default 0),
                        each still within --outlier-atol B: for quantized models, where a float
                        sum landing on the other side of a rounding step moves a few outputs
  -h, --help            show this help

exit status: 0 passed, 1 failed (including a malformed model), 2 bad usage or missing file.
)";

struct UsageError {
  std::string message;
};

struct Options {
  std::string model;
  std::string out;
  std::vector<std::filesystem::path> data_sets;  // expanded test_data_set folders
  double atol = 1e-5, rtol = 1e-4;
  double outliers = 0, outlier_atol = 0;  ///< --outliers, --outlier-atol
};

double parse_tolerance(std::string_view option, std::string_view text) {
  std::string s(text);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !(v >= 0) || !std::isfinite(v))
    throw UsageError{fmt::format("{} needs a non-negative number; got '{}'", option, text)};
  return v;
}

/// A test_data_set folder, or the test_data_set_* folders inside `dir`, sorted.
void add_data_dir(Options& o, const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw UsageError{fmt::format("--check-data: no such folder: '{}'", dir.string())};
  if (fs::exists(dir / "input_0.pb") || fs::exists(dir / "output_0.pb")) {
    o.data_sets.push_back(dir);
    return;
  }
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory() && e.path().filename().string().starts_with("test_data_set_")) sets.push_back(e.path());
  }
  if (sets.empty())
    throw UsageError{fmt::format("--check-data: '{}' holds neither input_0.pb nor test_data_set_* folders", dir.string())};
  std::sort(sets.begin(), sets.end());
  o.data_sets.insert(o.data_sets.end(), sets.begin(), sets.end());
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--out") {
      if (i + 1 >= argc) throw UsageError{"--out needs a file name"};
      o.out = argv[++i];
    } else if (arg.starts_with("--out=")) {
      o.out = std::string(arg.substr(6));
    } else if (arg == "--check-data") {
      if (i + 1 >= argc || std::string_view(argv[i + 1]).starts_with("-"))
        throw UsageError{"--check-data needs a folder"};
      while (i + 1 < argc && !std::string_view(argv[i + 1]).starts_with("-")) add_data_dir(o, argv[++i]);
    } else if (arg == "--outliers" || arg == "--outlier-atol") {
      if (i + 1 >= argc) throw UsageError{fmt::format("{} needs a number", arg)};
      (arg == "--outliers" ? o.outliers : o.outlier_atol) = parse_tolerance(arg, argv[++i]);
      if (o.outliers > 1) throw UsageError{fmt::format("--outliers is a fraction in [0, 1]; got {}", o.outliers)};
    } else if (arg == "--atol" || arg == "--rtol") {
      if (i + 1 >= argc) throw UsageError{fmt::format("{} needs a number", arg)};
      (arg == "--atol" ? o.atol : o.rtol) = parse_tolerance(arg, argv[++i]);
    } else if (arg.starts_with("--atol=") || arg.starts_with("--rtol=")) {
      (arg.starts_with("--atol") ? o.atol : o.rtol) = parse_tolerance(arg.substr(0, 6), arg.substr(7));
    } else if (arg.starts_with("-") && arg != "-") {
      throw UsageError{fmt::format("unknown option '{}' (see --help)", arg)};
    } else if (o.model.empty()) {
      o.model = std::string(arg);
    } else {
      throw UsageError{fmt::format("unexpected argument '{}': one model at a time", arg)};
    }
  }
  if (o.model.empty()) throw UsageError{"no model given (see --help)"};
  if (!std::filesystem::is_regular_file(o.model)) throw UsageError{fmt::format("no such file: '{}'", o.model)};
  if (!o.out.empty() && o.out.ends_with("/")) throw UsageError{fmt::format("--out '{}' is a folder", o.out)};
  return o;
}

// Where two parses differ, for the failure line: the first differing list entry, down to nodes
// and attributes, or the first differing field.
template <class T>
std::string first_in_list(const char* name, const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return fmt::format("{}: {} entries vs {}", name, a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(a[i] == b[i])) return fmt::format("{}[{}]", name, i);
  }
  return {};
}

std::string difference(const onnx::NodeProto& a, const onnx::NodeProto& b) {
  if (a.attribute != b.attribute) return first_in_list("attribute", a.attribute, b.attribute);
  return "a node field";
}

std::string difference(const onnx::GraphProto& a, const onnx::GraphProto& b) {
  if (a.node.size() == b.node.size()) {
    for (size_t i = 0; i < a.node.size(); ++i) {
      if (!(a.node[i] == b.node[i])) return fmt::format("node[{}].{}", i, difference(a.node[i], b.node[i]));
    }
  }
  for (const std::string& s : {first_in_list("node", a.node, b.node), first_in_list("initializer", a.initializer, b.initializer),
                               first_in_list("input", a.input, b.input), first_in_list("output", a.output, b.output),
                               first_in_list("value_info", a.value_info, b.value_info)}) {
    if (!s.empty()) return s;
  }
  return "name, doc_string or unknown fields";
}

std::string difference(const onnx::ModelProto& a, const onnx::ModelProto& b) {
  if (!(a.graph == b.graph)) return "graph." + difference(a.graph, b.graph);
  if (a.opset_import != b.opset_import) return first_in_list("opset_import", a.opset_import, b.opset_import);
  if (a.metadata_props != b.metadata_props) return first_in_list("metadata_props", a.metadata_props, b.metadata_props);
  return "a model field (ir_version, producer, domain, doc_string or unknown fields)";
}

std::string summary(const onnx::ModelProto& m, size_t bytes) {
  std::string opsets;
  for (const auto& op : m.opset_import) {
    opsets += fmt::format("{}{} {}", opsets.empty() ? "" : ", ", op.domain.empty() ? "ai.onnx" : op.domain, op.version);
  }
  return fmt::format("{} bytes, ir_version {}, opset {}, {} nodes, {} initializers, {} inputs, {} outputs", bytes,
                     m.ir_version, opsets.empty() ? "none" : opsets, m.graph.node.size(), m.graph.initializer.size(),
                     m.graph.input.size(), m.graph.output.size());
}

/// Empty when `got` matches `expected` within tolerance (up to opts.outliers of the elements
/// within opts.outlier_atol instead), else the first difference; counts the outliers.
std::string compare(const latent::Tensor& got, const latent::Tensor& expected, const Options& opts,
                    double& max_diff, size_t& outliers) {
  const double atol = opts.atol, rtol = opts.rtol;
  if (got.dtype() != expected.dtype())
    return fmt::format("dtype {} instead of {}", latent::dtype_name(got.dtype()), latent::dtype_name(expected.dtype()));
  if (!(got.shape() == expected.shape())) return fmt::format("shape {} instead of {}", got.shape(), expected.shape());
  const std::vector<double> a = got.to_vector<double>(), b = expected.to_vector<double>();
  const auto allowed = static_cast<size_t>(opts.outliers * static_cast<double>(a.size()));
  size_t extra = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const bool same_special = (std::isnan(a[i]) && std::isnan(b[i])) || (std::isinf(b[i]) && a[i] == b[i]);
    if (same_special) continue;
    const double diff = std::abs(a[i] - b[i]);
    if (!(diff <= atol + rtol * std::abs(b[i]))) {
      if (!(diff <= opts.outlier_atol) || ++extra > allowed)
        return fmt::format("element {}: {} instead of {} (difference {:.3g}; {} of {} elements beyond atol, {} allowed)",
                           i, a[i], b[i], diff, extra, a.size(), allowed);
    }
    max_diff = std::max(max_diff, diff);
  }
  outliers += extra;
  return {};
}

std::string shapes(const std::vector<latent::Tensor>& ts) {
  std::string out;
  for (const latent::Tensor& t : ts) out += fmt::format("{}{}", out.empty() ? "" : ", ", t.shape());
  return out;
}

/// Imports the model and runs it on zeros or on each data set: one pass/fail line per case.
void run_model(const Options& opts, int& passed, int& failed) {
  namespace fs = std::filesystem;
  std::shared_ptr<onnx::OnnxModule> model;
  try {
    model = onnx::import_model(opts.model);
  } catch (const std::exception& e) {
    ++failed;
    fmt::print("FAIL: import: {}\n", e.what());
    return;
  }
  if (opts.data_sets.empty()) {
    try {
      std::vector<latent::Tensor> inputs;
      for (const onnx::ValueSpec& spec : model->inputs()) {
        if (!spec.has_shape)
          throw latent::Error("onnx_roundtrip", fmt::format("input '{}' declares no shape; use --check-data", spec.name));
        latent::Shape shape;
        for (int64_t d : spec.dims) shape.push_back(d < 0 ? 1 : d);
        const latent::DType dtype = spec.elem_type == 11 ? latent::kFloat64 : spec.elem_type == 7 ? latent::kInt64 : latent::kFloat32;
        inputs.push_back(latent::zeros(shape, dtype));
      }
      latent::NoGradGuard no_grad;
      const std::vector<latent::Tensor> outputs = model->run(inputs);
      ++passed;
      fmt::print("pass: run on zeros of the declared input shapes ({}) -> outputs {}\n", shapes(inputs), shapes(outputs));
    } catch (const std::exception& e) {
      ++failed;
      fmt::print("FAIL: run on zeros: {}\n", e.what());
    }
    return;
  }
  for (const fs::path& set : opts.data_sets) {
    const std::string name = set.string();
    try {
      std::vector<latent::Tensor> inputs, expected;
      for (int k = 0; fs::exists(set / fmt::format("input_{}.pb", k)); ++k)
        inputs.push_back(onnx::tensor_from_proto(onnx::load_tensor(set / fmt::format("input_{}.pb", k))));
      for (int k = 0; fs::exists(set / fmt::format("output_{}.pb", k)); ++k)
        expected.push_back(onnx::tensor_from_proto(onnx::load_tensor(set / fmt::format("output_{}.pb", k))));
      latent::NoGradGuard no_grad;
      const std::vector<latent::Tensor> outputs = model->run(inputs);
      std::string problem;
      if (outputs.size() != expected.size())
        problem = fmt::format("{} outputs, the data set has {}", outputs.size(), expected.size());
      double max_diff = 0;
      size_t outliers = 0;
      for (size_t k = 0; problem.empty() && k < outputs.size(); ++k) {
        std::string diff = compare(outputs[k], expected[k], opts, max_diff, outliers);
        if (!diff.empty()) problem = fmt::format("output {} ('{}'): {}", k, model->outputs()[k].name, diff);
      }
      if (problem.empty()) {
        ++passed;
        fmt::print("pass: {}: {} output{} within atol {} rtol {} (max difference {:.3g}{})\n", name, outputs.size(),
                   outputs.size() == 1 ? "" : "s", opts.atol, opts.rtol, max_diff,
                   opts.outliers > 0 ? fmt::format("; {} outliers within {}", outliers, opts.outlier_atol) : "");
      } else {
        ++failed;
        fmt::print("FAIL: {}: {}\n", name, problem);
      }
    } catch (const std::exception& e) {
      ++failed;
      fmt::print("FAIL: {}: {}\n", name, e.what());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  try {
    opts = parse_args(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "onnx_roundtrip: %s\n", e.message.c_str());
    return 2;
  }
  int passed = 0, failed = 0;
  bool parsed = false;
  try {
    const std::string original = onnx::read_file_bytes(opts.model);
    const onnx::ModelProto first = onnx::decode_model(original, opts.model);
    parsed = true;
    fmt::print("{}: {}\n", opts.model, summary(first, original.size()));
    const std::string written = onnx::encode_model(first);
    if (!opts.out.empty()) onnx::save_model(first, opts.out);
    const onnx::ModelProto second = onnx::decode_model(written, "re-written model");
    if (first == second) {
      ++passed;
      fmt::print("pass: round trip (re-written {} bytes, {}; the two parses are equal field by field)\n",
                 written.size(), written == original ? "byte-identical" : "bytes differ");
    } else {
      ++failed;
      fmt::print("FAIL: round trip: the two parses differ at {}\n", difference(first, second));
    }
  } catch (const std::exception& e) {
    ++failed;
    fmt::print("FAIL: {}\n", e.what());
  }
  if (parsed) run_model(opts, passed, failed);
  fmt::print("{} passed, {} failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
