// The wire formats of `latent serve`, with no knowledge of sockets: KServe v2 / Triton HTTP JSON
// (infer requests and responses, model and server metadata) with Triton's binary tensor
// extension (a JSON header of Inference-Header-Content-Length bytes followed by raw tensors), and
// KServe v1 (`instances` -> `predictions`). A request body goes in as bytes and comes out as checked rows of float32, or as
// a ProtocolError carrying the HTTP status and a one-line message naming what was wrong.
//
//   ModelSignature sig = ...;                       // input `input` FP32 [-1, 784], outputs ...
//   InferRequest r = parse_v2_infer(body, sig);     // throws ProtocolError{400, "input 'input': ..."}
//   std::string reply = encode_v2_infer(sig, r, outputs);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace latent::serve {

/// A request the protocol rejects: the HTTP status (4xx) and a message for `{"error": ...}`.
struct ProtocolError {
  int status;
  std::string message;
};

/// Element types on the wire (the names of the v2 protocol: "FP32", "BOOL", "BYTES").
enum class DataType { FP32, BOOL, BYTES };

/// The v2 name of a data type ("FP32").
const char* datatype_name(DataType t);

/// One named tensor of a model's signature; `width` is the per-row size (shape [-1, width]), or 0
/// for one value per row (shape [-1]).
struct TensorSpec {
  std::string name;
  DataType datatype = DataType::FP32;
  int64_t width = 0;
};

/// What a served model takes and gives: one FP32 input of shape [-1, D] and named outputs; image
/// models also take PNG files as the BYTES input `image` (shape [-1]) in place of `input`.
struct ModelSignature {
  std::string name;
  TensorSpec input;
  std::optional<TensorSpec> image_input;
  std::vector<TensorSpec> outputs;
  /// The index of output `name` in `outputs`, or -1.
  int output_index(std::string_view name) const;
};

/// Rows of one output for some samples: `values` holds rows x max(width, 1) numbers (BOOL as 0/1).
struct OutputRows {
  std::vector<float> values;
};

/// A parsed, checked infer request.
struct InferRequest {
  std::optional<std::string> id;   ///< the request `id`, echoed in the reply
  int64_t rows = 0;                ///< batch size N
  std::vector<float> values;       ///< N x D input values, row-major, all finite (empty when `images`)
  std::vector<std::string> images; ///< the N PNG files of the `image` input, when it was sent
  bool preprocessed = false;       ///< parameters.preprocessed: skip the stored preprocessing
  std::vector<int> outputs;        ///< indices into the signature's outputs, in the order asked
  std::vector<bool> binary;        ///< per entry of `outputs`: sent as raw bytes (binary extension)
};

/// An encoded infer reply: with binary outputs, the JSON header is the first `header_length`
/// bytes of `body` (sent as Inference-Header-Content-Length) and the raw tensors follow.
struct InferReply {
  std::string body;
  std::optional<size_t> header_length;
};

/// Largest nesting of arrays and objects accepted in a JSON body.
constexpr int kMaxJsonDepth = 32;

/// Parses a v2 infer body (`{"id", "inputs": [{name, shape, datatype, data}], "outputs": [{name}],
/// "parameters": {"preprocessed": true}}`) against `sig`. Data may be flat or nested. With
/// `header_length` (the Inference-Header-Content-Length header), the JSON is that many bytes and an
/// input with `"parameters": {"binary_data_size": n}` takes its n bytes (little-endian FP32) from
/// what follows; `binary_data_output` (request) and `binary_data` (per output) ask for raw outputs.
InferRequest parse_v2_infer(std::string_view body, const ModelSignature& sig,
                            std::optional<size_t> header_length = std::nullopt);

/// The v2 reply: model name, version "1", the echoed id and the requested outputs, each as JSON
/// `data` or, when asked, as raw bytes after the JSON (`"parameters": {"binary_data_size": n}`).
/// `outputs` is indexed like `sig.outputs` and holds `rows` rows of each.
InferReply encode_v2_infer(const ModelSignature& sig, const InferRequest& request, const std::vector<OutputRows>& outputs);

/// Parses a v1 predict body `{"instances": [[...], ...]}` (each instance D numbers, flat or nested).
InferRequest parse_v1_predict(std::string_view body, const ModelSignature& sig);

/// The v1 reply `{"predictions": [...]}`: one object of all outputs per instance, or for a model
/// with a single output, that output's row itself.
std::string encode_v1_predict(const ModelSignature& sig, int64_t rows, const std::vector<OutputRows>& outputs);

/// GET /v2/models/{name}: name, versions, platform, inputs and outputs with -1 as the batch dimension.
std::string encode_model_metadata(const ModelSignature& sig);

/// GET /v2: server name, version and supported extensions.
std::string encode_server_metadata();

/// `{"error": "message"}` with the message escaped.
std::string encode_error(std::string_view message);

/// A JSON string literal (quotes included); invalid UTF-8 is replaced, never thrown on.
std::string json_quote(std::string_view text);

/// Writes `v` as JSON number text at `out` (room for 32 characters) and returns the end: at most
/// nine significant digits, trailing zeros dropped, in plain notation for magnitudes in [1e-4, 1e9)
/// (the text reads back as exactly `v`: nine digits put it within 5e-9 of v relatively, inside
/// float32's half step of 3e-8); other values through std::to_chars. About 4x faster than
/// std::to_chars's shortest form, which dominated encoding a reply of 784 floats.
char* write_json_float(char* out, float v);

}  // namespace latent::serve
