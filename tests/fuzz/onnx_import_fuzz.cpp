// libFuzzer target for the ONNX importer (onnx_io/onnx_import*.cpp): bytes -> ModelProto ->
// OnnxModule (node validation, opset semantics, initializer handling) -> a run on small inputs made
// from the declared input types and shapes (dynamic dims are 2; models whose declared inputs exceed
// 4096 elements are built but not run). Tensors sized by values in the model are limited to 2^20
// elements here (onnx::max_created_elements), so a hostile shape fails with latent::Error rather
// than exhausting the fuzzer's memory. Every failure must be a one-line latent::Error; a run must
// return one tensor per declared output. Anything else is a finding.
#include <cmath>

#include "autograd/error.h"
#include "onnx_io/onnx_import.h"
#include "onnx_io/onnx_model.h"
#include "ops/creation.h"
#include "ops/shape_ops.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

constexpr const char* kTarget = "onnx_import_fuzz";

void check_error(const latent::Error& e) {
  if (std::string_view(e.what()).find('\n') != std::string_view::npos) latent::fuzz::finding(kTarget, "a multi-line error");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace latent;
  namespace onnx = latent::onnx;
  onnx::max_created_elements() = int64_t{1} << 20;
  onnx::ModelProto model;
  try {
    model = onnx::decode_model({reinterpret_cast<const char*>(data), size});
  } catch (const Error& e) {
    check_error(e);
    return 0;
  }
  std::shared_ptr<onnx::OnnxModule> m;
  try {
    m = std::make_shared<onnx::OnnxModule>(model);
  } catch (const Error& e) {
    check_error(e);
    return 0;
  }
  std::vector<Tensor> inputs;
  for (const onnx::ValueSpec& spec : m->inputs()) {
    Shape shape;
    int64_t count = 1;
    if (spec.has_shape) {
      if (spec.dims.size() > 6) return 0;
      for (int64_t d : spec.dims) {
        const int64_t n = d < 0 ? 2 : d;
        if (n > 4096 || (count *= n) > 4096) return 0;
        shape.push_back(n);
      }
    } else {
      shape = {2, 3};
      count = 6;
    }
    const DType dtype = spec.elem_type == 11 ? kFloat64 : spec.elem_type == 7 ? kInt64 : kFloat32;
    std::vector<double> values(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) values[size_t(i)] = dtype == kInt64 ? double(i % 3) : 0.25 * double(i % 9) - 1.0;
    inputs.push_back(to_dtype(from_vector(values, shape), dtype));
  }
  try {
    const std::vector<Tensor> outputs = m->run(inputs);
    if (outputs.size() != m->outputs().size()) fuzz::finding(kTarget, "a run returned the wrong number of outputs");
    for (const Tensor& t : outputs)
      if (!t.defined()) fuzz::finding(kTarget, "a run returned an undefined output");
  } catch (const Error& e) {
    check_error(e);
  }
  return 0;
}
