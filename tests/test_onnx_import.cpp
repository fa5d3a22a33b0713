// The ONNX importer: PyTorch-exported autoencoders reproduce PyTorch's outputs, imported models
// train, op semantics follow the model's opset, and everything unsupported fails at load time with
// the node's name, op type and opset.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "helpers.h"
#include "latent.h"
#include "onnx_io/onnx_export.h"
#include "onnx_io/onnx_import.h"
#include "onnx_io/onnx_model.h"
#include "onnx_io/onnx_tensor.h"

#ifndef LATENT_ONNX_MODELS_DIR
#define LATENT_ONNX_MODELS_DIR "tests/onnx_models"
#endif

namespace onnx = latent::onnx;
using latent::Shape;
using latent::Tensor;
using latent::testing::check_close;
using latent::testing::check_values;

namespace {

const std::filesystem::path kModels = LATENT_ONNX_MODELS_DIR;

// ---- building models in the test ----

onnx::ValueInfoProto value(const std::string& name, int32_t elem_type, std::vector<int64_t> dims) {
  onnx::ValueInfoProto v;
  v.name = name;
  auto& t = v.type.emplace().tensor_type.emplace();
  t.elem_type = elem_type;
  auto& shape = t.shape.emplace();
  for (int64_t d : dims) {
    onnx::TensorShapeDimension dim;
    if (d < 0)
      dim.dim_param = "N";
    else
      dim.dim_value = d;
    shape.dim.push_back(dim);
  }
  return v;
}

constexpr int32_t kFloat = 1, kUInt8Type = 2, kInt64 = 7;

onnx::AttributeProto attr_i(const std::string& name, int64_t v) {
  onnx::AttributeProto a;
  a.name = name;
  a.type = int32_t(onnx::AttributeType::Int);
  a.i = v;
  return a;
}
onnx::AttributeProto attr_f(const std::string& name, float v) {
  onnx::AttributeProto a;
  a.name = name;
  a.type = int32_t(onnx::AttributeType::Float);
  a.f = v;
  return a;
}
onnx::AttributeProto attr_s(const std::string& name, const std::string& v) {
  onnx::AttributeProto a;
  a.name = name;
  a.type = int32_t(onnx::AttributeType::String);
  a.s = v;
  return a;
}
onnx::AttributeProto attr_ints(const std::string& name, std::vector<int64_t> v) {
  onnx::AttributeProto a;
  a.name = name;
  a.type = int32_t(onnx::AttributeType::Ints);
  a.ints = std::move(v);
  return a;
}

onnx::NodeProto node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
                     const std::string& name, std::vector<onnx::AttributeProto> attrs = {}) {
  onnx::NodeProto n;
  n.op_type = op;
  n.input = std::move(in);
  n.output = std::move(out);
  n.name = name;
  n.attribute = std::move(attrs);
  return n;
}

onnx::ModelProto model(int64_t opset, std::vector<onnx::NodeProto> nodes, std::vector<onnx::ValueInfoProto> inputs,
                       std::vector<onnx::ValueInfoProto> outputs, std::vector<onnx::TensorProto> inits = {}) {
  onnx::ModelProto m;
  m.ir_version = 8;
  m.opset_import.push_back({"", opset, {}});
  m.graph.name = "test";
  m.graph.node = std::move(nodes);
  m.graph.input = std::move(inputs);
  m.graph.output = std::move(outputs);
  m.graph.initializer = std::move(inits);
  return m;
}

onnx::TensorProto init_f(const std::string& name, std::vector<int64_t> dims, std::vector<float> values) {
  return onnx::make_tensor<float>(name, std::move(dims), std::span<const float>(values));
}
onnx::TensorProto init_i(const std::string& name, std::vector<int64_t> dims, std::vector<int64_t> values) {
  return onnx::make_tensor<int64_t>(name, std::move(dims), std::span<const int64_t>(values));
}

Tensor load_pb(const std::filesystem::path& path) { return onnx::tensor_from_proto(onnx::load_tensor(path)); }

/// Runs a model folder's test_data_set_0 and compares every output.
void check_torch_model(const std::string& name, double atol = 1e-5, double rtol = 1e-4) {
  INFO("model " << name);
  const std::filesystem::path dir = kModels / name;
  REQUIRE(std::filesystem::exists(dir / "model.onnx"));
  auto m = onnx::import_model(dir / "model.onnx");
  std::vector<Tensor> inputs;
  for (size_t k = 0; std::filesystem::exists(dir / "test_data_set_0" / fmt::format("input_{}.pb", k)); ++k)
    inputs.push_back(load_pb(dir / "test_data_set_0" / fmt::format("input_{}.pb", k)));
  std::vector<Tensor> outs = m->run(inputs);
  size_t k = 0;
  for (; std::filesystem::exists(dir / "test_data_set_0" / fmt::format("output_{}.pb", k)); ++k) {
    REQUIRE(k < outs.size());
    check_close(outs[k], load_pb(dir / "test_data_set_0" / fmt::format("output_{}.pb", k)), atol, rtol);
  }
  CHECK(k == outs.size());
}

}  // namespace

TEST_CASE("PyTorch-exported autoencoders reproduce PyTorch's outputs") {
  for (const char* name : {"dense_ae_op13", "conv_ae_op9", "conv_ae_op13", "conv_ae_op17", "vae_encoder_op11",
                           "vae_decoder_op11", "vae_encoder_op17", "vae_decoder_op17"}) {
    check_torch_model(name);
  }
}

TEST_CASE("imported initializers keep their PyTorch names; the batch axis is dynamic") {
  auto m = onnx::import_model(kModels / "dense_ae_op13" / "model.onnx");
  std::vector<std::string> names;
  for (const auto& [name, t] : m->named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias",
                                          "decoder.0.weight", "decoder.0.bias", "decoder.2.weight", "decoder.2.bias"});
  CHECK(m->parameter_count() == 784 * 128 + 128 + 128 * 64 + 64 + 64 * 128 + 128 + 128 * 784 + 784);
  CHECK(m->state_dict().size() == 8);
  REQUIRE(m->inputs().size() == 1);
  CHECK(m->inputs()[0].name == "input");
  CHECK(m->inputs()[0].dims == std::vector<int64_t>{-1, 784});
  CHECK(m->opset_version() == 13);
  Tensor y = m->forward(latent::zeros({5, 784}));
  CHECK(y.shape() == Shape{5, 784});

  // The conv AE keeps its BatchNorm statistics as buffers and runs any batch size through the
  // Shape -> Gather -> Unsqueeze -> Concat -> Reshape subgraph of its view().
  auto conv = onnx::import_model(kModels / "conv_ae_op17" / "model.onnx");
  bool has_running_mean = false;
  for (const auto& [name, t] : conv->named_buffers()) has_running_mean = has_running_mean || name == "encoder.2.running_mean";
  CHECK(has_running_mean);
  CHECK(conv->forward(latent::rand({4, 1, 28, 28})).shape() == Shape{4, 1, 28, 28});
}

TEST_CASE("fine-tuning an imported model with Adam lowers its loss; gradients reach every parameter") {
  latent::manual_seed(3);
  for (const std::string name : {"dense_ae_op13", "conv_ae_op13"}) {
    INFO("model " << name);
    auto m = onnx::import_model(kModels / name / "model.onnx");
    Tensor x = name.starts_with("dense") ? latent::rand({8, 784}) : latent::rand({4, 1, 28, 28});
    latent::optim::Adam opt(m->parameters(), latent::optim::AdamOptions(1e-2));
    double first = 0, last = 0;
    for (int step = 0; step < 10; ++step) {
      opt.zero_grad();
      // Fine-tune toward a constant image: reachable in a few steps (noise is not).
      Tensor loss = latent::mse_loss(m->forward(x), latent::full(x.shape(), 0.1));
      loss.backward();
      if (step == 0) {
        for (const auto& [pname, p] : m->named_parameters()) {
          INFO("parameter " << pname);
          REQUIRE(p.grad().defined());
          CHECK(p.grad().abs().sum().item<double>() > 0);
        }
        for (const auto& [bname, b] : m->named_buffers()) CHECK_FALSE(b.requires_grad());
        first = loss.item<double>();
      }
      last = loss.item<double>();
      opt.step();
    }
    CHECK(last < first * 0.5);
  }
}

TEST_CASE("a fine-tuned imported PyTorch model exports again and the re-import gives the same outputs") {
  latent::manual_seed(4);
  for (const std::string name : {"dense_ae_op13", "conv_ae_op17", "vae_decoder_op17"}) {
    INFO("model " << name);
    auto m = onnx::import_model(kModels / name / "model.onnx");
    const onnx::ValueSpec& in = m->inputs().at(0);
    Shape shape;
    for (int64_t d : in.dims) shape.push_back(d < 0 ? 3 : d);
    Tensor x = latent::rand(shape);
    latent::optim::Adam opt(m->parameters(), latent::optim::AdamOptions(1e-2));
    for (int step = 0; step < 3; ++step) {
      opt.zero_grad();
      latent::mse_loss(m->forward(x), latent::full(m->forward(x).shape(), 0.1)).backward();
      opt.step();
    }
    Tensor expected;
    {
      latent::NoGradGuard no_grad;
      expected = m->forward(x);
    }
    // PyTorch's view() exports as a Shape -> Gather -> Concat -> Reshape subgraph, which the importer
    // evaluates on the host; a re-export therefore fixes the batch size (dynamic_batch would refuse
    // those batch-dependent values with a clear error, checked below).
    onnx::ExportOptions static_batch;
    static_batch.dynamic_batch = false;
    if (name == "conv_ae_op17") CHECK_THROWS_WITH_SUBSTR(onnx::export_module(*m, {x}), "its values depend on the input");
    onnx::ModelProto again = onnx::export_module(*m, {x}, name == "dense_ae_op13" ? onnx::ExportOptions{} : static_batch);
    // The fine-tuned weights travel under their PyTorch names.
    std::vector<std::string> names;
    for (const auto& t : again.graph.initializer) names.push_back(t.name);
    for (const auto& [pname, p] : m->named_parameters()) {
      INFO("parameter " << pname);
      CHECK(std::find(names.begin(), names.end(), pname) != names.end());
    }
    onnx::OnnxModule back(onnx::decode_model(onnx::encode_model(again)));
    Tensor x2 = latent::rand(shape);  // another input of the same shape
    Tensor got, want;
    {
      latent::NoGradGuard no_grad;
      got = back.forward(x2);
      want = m->forward(x2);
    }
    check_close(got, want, 1e-5, 1e-4);
  }
}

TEST_CASE("a small model built from the onnx_io structs runs: MatMul, Add, Relu, Softmax, Shape subgraph") {
  // y = softmax(relu(x W + b)) reshaped to (N, 1, 3) through Shape -> Gather -> Unsqueeze -> Concat.
  std::vector<onnx::NodeProto> nodes = {
      node("MatMul", {"x", "W"}, {"xw"}, "mm"),
      node("Add", {"xw", "b"}, {"h"}, "add"),
      node("Relu", {"h"}, {"r"}, "relu"),
      node("Softmax", {"r"}, {"s"}, "softmax", {attr_i("axis", 1)}),
      node("Shape", {"s"}, {"shape"}, "shape"),
      node("Gather", {"shape", "zero"}, {"n"}, "gather", {attr_i("axis", 0)}),
      node("Unsqueeze", {"n", "axes0"}, {"n1"}, "unsq"),
      node("Concat", {"n1", "one_three"}, {"target"}, "concat", {attr_i("axis", 0)}),
      node("Reshape", {"s", "target"}, {"y"}, "reshape"),
  };
  auto m = std::make_shared<onnx::OnnxModule>(
      model(13, nodes, {value("x", kFloat, {-1, 2})}, {value("y", kFloat, {-1, 1, 3})},
            {init_f("W", {2, 3}, {1, -1, 0.5f, 2, 0, -1}), init_f("b", {3}, {0.1f, 0.2f, 0.3f}),
             init_i("zero", {}, {0}), init_i("axes0", {1}, {0}), init_i("one_three", {2}, {1, 3})}));
  // W and b are parameters; the int64 shape pieces are buffers.
  CHECK(m->named_parameters().size() == 2);
  CHECK(m->named_buffers().size() == 3);
  Tensor x = latent::tensor({{1, 2}, {-1, 0.5}});
  Tensor y = m->forward(x);
  REQUIRE(y.shape() == Shape{2, 1, 3});
  Tensor ref = latent::softmax(latent::relu(latent::matmul(x, latent::from_vector(std::vector<float>{1, -1, 0.5f, 2, 0, -1}, {2, 3})) +
                                            latent::tensor({0.1f, 0.2f, 0.3f})),
                               1);
  check_values(y, ref.to_vector<double>(), 1e-6, 1e-6);
}

TEST_CASE("resource limits: initializers and shapes claiming 10^12 elements fail with one line before allocating") {
  latent::testing::TempDir dir;
  const std::vector<onnx::ValueInfoProto> in = {value("x", kFloat, {-1, 2})};
  const std::vector<onnx::ValueInfoProto> out = {value("y", kFloat, {-1, 2})};
  // An initializer whose dims claim 10^12 floats but whose raw_data holds one.
  onnx::TensorProto huge = init_f("W", {1}, {1.0f});
  huge.dims = {1000000, 1000000};
  const std::string path = (dir / "huge.onnx");
  onnx::save_model(model(13, {node("Add", {"x", "W"}, {"y"}, "add")}, in, out, {huge}), path);
  CHECK_THROWS_WITH_SUBSTR(onnx::import_model(path), "[onnx import] " + path + ": initializer 'W': [onnx] tensor 'W': raw_data has 4 bytes, expected "
                                                     "4000000000000 for dims [1000000, 1000000] of FLOAT");
  // The same claim through the typed field.
  huge.raw_data.clear();
  huge.float_data = {1.0f};
  onnx::save_model(model(13, {node("Add", {"x", "W"}, {"y"}, "add")}, in, out, {huge}), path);
  CHECK_THROWS_WITH_SUBSTR(onnx::import_model(path),
                           path + ": initializer 'W': [onnx] tensor 'W': float_data has 1 values, expected 1000000000000 for dims [1000000, 1000000]");
  // Dims whose product overflows int64.
  huge.dims = {INT64_MAX, 3};
  onnx::save_model(model(13, {node("Add", {"x", "W"}, {"y"}, "add")}, in, out, {huge}), path);
  CHECK_THROWS_WITH_SUBSTR(onnx::import_model(path), "tensor 'W': dims [9223372036854775807, 3] has more elements than fit in int64");

  // Shapes in the graph: ConstantOfShape, Expand, Tile and Range sized by values in the model.
  auto run_one = [&](onnx::NodeProto n, std::vector<onnx::TensorProto> inits) {
    auto m = std::make_shared<onnx::OnnxModule>(model(13, {std::move(n)}, {value("x", kFloat, {-1, 2})},
                                                      {value("y", 0, {})}, std::move(inits)));
    return m->run({latent::tensor({{1, 2}})});
  };
  CHECK_THROWS_WITH_SUBSTR(run_one(node("ConstantOfShape", {"s"}, {"y"}, "cos"), {init_i("s", {2}, {1000000, 1000000})}),
                           "ConstantOfShape's shape [1000000, 1000000] asks for 1e+12 elements, more than the limit of 1073741824");
  CHECK_THROWS_WITH_SUBSTR(run_one(node("Expand", {"x", "s"}, {"y"}, "ex"), {init_i("s", {3}, {1000000, 1000000, 2})}),
                           "Expand's output shape [1000000, 1000000, 2] asks for 2e+12 elements");
  CHECK_THROWS_WITH_SUBSTR(run_one(node("Tile", {"x", "r"}, {"y"}, "tile"), {init_i("r", {2}, {1000000, 500000})}),
                           "Tile's repeats times the input shape [1000000, 1, 500000, 2] asks for 1e+12 elements");
  CHECK_THROWS_WITH_SUBSTR(run_one(node("Range", {"a", "b", "c"}, {"y"}, "range"),
                                   {init_i("a", {}, {0}), init_i("b", {}, {INT64_MAX}), init_i("c", {}, {1})}),
                           "Range's element count [9223372036854775807] asks for 9.22337e+18 elements");
  CHECK_THROWS_WITH_SUBSTR(run_one(node("Range", {"a", "b", "c"}, {"y"}, "range"),
                                   {init_f("a", {}, {0}), init_f("b", {}, {1e12f}), init_f("c", {}, {1})}),
                           "Range's element count [1e+12] is more than the limit of 1073741824");
  // Under the limit the same ops run and give the values an independent count expects.
  std::vector<Tensor> r = run_one(node("Range", {"a", "b", "c"}, {"y"}, "range"),
                                  {init_i("a", {}, {INT64_MAX - 7}), init_i("b", {}, {INT64_MAX}), init_i("c", {}, {3})});
  CHECK(r[0].to_vector<int64_t>() == std::vector<int64_t>{INT64_MAX - 7, INT64_MAX - 4, INT64_MAX - 1});
  r = run_one(node("Range", {"a", "b", "c"}, {"y"}, "range"), {init_i("a", {}, {5}), init_i("b", {}, {-2}), init_i("c", {}, {-3})});
  CHECK(r[0].to_vector<int64_t>() == std::vector<int64_t>{5, 2, -1});
  // The limit is adjustable (fuzzers lower it).
  const int64_t saved = onnx::max_created_elements();
  onnx::max_created_elements() = 10;
  CHECK_THROWS_WITH_SUBSTR(run_one(node("ConstantOfShape", {"s"}, {"y"}, "cos"), {init_i("s", {2}, {3, 4})}),
                           "ConstantOfShape's shape [3, 4] asks for 12 elements, more than the limit of 10");
  onnx::max_created_elements() = saved;
  CHECK(run_one(node("ConstantOfShape", {"s"}, {"y"}, "cos"), {init_i("s", {2}, {3, 4})})[0].shape() == Shape{3, 4});
}

TEST_CASE("names from the file with control characters stay on one line in errors (fuzz finding)") {
  // The fuzzer's regression input tests/fuzz/corpus/onnx_import/crash-f26db437...: a node name with
  // a newline made a two-line error.
  auto m = model(13, {node("Celu", {"x"}, {"y"}, "celu\nnode\x01", {attr_i("alpha", 1)})}, {value("x", kFloat, {-1, 2})},
                 {value("y", kFloat, {-1, 2})});
  try {
    onnx::OnnxModule module(m);
    FAIL("expected an error");
  } catch (const latent::Error& e) {
    const std::string what = e.what();
    CHECK(what.find('\n') == std::string::npos);
    CHECK(what.find('\x01') == std::string::npos);
    CHECK(what.find("node 'celu\\x0anode\\x01'") != std::string::npos);
  }
}

TEST_CASE("Erf, Cast to BOOL and Where: what latent's exporter writes for gelu and where") {
  // y = where(x > 0 as BOOL, erf(x), -x): Cast to BOOL gives an int64 0/1 tensor inside latent.
  auto m = std::make_shared<onnx::OnnxModule>(
      model(13,
            {node("Erf", {"x"}, {"e"}, "erf"), node("Relu", {"x"}, {"r"}, "relu"),
             node("Cast", {"r"}, {"c"}, "cast", {attr_i("to", 9)}), node("Neg", {"x"}, {"n"}, "neg"),
             node("Where", {"c", "e", "n"}, {"y"}, "where")},
            {value("x", kFloat, {-1, 3})}, {value("y", kFloat, {-1, 3})}, {}));
  Tensor x = latent::tensor({{-1.5, 0.0, 0.25}, {2.0, -0.5, 1.0}});
  std::vector<double> want;
  for (double v : x.to_vector<double>()) want.push_back(v > 0 ? std::erf(v) : -v);
  check_values(m->forward(x), want, 1e-6, 1e-6);
}

TEST_CASE("ops follow the semantics of the model's opset") {
  Tensor x = latent::testing::det_randn({2, 3, 4}, 1, false).to(latent::kFloat32);
  SUBCASE("Softmax before 13 normalizes the flattened 2-d view; from 13 on one axis") {
    for (int64_t opset : {11, 13}) {
      auto m = std::make_shared<onnx::OnnxModule>(model(opset, {node("Softmax", {"x"}, {"y"}, "sm", {attr_i("axis", 1)})},
                                                        {value("x", kFloat, {2, 3, 4})}, {value("y", kFloat, {2, 3, 4})}));
      Tensor expected = opset == 11 ? latent::softmax(x.reshape({2, 12}), 1).reshape({2, 3, 4}) : latent::softmax(x, 1);
      check_close(m->forward(x), expected, 1e-6, 1e-5);
    }
  }
  SUBCASE("Reshape takes an attribute before 5 and an input from 5 on; Squeeze/Unsqueeze axes move to inputs at 13") {
    auto m1 = std::make_shared<onnx::OnnxModule>(model(1, {node("Reshape", {"x"}, {"y"}, "r", {attr_ints("shape", {0, -1})})},
                                                       {value("x", kFloat, {2, 3, 4})}, {value("y", kFloat, {2, 12})}));
    CHECK(m1->forward(x).shape() == Shape{2, 12});
    auto m5 = std::make_shared<onnx::OnnxModule>(model(5, {node("Reshape", {"x", "s"}, {"y"}, "r")}, {value("x", kFloat, {2, 3, 4})},
                                                       {value("y", kFloat, {6, 4})}, {init_i("s", {2}, {-1, 4})}));
    CHECK(m5->forward(x).shape() == Shape{6, 4});
    auto u11 = std::make_shared<onnx::OnnxModule>(model(11, {node("Unsqueeze", {"x"}, {"y"}, "u", {attr_ints("axes", {0, -1})})},
                                                        {value("x", kFloat, {2, 3, 4})}, {value("y", kFloat, {1, 2, 3, 4, 1})}));
    CHECK(u11->forward(x).shape() == Shape{1, 2, 3, 4, 1});
    auto u13 = std::make_shared<onnx::OnnxModule>(model(13, {node("Unsqueeze", {"x", "a"}, {"y"}, "u")}, {value("x", kFloat, {2, 3, 4})},
                                                        {value("y", kFloat, {2, 1, 3, 4})}, {init_i("a", {1}, {1})}));
    CHECK(u13->forward(x).shape() == Shape{2, 1, 3, 4});
    // Unsqueeze-13 without its axes input is a load-time error.
    CHECK_THROWS_WITH_SUBSTR(onnx::OnnxModule(model(13, {node("Unsqueeze", {"x"}, {"y"}, "u")}, {value("x", kFloat, {2, 3, 4})},
                                                    {value("y", kFloat, {})})),
                             "node 'u' (Unsqueeze, opset 13): input 1 is required");
  }
  SUBCASE("Clip reads min/max attributes before 11 and inputs from 11 on") {
    auto c6 = std::make_shared<onnx::OnnxModule>(model(6, {node("Clip", {"x"}, {"y"}, "c", {attr_f("min", -0.5f), attr_f("max", 0.5f)})},
                                                       {value("x", kFloat, {2, 3, 4})}, {value("y", kFloat, {2, 3, 4})}));
    check_close(c6->forward(x), latent::clamp(x, -0.5, 0.5));
    auto c13 = std::make_shared<onnx::OnnxModule>(model(13, {node("Clip", {"x", "", "hi"}, {"y"}, "c")}, {value("x", kFloat, {2, 3, 4})},
                                                        {value("y", kFloat, {2, 3, 4})}, {init_f("hi", {}, {0.25f})}));
    check_close(c13->forward(x), latent::clamp(x, -1e30, 0.25));
  }
}

TEST_CASE("unsupported ops, versions, attributes and data types fail at load time with the node named") {
  const auto in = value("x", kFloat, {1, 1, 4, 4});
  const auto out = value("y", kFloat, {});
  CHECK_THROWS_WITH_SUBSTR(onnx::OnnxModule(model(13, {node("Foo", {"x"}, {"y"}, "foo_1")}, {in}, {out})),
                           "[onnx import] node 'foo_1' (Foo, opset 13): op Foo is not supported");
  CHECK_THROWS_WITH_SUBSTR(
      onnx::OnnxModule(model(13, {node("Resize", {"x", "", "scales"}, {"y"}, "Resize_3", {attr_s("mode", "bicubic")})}, {in}, {out},
                             {init_f("scales", {4}, {1, 1, 2, 2})})),
      "[onnx import] node 'Resize_3' (Resize, opset 13): mode 'bicubic' is not supported (supported: nearest, linear, cubic)");
  CHECK_THROWS_WITH_SUBSTR(onnx::OnnxModule(model(9, {node("Resize", {"x", "s"}, {"y"}, "r")}, {in}, {out})),
                           "node 'r' (Resize, opset 9): Resize does not exist before opset 10");
  CHECK_THROWS_WITH_SUBSTR(onnx::OnnxModule(model(11, {node("Upsample", {"x", "s"}, {"y"}, "up")}, {in}, {out})),
                           "node 'up' (Upsample, opset 11): Upsample is deprecated since opset 10");
  CHECK_THROWS_WITH_SUBSTR(onnx::OnnxModule(model(18, {node("Relu", {"x"}, {"y"}, "r")}, {in}, {out})),
                           "[onnx import] opset 18 is not supported (supported: 1 to 17)");
  CHECK_THROWS_WITH_SUBSTR(onnx::OnnxModule(model(13, {node("Relu", {"x"}, {"y"}, "r", {attr_i("foo", 1)})}, {in}, {out})),
                           "node 'r' (Relu, opset 13): attribute 'foo' is not supported");
  CHECK_THROWS_WITH_SUBSTR(onnx::OnnxModule(model(13, {node("Relu", {"x"}, {"y"}, "r")}, {value("x", 4, {4})}, {out})),
                           "graph input 'x' has data type UINT16, which is not supported (supported: FLOAT, DOUBLE, INT64, INT32, INT8, UINT8)");
  CHECK_THROWS_WITH_SUBSTR(onnx::OnnxModule(model(10, {node("QuantizeLinear", {"x", "x"}, {"y"}, "q", {attr_i("axis", 0)})}, {in}, {out})),
                           "node 'q' (QuantizeLinear, opset 10): attribute 'axis' is not supported");
  CHECK_THROWS_WITH_SUBSTR(onnx::OnnxModule(model(10, {node("QLinearMatMul", {"x", "x", "x"}, {"y"}, "qm")}, {in}, {out})),
                           "node 'qm' (QLinearMatMul, opset 10)");
  CHECK_THROWS_WITH_SUBSTR(onnx::OnnxModule(model(13, {node("Cast", {"x"}, {"y"}, "c", {attr_i("to", 10)})}, {in}, {out})),
                           "node 'c' (Cast, opset 13): cast to FLOAT16 is not supported (supported: FLOAT, DOUBLE, INT64, INT32, INT8, UINT8, BOOL)");
  CHECK_THROWS_WITH_SUBSTR(
      onnx::OnnxModule(model(13, {node("MaxPool", {"x"}, {"y"}, "pool", {attr_ints("kernel_shape", {2, 2, 2, 2})})},
                             {value("x", kFloat, {1, 1, 4, 4, 4, 4})}, {out})),
      "node 'pool' (MaxPool, opset 13): 4-d pooling is not supported (1-d to 3-d only)");
  CHECK_THROWS_WITH_SUBSTR(onnx::OnnxModule(model(13, {node("Conv", {"x", "w"}, {"y"}, "conv")}, {value("x", kFloat, {1, 1, 4, 4, 4, 4})},
                                                  {out}, {init_f("w", {1, 1, 1, 1, 1, 1}, {1})})),
                           "node 'conv' (Conv, opset 13): 4-d convolution is not supported (1-d to 3-d only)");
  CHECK_THROWS_WITH_SUBSTR(onnx::OnnxModule(model(13, {node("Relu", {"nope"}, {"y"}, "r")}, {in}, {out})),
                           "node 'r' (Relu, opset 13): input 'nope' is not a graph input");
  onnx::ModelProto custom = model(13, {node("Relu", {"x"}, {"y"}, "r")}, {in}, {out});
  custom.graph.node[0].domain = "com.example";
  CHECK_THROWS_WITH_SUBSTR(onnx::OnnxModule(custom), "node 'r' (Relu): domain 'com.example' is not supported");
  custom.graph.node[0].domain = "com.microsoft";
  CHECK_THROWS_WITH_SUBSTR(onnx::OnnxModule(custom), "node 'r' (Relu): its domain 'com.microsoft' is not among the model's opset imports");
  custom.opset_import.push_back({"com.microsoft", 1, {}});
  CHECK_THROWS_WITH_SUBSTR(onnx::OnnxModule(custom), "node 'r' (com.microsoft:Relu, opset 1): op com.microsoft:Relu is not supported");
  CHECK_THROWS_WITH_SUBSTR(
      onnx::OnnxModule(model(7, {node("MaxPool", {"x"}, {"y", "idx"}, "mp", {attr_ints("kernel_shape", {2, 2})})}, {in},
                             {out, value("idx", kInt64, {})})),
      "node 'mp' (MaxPool, opset 7): the Indices output exists from opset 8");
  {
    // MaxPool's Indices: flat positions in the unpadded input, row-major or (storage_order 1) each
    // plane column-major; with asymmetric pads (applied before pooling) still in unpadded terms.
    const Tensor x = latent::arange(16, latent::kFloat32).reshape({1, 1, 4, 4});
    auto run = [&](std::vector<onnx::AttributeProto> attrs) {
      attrs.push_back(attr_ints("kernel_shape", {2, 2}));
      attrs.push_back(attr_ints("strides", {2, 2}));
      return onnx::OnnxModule(model(13, {node("MaxPool", {"x"}, {"y", "idx"}, "mp", attrs)}, {in}, {out, value("idx", kInt64, {})}))
          .run({x});
    };
    std::vector<Tensor> r = run({});
    CHECK(r[0].to_vector<double>() == std::vector<double>{5, 7, 13, 15});
    CHECK(r[1].to_vector<int64_t>() == std::vector<int64_t>{5, 7, 13, 15});
    r = run({attr_i("storage_order", 1)});
    CHECK(r[1].to_vector<int64_t>() == std::vector<int64_t>{5, 13, 7, 15});
    r = run({attr_ints("pads", {1, 1, 0, 0})});
    CHECK(r[0].to_vector<double>() == std::vector<double>{0, 2, 8, 10});
    CHECK(r[1].to_vector<int64_t>() == std::vector<int64_t>{0, 2, 8, 10});
  }
  // An output nothing reads does not matter.
  CHECK(onnx::OnnxModule(model(13, {node("MaxPool", {"x"}, {"y", "idx"}, "mp", {attr_ints("kernel_shape", {2, 2})})}, {in}, {out}))
            .forward(latent::ones({1, 1, 4, 4}))
            .shape() == Shape{1, 1, 3, 3});  // ONNX pools default to stride 1
  CHECK_THROWS_WITH_SUBSTR(
      onnx::OnnxModule(model(13, {node("Resize", {"x", "", "scales"}, {"y"}, "rs", {attr_s("coordinate_transformation_mode", "tf_crop")})},
                             {in}, {out}, {init_f("scales", {4}, {1, 1, 2, 2})})),
      "coordinate_transformation_mode 'tf_crop' is not supported");
}

TEST_CASE("run-time errors name the node; inputs are checked against the declared types and shapes") {
  auto m = std::make_shared<onnx::OnnxModule>(model(13, {node("MatMul", {"x", "w"}, {"y"}, "mm")}, {value("x", kFloat, {-1, -1})},
                                                    {value("y", kFloat, {-1, 2})}, {init_f("w", {3, 2}, {1, 2, 3, 4, 5, 6})}));
  CHECK(m->forward(latent::ones({4, 3})).shape() == Shape{4, 2});
  CHECK_THROWS_WITH_SUBSTR(m->forward(latent::ones({4, 5})), "[onnx import] node 'mm' (MatMul, opset 13): [matmul] shapes");
  CHECK_THROWS_WITH_SUBSTR(m->forward(latent::ones({4})), "input 'x' must be FLOAT [?, ?]; got float32 [4]");
  CHECK_THROWS_WITH_SUBSTR(m->forward(latent::ones({4, 3}, latent::kFloat64)), "input 'x' must be FLOAT");
  CHECK_THROWS_WITH_SUBSTR(m->run({}), "the model takes 1 input ('x'); got 0");
}

TEST_CASE("tensor_from_proto and tensor_to_proto round-trip the supported dtypes") {
  Tensor f = latent::tensor({{1, 2.5}, {-3, 4}});
  check_close(onnx::tensor_from_proto(onnx::tensor_to_proto(f, "f")), f);
  Tensor d = f.to(latent::kFloat64);
  CHECK(onnx::tensor_from_proto(onnx::tensor_to_proto(d, "d")).dtype() == latent::kFloat64);
  Tensor i = latent::arange(6).reshape({2, 3});
  check_close(onnx::tensor_from_proto(onnx::tensor_to_proto(i, "i")), i);
  std::vector<uint8_t> bytes = {1, 2, 255};
  onnx::TensorProto u8 = onnx::make_tensor<uint8_t>("u", {3}, std::span<const uint8_t>(bytes));
  Tensor u = onnx::tensor_from_proto(u8);
  CHECK(u.dtype() == latent::kUInt8);
  CHECK(u.to_vector<double>() == std::vector<double>{1, 2, 255});
  CHECK(onnx::tensor_to_proto(u, "u").raw_data == std::string("\x01\x02\xff", 3));
  Tensor s8 = latent::from_vector(std::vector<float>{-128, 0, 127}, {3}).to(latent::kInt8);
  CHECK(onnx::tensor_from_proto(onnx::tensor_to_proto(s8, "s")).to_vector<double>() == std::vector<double>{-128, 0, 127});
  Tensor s32 = latent::from_vector(std::vector<double>{-70000, 3}, {2}).to(latent::kInt32);
  Tensor s32_back = onnx::tensor_from_proto(onnx::tensor_to_proto(s32, "i32"));
  CHECK(s32_back.dtype() == latent::kInt32);
  CHECK(s32_back.to_vector<double>() == std::vector<double>{-70000, 3});
  onnx::TensorProto u16;
  u16.name = "w";
  u16.data_type = 4;  // UINT16
  u16.dims = {1};
  u16.raw_data = std::string("\x01\x00", 2);
  CHECK_THROWS_WITH_SUBSTR(onnx::tensor_from_proto(u16), "tensor 'w' has data type UINT16, which is not supported");
}

TEST_CASE("imported BatchNormalization and Dropout: inference in eval() (the default), training in train()") {
  // y = Dropout(BatchNormalization(x)), with ONNX momentum 0.8 (PyTorch's 0.2).
  const std::vector<float> scale = {1.5f, 0.5f}, shift = {0.1f, -0.2f}, mean0 = {0.3f, -0.1f}, var0 = {2.0f, 0.5f};
  auto m = std::make_shared<onnx::OnnxModule>(
      model(15,
            {node("BatchNormalization", {"x", "scale", "B", "mean", "var"}, {"h"}, "bn",
                  {attr_f("epsilon", 1e-3f), attr_f("momentum", 0.8f)}),
             node("Dropout", {"h", "ratio"}, {"y"}, "drop")},
            {value("x", kFloat, {-1, 2, 3, 3})}, {value("y", kFloat, {-1, 2, 3, 3})},
            {init_f("scale", {2}, scale), init_f("B", {2}, shift), init_f("mean", {2}, mean0), init_f("var", {2}, var0),
             init_f("ratio", {}, {0.25f})}));
  CHECK_FALSE(m->is_training());
  Tensor x = latent::testing::det_randn({4, 2, 3, 3}, 7, false).to(latent::kFloat32) * 2.0 + 1.0;
  const auto reference = [&](bool training, const std::vector<float>& mean, const std::vector<float>& var) {
    Tensor rm = latent::from_vector(mean, {2}), rv = latent::from_vector(var, {2});
    return latent::batch_norm(x, rm, rv, latent::from_vector(scale, {2}), latent::from_vector(shift, {2}), training,
                              0.2, 1e-3);
  };
  // eval: running statistics, no dropout, nothing updated.
  {
    latent::NoGradGuard no_grad;
    check_values(m->forward(x), reference(false, mean0, var0).to_vector<double>(), 1e-5, 1e-5);
  }
  const auto buffer = [&](const std::string& name) {
    for (auto& [n, t] : m->named_buffers())
      if (n == name) return t.to_vector<double>();
    FAIL("no buffer " << name);
    return std::vector<double>{};
  };
  CHECK(buffer("mean") == std::vector<double>{mean0[0], mean0[1]});
  // train: batch statistics; running = 0.8 running + 0.2 batch (unbiased variance), as PyTorch.
  m->train();
  Tensor rm = latent::from_vector(mean0, {2}), rv = latent::from_vector(var0, {2});
  Tensor want = latent::batch_norm(x, rm, rv, latent::from_vector(scale, {2}), latent::from_vector(shift, {2}), true,
                                   0.2, 1e-3);
  Tensor got;
  {
    latent::NoGradGuard no_grad;
    got = m->forward(x);
  }
  // Dropout (ratio 0.25) zeroes some elements and scales the rest by 1 / 0.75.
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  int zeros = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (g[i] == 0.0) {
      ++zeros;
      continue;
    }
    CHECK(std::abs(g[i] - w[i] / 0.75) <= 1e-5 + 1e-5 * std::abs(w[i]));
  }
  CHECK(zeros > 0);
  CHECK(zeros < static_cast<int>(g.size()) / 2);
  const std::vector<double> new_mean = buffer("mean"), new_var = buffer("var");
  const std::vector<double> want_mean = rm.to_vector<double>(), want_var = rv.to_vector<double>();
  for (int c = 0; c < 2; ++c) {
    CHECK(new_mean[c] == doctest::Approx(want_mean[c]).epsilon(1e-6));
    CHECK(new_var[c] == doctest::Approx(want_var[c]).epsilon(1e-6));
    CHECK(new_mean[c] != doctest::Approx(mean0[c]));  // it moved
  }
  // Back in eval the updated running statistics are used and dropout is off again.
  m->eval();
  {
    latent::NoGradGuard no_grad;
    check_values(m->forward(x), reference(false, {float(new_mean[0]), float(new_mean[1])},
                                          {float(new_var[0]), float(new_var[1])}).to_vector<double>(), 1e-5, 1e-5);
  }
}

TEST_CASE("an imported Dropout with a training_mode input follows it, whatever the module's mode") {
  // training_mode as an INT64 0/1 constant: latent represents ONNX BOOL values that way (Cast to BOOL).
  auto m = std::make_shared<onnx::OnnxModule>(
      model(13, {node("Dropout", {"x", "ratio", "mode"}, {"y"}, "drop")}, {value("x", kFloat, {-1, 64})},
            {value("y", kFloat, {-1, 64})}, {init_f("ratio", {}, {0.5f}), init_i("mode", {}, {0})}));
  m->train();
  Tensor x = latent::ones({8, 64});
  check_values(m->forward(x), std::vector<double>(8 * 64, 1.0));  // training_mode false: identity
  auto on = std::make_shared<onnx::OnnxModule>(
      model(13, {node("Dropout", {"x", "ratio", "mode"}, {"y"}, "drop")}, {value("x", kFloat, {-1, 64})},
            {value("y", kFloat, {-1, 64})}, {init_f("ratio", {}, {0.5f}), init_i("mode", {}, {1})}));
  int zeros = 0, twos = 0;
  for (double v : on->forward(x).to_vector<double>()) {
    zeros += v == 0.0;
    twos += v == 2.0;  // kept elements are scaled by 1 / (1 - 0.5)
  }
  CHECK(zeros + twos == 512);
  CHECK(zeros > 128);  // about half of 512
  CHECK(zeros < 384);
}

TEST_CASE("ONNX Runtime's com.microsoft QGemm and QLinearSigmoid (its QOperator form) against hand-computed values") {
  // y = QLinearSigmoid(QGemm(x_q, W_q^T, bias)): x (2 x 3) uint8 with zero point 10, W (2 x 3) int8
  // per output row (transB) with scales 0.5 and 0.25, int32 bias; the QGemm output is uint8.
  auto u8 = [](const std::string& name, std::vector<int64_t> dims, std::vector<float> v) {
    return onnx::tensor_to_proto(latent::from_vector(v, Shape(dims)).to(latent::kUInt8), name);
  };
  auto i8 = [](const std::string& name, std::vector<int64_t> dims, std::vector<float> v) {
    return onnx::tensor_to_proto(latent::from_vector(v, Shape(dims)).to(latent::kInt8), name);
  };
  auto i32 = [](const std::string& name, std::vector<int64_t> dims, std::vector<float> v) {
    return onnx::tensor_to_proto(latent::from_vector(v, Shape(dims)).to(latent::kInt32), name);
  };
  const std::vector<float> x = {12, 10, 40, 0, 255, 11};
  const std::vector<float> w = {1, -2, 3, -4, 5, 127};
  const std::vector<float> bias = {7, -100};
  const float xs = 0.02f, ys = 0.05f, ss = 1.0f / 255;
  const float ws[2] = {0.5f, 0.25f};
  std::vector<onnx::NodeProto> nodes = {
      node("QGemm", {"x", "xs", "xz", "w", "ws", "wz", "bias", "ys", "yz"}, {"h"}, "qgemm", {attr_i("transB", 1)}),
      node("QLinearSigmoid", {"h", "ys", "yz", "ss", "sz"}, {"y"}, "qsig"),
      node("QGemm", {"x", "xs", "xz", "w", "ws", "wz", "bias"}, {"f"}, "qgemm_float", {attr_i("transB", 1)}),
  };
  for (auto& n : nodes) n.domain = "com.microsoft";
  onnx::ModelProto m = model(13, nodes, {value("x", kUInt8Type, {2, 3})},
                             {value("y", kUInt8Type, {2, 2}), value("f", kFloat, {2, 2})},
                             {init_f("xs", {}, {xs}), u8("xz", {}, {10}), i8("w", {2, 3}, w), init_f("ws", {2}, {ws[0], ws[1]}),
                              i8("wz", {2}, {0, 0}), i32("bias", {2}, bias), init_f("ys", {}, {ys}), u8("yz", {}, {128}),
                              init_f("ss", {}, {ss}), u8("sz", {}, {0})});
  m.opset_import.push_back({"com.microsoft", 1, {}});
  onnx::OnnxModule module(m);
  const std::vector<Tensor> out = module.run({latent::from_vector(x, {2, 3}).to(latent::kUInt8)});
  REQUIRE(out.size() == 2);
  REQUIRE(out[0].dtype() == latent::kUInt8);
  REQUIRE(out[1].dtype() == latent::kFloat32);
  const std::vector<double> y = out[0].to_vector<double>(), f = out[1].to_vector<double>();
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      double acc = bias[j];
      for (int k = 0; k < 3; ++k) acc += (x[i * 3 + k] - 10) * w[j * 3 + k];
      const double scale = double(xs * ws[j]);  // the scales' product in float32, as ONNX Runtime computes it
      INFO("row " << i << " column " << j << ", integer sum " << acc);
      CHECK(f[i * 2 + j] == doctest::Approx(acc * scale).epsilon(1e-6));
      const double h = std::clamp(std::nearbyint(acc * double(float(xs * ws[j]) / ys)) + 128, 0.0, 255.0);
      const double sig = 1 / (1 + std::exp(-(h - 128) * ys));
      CHECK(y[i * 2 + j] == std::clamp(std::nearbyint(sig / ss), 0.0, 255.0));
    }
  }
  // Refusals name the node and the values.
  onnx::ModelProto bad = m;
  bad.graph.node[0].attribute.push_back(attr_f("alpha", 0.5f));
  CHECK_THROWS_WITH_SUBSTR(onnx::OnnxModule(bad), "node 'qgemm' (com.microsoft:QGemm, opset 1): alpha 0.5 is not supported (only 1)");
}

namespace {

/// Deterministic values in [-1, 1) for the 3-d tests below.
std::vector<float> wavy(int64_t count, double phase) {
  std::vector<float> v(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) v[size_t(i)] = float(std::sin(0.7 * double(i) + phase));
  return v;
}

}  // namespace

TEST_CASE("3-d Conv, ConvTranspose and AveragePool (depth taps over 2-d slices) against direct loops") {
  // Strides, asymmetric pads, dilation, groups, output_padding and ceil_mode in one model each;
  // the references are the definitions summed in float64.
  const int64_t N = 1, C = 2, D = 4, H = 3, W = 5;
  const std::vector<float> xv = wavy(N * C * D * H * W, 0.3);
  auto X = [&](int64_t c, int64_t d, int64_t h, int64_t w) { return double(xv[size_t(((c * D + d) * H + h) * W + w)]); };
  const auto in = value("x", kFloat, {N, C, D, H, W});
  const Tensor x = latent::from_vector(xv, {N, C, D, H, W});
  SUBCASE("Conv: groups 2, strides (1, 2, 1), pads (1, 0, 1 / 0, 1, 0), dilations (2, 1, 1)") {
    const std::vector<float> wv = wavy(2 * 1 * 2 * 2 * 2, 1.1);  // (C_out 2, C_in / group 1, 2, 2, 2)
    const std::vector<float> bv = {0.25f, -0.5f};
    auto m = onnx::OnnxModule(model(13, {node("Conv", {"x", "w", "b"}, {"y"}, "c3",
                                              {attr_i("group", 2), attr_ints("strides", {1, 2, 1}), attr_ints("pads", {1, 0, 1, 0, 1, 0}),
                                               attr_ints("dilations", {2, 1, 1})})},
                                    {in}, {value("y", kFloat, {})}, {init_f("w", {2, 1, 2, 2, 2}, wv), init_f("b", {2}, bv)}));
    const Tensor y = m.forward(x);
    // D: 4 + 1 - (2 (2 - 1) + 1) + 1 = 3; H: (3 + 1 - 2) / 2 + 1 = 2; W: 5 + 1 - 2 + 1 = 5.
    REQUIRE(y.shape() == Shape{1, 2, 3, 2, 5});
    const std::vector<double> got = y.to_vector<double>();
    for (int64_t co = 0; co < 2; ++co)
      for (int64_t od = 0; od < 3; ++od)
        for (int64_t oh = 0; oh < 2; ++oh)
          for (int64_t ow = 0; ow < 5; ++ow) {
            double ref = bv[size_t(co)];
            for (int64_t a = 0; a < 2; ++a)
              for (int64_t b = 0; b < 2; ++b)
                for (int64_t c = 0; c < 2; ++c) {
                  const int64_t d = od - 1 + 2 * a, h = oh * 2 + b, w = ow - 1 + c;
                  if (d < 0 || d >= D || h < 0 || h >= H || w < 0 || w >= W) continue;
                  ref += X(co, d, h, w) * double(wv[size_t(((co * 2 + a) * 2 + b) * 2 + c)]);
                }
            CHECK(got[size_t(((co * 3 + od) * 2 + oh) * 5 + ow)] == doctest::Approx(ref).epsilon(1e-5));
          }
  }
  SUBCASE("ConvTranspose: strides (2, 1, 2), pads (1, 0, 0 / 0, 1, 1), output_padding (1, 0, 1), dilations (1, 2, 1)") {
    const std::vector<float> wv = wavy(2 * 3 * 2 * 2 * 2, 2.0);  // (C_in 2, C_out 3, 2, 2, 2)
    auto m = onnx::OnnxModule(model(13, {node("ConvTranspose", {"x", "w"}, {"y"}, "t3",
                                              {attr_ints("strides", {2, 1, 2}), attr_ints("pads", {1, 0, 0, 0, 1, 1}),
                                               attr_ints("output_padding", {1, 0, 1}), attr_ints("dilations", {1, 2, 1})})},
                                    {in}, {value("y", kFloat, {})}, {init_f("w", {2, 3, 2, 2, 2}, wv)}));
    const Tensor y = m.forward(x);
    // D: 3 * 2 + 1 + 1 + 1 - 1 = 8; H: 2 + 2 + 1 - 1 = 4; W: 4 * 2 + 1 + 1 + 1 - 1 = 10.
    REQUIRE(y.shape() == Shape{1, 3, 8, 4, 10});
    std::vector<double> ref(static_cast<size_t>(3 * 8 * 4 * 10), 0.0);
    for (int64_t ci = 0; ci < C; ++ci)
      for (int64_t d = 0; d < D; ++d)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w)
            for (int64_t co = 0; co < 3; ++co)
              for (int64_t a = 0; a < 2; ++a)
                for (int64_t b = 0; b < 2; ++b)
                  for (int64_t c = 0; c < 2; ++c) {
                    const int64_t od = d * 2 + a - 1, oh = h + 2 * b, ow = w * 2 + c;
                    if (od < 0 || od >= 8 || oh >= 4 || ow >= 10) continue;
                    ref[size_t(((co * 8 + od) * 4 + oh) * 10 + ow)] +=
                        X(ci, d, h, w) * double(wv[size_t((((ci * 3 + co) * 2 + a) * 2 + b) * 2 + c)]);
                  }
    check_values(y, ref, 1e-5, 1e-5);
  }
  SUBCASE("AveragePool: kernel (2, 3, 2), strides (2, 2, 1), pads (1, 1, 0 / 0, 1, 1), ceil_mode, count_include_pad 0") {
    auto m = onnx::OnnxModule(model(13, {node("AveragePool", {"x"}, {"y"}, "p3",
                                              {attr_ints("kernel_shape", {2, 3, 2}), attr_ints("strides", {2, 2, 1}),
                                               attr_ints("pads", {1, 1, 0, 0, 1, 1}), attr_i("ceil_mode", 1)})},
                                    {in}, {value("y", kFloat, {})}));
    const Tensor y = m.forward(x);
    // D: ceil((4 + 1 - 2) / 2) + 1 = 3; H: ceil((3 + 2 - 3) / 2) + 1 = 2; W: 5 + 1 - 2 + 1 = 5.
    REQUIRE(y.shape() == Shape{1, 2, 3, 2, 5});
    const std::vector<double> got = y.to_vector<double>();
    for (int64_t c = 0; c < C; ++c)
      for (int64_t od = 0; od < 3; ++od)
        for (int64_t oh = 0; oh < 2; ++oh)
          for (int64_t ow = 0; ow < 5; ++ow) {
            double sum = 0;
            int count = 0;
            for (int64_t d = od * 2 - 1; d < od * 2 - 1 + 2; ++d)
              for (int64_t h = oh * 2 - 1; h < oh * 2 - 1 + 3; ++h)
                for (int64_t w = ow; w < ow + 2; ++w)
                  if (d >= 0 && d < D && h >= 0 && h < H && w >= 0 && w < W) sum += X(c, d, h, w), ++count;
            CHECK(got[size_t(((c * 3 + od) * 2 + oh) * 5 + ow)] == doctest::Approx(sum / count).epsilon(1e-5));
          }
  }
}
