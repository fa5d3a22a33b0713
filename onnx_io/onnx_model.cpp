// Decode and encode for each ONNX message (see onnx_model.h). Decoding into an existing struct
// merges, as protobuf does when a singular message field appears twice: scalars are replaced,
// lists appended. Each decode function switches on the full tag, so a known field that arrives
// with an unexpected wire type is kept as an unknown field rather than misread.
#include "onnx_model.h"

#include <cstring>
#include <fstream>

#include "../autograd/error.h"

namespace latent::onnx {

using pb::tag;
using W = pb::WireType;

namespace {

int64_t next_index(size_t size) { return static_cast<int64_t>(size); }

/// Decodes the current field as a nested message appended to `list`.
template <class Message>
void read_into(pb::Reader& r, const char* name, std::vector<Message>& list) {
  r.read_message(name, next_index(list.size()), [&](pb::Reader& in) { decode(in, list.emplace_back()); });
}

/// Decodes (merges) the current field into an optional message (std::optional or Box), creating
/// it when absent.
template <class Slot>
void read_into(pb::Reader& r, const char* name, Slot& slot) {
  r.read_message(name, -1, [&](pb::Reader& in) { decode(in, slot ? *slot : slot.emplace()); });
}

template <class Message>
void write_message(pb::Writer& w, uint32_t field, const Message& m) {
  const size_t mark = w.begin_message(field);
  encode(w, m);
  w.end_message(mark);
}

template <class Message>
void write_messages(pb::Writer& w, uint32_t field, const std::vector<Message>& list) {
  for (const Message& m : list) write_message(w, field, m);
}

void write_nonempty(pb::Writer& w, uint32_t field, const std::string& s) {
  if (!s.empty()) w.write_string(field, s);
}

void write_strings(pb::Writer& w, uint32_t field, const std::vector<std::string>& list) {
  for (const std::string& s : list) w.write_string(field, s);
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

bool same_bits(const std::optional<float>& a, const std::optional<float>& b) {
  return a.has_value() == b.has_value() && (!a || std::memcmp(&*a, &*b, sizeof(float)) == 0);
}

}  // namespace

std::string data_type_name(int32_t data_type) {
  static const char* const names[] = {"UNDEFINED", "FLOAT",  "UINT8",   "INT8",   "UINT16",    "INT16",
                                      "INT32",     "INT64",  "STRING",  "BOOL",   "FLOAT16",   "DOUBLE",
                                      "UINT32",    "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
  if (data_type >= 0 && data_type <= 16) return names[data_type];
  return fmt::format("data type {}", data_type);
}

// ---------------------------------------------------------------------------------------------
// Equality (the messages that hold floats compare them bit for bit)

bool TensorProto::operator==(const TensorProto& o) const {
  return dims == o.dims && data_type == o.data_type && same_bits(float_data, o.float_data) &&
         int32_data == o.int32_data && string_data == o.string_data && int64_data == o.int64_data &&
         name == o.name && raw_data == o.raw_data && same_bits(double_data, o.double_data) &&
         uint64_data == o.uint64_data && doc_string == o.doc_string && external_data == o.external_data &&
         data_location == o.data_location && unknown == o.unknown;
}

bool GraphProto::operator==(const GraphProto& o) const {
  return node == o.node && name == o.name && initializer == o.initializer && doc_string == o.doc_string &&
         input == o.input && output == o.output && value_info == o.value_info && unknown == o.unknown;
}

bool AttributeProto::operator==(const AttributeProto& o) const {
  return name == o.name && type == o.type && same_bits(f, o.f) && i == o.i && s == o.s && t == o.t && g == o.g &&
         same_bits(floats, o.floats) && ints == o.ints && strings == o.strings && tensors == o.tensors &&
         graphs == o.graphs && ref_attr_name == o.ref_attr_name && doc_string == o.doc_string &&
         unknown == o.unknown;
}

// ---------------------------------------------------------------------------------------------
// Decode

void decode(pb::Reader& r, StringStringEntryProto& m) {
  using namespace field::string_entry;
  while (r.next()) {
    switch (r.tag()) {
      case tag(kKey, W::Len): m.key = r.read_string("key"); break;
      case tag(kValue, W::Len): m.value = r.read_string("value"); break;
      default: r.skip_unknown(m.unknown);
    }
  }
}

void decode(pb::Reader& r, OperatorSetIdProto& m) {
  using namespace field::opset_id;
  while (r.next()) {
    switch (r.tag()) {
      case tag(kDomain, W::Len): m.domain = r.read_string("domain"); break;
      case tag(kVersion, W::Varint): m.version = r.read_int64("version"); break;
      default: r.skip_unknown(m.unknown);
    }
  }
}

void decode(pb::Reader& r, TensorProto& m) {
  using namespace field::tensor;
  while (r.next()) {
    switch (r.tag()) {
      case tag(kDims, W::Varint):
      case tag(kDims, W::Len): r.read_repeated(m.dims, "dims"); break;
      case tag(kDataType, W::Varint): m.data_type = r.read_int32("data_type"); break;
      case tag(kFloatData, W::Fixed32):
      case tag(kFloatData, W::Len): r.read_repeated(m.float_data, "float_data"); break;
      case tag(kInt32Data, W::Varint):
      case tag(kInt32Data, W::Len): r.read_repeated(m.int32_data, "int32_data"); break;
      case tag(kStringData, W::Len):
        m.string_data.push_back(r.read_string("string_data", next_index(m.string_data.size())));
        break;
      case tag(kInt64Data, W::Varint):
      case tag(kInt64Data, W::Len): r.read_repeated(m.int64_data, "int64_data"); break;
      case tag(kName, W::Len): m.name = r.read_string("name"); break;
      case tag(kRawData, W::Len): m.raw_data = r.read_string("raw_data"); break;
      case tag(kDoubleData, W::Fixed64):
      case tag(kDoubleData, W::Len): r.read_repeated(m.double_data, "double_data"); break;
      case tag(kUint64Data, W::Varint):
      case tag(kUint64Data, W::Len): r.read_repeated(m.uint64_data, "uint64_data"); break;
      case tag(kDocString, W::Len): m.doc_string = r.read_string("doc_string"); break;
      case tag(kExternalData, W::Len): read_into(r, "external_data", m.external_data); break;
      case tag(kDataLocation, W::Varint): m.data_location = r.read_int32("data_location"); break;
      default: r.skip_unknown(m.unknown);
    }
  }
}

void decode(pb::Reader& r, TensorShapeProto::Dimension& m) {
  using namespace field::dimension;
  while (r.next()) {
    switch (r.tag()) {
      case tag(kDimValue, W::Varint):  // a oneof: the last member read wins
        m.dim_value = r.read_int64("dim_value");
        m.dim_param.reset();
        break;
      case tag(kDimParam, W::Len):
        m.dim_param = r.read_string("dim_param");
        m.dim_value.reset();
        break;
      default: r.skip_unknown(m.unknown);
    }
  }
}

void decode(pb::Reader& r, TensorShapeProto& m) {
  while (r.next()) {
    if (r.tag() == tag(field::shape::kDim, W::Len)) {
      read_into(r, "dim", m.dim);
    } else {
      r.skip_unknown(m.unknown);
    }
  }
}

void decode(pb::Reader& r, TypeProto::Tensor& m) {
  using namespace field::type_tensor;
  while (r.next()) {
    switch (r.tag()) {
      case tag(kElemType, W::Varint): m.elem_type = r.read_int32("elem_type"); break;
      case tag(kShape, W::Len): read_into(r, "shape", m.shape); break;
      default: r.skip_unknown(m.unknown);
    }
  }
}

void decode(pb::Reader& r, TypeProto& m) {
  while (r.next()) {
    if (r.tag() == tag(field::type::kTensorType, W::Len)) {
      read_into(r, "tensor_type", m.tensor_type);
    } else {
      r.skip_unknown(m.unknown);
    }
  }
}

void decode(pb::Reader& r, ValueInfoProto& m) {
  using namespace field::value_info;
  while (r.next()) {
    switch (r.tag()) {
      case tag(kName, W::Len): m.name = r.read_string("name"); break;
      case tag(kType, W::Len): read_into(r, "type", m.type); break;
      case tag(kDocString, W::Len): m.doc_string = r.read_string("doc_string"); break;
      default: r.skip_unknown(m.unknown);
    }
  }
}

void decode(pb::Reader& r, AttributeProto& m) {
  using namespace field::attribute;
  while (r.next()) {
    switch (r.tag()) {
      case tag(kName, W::Len): m.name = r.read_string("name"); break;
      case tag(kF, W::Fixed32): m.f = r.read_float("f"); break;
      case tag(kI, W::Varint): m.i = r.read_int64("i"); break;
      case tag(kS, W::Len): m.s = r.read_string("s"); break;
      case tag(kT, W::Len): read_into(r, "t", m.t); break;
      case tag(kG, W::Len): read_into(r, "g", m.g); break;
      case tag(kFloats, W::Fixed32):
      case tag(kFloats, W::Len): r.read_repeated(m.floats, "floats"); break;
      case tag(kInts, W::Varint):
      case tag(kInts, W::Len): r.read_repeated(m.ints, "ints"); break;
      case tag(kStrings, W::Len): m.strings.push_back(r.read_string("strings", next_index(m.strings.size()))); break;
      case tag(kTensors, W::Len): read_into(r, "tensors", m.tensors); break;
      case tag(kGraphs, W::Len): read_into(r, "graphs", m.graphs); break;
      case tag(kDocString, W::Len): m.doc_string = r.read_string("doc_string"); break;
      case tag(kType, W::Varint): m.type = r.read_int32("type"); break;
      case tag(kRefAttrName, W::Len): m.ref_attr_name = r.read_string("ref_attr_name"); break;
      default: r.skip_unknown(m.unknown);
    }
  }
}

void decode(pb::Reader& r, NodeProto& m) {
  using namespace field::node;
  while (r.next()) {
    switch (r.tag()) {
      case tag(kInput, W::Len): m.input.push_back(r.read_string("input", next_index(m.input.size()))); break;
      case tag(kOutput, W::Len): m.output.push_back(r.read_string("output", next_index(m.output.size()))); break;
      case tag(kName, W::Len): m.name = r.read_string("name"); break;
      case tag(kOpType, W::Len): m.op_type = r.read_string("op_type"); break;
      case tag(kAttribute, W::Len): read_into(r, "attribute", m.attribute); break;
      case tag(kDocString, W::Len): m.doc_string = r.read_string("doc_string"); break;
      case tag(kDomain, W::Len): m.domain = r.read_string("domain"); break;
      default: r.skip_unknown(m.unknown);
    }
  }
}

void decode(pb::Reader& r, GraphProto& m) {
  using namespace field::graph;
  while (r.next()) {
    switch (r.tag()) {
      case tag(kNode, W::Len): read_into(r, "node", m.node); break;
      case tag(kName, W::Len): m.name = r.read_string("name"); break;
      case tag(kInitializer, W::Len): read_into(r, "initializer", m.initializer); break;
      case tag(kDocString, W::Len): m.doc_string = r.read_string("doc_string"); break;
      case tag(kInput, W::Len): read_into(r, "input", m.input); break;
      case tag(kOutput, W::Len): read_into(r, "output", m.output); break;
      case tag(kValueInfo, W::Len): read_into(r, "value_info", m.value_info); break;
      default: r.skip_unknown(m.unknown);
    }
  }
}

void decode(pb::Reader& r, ModelProto& m) {
  using namespace field::model;
  while (r.next()) {
    switch (r.tag()) {
      case tag(kIrVersion, W::Varint): m.ir_version = r.read_int64("ir_version"); break;
      case tag(kProducerName, W::Len): m.producer_name = r.read_string("producer_name"); break;
      case tag(kProducerVersion, W::Len): m.producer_version = r.read_string("producer_version"); break;
      case tag(kDomain, W::Len): m.domain = r.read_string("domain"); break;
      case tag(kModelVersion, W::Varint): m.model_version = r.read_int64("model_version"); break;
      case tag(kDocString, W::Len): m.doc_string = r.read_string("doc_string"); break;
      case tag(kGraph, W::Len): r.read_message("graph", -1, [&](pb::Reader& in) { decode(in, m.graph); }); break;
      case tag(kOpsetImport, W::Len): read_into(r, "opset_import", m.opset_import); break;
      case tag(kMetadataProps, W::Len): read_into(r, "metadata_props", m.metadata_props); break;
      default: r.skip_unknown(m.unknown);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Encode (fields in field-number order, as protobuf writes them; unknown fields last)

void encode(pb::Writer& w, const StringStringEntryProto& m) {
  write_nonempty(w, field::string_entry::kKey, m.key);
  write_nonempty(w, field::string_entry::kValue, m.value);
  w.write_unknown(m.unknown);
}

void encode(pb::Writer& w, const OperatorSetIdProto& m) {
  // The default domain is written even when empty, as onnx's own tools do.
  w.write_string(field::opset_id::kDomain, m.domain);
  if (m.version != 0) w.write_int64(field::opset_id::kVersion, m.version);
  w.write_unknown(m.unknown);
}

void encode(pb::Writer& w, const TensorProto& m) {
  using namespace field::tensor;
  w.write_unpacked(kDims, m.dims);  // proto2 without [packed = true]: one tag per dim
  if (m.data_type != 0) w.write_int32(kDataType, m.data_type);
  w.write_packed(kFloatData, m.float_data);
  w.write_packed(kInt32Data, m.int32_data);
  write_strings(w, kStringData, m.string_data);
  w.write_packed(kInt64Data, m.int64_data);
  write_nonempty(w, kName, m.name);
  write_nonempty(w, kRawData, m.raw_data);
  w.write_packed(kDoubleData, m.double_data);
  w.write_packed(kUint64Data, m.uint64_data);
  write_nonempty(w, kDocString, m.doc_string);
  write_messages(w, kExternalData, m.external_data);
  if (m.data_location != 0) w.write_int32(kDataLocation, m.data_location);
  w.write_unknown(m.unknown);
}

void encode(pb::Writer& w, const TensorShapeProto::Dimension& m) {
  if (m.dim_value) w.write_int64(field::dimension::kDimValue, *m.dim_value);
  if (m.dim_param) w.write_string(field::dimension::kDimParam, *m.dim_param);
  w.write_unknown(m.unknown);
}

void encode(pb::Writer& w, const TensorShapeProto& m) {
  write_messages(w, field::shape::kDim, m.dim);
  w.write_unknown(m.unknown);
}

void encode(pb::Writer& w, const TypeProto::Tensor& m) {
  if (m.elem_type != 0) w.write_int32(field::type_tensor::kElemType, m.elem_type);
  if (m.shape) write_message(w, field::type_tensor::kShape, *m.shape);
  w.write_unknown(m.unknown);
}

void encode(pb::Writer& w, const TypeProto& m) {
  if (m.tensor_type) write_message(w, field::type::kTensorType, *m.tensor_type);
  w.write_unknown(m.unknown);
}

void encode(pb::Writer& w, const ValueInfoProto& m) {
  using namespace field::value_info;
  write_nonempty(w, kName, m.name);
  if (m.type) write_message(w, kType, *m.type);
  write_nonempty(w, kDocString, m.doc_string);
  w.write_unknown(m.unknown);
}

void encode(pb::Writer& w, const AttributeProto& m) {
  using namespace field::attribute;
  write_nonempty(w, kName, m.name);
  if (m.f) w.write_float(kF, *m.f);
  if (m.i) w.write_int64(kI, *m.i);
  if (m.s) w.write_string(kS, *m.s);
  if (m.t) write_message(w, kT, *m.t);
  if (m.g) write_message(w, kG, *m.g);
  w.write_unpacked(kFloats, m.floats);  // proto2 without [packed = true]
  w.write_unpacked(kInts, m.ints);
  write_strings(w, kStrings, m.strings);
  write_messages(w, kTensors, m.tensors);
  write_messages(w, kGraphs, m.graphs);
  write_nonempty(w, kDocString, m.doc_string);
  if (m.type != 0) w.write_int32(kType, m.type);
  write_nonempty(w, kRefAttrName, m.ref_attr_name);
  w.write_unknown(m.unknown);
}

void encode(pb::Writer& w, const NodeProto& m) {
  using namespace field::node;
  write_strings(w, kInput, m.input);
  write_strings(w, kOutput, m.output);
  write_nonempty(w, kName, m.name);
  write_nonempty(w, kOpType, m.op_type);
  write_messages(w, kAttribute, m.attribute);
  write_nonempty(w, kDocString, m.doc_string);
  write_nonempty(w, kDomain, m.domain);
  w.write_unknown(m.unknown);
}

void encode(pb::Writer& w, const GraphProto& m) {
  using namespace field::graph;
  write_messages(w, kNode, m.node);
  write_nonempty(w, kName, m.name);
  write_messages(w, kInitializer, m.initializer);
  write_nonempty(w, kDocString, m.doc_string);
  write_messages(w, kInput, m.input);
  write_messages(w, kOutput, m.output);
  write_messages(w, kValueInfo, m.value_info);
  w.write_unknown(m.unknown);
}

void encode(pb::Writer& w, const ModelProto& m) {
  using namespace field::model;
  if (m.ir_version != 0) w.write_int64(kIrVersion, m.ir_version);
  write_nonempty(w, kProducerName, m.producer_name);
  write_nonempty(w, kProducerVersion, m.producer_version);
  write_nonempty(w, kDomain, m.domain);
  if (m.model_version != 0) w.write_int64(kModelVersion, m.model_version);
  write_nonempty(w, kDocString, m.doc_string);
  if (!(m.graph == GraphProto{})) write_message(w, kGraph, m.graph);
  write_messages(w, kOpsetImport, m.opset_import);
  write_messages(w, kMetadataProps, m.metadata_props);
  w.write_unknown(m.unknown);
}

// ---------------------------------------------------------------------------------------------
// Whole models and files

ModelProto decode_model(std::string_view bytes, std::string source) {
  return decode_message<ModelProto>(bytes, "model", std::move(source));
}

std::string encode_model(const ModelProto& model) { return encode_message(model); }

std::string read_file_bytes(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    fail("onnx", "cannot read '{}': {}", path.string(),
         std::filesystem::exists(path, ec) ? "not a regular file" : "no such file");
  }
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) fail("onnx", "cannot read '{}': {}", path.string(), ec.message());
  constexpr uintmax_t kLimit = uintmax_t{1} << 31;
  if (size >= kLimit) {
    fail("onnx", "'{}' is {} bytes: protobuf files must stay under 2 GiB (keep large tensors in external data)",
         path.string(), size);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("onnx", "cannot open '{}'", path.string());
  std::string bytes(static_cast<size_t>(size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (in.gcount() != static_cast<std::streamsize>(size)) fail("onnx", "short read on '{}'", path.string());
  return bytes;
}

ModelProto load_model(const std::filesystem::path& path) { return decode_model(read_file_bytes(path), path.string()); }

TensorProto load_tensor(const std::filesystem::path& path) {
  return decode_message<TensorProto>(read_file_bytes(path), "tensor", path.string());
}

void save_model(const ModelProto& model, const std::filesystem::path& path) {
  const std::string bytes = encode_model(model);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail("onnx", "cannot open '{}' for writing", path.string());
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) fail("onnx", "failed to write '{}'", path.string());
}

}  // namespace latent::onnx
