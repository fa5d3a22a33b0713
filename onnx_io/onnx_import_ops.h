// Internal to the importer (not installed): what an op's compiler sees of one node, the entry the
// table of ops (onnx_op_tables.cpp) holds per ONNX op, and the compilers it names. Each op is one
// `compile` function that reads and validates the node's attributes at the op's version (the newest
// version of the op not newer than the model's opset) and returns the kernel that runs it with
// latent's ops. Everything a compiler rejects is a load-time error.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
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

/// A latent function of one tensor: how compile_unary runs the ops it handles.
using UnaryFn = Tensor (*)(const Tensor&);

/// The inputs of an op that are read as values (shapes, axes, scales, pads, BatchNorm statistics...)
/// rather than differentiated through: initializers used only there are buffers, not parameters.
struct ValueInputs {
  uint32_t mask = 0;  ///< bit i: input i (i < 32)
  bool rest = false;  ///< inputs 32 and up
  bool has(size_t i) const { return i < 32 ? ((mask >> i) & 1u) != 0 : rest; }
  /// Exactly the listed inputs.
  static constexpr ValueInputs at(std::initializer_list<int> indices) {
    ValueInputs v;
    for (int i : indices) v.mask |= 1u << i;
    return v;
  }
  /// Input `first` and every one after it.
  static constexpr ValueInputs from(int first) { return {~0u << first, true}; }
};

/// Everything the importer knows of one ONNX op (one row of the table in onnx_op_tables.cpp).
struct OpEntry {
  std::vector<int> versions;              ///< since-versions latent implements, oldest first
  Kernel (*compile)(const NodeView&);     ///< validates a node and returns its kernel
  ValueInputs value_inputs = {};          ///< inputs read as values, not differentiated
  UnaryFn unary = nullptr;                ///< for compile_unary: the latent function it runs
};

/// The importer's table: ONNX op type -> entry; ops of a domain other than the default ai.onnx
/// are keyed "DOMAIN:OP" (op_key), e.g. "com.microsoft:QGemm".
const std::map<std::string, OpEntry>& op_table();
/// Adds an entry for an op defined outside the library (a custom op; the tests' test-only op), before
/// any import runs (at static-initialization time). Fails when `op_type` already has one.
void register_import_op(const std::string& op_type, OpEntry entry);
/// The unary function of `op_type`'s entry, or null.
UnaryFn unary_function(const std::string& op_type);

/// A convolution as Conv's attributes (auto_pad, dilations, group, kernel_shape, pads, strides) on
/// `n` describe it: (x, weight, bias or undefined) -> y; `weight_input` is the weight's input index
/// (checked for its rank). Shared by Conv, ConvInteger (1) and QLinearConv (3).
using ConvFn = std::function<Tensor(const Tensor& x, const Tensor& weight, const Tensor& bias)>;
ConvFn conv_function(const NodeView& n, int weight_input);

// ---- the op compilers the table names (onnx_import_ops.cpp, onnx_import_nn.cpp, onnx_import_more.cpp) ----
Kernel compile_activation_more(const NodeView& n);
Kernel compile_arg_reduce(const NodeView& n);
Kernel compile_batch_norm(const NodeView& n);
Kernel compile_binary(const NodeView& n);
Kernel compile_cast(const NodeView& n);
Kernel compile_clip(const NodeView& n);
Kernel compile_concat(const NodeView& n);
Kernel compile_constant(const NodeView& n);
Kernel compile_constant_of_shape(const NodeView& n);
Kernel compile_conv(const NodeView& n);
Kernel compile_conv_transpose(const NodeView& n);
Kernel compile_conv_integer(const NodeView& n);
Kernel compile_depth_space(const NodeView& n);
Kernel compile_dequantize_linear(const NodeView& n);
Kernel compile_dynamic_quantize_linear(const NodeView& n);
Kernel compile_dropout(const NodeView& n);
Kernel compile_expand(const NodeView& n);
Kernel compile_flatten(const NodeView& n);
Kernel compile_gather(const NodeView& n);
Kernel compile_gemm(const NodeView& n);
Kernel compile_global_average_pool(const NodeView& n);
Kernel compile_global_max_pool(const NodeView& n);
Kernel compile_instance_norm(const NodeView& n);
Kernel compile_layer_norm(const NodeView& n);
Kernel compile_matmul(const NodeView& n);
Kernel compile_matmul_integer(const NodeView& n);
Kernel compile_mvn(const NodeView& n);
Kernel compile_pad(const NodeView& n);
Kernel compile_pool(const NodeView& n);
Kernel compile_prelu(const NodeView& n);
Kernel compile_qlinear_conv(const NodeView& n);
Kernel compile_qlinear_matmul(const NodeView& n);
Kernel compile_qgemm(const NodeView& n);
Kernel compile_qlinear_sigmoid(const NodeView& n);
Kernel compile_quantize_linear(const NodeView& n);
Kernel compile_range(const NodeView& n);
Kernel compile_reduce(const NodeView& n);
Kernel compile_reshape(const NodeView& n);
Kernel compile_resize(const NodeView& n);
Kernel compile_shape(const NodeView& n);
Kernel compile_size(const NodeView& n);
Kernel compile_slice(const NodeView& n);
Kernel compile_softmax(const NodeView& n);
Kernel compile_split(const NodeView& n);
Kernel compile_squeeze(const NodeView& n, bool unsqueeze_op);
Kernel compile_tile(const NodeView& n);
Kernel compile_transpose(const NodeView& n);
Kernel compile_unary(const NodeView& n);
Kernel compile_variadic(const NodeView& n);
Kernel compile_where(const NodeView& n);

/// The versions (since-versions in ONNX's operator changelog, up to opset 17) of op `op_type`
/// that latent implements, oldest first; empty when the op is not supported at all.
const std::vector<int>& op_versions(const std::string& op_type);
/// The table key of op `op_type` of `domain`: the op type itself in the default domain ("" or
/// "ai.onnx"), else "DOMAIN:OP".
std::string op_key(const std::string& domain, const std::string& op_type);
/// The domains besides the default one that the table has ops of ("com.microsoft").
bool is_supported_domain(const std::string& domain);
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
/// Fails unless `shape` has at most max_created_elements() elements: "[onnx import]
/// ConstantOfShape's shape [1000000, 1000000] asks for 1e+12 elements, more than the limit of ...".
void check_created(const std::vector<int64_t>& shape, const char* what);
/// The values of a tensor as doubles.
std::vector<double> double_values(const Tensor& t);

}  // namespace latent::onnx::detail
