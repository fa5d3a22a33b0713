// libFuzzer target for the ONNX reader: decodes a ModelProto from arbitrary bytes; when that
// succeeds, writes it back, decodes the written bytes and requires the two parses to be equal, and
// converts every initializer's values (without a model folder, so external data only errors).
// Malformed input must end in latent::Error; anything else (a crash, a sanitizer report, a leak,
// another exception, an unequal round trip) is a finding. Built by tests/fuzz/run_fuzz.sh.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "autograd/error.h"
#include "onnx_io/onnx_model.h"
#include "onnx_io/onnx_tensor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace onnx = latent::onnx;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  onnx::ModelProto first;
  try {
    first = onnx::decode_model(bytes);
  } catch (const latent::Error&) {
    return 0;  // rejected with a one-line message: the expected outcome for most inputs
  }
  const std::string written = onnx::encode_model(first);
  try {
    const onnx::ModelProto second = onnx::decode_model(written);
    if (!(first == second)) {
      std::fprintf(stderr, "onnx_fuzz: the re-written model parses differently\n");
      std::abort();
    }
    if (onnx::encode_model(second) != written) {
      std::fprintf(stderr, "onnx_fuzz: writing is not deterministic\n");
      std::abort();
    }
  } catch (const latent::Error& e) {
    std::fprintf(stderr, "onnx_fuzz: the re-written model does not parse: %s\n", e.what());
    std::abort();
  }
  for (const onnx::TensorProto& t : first.graph.initializer) {
    try {
      (void)onnx::tensor_to_doubles(t);
    } catch (const latent::Error&) {
    }
  }
  return 0;
}
