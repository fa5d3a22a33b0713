// ONNX export (onnx_io/onnx_export.h) and the trace hook under it (ops/trace.h): what the hook
// records (and what it leaves out), the node types, attributes, initializer names, opset and value
// infos of exported graphs, every autoencoder family model and part, a custom module, and the
// errors. The exported models are run by ONNX Runtime and checked by onnx.checker in
// tests/onnx_runtime_check.sh, which runs the "write exports" case below with
// LATENT_ONNX_EXPORT_DIR set (inputs and latent's outputs as TensorProto .pb files).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "helpers.h"
#include "latent.h"
#include "onnx_io/onnx_export.h"
#include "onnx_io/onnx_export_graph.h"
#include "onnx_io/onnx_import.h"
#include "onnx_io/onnx_model.h"
#include "onnx_io/onnx_tensor.h"
#include "ops/trace.h"

using namespace latent;
using namespace latent::onnx;
using latent::testing::check_values;
namespace fs = std::filesystem;

namespace {

std::multiset<std::string> op_types(const ModelProto& m) {
  std::multiset<std::string> out;
  for (const NodeProto& n : m.graph.node) out.insert(n.op_type);
  return out;
}

std::vector<std::string> initializer_names(const ModelProto& m) {
  std::vector<std::string> out;
  for (const TensorProto& t : m.graph.initializer) out.push_back(t.name);
  return out;
}

bool has_initializer(const ModelProto& m, const std::string& name) {
  const auto names = initializer_names(m);
  return std::find(names.begin(), names.end(), name) != names.end();
}

const NodeProto& first_node(const ModelProto& m, const std::string& op_type) {
  for (const NodeProto& n : m.graph.node)
    if (n.op_type == op_type) return n;
  FAIL("no node of type " << op_type);
  return m.graph.node.front();
}

const AttributeProto* find_attr(const NodeProto& n, const std::string& name) {
  for (const AttributeProto& a : n.attribute)
    if (a.name == name) return &a;
  return nullptr;
}

const TensorProto& initializer(const ModelProto& m, const std::string& name) {
  for (const TensorProto& t : m.graph.initializer)
    if (t.name == name) return t;
  FAIL("no initializer " << name);
  return m.graph.initializer.front();
}

/// Every node input is a graph input, an initializer or an earlier node's output (topological order),
/// and every graph output is produced.
void check_wellformed(const ModelProto& m) {
  std::set<std::string> known;
  for (const ValueInfoProto& v : m.graph.input) known.insert(v.name);
  for (const TensorProto& t : m.graph.initializer) known.insert(t.name);
  for (const NodeProto& n : m.graph.node) {
    for (const std::string& i : n.input) {
      INFO("node " << n.name << " input " << i);
      CHECK((i.empty() || known.count(i) == 1));
    }
    for (const std::string& o : n.output) {
      INFO("node " << n.name << " output " << o);
      CHECK(known.count(o) == 0);
      known.insert(o);
    }
  }
  for (const ValueInfoProto& v : m.graph.output) CHECK(known.count(v.name) == 1);
  // Serialized and parsed back, the model is the same.
  CHECK(decode_model(encode_model(m)) == m);
}

std::string dims_text(const ValueInfoProto& v) {
  std::vector<std::string> out;
  for (const auto& d : v.type->tensor_type->shape->dim) out.push_back(d.dim_param ? *d.dim_param : fmt::format("{}", *d.dim_value));
  return fmt::format("[{}]", fmt::join(out, ", "));
}

models::AEConfig small_config(const std::string& model) {
  models::AEConfig c;
  c.model = model;
  const bool conv = model == "conv" || model == "conv-vae";
  c.input_dim = conv ? 64 : 20;
  c.image_height = c.image_width = 8;
  c.latent_dim = conv ? 6 : 4;
  if (!conv) c.hidden = {12};
  return c;
}

/// Gives batch-norm buffers and affine parameters non-trivial values (as after training).
void perturb_batch_norm(nn::Module& model, uint64_t seed) {
  Generator gen(seed);
  NoGradGuard no_grad;
  for (auto& [name, t] : model.state_dict()) {
    const bool bn_stat = name.find("running_mean") != std::string::npos || name.find("running_var") != std::string::npos;
    if (!bn_stat || t.dtype() != kFloat32) continue;
    Tensor v = rand(t.shape(), kFloat32, &gen);
    if (name.find("running_var") != std::string::npos) v = v + 0.5;
    else v = v - 0.5;
    t.copy_(v);
  }
}

struct FamilyCase {
  std::string name;
  models::AEConfig config;
};

std::vector<FamilyCase> family_cases() {
  std::vector<FamilyCase> cases;
  auto add = [&](const std::string& name, models::AEConfig c) { cases.push_back({name, std::move(c)}); };
  add("linear", small_config("linear"));
  for (const char* act : {"relu", "leaky_relu", "sigmoid", "tanh", "elu", "gelu", "softplus"}) {
    models::AEConfig c = small_config("deep");
    c.activation = act;
    add(fmt::format("deep-{}", act), c);
  }
  models::AEConfig tied = small_config("deep");
  tied.tied = true;
  add("deep-tied", tied);
  add("sparse-l1", small_config("sparse"));
  models::AEConfig kl = small_config("sparse");
  kl.sparsity = "kl";
  add("sparse-kl", kl);
  add("denoising", small_config("denoising"));
  add("vae", small_config("vae"));
  for (const std::string& variant : models::vae_variant_names()) add(variant, small_config(variant));
  for (const char* variant : {"strided", "pool"})
    for (bool bn : {false, true})
      for (const char* model : {"conv", "conv-vae"}) {
        models::AEConfig c = small_config(model);
        c.conv_variant = variant;
        c.batch_norm = bn;
        add(fmt::format("{}-{}{}", model, variant, bn ? "-bn" : ""), c);
      }
  return cases;
}

std::shared_ptr<models::Autoencoder> make_model(const models::AEConfig& c, uint64_t seed) {
  manual_seed(seed);
  auto model = models::make_autoencoder(c);
  perturb_batch_norm(*model, seed + 100);
  return model;
}

/// A user module mixing layers and ops in its own forward: (N, 12) -> (N, 3).
struct CustomNet : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2;
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::BatchNorm2d> bn;
  Tensor scale;
  CustomNet() : Module("CustomNet") {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(12, 16));
    conv = register_module("conv", std::make_shared<nn::Conv2d>(1, 2, 3, 1, 1));
    bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(2));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(2 * 4 * 4 + 12, 3));
    scale = register_parameter("scale", full({3}, 0.5));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = tanh(fc1->forward(x));                         // (N, 16)
    Tensor maps = relu(bn->forward(conv->forward(h.view({-1, 1, 4, 4}))));
    Tensor pooled = avg_pool2d(maps, 1);                      // (N, 2, 4, 4)
    Tensor flat = flatten(pooled, 1);                         // (N, 32)
    Tensor joined = cat({flat, sqrt(abs(x) + 1.0) * 0.5}, 1);  // (N, 44)
    Tensor y = fc2->forward(joined);                          // (N, 3)
    Tensor t = transpose(y, 0, 1);                            // (3, N)
    Tensor centered = transpose(t - mean(t, {1}, true), 0, 1);
    Tensor s = softmax(centered * scale + exp(-square(y)), 1);
    return clamp(s + log(s + 1e-3) / 10.0 - pow(2.0, y) / 100.0 + sum(y, {1}, true) * 0.01, -5.0, 5.0) / 1.5;
  }
};

/// Ops latent composes from others but exports as one node each: eval batch norm (with and
/// without weight and bias), pad in its three modes, softmax and log_softmax.
struct CompositeNet : nn::Module {
  std::shared_ptr<nn::BatchNorm2d> bn;
  Tensor mean1, var1;
  CompositeNet() : Module("CompositeNet") {
    bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(2));
    mean1 = register_buffer("mean1", full({36}, 0.25));
    var1 = register_buffer("var1", full({36}, 2.0));
  }
  Tensor forward(const Tensor& x) override {                          // x: (N, 2, 3, 3)
    Tensor h = bn->forward(x);
    h = pad(h, {1, 1, 1, 1}, PadMode::Reflect);                       // (N, 2, 5, 5)
    h = pad(h, {0, 2}, PadMode::Replicate);                           // (N, 2, 5, 7)
    h = pad(h, {1, 0, 2, -1}, PadMode::Constant, 0.5);                // (N, 2, 6, 8): grows and crops
    h = avg_pool2d(h, 2);                                             // (N, 2, 3, 4)
    Tensor flat = flatten(h, 1);                                      // (N, 24)
    Tensor wide = cat({flat, pad(flat, {0, -12})}, 1);                // (N, 36)
    Tensor normed = batch_norm(wide, mean1, var1, {}, {}, false, 0.1, 1e-3);
    return softmax(normed, 1) + log_softmax(normed * 0.5, -1) * 0.1;
  }
};

/// Writes a model with its input and latent's outputs as TensorProto files into dir/name/.
void write_case(const fs::path& dir, const std::string& name, const ModelProto& m, const std::vector<Tensor>& inputs,
                const std::vector<Tensor>& outputs) {
  const fs::path d = dir / name;
  fs::create_directories(d);
  save_model(m, d / "model.onnx");
  auto write_tensor = [&](const std::string& file, const std::string& tensor_name, const Tensor& t) {
    std::vector<int64_t> dims(t.shape().begin(), t.shape().end());
    std::vector<float> values = t.to_vector<float>();
    TensorProto p = make_tensor<float>(tensor_name, dims, values);
    std::string bytes = encode_message(p);
    std::ofstream(d / file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  for (size_t i = 0; i < inputs.size(); ++i) write_tensor(fmt::format("input_{}.pb", i), m.graph.input[i].name, inputs[i]);
  for (size_t i = 0; i < outputs.size(); ++i)
    write_tensor(fmt::format("output_{}.pb", i), m.graph.output[i].name, outputs[i]);
}

}  // namespace

TEST_SUITE("onnx_export") {

TEST_CASE("trace records top-level ops with attributes, not ops inside ops") {
  Tensor x = rand({2, 1, 4, 4});
  Tensor w = rand({3, 1, 3, 3}), b = rand({3});
  trace::Tracer tracer;
  Tensor y;
  {
    trace::TraceGuard guard(tracer);
    y = relu(conv2d(x, w, b, 1, 1));
    y = reshape(y, {2, -1});
    y = leaky_relu(y, 0.2);
  }
  Tensor untraced = relu(y);  // after the guard: not recorded
  REQUIRE(tracer.records.size() == 4);
  CHECK(std::string(tracer.records[0].op) == "conv2d");
  CHECK(tracer.records[0].inputs.size() == 3);
  CHECK(tracer.records[0].inputs[1].is_same(w));
  REQUIRE(tracer.records[0].attrs.size() == 2);
  CHECK(tracer.records[0].attrs[0].kind == trace::Attr::Kind::Conv2d);
  {  // the Conv2dParams struct itself, read by field (stride, padding, dilation, output_padding, groups)
    const Conv2dParams& p = tracer.records[0].attrs[0].get<Conv2dParams>();
    CHECK(std::vector<int64_t>{p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.dilation[0], p.dilation[1],
                               p.output_padding[0], p.output_padding[1], p.groups} ==
          std::vector<int64_t>{1, 1, 1, 1, 1, 1, 0, 0, 1});
    CHECK_THROWS_WITH_SUBSTR(tracer.records[0].attrs[0].get<Pool2dParams>(), "[trace] attribute of kind");
  }
  CHECK(tracer.records[0].attrs[1].ints == std::vector<int64_t>{2, 3, 4, 4});  // output shape
  CHECK(std::string(tracer.records[1].op) == "relu");
  CHECK(tracer.records[1].inputs[0].is_same(tracer.records[0].output));
  CHECK(std::string(tracer.records[2].op) == "view");
  CHECK(tracer.records[2].attrs[0].ints == std::vector<int64_t>{2, 48});
  CHECK(tracer.records[2].attrs[1].s == "reshape");
  CHECK(tracer.records[3].attrs[0].kind == trace::Attr::Kind::Float);
  CHECK(tracer.records[3].attrs[0].f == doctest::Approx(0.2));
  CHECK(tracer.records[3].output.is_same(y));
  CHECK_FALSE(trace::maybe_tracing());

  // cat goes through apply_list; pooling records its Pool2dParams.
  trace::Tracer t2;
  {
    trace::TraceGuard guard(t2);
    Tensor c = cat({x, x}, 1);
    max_pool2d(c, 2);
  }
  REQUIRE(t2.records.size() == 2);
  CHECK(std::string(t2.records[0].op) == "cat");
  CHECK(t2.records[0].inputs.size() == 2);
  CHECK(t2.records[0].attrs[0].i == 1);
  CHECK(t2.records[1].attrs[0].kind == trace::Attr::Kind::Pool2d);
  {  // kernel, stride, padding, dilation, ceil_mode, count_include_pad
    const Pool2dParams& p = t2.records[1].attrs[0].get<Pool2dParams>();
    CHECK(std::vector<int64_t>{p.kernel[0], p.kernel[1], p.stride[0], p.stride[1], p.padding[0], p.padding[1],
                               p.dilation[0], p.dilation[1], p.ceil_mode ? 1 : 0, p.count_include_pad ? 1 : 0} ==
          std::vector<int64_t>{2, 2, 2, 2, 0, 0, 1, 1, 0, 1});
  }
  CHECK(t2.records[1].attrs[2].kind == trace::Attr::Kind::None);  // the indices output slot
}

TEST_CASE("tripwire: every op the trace can record has an export rule or a reason it has none") {
  // op_registry() lists every op struct and composite linked in (ops/op_registry.h); the export
  // table is onnx_io/onnx_op_tables.cpp.
  const std::vector<OpInfo> ops = op_registry().ops();
  CHECK(ops.size() > 60);
  for (const OpInfo& op : ops) {
    const onnx::exporter::ExportRule* rule = onnx::exporter::export_rule(op.name);
    CHECK_MESSAGE(rule != nullptr, "op '" << op.name << "' has no row in the export table (onnx_io/onnx_op_tables.cpp): "
                                  "add a rule, or the reason it cannot be exported");
    if (rule) CHECK_MESSAGE((rule->emit != nullptr) != (rule->not_exportable != nullptr), op.name);
  }
  for (const std::string& name : onnx::exporter::export_rule_names())
    CHECK_MESSAGE(op_registry().contains(name), "the export table names '" << name << "', which no op carries");
}

TEST_CASE("a dense autoencoder exports as Gemm/Relu/Sigmoid with state_dict initializers") {
  auto model = make_model(small_config("deep"), 1);
  model->train();
  ModelProto m = export_autoencoder(*model, AutoencoderPart::Full);
  CHECK(model->is_training());  // the mode is restored
  check_wellformed(m);
  CHECK(m.ir_version == 8);
  REQUIRE(m.opset_import.size() == 1);
  CHECK(m.opset_import[0].domain.empty());
  CHECK(m.opset_import[0].version == 17);
  CHECK(m.producer_name == "latent");
  CHECK(op_types(m) == std::multiset<std::string>{"Gemm", "Gemm", "Gemm", "Gemm", "Relu", "Relu", "Relu", "Sigmoid"});
  std::vector<std::string> names = initializer_names(m);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"decoder.0.bias", "decoder.0.weight", "decoder.2.bias", "decoder.2.weight",
                                          "encoder.0.bias", "encoder.0.weight", "encoder.2.bias", "encoder.2.weight"});
  const NodeProto& gemm = first_node(m, "Gemm");
  CHECK(gemm.input == std::vector<std::string>{"input", "encoder.0.weight", "encoder.0.bias"});
  REQUIRE(find_attr(gemm, "transB"));
  CHECK(*find_attr(gemm, "transB")->i == 1);
  // The weights are the model's values.
  const TensorProto& w = initializer(m, "encoder.0.weight");
  CHECK(w.dims == std::vector<int64_t>{12, 20});
  CHECK(tensor_to_vector<float>(w) == model->named_parameters()[0].second.to_vector<float>());
  REQUIRE(m.graph.input.size() == 1);
  CHECK(m.graph.input[0].name == "input");
  CHECK(dims_text(m.graph.input[0]) == "[batch, 20]");
  REQUIRE(m.graph.output.size() == 1);
  CHECK(m.graph.output[0].name == "reconstruction");
  CHECK(dims_text(m.graph.output[0]) == "[batch, 20]");
  CHECK(m.graph.node.back().output[0] == "reconstruction");
}

TEST_CASE("opsets 13 to 16: ir_version and ReduceSum axes as an input, ReduceMean axes as an attribute") {
  struct Net : nn::Module {
    Tensor forward(const Tensor& x) override { return sum(x, {1}, false) + mean(x, {1}, false); }
  } net;
  for (int64_t opset : {13, 14, 15, 16, 17}) {
    CAPTURE(opset);
    ExportOptions o;
    o.opset = opset;
    ModelProto m = export_module(net, {rand({3, 5})}, o);
    check_wellformed(m);
    CHECK(m.opset_import[0].version == opset);
    CHECK(m.ir_version == (opset <= 14 ? 7 : 8));
    const NodeProto& rs = first_node(m, "ReduceSum");
    CHECK(rs.input.size() == 2);
    CHECK(tensor_to_vector<int64_t>(initializer(m, rs.input[1])) == std::vector<int64_t>{1});
    const NodeProto& rm = first_node(m, "ReduceMean");
    CHECK(rm.input.size() == 1);
    REQUIRE(find_attr(rm, "axes"));
    CHECK(find_attr(rm, "axes")->ints == std::vector<int64_t>{1});
    CHECK(*find_attr(rm, "keepdims")->i == 0);
    CHECK(dims_text(m.graph.output[0]) == "[batch]");
  }
}

TEST_CASE("conv models: Conv/ConvTranspose attributes, batch-preserving Reshape, pooling and Resize") {
  models::AEConfig c = small_config("conv");
  c.batch_norm = true;
  auto model = make_model(c, 2);
  ModelProto m = export_autoencoder(*model, AutoencoderPart::Full);
  check_wellformed(m);
  auto types = op_types(m);
  CHECK(types.count("Conv") == 2);
  CHECK(types.count("ConvTranspose") == 2);
  CHECK(types.count("Reshape") >= 2);
  const NodeProto& conv = first_node(m, "Conv");
  CHECK(conv.input == std::vector<std::string>{conv.input[0], "encoder.0.weight", "encoder.0.bias"});
  CHECK(find_attr(conv, "strides")->ints == std::vector<int64_t>{2, 2});
  CHECK(find_attr(conv, "pads")->ints == std::vector<int64_t>{1, 1, 1, 1});
  CHECK(find_attr(conv, "kernel_shape")->ints == std::vector<int64_t>{3, 3});
  CHECK(*find_attr(conv, "group")->i == 1);
  const NodeProto& deconv = first_node(m, "ConvTranspose");
  CHECK(find_attr(deconv, "output_padding")->ints == std::vector<int64_t>{1, 1});
  // The first Reshape views (N, 64) as (N, 1, 8, 8): the batch is -1.
  const NodeProto& reshape = first_node(m, "Reshape");
  CHECK(tensor_to_vector<int64_t>(initializer(m, reshape.input[1])) == std::vector<int64_t>{-1, 1, 8, 8});
  // Batch norm in eval reads the running statistics (initializers under their names).
  CHECK(has_initializer(m, "encoder.1.running_mean"));
  CHECK(has_initializer(m, "encoder.1.running_var"));
  CHECK(has_initializer(m, "encoder.1.weight"));
  CHECK_FALSE(has_initializer(m, "encoder.1.num_batches_tracked"));

  models::AEConfig p = small_config("conv");
  p.conv_variant = "pool";
  auto pooled = make_model(p, 3);
  ModelProto mp = export_autoencoder(*pooled, AutoencoderPart::Full, {}, std::nullopt, 3);
  check_wellformed(mp);
  const NodeProto& pool = first_node(mp, "MaxPool");
  CHECK(find_attr(pool, "kernel_shape")->ints == std::vector<int64_t>{2, 2});
  CHECK(find_attr(pool, "strides")->ints == std::vector<int64_t>{2, 2});
  const NodeProto& resize = first_node(mp, "Resize");
  CHECK(find_attr(resize, "mode")->s == "nearest");
  CHECK(tensor_to_vector<float>(initializer(mp, resize.input[2])) == std::vector<float>{1, 1, 2, 2});
}

TEST_CASE("autoencoder parts: encoder, decoder, anomaly; VAEs export mu and logvar") {
  auto vae = make_model(small_config("vae"), 4);
  ModelProto enc = export_autoencoder(*vae, AutoencoderPart::Encoder);
  check_wellformed(enc);
  REQUIRE(enc.graph.output.size() == 2);
  CHECK(enc.graph.output[0].name == "mu");
  CHECK(enc.graph.output[1].name == "logvar");
  CHECK(dims_text(enc.graph.output[0]) == "[batch, 4]");
  CHECK(has_initializer(enc, "fc21.weight"));
  CHECK(has_initializer(enc, "fc22.weight"));
  CHECK_FALSE(has_initializer(enc, "fc3.weight"));

  ModelProto dec = export_autoencoder(*vae, AutoencoderPart::Decoder);
  check_wellformed(dec);
  CHECK(dec.graph.input[0].name == "code");
  CHECK(dims_text(dec.graph.input[0]) == "[batch, 4]");
  CHECK(dims_text(dec.graph.output[0]) == "[batch, 20]");
  CHECK_FALSE(has_initializer(dec, "fc1.weight"));

  ModelProto full = export_autoencoder(*vae, AutoencoderPart::Full);
  CHECK_FALSE(has_initializer(full, "fc22.weight"));  // z = mu: logvar is not computed

  auto deep = make_model(small_config("deep"), 5);
  ModelProto an = export_autoencoder(*deep, AutoencoderPart::Anomaly, {}, 0.0125);
  check_wellformed(an);
  CHECK(an.graph.output[0].name == "error");
  CHECK(dims_text(an.graph.output[0]) == "[batch]");
  std::map<std::string, std::string> meta;
  for (const auto& e : an.metadata_props) meta[e.key] = e.value;
  CHECK(meta["anomaly_threshold"] == "0.0125");
  CHECK(meta["part"] == "anomaly");
  CHECK(meta["model"] == "deep");
  CHECK(op_types(an).count("ReduceMean") == 1);

  auto conv = make_model(small_config("conv"), 6);
  ModelProto cdec = export_autoencoder(*conv, AutoencoderPart::Decoder);
  CHECK(dims_text(cdec.graph.input[0]) == "[batch, 128]");  // 32 maps of 2x2

  CHECK(parse_part("encoder") == AutoencoderPart::Encoder);
  CHECK_THROWS_WITH(parse_part("middle"), "[onnx export] unknown part 'middle' (full, encoder, decoder, anomaly)");
}

TEST_CASE("every autoencoder family model exports whole and as parts, at opsets 13 and 17") {
  for (const FamilyCase& fc : family_cases()) {
    CAPTURE(fc.name);
    auto model = make_model(fc.config, 7);
    for (AutoencoderPart part : {AutoencoderPart::Full, AutoencoderPart::Encoder, AutoencoderPart::Decoder,
                                 AutoencoderPart::Anomaly})
      for (int64_t opset : {13, 17}) {
        CAPTURE(part_name(part));
        CAPTURE(opset);
        ExportOptions o;
        o.opset = opset;
        ModelProto m = export_autoencoder(*model, part, o, 0.5);
        check_wellformed(m);
        CHECK(m.opset_import[0].version == opset);
        // Every initializer that is not a constant is a state_dict entry.
        std::set<std::string> state;
        for (const auto& [name, t] : model->state_dict()) state.insert(name);
        for (const TensorProto& t : m.graph.initializer)
          if (t.name.rfind("const", 0) != 0) CHECK(state.count(t.name) == 1);
      }
  }
}

TEST_CASE("every autoencoder family export re-imports to the module's outputs (every part, opsets 13 and 17)") {
  // The values check of the ordinary suite (ONNX Runtime's is tests/onnx_runtime_check.sh): each
  // export saved, loaded with import_model and run at batch 5 (traced at 2) against the module.
  latent::testing::TempDir dir;
  int compared = 0;
  for (const FamilyCase& fc : family_cases()) {
    CAPTURE(fc.name);
    auto model = make_model(fc.config, 41);
    model->eval();
    for (AutoencoderPart part : {AutoencoderPart::Full, AutoencoderPart::Encoder, AutoencoderPart::Decoder,
                                 AutoencoderPart::Anomaly})
      for (int64_t opset : {13, 17}) {
        CAPTURE(part_name(part));
        CAPTURE(opset);
        ExportOptions o;
        o.opset = opset;
        const ModelProto m = export_autoencoder(*model, part, o, 0.25);
        const fs::path path = dir / fmt::format("{}-{}-{}.onnx", fc.name, part_name(part), opset);
        save_model(m, path);
        auto imported = import_model(path);
        CHECK(imported->opset_version() == opset);
        const std::vector<Tensor> inputs = autoencoder_example_inputs(*model, part, 5, 78);
        std::vector<Tensor> expected, got;
        {
          NoGradGuard no_grad;
          expected = autoencoder_part_function(*model, part)(inputs);
          got = imported->run(inputs);
        }
        REQUIRE(got.size() == expected.size());
        REQUIRE(got.size() == m.graph.output.size());
        for (size_t i = 0; i < got.size(); ++i) {
          CAPTURE(m.graph.output[i].name);
          CHECK(got[i].shape() == expected[i].shape());
          CHECK(got[i].size(0) == 5);
          check_values(got[i], expected[i].to_vector<double>(), 1e-5, 1e-4);
        }
        ++compared;
      }
  }
  CHECK(compared == static_cast<int>(family_cases().size()) * 8);
}

TEST_CASE("a float64 model exports DOUBLE initializers, constants and value infos") {
  models::AEConfig c = small_config("deep");
  c.activation = "gelu";  // scalar constants in the graph
  auto model = make_model(c, 12);
  model->to(kFloat64);
  ModelProto m = export_autoencoder(*model, AutoencoderPart::Anomaly);
  check_wellformed(m);
  CHECK(m.graph.input[0].type->tensor_type->elem_type == static_cast<int32_t>(DataType::Double));
  CHECK(m.graph.output[0].type->tensor_type->elem_type == static_cast<int32_t>(DataType::Double));
  for (const TensorProto& t : m.graph.initializer) {
    CAPTURE(t.name);
    // Shapes and axes are INT64; every value tensor follows the model's dtype.
    CHECK((t.data_type == static_cast<int32_t>(DataType::Double) || t.data_type == static_cast<int32_t>(DataType::Int64)));
  }
  CHECK(initializer(m, "encoder.0.weight").data_type == static_cast<int32_t>(DataType::Double));
}

TEST_CASE("tied decoders read the encoder weights through a Transpose") {
  models::AEConfig c = small_config("deep");
  c.tied = true;
  auto model = make_model(c, 8);
  ModelProto m = export_autoencoder(*model, AutoencoderPart::Full);
  check_wellformed(m);
  const NodeProto& tr = first_node(m, "Transpose");
  CHECK(tr.input[0] == "encoder.2.weight");
  CHECK(find_attr(tr, "perm")->ints == std::vector<int64_t>{1, 0});
  CHECK_FALSE(has_initializer(m, "decoder.0.weight"));
  CHECK(has_initializer(m, "decoder.0.bias"));
}

TEST_CASE("a custom module with its own forward exports") {
  manual_seed(9);
  CustomNet net;
  perturb_batch_norm(net, 10);
  ModelProto m = export_module(net, {rand({3, 12})});
  check_wellformed(m);
  auto types = op_types(m);
  for (const char* t : {"Gemm", "Tanh", "Conv", "Relu", "AveragePool", "Concat", "Sqrt", "Abs", "Transpose",
                        "ReduceMean", "BatchNormalization", "Softmax", "Exp", "Log", "Pow", "Clip", "Div", "ReduceSum"})
    CHECK_MESSAGE(types.count(t) >= 1, std::string(t));
  CHECK(has_initializer(m, "scale"));
  CHECK(has_initializer(m, "bn.running_var"));
  CHECK(dims_text(m.graph.output[0]) == "[batch, 3]");
  // Without a dynamic batch every size is concrete.
  ExportOptions fixed;
  fixed.dynamic_batch = false;
  ModelProto s = export_module(net, {rand({3, 12})}, fixed);
  check_wellformed(s);
  CHECK(dims_text(s.graph.input[0]) == "[3, 12]");
}

TEST_CASE("batch norm, pad, softmax and log_softmax export as one node each and re-import to the same values") {
  manual_seed(31);
  CompositeNet net;
  perturb_batch_norm(net, 32);
  net.eval();
  latent::testing::TempDir dir;
  for (int64_t opset : {13, 17}) {
    CAPTURE(opset);
    ExportOptions o;
    o.opset = opset;
    ModelProto m = export_module(net, {rand({2, 2, 3, 3})}, o);
    check_wellformed(m);
    std::map<std::string, int> count;
    for (const NodeProto& n : m.graph.node) ++count[n.op_type];
    CHECK(count["BatchNormalization"] == 2);
    CHECK(count["Pad"] == 4);
    CHECK(count["Softmax"] == 1);
    CHECK(count["LogSoftmax"] == 1);
    CHECK(count["ReduceMax"] == 0);  // the pieces of softmax are not written
    CHECK(count["Sqrt"] == 0);       // nor those of batch norm
    std::vector<const NodeProto*> pads;
    for (const NodeProto& n : m.graph.node)
      if (n.op_type == "Pad") pads.push_back(&n);
    REQUIRE(pads.size() == 4);
    const auto pads_of = [&](const NodeProto& n) { return tensor_from_proto(initializer(m, n.input[1])).to_vector<int64_t>(); };
    // ONNX order: all begins, then all ends. latent's (1, 1, 1, 1) pads dims 3 and 2; (0, 2) dim 3;
    // (1, 0, 2, -1) dim 3 by (1, 0) and dim 2 by (2, -1), with fill value 0.5.
    CHECK(find_attr(*pads[0], "mode")->s == "reflect");
    CHECK(pads_of(*pads[0]) == std::vector<int64_t>{0, 0, 1, 1, 0, 0, 1, 1});
    CHECK(find_attr(*pads[1], "mode")->s == "edge");
    CHECK(pads_of(*pads[1]) == std::vector<int64_t>{0, 0, 0, 0, 0, 0, 0, 2});
    CHECK(find_attr(*pads[2], "mode")->s == "constant");
    CHECK(pads_of(*pads[2]) == std::vector<int64_t>{0, 0, 2, 1, 0, 0, -1, 0});
    REQUIRE(pads[2]->input.size() == 3);
    CHECK(tensor_from_proto(initializer(m, pads[2]->input[2])).item<double>() == 0.5);
    CHECK(pads[3]->input.size() == 2);  // fill value 0: the input is left out
    const std::string path = dir / fmt::format("composite{}.onnx", opset);
    save_model(m, path);
    auto imported = import_model(path);
    Tensor x = rand({5, 2, 3, 3});
    Tensor expected, got;
    {
      NoGradGuard no_grad;
      expected = net.forward(x);
      got = imported->forward(x);
    }
    CHECK(got.shape() == expected.shape());
    check_values(got, expected.to_vector<double>(), 1e-5, 1e-5);
  }
}

TEST_CASE("errors: opset, unmapped ops, in-place changes, data-dependent constants, names") {
  auto model = make_model(small_config("linear"), 11);
  ExportOptions o;
  o.opset = 12;
  CHECK_THROWS_WITH(export_autoencoder(*model, AutoencoderPart::Full, o),
                    "[onnx export] opset 12 is not supported: expected 13 to 17");
  o.opset = 18;
  CHECK_THROWS_WITH(export_autoencoder(*model, AutoencoderPart::Full, o),
                    "[onnx export] opset 18 is not supported: expected 13 to 17");

  struct Unmapped : nn::Module {
    Tensor forward(const Tensor& x) override {
      return scatter_add(x, 1, zeros({x.size(0), 1}, kInt64), x.narrow(1, 0, 1));
    }
  } unmapped;
  CHECK_THROWS_WITH_SUBSTR(export_module(unmapped, {rand({2, 3})}), "[onnx export] op 'scatter_add' has no ONNX mapping (called from the forward "
                                         "of Unmapped, traced op #");

  struct InPlace : nn::Module {
    Tensor forward(const Tensor& x) override {
      Tensor y = relu(x);
      y.mul_(2.0);
      return y;
    }
  } in_place;
  CHECK_THROWS_WITH_SUBSTR(export_module(in_place, {rand({2, 3})}), "the result of 'relu' (called from the forward of InPlace, traced op #0) was "
                                         "modified in place");

  struct DataDependent : nn::Module {
    Tensor forward(const Tensor& x) override { return x * gt(x, 0.5); }  // comparisons are not traced ops
  } data_dependent;
  CHECK_THROWS_WITH_SUBSTR(export_module(data_dependent, {rand({2, 3})}), "was not computed by traced ops");

  struct Two : nn::Module {
    Tensor forward(const Tensor& x) override { return x + 1.0; }
  } two;
  CHECK_THROWS_WITH_SUBSTR(export_module(two, {rand({2, 3}), rand({2, 3})}), "needs exactly one example input; got 2");
  ExportOptions same;
  same.input_names = {"x"};
  same.output_names = {"x"};
  CHECK_THROWS_WITH_SUBSTR(export_module(two, {rand({2, 3})}, same), "input and output names must all be distinct");
  // An output that is an input: an Identity node.
  struct Id : nn::Module {
    Tensor forward(const Tensor& x) override { return x; }
  } id;
  ModelProto m = export_module(id, {rand({2, 3})});
  check_wellformed(m);
  CHECK(op_types(m) == std::multiset<std::string>{"Identity"});
}

TEST_CASE("write exports for onnx_runtime_check (LATENT_ONNX_EXPORT_DIR)") {
  const char* env = std::getenv("LATENT_ONNX_EXPORT_DIR");
  if (!env || !*env) {
    MESSAGE("LATENT_ONNX_EXPORT_DIR is not set: nothing written (tests/onnx_runtime_check.sh sets it)");
    return;
  }
  const fs::path dir(env);
  fs::create_directories(dir);
  int written = 0;
  // Evaluated at batch 5 while traced at batch 2: checks the dynamic batch too.
  for (const FamilyCase& fc : family_cases()) {
    auto model = make_model(fc.config, 21);
    model->eval();
    for (AutoencoderPart part : {AutoencoderPart::Full, AutoencoderPart::Encoder, AutoencoderPart::Decoder,
                                 AutoencoderPart::Anomaly})
      for (int64_t opset : {13, 17}) {
        ExportOptions o;
        o.opset = opset;
        ModelProto m = export_autoencoder(*model, part, o, 0.25);
        std::vector<Tensor> inputs = autoencoder_example_inputs(*model, part, 5, 77);
        std::vector<Tensor> outputs;
        {
          NoGradGuard no_grad;
          outputs = autoencoder_part_function(*model, part)(inputs);
        }
        write_case(dir, fmt::format("{}-{}-opset{}", fc.name, part_name(part), opset), m, inputs, outputs);
        ++written;
      }
  }
  manual_seed(22);
  CustomNet net;
  perturb_batch_norm(net, 23);
  net.eval();
  for (int64_t opset : {13, 15, 17}) {
    ExportOptions o;
    o.opset = opset;
    ModelProto m = export_module(net, {rand({2, 12})}, o);
    Tensor x = rand({4, 12});
    Tensor y;
    {
      NoGradGuard no_grad;
      y = net.forward(x);
    }
    write_case(dir, fmt::format("custom-opset{}", opset), m, {x}, {y});
    ++written;
  }
  manual_seed(24);
  CompositeNet composite;
  perturb_batch_norm(composite, 25);
  composite.eval();
  for (int64_t opset : {13, 17}) {
    ExportOptions o;
    o.opset = opset;
    ModelProto m = export_module(composite, {rand({2, 2, 3, 3})}, o);
    Tensor x = rand({4, 2, 3, 3});
    Tensor y;
    {
      NoGradGuard no_grad;
      y = composite.forward(x);
    }
    write_case(dir, fmt::format("composite-opset{}", opset), m, {x}, {y});
    ++written;
  }
  MESSAGE("wrote " << written << " models to " << dir.string());
  CHECK(written > 100);
}

TEST_CASE("write references for runs exported by `latent export` (LATENT_ONNX_CLI_EXPORTS)") {
  // LATENT_ONNX_CLI_EXPORTS=FOLDER: every FOLDER/<name>/ holding model.onnx (written by `latent
  // export RUN --part P`) and a file `run` naming RUN gets input_0.pb and latent's output_*.pb for P,
  // from the run loaded with models::load.
  const char* env = std::getenv("LATENT_ONNX_CLI_EXPORTS");
  if (!env || !*env) {
    MESSAGE("LATENT_ONNX_CLI_EXPORTS is not set: nothing written (tests/onnx_runtime_check.sh sets it)");
    return;
  }
  int written = 0;
  for (const auto& entry : fs::directory_iterator(env)) {
    const fs::path run_file = entry.path() / "run";
    if (!fs::exists(run_file)) continue;
    std::string run_dir;
    std::ifstream(run_file) >> run_dir;
    models::LoadedRun run = models::load(run_dir);
    ModelProto m = load_model(entry.path() / "model.onnx");
    std::string part_text = "full";
    for (const auto& e : m.metadata_props)
      if (e.key == "part") part_text = e.value;
    const AutoencoderPart part = parse_part(part_text);
    std::vector<Tensor> inputs = autoencoder_example_inputs(*run.model, part, 7, 5);
    std::vector<Tensor> outputs;
    {
      NoGradGuard no_grad;
      outputs = autoencoder_part_function(*run.model, part)(inputs);
    }
    write_case(entry.path().parent_path(), entry.path().filename().string(), m, inputs, outputs);
    ++written;
  }
  MESSAGE("wrote references for " << written << " CLI exports");
  CHECK(written > 0);
}

}  // TEST_SUITE
