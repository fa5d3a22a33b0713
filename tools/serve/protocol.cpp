#include "protocol.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <cmath>
#include <iterator>

namespace latent::serve {

namespace dom = simdjson::dom;

namespace {

[[noreturn]] void bad_request(std::string message) { throw ProtocolError{400, std::move(message)}; }

// Each HTTP thread keeps a parser (its buffers grow to the largest body seen); bodies over 1 MiB
// get a parser of their own, so a few large requests do not pin memory in every thread.
constexpr size_t kSharedParserBytes = 1 << 20;

// A parser that refuses nesting deeper than kMaxJsonDepth (a body of 100,000 '[' costs one pass
// and a 400, never a deep structure).
struct Parser {
  dom::parser parser;
  Parser() {
    if (parser.allocate(64 << 10, kMaxJsonDepth) != simdjson::SUCCESS) throw std::bad_alloc();
  }
};

dom::element parse_body(Parser& p, std::string_view body) {
  auto result = p.parser.parse(body.data(), body.size(), true);
  if (result.error() == simdjson::DEPTH_ERROR) bad_request(fmt::format("JSON nested deeper than {} levels", kMaxJsonDepth));
  if (result.error()) bad_request(fmt::format("malformed JSON: {}", simdjson::error_message(result.error())));
  return result.value_unsafe();
}

const char* type_name(dom::element v) {
  switch (v.type()) {
    case dom::element_type::ARRAY: return "an array";
    case dom::element_type::OBJECT: return "an object";
    case dom::element_type::STRING: return "a string";
    case dom::element_type::BOOL: return "a boolean";
    case dom::element_type::NULL_VALUE: return "null";
    default: return "a number";
  }
}

// The value as JSON text, cut at 40 characters, for messages.
std::string snippet(dom::element v) {
  std::string text = simdjson::minify(v);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

bool is_number(dom::element v) {
  const auto t = v.type();
  return t == dom::element_type::DOUBLE || t == dom::element_type::INT64 || t == dom::element_type::UINT64;
}

// A field of an object, or nullopt.
std::optional<dom::element> member(dom::object o, std::string_view key) {
  auto r = o[key];
  if (r.error()) return std::nullopt;
  return r.value_unsafe();
}

// Appends the numbers of `v` (a number or arrays of them, nested) to `out`, naming the first bad one.
void flatten(dom::element v, const std::string& what, std::vector<float>& out) {
  if (v.type() == dom::element_type::ARRAY) {
    const dom::array items = v.get_array().value_unsafe();  // a local: a range over a temporary result dangles
    for (dom::element e : items) flatten(e, what, out);
    return;
  }
  if (!is_number(v))
    bad_request(fmt::format("{}: value {} at position {} is not a number ({})", what, snippet(v), out.size(), type_name(v)));
  const double d = v.get_double().value_unsafe();
  const float f = static_cast<float>(d);
  if (!std::isfinite(f))
    bad_request(fmt::format("{}: value at position {} is not a finite float32 ({}): NaN and Inf are refused", what, out.size(), d));
  out.push_back(f);
}

std::string shape_text(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

std::string output_names(const ModelSignature& sig) {
  std::string names;
  for (const TensorSpec& o : sig.outputs) names += (names.empty() ? "" : ", ") + o.name;
  return names;
}

void append_float(std::string& out, float v) {
  char text[32];
  out.append(text, write_json_float(text, v));
}

// One row of an output: `[v, ...]` for width > 0, the bare value for width 0.
void append_row(std::string& out, const TensorSpec& spec, const OutputRows& rows, int64_t row) {
  const int64_t w = std::max<int64_t>(spec.width, 1);
  const float* p = rows.values.data() + row * w;
  auto value = [&](float v) {
    if (spec.datatype == DataType::BOOL) out += v != 0 ? "true" : "false";
    else append_float(out, v);
  };
  if (spec.width == 0) return value(*p);
  out += '[';
  for (int64_t k = 0; k < w; ++k) {
    if (k) out += ',';
    value(p[k]);
  }
  out += ']';
}

}  // namespace

char* write_json_float(char* out, float v) {
  // 10^-4 .. 10^12 (the negative powers as their nearest doubles: no float equals one).
  static constexpr double kPow10[] = {1e-4, 1e-3, 1e-2, 1e-1, 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12};
  static constexpr char kPairs[] =
      "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
      "8081828384858687888990919293949596979899";
  const double a = std::fabs(static_cast<double>(v));
  if (!(a >= 1e-4 && a < 1e9)) return std::to_chars(out, out + 32, v).ptr;  // 0, tiny, huge, NaN, Inf
  // k: the decimal exponent of a's leading digit (-4..8). a is in [2^e, 2^(e+1)) with e its binary
  // exponent, so k is floor(e log10 2) or one more; n = a x 10^(8-k), with 10^(8-k) <= 10^12 an
  // exact double and the product rounded once, has nine digits.
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  const int e = static_cast<int>((b >> 23) & 0xff) - 127;
  int k = (e * 78913) >> 18;  // floor(e x log10 2) for |e| < 2^12
  if (a >= kPow10[k + 5]) ++k;
  auto digits = [&] { return static_cast<uint32_t>(a * kPow10[12 - k] + 0.5); };
  uint32_t n = digits();
  if (n >= 1'000'000'000u) {  // a rounds up to the next power of ten (k < 8: a < 1e9 is exact)
    ++k;
    n = digits();
  }
  if (v < 0) *out++ = '-';
  char d[9];
  d[0] = static_cast<char>('0' + n / 100'000'000u);
  uint32_t rest = n % 100'000'000u;
  for (int i = 7; i >= 1; i -= 2, rest /= 100) std::memcpy(d + i, kPairs + 2 * (rest % 100), 2);
  int significant = 9;
  while (significant > 1 && d[significant - 1] == '0') --significant;
  if (k >= 0) {
    for (int i = 0; i <= k; ++i) *out++ = d[i];
    if (significant > k + 1) {
      *out++ = '.';
      for (int i = k + 1; i < significant; ++i) *out++ = d[i];
    }
  } else {
    std::memcpy(out, "0.000", 5);  // "0." and the zeros after the point (at most three)
    out += 1 - k;
    std::memcpy(out, d, 9);
    out += significant;
  }
  return out;
}

const char* datatype_name(DataType t) { return t == DataType::BOOL ? "BOOL" : t == DataType::BYTES ? "BYTES" : "FP32"; }

int ModelSignature::output_index(std::string_view name) const {
  for (size_t i = 0; i < outputs.size(); ++i)
    if (outputs[i].name == name) return static_cast<int>(i);
  return -1;
}

std::string json_quote(std::string_view text) {
  // Bodies were validated as UTF-8 by the parser, but a path or a file name may not be.
  const bool utf8 = simdjson::validate_utf8(text.data(), text.size());
  std::string out = "\"";
  out.reserve(text.size() + 2);
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (c == '\n') out += "\\n";
    else if (u < 0x20) fmt::format_to(std::back_inserter(out), "\\u{:04x}", u);
    else if (u >= 0x80 && !utf8) out += '?';
    else out += c;
  }
  return out + "\"";
}

std::string encode_error(std::string_view message) { return "{\"error\":" + json_quote(message) + "}"; }

namespace {

// Standard base64 (RFC 4648, '=' padding, no line breaks), as JSON carries BYTES tensors.
std::optional<std::string> decode_base64(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + static_cast<size_t>(k)];
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else if (pad > 0 || (v[k] = value(c)) < 0) {
        return std::nullopt;
      }
    }
    const uint32_t n = static_cast<uint32_t>(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
    out += static_cast<char>(n >> 16);
    if (pad < 2) out += static_cast<char>(n >> 8 & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

// The `image` input: N PNG files, as base64 strings in JSON or, with binary_data_size, as Triton
// lays out BYTES (a 4-byte little-endian length before each element).
void parse_images(dom::object in, const ModelSignature& sig, std::optional<int64_t> binary_size, std::string_view binary,
                  InferRequest& r) {
  const std::string what = "input 'image'";
  auto datatype = member(in, "datatype");
  if (!datatype || datatype->type() != dom::element_type::STRING || datatype->get_string().value_unsafe() != "BYTES")
    bad_request(fmt::format("{}: datatype {} does not match the model's BYTES", what, datatype ? snippet(*datatype) : "(none)"));
  auto shape = member(in, "shape");
  std::vector<int64_t> dims;
  if (shape && shape->type() == dom::element_type::ARRAY) {
    const dom::array list = shape->get_array().value_unsafe();
    for (dom::element d : list) dims.push_back(d.type() == dom::element_type::INT64 ? d.get_int64().value_unsafe() : -2);
  }
  if (dims.size() != 1 || dims[0] < 1 || dims[0] > 65536)
    bad_request(fmt::format("{}: shape {} does not match the model's [-1] (one PNG file per row)", what, shape_text(dims)));
  r.rows = dims[0];
  if (binary_size) {
    if (static_cast<size_t>(*binary_size) != binary.size())
      bad_request(fmt::format("{}: binary_data_size {} but {} bytes follow the JSON header", what, *binary_size, binary.size()));
    size_t at = 0;
    for (int64_t i = 0; i < r.rows; ++i) {
      uint32_t n = 0;
      if (binary.size() - at < 4) bad_request(fmt::format("{}: element {} is cut short", what, i));
      std::memcpy(&n, binary.data() + at, 4);
      at += 4;
      if (binary.size() - at < n) bad_request(fmt::format("{}: element {} claims {} bytes, {} remain", what, i, n, binary.size() - at));
      r.images.emplace_back(binary.substr(at, n));
      at += n;
    }
    if (at != binary.size()) bad_request(fmt::format("{}: {} bytes after the last element", what, binary.size() - at));
  } else {
    auto data = member(in, "data");
    if (!data || data->type() != dom::element_type::ARRAY) bad_request(fmt::format("{}: 'data' must be an array of base64 strings", what));
    const dom::array list = data->get_array().value_unsafe();
    for (dom::element e : list) {
      const size_t i = r.images.size();
      if (e.type() != dom::element_type::STRING) bad_request(fmt::format("{}: data[{}] is {}, not a base64 string", what, i, type_name(e)));
      auto bytes = decode_base64(e.get_string().value_unsafe());
      if (!bytes) bad_request(fmt::format("{}: data[{}] is not valid base64", what, i));
      r.images.push_back(std::move(*bytes));
    }
    if (static_cast<int64_t>(r.images.size()) != r.rows)
      bad_request(fmt::format("{}: shape {} holds {} files but 'data' has {}", what, shape_text(dims), r.rows, r.images.size()));
  }
  (void)sig;
}

}  // namespace

InferRequest parse_v2_infer(std::string_view body, const ModelSignature& sig, std::optional<size_t> header_length) {
  std::string_view binary;
  if (header_length) {
    if (*header_length > body.size())
      bad_request(fmt::format("Inference-Header-Content-Length {} is beyond the body's {} bytes", *header_length, body.size()));
    binary = body.substr(*header_length);
    body = body.substr(0, *header_length);
  }
  static thread_local Parser shared;
  std::optional<Parser> own;
  const dom::element doc = parse_body(body.size() > kSharedParserBytes ? own.emplace() : shared, body);
  if (doc.type() != dom::element_type::OBJECT) bad_request(fmt::format("the request body must be a JSON object; got {}", type_name(doc)));
  const dom::object top = doc.get_object().value_unsafe();
  InferRequest r;
  bool binary_default = false;
  if (auto id = member(top, "id")) {
    if (id->type() != dom::element_type::STRING) bad_request(fmt::format("'id' must be a string; got {}", type_name(*id)));
    r.id = std::string(id->get_string().value_unsafe());
  }
  if (auto params = member(top, "parameters")) {
    if (params->type() != dom::element_type::OBJECT) bad_request(fmt::format("'parameters' must be an object; got {}", type_name(*params)));
    const dom::object p = params->get_object().value_unsafe();
    if (auto pre = member(p, "preprocessed")) {
      if (pre->type() != dom::element_type::BOOL)
        bad_request(fmt::format("parameters.preprocessed must be true or false; got {}", type_name(*pre)));
      r.preprocessed = pre->get_bool().value_unsafe();
    }
    if (auto b = member(p, "binary_data_output")) {
      if (b->type() != dom::element_type::BOOL)
        bad_request(fmt::format("parameters.binary_data_output must be true or false; got {}", type_name(*b)));
      binary_default = b->get_bool().value_unsafe();
    }
  }
  auto inputs = member(top, "inputs");
  if (!inputs || inputs->type() != dom::element_type::ARRAY) bad_request("'inputs' must be an array of tensors");
  const dom::array list = inputs->get_array().value_unsafe();
  if (list.size() != 1) bad_request(fmt::format("model '{}' takes 1 input ('{}'); got {}", sig.name, sig.input.name, list.size()));
  const dom::element in_element = list.at(0).value_unsafe();
  if (in_element.type() != dom::element_type::OBJECT) bad_request(fmt::format("inputs[0] must be an object; got {}", type_name(in_element)));
  const dom::object in = in_element.get_object().value_unsafe();
  auto field = [&](const char* key) {
    auto f = member(in, key);
    if (!f) bad_request(fmt::format("inputs[0] has no '{}'", key));
    return *f;
  };
  const dom::element name = field("name");
  const bool image = sig.image_input && name.type() == dom::element_type::STRING && name.get_string().value_unsafe() == "image";
  if (!image && (name.type() != dom::element_type::STRING || name.get_string().value_unsafe() != sig.input.name))
    bad_request(fmt::format("unknown input {} for model '{}' (its input is '{}'{})", snippet(name), sig.name, sig.input.name,
                            sig.image_input ? ", or 'image' for PNG files" : ""));
  const std::string what = fmt::format("input '{}'", sig.input.name);
  std::optional<int64_t> binary_size;
  if (auto p = member(in, "parameters"); p && p->type() == dom::element_type::OBJECT) {
    if (auto size = member(p->get_object().value_unsafe(), "binary_data_size")) {
      if (size->type() != dom::element_type::INT64 || size->get_int64().value_unsafe() < 0)
        bad_request(fmt::format("{}: binary_data_size must be a non-negative integer; got {}", what, snippet(*size)));
      if (!header_length) bad_request(fmt::format("{}: binary_data_size needs the Inference-Header-Content-Length header", what));
      binary_size = size->get_int64().value_unsafe();
    }
  }
  if (image) {
    parse_images(in, sig, binary_size, binary, r);
  } else {
    const dom::element datatype = field("datatype");
    if (datatype.type() != dom::element_type::STRING || datatype.get_string().value_unsafe() != datatype_name(sig.input.datatype))
      bad_request(fmt::format("{}: datatype {} does not match the model's {}", what, snippet(datatype), datatype_name(sig.input.datatype)));
    const dom::element shape_json = field("shape");
    std::vector<int64_t> shape;
    if (shape_json.type() != dom::element_type::ARRAY) bad_request(fmt::format("{}: 'shape' must be an array of integers", what));
    const dom::array dims = shape_json.get_array().value_unsafe();
    for (dom::element d : dims) {
      if (d.type() != dom::element_type::INT64) bad_request(fmt::format("{}: 'shape' must be an array of integers; got {}", what, snippet(shape_json)));
      shape.push_back(d.get_int64().value_unsafe());
    }
    const std::vector<int64_t> model_shape{-1, sig.input.width};
    if (shape.size() != 2 || shape[0] < 1 || shape[1] != sig.input.width)
      bad_request(fmt::format("{}: shape {} does not match the model's {}", what, shape_text(shape), shape_text(model_shape)));
    if (shape[0] > (int64_t{1} << 31) / std::max<int64_t>(sig.input.width, 1))
      bad_request(fmt::format("{}: shape {} is too large", what, shape_text(shape)));
    r.rows = shape[0];
    r.values.reserve(static_cast<size_t>(r.rows * sig.input.width));
    if (binary_size) {
      const int64_t expected = r.rows * sig.input.width * static_cast<int64_t>(sizeof(float));
      if (*binary_size != expected)
        bad_request(fmt::format("{}: binary_data_size {} does not match shape {} of FP32 ({} bytes)", what, *binary_size, shape_text(shape),
                                expected));
      if (static_cast<size_t>(*binary_size) != binary.size())
        bad_request(fmt::format("{}: binary_data_size {} but {} bytes follow the JSON header", what, *binary_size, binary.size()));
      r.values.resize(static_cast<size_t>(r.rows * sig.input.width));
      std::memcpy(r.values.data(), binary.data(), binary.size());  // little-endian FP32, as x86 and ARM hold it
      for (size_t i = 0; i < r.values.size(); ++i)
        if (!std::isfinite(r.values[i]))
          bad_request(fmt::format("{}: value at position {} is not finite: NaN and Inf are refused", what, i));
    } else {
      if (!binary.empty()) bad_request(fmt::format("{} bytes follow the JSON header but no input has binary_data_size", binary.size()));
      flatten(field("data"), what, r.values);
    }
    if (static_cast<int64_t>(r.values.size()) != r.rows * sig.input.width)
      bad_request(fmt::format("{}: shape {} holds {} values but 'data' has {}", what, shape_text(shape), r.rows * sig.input.width,
                              r.values.size()));
  }
  if (auto outs = member(top, "outputs")) {
    if (outs->type() != dom::element_type::ARRAY) bad_request("'outputs' must be an array of {\"name\": ...}");
    const dom::array requested = outs->get_array().value_unsafe();
    for (dom::element o : requested) {
      std::optional<dom::element> n;
      if (o.type() == dom::element_type::OBJECT) n = member(o.get_object().value_unsafe(), "name");
      if (!n || n->type() != dom::element_type::STRING) bad_request("each of 'outputs' must be an object with a string 'name'");
      bool as_binary = binary_default;
      if (auto p = member(o.get_object().value_unsafe(), "parameters"); p && p->type() == dom::element_type::OBJECT) {
        if (auto b = member(p->get_object().value_unsafe(), "binary_data")) {
          if (b->type() != dom::element_type::BOOL) bad_request(fmt::format("outputs: binary_data must be true or false; got {}", type_name(*b)));
          as_binary = b->get_bool().value_unsafe();
        }
      }
      const std::string_view output = n->get_string().value_unsafe();
      const int index = sig.output_index(output);
      if (index < 0) bad_request(fmt::format("unknown output '{}' for model '{}' (it has {})", output, sig.name, output_names(sig)));
      r.outputs.push_back(index);
      r.binary.push_back(as_binary);
    }
  }
  if (r.outputs.empty())
    for (size_t i = 0; i < sig.outputs.size(); ++i) {
      r.outputs.push_back(static_cast<int>(i));
      r.binary.push_back(binary_default);
    }
  return r;
}

InferReply encode_v2_infer(const ModelSignature& sig, const InferRequest& request, const std::vector<OutputRows>& outputs) {
  InferReply reply;
  std::string& out = reply.body;
  std::string raw;  // binary outputs, in order, after the JSON
  out.reserve(64 + static_cast<size_t>(request.rows) * 16 * static_cast<size_t>(sig.input.width));
  out += "{\"model_name\":" + json_quote(sig.name) + ",\"model_version\":\"1\"";
  if (request.id) out += ",\"id\":" + json_quote(*request.id);
  out += ",\"outputs\":[";
  for (size_t k = 0; k < request.outputs.size(); ++k) {
    const TensorSpec& spec = sig.outputs[static_cast<size_t>(request.outputs[k])];
    const OutputRows& rows = outputs[static_cast<size_t>(request.outputs[k])];
    const bool binary = k < request.binary.size() && request.binary[k];
    if (k) out += ',';
    fmt::format_to(std::back_inserter(out), "{{\"name\":\"{}\",\"datatype\":\"{}\",\"shape\":[{}", spec.name,
                   datatype_name(spec.datatype), request.rows);
    if (spec.width > 0) fmt::format_to(std::back_inserter(out), ",{}", spec.width);
    const size_t n = static_cast<size_t>(request.rows * std::max<int64_t>(spec.width, 1));
    if (binary) {
      // FP32 as little-endian 4-byte floats, BOOL as one byte each (Triton's layout).
      const size_t before = raw.size();
      if (spec.datatype == DataType::BOOL) {
        for (size_t i = 0; i < n; ++i) raw += static_cast<char>(rows.values[i] != 0);
      } else {
        raw.append(reinterpret_cast<const char*>(rows.values.data()), n * sizeof(float));
      }
      fmt::format_to(std::back_inserter(out), "],\"parameters\":{{\"binary_data_size\":{}}}}}", raw.size() - before);
      continue;
    }
    out += "],\"data\":[";
    for (size_t i = 0; i < n; ++i) {
      if (i) out += ',';
      if (spec.datatype == DataType::BOOL) out += rows.values[i] != 0 ? "true" : "false";
      else append_float(out, rows.values[i]);
    }
    out += "]}";
  }
  out += "]}";
  if (std::find(request.binary.begin(), request.binary.end(), true) != request.binary.end()) {
    reply.header_length = out.size();
    out += raw;
  }
  return reply;
}

InferRequest parse_v1_predict(std::string_view body, const ModelSignature& sig) {
  static thread_local Parser shared;
  std::optional<Parser> own;
  const dom::element doc = parse_body(body.size() > kSharedParserBytes ? own.emplace() : shared, body);
  if (doc.type() != dom::element_type::OBJECT) bad_request(fmt::format("the request body must be a JSON object; got {}", type_name(doc)));
  auto instances = member(doc.get_object().value_unsafe(), "instances");
  if (!instances || instances->type() != dom::element_type::ARRAY || instances->get_array().value_unsafe().size() == 0)
    bad_request("'instances' must be a non-empty array of instances");
  const dom::array list = instances->get_array().value_unsafe();
  InferRequest r;
  r.rows = static_cast<int64_t>(list.size());
  r.values.reserve(static_cast<size_t>(r.rows * sig.input.width));
  size_t i = 0;
  for (dom::element instance : list) {
    const size_t before = r.values.size();
    const std::string what = fmt::format("instances[{}]", i++);
    flatten(instance, what, r.values);
    if (static_cast<int64_t>(r.values.size() - before) != sig.input.width)
      bad_request(fmt::format("{}: has {} values; model '{}' expects {}", what, r.values.size() - before, sig.name, sig.input.width));
  }
  for (size_t k = 0; k < sig.outputs.size(); ++k) r.outputs.push_back(static_cast<int>(k));
  r.binary.assign(r.outputs.size(), false);
  return r;
}

std::string encode_v1_predict(const ModelSignature& sig, int64_t rows, const std::vector<OutputRows>& outputs) {
  std::string out = "{\"predictions\":[";
  for (int64_t i = 0; i < rows; ++i) {
    if (i) out += ',';
    if (sig.outputs.size() == 1) {
      append_row(out, sig.outputs[0], outputs[0], i);
      continue;
    }
    out += '{';
    for (size_t k = 0; k < sig.outputs.size(); ++k) {
      if (k) out += ',';
      out += json_quote(sig.outputs[k].name) + ':';
      append_row(out, sig.outputs[k], outputs[k], i);
    }
    out += '}';
  }
  out += "]}";
  return out;
}

std::string encode_model_metadata(const ModelSignature& sig) {
  auto tensor = [](const TensorSpec& t) {
    return fmt::format(R"({{"name":{},"datatype":"{}","shape":[-1{}]}})", json_quote(t.name), datatype_name(t.datatype),
                       t.width > 0 ? fmt::format(",{}", t.width) : "");
  };
  std::string outputs;
  for (const TensorSpec& o : sig.outputs) {
    if (!outputs.empty()) outputs += ',';
    outputs += tensor(o);
  }
  const std::string inputs = tensor(sig.input) + (sig.image_input ? "," + tensor(*sig.image_input) : "");
  return fmt::format(R"({{"name":{},"versions":["1"],"platform":"latent","inputs":[{}],"outputs":[{}]}})", json_quote(sig.name),
                     inputs, outputs);
}

std::string encode_server_metadata() {
  return R"({"name":"latent","version":"0.1.0","extensions":[]})";
}

}  // namespace latent::serve
