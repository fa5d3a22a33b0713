// A protobuf wire-format reader and writer, written here (no libprotobuf): varints, fixed32/64,
// length-delimited fields, packed and unpacked repeated scalars, and unknown fields kept as raw
// bytes so a message can be written back without losing what this code does not understand.
//
// The reader never trusts its input: every length is checked against the bytes that remain,
// message nesting is bounded, packed data is sized from its (already checked) length before
// anything is allocated, and varints longer than 10 bytes are rejected. A malformed input throws
// latent::Error with one line naming the message path and the byte offset:
//   [onnx] graph.node[3].attribute[1]: length 4000000000 runs past the end of the file at byte 812
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace latent::onnx::pb {

/// The wire type in the low 3 bits of a tag.
enum class WireType : uint8_t { Varint = 0, Fixed64 = 1, Len = 2, StartGroup = 3, EndGroup = 4, Fixed32 = 5 };

/// A tag value for `switch`: (field << 3) | wire type.
constexpr uint32_t tag(uint32_t field, WireType wire) { return (field << 3) | static_cast<uint32_t>(wire); }

/// Deepest message nesting the reader accepts (graphs inside attributes inside nodes...).
inline constexpr int kMaxDepth = 64;

/// A field that the decoder of its message does not know, kept for writing back.
/// `data` holds the bytes after the tag exactly as read: the varint bytes, the 4 or 8 fixed bytes,
/// the length prefix and payload of a length-delimited field, or a group's body and end tag.
struct UnknownField {
  /// Field number from the tag.
  uint32_t number = 0;
  /// Wire type from the tag; says how `data` is framed.
  WireType wire_type = WireType::Varint;
  /// The raw bytes after the tag (see above).
  std::string data;
  /// Compares number, wire type and bytes.
  bool operator==(const UnknownField&) const = default;
};
/// A message's unknown fields in the order they were read.
using UnknownFields = std::vector<UnknownField>;

/// Encodes `value` as a varint (1 to 10 bytes) at the end of `out`.
void append_varint(std::string& out, uint64_t value);
/// Zigzag mapping for sint32/sint64 (not used by ONNX; here for completeness).
constexpr uint64_t zigzag_encode(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
/// Inverse of zigzag_encode.
constexpr int64_t zigzag_decode(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

/// Reads one message and, through nested scopes, the messages inside it. Decode functions loop
/// `while (r.next())`, switch on `r.tag()`, call one read function per field, and hand the fields
/// they do not know to `skip_unknown`.
class Reader {
 public:
  /// `bytes` must outlive the reader. `root` names the outermost message in errors when the path
  /// is empty ("model", "tensor"); `source` (a file name) prefixes every error when not empty.
  Reader(std::string_view bytes, std::string root, std::string source = {});

  /// Reads the next tag of the current message; false at its end.
  bool next();
  /// Field number of the tag last read by next().
  uint32_t field() const { return field_; }
  /// Wire type of the tag last read by next().
  WireType wire_type() const { return wire_; }
  /// The tag last read by next(), as tag() builds it, for `switch`.
  uint32_t tag() const { return pb::tag(field_, wire_); }

  // Value of the current field. `name` and `index` label the field in errors ("dims", 3).
  /// A varint value; throws (naming `name`[`index`] and the byte offset) on a wrong wire type or a varint over 10 bytes.
  uint64_t read_uint64(const char* name, int64_t index = -1);
  /// A varint read as two's complement, as protobuf's int64 is; errors as read_uint64.
  int64_t read_int64(const char* name, int64_t index = -1);
  /// An int32 varint: 10-byte negative encodings are accepted; values outside int32 are rejected.
  int32_t read_int32(const char* name, int64_t index = -1);
  /// A fixed32 IEEE float; throws on a wrong wire type or a truncated value.
  float read_float(const char* name, int64_t index = -1);
  /// A fixed64 IEEE double; throws on a wrong wire type or a truncated value.
  double read_double(const char* name, int64_t index = -1);
  /// A length-delimited field's bytes; throws when the length runs past the message.
  std::string read_string(const char* name, int64_t index = -1);

  // Repeated scalars: a packed run (wire type Len) or one unpacked value, appended to `out`.
  /// Appends a repeated scalar field to `out`: a packed run (wire type Len, sized from its checked
  /// length before allocating) or one unpacked value. Throws on malformed data, naming `name`.
  /// @{
  void read_repeated(std::vector<int64_t>& out, const char* name);
  void read_repeated(std::vector<uint64_t>& out, const char* name);
  void read_repeated(std::vector<int32_t>& out, const char* name);
  void read_repeated(std::vector<float>& out, const char* name);
  void read_repeated(std::vector<double>& out, const char* name);
/// @}

  /// Decodes the current length-delimited field as a nested message with `body(*this)`, under the
  /// path element name[index]. Checks the depth bound and that the body consumed exactly the length.
  template <class Body>
  void read_message(const char* name, int64_t index, Body&& body) {
    const char* const end = enter(name, index);
    body(*this);
    leave(end);
  }

  /// Skips the current field, keeping its bytes in `unknown`.
  void skip_unknown(UnknownFields& unknown);

  /// Byte offset of the next unread byte, from the start of the input.
  size_t offset() const { return static_cast<size_t>(pos_ - begin_); }

  /// Throws "[onnx] <source>: <path>: <message> at byte <offset>".
  [[noreturn]] void fail(size_t at, const std::string& message) const;

 private:
  struct PathItem {
    const char* name;
    int64_t index;
  };

  uint64_t varint(const char* what);
  const char* take(uint64_t count, const char* what);  // advances over `count` bytes, checked
  std::string_view length_delimited(const char* what);
  void expect(WireType wire) const;
  void label(const char* name, int64_t index) {
    field_name_ = name;
    field_index_ = index;
  }
  const char* enter(const char* name, int64_t index);
  void leave(const char* outer_end);
  void skip_group(uint32_t number, int depth);
  std::string path() const;
  std::string where_end() const;

  const char* begin_;
  const char* pos_;
  const char* end_;       // end of the current message
  const char* file_end_;  // end of the whole input
  std::string root_;
  std::string source_;
  std::vector<PathItem> path_;
  uint32_t field_ = 0;
  WireType wire_ = WireType::Varint;
  size_t tag_offset_ = 0;
  const char* field_name_ = nullptr;  // label of the field being read, for errors
  int64_t field_index_ = -1;
};

/// Appends encoded fields to a byte string. Scalars are written by the caller's choice (the
/// encoder decides presence); nested messages reserve their length and patch it on `end_message`.
class Writer {
 public:
  /// Appends to `out`, which must outlive the writer.
  explicit Writer(std::string& out) : out_(out) {}

  /// Appends a tag (field number and wire type) as a varint.
  void write_tag(uint32_t field, WireType wire) { append_varint(out_, tag(field, wire)); }
  /// Writes a tag and `value` as a varint.
  void write_uint64(uint32_t field, uint64_t value);
  /// Negative values take 10 bytes (two's complement as uint64), as protobuf's int64 does.
  void write_int64(uint32_t field, int64_t value) { write_uint64(field, static_cast<uint64_t>(value)); }
  /// int32 negatives are sign-extended to 10 bytes, as protobuf does.
  void write_int32(uint32_t field, int32_t value) { write_int64(field, value); }
  /// Writes a tag and `value` as 4 little-endian bytes.
  void write_float(uint32_t field, float value);
  /// Writes a tag and `value` as 8 little-endian bytes.
  void write_double(uint32_t field, double value);
  /// Writes a tag, the length as a varint, then the bytes.
  void write_string(uint32_t field, std::string_view value);

  // Packed repeated scalars (nothing written when empty).
  /// Writes one tag, the byte length, then the values back to back (varints or fixed-width);
  /// nothing when `values` is empty.
  /// @{
  void write_packed(uint32_t field, const std::vector<int64_t>& values);
  void write_packed(uint32_t field, const std::vector<uint64_t>& values);
  void write_packed(uint32_t field, const std::vector<int32_t>& values);
  void write_packed(uint32_t field, const std::vector<float>& values);
  void write_packed(uint32_t field, const std::vector<double>& values);
  /// @}
  // Unpacked repeated scalars: one tag per value (proto2's default for fields without packed=true).
  /// Writes one tag and value per element.
  /// @{
  void write_unpacked(uint32_t field, const std::vector<int64_t>& values);
  void write_unpacked(uint32_t field, const std::vector<float>& values);
/// @}

  /// Starts a nested message; returns a mark for end_message.
  size_t begin_message(uint32_t field);
  /// Writes the nested message's length in front of its bytes.
  void end_message(size_t mark);

  /// Writes back fields kept by Reader::skip_unknown, byte for byte after each tag.
  void write_unknown(const UnknownFields& unknown);

  /// The bytes written so far (the string passed to the constructor).
  std::string& bytes() { return out_; }

 private:
  std::string& out_;
};

}  // namespace latent::onnx::pb
