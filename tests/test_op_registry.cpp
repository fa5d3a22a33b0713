// One identity per op (ops/op_registry.h), and the worked example of docs/design.md "How to add an
// op": a test-only activation, test_softsign(x) = x / (1 + |x|), added the way the checklist says,
// with its module, gradcheck, CUDA run, and its ONNX export and import rows registered the way the
// library's own rows are (one row each, keyed by the op's unique name / ONNX op type).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <typeindex>

#include "helpers.h"
#include "latent.h"
#include "onnx_io/onnx_export.h"
#include "onnx_io/onnx_export_graph.h"
#include "onnx_io/onnx_import.h"
#include "onnx_io/onnx_import_ops.h"
#include "ops/trace.h"

using namespace latent;
using namespace latent::testing;

namespace {

// ---- the test-only op, step by step as in docs/design.md "How to add an op" ----

// Step 1-3 (ops/): the op struct with a unique name, its forward and its backward. A library
// activation gets its math from two scalar_math.h entries (forward, backward) run by PointwiseOp,
// which gives the CPU loops and the CUDA kernels; this one, living in a test, composes ops, which
// run on every device.
struct TestSoftsignOp {
  static constexpr const char* name = "test_softsign";
  using Ctx = OpContext;
  static Tensor forward(Ctx* ctx, const Tensor& x) {
    if (ctx) ctx->save(x);
    return div(x, add(abs(x), 1.0));
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    Tensor x = ctx.saved(0, name);
    Tensor d = add(abs(x), 1.0);
    return {div(g, mul(d, d))};  // d/dx x / (1 + |x|) = 1 / (1 + |x|)^2
  }
};
Tensor test_softsign(const Tensor& x) { return apply<TestSoftsignOp>(x); }

// Step 4 (models/nn/layers.h): the module.
class TestSoftsign : public nn::Module {
 public:
  Tensor forward(const Tensor& input) override { return test_softsign(input); }
};

// Step 5 (onnx_io/onnx_op_tables.cpp): one export row and one import row. The library writes them
// in the two table literals; a test registers them.
std::string emit_test_softsign(const onnx::exporter::Emit& e) { return e.node("TestSoftsign", {e.in[0]}); }
const bool kExportRow = (onnx::exporter::register_export_rule("test_softsign", emit_test_softsign), true);
const bool kImportRow = (onnx::detail::register_import_op(
                             "TestSoftsign", {{1}, onnx::detail::compile_unary, {},
                                              [](const Tensor& x) { return test_softsign(x); }}),
                         true);

struct FakeOpA {};
struct FakeOpB {};

}  // namespace

TEST_SUITE("op_registry") {

TEST_CASE("every op has its own name") {
  const std::vector<std::string> dups = op_registry().duplicates();
  INFO("ops sharing a name: " << fmt::format("{}", fmt::join(dups, "; ")));
  CHECK(dups.empty());
  // The ops that once shared "pow", "add"... and "max" have names of their own.
  for (const char* name : {"pow", "pow_scalar", "rpow", "add", "add_scalar", "sub_scalar", "mul_scalar", "div_scalar",
                           "rsub", "max", "max_dim", "min_dim", "softmax", "log_softmax", "pad", "batch_norm", "relu",
                           "conv2d", "cat", "test_softsign"})
    CHECK_MESSAGE(op_registry().contains(name), name);
}

TEST_CASE("the registry reports two op types that share a name") {
  OpRegistry registry;
  registry.add("twin", "twin", typeid(FakeOpA));
  registry.add("twin", "twin", typeid(FakeOpA));  // the same type again: one entry
  registry.add("single", "single", typeid(FakeOpB));
  CHECK(registry.duplicates().empty());
  registry.add("twin", "twin", typeid(FakeOpB));
  const std::vector<std::string> dups = registry.duplicates();
  REQUIRE(dups.size() == 1);
  CHECK(dups[0].find("twin:") == 0);
  CHECK(dups[0].find("FakeOpA") != std::string::npos);
  CHECK(dups[0].find("FakeOpB") != std::string::npos);
  CHECK(registry.ops().size() == 2);
}

TEST_CASE("an overload keeps the user function's name in messages and grad_fn, its own in the trace") {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  trace::Tracer tracer;
  Tensor y, z, w;
  {
    trace::TraceGuard guard(tracer);
    y = mul(x, 2.0);
    z = pow(x, 3.0);
    w = pow(2.0, x);
  }
  CHECK(std::string(y.grad_fn()->name()) == "mul");
  CHECK(std::string(z.grad_fn()->name()) == "pow");
  CHECK(std::string(w.grad_fn()->name()) == "pow");
  REQUIRE(tracer.records.size() == 3);
  CHECK(std::string(tracer.records[0].op) == "mul_scalar");
  CHECK(std::string(tracer.records[1].op) == "pow_scalar");
  CHECK(std::string(tracer.records[2].op) == "rpow");
  CHECK_THROWS_WITH_SUBSTR(max(zeros({2, 0}), 1), "[max] cannot reduce dim 1 of size 0");
}

TEST_CASE("test-only op: values, gradcheck, module") {
  Tensor x = tensor({-3.0, -0.5, 0.0, 0.25, 4.0});
  std::vector<double> expected;
  for (double v : {-3.0, -0.5, 0.0, 0.25, 4.0}) expected.push_back(v / (1 + std::abs(v)));
  check_values(test_softsign(x), expected, 1e-6);
  TestSoftsign module;
  check_values(module.forward(x), expected, 1e-6);
  CHECK(module.type_name() == "TestSoftsign");

  Tensor a = det_randn({3, 4}, 7);
  GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return test_softsign(in[0]).sum(); }, {a});
  INFO(r.report);
  CHECK(r.ok);
}

TEST_CASE("test-only op: CUDA against CPU") {
  if (!device_available(kCUDA)) {
    const std::string line = "cuda: skipped: " + device_unavailable_reason(kCUDA);
    MESSAGE(line);
    return;
  }
  Tensor x = det_randn({64}, 3, false);
  check_close(to_device(test_softsign(to_device(x, kCUDA)), kCPU), test_softsign(x), 1e-6);
}

TEST_CASE("test-only op: ONNX export and import through its table rows") {
  CHECK(kExportRow);
  CHECK(kImportRow);
  struct Net : nn::Module {
    Tensor forward(const Tensor& x) override { return test_softsign(mul(x, 3.0)); }
  } net;
  Tensor x = det_randn({2, 5}, 11, false);
  onnx::ModelProto m = onnx::export_module(net, {x});
  bool found = false;
  for (const onnx::NodeProto& n : m.graph.node) found = found || n.op_type == "TestSoftsign";
  CHECK(found);
  auto imported = std::make_shared<onnx::OnnxModule>(m);
  check_close(imported->forward(x), net.forward(x), 1e-6);
}

}  // TEST_SUITE
