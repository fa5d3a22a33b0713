// Protobuf wire format: see protobuf.h. Offsets in errors point at the first byte of the item that
// is wrong (the tag, the varint, the length prefix).
#include "protobuf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include "../autograd/error.h"

namespace latent::onnx::pb {

static_assert(std::endian::native == std::endian::little,
              "fixed32/fixed64 and packed floats are copied as little-endian bytes");

namespace {

int varint_size(uint64_t value) {
  int n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

void put_varint(char* at, uint64_t value) {
  while (value >= 0x80) {
    *at++ = static_cast<char>((value & 0x7F) | 0x80);
    value >>= 7;
  }
  *at = static_cast<char>(value);
}

const char* wire_name(WireType wire) {
  switch (wire) {
    case WireType::Varint: return "varint";
    case WireType::Fixed64: return "fixed64";
    case WireType::Len: return "length-delimited";
    case WireType::StartGroup: return "start-group";
    case WireType::EndGroup: return "end-group";
    case WireType::Fixed32: return "fixed32";
  }
  return "invalid";
}

}  // namespace

void append_varint(std::string& out, uint64_t value) {
  char buf[10];
  int n = varint_size(value);
  put_varint(buf, value);
  out.append(buf, static_cast<size_t>(n));
}

// ---------------------------------------------------------------------------------------------
// Reader

Reader::Reader(std::string_view bytes, std::string root, std::string source)
    : begin_(bytes.data()),
      pos_(bytes.data()),
      end_(bytes.data() + bytes.size()),
      file_end_(bytes.data() + bytes.size()),
      root_(std::move(root)),
      source_(std::move(source)) {}

std::string Reader::path() const {
  std::string out;
  auto add = [&](const char* name, int64_t index) {
    if (!out.empty()) out += '.';
    out += name;
    if (index >= 0) out += fmt::format("[{}]", index);
  };
  for (const PathItem& item : path_) add(item.name, item.index);
  if (field_name_ != nullptr) {
    add(field_name_, field_index_);
  } else if (field_index_ == -2) {  // an unknown field: named by its number
    if (!out.empty()) out += '.';
    out += fmt::format("field {}", field_);
  }
  return out.empty() ? root_ : out;
}

std::string Reader::where_end() const {
  if (end_ == file_end_) return "the end of the file";
  std::string enclosing;
  for (const PathItem& item : path_) {
    if (!enclosing.empty()) enclosing += '.';
    enclosing += item.name;
    if (item.index >= 0) enclosing += fmt::format("[{}]", item.index);
  }
  return "the end of " + (enclosing.empty() ? root_ : enclosing);
}

void Reader::fail(size_t at, const std::string& message) const {
  if (source_.empty()) latent::fail("onnx", "{}: {} at byte {}", path(), message, at);
  latent::fail("onnx", "{}: {}: {} at byte {}", source_, path(), message, at);
}

uint64_t Reader::varint(const char* what) {
  const size_t start = offset();
  uint64_t value = 0;
  for (int i = 0; i < 10; ++i) {
    if (pos_ == end_) fail(start, fmt::format("{} varint runs past {}", what, where_end()));
    const auto byte = static_cast<uint8_t>(*pos_++);
    if (i == 9) {
      if (byte & 0x80) fail(start, fmt::format("{} varint is longer than 10 bytes", what));
      if (byte > 1) fail(start, fmt::format("{} varint overflows 64 bits", what));
    }
    value |= static_cast<uint64_t>(byte & 0x7F) << (7 * i);
    if (!(byte & 0x80)) return value;
  }
  return value;  // unreachable: the 10th byte either returns or fails
}

const char* Reader::take(uint64_t count, const char* what) {
  const size_t start = offset();
  const auto left = static_cast<uint64_t>(end_ - pos_);
  if (count > left) fail(start, fmt::format("{} of {} bytes runs past {} ({} bytes left)", what, count, where_end(), left));
  const char* at = pos_;
  pos_ += count;
  return at;
}

std::string_view Reader::length_delimited(const char* what) {
  const size_t start = offset();
  const uint64_t length = varint(what);
  const auto left = static_cast<uint64_t>(end_ - pos_);
  if (length > left) {
    if (length > static_cast<uint64_t>(file_end_ - pos_)) {
      fail(start, fmt::format("length {} runs past the end of the file", length));
    }
    fail(start, fmt::format("length {} runs past {} ({} bytes left)", length, where_end(), left));
  }
  std::string_view view(pos_, static_cast<size_t>(length));
  pos_ += length;
  return view;
}

bool Reader::next() {
  label(nullptr, -1);
  if (pos_ == end_) return false;
  tag_offset_ = offset();
  const uint64_t key = varint("tag");
  const uint64_t number = key >> 3;
  const auto wire = static_cast<uint32_t>(key & 7);
  if (number == 0 || number > (1u << 29) - 1) {
    fail(tag_offset_, fmt::format("invalid field number {}", number));
  }
  field_ = static_cast<uint32_t>(number);
  if (wire > 5) fail(tag_offset_, fmt::format("invalid wire type {} for field {}", wire, field_));
  wire_ = static_cast<WireType>(wire);
  if (wire_ == WireType::EndGroup) fail(tag_offset_, fmt::format("end-group tag for field {} without a group", field_));
  return true;
}

void Reader::expect(WireType wire) const {
  if (wire_ != wire) {
    fail(tag_offset_, fmt::format("field {} has wire type {}, expected {}", field_, wire_name(wire_), wire_name(wire)));
  }
}

uint64_t Reader::read_uint64(const char* name, int64_t index) {
  label(name, index);
  expect(WireType::Varint);
  return varint("value");
}

int64_t Reader::read_int64(const char* name, int64_t index) {
  return static_cast<int64_t>(read_uint64(name, index));
}

int32_t Reader::read_int32(const char* name, int64_t index) {
  const size_t start = offset();
  const int64_t value = read_int64(name, index);
  if (value < std::numeric_limits<int32_t>::min() || value > std::numeric_limits<int32_t>::max()) {
    fail(start, fmt::format("value {} does not fit in int32", value));
  }
  return static_cast<int32_t>(value);
}

float Reader::read_float(const char* name, int64_t index) {
  label(name, index);
  expect(WireType::Fixed32);
  float value;
  std::memcpy(&value, take(4, "fixed32 value"), 4);
  return value;
}

double Reader::read_double(const char* name, int64_t index) {
  label(name, index);
  expect(WireType::Fixed64);
  double value;
  std::memcpy(&value, take(8, "fixed64 value"), 8);
  return value;
}

std::string Reader::read_string(const char* name, int64_t index) {
  label(name, index);
  expect(WireType::Len);
  return std::string(length_delimited("length"));
}

namespace {

// Packed varints: count the values first (bytes without the continuation bit) so the vector grows
// once, by no more than the input's size.
template <class T, class Convert>
void read_packed_varints(Reader& r, std::string_view packed, size_t base, std::vector<T>& out, Convert convert) {
  size_t count = 0;
  for (char c : packed) count += (static_cast<uint8_t>(c) & 0x80) == 0;
  // Grow geometrically: an exact reserve per field would make many small packed fields quadratic.
  if (out.capacity() - out.size() < count) out.reserve(std::max(out.size() + count, 2 * out.capacity()));
  size_t i = 0;
  while (i < packed.size()) {
    uint64_t value = 0;
    const size_t start = i;
    for (int b = 0;; ++b) {
      if (i == packed.size()) r.fail(base + start, "varint runs past the end of the packed field");
      const auto byte = static_cast<uint8_t>(packed[i++]);
      if (b == 9) {
        if (byte & 0x80) r.fail(base + start, "varint is longer than 10 bytes");
        if (byte > 1) r.fail(base + start, "varint overflows 64 bits");
      }
      value |= static_cast<uint64_t>(byte & 0x7F) << (7 * b);
      if (!(byte & 0x80)) break;
    }
    out.push_back(convert(value, base + start));
  }
}

template <class T>
void read_packed_fixed(Reader& r, std::string_view packed, size_t base, std::vector<T>& out) {
  if (packed.size() % sizeof(T) != 0) {
    r.fail(base, fmt::format("packed field of {} bytes is not a multiple of {}", packed.size(), sizeof(T)));
  }
  const size_t old = out.size();
  out.resize(old + packed.size() / sizeof(T));
  if (!packed.empty()) std::memcpy(out.data() + old, packed.data(), packed.size());
}

}  // namespace

void Reader::read_repeated(std::vector<int64_t>& out, const char* name) {
  if (wire_ != WireType::Len) return out.push_back(read_int64(name, static_cast<int64_t>(out.size())));
  label(name, -1);
  std::string_view packed = length_delimited("length");
  read_packed_varints(*this, packed, offset() - packed.size(), out,
                      [](uint64_t v, size_t) { return static_cast<int64_t>(v); });
}

void Reader::read_repeated(std::vector<uint64_t>& out, const char* name) {
  if (wire_ != WireType::Len) return out.push_back(read_uint64(name, static_cast<int64_t>(out.size())));
  label(name, -1);
  std::string_view packed = length_delimited("length");
  read_packed_varints(*this, packed, offset() - packed.size(), out, [](uint64_t v, size_t) { return v; });
}

void Reader::read_repeated(std::vector<int32_t>& out, const char* name) {
  if (wire_ != WireType::Len) return out.push_back(read_int32(name, static_cast<int64_t>(out.size())));
  label(name, -1);
  std::string_view packed = length_delimited("length");
  read_packed_varints(*this, packed, offset() - packed.size(), out, [this](uint64_t v, size_t at) {
    const auto value = static_cast<int64_t>(v);
    if (value < std::numeric_limits<int32_t>::min() || value > std::numeric_limits<int32_t>::max()) {
      fail(at, fmt::format("value {} does not fit in int32", value));
    }
    return static_cast<int32_t>(value);
  });
}

void Reader::read_repeated(std::vector<float>& out, const char* name) {
  if (wire_ != WireType::Len) return out.push_back(read_float(name, static_cast<int64_t>(out.size())));
  label(name, -1);
  std::string_view packed = length_delimited("length");
  read_packed_fixed(*this, packed, offset() - packed.size(), out);
}

void Reader::read_repeated(std::vector<double>& out, const char* name) {
  if (wire_ != WireType::Len) return out.push_back(read_double(name, static_cast<int64_t>(out.size())));
  label(name, -1);
  std::string_view packed = length_delimited("length");
  read_packed_fixed(*this, packed, offset() - packed.size(), out);
}

const char* Reader::enter(const char* name, int64_t index) {
  label(name, index);
  expect(WireType::Len);
  if (path_.size() >= static_cast<size_t>(kMaxDepth)) {
    fail(offset(), fmt::format("messages are nested deeper than {} levels", kMaxDepth));
  }
  std::string_view body = length_delimited("length");
  path_.push_back({name, index});
  label(nullptr, -1);
  const char* outer_end = end_;
  pos_ = body.data();
  end_ = body.data() + body.size();
  return outer_end;
}

void Reader::leave(const char* outer_end) {
  // The body loop only stops at end_, so pos_ == end_ here; restore the enclosing message.
  path_.pop_back();
  pos_ = end_;
  end_ = outer_end;
  label(nullptr, -1);
}

void Reader::skip_group(uint32_t number, int depth) {
  if (path_.size() + static_cast<size_t>(depth) >= static_cast<size_t>(kMaxDepth)) {
    fail(tag_offset_, fmt::format("groups are nested deeper than {} levels", kMaxDepth));
  }
  for (;;) {
    const size_t start = offset();
    if (pos_ == end_) fail(start, fmt::format("group of field {} is not closed before {}", number, where_end()));
    const uint64_t key = varint("tag");
    const uint64_t inner = key >> 3;
    const auto wire = static_cast<uint32_t>(key & 7);
    if (inner == 0 || inner > (1u << 29) - 1) fail(start, fmt::format("invalid field number {}", inner));
    switch (wire) {
      case 0: varint("value"); break;
      case 1: take(8, "fixed64 value"); break;
      case 2: length_delimited("length"); break;
      case 3: skip_group(static_cast<uint32_t>(inner), depth + 1); break;
      case 4:
        if (inner != number) fail(start, fmt::format("end-group tag for field {} inside group {}", inner, number));
        return;
      case 5: take(4, "fixed32 value"); break;
      default: fail(start, fmt::format("invalid wire type {} for field {}", wire, inner));
    }
  }
}

void Reader::skip_unknown(UnknownFields& unknown) {
  field_name_ = nullptr;
  field_index_ = -2;
  const char* start = pos_;
  switch (wire_) {
    case WireType::Varint: varint("value"); break;
    case WireType::Fixed64: take(8, "fixed64 value"); break;
    case WireType::Len: length_delimited("length"); break;
    case WireType::StartGroup: skip_group(field_, 1); break;
    case WireType::Fixed32: take(4, "fixed32 value"); break;
    case WireType::EndGroup: fail(tag_offset_, "unexpected end-group tag");  // next() rejects these
  }
  unknown.push_back({field_, wire_, std::string(start, static_cast<size_t>(pos_ - start))});
  label(nullptr, -1);
}

// ---------------------------------------------------------------------------------------------
// Writer

void Writer::write_uint64(uint32_t field, uint64_t value) {
  write_tag(field, WireType::Varint);
  append_varint(out_, value);
}

void Writer::write_float(uint32_t field, float value) {
  write_tag(field, WireType::Fixed32);
  char buf[4];
  std::memcpy(buf, &value, 4);
  out_.append(buf, 4);
}

void Writer::write_double(uint32_t field, double value) {
  write_tag(field, WireType::Fixed64);
  char buf[8];
  std::memcpy(buf, &value, 8);
  out_.append(buf, 8);
}

void Writer::write_string(uint32_t field, std::string_view value) {
  write_tag(field, WireType::Len);
  append_varint(out_, value.size());
  out_.append(value);
}

namespace {

template <class T>
void packed_varints(std::string& out, Writer& w, uint32_t field, const std::vector<T>& values) {
  if (values.empty()) return;
  size_t size = 0;
  for (T v : values) size += static_cast<size_t>(varint_size(static_cast<uint64_t>(static_cast<int64_t>(v))));
  w.write_tag(field, WireType::Len);
  append_varint(out, size);
  for (T v : values) append_varint(out, static_cast<uint64_t>(static_cast<int64_t>(v)));
}

template <class T>
void packed_fixed(std::string& out, Writer& w, uint32_t field, const std::vector<T>& values) {
  if (values.empty()) return;
  w.write_tag(field, WireType::Len);
  append_varint(out, values.size() * sizeof(T));
  out.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

}  // namespace

void Writer::write_packed(uint32_t field, const std::vector<int64_t>& values) { packed_varints(out_, *this, field, values); }
void Writer::write_packed(uint32_t field, const std::vector<int32_t>& values) { packed_varints(out_, *this, field, values); }
void Writer::write_packed(uint32_t field, const std::vector<float>& values) { packed_fixed(out_, *this, field, values); }
void Writer::write_packed(uint32_t field, const std::vector<double>& values) { packed_fixed(out_, *this, field, values); }

void Writer::write_packed(uint32_t field, const std::vector<uint64_t>& values) {
  if (values.empty()) return;
  size_t size = 0;
  for (uint64_t v : values) size += static_cast<size_t>(varint_size(v));
  write_tag(field, WireType::Len);
  append_varint(out_, size);
  for (uint64_t v : values) append_varint(out_, v);
}

void Writer::write_unpacked(uint32_t field, const std::vector<int64_t>& values) {
  for (int64_t v : values) write_int64(field, v);
}

void Writer::write_unpacked(uint32_t field, const std::vector<float>& values) {
  for (float v : values) write_float(field, v);
}

size_t Writer::begin_message(uint32_t field) {
  write_tag(field, WireType::Len);
  const size_t mark = out_.size();
  out_.push_back('\0');  // room for a 1-byte length; end_message widens it when needed
  return mark;
}

void Writer::end_message(size_t mark) {
  const uint64_t length = out_.size() - mark - 1;
  const int n = varint_size(length);
  // Messages under 128 bytes (most of them) need no move; larger ones move their bytes once.
  if (n > 1) out_.insert(mark + 1, static_cast<size_t>(n - 1), '\0');
  put_varint(out_.data() + mark, length);
}

void Writer::write_unknown(const UnknownFields& unknown) {
  for (const UnknownField& f : unknown) {
    write_tag(f.number, f.wire_type);
    out_.append(f.data);
  }
}

}  // namespace latent::onnx::pb
