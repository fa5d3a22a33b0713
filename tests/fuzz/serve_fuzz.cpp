// libFuzzer target for the request parser of `latent serve` (tools/serve/protocol.cpp), the code
// that faces the network: parses arbitrary bytes as a v2 infer body and as a v1 predict body for a
// 4-feature model that also takes PNG files as a BYTES `image` input. Malformed input must end in a ProtocolError with a 4xx status and a message;
// an accepted request must hold rows x 4 finite values and known outputs, and its reply must
// encode. Anything else (a crash, a sanitizer report, a leak, another exception) is a finding.
// Built by tests/fuzz/run_serve_fuzz.sh.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "tools/serve/protocol.h"

namespace {

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "serve_fuzz: %s\n", what);
  std::abort();
}

void check_accepted(const latent::serve::InferRequest& r, const latent::serve::ModelSignature& sig) {
  if (!r.images.empty()) {  // the `image` input: PNG files, decoded later by the served model
    if (static_cast<int64_t>(r.images.size()) != r.rows) finding("accepted images do not fill the shape");
    return;
  }
  if (r.rows < 1 || static_cast<int64_t>(r.values.size()) != r.rows * sig.input.width) finding("accepted values do not fill the shape");
  for (float v : r.values)
    if (!std::isfinite(v)) finding("accepted a non-finite value");
  for (int k : r.outputs)
    if (k < 0 || k >= static_cast<int>(sig.outputs.size())) finding("accepted an unknown output");
  std::vector<latent::serve::OutputRows> outputs(sig.outputs.size());
  for (size_t k = 0; k < sig.outputs.size(); ++k)
    outputs[k].values.assign(static_cast<size_t>(r.rows * std::max<int64_t>(sig.outputs[k].width, 1)), 0.5f);
  if (latent::serve::encode_v2_infer(sig, r, outputs).body.empty() || latent::serve::encode_v1_predict(sig, r.rows, outputs).empty())
    finding("empty reply");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace latent::serve;
  static const ModelSignature sig{"m", {"input", DataType::FP32, 4}, TensorSpec{"image", DataType::BYTES, 0},
                                  {{"reconstruction", DataType::FP32, 4}, {"code", DataType::FP32, 2},
                                   {"score", DataType::FP32, 0}, {"is_anomaly", DataType::BOOL, 0}}};
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (bool v1 : {false, true}) {
    try {
      const InferRequest r = v1 ? parse_v1_predict(body, sig) : parse_v2_infer(body, sig);
      check_accepted(r, sig);
    } catch (const ProtocolError& e) {
      if (e.status < 400 || e.status > 499 || e.message.empty()) finding("a rejection without a 4xx status and a message");
      if (encode_error(e.message).empty()) finding("empty error body");
    }
  }
  // The binary extension: the first two bytes choose the JSON header's length in the rest.
  if (size >= 2) {
    const std::string_view rest = body.substr(2);
    const size_t header = (static_cast<size_t>(data[0]) | static_cast<size_t>(data[1]) << 8) % (rest.size() + 2);
    try {
      check_accepted(parse_v2_infer(rest, sig, header), sig);
    } catch (const ProtocolError& e) {
      if (e.status < 400 || e.status > 499 || e.message.empty()) finding("a rejection without a 4xx status and a message");
    }
  }
  return 0;
}
