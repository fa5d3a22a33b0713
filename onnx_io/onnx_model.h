// ONNX messages as plain C++ structs, with one decode and one encode function per message over the
// wire codec in protobuf.h. Field numbers are the ones in onnx.proto (ONNX 1.12, IR version 8;
// Debian libonnx-dev: /usr/include/onnx/onnx.proto). Every message keeps the fields it does not
// know (training_info, functions, sparse tensors, segment, denotations...) and writes them back,
// so parse -> write -> parse gives an equal structure. Equality compares every field, unknown
// fields included, and floats bit for bit (so NaN payloads and -0.0 round-trip and compare equal).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protobuf.h"

namespace latent::onnx {

/// Field numbers from onnx.proto, one namespace per message.
namespace field {
/// onnx.proto's ModelProto message.
namespace model {
/// Field numbers of ModelProto, each named after its field in onnx.proto (k + CamelCase).
/// @{
inline constexpr uint32_t kIrVersion = 1, kProducerName = 2, kProducerVersion = 3, kDomain = 4, kModelVersion = 5,
                          kDocString = 6, kGraph = 7, kOpsetImport = 8, kMetadataProps = 14;
/// @}
}  // namespace model
/// onnx.proto's OperatorSetIdProto message.
namespace opset_id {
/// Field numbers of OperatorSetIdProto, each named after its field in onnx.proto (k + CamelCase).
/// @{
inline constexpr uint32_t kDomain = 1, kVersion = 2;
/// @}
}  // namespace opset_id
/// onnx.proto's StringStringEntryProto message.
namespace string_entry {
/// Field numbers of StringStringEntryProto, each named after its field in onnx.proto (k + CamelCase).
/// @{
inline constexpr uint32_t kKey = 1, kValue = 2;
/// @}
}  // namespace string_entry
/// onnx.proto's GraphProto message.
namespace graph {
/// Field numbers of GraphProto, each named after its field in onnx.proto (k + CamelCase).
/// @{
inline constexpr uint32_t kNode = 1, kName = 2, kInitializer = 5, kDocString = 10, kInput = 11, kOutput = 12,
                          kValueInfo = 13;
/// @}
}  // namespace graph
/// onnx.proto's NodeProto message.
namespace node {
/// Field numbers of NodeProto, each named after its field in onnx.proto (k + CamelCase).
/// @{
inline constexpr uint32_t kInput = 1, kOutput = 2, kName = 3, kOpType = 4, kAttribute = 5, kDocString = 6,
                          kDomain = 7;
/// @}
}  // namespace node
/// onnx.proto's AttributeProto message.
namespace attribute {
/// Field numbers of AttributeProto, each named after its field in onnx.proto (k + CamelCase).
/// @{
inline constexpr uint32_t kName = 1, kF = 2, kI = 3, kS = 4, kT = 5, kG = 6, kFloats = 7, kInts = 8, kStrings = 9,
                          kTensors = 10, kGraphs = 11, kDocString = 13, kType = 20, kRefAttrName = 21;
/// @}
}  // namespace attribute
/// onnx.proto's TensorProto message.
namespace tensor {
/// Field numbers of TensorProto, each named after its field in onnx.proto (k + CamelCase).
/// @{
inline constexpr uint32_t kDims = 1, kDataType = 2, kFloatData = 4, kInt32Data = 5, kStringData = 6,
                          kInt64Data = 7, kName = 8, kRawData = 9, kDoubleData = 10, kUint64Data = 11,
                          kDocString = 12, kExternalData = 13, kDataLocation = 14;
/// @}
}  // namespace tensor
/// onnx.proto's ValueInfoProto message.
namespace value_info {
/// Field numbers of ValueInfoProto, each named after its field in onnx.proto (k + CamelCase).
/// @{
inline constexpr uint32_t kName = 1, kType = 2, kDocString = 3;
/// @}
}  // namespace value_info
/// onnx.proto's TypeProto message.
namespace type {
/// Field numbers of TypeProto, each named after its field in onnx.proto (k + CamelCase).
/// @{
inline constexpr uint32_t kTensorType = 1;
/// @}
}  // namespace type
/// onnx.proto's TypeProto.Tensor message.
namespace type_tensor {
/// Field numbers of TypeProto.Tensor, each named after its field in onnx.proto (k + CamelCase).
/// @{
inline constexpr uint32_t kElemType = 1, kShape = 2;
/// @}
}  // namespace type_tensor
/// onnx.proto's TensorShapeProto message.
namespace shape {
/// Field numbers of TensorShapeProto, each named after its field in onnx.proto (k + CamelCase).
/// @{
inline constexpr uint32_t kDim = 1;
/// @}
}  // namespace shape
/// onnx.proto's TensorShapeProto.Dimension message.
namespace dimension {
/// Field numbers of TensorShapeProto.Dimension, each named after its field in onnx.proto (k + CamelCase).
/// @{
inline constexpr uint32_t kDimValue = 1, kDimParam = 2;
/// @}
}  // namespace dimension
}  // namespace field

/// An optional nested message held by pointer: std::optional's interface (bool test, *, ->,
/// emplace, reset, assignment from a value) with deep copies, at 8 bytes. An attribute holds its
/// rarely used tensor and graph this way, so a file of many small attributes cannot make the
/// decoder allocate hundreds of bytes per input byte.
template <class T>
class Box {
 public:
  Box() = default;
  /// Holds a deep copy of `value` (implicit, as std::optional's constructor is).
  Box(T value) : ptr_(std::make_unique<T>(std::move(value))) {}  // NOLINT: implicit, like optional
  /// Deep-copies the held message, if any.
  Box(const Box& other) : ptr_(other.ptr_ ? std::make_unique<T>(*other.ptr_) : nullptr) {}
  /// Takes the held message; `other` is left empty.
  Box(Box&&) noexcept = default;
  /// Deep-copies the held message of `other` (or empties this one).
  Box& operator=(const Box& other) {
    if (this != &other) ptr_ = other.ptr_ ? std::make_unique<T>(*other.ptr_) : nullptr;
    return *this;
  }
  /// Takes the held message of `other`.
  Box& operator=(Box&&) noexcept = default;
  ~Box() = default;

  /// True when a message is held.
  bool has_value() const { return ptr_ != nullptr; }
  /// True when a message is held.
  explicit operator bool() const { return ptr_ != nullptr; }
  /// The held message; undefined behaviour when empty (test first, as with std::optional).
  /// @{
  T& operator*() { return *ptr_; }
  const T& operator*() const { return *ptr_; }
  T* operator->() { return ptr_.get(); }
  const T* operator->() const { return ptr_.get(); }
  /// @}
  /// Replaces the content with a default-constructed message and returns it.
  T& emplace() {
    ptr_ = std::make_unique<T>();
    return *ptr_;
  }
  /// Drops the held message.
  void reset() { ptr_.reset(); }
  /// Equal when both are empty, or both hold equal messages.
  friend bool operator==(const Box& a, const Box& b) { return a ? (b && *a == *b) : !b; }

 private:
  std::unique_ptr<T> ptr_;
};

/// TensorProto.DataType.
enum class DataType : int32_t {
  Undefined = 0, Float = 1, Uint8 = 2, Int8 = 3, Uint16 = 4, Int16 = 5, Int32 = 6, Int64 = 7, String = 8,
  Bool = 9, Float16 = 10, Double = 11, Uint32 = 12, Uint64 = 13, Complex64 = 14, Complex128 = 15, Bfloat16 = 16,
};
/// "FLOAT", "INT64", ... or "data type 42" for values onnx.proto does not define.
std::string data_type_name(int32_t data_type);

/// AttributeProto.AttributeType.
enum class AttributeType : int32_t {
  Undefined = 0, Float = 1, Int = 2, String = 3, Tensor = 4, Graph = 5, Floats = 6, Ints = 7, Strings = 8,
  Tensors = 9, Graphs = 10, SparseTensor = 11, SparseTensors = 12, TypeProto = 13, TypeProtos = 14,
};

/// TensorProto.DataLocation.
enum class DataLocation : int32_t { Default = 0, External = 1 };

/// A key/value string pair (metadata_props, external_data entries).
struct StringStringEntryProto {
  /// Metadata key, e.g. "location" in a tensor's external_data.
  std::string key;
  /// The value for `key`.
  std::string value;
  /// Fields this version does not know, written back verbatim.
  pb::UnknownFields unknown;
  /// Compares every field, unknown ones included.
  bool operator==(const StringStringEntryProto&) const = default;
};

/// OperatorSetIdProto: the opset version a model imports for one operator domain.
struct OperatorSetIdProto {
  std::string domain;  ///< "" (or "ai.onnx") is the default domain
  /// Opset version, e.g. 17 for the default domain.
  int64_t version = 0;
  /// Fields this version does not know, written back verbatim.
  pb::UnknownFields unknown;
  /// Compares every field, unknown ones included.
  bool operator==(const OperatorSetIdProto&) const = default;
};

/// TensorProto: a named constant tensor (an initializer or an attribute value) and its data.
struct TensorProto {
  /// Shape, outermost first; empty for a scalar.
  std::vector<int64_t> dims;
  int32_t data_type = 0;  ///< a DataType value
  /// FLOAT (and COMPLEX64) elements when raw_data is not used.
  std::vector<float> float_data;
  std::vector<int32_t> int32_data;  ///< also int8/uint8/int16/uint16/bool/float16 values, one per element
  /// STRING elements, as bytes.
  std::vector<std::string> string_data;
  /// INT64 elements when raw_data is not used.
  std::vector<int64_t> int64_data;
  /// The name graph inputs and nodes refer to it by (empty in attributes).
  std::string name;
  std::string raw_data;  ///< little-endian, packed
  /// DOUBLE (and COMPLEX128) elements when raw_data is not used.
  std::vector<double> double_data;
  /// UINT32 and UINT64 elements when raw_data is not used.
  std::vector<uint64_t> uint64_data;
  /// Free-form documentation text.
  std::string doc_string;
  std::vector<StringStringEntryProto> external_data;  ///< location, offset, length, checksum
  int32_t data_location = 0;                          ///< a DataLocation value
  pb::UnknownFields unknown;                          ///< segment and anything newer
  /// Compares every field; float and double data bit for bit.
  bool operator==(const TensorProto& other) const;
};

/// One dimension of a TensorShapeProto: a value, a symbolic name ("batch"), or neither (unknown).
/// (Declared outside its message so that clang sees it complete before std::optional uses it.)
struct TensorShapeDimension {
  /// The size, when known.
  std::optional<int64_t> dim_value;
  /// A symbolic name such as "batch", when the size varies.
  std::optional<std::string> dim_param;
  pb::UnknownFields unknown;  ///< denotation
  /// Compares every field, unknown ones included.
  bool operator==(const TensorShapeDimension&) const = default;
};

/// TensorShapeProto: a tensor's dimensions, each a value, a name or unknown.
struct TensorShapeProto {
  /// One dimension (see TensorShapeDimension).
  using Dimension = TensorShapeDimension;
  /// Dimensions, outermost first.
  std::vector<Dimension> dim;
  /// Fields this version does not know, written back verbatim.
  pb::UnknownFields unknown;
  /// Compares every field, unknown ones included.
  bool operator==(const TensorShapeProto&) const = default;
};

/// TypeProto.Tensor: element type and shape.
struct TypeProtoTensor {
  int32_t elem_type = 0;                  ///< a DataType value
  std::optional<TensorShapeProto> shape;  ///< absent: rank unknown; present and empty: a scalar
  /// Fields this version does not know (denotation), written back verbatim.
  pb::UnknownFields unknown;
  /// Compares every field, unknown ones included.
  bool operator==(const TypeProtoTensor&) const = default;
};

/// TypeProto: the type of a graph value; latent reads the tensor kind only.
struct TypeProto {
  /// A tensor type: element type and shape (see TypeProtoTensor).
  using Tensor = TypeProtoTensor;
  std::optional<Tensor> tensor_type;  ///< sequence, map, optional and sparse types stay in `unknown`
  /// Non-tensor types and denotation, written back verbatim.
  pb::UnknownFields unknown;
  /// Compares every field, unknown ones included.
  bool operator==(const TypeProto&) const = default;
};

/// ValueInfoProto: a graph input, output or intermediate value with its type.
struct ValueInfoProto {
  /// The value's name, unique within its graph.
  std::string name;
  /// Its type (element type and shape), when given.
  std::optional<TypeProto> type;
  /// Free-form documentation text.
  std::string doc_string;
  /// Fields this version does not know, written back verbatim.
  pb::UnknownFields unknown;
  /// Compares every field, unknown ones included.
  bool operator==(const ValueInfoProto&) const = default;
};

struct NodeProto;

/// GraphProto: nodes in topological order, their constant initializers, and the typed inputs and outputs.
struct GraphProto {
  /// Nodes in topological order.
  std::vector<NodeProto> node;
  /// The graph's name.
  std::string name;
  /// Constant tensors (weights), each named as a graph value.
  std::vector<TensorProto> initializer;
  /// Free-form documentation text.
  std::string doc_string;
  /// Graph inputs (initializers may also be listed here).
  std::vector<ValueInfoProto> input;
  /// Graph outputs.
  std::vector<ValueInfoProto> output;
  /// Types of intermediate values (optional; shape inference fills it).
  std::vector<ValueInfoProto> value_info;
  pb::UnknownFields unknown;  ///< sparse_initializer, quantization_annotation
  /// Compares every field; floats bit for bit.
  bool operator==(const GraphProto& other) const;
};

/// One attribute. The single values keep their presence (onnx's checker requires the field that
/// matches `type` to be present even when it is 0), so they are optionals (t and g boxed).
struct AttributeProto {
  /// Attribute name, e.g. "kernel_shape".
  std::string name;
  int32_t type = 0;  ///< an AttributeType value
  /// The FLOAT value; set exactly when the file has the field (the one matching `type` must be).
  std::optional<float> f;
  /// The INT value; set exactly when the file has the field.
  std::optional<int64_t> i;
  /// The STRING value (bytes); set exactly when the file has the field.
  std::optional<std::string> s;
  /// TENSOR value, held by pointer.
  Box<TensorProto> t;
  /// GRAPH value (a subgraph of If/Loop), held by pointer.
  Box<GraphProto> g;
  /// FLOATS values.
  std::vector<float> floats;
  /// INTS values.
  std::vector<int64_t> ints;
  /// STRINGS values.
  std::vector<std::string> strings;
  /// TENSORS values.
  std::vector<TensorProto> tensors;
  /// GRAPHS values.
  std::vector<GraphProto> graphs;
  /// In a function body: the name of the caller's attribute this one refers to.
  std::string ref_attr_name;
  /// Free-form documentation text.
  std::string doc_string;
  pb::UnknownFields unknown;  ///< sparse tensors, type protos
  /// Compares every field; floats bit for bit.
  bool operator==(const AttributeProto& other) const;
};

/// NodeProto: one operator call in a graph.
struct NodeProto {
  /// Input value names in operator order; "" marks an omitted optional input.
  std::vector<std::string> input;
  /// Output value names in operator order.
  std::vector<std::string> output;
  /// Node name (optional, for diagnostics).
  std::string name;
  /// Operator name, e.g. "Gemm" or "Conv".
  std::string op_type;
  /// Operator domain; "" is the default ONNX domain.
  std::string domain;
  /// The node's attributes.
  std::vector<AttributeProto> attribute;
  /// Free-form documentation text.
  std::string doc_string;
  /// Fields this version does not know, written back verbatim.
  pb::UnknownFields unknown;
  /// Compares every field; attribute floats bit for bit.
  bool operator==(const NodeProto&) const = default;
};

/// ModelProto: the top-level message of an .onnx file.
struct ModelProto {
  /// ONNX IR version (latent writes 7 for opsets up to 14, 8 above).
  int64_t ir_version = 0;
  /// Opset version per operator domain the graph uses.
  std::vector<OperatorSetIdProto> opset_import;
  /// Name of the tool that wrote the model, e.g. "latent".
  std::string producer_name;
  /// Version of that tool.
  std::string producer_version;
  /// Reverse-DNS model namespace (optional).
  std::string domain;
  /// Version of the model itself (optional).
  int64_t model_version = 0;
  /// Free-form documentation text.
  std::string doc_string;
  /// The computation graph.
  GraphProto graph;
  /// Free-form key/value metadata.
  std::vector<StringStringEntryProto> metadata_props;
  pb::UnknownFields unknown;  ///< training_info, functions
  /// Compares every field; floats bit for bit.
  bool operator==(const ModelProto&) const = default;
};

/// Decodes (merges, as protobuf does) the fields of the message `r` is positioned in into `out`: scalars
/// are replaced, lists appended; fields of unexpected wire type are kept as unknown. Throws
/// latent::Error naming the field path and byte offset on malformed input.
/// @{
// One decode function per message: reads the fields of the message the reader is positioned in.
void decode(pb::Reader& r, StringStringEntryProto& out);
void decode(pb::Reader& r, OperatorSetIdProto& out);
void decode(pb::Reader& r, TensorProto& out);
void decode(pb::Reader& r, TensorShapeProto::Dimension& out);
void decode(pb::Reader& r, TensorShapeProto& out);
void decode(pb::Reader& r, TypeProto::Tensor& out);
void decode(pb::Reader& r, TypeProto& out);
void decode(pb::Reader& r, ValueInfoProto& out);
void decode(pb::Reader& r, AttributeProto& out);
void decode(pb::Reader& r, NodeProto& out);
void decode(pb::Reader& r, GraphProto& out);
void decode(pb::Reader& r, ModelProto& out);
/// @}

/// Appends the fields of `m` to `w`: known fields in field-number order, then the unknown ones.
/// Empty strings, zero scalars and empty lists are omitted, except optionals and the attribute
/// value that matches the attribute's type.
/// @{
// One encode function per message: appends its fields (known ones in field-number order, then the
// unknown ones). Empty strings, zero scalars and empty lists are omitted, except where presence
// carries meaning (optionals, and the attribute value that matches the attribute's type).
void encode(pb::Writer& w, const StringStringEntryProto& m);
void encode(pb::Writer& w, const OperatorSetIdProto& m);
void encode(pb::Writer& w, const TensorProto& m);
void encode(pb::Writer& w, const TensorShapeProto::Dimension& m);
void encode(pb::Writer& w, const TensorShapeProto& m);
void encode(pb::Writer& w, const TypeProto::Tensor& m);
void encode(pb::Writer& w, const TypeProto& m);
void encode(pb::Writer& w, const ValueInfoProto& m);
void encode(pb::Writer& w, const AttributeProto& m);
void encode(pb::Writer& w, const NodeProto& m);
void encode(pb::Writer& w, const GraphProto& m);
void encode(pb::Writer& w, const ModelProto& m);
/// @}

/// Decodes a whole message from `bytes`. `root` names it in errors; `source` (a file) prefixes them.
template <class Message>
Message decode_message(std::string_view bytes, std::string root, std::string source = {}) {
  pb::Reader r(bytes, std::move(root), std::move(source));
  Message out;
  decode(r, out);
  return out;
}

/// Encodes a whole message.
template <class Message>
std::string encode_message(const Message& m) {
  std::string out;
  pb::Writer w(out);
  encode(w, m);
  return out;
}

/// A ModelProto from serialized bytes; errors read "[onnx] graph.node[3]: ... at byte N".
ModelProto decode_model(std::string_view bytes, std::string source = {});
/// The serialized bytes of a model.
std::string encode_model(const ModelProto& model);

/// Reads a whole file (at most 2 GiB, protobuf's own limit). Errors name the file.
std::string read_file_bytes(const std::filesystem::path& path);
/// Loads and decodes an .onnx file; errors are prefixed with the file's path.
ModelProto load_model(const std::filesystem::path& path);
/// Encodes and writes a model to `path`.
void save_model(const ModelProto& model, const std::filesystem::path& path);
/// Loads a serialized TensorProto (the input_0.pb files of ONNX's test data).
TensorProto load_tensor(const std::filesystem::path& path);

}  // namespace latent::onnx
