// safetensors reader and writer. See safetensors.h for the layout.
#include "safetensors.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "checkpoint.h"
#include "json.h"

namespace latent {

// The data section is copied byte for byte; a big-endian host would need byte swaps.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

Tensor find_tensor(const NamedTensors& tensors, std::string_view name) {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  return Tensor();
}

namespace safetensors {

namespace {

constexpr const char* kOp = "safetensors";

const char* dtype_code(DType dtype) {
  const char* code = dtype_safetensors_code(dtype);
  return code ? code : "?";
}

// Dtypes of the safetensors specification that latent does not hold.
bool is_spec_dtype(std::string_view code) {
  static constexpr std::string_view known[] = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16",
                                               "U16", "F16", "BF16", "I32", "U32", "U64", "F4", "F6_E2M3",
                                               "F6_E3M2", "C64"};
  return std::find(std::begin(known), std::end(known), code) != std::end(known);
}

std::string join_names(const NamedTensors& tensors) {
  std::string out;
  for (size_t i = 0; i < tensors.size() && i < 8; ++i) {
    if (i) out += ", ";
    out += tensors[i].first;
  }
  if (tensors.size() > 8) out += fmt::format(", ... ({} in all)", tensors.size());
  return out.empty() ? "no tensors" : out;
}

uint64_t read_u64_le(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

[[noreturn]] void entry_fail(const std::string& source, const std::string& name, const std::string& what) {
  fail(kOp, "{}: tensor '{}': {}", source, name, what);
}

/// One header entry after validation.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

/// Validates one header entry (dtype, shape, offsets against each other and the data size).
Entry parse_entry(const std::string& source, const std::string& name, const json::Value& info,
                  uint64_t data_size) {
  auto bad = [&](const std::string& what) { entry_fail(source, name, what); };
  if (!info.is_object()) bad("expected an object with dtype, shape and data_offsets");
  for (const auto& [key, value] : info.as_object()) {
    (void)value;
    if (key != "dtype" && key != "shape" && key != "data_offsets") bad(fmt::format("unknown field '{}'", key));
  }
  Entry e{name, kFloat32, {}, 0, 0};
  const json::Value* dtype = info.find("dtype");
  const json::Value* shape = info.find("shape");
  const json::Value* offsets = info.find("data_offsets");
  if (!dtype || !shape || !offsets) bad("missing field 'dtype', 'shape' or 'data_offsets'");

  if (!dtype->is_string()) bad("dtype is not a string");
  const std::string& code = dtype->as_string();
  if (!dtype_from_safetensors(code, e.dtype)) {
    if (is_spec_dtype(code)) {
      std::string held;  // the codes of the dtype list, in its order
      for (const auto& info : detail::kDTypeInfo) held += (held.empty() ? "" : ", ") + std::string(info.safetensors);
      bad(fmt::format("dtype {} is not supported (latent reads {})", code, held));
    }
    bad(fmt::format("unknown dtype '{}'", code));
  }

  if (!shape->is_array()) bad("shape is not an array");
  if (shape->size() > static_cast<size_t>(kMaxDims))
    bad(fmt::format("shape has {} dimensions, latent supports at most {}", shape->size(), kMaxDims));
  uint64_t numel = 1;
  bool overflow = false;
  for (const json::Value& d : shape->as_array()) {
    if (!d.is_integer() || d.as_double() < 0) bad(fmt::format("shape entry {} is not a non-negative integer", d.dump()));
    const uint64_t n = d.as_uint64();
    if (n > static_cast<uint64_t>(INT64_MAX)) bad(fmt::format("shape entry {} is too large", n));
    e.shape.push_back(static_cast<int64_t>(n));
    overflow = overflow || __builtin_mul_overflow(numel, n, &numel);
  }
  uint64_t needed = 0;
  overflow = overflow || __builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(e.dtype)), &needed);
  if (overflow) bad(fmt::format("shape {} is too large", e.shape));

  if (!offsets->is_array() || offsets->size() != 2 || !offsets->at(size_t{0}).is_integer() ||
      !offsets->at(size_t{1}).is_integer() || offsets->at(size_t{0}).as_double() < 0 ||
      offsets->at(size_t{1}).as_double() < 0)
    bad(fmt::format("data_offsets {} is not two non-negative integers [begin, end]", offsets->dump()));
  e.begin = offsets->at(size_t{0}).as_uint64();
  e.end = offsets->at(size_t{1}).as_uint64();
  if (e.end < e.begin) bad(fmt::format("data_offsets [{}, {}] end before they begin", e.begin, e.end));
  if (e.end - e.begin != needed)
    bad(fmt::format("data_offsets [{}, {}] hold {} bytes, but {} {} needs {}", e.begin, e.end, e.end - e.begin,
                    e.dtype, e.shape, needed));
  if (e.end > data_size)
    bad(fmt::format("data_offsets [{}, {}] reach past the end of the data section ({} bytes): the file is truncated",
                    e.begin, e.end, data_size));
  return e;
}

}  // namespace

const Tensor& File::at(std::string_view name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  fail(kOp, "no tensor '{}' (the file has: {})", name, join_names(tensors));
}

std::string serialize(const NamedTensors& tensors, const StringMap& metadata) {
  json::Value header = json::Value::object();
  if (!metadata.empty()) {
    json::Value meta = json::Value::object();
    for (const auto& [k, v] : metadata) {
      if (meta.find(k)) fail(kOp, "duplicate metadata key '{}'", k);
      meta[k] = v;
    }
    header["__metadata__"] = std::move(meta);
  }
  std::vector<Tensor> contiguous;
  contiguous.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name.empty()) fail(kOp, "a tensor name is empty");
    if (name == "__metadata__") fail(kOp, "'__metadata__' is reserved and cannot name a tensor");
    if (header.find(name)) fail(kOp, "duplicate tensor name '{}'", name);
    if (!t.defined()) fail(kOp, "tensor '{}' is undefined", name);
    if (!t.device().is_cpu()) fail(kOp, "tensor '{}' is on {}; move it to the CPU first", name, t.device());
    contiguous.push_back(t.contiguous());
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype());
    json::Value entry = json::Value::object();
    entry["dtype"] = dtype_code(t.dtype());
    json::Value shape = json::Value::array();
    for (int64_t d : t.shape()) shape.push_back(d);
    entry["shape"] = std::move(shape);
    entry["data_offsets"] = json::Array{json::Value(offset), json::Value(offset + bytes)};
    header[name] = std::move(entry);
    offset += bytes;
  }
  std::string text = header.dump();
  // Pad with spaces so the data section starts 8-aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + text.size() + offset);
  const uint64_t n = text.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += text;
  for (const Tensor& t : contiguous)
    out.append(static_cast<const char*>(t.raw_data()), static_cast<size_t>(t.numel()) * dtype_size(t.dtype()));
  return out;
}

File deserialize(std::string_view bytes, const std::string& source) {
  if (bytes.size() < 8)
    fail(kOp, "{}: truncated header at byte {}: the file is too short for the 8-byte header length", source,
         bytes.size());
  const uint64_t n = read_u64_le(bytes.data());
  if (n > kMaxHeaderBytes) fail(kOp, "{}: header length {} exceeds the limit of {} bytes", source, n, kMaxHeaderBytes);
  if (n > bytes.size() - 8)
    fail(kOp, "{}: truncated header at byte {}: the header length says {} bytes, which end at byte {}", source,
         bytes.size(), n, 8 + n);
  const std::string_view text = bytes.substr(8, n);
  if (text.empty() || text[0] != '{') fail(kOp, "{}: the header does not start with '{{'", source);
  json::Value header;
  try {
    header = json::parse(text);
  } catch (const Error& e) {
    // "[json] expected ... at byte 57" counts from the start of the header, which starts at byte 8.
    fail(kOp, "{}: header is not valid JSON (offsets count from the header start at byte 8): {}", source,
         std::string_view(e.what()).substr(7));
  }
  if (!header.is_object()) fail(kOp, "{}: header is not a JSON object", source);
  const uint64_t data_size = bytes.size() - 8 - n;
  const char* data = bytes.data() + 8 + n;

  File file;
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.as_object()) {
    if (name == "__metadata__") {
      if (!info.is_object()) fail(kOp, "{}: __metadata__ is not an object of strings", source);
      for (const auto& [k, v] : info.as_object()) {
        if (!v.is_string()) fail(kOp, "{}: __metadata__ value '{}' is {}, not a string", source, k, v.dump());
        file.metadata.emplace_back(k, v.as_string());
      }
      continue;
    }
    entries.push_back(parse_entry(source, name, info, data_size));
  }

  // The tensors must tile the data section: sorted by offset, each starts where the last ended.
  std::vector<const Entry*> sorted;
  for (const Entry& e : entries) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry* e : sorted) {
    if (e->begin < covered)
      fail(kOp, "{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", source, previous->name, previous->begin,
           previous->end, e->name, e->begin, e->end);
    if (e->begin > covered)
      fail(kOp, "{}: tensor '{}': bytes [{}, {}) of the data section before it belong to no tensor", source,
           e->name, covered, e->begin);
    covered = e->end;
    previous = e;
  }
  if (covered != data_size)
    fail(kOp, "{}: the data section has {} bytes but the tensors cover {}", source, data_size, covered);

  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, e.dtype);
    if (e.end > e.begin) std::memcpy(t.raw_data(), data + e.begin, e.end - e.begin);
    file.tensors.emplace_back(e.name, std::move(t));
  }
  return file;
}

void save_file(const NamedTensors& tensors, const std::string& path, const StringMap& metadata) {
  write_file_atomic(path, serialize(tensors, metadata));
}

File load_file(const std::string& path) { return deserialize(read_file(path, kOp), path); }

}  // namespace safetensors
}  // namespace latent
