// The two op tables of onnx_io/, side by side: the importer's (ONNX op type -> versions, compiler,
// value inputs, unary function) and the exporter's (latent op name -> rule, or the reason the op
// cannot be exported). An op that both reads and writes ONNX has one row in each, here.
//
// Import rows: each op's compiler reads and validates a node at the op's version (the newest of
// `versions` not newer than the model's opset). Export rows are keyed by the unique op names of
// ops/op_registry.h; tests/test_onnx_export.cpp fails when a registered op has no row.
#include <map>
#include <mutex>

#include "../ops/activation.h"
#include "../ops/elementwise.h"
#include "onnx_export_rules.h"
#include "onnx_import_ops.h"

namespace latent::onnx {

// ---------------------------------------------------------------------------------------------
// Import: ONNX op type -> OpEntry

namespace detail {

namespace {
std::map<std::string, OpEntry>& import_table() {
  static std::map<std::string, OpEntry> table = {
      {"Abs", {{1, 6, 13}, compile_unary, {}, [](const Tensor& x) { return abs(x); }}},
      {"Add", {{1, 6, 7, 13, 14}, compile_binary}},
      {"ArgMax", {{1, 11, 12, 13}, compile_arg_reduce}},
      {"ArgMin", {{1, 11, 12, 13}, compile_arg_reduce}},
      {"AveragePool", {{1, 7, 10, 11}, compile_pool}},
      {"BatchNormalization", {{1, 6, 7, 9, 14, 15}, compile_batch_norm, ValueInputs::at({3, 4})}},
      {"Cast", {{1, 6, 9, 13}, compile_cast}},
      {"Celu", {{12}, compile_activation_more}},
      {"Clip", {{1, 6, 11, 12, 13}, compile_clip, ValueInputs::from(1)}},
      {"Concat", {{1, 4, 11, 13}, compile_concat}},
      {"Constant", {{1, 9, 11, 12, 13}, compile_constant}},
      {"ConstantOfShape", {{9}, compile_constant_of_shape, ValueInputs::at({0})}},
      {"Conv", {{1, 11}, compile_conv}},
      {"ConvInteger", {{10}, compile_conv_integer, ValueInputs::from(0)}},
      {"ConvTranspose", {{1, 11}, compile_conv_transpose}},
      {"DepthToSpace", {{1, 11, 13}, compile_depth_space}},
      {"DequantizeLinear", {{10, 13}, compile_dequantize_linear, ValueInputs::from(0)}},
      {"Div", {{1, 6, 7, 13, 14}, compile_binary}},
      {"DynamicQuantizeLinear", {{11}, compile_dynamic_quantize_linear, ValueInputs::from(0)}},
      {"Dropout", {{1, 6, 7, 10, 12, 13}, compile_dropout, ValueInputs::from(1)}},
      {"Elu", {{1, 6}, compile_unary}},
      {"Erf", {{9, 13}, compile_unary, {}, [](const Tensor& x) { return erf(x); }}},
      {"Exp", {{1, 6, 13}, compile_unary, {}, [](const Tensor& x) { return exp(x); }}},
      {"Expand", {{8, 13}, compile_expand, ValueInputs::at({1})}},
      {"Flatten", {{1, 9, 11, 13}, compile_flatten}},
      {"Gather", {{1, 11, 13}, compile_gather}},
      {"Gemm", {{1, 6, 7, 9, 11, 13}, compile_gemm}},
      {"GlobalAveragePool", {{1}, compile_global_average_pool}},
      {"GlobalMaxPool", {{1}, compile_global_max_pool}},
      {"HardSigmoid", {{1, 6}, compile_activation_more}},
      {"HardSwish", {{14}, compile_activation_more}},
      {"Identity", {{1, 13, 14, 16}, compile_unary, {}, [](const Tensor& x) { return x; }}},
      {"InstanceNormalization", {{1, 6}, compile_instance_norm}},
      {"LayerNormalization", {{17}, compile_layer_norm}},
      {"LeakyRelu", {{1, 6, 16}, compile_unary}},
      {"Log", {{1, 6, 13}, compile_unary, {}, [](const Tensor& x) { return log(x); }}},
      {"LogSoftmax", {{1, 11, 13}, compile_softmax}},
      {"MatMul", {{1, 9, 13}, compile_matmul}},
      {"MatMulInteger", {{10}, compile_matmul_integer, ValueInputs::from(0)}},
      {"Max", {{1, 6, 8, 12, 13}, compile_variadic}},
      {"MaxPool", {{1, 8, 10, 11, 12}, compile_pool}},
      {"Mean", {{1, 6, 8, 13}, compile_variadic}},
      {"MeanVarianceNormalization", {{9, 13}, compile_mvn}},
      {"Min", {{1, 6, 8, 12, 13}, compile_variadic}},
      {"Mul", {{1, 6, 7, 13, 14}, compile_binary}},
      {"Neg", {{1, 6, 13}, compile_unary, {}, [](const Tensor& x) { return neg(x); }}},
      {"PRelu", {{1, 6, 7, 9, 16}, compile_prelu}},
      {"Pad", {{1, 2, 11, 13}, compile_pad, ValueInputs::from(1)}},
      {"Pow", {{1, 7, 12, 13, 15}, compile_binary}},
      {"QLinearConv", {{10}, compile_qlinear_conv, ValueInputs::from(0)}},
      // ONNX Runtime's contrib ops (com.microsoft, opset 1) that its QOperator quantization writes.
      {"com.microsoft:QGemm", {{1}, compile_qgemm, ValueInputs::from(0)}},
      {"com.microsoft:QLinearSigmoid", {{1}, compile_qlinear_sigmoid, ValueInputs::from(0)}},
      {"QLinearMatMul", {{10}, compile_qlinear_matmul, ValueInputs::from(0)}},
      {"QuantizeLinear", {{10, 13}, compile_quantize_linear, ValueInputs::from(1)}},
      {"Range", {{11}, compile_range, ValueInputs::from(0)}},
      {"Reciprocal", {{1, 6, 13}, compile_activation_more}},
      {"ReduceL1", {{1, 11, 13}, compile_reduce}},
      {"ReduceL2", {{1, 11, 13}, compile_reduce}},
      {"ReduceLogSum", {{1, 11, 13}, compile_reduce}},
      {"ReduceLogSumExp", {{1, 11, 13}, compile_reduce}},
      {"ReduceMax", {{1, 11, 12, 13}, compile_reduce}},
      {"ReduceMean", {{1, 11, 13}, compile_reduce}},
      {"ReduceMin", {{1, 11, 12, 13}, compile_reduce}},
      {"ReduceSum", {{1, 11, 13}, compile_reduce, ValueInputs::at({1})}},
      {"ReduceSumSquare", {{1, 11, 13}, compile_reduce}},
      {"Relu", {{1, 6, 13, 14}, compile_unary, {}, [](const Tensor& x) { return relu(x); }}},
      {"Reshape", {{1, 5, 13, 14}, compile_reshape, ValueInputs::at({1})}},
      {"Round", {{11}, compile_unary, {}, [](const Tensor& x) { return round(x); }}},
      {"Resize", {{10, 11, 13}, compile_resize, ValueInputs::from(1)}},
      {"Selu", {{1, 6}, compile_unary}},
      {"Shape", {{1, 13, 15}, compile_shape}},
      {"Sigmoid", {{1, 6, 13}, compile_unary, {}, [](const Tensor& x) { return sigmoid(x); }}},
      {"Size", {{1, 13}, compile_size}},
      {"Slice", {{1, 10, 11, 13}, compile_slice, ValueInputs::from(1)}},
      {"Softmax", {{1, 11, 13}, compile_softmax}},
      {"Softplus", {{1}, compile_unary, {}, [](const Tensor& x) { return softplus(x); }}},
      {"Softsign", {{1}, compile_activation_more}},
      {"SpaceToDepth", {{1, 13}, compile_depth_space}},
      {"Split", {{1, 2, 11, 13}, compile_split, ValueInputs::at({1})}},
      {"Sqrt", {{1, 6, 13}, compile_unary, {}, [](const Tensor& x) { return sqrt(x); }}},
      {"Squeeze", {{1, 11, 13}, [](const NodeView& n) { return compile_squeeze(n, false); }, ValueInputs::at({1})}},
      {"Sub", {{1, 6, 7, 13, 14}, compile_binary}},
      {"Sum", {{1, 6, 8, 13}, compile_variadic}},
      {"Tanh", {{1, 6, 13}, compile_unary, {}, [](const Tensor& x) { return tanh(x); }}},
      {"ThresholdedRelu", {{10}, compile_activation_more}},
      {"Tile", {{6, 13}, compile_tile, ValueInputs::at({1})}},
      {"Transpose", {{1, 13}, compile_transpose}},
      {"Unsqueeze", {{1, 11, 13}, [](const NodeView& n) { return compile_squeeze(n, true); }, ValueInputs::at({1})}},
      {"Upsample", {{7, 9}, compile_resize, ValueInputs::at({1})}},
      {"Where", {{9, 16}, compile_where}},
  };
  return table;
}
}  // namespace

const std::map<std::string, OpEntry>& op_table() { return import_table(); }

void register_import_op(const std::string& op_type, OpEntry entry) {
  if (!import_table().emplace(op_type, std::move(entry)).second)
    fail("onnx import", "op '{}' already has an import entry", op_type);
}

UnaryFn unary_function(const std::string& op_type) {
  auto it = op_table().find(op_type);
  return it == op_table().end() ? nullptr : it->second.unary;
}

const std::vector<int>& op_versions(const std::string& op_type) {
  static const std::vector<int> none;
  auto it = op_table().find(op_type);
  return it == op_table().end() ? none : it->second.versions;
}

std::string op_key(const std::string& domain, const std::string& op_type) {
  return domain.empty() || domain == "ai.onnx" ? op_type : domain + ":" + op_type;
}

bool is_supported_domain(const std::string& domain) { return domain == "com.microsoft"; }

std::string supported_ops() {
  std::string out;
  for (const auto& [name, entry] : op_table()) out += fmt::format("{}{}", out.empty() ? "" : ", ", name);
  return out;
}

namespace {
bool is_narrow_int(DType d) { return d == kInt32 || d == kInt8 || d == kUInt8; }

/// Ops whose output has the dtype of input 0 (ONNX's T) and that latent computes on int64 (MaxPool:
/// float64, exact for these values): on int32/int8/uint8 inputs (storage dtypes, see
/// docs/design.md) they run on wide copies and the outputs convert back (saturating where ONNX
/// would wrap around).
bool runs_narrow_ints_as_int64(const std::string& op_type) {
  static const char* const ops[] = {"Abs", "Add", "Clip", "Div", "Max", "MaxPool", "Min", "Mul", "Neg", "Pow", "Relu", "Sub", "Sum"};
  for (const char* op : ops)
    if (op_type == op) return true;
  return false;
}
}  // namespace

Kernel compile_node(const NodeView& node) {
  Kernel kernel = op_table().at(op_key(node.proto().domain, node.proto().op_type)).compile(node);
  if (!runs_narrow_ints_as_int64(node.proto().op_type)) return kernel;
  const DType wide_dtype = node.proto().op_type == "MaxPool" ? kFloat64 : kInt64;
  return [kernel, wide_dtype](const std::vector<Tensor>& in) -> std::vector<Tensor> {
    if (in.empty() || !in[0].defined() || !is_narrow_int(in[0].dtype())) return kernel(in);
    std::vector<Tensor> wide(in);
    for (Tensor& t : wide)
      if (t.defined() && is_narrow_int(t.dtype())) t = t.to(wide_dtype);
    std::vector<Tensor> out = kernel(wide);
    for (Tensor& t : out)
      if (t.defined() && t.dtype() != in[0].dtype()) t = t.to(in[0].dtype());
    return out;
  };
}

bool is_value_input(const std::string& op_type, size_t index) {
  auto it = op_table().find(op_type);
  return it != op_table().end() && it->second.value_inputs.has(index);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Export: latent op name -> rule (one-line rules here, the others in onnx_export_rules.cpp)

namespace exporter {
namespace {

/// A rule that writes one node of `op_type` reading the record's inputs in order, no attributes.
template <const char* kOpType>
std::string same_inputs(const Emit& e) {
  return e.node(kOpType, e.in);
}
/// ArgMax / ArgMin of the traced argmax / argmin (dim, keepdim).
template <const char* kOpType>
std::string emit_arg_reduce(const Emit& e) {
  return e.node(kOpType, {e.in[0]}, {attr_int("axis", e.attr_i(0)), attr_int("keepdims", e.attr_i(1))});
}
constexpr char kArgMax[] = "ArgMax", kArgMin[] = "ArgMin";
constexpr char kRelu[] = "Relu", kSigmoid[] = "Sigmoid", kTanh[] = "Tanh", kAbs[] = "Abs", kRound[] = "Round", kSelu[] = "Selu",
               kErf[] = "Erf", kNeg[] = "Neg", kExp[] = "Exp", kLog[] = "Log", kSqrt[] = "Sqrt", kMax[] = "Max",
               kMin[] = "Min", kMatMul[] = "MatMul", kIdentity[] = "Identity";

std::map<std::string, ExportRule>& table() {
  static std::map<std::string, ExportRule> rules = {
      // elementwise
      {"add", {emit_binary}},
      {"sub", {emit_binary}},
      {"mul", {emit_binary}},
      {"div", {emit_binary}},
      {"pow", {emit_binary}},
      {"add_scalar", {emit_scalar_affine}},
      {"sub_scalar", {emit_scalar_affine}},
      {"mul_scalar", {emit_scalar_affine}},
      {"div_scalar", {emit_scalar_affine}},
      {"rsub", {emit_scalar_affine}},
      {"rdiv", {[](const Emit& e) { return e.node("Div", {e.scalar(e.attr_f(0)), e.in[0]}); }}},
      {"pow_scalar", {emit_pow_scalar}},
      {"rpow", {[](const Emit& e) { return e.node("Pow", {e.scalar(e.attr_f(0)), e.in[0]}); }}},
      {"neg", {same_inputs<kNeg>}},
      {"exp", {same_inputs<kExp>}},
      {"log", {same_inputs<kLog>}},
      {"sqrt", {same_inputs<kSqrt>}},
      {"maximum", {same_inputs<kMax>}},
      {"minimum", {same_inputs<kMin>}},
      {"where", {emit_where}},
      // activations (PointwiseOp: p0, p1)
      {"relu", {same_inputs<kRelu>}},
      {"sigmoid", {same_inputs<kSigmoid>}},
      {"tanh", {same_inputs<kTanh>}},
      {"abs", {same_inputs<kAbs>}},
      {"round", {same_inputs<kRound>}},
      {"selu", {same_inputs<kSelu>}},
      {"erf", {same_inputs<kErf>}},
      {"leaky_relu",
       {[](const Emit& e) { return e.node("LeakyRelu", {e.in[0]}, {attr_float("alpha", e.attr_f(0))}); }}},
      {"elu", {[](const Emit& e) { return e.node("Elu", {e.in[0]}, {attr_float("alpha", e.attr_f(0))}); }}},
      {"softplus", {emit_softplus}},
      {"gelu", {emit_gelu}},
      {"clamp", {emit_clamp}},
      // traced as one op though latent composes them (trace::composite)
      {"softmax", {[](const Emit& e) { return e.node("Softmax", {e.in[0]}, {attr_int("axis", e.attr_i(0))}); }}},
      {"log_softmax", {[](const Emit& e) { return e.node("LogSoftmax", {e.in[0]}, {attr_int("axis", e.attr_i(0))}); }}},
      {"batch_norm", {emit_batch_norm}},
      {"pad", {emit_pad}},
      // linear algebra
      {"linear", {emit_linear}},
      {"fused_linear", {emit_fused_linear}},
      {"matmul", {same_inputs<kMatMul>}},
      // shapes and indexing
      {"view", {emit_view}},
      {"permute", {emit_permute}},
      {"slice", {emit_slice}},
      {"select", {[](const Emit& e) {
         return e.node("Gather", {e.in[0], e.g.const_i64({e.attr_i(1)}, true)}, {attr_int("axis", e.attr_i(0))});
       }}},
      {"expand", {emit_expand}},
      {"to", {same_inputs<kIdentity>}},  // a device copy
      {"clone", {emit_clone}},
      {"cat", {[](const Emit& e) { return e.node("Concat", e.in, {attr_int("axis", e.attr_i(0))}); }}},
      {"index_select",
       {[](const Emit& e) { return e.node("Gather", {e.in[0], e.in[1]}, {attr_int("axis", e.attr_i(0))}); }}},
      {"gather",
       {[](const Emit& e) { return e.node("GatherElements", {e.in[0], e.in[1]}, {attr_int("axis", e.attr_i(0))}); }}},
      {"scatter_add", {nullptr, "ScatterElements with reduction 'add' needs opset 16 and is not written yet"}},
      // reductions
      {"sum", {emit_sum_mean}},
      {"mean", {emit_sum_mean}},
      {"max", {emit_extreme_all}},
      {"min", {emit_extreme_all}},
      {"max_dim", {emit_extreme_dim}},
      {"min_dim", {emit_extreme_dim}},
      {"argmax", {emit_arg_reduce<kArgMax>}},
      {"argmin", {emit_arg_reduce<kArgMin>}},
      // convolution, pooling, resampling
      {"conv2d", {emit_conv}},
      {"conv_transpose2d", {emit_conv}},
      {"max_pool2d", {emit_pool}},
      {"max_pool1d", {emit_pool}},
      {"avg_pool2d", {emit_pool}},
      {"avg_pool1d", {emit_pool}},
      {"adaptive_avg_pool2d", {emit_adaptive_avg_pool}},
      {"adaptive_avg_pool1d", {emit_adaptive_avg_pool}},
      {"upsample_nearest2d", {emit_upsample}},
      {"upsample_bilinear2d", {emit_upsample}},
      // losses (a model may report one)
      {"mse_loss", {emit_pointwise_loss}},
      {"l1_loss", {emit_pointwise_loss}},
      {"binary_cross_entropy", {nullptr, "a training loss: export the model, not its loss"}},
      {"binary_cross_entropy_with_logits", {nullptr, "a training loss: export the model, not its loss"}},
      {"nll_loss", {nullptr, "a training loss: export the model, not its loss"}},
      {"dist_allreduce_sum", {nullptr, "a collective between training processes (synchronised batch norm in training mode); eval mode exports batch norm with its running statistics"}},
  };
  return rules;
}

std::mutex& table_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

const ExportRule* export_rule(const std::string& op) {
  std::lock_guard<std::mutex> lock(table_mutex());
  auto it = table().find(op);
  return it == table().end() ? nullptr : &it->second;  // map nodes are stable: the pointer stays valid
}

std::vector<std::string> export_rule_names() {
  std::lock_guard<std::mutex> lock(table_mutex());
  std::vector<std::string> names;
  for (const auto& [name, rule] : table()) names.push_back(name);
  return names;
}

void register_export_rule(const std::string& op, Emitter emit) {
  std::lock_guard<std::mutex> lock(table_mutex());
  if (!table().emplace(op, ExportRule{emit, nullptr}).second)
    fail(kOp, "op '{}' already has an export rule", op);
}

}  // namespace exporter
}  // namespace latent::onnx
