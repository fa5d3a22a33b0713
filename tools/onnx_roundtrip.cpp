// onnx_roundtrip: parses an ONNX model with latent's own protobuf reader, writes it back, parses
// the written bytes again and compares the two parses field by field (unknown fields included;
// the bytes themselves may differ). Running the model comes with the importer.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "onnx_io/onnx_model.h"

namespace {

namespace onnx = latent::onnx;

constexpr const char* kUsage = R"(usage: onnx_roundtrip MODEL.onnx [--out OUT.onnx]

Parses MODEL.onnx, writes it back, parses the written bytes again and checks that the two parses
are equal field by field (unknown fields included; the bytes may differ). Prints one pass/fail
line for the round trip and a final "N passed, M failed" line; exits 0 only if all passed.

options:
  --out OUT.onnx  also save the re-written model to OUT.onnx
  -h, --help      show this help

exit status: 0 passed, 1 failed (including a malformed model), 2 bad usage or missing file.
)";

struct UsageError {
  std::string message;
};

struct Options {
  std::string model;
  std::string out;
};

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
  try {
    const std::string original = onnx::read_file_bytes(opts.model);
    const onnx::ModelProto first = onnx::decode_model(original, opts.model);
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
  fmt::print("model execution: not available yet (comes with the ONNX importer)\n");
  fmt::print("{} passed, {} failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
