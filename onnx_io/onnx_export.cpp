// Export to ONNX by tracing (see onnx_export.h and docs/onnx.md, "Export").
//
// Pipeline: run the function under a trace::Tracer (eval mode, no-grad) -> records (op name, tensor
// inputs, output, attributes) -> the rule for each op name in the export table (onnx_op_tables.cpp;
// rules in onnx_export_rules.cpp) -> GraphProto. Tensors that a record reads but no earlier record
// produced are resolved (GraphBuilder, onnx_export_graph.h), in order, as: a graph input, an alias
// (same storage, offset, shape and strides) of a traced value, a parameter or buffer of the module
// (initializer under its state_dict name), or a constant (initializer "const_K" with its values).
#include "onnx_export.h"

#include <optional>
#include <set>

#include "../autograd/grad_mode.h"
#include "../models/ae/autoencoder.h"
#include "../ops/elementwise.h"
#include "../ops/join.h"
#include "../ops/random.h"
#include "../ops/reduce.h"
#include "../ops/shape_ops.h"
#include "onnx_export_graph.h"

namespace latent::onnx {
using namespace exporter;
namespace {

/// ONNX's IR version for a default-domain opset (onnx/helper.py VERSION_TABLE).
int64_t ir_version_for(int64_t opset) { return opset <= 14 ? 7 : 8; }

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
}  // namespace

namespace exporter {
std::string GraphBuilder::emit(const Record& r, const Record* r2, const std::vector<std::string>& in) {
  const ExportRule* rule = export_rule(r.op);
  if (!rule || !rule->emit) unmapped(r, rule ? rule->not_exportable : nullptr);
  return rule->emit(Emit{*this, r, r2, in});
}
}  // namespace exporter

namespace {

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
