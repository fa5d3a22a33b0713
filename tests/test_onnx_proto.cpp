// The ONNX serializer (onnx_io/): the protobuf wire codec on hand-built bytes (varint edge cases,
// packed and unpacked repeated fields, unknown fields kept byte for byte, every malformed-input
// error with its path and offset), the ONNX messages, TensorProto <-> values, external data, and
// parse -> write -> parse equality on every model of Debian's libonnx-testdata.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

#include "autograd/error.h"
#include "onnx_io/onnx_model.h"
#include "onnx_io/onnx_tensor.h"

using namespace latent;
using namespace latent::onnx;
namespace fs = std::filesystem;
using W = pb::WireType;

namespace {

// Byte builders: a varint, a tag, a length-delimited field, fixed-size little-endian values.
std::string varint(uint64_t v) {
  std::string s;
  pb::append_varint(s, v);
  return s;
}
std::string key(uint32_t field, W wire) { return varint(pb::tag(field, wire)); }
std::string len(uint32_t field, const std::string& payload) { return key(field, W::Len) + varint(payload.size()) + payload; }
std::string vfield(uint32_t field, uint64_t v) { return key(field, W::Varint) + varint(v); }
template <class T>
std::string le(T v) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}
std::string bytes(std::initializer_list<int> list) {
  std::string s;
  for (int b : list) s.push_back(static_cast<char>(b));
  return s;
}

/// The message of the error that decoding `data` as a Message throws ("" when none).
template <class Message = ModelProto>
std::string decode_error(const std::string& data, const char* root = "model") {
  try {
    decode_message<Message>(data, root);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

fs::path testdata_dir() {
  const char* env = std::getenv("LATENT_ONNX_TESTDATA");
  return env ? fs::path(env) : fs::path("/usr/share/libonnx-testdata/data");
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "latent_onnx_XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void write_file(const fs::path& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

}  // namespace

TEST_CASE("varint encodings at the edges") {
  CHECK(varint(0) == bytes({0x00}));
  CHECK(varint(1) == bytes({0x01}));
  CHECK(varint(127) == bytes({0x7F}));
  CHECK(varint(128) == bytes({0x80, 0x01}));
  CHECK(varint(300) == bytes({0xAC, 0x02}));
  CHECK(varint(std::numeric_limits<uint64_t>::max()) ==
        bytes({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}));

  // Negative int64 and int32 are 10-byte varints (two's complement), both ways.
  std::string out;
  pb::Writer w(out);
  w.write_int64(1, -1);
  CHECK(out == bytes({0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}));
  out.clear();
  w.write_int32(1, -2);
  CHECK(out == bytes({0x08, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}));
  out.clear();
  w.write_int64(1, std::numeric_limits<int64_t>::min());
  CHECK(out == bytes({0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}));

  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{127}, int64_t{128}, int64_t{-129},
                    std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()}) {
    ModelProto m = decode_model(vfield(field::model::kIrVersion, static_cast<uint64_t>(v)));
    CHECK(m.ir_version == v);
    CHECK(decode_model(encode_model(m)) == m);
  }
  // int32 fields take sign-extended negatives and reject what does not fit.
  CHECK(decode_message<TensorProto>(vfield(field::tensor::kDataType, static_cast<uint64_t>(int64_t{-5})), "tensor")
            .data_type == -5);
  CHECK(decode_error<TensorProto>(vfield(field::tensor::kDataType, uint64_t{1} << 40), "tensor") ==
        "[onnx] data_type: value 1099511627776 does not fit in int32 at byte 1");

  // Non-minimal encodings are accepted (protobuf allows padding up to 10 bytes).
  CHECK(decode_model(key(1, W::Varint) + bytes({0x81, 0x80, 0x80, 0x00})).ir_version == 1);
  CHECK(pb::zigzag_encode(-1) == 1);
  CHECK(pb::zigzag_encode(1) == 2);
  CHECK(pb::zigzag_decode(pb::zigzag_encode(std::numeric_limits<int64_t>::min())) == std::numeric_limits<int64_t>::min());
}

TEST_CASE("malformed varints") {
  // 11 bytes, and a 10th byte carrying more than the 64th bit.
  CHECK(decode_error(key(1, W::Varint) + std::string(10, '\xFF') + bytes({0x01})) ==
        "[onnx] ir_version: value varint is longer than 10 bytes at byte 1");
  CHECK(decode_error(key(1, W::Varint) + std::string(9, '\xFF') + bytes({0x02})) ==
        "[onnx] ir_version: value varint overflows 64 bits at byte 1");
  CHECK(decode_error(key(1, W::Varint) + bytes({0x80, 0x80})) ==
        "[onnx] ir_version: value varint runs past the end of the file at byte 1");
  CHECK(decode_error(bytes({0x80})) == "[onnx] model: tag varint runs past the end of the file at byte 0");
}

TEST_CASE("fixed32 and fixed64, packed and unpacked repeated fields") {
  using namespace field::tensor;
  // float_data packed (as written) and unpacked (one fixed32 per value), mixed in one message.
  std::string packed = len(kFloatData, le(1.5f) + le(-2.0f));
  std::string unpacked = key(kFloatData, W::Fixed32) + le(3.25f);
  TensorProto t = decode_message<TensorProto>(packed + unpacked, "tensor");
  CHECK(t.float_data == std::vector<float>{1.5f, -2.0f, 3.25f});

  // dims: proto2 without [packed = true], so writers emit them one per tag; packed is accepted too.
  TensorProto a = decode_message<TensorProto>(vfield(kDims, 2) + vfield(kDims, 3), "tensor");
  TensorProto b = decode_message<TensorProto>(len(kDims, varint(2) + varint(3)), "tensor");
  CHECK(a.dims == std::vector<int64_t>{2, 3});
  CHECK(a == b);
  CHECK(encode_message(a) == vfield(kDims, 2) + vfield(kDims, 3));

  // Packed varints with 10-byte negatives; int32 packed; doubles and uint64 packed.
  TensorProto c = decode_message<TensorProto>(
      len(kInt64Data, varint(static_cast<uint64_t>(int64_t{-1})) + varint(5)) +
          len(kInt32Data, varint(static_cast<uint64_t>(int64_t{-7})) + varint(7)) +
          len(kDoubleData, le(0.5) + le(-0.25)) + len(kUint64Data, varint(~uint64_t{0}) + varint(1)) +
          key(kDoubleData, W::Fixed64) + le(8.0) + vfield(kUint64Data, 9) + vfield(kInt64Data, 6),
      "tensor");
  CHECK(c.int64_data == std::vector<int64_t>{-1, 5, 6});
  CHECK(c.int32_data == std::vector<int32_t>{-7, 7});
  CHECK(c.double_data == std::vector<double>{0.5, -0.25, 8.0});
  CHECK(c.uint64_data == std::vector<uint64_t>{~uint64_t{0}, 1, 9});
  CHECK(decode_message<TensorProto>(encode_message(c), "tensor") == c);
  // The writer packs the fields onnx.proto marks packed.
  CHECK(encode_message(c).find(len(kInt32Data, varint(static_cast<uint64_t>(int64_t{-7})) + varint(7))) !=
        std::string::npos);

  // Attribute floats/ints: unpacked on write, both accepted on read.
  using namespace field::attribute;
  AttributeProto at = decode_message<AttributeProto>(
      len(kFloats, le(1.0f) + le(2.0f)) + key(kFloats, W::Fixed32) + le(3.0f) + len(kInts, varint(4)) + vfield(kInts, 5),
      "attribute");
  CHECK(at.floats == std::vector<float>{1, 2, 3});
  CHECK(at.ints == std::vector<int64_t>{4, 5});
  CHECK(encode_message(at) == key(kFloats, W::Fixed32) + le(1.0f) + key(kFloats, W::Fixed32) + le(2.0f) +
                                  key(kFloats, W::Fixed32) + le(3.0f) + vfield(kInts, 4) + vfield(kInts, 5));
}

TEST_CASE("unknown fields are kept and written back byte for byte") {
  using namespace field::node;
  // Known fields in field order, then unknown fields of every wire type (a non-minimal varint, a
  // fixed64, a fixed32, a length-delimited field, a group with nested content, a known field number
  // with the wrong wire type): the writer must reproduce the input exactly.
  const std::string known = len(kInput, "x") + len(kOutput, "y") + len(kName, "n0") + len(kOpType, "Relu");
  const std::string unknown = key(99, W::Varint) + bytes({0x85, 0x80, 0x00}) + key(100, W::Fixed64) + le(uint64_t{7}) +
                              key(101, W::Fixed32) + le(uint32_t{9}) + len(102, "opaque") +
                              key(103, W::StartGroup) + vfield(1, 5) + key(2, W::StartGroup) + key(2, W::EndGroup) +
                              key(103, W::EndGroup) + key(kName, W::Fixed32) + le(uint32_t{1});
  NodeProto n = decode_message<NodeProto>(known + unknown, "node");
  CHECK(n.op_type == "Relu");
  CHECK(n.name == "n0");
  REQUIRE(n.unknown.size() == 6);
  CHECK(n.unknown[0].number == 99);
  CHECK(n.unknown[0].data == bytes({0x85, 0x80, 0x00}));
  CHECK(n.unknown[3].data == varint(6) + "opaque");
  CHECK(n.unknown[4].wire_type == W::StartGroup);
  CHECK(n.unknown[5].number == kName);
  CHECK(encode_message(n) == known + unknown);

  // Unknown fields are part of equality, and they survive nesting inside a model.
  NodeProto other = n;
  other.unknown[1].data[0] = 8;
  CHECK_FALSE(other == n);
  ModelProto m;
  m.graph.node.push_back(n);
  m.unknown.push_back({20, W::Len, varint(3) + "abc"});  // training_info, unknown here
  ModelProto again = decode_model(encode_model(m));
  CHECK(again == m);
  CHECK(again.graph.node[0].unknown[2].data == le(uint32_t{9}));
}

TEST_CASE("malformed input: every error names the path and the byte") {
  using namespace field;
  // The example from the design: node[3].attribute[1] claims 4000000000 bytes.
  const std::string attr0 = len(attribute::kName, "a");
  const std::string bad_tail = key(node::kAttribute, W::Len) + varint(4000000000u) + "abc";
  const std::string node_ok = len(node::kOpType, "Relu");
  const std::string node_bad = len(node::kOpType, "Conv") + len(node::kAttribute, attr0) + bad_tail;
  std::string graph = len(graph::kNode, node_ok) + len(graph::kNode, node_ok) + len(graph::kNode, node_ok) +
                      len(graph::kNode, node_bad);
  std::string model = len(model::kGraph, graph);
  size_t at = model.size() - 3 - varint(4000000000u).size();
  CHECK(decode_error(model) ==
        fmt::format("[onnx] graph.node[3].attribute[1]: length 4000000000 runs past the end of the file at byte {}", at));

  // A length that fits the file but not its enclosing message.
  const std::string short_node = len(node::kOpType, "X") + key(node::kAttribute, W::Len) + varint(10) + "abc";
  model = len(model::kGraph, len(graph::kNode, short_node) + len(graph::kNode, node_ok));
  at = model.find(short_node) + len(node::kOpType, "X").size() + 1;
  CHECK(decode_error(model) == fmt::format("[onnx] graph.node[0].attribute[0]: length 10 runs past the end of "
                                           "graph.node[0] (3 bytes left) at byte {}",
                                           at));

  // Strings, fixed values and packed data past their message.
  CHECK(decode_error(len(model::kGraph, key(graph::kName, W::Len) + varint(5) + "ab")) ==
        "[onnx] graph.name: length 5 runs past the end of the file at byte 3");
  CHECK(decode_error<AttributeProto>(key(attribute::kF, W::Fixed32) + "ab", "attribute") ==
        "[onnx] f: fixed32 value of 4 bytes runs past the end of the file (2 bytes left) at byte 1");
  CHECK(decode_error<TensorProto>(key(tensor::kDoubleData, W::Fixed64) + "abc", "tensor") ==
        "[onnx] double_data[0]: fixed64 value of 8 bytes runs past the end of the file (3 bytes left) at byte 1");
  CHECK(decode_error<TensorProto>(len(tensor::kFloatData, "abcdefg"), "tensor") ==
        "[onnx] float_data: packed field of 7 bytes is not a multiple of 4 at byte 2");
  CHECK(decode_error<TensorProto>(len(tensor::kDims, bytes({0x01, 0x80})), "tensor") ==
        "[onnx] dims: varint runs past the end of the packed field at byte 3");
  CHECK(decode_error<TensorProto>(len(tensor::kInt32Data, varint(uint64_t{1} << 33)), "tensor") ==
        "[onnx] int32_data: value 8589934592 does not fit in int32 at byte 2");

  // Tags: field number 0, wire types 6 and 7, a stray end-group, an unclosed group.
  CHECK(decode_error(bytes({0x00})) == "[onnx] model: invalid field number 0 at byte 0");
  CHECK(decode_error(vfield(1, 8) + bytes({0x0F})) == "[onnx] model: invalid wire type 7 for field 1 at byte 2");
  CHECK(decode_error(len(model::kGraph, bytes({0x0E}))) == "[onnx] graph: invalid wire type 6 for field 1 at byte 2");
  CHECK(decode_error(key(5000, W::EndGroup)) == "[onnx] model: end-group tag for field 5000 without a group at byte 0");
  CHECK(decode_error(key(50, W::StartGroup) + vfield(1, 1)) ==
        "[onnx] field 50: group of field 50 is not closed before the end of the file at byte 4");
  CHECK(decode_error(key(50, W::StartGroup) + key(51, W::EndGroup)) ==
        "[onnx] field 50: end-group tag for field 51 inside group 50 at byte 2");
  CHECK(decode_error(len(model::kGraph, key(77, W::Len) + varint(9))) ==
        "[onnx] graph.field 77: length 9 runs past the end of the file at byte 4");

  // Nesting: graphs inside attributes inside nodes, deeper than the bound.
  auto nest = [](int levels) {
    std::string g;
    for (int i = 0; i < levels; ++i) g = len(graph::kNode, len(node::kAttribute, len(attribute::kG, g)));
    return len(model::kGraph, g);
  };
  CHECK(decode_error(nest(21)).empty());  // 1 + 63 levels
  const std::string deep = decode_error(nest(30));
  CHECK(deep.find("messages are nested deeper than 64 levels") != std::string::npos);
  CHECK(deep.rfind("[onnx] graph.node[0].attribute[0].g.node[0]", 0) == 0);
  // Groups count against the same bound.
  std::string groups;
  for (int i = 0; i < 70; ++i) groups = key(9, W::StartGroup) + groups + key(9, W::EndGroup);
  CHECK(decode_error(groups).find("groups are nested deeper than 64 levels") != std::string::npos);

  // The file name is part of the message when decoding from a file.
  TempDir dir;
  write_file(dir.path / "bad.onnx", bytes({0x08}));
  try {
    load_model(dir.path / "bad.onnx");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) ==
          fmt::format("[onnx] {}: ir_version: value varint runs past the end of the file at byte 1",
                      (dir.path / "bad.onnx").string()));
  }
  CHECK_THROWS_WITH_AS(load_model(dir.path / "missing.onnx"),
                       fmt::format("[onnx] cannot read '{}': no such file", (dir.path / "missing.onnx").string()).c_str(),
                       Error);
}

TEST_CASE("messages: presence, merging, bitwise float equality, large nested lengths") {
  AttributeProto axis;
  axis.name = "axis";
  axis.type = static_cast<int32_t>(AttributeType::Int);
  axis.i = 0;  // present although zero: onnx's checker requires it
  const std::string enc = encode_message(axis);
  CHECK(enc.find(vfield(field::attribute::kI, 0)) != std::string::npos);
  CHECK(decode_message<AttributeProto>(enc, "attribute") == axis);
  AttributeProto absent = axis;
  absent.i.reset();
  CHECK_FALSE(absent == axis);

  // Box: optional-like, deep copies, compares contents.
  AttributeProto with_tensor;
  with_tensor.t = TensorProto{};
  with_tensor.t->name = "w";
  AttributeProto copy = with_tensor;
  CHECK(copy == with_tensor);
  copy.t->name = "v";
  CHECK(with_tensor.t->name == "w");
  CHECK_FALSE(copy == with_tensor);
  copy.t.reset();
  CHECK(!copy.t);
  CHECK_FALSE(copy == with_tensor);
  CHECK(decode_message<AttributeProto>(encode_message(with_tensor), "attribute") == with_tensor);

  AttributeProto nan_attr;
  nan_attr.f = std::numeric_limits<float>::quiet_NaN();
  CHECK(decode_message<AttributeProto>(encode_message(nan_attr), "attribute") == nan_attr);
  AttributeProto neg_zero, pos_zero;
  neg_zero.f = -0.0f;
  pos_zero.f = 0.0f;
  CHECK_FALSE(neg_zero == pos_zero);
  CHECK(decode_message<AttributeProto>(encode_message(neg_zero), "attribute") == neg_zero);

  // Dimensions: value, symbolic, unknown; the oneof keeps the last member read.
  TensorShapeProto shape;
  shape.dim.resize(3);
  shape.dim[0].dim_param = "batch";
  shape.dim[1].dim_value = 0;
  CHECK(decode_message<TensorShapeProto>(encode_message(shape), "shape") == shape);
  auto dim = decode_message<TensorShapeDimension>(
      vfield(field::dimension::kDimValue, 3) + len(field::dimension::kDimParam, "n"), "dim");
  CHECK(!dim.dim_value);
  CHECK(dim.dim_param == "n");

  // A singular message field that appears twice merges, as in protobuf.
  ModelProto merged = decode_model(len(field::model::kGraph, len(field::graph::kName, "a")) +
                                   len(field::model::kGraph, len(field::graph::kNode, len(field::node::kOpType, "Relu"))));
  CHECK(merged.graph.name == "a");
  CHECK(merged.graph.node.size() == 1);

  // Lengths of 1, 2 and 3 varint bytes in front of nested messages.
  for (size_t size : {size_t{10}, size_t{200}, size_t{20000}}) {
    ModelProto m;
    m.ir_version = 8;
    m.graph.initializer.push_back(TensorProto{});
    m.graph.initializer[0].raw_data.assign(size, 'x');
    m.graph.initializer[0].data_type = 2;
    m.graph.initializer[0].dims = {static_cast<int64_t>(size)};
    m.opset_import.push_back({"", 17, {}});
    const std::string data = encode_model(m);
    CHECK(decode_model(data) == m);
  }
}

TEST_CASE("pathological inputs stay linear in time") {
  // 200k packed fields of one value each: an exact reserve per field would copy ~10^11 bytes.
  std::string many;
  for (int i = 0; i < 200000; ++i) many += len(field::tensor::kInt64Data, varint(static_cast<uint64_t>(i)));
  const auto start = std::chrono::steady_clock::now();
  TensorProto t = decode_message<TensorProto>(many, "tensor");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(t.int64_data.size() == 200000);
  CHECK(t.int64_data.back() == 199999);
  CHECK(seconds < 5.0);
}

TEST_CASE("TensorProto to and from flat values") {
  auto round = [](auto values, DataType dt) {
    using T = typename decltype(values)::value_type;
    for (bool raw : {true, false}) {
      std::vector<T> v(values.begin(), values.end());
      TensorProto t = make_tensor<T>("t", {static_cast<int64_t>(v.size())}, std::span<const T>(v.data(), v.size()), raw);
      CHECK(t.data_type == static_cast<int32_t>(dt));
      CHECK(raw == !t.raw_data.empty());
      TensorProto back = decode_message<TensorProto>(encode_message(t), "tensor");
      CHECK(back == t);
      CHECK(tensor_to_vector<T>(back) == v);
      CHECK(tensor_to_doubles(back).size() == v.size());
    }
  };
  round(std::vector<float>{1.5f, -2.f, 0.f}, DataType::Float);
  round(std::vector<double>{1e300, -0.5}, DataType::Double);
  round(std::vector<int64_t>{std::numeric_limits<int64_t>::min(), 3}, DataType::Int64);
  round(std::vector<int32_t>{-5, 70000}, DataType::Int32);
  round(std::vector<int8_t>{-128, 127}, DataType::Int8);
  round(std::vector<uint8_t>{0, 255}, DataType::Uint8);
  std::array<bool, 3> flags{true, false, true};
  TensorProto bt = make_tensor<bool>("b", {3}, std::span<const bool>(flags));
  CHECK(bt.raw_data == bytes({1, 0, 1}));
  CHECK(tensor_to_vector<bool>(bt) == std::vector<bool>{true, false, true});
  TensorProto bt_typed = make_tensor<bool>("b", {3}, std::span<const bool>(flags), false);
  CHECK(bt_typed.int32_data == std::vector<int32_t>{1, 0, 1});
  CHECK(tensor_to_doubles(bt_typed) == std::vector<double>{1, 0, 1});

  // A scalar has no dims and one value; a zero-size tensor has no data.
  float one = 1.f;
  TensorProto scalar = make_tensor<float>("s", {}, std::span<const float>(&one, 1));
  CHECK(element_count(scalar) == 1);
  CHECK(tensor_to_vector<float>(scalar) == std::vector<float>{1.f});
  TensorProto empty = make_tensor<float>("e", {0, 3}, std::span<const float>());
  CHECK(tensor_to_vector<float>(empty).empty());

  // Every inconsistency is an error naming the tensor.
  std::vector<float> two{1.f, 2.f};
  CHECK_THROWS_WITH_AS(make_tensor<float>("w", {3}, std::span<const float>(two)),
                       "[onnx] tensor 'w': 2 values given for dims [3] (3 elements)", Error);
  TensorProto t = make_tensor<float>("w", {2}, std::span<const float>(two));
  CHECK_THROWS_WITH_AS(tensor_to_vector<double>(t), "[onnx] tensor 'w': is FLOAT, not DOUBLE", Error);
  t.raw_data.pop_back();
  CHECK_THROWS_WITH_AS(tensor_bytes(t), "[onnx] tensor 'w': raw_data has 7 bytes, expected 8 for dims [2] of FLOAT", Error);
  t.raw_data.push_back('\0');
  t.float_data = {1.f};
  CHECK_THROWS_WITH_AS(tensor_bytes(t), "[onnx] tensor 'w': has both raw_data and a typed data field", Error);
  t.raw_data.clear();
  CHECK_THROWS_WITH_AS(tensor_bytes(t), "[onnx] tensor 'w': float_data has 1 values, expected 2 for dims [2]", Error);
  t.float_data = {1.f, 2.f};
  t.int64_data = {3};
  CHECK_THROWS_WITH_AS(tensor_bytes(t),
                       "[onnx] tensor 'w': a FLOAT tensor keeps its values in float_data, but other typed fields hold 1 values",
                       Error);
  t.int64_data.clear();
  t.dims = {2, -1};
  CHECK_THROWS_WITH_AS(tensor_bytes(t), "[onnx] tensor 'w': dims [2, -1] has a negative dimension", Error);
  t.dims = {std::numeric_limits<int64_t>::max(), 4};
  CHECK_THROWS_WITH_AS(tensor_bytes(t), "[onnx] tensor 'w': dims [9223372036854775807, 4] has more elements than fit in int64",
                       Error);
  TensorProto i8;
  i8.data_type = static_cast<int32_t>(DataType::Int8);
  i8.int32_data = {300};
  CHECK_THROWS_WITH_AS(tensor_bytes(i8), "[onnx] tensor (unnamed): int32_data[0] = 300 is out of range for INT8", Error);
  TensorProto b;
  b.name = "b";
  b.data_type = static_cast<int32_t>(DataType::Bool);
  b.dims = {1};
  b.raw_data = bytes({2});
  CHECK_THROWS_WITH_AS(tensor_bytes(b), "[onnx] tensor 'b': BOOL value 2 at element 0 is neither 0 nor 1", Error);
  b.data_type = static_cast<int32_t>(DataType::Float16);
  CHECK_THROWS_WITH_AS(tensor_bytes(b),
                       "[onnx] tensor 'b': data type FLOAT16 is not supported (FLOAT, DOUBLE, INT64, INT32, INT8, UINT8 "
                       "and BOOL are)",
                       Error);
}

TEST_CASE("external data stays inside the model's folder") {
  TempDir dir;
  fs::create_directory(dir.path / "model");
  fs::create_directory(dir.path / "model" / "weights");
  std::vector<float> values{1.f, 2.f, 3.f, 4.f};
  std::string file = "HEADER" + std::string(reinterpret_cast<const char*>(values.data()), 16) + "TAIL";
  write_file(dir.path / "model" / "weights" / "w.bin", file);
  write_file(dir.path / "secret.bin", std::string(16, '\0'));

  TensorProto t;
  t.name = "w";
  t.data_type = static_cast<int32_t>(DataType::Float);
  t.dims = {2, 2};
  t.data_location = static_cast<int32_t>(DataLocation::External);
  t.external_data = {{"location", "weights/w.bin", {}}, {"offset", "6", {}}, {"length", "16", {}}};
  const fs::path model_dir = dir.path / "model";
  CHECK(tensor_to_vector<float>(t, model_dir) == values);
  CHECK(decode_message<TensorProto>(encode_message(t), "tensor") == t);

  auto error = [&](std::vector<StringStringEntryProto> entries, const fs::path& where) {
    TensorProto x = t;
    x.external_data = std::move(entries);
    try {
      tensor_bytes(x, where);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(error({{"location", "../secret.bin", {}}}, model_dir) ==
        "[onnx] tensor 'w': external data location '../secret.bin' leaves the model's folder");
  CHECK(error({{"location", "weights/../../secret.bin", {}}}, model_dir) ==
        "[onnx] tensor 'w': external data location 'weights/../../secret.bin' leaves the model's folder");
  const std::string absolute = (dir.path / "secret.bin").string();
  CHECK(error({{"location", absolute, {}}}, model_dir) ==
        fmt::format("[onnx] tensor 'w': external data location '{}' is an absolute path; it must be relative to the "
                    "model's folder",
                    absolute));
  fs::create_symlink(dir.path / "secret.bin", model_dir / "link.bin");
  CHECK(error({{"location", "link.bin", {}}}, model_dir).find("outside the model's folder") != std::string::npos);
  CHECK(error({{"location", "weights/w.bin", {}}, {"offset", "30", {}}}, model_dir) ==
        fmt::format("[onnx] tensor 'w': external data offset 30 is past the end of '{}' (26 bytes)",
                    fs::canonical(model_dir / "weights" / "w.bin").string()));
  CHECK(error({{"location", "weights/w.bin", {}}, {"offset", "12", {}}, {"length", "16", {}}}, model_dir)
            .find("runs past the end of") != std::string::npos);
  CHECK(error({{"location", "weights/w.bin", {}}, {"offset", "-1", {}}}, model_dir) ==
        "[onnx] tensor 'w': external data offset '-1' is not a non-negative integer");
  CHECK(error({{"location", "weights/w.bin", {}}}, model_dir) ==
        "[onnx] tensor 'w': external data has 26 bytes, expected 16 for dims [2, 2] of FLOAT");
  CHECK(error({{"offset", "0", {}}}, model_dir) == "[onnx] tensor 'w': external data has no 'location' entry");
  CHECK(error({{"location", "nope.bin", {}}}, model_dir).find("cannot open external data file") != std::string::npos);
  CHECK(error({{"location", "weights/w.bin", {}}}, {}) ==
        "[onnx] tensor 'w': its data is in the external file 'weights/w.bin', but the model's folder was not given");
}

TEST_CASE("every model in libonnx-testdata survives parse, write, parse") {
  const fs::path root = testdata_dir();
  if (!fs::is_directory(root / "node")) {
    MESSAGE("skipped: " << (root / "node").string() << " is missing (apt-get install libonnx-testdata)");
    return;
  }
  int models = 0, node_models = 0, identical = 0, failed = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.path().extension() != ".onnx") continue;
    ++models;
    if (entry.path().parent_path().parent_path().filename() == "node") ++node_models;
    INFO(entry.path().string());
    try {
      const std::string original = read_file_bytes(entry.path());
      const ModelProto first = decode_model(original);
      const std::string written = encode_model(first);
      const ModelProto second = decode_model(written);
      identical += written == original;
      if (!(first == second)) ++failed;
      CHECK(first == second);
      CHECK(encode_model(second) == written);  // writing is deterministic
      CHECK_FALSE(first.graph.node.empty());
    } catch (const Error& e) {
      ++failed;
      FAIL_CHECK(e.what());
    }
  }
  MESSAGE(models << " models round-tripped (" << node_models << " under node/), " << identical
                 << " byte-identical to the original, " << failed << " failed");
  CHECK(node_models >= 900);
  CHECK(failed == 0);
}

TEST_CASE("test-data tensors (input_0.pb) convert for each supported data type") {
  const fs::path node = testdata_dir() / "node";
  if (!fs::is_directory(node)) {
    MESSAGE("skipped: " << node.string() << " is missing");
    return;
  }
  std::map<int32_t, int> seen;
  for (const auto& entry : fs::directory_iterator(node)) {
    const fs::path pb = entry.path() / "test_data_set_0" / "input_0.pb";
    if (!fs::is_regular_file(pb)) continue;
    // input_0.pb is a TensorProto only when the model's first input is a tensor (not a sequence
    // or an optional).
    const ModelProto model = load_model(entry.path() / "model.onnx");
    if (model.graph.input.empty() || !model.graph.input[0].type || !model.graph.input[0].type->tensor_type) continue;
    const TensorProto t = load_tensor(pb);
    // (The BFLOAT16 tests store their inputs as UINT16, so only the types converted here are compared.)
    if (element_size(t.data_type) != 0) CHECK(t.data_type == model.graph.input[0].type->tensor_type->elem_type);
    CHECK(decode_message<TensorProto>(encode_message(t), "tensor") == t);
    if (element_size(t.data_type) == 0 || seen[t.data_type] >= 5) continue;
    ++seen[t.data_type];
    INFO(pb.string());
    const std::vector<double> values = tensor_to_doubles(t);
    CHECK(static_cast<int64_t>(values.size()) == element_count(t));
    // Rebuild through the typed field and compare value by value.
    auto rebuild = [&]<class T>(T) {
      const std::vector<T> v = tensor_to_vector<T>(t);
      const TensorProto typed = make_tensor<T>(t.name, t.dims, std::span<const T>(v.data(), v.size()), false);
      CHECK(tensor_to_vector<T>(typed) == v);
    };
    switch (static_cast<DataType>(t.data_type)) {
      case DataType::Float: rebuild(float{}); break;
      case DataType::Double: rebuild(double{}); break;
      case DataType::Int64: rebuild(int64_t{}); break;
      case DataType::Int32: rebuild(int32_t{}); break;
      case DataType::Int8: rebuild(int8_t{}); break;
      case DataType::Uint8: rebuild(uint8_t{}); break;
      default: {  // BOOL: std::vector<bool> has no data()
        const std::vector<double> d = tensor_to_doubles(t);
        for (double x : d) CHECK((x == 0.0 || x == 1.0));
      }
    }
  }
  for (DataType dt : {DataType::Float, DataType::Double, DataType::Int64, DataType::Int32, DataType::Int8,
                      DataType::Uint8, DataType::Bool}) {
    const auto code = static_cast<int32_t>(dt);
    MESSAGE(data_type_name(code) << ": " << seen[code] << " input_0.pb files converted");
    CHECK(seen[code] > 0);
  }
  // Known values: most inputs are random, but Range's scalar inputs (start 1, limit 5, delta 2) are fixed.
  const fs::path range = node / "test_range_float_type_positive_delta" / "test_data_set_0";
  if (fs::is_directory(range)) {
    const TensorProto start = load_tensor(range / "input_0.pb");
    CHECK(start.name == "start");
    CHECK(start.dims.empty());
    CHECK(tensor_to_vector<float>(start) == std::vector<float>{1.f});
    CHECK(tensor_to_vector<float>(load_tensor(range / "input_1.pb")) == std::vector<float>{5.f});
    CHECK(tensor_to_vector<float>(load_tensor(range / "input_2.pb")) == std::vector<float>{2.f});
  }
}
