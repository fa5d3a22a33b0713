// Internal to the exporter (not installed): the GraphBuilder that turns trace records into ONNX
// nodes, the Emit context an export rule sees, and the export table's interface. The table itself
// (latent op name -> rule) is in onnx_op_tables.cpp beside the importer's; the rules that take more
// than a line are in onnx_export_rules.cpp.
#pragma once

#include <fmt/format.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../autograd/error.h"
#include "../models/nn/module.h"
#include "../ops/creation.h"
#include "../ops/trace.h"
#include "onnx_export.h"
#include "onnx_model.h"
#include "onnx_tensor.h"

namespace latent::onnx::exporter {

/// The op name export errors carry: "[onnx export] ...".
inline constexpr const char* kOp = "onnx export";
using trace::Attr;
using trace::Record;

/// ONNX's TensorProto data type for a latent dtype.
inline int32_t onnx_type(DType d) {
  return dtype_onnx_code(d);
}

/// Identity of a tensor's data layout: two tensors with the same key hold the same values.
inline std::string layout_key(const Tensor& t) {
  return fmt::format("{}:{}:{}:{}:{}", static_cast<const void*>(t.storage().get()), t.storage_offset(), t.shape(),
                     t.strides(), static_cast<int>(t.dtype()));
}

/// t on the CPU (initializer values and comparisons read host memory).
inline Tensor on_cpu(const Tensor& t) { return t.device().is_cpu() ? t : to_device(t, kCPU); }

/// All values of t as doubles.
inline std::vector<double> values_of(const Tensor& t) { return on_cpu(t).to_vector<double>(); }

/// A shape's sizes as ONNX dims.
inline std::vector<int64_t> dims_of(const Shape& s) { return std::vector<int64_t>(s.begin(), s.end()); }

/// Node attributes of each type: int, float, ints, string.
inline AttributeProto attr_int(const std::string& name, int64_t v) {
  AttributeProto a;
  a.name = name;
  a.type = static_cast<int32_t>(AttributeType::Int);
  a.i = v;
  return a;
}
inline AttributeProto attr_float(const std::string& name, double v) {
  AttributeProto a;
  a.name = name;
  a.type = static_cast<int32_t>(AttributeType::Float);
  a.f = static_cast<float>(v);
  return a;
}
inline AttributeProto attr_ints(const std::string& name, std::vector<int64_t> v) {
  AttributeProto a;
  a.name = name;
  a.type = static_cast<int32_t>(AttributeType::Ints);
  a.ints = std::move(v);
  return a;
}
inline AttributeProto attr_string(const std::string& name, const std::string& v) {
  AttributeProto a;
  a.name = name;
  a.type = static_cast<int32_t>(AttributeType::String);
  a.s = v;
  return a;
}

/// One traced run: records and outputs.
struct Trace {
  std::vector<Record> records;
  std::vector<Tensor> outputs;
};

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

 public:
  std::string where(size_t k) const {
    return fmt::format("called from the forward of {}, traced op #{}", module_.type_name(), k);
  }
  /// "called from the forward of Net, traced op #3" for the record being emitted.
  std::string where() const { return where(index_); }

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
      default: fail(kOp, "constant '{}' has dtype {}, which ONNX export does not write yet", name, t.dtype());
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
      default: fail(kOp, "a scalar of dtype {} cannot be exported yet", d);
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

 public:
  /// Fails with "op 'x' has no ONNX mapping (where; inputs ...)", and the reason when one is known.
  [[noreturn]] void unmapped(const Record& r, const char* reason = nullptr) {
    std::vector<std::string> shapes;
    for (const Tensor& t : r.inputs) shapes.push_back(t.defined() ? fmt::format("{}", t.shape()) : "undefined");
    fail(kOp, "op '{}' has no ONNX mapping ({}; inputs {}){}{}", r.op, where(index_), fmt::join(shapes, ", "),
         reason ? ": " : "", reason ? reason : "");
  }

  /// Batch-dependent positions of `a` against the second trace's `b` (sizes that differ).
  static std::vector<bool> batch_positions(const Shape& a, const Shape* b) {
    std::vector<bool> out(static_cast<size_t>(a.size()), false);
    if (!b) return out;
    for (int i = 0; i < a.size() && i < b->size(); ++i) out[static_cast<size_t>(i)] = a[i] != (*b)[i];
    return out;
  }

  static std::vector<int64_t> all_axes(int rank) {
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

  /// Writes the nodes of record r through its rule in the export table (onnx_op_tables.cpp).
  std::string emit(const Record& r, const Record* r2, const std::vector<std::string>& in);

 private:
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

/// What an export rule sees of one record: the builder, the record (and its twin from the batch + 1
/// trace, or null), and the value names of its tensor inputs ("" for undefined ones).
struct Emit {
  GraphBuilder& g;
  const Record& r;
  const Record* r2;
  const std::vector<std::string>& in;

  DType dtype() const { return r.output.dtype(); }
  const Shape& out_shape() const { return r.output.shape(); }
  const Shape* out_shape2() const { return r2 ? &r2->output.shape() : nullptr; }
  const Shape& x_shape(size_t i) const { return r.inputs.at(i).shape(); }
  double attr_f(size_t i) const { return r.attrs.at(i).f; }
  int64_t attr_i(size_t i) const { return r.attrs.at(i).i; }
  /// Adds a node reading `inputs` and returns its output's name.
  std::string node(const std::string& op_type, std::vector<std::string> inputs,
                   std::vector<AttributeProto> attrs = {}) const {
    return g.node(op_type, std::move(inputs), std::move(attrs));
  }
  /// A scalar constant of the output's dtype.
  std::string scalar(double value) const { return g.scalar(value, dtype()); }
  [[noreturn]] void unmapped() const { g.unmapped(r); }
};

/// Writes the ONNX nodes of one record and returns the name of the value holding its output.
using Emitter = std::string (*)(const Emit&);

/// One entry of the export table: a rule, or the reason the op cannot be exported.
struct ExportRule {
  Emitter emit = nullptr;
  const char* not_exportable = nullptr;
};

/// The rule for latent op `op` (a unique op name, ops/op_registry.h), or null.
const ExportRule* export_rule(const std::string& op);
/// The names of every entry of the export table (rules and not-exportable ops).
std::vector<std::string> export_rule_names();
/// Adds a rule for an op defined outside the library (a custom op; the tests' test-only op).
/// Fails when `op` already has an entry.
void register_export_rule(const std::string& op, Emitter emit);

}  // namespace latent::onnx::exporter
