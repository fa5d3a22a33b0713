// Internal to the importer (not installed): what an op's compiler sees of one node, and the table
// of ops. Each op is one `compile` function that reads and validates the node's attributes at the
// op's version (the newest version of the op not newer than the model's opset) and returns the
// kernel that runs it with latent's ops. Everything a compiler rejects is a load-time error.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "../autograd/error.h"
#include "../autograd/tensor.h"
#include "onnx_model.h"

namespace latent::onnx::detail {

/// One node as its op compiler sees it.
class NodeView {
 public:
  /// `name` is the node's name, or a stand-in for unnamed nodes.
  NodeView(const NodeProto& node, std::string name, int64_t opset, int version,
           std::function<int(const std::string&)> rank_of)
      : node_(node), name_(std::move(name)), opset_(opset), version_(version), rank_of_(std::move(rank_of)) {}

  const NodeProto& proto() const { return node_; }
  /// The op's version in use (e.g. 13 for Softmax in an opset-17 model).
  int version() const { return version_; }
  /// "node 'Conv_3' (Conv, opset 13)".
  std::string label() const;

  /// Throws "[onnx import] node 'X' (Op, opset N): <message>".
  template <class... Args>
  [[noreturn]] void error(fmt::format_string<Args...> format, Args&&... args) const {
    throw Error("onnx import", label() + ": " + fmt::format(format, std::forward<Args>(args)...));
  }

  // ---- attributes (each getter checks the attribute's type) ----
  const AttributeProto* attr(const std::string& name) const;
  bool has(const std::string& name) const { return attr(name) != nullptr; }
  int64_t get_int(const std::string& name, int64_t fallback) const;
  float get_float(const std::string& name, float fallback) const;
  std::string get_string(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> get_ints(const std::string& name, std::vector<int64_t> fallback = {}) const;
  std::vector<float> get_floats(const std::string& name) const;
  /// Fails on any attribute whose name is not listed: "attribute 'foo' is not supported".
  void allow_attributes(std::initializer_list<const char*> names) const;

  // ---- inputs and outputs ("" marks an absent optional one) ----
  bool has_input(size_t i) const { return i < node_.input.size() && !node_.input[i].empty(); }
  bool has_output(size_t i) const { return i < node_.output.size() && !node_.output[i].empty(); }
  size_t output_count() const { return node_.output.size(); }
  /// Fails unless inputs [0, min) are present and none at or past max.
  void expect_inputs(size_t min, size_t max) const;
  /// Fails when any output at or past `max` is used.
  void expect_outputs(size_t max) const;
  /// The rank of input i when the model declares it (graph input shapes, value_info,
  /// initializers), else -1.
  int input_rank(size_t i) const { return has_input(i) ? rank_of_(node_.input[i]) : -1; }

 private:
  const NodeProto& node_;
  std::string name_;
  int64_t opset_;
  int version_;
  std::function<int(const std::string&)> rank_of_;
};

/// A compiled node: inputs in node order (undefined Tensor for absent ones), outputs in node order.
using Kernel = std::function<std::vector<Tensor>(const std::vector<Tensor>& inputs)>;

/// Whether the OnnxModule running on this thread is in training mode (module.train()): the few
/// kernels whose behaviour depends on it (BatchNormalization: batch statistics and running-stat
/// updates; Dropout: random masks) read it. OnnxModule::run sets it for the duration of a run.
bool running_in_training();
class TrainingScope {
 public:
  explicit TrainingScope(bool training);
  ~TrainingScope();
  TrainingScope(const TrainingScope&) = delete;
  TrainingScope& operator=(const TrainingScope&) = delete;

 private:
  bool saved_;
};

/// The versions (since-versions in ONNX's operator changelog, up to opset 17) of op `op_type`
/// that latent implements, oldest first; empty when the op is not supported at all.
const std::vector<int>& op_versions(const std::string& op_type);
/// The comma-separated names of all supported ops.
std::string supported_ops();

/// Compiles one node (validating it); `node.version()` is already resolved.
Kernel compile_node(const NodeView& node);

/// True when input `index` of `op_type` is read as values (shapes, axes, scales, pads, BatchNorm
/// statistics...) rather than differentiated through: initializers used only there are buffers.
bool is_value_input(const std::string& op_type, size_t index);

/// axis in [-rank, rank) made non-negative; `what` names it in the error.
int64_t normalize_axis(int64_t axis, int64_t rank, const char* what = "axis");
/// All dims 0..rank-1.
Shape all_dims(int rank);
/// Normalized, sorted, duplicate-free reduction axes.
Shape reduce_axes(const std::vector<int64_t>& axes, int rank);

/// The int64 values of a 0-d or 1-d tensor (shapes, axes); `what` names it in errors.
std::vector<int64_t> int_values(const Tensor& t, const char* what);
/// The values of a tensor as doubles.
std::vector<double> double_values(const Tensor& t);

}  // namespace latent::onnx::detail
