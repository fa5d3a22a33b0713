#include "protocol.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <iterator>
#include <nlohmann/json.hpp>

namespace latent::serve {

using nlohmann::json;

namespace {

[[noreturn]] void bad_request(std::string message) { throw ProtocolError{400, std::move(message)}; }

// Depth of arrays and objects, counted before parsing so that a body of 100,000 '[' costs one
// linear scan and a 400 instead of a deep recursive structure.
void check_depth(std::string_view body) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) bad_request(fmt::format("JSON nested deeper than {} levels", kMaxJsonDepth));
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

json parse_body(std::string_view body) {
  check_depth(body);
  try {
    return json::parse(body.begin(), body.end());
  } catch (const json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 1, ..." -> "malformed JSON: parse error at line 1, ..."
    std::string what = e.what();
    if (auto at = what.find("] "); at != std::string::npos) what = what.substr(at + 2);
    bad_request("malformed JSON: " + what);
  }
}

std::string type_name(const json& v) { return v.type_name(); }

// Appends the numbers of `v` (a number or arrays of them, nested) to `out`, naming the first bad one.
void flatten(const json& v, const std::string& what, std::vector<float>& out) {
  if (v.is_array()) {
    for (const json& e : v) flatten(e, what, out);
    return;
  }
  if (!v.is_number())
    bad_request(fmt::format("{}: value {} at position {} is not a number ({})", what, v.dump(-1, ' ', false, json::error_handler_t::replace),
                            out.size(), type_name(v)));
  const double d = v.get<double>();
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

void append_float(std::string& out, float v) { fmt::format_to(std::back_inserter(out), "{}", v); }

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

const char* datatype_name(DataType t) { return t == DataType::BOOL ? "BOOL" : "FP32"; }

int ModelSignature::output_index(std::string_view name) const {
  for (size_t i = 0; i < outputs.size(); ++i)
    if (outputs[i].name == name) return static_cast<int>(i);
  return -1;
}

std::string json_quote(std::string_view text) {
  return json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode_error(std::string_view message) { return "{\"error\":" + json_quote(message) + "}"; }

InferRequest parse_v2_infer(std::string_view body, const ModelSignature& sig) {
  const json doc = parse_body(body);
  if (!doc.is_object()) bad_request(fmt::format("the request body must be a JSON object; got {}", type_name(doc)));
  InferRequest r;
  if (auto it = doc.find("id"); it != doc.end()) {
    if (!it->is_string()) bad_request(fmt::format("'id' must be a string; got {}", type_name(*it)));
    r.id = it->get<std::string>();
  }
  if (auto it = doc.find("parameters"); it != doc.end()) {
    if (!it->is_object()) bad_request(fmt::format("'parameters' must be an object; got {}", type_name(*it)));
    if (auto p = it->find("preprocessed"); p != it->end()) {
      if (!p->is_boolean()) bad_request(fmt::format("parameters.preprocessed must be true or false; got {}", type_name(*p)));
      r.preprocessed = p->get<bool>();
    }
    if (it->contains("binary_data_output"))
      bad_request("the binary tensor extension (binary_data_output) is not supported yet; ask for JSON outputs");
  }
  auto inputs = doc.find("inputs");
  if (inputs == doc.end() || !inputs->is_array()) bad_request("'inputs' must be an array of tensors");
  if (inputs->size() != 1)
    bad_request(fmt::format("model '{}' takes 1 input ('{}'); got {}", sig.name, sig.input.name, inputs->size()));
  const json& in = (*inputs)[0];
  if (!in.is_object()) bad_request(fmt::format("inputs[0] must be an object; got {}", type_name(in)));
  auto field = [&](const char* key) -> const json& {
    auto f = in.find(key);
    if (f == in.end()) bad_request(fmt::format("inputs[0] has no '{}'", key));
    return *f;
  };
  const json& name = field("name");
  if (!name.is_string() || name.get<std::string>() != sig.input.name)
    bad_request(fmt::format("unknown input {} for model '{}' (its input is '{}')",
                            name.dump(-1, ' ', false, json::error_handler_t::replace), sig.name, sig.input.name));
  const std::string what = fmt::format("input '{}'", sig.input.name);
  const json& datatype = field("datatype");
  if (!datatype.is_string() || datatype.get<std::string>() != datatype_name(sig.input.datatype))
    bad_request(fmt::format("{}: datatype {} does not match the model's {}", what,
                            datatype.dump(-1, ' ', false, json::error_handler_t::replace), datatype_name(sig.input.datatype)));
  if (auto p = in.find("parameters"); p != in.end() && p->is_object() && p->contains("binary_data_size"))
    bad_request("the binary tensor extension (binary_data_size) is not supported yet; send the data as JSON");
  const json& shape_json = field("shape");
  std::vector<int64_t> shape;
  if (!shape_json.is_array()) bad_request(fmt::format("{}: 'shape' must be an array of integers", what));
  for (const json& d : shape_json) {
    if (!d.is_number_integer()) bad_request(fmt::format("{}: 'shape' must be an array of integers; got {}", what, shape_json.dump()));
    shape.push_back(d.get<int64_t>());
  }
  const std::vector<int64_t> model_shape{-1, sig.input.width};
  if (shape.size() != 2 || shape[0] < 1 || shape[1] != sig.input.width)
    bad_request(fmt::format("{}: shape {} does not match the model's {}", what, shape_text(shape), shape_text(model_shape)));
  if (shape[0] > (int64_t{1} << 31) / std::max<int64_t>(sig.input.width, 1))
    bad_request(fmt::format("{}: shape {} is too large", what, shape_text(shape)));
  const json& data = field("data");
  if (!data.is_array()) bad_request(fmt::format("{}: 'data' must be an array; got {}", what, type_name(data)));
  r.rows = shape[0];
  r.values.reserve(static_cast<size_t>(r.rows * sig.input.width));
  flatten(data, what, r.values);
  if (static_cast<int64_t>(r.values.size()) != r.rows * sig.input.width)
    bad_request(fmt::format("{}: shape {} holds {} values but 'data' has {}", what, shape_text(shape),
                            r.rows * sig.input.width, r.values.size()));
  if (auto outs = doc.find("outputs"); outs != doc.end()) {
    if (!outs->is_array()) bad_request("'outputs' must be an array of {\"name\": ...}");
    for (const json& o : *outs) {
      auto n = o.is_object() ? o.find("name") : o.end();
      if (!o.is_object() || n == o.end() || !n->is_string()) bad_request("each of 'outputs' must be an object with a string 'name'");
      if (auto p = o.find("parameters"); p != o.end() && p->is_object() && p->value("binary_data", false))
        bad_request("the binary tensor extension (binary_data) is not supported yet; ask for JSON outputs");
      const int index = sig.output_index(n->get<std::string>());
      if (index < 0)
        bad_request(fmt::format("unknown output '{}' for model '{}' (it has {})", n->get<std::string>(), sig.name, output_names(sig)));
      r.outputs.push_back(index);
    }
  }
  if (r.outputs.empty())
    for (size_t i = 0; i < sig.outputs.size(); ++i) r.outputs.push_back(static_cast<int>(i));
  return r;
}

std::string encode_v2_infer(const ModelSignature& sig, const InferRequest& request, const std::vector<OutputRows>& outputs) {
  std::string out;
  out.reserve(64 + static_cast<size_t>(request.rows) * 16 * static_cast<size_t>(sig.input.width));
  out += "{\"model_name\":" + json_quote(sig.name) + ",\"model_version\":\"1\"";
  if (request.id) out += ",\"id\":" + json_quote(*request.id);
  out += ",\"outputs\":[";
  for (size_t k = 0; k < request.outputs.size(); ++k) {
    const TensorSpec& spec = sig.outputs[static_cast<size_t>(request.outputs[k])];
    const OutputRows& rows = outputs[static_cast<size_t>(request.outputs[k])];
    if (k) out += ',';
    fmt::format_to(std::back_inserter(out), "{{\"name\":\"{}\",\"datatype\":\"{}\",\"shape\":[{}", spec.name,
                   datatype_name(spec.datatype), request.rows);
    if (spec.width > 0) fmt::format_to(std::back_inserter(out), ",{}", spec.width);
    out += "],\"data\":[";
    const size_t n = static_cast<size_t>(request.rows * std::max<int64_t>(spec.width, 1));
    for (size_t i = 0; i < n; ++i) {
      if (i) out += ',';
      if (spec.datatype == DataType::BOOL) out += rows.values[i] != 0 ? "true" : "false";
      else append_float(out, rows.values[i]);
    }
    out += "]}";
  }
  out += "]}";
  return out;
}

InferRequest parse_v1_predict(std::string_view body, const ModelSignature& sig) {
  const json doc = parse_body(body);
  if (!doc.is_object()) bad_request(fmt::format("the request body must be a JSON object; got {}", type_name(doc)));
  auto instances = doc.find("instances");
  if (instances == doc.end() || !instances->is_array() || instances->empty())
    bad_request("'instances' must be a non-empty array of instances");
  InferRequest r;
  r.rows = static_cast<int64_t>(instances->size());
  r.values.reserve(static_cast<size_t>(r.rows * sig.input.width));
  for (size_t i = 0; i < instances->size(); ++i) {
    const size_t before = r.values.size();
    const std::string what = fmt::format("instances[{}]", i);
    flatten((*instances)[i], what, r.values);
    if (static_cast<int64_t>(r.values.size() - before) != sig.input.width)
      bad_request(fmt::format("{}: has {} values; model '{}' expects {}", what, r.values.size() - before, sig.name, sig.input.width));
  }
  for (size_t i = 0; i < sig.outputs.size(); ++i) r.outputs.push_back(static_cast<int>(i));
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
    json shape = t.width > 0 ? json::array({-1, t.width}) : json::array({-1});
    return json{{"name", t.name}, {"datatype", datatype_name(t.datatype)}, {"shape", shape}};
  };
  json outputs = json::array();
  for (const TensorSpec& o : sig.outputs) outputs.push_back(tensor(o));
  json doc{{"name", sig.name}, {"versions", {"1"}}, {"platform", "latent"},
           {"inputs", json::array({tensor(sig.input)})}, {"outputs", outputs}};
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode_server_metadata() {
  return R"({"name":"latent","version":"0.1.0","extensions":[]})";
}

}  // namespace latent::serve
