// OnnxModule: builds a module from a ModelProto (initializers -> parameters and buffers, nodes ->
// compiled kernels, every node validated) and runs the graph in order.
#include "onnx_import.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "../ops/creation.h"
#include "onnx_import_ops.h"
#include "onnx_tensor.h"

namespace latent::onnx {

namespace {

constexpr int64_t kMaxOpset = 17;
constexpr const char* kOp = "onnx import";
constexpr const char* kSupportedTypes = "FLOAT, DOUBLE, INT64, INT32, INT8, UINT8";

template <class T>
Tensor tensor_of(const TensorProto& proto, const std::filesystem::path& dir, const Shape& shape) {
  std::vector<T> values = tensor_to_vector<T>(proto, dir);
  if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, float> || std::is_same_v<T, double>) {
    return from_vector(values, shape);
  } else {  // the storage dtypes (int32, int8, uint8): copied into place
    Tensor t = empty(shape, dtype_of<T>::value);
    std::copy(values.begin(), values.end(), t.data_ptr<T>());
    return t;
  }
}

std::string spec_string(const ValueSpec& s) {
  std::string dims;
  if (!s.has_shape) {
    dims = "unknown shape";
  } else {
    dims = "[";
    for (size_t i = 0; i < s.dims.size(); ++i) dims += (i ? ", " : "") + (s.dims[i] < 0 ? std::string("?") : std::to_string(s.dims[i]));
    dims += "]";
  }
  return fmt::format("{} {}", s.elem_type ? data_type_name(s.elem_type) : std::string("any type"), dims);
}

DType dtype_of_data_type(int32_t t) {
  DType d = kFloat32;
  return dtype_from_onnx(t, d) ? d : kFloat32;
}

}  // namespace

int64_t& max_created_elements() {
  static int64_t limit = int64_t{1} << 30;
  return limit;
}

bool is_supported_data_type(int32_t t) {
  return t == int32_t(DataType::Float) || t == int32_t(DataType::Double) || t == int32_t(DataType::Int64) ||
         t == int32_t(DataType::Int32) || t == int32_t(DataType::Int8) || t == int32_t(DataType::Uint8);
}

Tensor tensor_from_proto(const TensorProto& proto, const std::filesystem::path& model_dir) {
  if (!is_supported_data_type(proto.data_type))
    fail(kOp, "tensor '{}' has data type {}, which is not supported (supported: {})", proto.name,
         data_type_name(proto.data_type), kSupportedTypes);
  if (proto.dims.size() > size_t(kMaxDims))
    fail(kOp, "tensor '{}' has {} dims; at most {} are supported", proto.name, proto.dims.size(), kMaxDims);
  const Shape shape(proto.dims);
  switch (static_cast<DataType>(proto.data_type)) {
    case DataType::Float: return tensor_of<float>(proto, model_dir, shape);
    case DataType::Double: return tensor_of<double>(proto, model_dir, shape);
    case DataType::Int32: return tensor_of<int32_t>(proto, model_dir, shape);
    case DataType::Int8: return tensor_of<int8_t>(proto, model_dir, shape);
    case DataType::Uint8: return tensor_of<uint8_t>(proto, model_dir, shape);
    default: return tensor_of<int64_t>(proto, model_dir, shape);
  }
}

TensorProto tensor_to_proto(const Tensor& tensor, const std::string& name) {
  std::vector<int64_t> dims = tensor.shape().vec();
  switch (tensor.dtype()) {
    case DType::Float32: {
      std::vector<float> v = tensor.to_vector<float>();
      return make_tensor<float>(name, dims, std::span<const float>(v));
    }
    case DType::Float64: {
      std::vector<double> v = tensor.to_vector<double>();
      return make_tensor<double>(name, dims, std::span<const double>(v));
    }
    case DType::Int64: {
      std::vector<int64_t> v = tensor.to_vector<int64_t>();
      return make_tensor<int64_t>(name, dims, std::span<const int64_t>(v));
    }
    case DType::Int32: {
      std::vector<int32_t> v = tensor.to_vector<int32_t>();
      return make_tensor<int32_t>(name, dims, std::span<const int32_t>(v));
    }
    case DType::Int8: {
      std::vector<int8_t> v = tensor.to_vector<int8_t>();
      return make_tensor<int8_t>(name, dims, std::span<const int8_t>(v));
    }
    case DType::UInt8: {
      std::vector<uint8_t> v = tensor.to_vector<uint8_t>();
      return make_tensor<uint8_t>(name, dims, std::span<const uint8_t>(v));
    }
    default: break;
  }
  fail(kOp, "tensor '{}' has dtype {}, which latent does not write to ONNX yet", name, tensor.dtype());
}

struct OnnxModule::Impl {
  struct Step {
    detail::Kernel kernel;
    std::vector<int> inputs;   // slot per node input, -1 when absent
    std::vector<int> outputs;  // slot per node output, -1 when unused
    std::vector<int> release;  // slots whose last reader is this step
    std::string label;
  };
  int64_t opset = 1;
  std::vector<ValueSpec> inputs, outputs;
  std::vector<int> input_slots, output_slots;
  std::vector<Tensor> constants;  // per slot: initializers (registered handles); others undefined
  std::vector<Step> steps;
  std::unordered_map<std::string, int> slot_of;

  int slot(const std::string& name) {
    auto [it, added] = slot_of.try_emplace(name, int(constants.size()));
    if (added) constants.emplace_back();
    return it->second;
  }
};

namespace {

ValueSpec spec_of(const ValueInfoProto& v, const char* what) {
  ValueSpec s;
  s.name = v.name;
  if (!v.type || !v.type->tensor_type)
    fail(kOp, "graph {} '{}' is not a tensor (sequence, map, optional and sparse types are not supported)", what, v.name);
  const TypeProtoTensor& t = *v.type->tensor_type;
  s.elem_type = t.elem_type;
  if (t.elem_type != 0 && !is_supported_data_type(t.elem_type))
    fail(kOp, "graph {} '{}' has data type {}, which is not supported (supported: {})", what, v.name,
         data_type_name(t.elem_type), kSupportedTypes);
  if (t.shape) {
    s.has_shape = true;
    for (const TensorShapeDimension& d : t.shape->dim) s.dims.push_back(d.dim_value ? *d.dim_value : -1);
  }
  return s;
}

/// Registers `tensor` under a dotted ONNX name as nested submodules ("encoder.0.weight" ->
/// child "encoder", its child "0", parameter "weight"). Names that cannot nest (empty parts, or
/// a clash between a tensor and a submodule of one name) are registered flat with '.' -> '_'.
void register_named(nn::Module& root, std::map<std::string, std::shared_ptr<nn::Module>>& scopes,
                    const std::string& name, const Tensor& tensor, bool parameter) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    parts.push_back(name.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  auto add = [&](nn::Module& m, const std::string& leaf) {
    if (parameter)
      m.register_parameter(leaf, tensor, true);
    else
      m.register_buffer(leaf, tensor);
  };
  const bool nestable = std::none_of(parts.begin(), parts.end(), [](const std::string& p) { return p.empty(); });
  if (nestable) {
    try {
      nn::Module* m = &root;
      std::string prefix;
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        prefix += (i ? "." : "") + parts[i];
        auto it = scopes.find(prefix);
        if (it == scopes.end()) {
          auto child = std::make_shared<nn::Module>("Module");
          m->register_module(parts[i], child);
          it = scopes.emplace(prefix, child).first;
        }
        m = it->second.get();
      }
      add(*m, parts.back());
      return;
    } catch (const Error&) {
      // fall through to a flat name
    }
  }
  std::string flat = name;
  std::replace(flat.begin(), flat.end(), '.', '_');
  if (flat.empty()) flat = "_";
  std::string candidate = flat;
  for (int k = 1;; ++k) {
    try {
      add(root, candidate);
      return;
    } catch (const Error&) {
      if (k > 1000) throw;
      candidate = fmt::format("{}_{}", flat, k);
    }
  }
}

}  // namespace

namespace {

/// Rethrows the error being handled with control characters escaped (\x0a), so names taken from
/// the file (node, op, tensor, attribute names) keep every message on one line.
[[noreturn]] void rethrow_one_line(const Error& e) {
  const std::string_view what = e.what();
  if (std::none_of(what.begin(), what.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
    throw;
  std::string message;
  for (char c : what.substr(std::min(what.size(), e.op().size() + 3))) {  // after "[op] "
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      message += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    else
      message += c;
  }
  throw Error(e.op(), message);
}

}  // namespace

OnnxModule::OnnxModule(const ModelProto& model, const std::filesystem::path& model_dir) try
    : nn::Module("OnnxModule"), impl_(std::make_unique<Impl>()) {
  eval();  // an ONNX graph is an inference graph: train() opts into batch statistics and dropout
  Impl& im = *impl_;
  const GraphProto& g = model.graph;

  // ---- opset ----
  bool found = model.opset_import.empty();  // IR version < 3: opset 1
  std::unordered_map<std::string, int64_t> domain_opsets;  // the other domains' versions
  for (const OperatorSetIdProto& o : model.opset_import) {
    if (o.domain.empty() || o.domain == "ai.onnx") {
      im.opset = o.version;
      found = true;
    } else {
      domain_opsets[o.domain] = o.version;
    }
  }
  if (!found) fail(kOp, "the model imports no default (ai.onnx) operator set");
  if (im.opset < 1 || im.opset > kMaxOpset)
    fail(kOp, "opset {} is not supported (supported: 1 to {})", im.opset, kMaxOpset);

  // ---- declared ranks, for load-time checks ----
  std::unordered_map<std::string, int> ranks;
  for (const auto* list : {&g.input, &g.value_info, &g.output}) {
    for (const ValueInfoProto& v : *list) {
      if (v.type && v.type->tensor_type && v.type->tensor_type->shape)
        ranks[v.name] = int(v.type->tensor_type->shape->dim.size());
    }
  }
  for (const TensorProto& t : g.initializer) ranks[t.name] = int(t.dims.size());
  auto rank_of = [&ranks](const std::string& name) {
    auto it = ranks.find(name);
    return it == ranks.end() ? -1 : it->second;
  };

  // ---- initializers: parameters or buffers ----
  std::set<std::string> initializer_names;
  std::map<std::string, bool> differentiable_use;  // initializer -> used where a gradient flows
  for (const NodeProto& n : g.node) {
    for (size_t i = 0; i < n.input.size(); ++i) {
      if (!detail::is_value_input(detail::op_key(n.domain, n.op_type), i)) differentiable_use[n.input[i]] = true;
    }
  }
  std::set<std::string> used;
  for (const NodeProto& n : g.node) used.insert(n.input.begin(), n.input.end());
  std::map<std::string, std::shared_ptr<nn::Module>> scopes;
  for (const TensorProto& t : g.initializer) {
    if (t.name.empty()) fail(kOp, "an initializer has no name");
    if (!initializer_names.insert(t.name).second) fail(kOp, "initializer '{}' appears twice", t.name);
    Tensor value;
    try {
      value = tensor_from_proto(t, model_dir);
    } catch (const Error& e) {
      fail(kOp, "initializer '{}': {}", t.name, e.what());
    }
    const bool parameter = value.is_floating_point() && (differentiable_use.count(t.name) || !used.count(t.name));
    register_named(*this, scopes, t.name, value, parameter);
    im.constants[size_t(im.slot(t.name))] = value;
  }

  // ---- graph inputs and outputs ----
  std::set<std::string> defined(initializer_names);
  for (const ValueInfoProto& v : g.input) {
    if (initializer_names.count(v.name)) continue;  // an initializer's default value: not a run() input
    im.inputs.push_back(spec_of(v, "input"));
    if (!defined.insert(v.name).second) fail(kOp, "graph input '{}' appears twice", v.name);
    im.input_slots.push_back(im.slot(v.name));
  }
  for (const ValueInfoProto& v : g.output) im.outputs.push_back(spec_of(v, "output"));

  // ---- nodes ----
  // Outputs nothing reads (an unused Dropout mask or MaxPool Indices) are dropped before a node is
  // compiled, so that only outputs that matter must be supported.
  std::set<std::string> read;
  for (const NodeProto& n : g.node) read.insert(n.input.begin(), n.input.end());
  for (const ValueInfoProto& v : g.output) read.insert(v.name);
  for (size_t index = 0; index < g.node.size(); ++index) {
    NodeProto n = g.node[index];
    for (std::string& out : n.output) {
      if (!read.count(out)) out.clear();
    }
    const std::string name = n.name.empty() ? fmt::format("#{}", index) : n.name;
    // A node of another domain is versioned by that domain's opset import.
    const std::string key = detail::op_key(n.domain, n.op_type);  // "DOMAIN:OP" outside the default domain
    int64_t opset = im.opset;
    if (key != n.op_type) {
      if (!detail::is_supported_domain(n.domain))
        fail(kOp, "node '{}' ({}): domain '{}' is not supported (only ai.onnx and com.microsoft's quantized ops)", name,
             n.op_type, n.domain);
      auto it = domain_opsets.find(n.domain);
      if (it == domain_opsets.end())
        fail(kOp, "node '{}' ({}): its domain '{}' is not among the model's opset imports", name, n.op_type, n.domain);
      opset = it->second;
    }
    const std::string where = fmt::format("node '{}' ({}, opset {})", name, key, opset);
    const std::vector<int>& versions = detail::op_versions(key);
    if (versions.empty()) fail(kOp, "{}: op {} is not supported", where, key);
    int version = 0;
    for (int v : versions) {
      if (v <= opset) version = v;
    }
    if (version == 0) fail(kOp, "{}: {} does not exist before opset {}", where, n.op_type, versions.front());
    if (n.op_type == "Upsample" && im.opset >= 10)
      fail(kOp, "{}: Upsample is deprecated since opset 10 and not supported there (use Resize)", where);
    for (const std::string& in : n.input) {
      if (!in.empty() && !defined.count(in))
        fail(kOp, "{}: input '{}' is not a graph input, an initializer or the output of an earlier node", where, in);
    }
    Impl::Step step;
    step.label = where;
    step.kernel = detail::compile_node(detail::NodeView(n, name, opset, version, rank_of));
    for (const std::string& in : n.input) step.inputs.push_back(in.empty() ? -1 : im.slot(in));
    for (const std::string& out : n.output) {
      if (out.empty()) {
        step.outputs.push_back(-1);
        continue;
      }
      if (!defined.insert(out).second) fail(kOp, "{}: output '{}' is already defined", where, out);
      step.outputs.push_back(im.slot(out));
    }
    im.steps.push_back(std::move(step));
  }
  for (const ValueSpec& o : im.outputs) {
    if (!defined.count(o.name)) fail(kOp, "graph output '{}' is not produced by any node", o.name);
    im.output_slots.push_back(im.slot(o.name));
  }

  // ---- free each intermediate after its last reader ----
  std::vector<int> last(im.constants.size(), -1);
  for (size_t i = 0; i < im.steps.size(); ++i) {
    for (int s : im.steps[i].inputs) {
      if (s >= 0) last[size_t(s)] = int(i);
    }
  }
  std::set<int> keep(im.output_slots.begin(), im.output_slots.end());
  for (size_t s = 0; s < last.size(); ++s) {
    if (last[s] >= 0 && !keep.count(int(s)) && !im.constants[s].defined()) im.steps[size_t(last[s])].release.push_back(int(s));
  }
} catch (const Error& e) {
  rethrow_one_line(e);
}

OnnxModule::~OnnxModule() = default;

std::vector<Tensor> OnnxModule::run(const std::vector<Tensor>& inputs) try {
  const Impl& im = *impl_;
  if (inputs.size() != im.inputs.size()) {
    std::string names;
    for (const ValueSpec& s : im.inputs) names += fmt::format("{}'{}'", names.empty() ? "" : ", ", s.name);
    fail(kOp, "the model takes {} input{} ({}); got {}", im.inputs.size(), im.inputs.size() == 1 ? "" : "s", names,
         inputs.size());
  }
  std::vector<Tensor> values = im.constants;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ValueSpec& spec = im.inputs[i];
    const Tensor& x = inputs[i];
    if (!x.defined()) fail(kOp, "input '{}' is undefined", spec.name);
    bool ok = spec.elem_type == 0 || x.dtype() == dtype_of_data_type(spec.elem_type);
    if (spec.has_shape) {
      ok = ok && x.dim() == int(spec.dims.size());
      for (size_t d = 0; ok && d < spec.dims.size(); ++d) ok = spec.dims[d] < 0 || spec.dims[d] == x.size(int64_t(d));
    }
    if (!ok)
      fail(kOp, "input '{}' must be {}; got {} {}", spec.name, spec_string(spec), dtype_name(x.dtype()), x.shape());
    values[size_t(im.input_slots[i])] = x;
  }
  std::vector<Tensor> args;
  const detail::TrainingScope mode(is_training());
  for (const Impl::Step& step : im.steps) {
    args.clear();
    for (int s : step.inputs) args.push_back(s >= 0 ? values[size_t(s)] : Tensor());
    std::vector<Tensor> outs;
    try {
      outs = step.kernel(args);
    } catch (const Error& e) {
      throw Error(kOp, step.label + ": " + e.what());
    }
    for (size_t k = 0; k < step.outputs.size(); ++k) {
      if (step.outputs[k] < 0) continue;
      if (k >= outs.size()) fail(kOp, "{}: output {} was not produced", step.label, k);
      values[size_t(step.outputs[k])] = std::move(outs[k]);
    }
    for (int s : step.release) values[size_t(s)] = Tensor();
  }
  std::vector<Tensor> result;
  for (int s : im.output_slots) result.push_back(values[size_t(s)]);
  return result;
} catch (const Error& e) {
  rethrow_one_line(e);
}

Tensor OnnxModule::forward(const Tensor& input) {
  if (impl_->inputs.size() != 1)
    fail(kOp, "forward takes one input but the model has {}; use run()", impl_->inputs.size());
  return run({input}).at(0);
}

const std::vector<ValueSpec>& OnnxModule::inputs() const { return impl_->inputs; }
const std::vector<ValueSpec>& OnnxModule::outputs() const { return impl_->outputs; }
int64_t OnnxModule::opset_version() const { return impl_->opset; }

std::shared_ptr<OnnxModule> import_model(const std::filesystem::path& path) {
  const ModelProto model = load_model(path);
  try {
    return std::make_shared<OnnxModule>(model, path.parent_path());
  } catch (const Error& e) {
    // Name the file in node and initializer errors: "[onnx] hub/ae.onnx: tensor 'W': raw_data has ...".
    const std::string file = path.string();
    std::string_view message = e.what();
    message.remove_prefix(std::min(message.size(), e.op().size() + 3));  // "[op] "
    if (message.find(file) != std::string_view::npos) throw;
    throw Error(e.op(), fmt::format("{}: {}", file, message));
  }
}

}  // namespace latent::onnx
