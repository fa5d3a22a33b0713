// Export to ONNX by tracing (see onnx_export.h and docs/onnx.md, "Export").
//
// Pipeline: run the function under a trace::Tracer (eval mode, no-grad) -> records (op name, tensor
// inputs, output, attributes) -> one emit rule per op name below -> GraphProto. Tensors that a
// record reads but no earlier record produced are resolved, in order, as: a graph input, an alias
// (same storage, offset, shape and strides) of a traced value, a parameter or buffer of the module
// (initializer under its state_dict name), or a constant (initializer "const_K" with its values).
#include "onnx_export.h"

#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "../autograd/error.h"
#include "../autograd/grad_mode.h"
#include "../models/autoencoder.h"
#include "../models/module.h"
#include "../ops/creation.h"
#include "../ops/elementwise.h"
#include "../ops/join.h"
#include "../ops/linalg.h"
#include "../ops/loss.h"
#include "../ops/nn_ops.h"
#include "../ops/random.h"
#include "../ops/reduce.h"
#include "../ops/scalar_math.h"
#include "../ops/shape_ops.h"
#include "../ops/trace.h"
#include "onnx_tensor.h"

namespace latent::onnx {
namespace {

constexpr const char* kOp = "onnx export";
using trace::Attr;
using trace::Record;

int32_t onnx_type(DType d) {
  switch (d) {
    case DType::Float32: return static_cast<int32_t>(DataType::Float);
    case DType::Float64: return static_cast<int32_t>(DataType::Double);
    case DType::Int64: return static_cast<int32_t>(DataType::Int64);
  }
  return 0;
}

/// Identity of a tensor's data layout: two tensors with the same key hold the same values.
std::string layout_key(const Tensor& t) {
  return fmt::format("{}:{}:{}:{}:{}", static_cast<const void*>(t.storage().get()), t.storage_offset(), t.shape(),
                     t.strides(), static_cast<int>(t.dtype()));
}

/// t on the CPU (initializer values and comparisons read host memory).
Tensor on_cpu(const Tensor& t) { return t.device().is_cpu() ? t : to_device(t, kCPU); }

/// All values of t as doubles.
std::vector<double> values_of(const Tensor& t) { return on_cpu(t).to_vector<double>(); }

std::vector<int64_t> dims_of(const Shape& s) { return std::vector<int64_t>(s.begin(), s.end()); }

AttributeProto attr_int(const std::string& name, int64_t v) {
  AttributeProto a;
  a.name = name;
  a.type = static_cast<int32_t>(AttributeType::Int);
  a.i = v;
  return a;
}
AttributeProto attr_float(const std::string& name, double v) {
  AttributeProto a;
  a.name = name;
  a.type = static_cast<int32_t>(AttributeType::Float);
  a.f = static_cast<float>(v);
  return a;
}
AttributeProto attr_ints(const std::string& name, std::vector<int64_t> v) {
  AttributeProto a;
  a.name = name;
  a.type = static_cast<int32_t>(AttributeType::Ints);
  a.ints = std::move(v);
  return a;
}
AttributeProto attr_string(const std::string& name, const std::string& v) {
  AttributeProto a;
  a.name = name;
  a.type = static_cast<int32_t>(AttributeType::String);
  a.s = v;
  return a;
}

/// ONNX's IR version for a default-domain opset (onnx/helper.py VERSION_TABLE).
int64_t ir_version_for(int64_t opset) { return opset <= 14 ? 7 : 8; }

/// One traced run: records and outputs.
struct Trace {
  std::vector<Record> records;
  std::vector<Tensor> outputs;
};

Trace run_traced(const ExportFunction& fn, const std::vector<Tensor>& inputs) {
  trace::Tracer tracer;
  Trace t;
  {
    trace::TraceGuard guard(tracer);
    t.outputs = fn(inputs);
  }
  t.records = std::move(tracer.records);
  return t;
}

/// Builds the graph from the records of the first trace; the second trace (batch + 1), when
/// present, tells which sizes are the batch.
class GraphBuilder {
 public:
  GraphBuilder(nn::Module& module, const ExportOptions& options, GraphProto& graph)
      : module_(module), opset_(options.opset), graph_(graph) {
    for (const auto& [name, t] : module.named_parameters()) params_.emplace(layout_key(t), std::make_pair(name, t));
    for (const auto& [name, t] : module.named_buffers()) params_.emplace(layout_key(t), std::make_pair(name, t));
  }

  void add_input(const Tensor& t, const std::string& name) {
    values_[t.impl()] = name;
    aliases_.emplace(layout_key(t), name);
    taken_.insert(name);
  }

  void emit_all(const Trace& first, const Trace* second) {
    for (size_t k = 0; k < first.records.size(); ++k) {
      const Record& r = first.records[k];
      const Record* r2 = second ? &second->records[k] : nullptr;
      if (r.output.defined() && r.output.version() != r.output_version)
        fail(kOp, "the result of '{}' ({}) was modified in place afterwards; in-place ops are not traced, so the "
                  "exported graph would differ from the forward pass",
             r.op, where(k));
      index_ = k;
      std::vector<std::string> in;
      for (size_t j = 0; j < r.inputs.size(); ++j)
        in.push_back(resolve(r.inputs[j], r2 ? &r2->inputs[j] : nullptr, r));
      const std::string out = emit(r, r2, in);
      values_[r.output.impl()] = out;
      aliases_.emplace(layout_key(r.output), out);
    }
  }

  /// The value name of a graph output (resolving it like an op input).
  std::string output_value(const Tensor& t, const Tensor* t2) {
    Record fake;
    fake.op = "output";
    return resolve(t, t2, fake);
  }

  /// Keeps `name` out of the generated value names (graph input and output names).
  void reserve(const std::string& name) { taken_.insert(name); }

  /// Makes graph output `to` carry value `from`: renames the node output `from` everywhere, or adds
  /// an Identity node when `from` is a graph input, an initializer or already another output.
  void bind_output(const std::string& from, const std::string& to) {
    if (auto it = renamed_.find(from); it != renamed_.end()) {
      node("Identity", {it->second}, {}, to);
      return;
    }
    bool is_node_output = false;
    for (const NodeProto& n : graph_.node)
      for (const std::string& o : n.output) is_node_output = is_node_output || o == from;
    if (!is_node_output) {
      node("Identity", {from}, {}, to);
      return;
    }
    for (NodeProto& n : graph_.node) {
      for (std::string& i : n.input)
        if (i == from) i = to;
      for (std::string& o : n.output)
        if (o == from) o = to;
    }
    renamed_[from] = to;
  }

 private:
  std::string where(size_t k) const {
    return fmt::format("called from the forward of {}, traced op #{}", module_.type_name(), k);
  }

  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int i = 1; taken_.count(name); ++i) name = fmt::format("{}_{}", base, i);
    taken_.insert(name);
    return name;
  }

  /// Adds a node and returns its (first) output name; `out` names it (fresh otherwise).
  std::string node(const std::string& op_type, std::vector<std::string> inputs, std::vector<AttributeProto> attrs,
                   std::string out = {}) {
    NodeProto n;
    n.op_type = op_type;
    n.name = fmt::format("{}_{}", op_type, graph_.node.size());
    if (out.empty()) out = fresh(fmt::format("{}_{}", op_type, graph_.node.size()));
    // Trailing optional inputs left empty are dropped.
    while (!inputs.empty() && inputs.back().empty()) inputs.pop_back();
    n.input = std::move(inputs);
    n.output = {out};
    n.attribute = std::move(attrs);
    graph_.node.push_back(std::move(n));
    return out;
  }

  std::string add_initializer(TensorProto t) {
    const std::string name = t.name;
    graph_.initializer.push_back(std::move(t));
    return name;
  }

  /// An initializer holding t's values.
  std::string constant_of(const Tensor& device_tensor, const std::string& name) {
    const Tensor t = on_cpu(device_tensor);
    const std::vector<int64_t> dims = dims_of(t.shape());
    switch (t.dtype()) {
      case DType::Float32: {
        std::vector<float> v = t.to_vector<float>();
        return add_initializer(make_tensor<float>(name, dims, v));
      }
      case DType::Float64: {
        std::vector<double> v = t.to_vector<double>();
        return add_initializer(make_tensor<double>(name, dims, v));
      }
      case DType::Int64: {
        std::vector<int64_t> v = t.to_vector<int64_t>();
        return add_initializer(make_tensor<int64_t>(name, dims, v));
      }
    }
    return name;
  }

  std::string const_i64(const std::vector<int64_t>& values, bool scalar = false) {
    std::vector<int64_t> dims;
    if (!scalar) dims.push_back(static_cast<int64_t>(values.size()));
    return add_initializer(make_tensor<int64_t>(fresh("const"), dims, values));
  }

  std::string const_f32(const std::vector<float>& values) {
    return add_initializer(make_tensor<float>(fresh("const"), {static_cast<int64_t>(values.size())}, values));
  }

  /// A scalar constant of dtype `d`.
  std::string scalar(double value, DType d) {
    const std::string name = fresh("const");
    switch (d) {
      case DType::Float32: {
        const float v = static_cast<float>(value);
        return add_initializer(make_tensor<float>(name, {}, std::span<const float>(&v, 1)));
      }
      case DType::Float64:
        return add_initializer(make_tensor<double>(name, {}, std::span<const double>(&value, 1)));
      case DType::Int64: {
        const int64_t v = static_cast<int64_t>(value);
        return add_initializer(make_tensor<int64_t>(name, {}, std::span<const int64_t>(&v, 1)));
      }
    }
    return name;
  }

  std::string resolve(const Tensor& t, const Tensor* t2, const Record& r) {
    if (!t.defined()) return {};
    if (auto it = values_.find(t.impl()); it != values_.end()) return it->second;
    const std::string key = layout_key(t);
    if (auto it = aliases_.find(key); it != aliases_.end()) return it->second;
    if (auto it = params_.find(key); it != params_.end()) {
      const std::string& name = it->second.first;
      if (!used_params_.count(name)) {
        used_params_.insert(name);
        taken_.insert(name);
        constant_of(it->second.second, name);
      }
      aliases_.emplace(key, name);
      return name;
    }
    if (t2 && t2->defined() && t2->shape() != t.shape()) {
      const std::string name = batch_sized_constant(t, *t2, r);
      values_[t.impl()] = name;
      return name;
    }
    if (t2 && t2->defined() && values_of(t) != values_of(*t2))
      fail(kOp, "a tensor of shape {} read by '{}' ({}) was not computed by traced ops (a comparison, raw data "
                "access or a tensor made from values?) and its values depend on the input; it cannot be exported "
                "as a constant. Compute it with latent ops",
           t.shape(), r.op, where(index_));
    const std::string name = constant_of(t, fresh("const"));
    aliases_.emplace(key, name);
    return name;
  }

  /// An untraced tensor whose shape follows the batch size: allowed when all its elements are one
  /// value (zeros_like(x), or the all-false mask softmax builds): Expand(value, shape) with the
  /// batch taken from dim 0 of the first graph input.
  std::string batch_sized_constant(const Tensor& t, const Tensor& t2, const Record& r) {
    const auto reject = [&](const char* why) {
      fail(kOp, "a tensor of shape {} read by '{}' ({}) was not computed by traced ops (a comparison, raw data "
                "access or a tensor made from values?) and its shape depends on the batch size; {}. Compute it "
                "with latent ops, or export with dynamic_batch = false",
           t.shape(), r.op, where(index_), why);
    };
    if (t.dim() != t2.dim() || batch_ < 1) reject("its rank changes");
    const std::vector<double> v1 = values_of(t), v2 = values_of(t2);
    for (double v : v1)
      if (v != v1[0]) reject("its elements differ, so it is not a filled constant");
    for (double v : v2)
      if (v != v1[0]) reject("its elements differ, so it is not a filled constant");
    if (batch_value_.empty())
      batch_value_ = node("Slice", {node("Shape", {batch_input_}, {}), const_i64({0}), const_i64({1})}, {});
    std::vector<std::string> pieces;
    for (int d = 0; d < t.dim(); ++d) {
      const int64_t a = t.shape()[d], b = t2.shape()[d];
      if (a == b) {
        pieces.push_back(const_i64({a}));
      } else if (a % batch_ == 0 && b % (batch_ + 1) == 0 && a / batch_ == b / (batch_ + 1)) {
        const int64_t k = a / batch_;
        pieces.push_back(k == 1 ? batch_value_ : node("Mul", {batch_value_, const_i64({k})}, {}));
      } else {
        reject("its size is not a multiple of the batch");
      }
    }
    const std::string shape = node("Concat", pieces, {attr_int("axis", 0)});
    return node("Expand", {scalar(v1.empty() ? 0.0 : v1[0], t.dtype()), shape}, {});
  }

 public:
  /// The graph input whose dim 0 is the batch, and the example batch size (dynamic batch only).
  void set_batch(const std::string& input, int64_t batch) {
    batch_input_ = input;
    batch_ = batch;
  }

 private:
  [[noreturn]] void unmapped(const Record& r) {
    std::vector<std::string> shapes;
    for (const Tensor& t : r.inputs) shapes.push_back(t.defined() ? fmt::format("{}", t.shape()) : "undefined");
    fail(kOp, "op '{}' has no ONNX mapping ({}; inputs {})", r.op, where(index_), fmt::join(shapes, ", "));
  }

  /// Batch-dependent positions of `a` against the second trace's `b` (sizes that differ).
  static std::vector<bool> batch_positions(const Shape& a, const Shape* b) {
    std::vector<bool> out(static_cast<size_t>(a.size()), false);
    if (!b) return out;
    for (int i = 0; i < a.size() && i < b->size(); ++i) out[static_cast<size_t>(i)] = a[i] != (*b)[i];
    return out;
  }

  std::vector<int64_t> all_axes(int rank) {
    std::vector<int64_t> axes;
    for (int d = 0; d < rank; ++d) axes.push_back(d);
    return axes;
  }

  /// ReduceSum / ReduceMean / ReduceMax / ReduceMin over `axes` (axes as an input for ReduceSum
  /// from opset 13; an attribute for the others up to opset 17).
  std::string reduce(const std::string& op_type, const std::string& x, std::vector<int64_t> axes, bool keepdims) {
    std::vector<AttributeProto> attrs{attr_int("keepdims", keepdims ? 1 : 0)};
    if (op_type == "ReduceSum") return node(op_type, {x, const_i64(axes)}, attrs);
    attrs.push_back(attr_ints("axes", std::move(axes)));
    return node(op_type, {x}, attrs);
  }

  std::string emit(const Record& r, const Record* r2, const std::vector<std::string>& in);

  nn::Module& module_;
  int64_t opset_;
  GraphProto& graph_;
  size_t index_ = 0;
  std::map<const TensorImpl*, std::string> values_;
  std::map<std::string, std::string> aliases_;
  std::map<std::string, std::pair<std::string, Tensor>> params_;
  std::set<std::string> used_params_, taken_;
  std::map<std::string, std::string> renamed_;
  std::string batch_input_, batch_value_;
  int64_t batch_ = 0;
};

std::string GraphBuilder::emit(const Record& r, const Record* r2, const std::vector<std::string>& in) {
  const std::string op = r.op;
  const size_t n_in = r.inputs.size(), n_attr = r.attrs.size();
  const auto attr_f = [&](size_t i) { return r.attrs.at(i).f; };
  const auto attr_i = [&](size_t i) { return r.attrs.at(i).i; };
  const DType dtype = r.output.dtype();
  const Shape& out_shape = r.output.shape();
  const Shape* out_shape2 = r2 ? &r2->output.shape() : nullptr;
  const auto x_shape = [&](size_t i) -> const Shape& { return r.inputs.at(i).shape(); };

  // ---- elementwise ----
  if (n_in == 2 && (op == "add" || op == "sub" || op == "mul" || op == "div" || op == "pow")) {
    static const std::map<std::string, std::string> types{
        {"add", "Add"}, {"sub", "Sub"}, {"mul", "Mul"}, {"div", "Div"}, {"pow", "Pow"}};
    std::string b = in[1];
    if (op == "add" && n_attr == 1 && attr_f(0) != 1.0) b = node("Mul", {b, scalar(attr_f(0), dtype)}, {});
    std::string a = in[0];
    if (op == "div" && r.inputs[0].dtype() == DType::Int64) {  // integer division promotes to float32
      a = node("Cast", {a}, {attr_int("to", onnx_type(DType::Float32))});
      b = node("Cast", {b}, {attr_int("to", onnx_type(DType::Float32))});
    }
    return node(types.at(op), {a, b}, {});
  }
  if (n_in == 1 && n_attr == 3 && (op == "add" || op == "sub" || op == "mul" || op == "div" || op == "rsub")) {
    // ScalarAffineOp: (kind, value, factor)
    const auto kind = static_cast<UnaryOp>(attr_i(0));
    const std::string c = scalar(attr_f(1), r.inputs[0].dtype());
    if (kind == UnaryOp::AddScalar) return node("Add", {in[0], c}, {});
    if (kind == UnaryOp::MulScalar) return node("Mul", {in[0], c}, {});
    if (kind == UnaryOp::DivScalar) return node("Div", {in[0], c}, {});
    if (kind == UnaryOp::RsubScalar) return node("Sub", {c, in[0]}, {});
    unmapped(r);
  }
  if (op == "rdiv" && n_in == 1) return node("Div", {scalar(attr_f(0), dtype), in[0]}, {});
  if (op == "pow" && n_in == 1 && n_attr == 2) {  // x ** exponent
    const double e = attr_f(0);
    if (e == 2.0) return node("Mul", {in[0], in[0]}, {});
    if (e == 1.0) return node("Identity", {in[0]}, {});
    if (e == 0.5) return node("Sqrt", {in[0]}, {});
    return node("Pow", {in[0], scalar(e, dtype)}, {});
  }
  if (op == "pow" && n_in == 1 && n_attr == 1) return node("Pow", {scalar(attr_f(0), dtype), in[0]}, {});  // base ** x
  if (n_in == 1 && n_attr == 0) {
    static const std::map<std::string, std::string> unary{{"neg", "Neg"}, {"exp", "Exp"}, {"log", "Log"},
                                                          {"sqrt", "Sqrt"}};
    if (auto it = unary.find(op); it != unary.end()) return node(it->second, {in[0]}, {});
  }
  if (op == "maximum" || op == "minimum") return node(op == "maximum" ? "Max" : "Min", {in[0], in[1]}, {});
  if (op == "where") {
    std::string cond = node("Cast", {in[0]}, {attr_int("to", static_cast<int32_t>(DataType::Bool))});
    return node("Where", {cond, in[1], in[2]}, {});
  }

  // ---- activations (PointwiseOp: p0, p1) ----
  if (n_in == 1 && n_attr == 2) {
    const double p0 = attr_f(0), p1 = attr_f(1);
    if (op == "relu") return node("Relu", {in[0]}, {});
    if (op == "sigmoid") return node("Sigmoid", {in[0]}, {});
    if (op == "tanh") return node("Tanh", {in[0]}, {});
    if (op == "abs") return node("Abs", {in[0]}, {});
    if (op == "selu") return node("Selu", {in[0]}, {});
    if (op == "leaky_relu") return node("LeakyRelu", {in[0]}, {attr_float("alpha", p0)});
    if (op == "elu") return node("Elu", {in[0]}, {attr_float("alpha", p0)});
    if (op == "softplus") {
      // log(1 + exp(beta x)) / beta; latent's linear branch above `threshold` differs by < exp(-threshold).
      if (p0 == 1.0) return node("Softplus", {in[0]}, {});
      const std::string beta = scalar(p0, dtype);
      return node("Div", {node("Softplus", {node("Mul", {in[0], beta}, {})}, {}), beta}, {});
    }
    if (op == "erf") return node("Erf", {in[0]}, {});
    if (op == "gelu") {  // x * 0.5 * (1 + erf(x / sqrt(2))); ONNX's Gelu arrives at opset 20
      std::string e = node("Erf", {node("Div", {in[0], scalar(std::sqrt(2.0), dtype)}, {})}, {});
      std::string half = node("Mul", {in[0], scalar(0.5, dtype)}, {});
      return node("Mul", {half, node("Add", {e, scalar(1.0, dtype)}, {})}, {});
    }
    if (op == "clamp") {
      const std::string lo = std::isinf(p0) ? std::string() : scalar(p0, dtype);
      const std::string hi = std::isinf(p1) ? std::string() : scalar(p1, dtype);
      return node("Clip", {in[0], lo, hi}, {});
    }
  }

  // ---- ops traced as one though latent composes them (trace::composite) ----
  if ((op == "softmax" || op == "log_softmax") && n_in == 1 && n_attr == 1)
    return node(op == "softmax" ? "Softmax" : "LogSoftmax", {in[0]}, {attr_int("axis", attr_i(0))});
  if (op == "batch_norm" && n_in == 5 && n_attr == 1) {  // eval mode: x, running mean/var, weight, bias
    const int64_t channels = x_shape(0)[1];
    const auto filled = [&](double value) {  // weight or bias left out: ones or zeros per channel
      return constant_of(full({channels}, value, dtype), fresh("const"));
    };
    const std::string scale = in[3].empty() ? filled(1.0) : in[3];
    const std::string shift = in[4].empty() ? filled(0.0) : in[4];
    return node("BatchNormalization", {in[0], scale, shift, in[1], in[2]}, {attr_float("epsilon", attr_f(0))});
  }
  if (op == "pad" && n_in == 1 && n_attr == 3) {  // pads: (before, after) pairs, last dim first
    const std::vector<int64_t>& pairs = r.attrs[0].ints;
    const int rank = r.inputs[0].dim();
    std::vector<int64_t> onnx_pads(static_cast<size_t>(2 * rank), 0);  // all begins, then all ends
    for (size_t i = 0; i < pairs.size() / 2; ++i) {
      const int d = rank - 1 - static_cast<int>(i);
      onnx_pads[static_cast<size_t>(d)] = pairs[2 * i];
      onnx_pads[static_cast<size_t>(rank + d)] = pairs[2 * i + 1];
    }
    const auto mode = static_cast<PadMode>(attr_i(1));
    const char* onnx_mode = mode == PadMode::Reflect ? "reflect" : mode == PadMode::Replicate ? "edge" : "constant";
    std::vector<std::string> inputs{in[0], const_i64(onnx_pads)};
    if (mode == PadMode::Constant && attr_f(2) != 0.0) inputs.push_back(scalar(attr_f(2), dtype));
    return node("Pad", inputs, {attr_string("mode", onnx_mode)});
  }

  // ---- linear algebra ----
  if (op == "linear") {
    if (r.inputs[0].dim() != 2) unmapped(r);
    return node("Gemm", {in[0], in[1], in[2]}, {attr_int("transB", 1)});
  }
  if (op == "fused_linear" && n_in == 3 && n_attr == 1) {  // activation(x W^T + b), one op in latent
    if (r.inputs[0].dim() != 2) unmapped(r);
    const std::string y = node("Gemm", {in[0], in[1], in[2]}, {attr_int("transB", 1)});
    switch (static_cast<Activation>(attr_i(0))) {
      case Activation::None: return y;
      case Activation::Relu: return node("Relu", {y}, {});
      case Activation::Sigmoid: return node("Sigmoid", {y}, {});
      case Activation::Tanh: return node("Tanh", {y}, {});
    }
    unmapped(r);
  }
  if (op == "matmul") return node("MatMul", {in[0], in[1]}, {});

  // ---- shapes ----
  if (op == "view") {
    // Reshape to the output's shape; the batch-dependent size (if any) becomes -1.
    std::vector<int64_t> target = dims_of(out_shape);
    std::vector<bool> batch = batch_positions(out_shape, out_shape2);
    int dynamic = 0;
    for (size_t i = 0; i < target.size(); ++i)
      if (batch[i]) target[i] = -1, ++dynamic;
    if (dynamic > 1)
      fail(kOp, "reshape to {} ({}) has {} sizes that depend on the batch size; only one can be left dynamic (-1)",
           out_shape, where(index_), dynamic);
    return node("Reshape", {in[0], const_i64(target)}, {});
  }
  if (op == "permute") {
    std::vector<int64_t> perm = r.attrs.at(0).ints;
    const int64_t rank = r.inputs[0].dim();
    for (int64_t& p : perm)
      if (p < 0) p += rank;
    return node("Transpose", {in[0]}, {attr_ints("perm", perm)});
  }
  if (op == "slice") {  // (dim, start, end, step), clamped by slice()/narrow()
    const int64_t dim = attr_i(0), start = attr_i(1), step = attr_i(3);
    int64_t end = attr_i(2);
    if (r2 && r2->attrs.at(1).i != start)
      fail(kOp, "slice start {} depends on the batch size ({})", start, where(index_));
    if (r2 && r2->attrs.at(2).i != end) {
      if (end != x_shape(0)[static_cast<int>(dim)])
        fail(kOp, "slice end {} depends on the batch size ({})", end, where(index_));
      end = std::numeric_limits<int64_t>::max();
    }
    return node("Slice", {in[0], const_i64({start}), const_i64({end}), const_i64({dim}), const_i64({step})}, {});
  }
  if (op == "select") return node("Gather", {in[0], const_i64({attr_i(1)}, true)}, {attr_int("axis", attr_i(0))});
  if (op == "expand") {
    // Expand broadcasts, so sizes the input already has can be 1 (keeping the batch dynamic).
    const Shape& xs = x_shape(0);
    std::vector<int64_t> target = dims_of(out_shape);
    std::vector<bool> batch = batch_positions(out_shape, out_shape2);
    const int offset = out_shape.size() - xs.size();
    for (int i = 0; i < out_shape.size(); ++i) {
      if (i >= offset && xs[i - offset] == out_shape[i]) {
        target[static_cast<size_t>(i)] = 1;
      } else if (batch[static_cast<size_t>(i)]) {
        fail(kOp, "expand of shape {} to the batch size ({}) cannot be exported with a dynamic batch", xs,
             where(index_));
      }
    }
    return node("Expand", {in[0], const_i64(target)}, {});
  }
  if (op == "to" && n_in == 1) return node("Identity", {in[0]}, {});  // a device copy
  if (op == "clone") {
    if (r.inputs[0].dtype() == dtype) return node("Identity", {in[0]}, {});
    return node("Cast", {in[0]}, {attr_int("to", onnx_type(dtype))});
  }
  if (op == "cat") return node("Concat", in, {attr_int("axis", attr_i(0))});
  if (op == "index_select") return node("Gather", {in[0], in[1]}, {attr_int("axis", attr_i(0))});
  if (op == "gather") return node("GatherElements", {in[0], in[1]}, {attr_int("axis", attr_i(0))});

  // ---- reductions ----
  if ((op == "sum" || op == "mean") && n_attr == 2) {
    std::vector<int64_t> axes = r.attrs.at(0).ints;
    if (axes.empty()) axes = all_axes(r.inputs[0].dim());
    return reduce(op == "sum" ? "ReduceSum" : "ReduceMean", in[0], axes, r.attrs.at(1).i != 0);
  }
  if (op == "max" || op == "min") {
    const std::string type = op == "max" ? "ReduceMax" : "ReduceMin";
    if (n_attr == 0) return reduce(type, in[0], all_axes(r.inputs[0].dim()), false);
    return reduce(type, in[0], {attr_i(0)}, r.attrs.at(1).i != 0);
  }

  // ---- convolution, pooling, resampling (inputs are (N, C, H, W)) ----
  if (op == "conv2d" || op == "conv_transpose2d") {
    const std::vector<int64_t>& p = r.attrs.at(0).ints;  // stride, padding, dilation, output_padding, groups
    const Shape& w = x_shape(1);
    std::vector<AttributeProto> attrs{attr_ints("kernel_shape", {w[2], w[3]}), attr_ints("strides", {p[0], p[1]}),
                                      attr_ints("pads", {p[2], p[3], p[2], p[3]}),
                                      attr_ints("dilations", {p[4], p[5]}), attr_int("group", p[8])};
    if (op == "conv2d") return node("Conv", {in[0], in[1], in[2]}, attrs);
    if (p[6] != 0 || p[7] != 0) attrs.push_back(attr_ints("output_padding", {p[6], p[7]}));
    return node("ConvTranspose", {in[0], in[1], in[2]}, attrs);
  }
  if (op == "max_pool2d" || op == "max_pool1d" || op == "avg_pool2d" || op == "avg_pool1d") {
    const std::vector<int64_t>& p = r.attrs.at(0).ints;  // kernel, stride, padding, dilation, ceil, count_include_pad
    std::vector<AttributeProto> attrs{attr_ints("kernel_shape", {p[0], p[1]}), attr_ints("strides", {p[2], p[3]}),
                                      attr_ints("pads", {p[4], p[5], p[4], p[5]})};
    if (p[8]) attrs.push_back(attr_int("ceil_mode", 1));
    if (op[0] == 'm') {
      if (p[6] != 1 || p[7] != 1) attrs.push_back(attr_ints("dilations", {p[6], p[7]}));
      return node("MaxPool", {in[0]}, attrs);
    }
    if (p[9]) attrs.push_back(attr_int("count_include_pad", 1));
    return node("AveragePool", {in[0]}, attrs);
  }
  if (op == "adaptive_avg_pool2d" || op == "adaptive_avg_pool1d") {
    const Shape& xs = x_shape(0);
    const int64_t oh = out_shape[2], ow = out_shape[3];
    if (oh == 1 && ow == 1) return node("GlobalAveragePool", {in[0]}, {});
    if (xs[2] % oh != 0 || xs[3] % ow != 0)
      fail(kOp, "adaptive_avg_pool from {}x{} to {}x{} has uneven windows; only sizes that divide the input map to "
                "AveragePool ({})",
           xs[2], xs[3], oh, ow, where(index_));
    const int64_t kh = xs[2] / oh, kw = xs[3] / ow;
    return node("AveragePool", {in[0]}, {attr_ints("kernel_shape", {kh, kw}), attr_ints("strides", {kh, kw})});
  }
  if (op == "upsample_nearest2d" || op == "upsample_bilinear2d") {
    const Shape& xs = x_shape(0);
    const bool bilinear = op == "upsample_bilinear2d";
    const bool align_corners = n_attr >= 2 && r.attrs[1].i != 0;
    std::vector<AttributeProto> attrs;
    if (bilinear) {
      attrs = {attr_string("mode", "linear"),
               attr_string("coordinate_transformation_mode", align_corners ? "align_corners" : "pytorch_half_pixel")};
    } else {
      // PyTorch's nearest: src = floor(dst * in / out).
      attrs = {attr_string("mode", "nearest"), attr_string("coordinate_transformation_mode", "asymmetric"),
               attr_string("nearest_mode", "floor")};
    }
    const int64_t oh = out_shape[2], ow = out_shape[3];
    if (oh % xs[2] == 0 && ow % xs[3] == 0) {  // integer factors: exact scales
      const std::string scales = const_f32({1.0f, 1.0f, static_cast<float>(oh / xs[2]), static_cast<float>(ow / xs[3])});
      return node("Resize", {in[0], "", scales}, attrs);
    }
    // Other sizes: sizes = concat(shape(x)[0:2], [oh, ow]), which keeps N dynamic.
    std::string nc = node("Slice", {node("Shape", {in[0]}, {}), const_i64({0}), const_i64({2})}, {});
    std::string sizes = node("Concat", {nc, const_i64({oh, ow})}, {attr_int("axis", 0)});
    return node("Resize", {in[0], "", "", sizes}, attrs);
  }

  // ---- losses (a model may report one) ----
  if ((op == "mse_loss" || op == "l1_loss") && n_in == 2 && n_attr == 1) {
    std::string d = node("Sub", {in[0], in[1]}, {});
    std::string e = op == "mse_loss" ? node("Mul", {d, d}, {}) : node("Abs", {d}, {});
    const auto reduction = static_cast<Reduction>(attr_i(0));
    if (reduction == Reduction::None) return e;
    return reduce(reduction == Reduction::Mean ? "ReduceMean" : "ReduceSum", e, all_axes(r.inputs[0].dim()), false);
  }
  unmapped(r);
}

std::vector<std::string> default_names(const std::vector<std::string>& given, size_t n, const std::string& base) {
  std::vector<std::string> names = given;
  for (size_t i = names.size(); i < n; ++i) names.push_back(i == 0 ? base : fmt::format("{}_{}", base, i));
  names.resize(n);
  return names;
}

ValueInfoProto value_info(const std::string& name, const Tensor& t, const std::vector<bool>& batch) {
  ValueInfoProto v;
  v.name = name;
  TypeProto::Tensor tt;
  tt.elem_type = onnx_type(t.dtype());
  TensorShapeProto shape;
  for (int d = 0; d < t.dim(); ++d) {
    TensorShapeProto::Dimension dim;
    if (batch[static_cast<size_t>(d)]) dim.dim_param = "batch";
    else dim.dim_value = t.shape()[d];
    shape.dim.push_back(std::move(dim));
  }
  tt.shape = std::move(shape);
  TypeProto type;
  type.tensor_type = std::move(tt);
  v.type = std::move(type);
  return v;
}

/// Drops nodes whose outputs no graph output needs (VAE's logvar when exporting z = mu, results
/// a forward computes and ignores) and the initializers nothing reads any more.
void prune_dead_code(GraphProto& graph) {
  std::set<std::string> live;
  for (const ValueInfoProto& v : graph.output) live.insert(v.name);
  std::vector<bool> keep(graph.node.size(), false);
  for (size_t k = graph.node.size(); k-- > 0;) {
    const NodeProto& n = graph.node[k];
    for (const std::string& o : n.output) keep[k] = keep[k] || live.count(o);
    if (keep[k]) live.insert(n.input.begin(), n.input.end());
  }
  std::vector<NodeProto> nodes;
  for (size_t k = 0; k < graph.node.size(); ++k)
    if (keep[k]) nodes.push_back(std::move(graph.node[k]));
  graph.node = std::move(nodes);
  std::vector<TensorProto> initializers;
  for (TensorProto& t : graph.initializer)
    if (live.count(t.name)) initializers.push_back(std::move(t));
  graph.initializer = std::move(initializers);
}

/// Puts every module of the tree in eval mode and restores each one's mode when destroyed.
class EvalModeGuard {
 public:
  explicit EvalModeGuard(nn::Module& module) {
    // apply() visits children before parents; restoring in reverse order sets each parent before
    // its descendants, since train() recurses.
    module.apply([this](nn::Module& m) { modes_.emplace_back(&m, m.is_training()); });
    module.eval();
  }
  ~EvalModeGuard() {
    for (auto it = modes_.rbegin(); it != modes_.rend(); ++it) it->first->train(it->second);
  }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  std::vector<std::pair<nn::Module*, bool>> modes_;
};

}  // namespace

ModelProto export_function(nn::Module& module, const ExportFunction& fn, const std::vector<Tensor>& inputs,
                           const ExportOptions& options) {
  if (options.opset < 13 || options.opset > 17)
    fail(kOp, "opset {} is not supported: expected 13 to 17", options.opset);
  if (inputs.empty()) fail(kOp, "expected at least one example input");
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) fail(kOp, "example input {} is undefined", i);
    if (options.dynamic_batch && (inputs[i].dim() == 0 || inputs[i].shape()[0] < 1))
      fail(kOp, "example input {} has shape {}: a dynamic batch needs at least one dim with a size of 1 or more "
                "(or set dynamic_batch = false)",
           i, inputs[i].shape());
  }
  const std::vector<std::string> input_names = default_names(options.input_names, inputs.size(), "input");

  EvalModeGuard eval_mode(module);
  NoGradGuard no_grad;
  Trace first = run_traced(fn, inputs);
  std::optional<Trace> second;
  std::vector<Tensor> inputs2;
  if (options.dynamic_batch) {
    // Batch N + 1 with the rows rolled by one, so that sizes following the batch and values
    // following the data both show up as differences between the two traces.
    for (const Tensor& x : inputs) {
      const int64_t n = x.shape()[0];
      Tensor first_row = narrow(x, 0, 0, 1);
      inputs2.push_back(n > 1 ? cat({narrow(x, 0, 1, n - 1), first_row, first_row}, 0) : cat({x, x}, 0));
    }
    second = run_traced(fn, inputs2);
    bool same = second->records.size() == first.records.size() && second->outputs.size() == first.outputs.size();
    for (size_t k = 0; same && k < first.records.size(); ++k)
      same = std::string(first.records[k].op) == second->records[k].op &&
             first.records[k].inputs.size() == second->records[k].inputs.size() &&
             first.records[k].output.dim() == second->records[k].output.dim();
    if (!same)
      fail(kOp, "the forward of {} runs different ops for batch sizes {} and {}; export it with dynamic_batch = "
                "false",
           module.type_name(), inputs[0].shape()[0], inputs[0].shape()[0] + 1);
  }
  if (first.outputs.empty()) fail(kOp, "the traced function returned no tensors");
  const std::vector<std::string> output_names = default_names(options.output_names, first.outputs.size(), "output");
  std::set<std::string> all_names(input_names.begin(), input_names.end());
  all_names.insert(output_names.begin(), output_names.end());
  if (all_names.size() != input_names.size() + output_names.size())
    fail(kOp, "input and output names must all be distinct; got inputs {} and outputs {}", fmt::join(input_names, ", "),
         fmt::join(output_names, ", "));

  ModelProto model;
  model.ir_version = ir_version_for(options.opset);
  OperatorSetIdProto opset;
  opset.version = options.opset;
  model.opset_import.push_back(opset);
  model.producer_name = "latent";
  model.producer_version = options.producer_version.empty() ? "0.1.0" : options.producer_version;
  model.doc_string = options.doc_string;
  for (const auto& [k, v] : options.metadata) model.metadata_props.push_back({k, v, {}});
  GraphProto& graph = model.graph;
  graph.name = options.graph_name;

  GraphBuilder builder(module, options, graph);
  for (const std::string& name : output_names) builder.reserve(name);
  for (size_t i = 0; i < inputs.size(); ++i) {
    builder.add_input(inputs[i], input_names[i]);
    std::vector<bool> batch(static_cast<size_t>(inputs[i].dim()), false);
    if (options.dynamic_batch) batch[0] = true;
    graph.input.push_back(value_info(input_names[i], inputs[i], batch));
  }
  if (options.dynamic_batch) builder.set_batch(input_names[0], inputs[0].shape()[0]);
  builder.emit_all(first, second ? &*second : nullptr);
  for (size_t i = 0; i < first.outputs.size(); ++i) {
    const Tensor& out = first.outputs[i];
    if (!out.defined()) fail(kOp, "output {} of the traced function is undefined", i);
    const Tensor* out2 = second ? &second->outputs[i] : nullptr;
    const std::string value = builder.output_value(out, out2);
    builder.bind_output(value, output_names[i]);
    std::vector<bool> batch(static_cast<size_t>(out.dim()), false);
    if (out2)
      for (int d = 0; d < out.dim() && d < out2->dim(); ++d) batch[static_cast<size_t>(d)] = out.shape()[d] != out2->shape()[d];
    graph.output.push_back(value_info(output_names[i], out, batch));
  }
  prune_dead_code(graph);
  return model;
}

ModelProto export_module(nn::Module& module, const std::vector<Tensor>& inputs, const ExportOptions& options) {
  if (inputs.size() != 1)
    fail(kOp, "export_module traces forward(input) and needs exactly one example input; got {} (use "
              "export_function for several)",
         inputs.size());
  return export_function(
      module, [&module](const std::vector<Tensor>& x) { return std::vector<Tensor>{module.forward(x[0])}; }, inputs,
      options);
}

void export_module_to_file(nn::Module& module, const std::vector<Tensor>& inputs, const std::filesystem::path& path,
                           const ExportOptions& options) {
  save_model(export_module(module, inputs, options), path);
}

AutoencoderPart parse_part(const std::string& name) {
  if (name == "full") return AutoencoderPart::Full;
  if (name == "encoder") return AutoencoderPart::Encoder;
  if (name == "decoder") return AutoencoderPart::Decoder;
  if (name == "anomaly") return AutoencoderPart::Anomaly;
  fail(kOp, "unknown part '{}' (full, encoder, decoder, anomaly)", name);
}

const char* part_name(AutoencoderPart part) {
  switch (part) {
    case AutoencoderPart::Full: return "full";
    case AutoencoderPart::Encoder: return "encoder";
    case AutoencoderPart::Decoder: return "decoder";
    case AutoencoderPart::Anomaly: return "anomaly";
  }
  return "full";
}

ExportFunction autoencoder_part_function(models::Autoencoder& model, AutoencoderPart part) {
  models::Autoencoder* m = &model;
  switch (part) {
    case AutoencoderPart::Full:
      return [m](const std::vector<Tensor>& x) { return std::vector<Tensor>{m->forward(x[0])}; };
    case AutoencoderPart::Encoder:
      if (auto* vae = dynamic_cast<models::VariationalAutoencoder*>(m))
        return [vae](const std::vector<Tensor>& x) {
          auto [mu, logvar] = vae->encode_distribution(x[0]);
          return std::vector<Tensor>{mu, logvar};
        };
      return [m](const std::vector<Tensor>& x) { return std::vector<Tensor>{m->encode(x[0])}; };
    case AutoencoderPart::Decoder:
      return [m](const std::vector<Tensor>& z) { return std::vector<Tensor>{m->decode(z[0])}; };
    case AutoencoderPart::Anomaly:
      // The per-sample score of `latent anomaly` (models::reconstruction_errors): mean over features
      // of the squared reconstruction error.
      return [m](const std::vector<Tensor>& x) {
        Tensor d = sub(m->forward(x[0]), x[0]);
        return std::vector<Tensor>{mean(mul(d, d), Shape{1}, false)};
      };
  }
  fail(kOp, "unknown part");
}

std::vector<Tensor> autoencoder_example_inputs(models::Autoencoder& model, AutoencoderPart part, int64_t batch,
                                               uint64_t seed) {
  if (batch < 1) fail(kOp, "the example batch must hold at least one sample; got {}", batch);
  Generator gen(seed);
  NoGradGuard no_grad;
  DType dtype = kFloat32;
  Device device = kCPU;
  for (const Tensor& p : model.parameters()) {
    dtype = p.dtype();
    device = p.device();
    break;
  }
  Tensor x = to_device(rand({batch, model.config().input_dim}, dtype, &gen), device);
  if (part != AutoencoderPart::Decoder) return {x};
  EvalModeGuard eval_mode(model);
  const Tensor code = model.encode(x);
  return {to_device(randn(code.shape(), dtype, &gen), device)};
}

ModelProto export_autoencoder(models::Autoencoder& model, AutoencoderPart part, const ExportOptions& options,
                              std::optional<double> anomaly_threshold, int64_t batch) {
  ExportOptions o = options;
  const bool vae = dynamic_cast<models::VariationalAutoencoder*>(&model) != nullptr;
  if (o.input_names.empty()) o.input_names = {part == AutoencoderPart::Decoder ? "code" : "input"};
  if (o.output_names.empty()) {
    switch (part) {
      case AutoencoderPart::Full:
      case AutoencoderPart::Decoder: o.output_names = {"reconstruction"}; break;
      case AutoencoderPart::Encoder:
        o.output_names = vae ? std::vector<std::string>{"mu", "logvar"} : std::vector<std::string>{"code"};
        break;
      case AutoencoderPart::Anomaly: o.output_names = {"error"}; break;
    }
  }
  if (o.graph_name == "latent") o.graph_name = fmt::format("{}_{}", model.type_name(), part_name(part));
  o.metadata.emplace_back("model", model.config().model);
  o.metadata.emplace_back("part", part_name(part));
  if (part == AutoencoderPart::Anomaly && anomaly_threshold) {
    o.metadata.emplace_back("anomaly_threshold", fmt::format("{}", *anomaly_threshold));
    o.metadata.emplace_back("anomaly_score", "mean squared reconstruction error per sample; anomalous when > threshold");
  }
  return export_function(model, autoencoder_part_function(model, part), autoencoder_example_inputs(model, part, batch),
                         o);
}

}  // namespace latent::onnx
