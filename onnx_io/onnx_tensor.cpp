// TensorProto <-> flat values (see onnx_tensor.h). Every size is checked against dims before
// anything is allocated, and external files are read only inside the model's folder.
#include "onnx_tensor.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>
#include <type_traits>

#include "../autograd/error.h"

namespace latent::onnx {

namespace fs = std::filesystem;

namespace {

std::string label(const TensorProto& t) { return t.name.empty() ? "tensor (unnamed)" : fmt::format("tensor '{}'", t.name); }

template <class T>
constexpr DataType data_type_of() {
  if constexpr (std::is_same_v<T, float>) return DataType::Float;
  else if constexpr (std::is_same_v<T, double>) return DataType::Double;
  else if constexpr (std::is_same_v<T, int64_t>) return DataType::Int64;
  else if constexpr (std::is_same_v<T, int32_t>) return DataType::Int32;
  else if constexpr (std::is_same_v<T, int8_t>) return DataType::Int8;
  else if constexpr (std::is_same_v<T, uint8_t>) return DataType::Uint8;
  else if constexpr (std::is_same_v<T, bool>) return DataType::Bool;
  else static_assert(sizeof(T) == 0, "unsupported element type");
}

/// Values from int32_data for the narrow types ONNX stores one per int32, range-checked.
std::string narrow_from_int32(const TensorProto& t, DataType dt) {
  std::string out;
  out.reserve(t.int32_data.size() * element_size(t.data_type));
  for (size_t i = 0; i < t.int32_data.size(); ++i) {
    const int32_t v = t.int32_data[i];
    int32_t lo = 0, hi = 0;
    switch (dt) {
      case DataType::Int32: out.append(reinterpret_cast<const char*>(&v), 4); continue;
      case DataType::Int8: lo = -128, hi = 127; break;
      case DataType::Uint8: lo = 0, hi = 255; break;
      default: lo = 0, hi = 1; break;  // BOOL
    }
    if (v < lo || v > hi) {
      fail("onnx", "{}: int32_data[{}] = {} is out of range for {}", label(t), i, v, data_type_name(t.data_type));
    }
    out.push_back(static_cast<char>(static_cast<uint8_t>(v)));
  }
  return out;
}

template <class T>
std::string bytes_of(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

int64_t parse_size(const TensorProto& t, const std::string& key, const std::string& text) {
  int64_t value = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) {
    fail("onnx", "{}: external data {} '{}' is not a non-negative integer", label(t), key, text);
  }
  return value;
}

}  // namespace

size_t element_size(int32_t data_type) {
  switch (static_cast<DataType>(data_type)) {
    case DataType::Float: return 4;
    case DataType::Double: return 8;
    case DataType::Int64: return 8;
    case DataType::Int32: return 4;
    case DataType::Int8:
    case DataType::Uint8:
    case DataType::Bool: return 1;
    default: return 0;
  }
}

int64_t element_count(const TensorProto& t) {
  int64_t count = 1;
  for (int64_t d : t.dims) {
    if (d < 0) fail("onnx", "{}: dims [{}] has a negative dimension", label(t), fmt::join(t.dims, ", "));
    if (__builtin_mul_overflow(count, d, &count)) {
      fail("onnx", "{}: dims [{}] has more elements than fit in int64", label(t), fmt::join(t.dims, ", "));
    }
  }
  return count;
}

std::string read_external_data(const TensorProto& t, const fs::path& model_dir) {
  std::string location;
  int64_t offset = 0, length = -1;
  bool has_location = false;
  for (const StringStringEntryProto& e : t.external_data) {
    if (e.key == "location") {
      location = e.value;
      has_location = true;
    } else if (e.key == "offset") {
      offset = parse_size(t, e.key, e.value);
    } else if (e.key == "length") {
      length = parse_size(t, e.key, e.value);
    }  // "checksum" and keys from newer versions are not needed to read the bytes
  }
  if (!has_location || location.empty()) fail("onnx", "{}: external data has no 'location' entry", label(t));
  if (location.find('\0') != std::string::npos) fail("onnx", "{}: external data location contains a NUL byte", label(t));
  const fs::path relative(location);
  if (relative.is_absolute() || relative.has_root_name() || relative.has_root_directory()) {
    fail("onnx", "{}: external data location '{}' is an absolute path; it must be relative to the model's folder",
         label(t), location);
  }
  for (const fs::path& part : relative) {
    if (part == "..") fail("onnx", "{}: external data location '{}' leaves the model's folder", label(t), location);
  }
  if (model_dir.empty()) {
    fail("onnx", "{}: its data is in the external file '{}', but the model's folder was not given", label(t), location);
  }
  // Symlinks can still lead out of the folder: compare the resolved paths.
  std::error_code ec;
  const fs::path dir = fs::canonical(model_dir, ec);
  if (ec) fail("onnx", "{}: cannot resolve the model's folder '{}': {}", label(t), model_dir.string(), ec.message());
  const fs::path file = fs::canonical(dir / relative, ec);
  if (ec) fail("onnx", "{}: cannot open external data file '{}': {}", label(t), (dir / relative).string(), ec.message());
  auto [dir_end, file_it] = std::mismatch(dir.begin(), dir.end(), file.begin(), file.end());
  if (dir_end != dir.end()) {
    fail("onnx", "{}: external data location '{}' resolves to '{}', outside the model's folder '{}'", label(t),
         location, file.string(), dir.string());
  }
  if (!fs::is_regular_file(file, ec)) fail("onnx", "{}: external data '{}' is not a regular file", label(t), file.string());
  const auto size = static_cast<int64_t>(fs::file_size(file, ec));
  if (ec) fail("onnx", "{}: cannot read '{}': {}", label(t), file.string(), ec.message());
  if (offset > size) {
    fail("onnx", "{}: external data offset {} is past the end of '{}' ({} bytes)", label(t), offset, file.string(), size);
  }
  if (length < 0) length = size - offset;
  if (length > size - offset) {
    fail("onnx", "{}: external data [{}, {} + {}) runs past the end of '{}' ({} bytes)", label(t), offset, offset,
         length, file.string(), size);
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("onnx", "{}: cannot open '{}'", label(t), file.string());
  in.seekg(offset);
  std::string bytes(static_cast<size_t>(length), '\0');
  in.read(bytes.data(), length);
  if (in.gcount() != length) fail("onnx", "{}: short read on '{}'", label(t), file.string());
  return bytes;
}

std::string tensor_bytes(const TensorProto& t, const fs::path& model_dir) {
  const size_t item = element_size(t.data_type);
  if (item == 0) {
    fail("onnx", "{}: data type {} is not supported (FLOAT, DOUBLE, INT64, INT32, INT8, UINT8 and BOOL are)",
         label(t), data_type_name(t.data_type));
  }
  const int64_t count = element_count(t);
  uint64_t expected = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(count), item, &expected)) {
    fail("onnx", "{}: {} elements of {} overflow", label(t), count, data_type_name(t.data_type));
  }
  const auto dt = static_cast<DataType>(t.data_type);
  const bool has_typed = !t.float_data.empty() || !t.int32_data.empty() || !t.int64_data.empty() ||
                         !t.double_data.empty() || !t.uint64_data.empty() || !t.string_data.empty();
  auto check_raw = [&](const std::string& bytes, const char* where) {
    if (bytes.size() != expected) {
      fail("onnx", "{}: {} has {} bytes, expected {} for dims [{}] of {}", label(t), where, bytes.size(), expected,
           fmt::join(t.dims, ", "), data_type_name(t.data_type));
    }
    if (dt == DataType::Bool) {
      for (size_t i = 0; i < bytes.size(); ++i) {
        if (static_cast<uint8_t>(bytes[i]) > 1) {
          fail("onnx", "{}: BOOL value {} at element {} is neither 0 nor 1", label(t), static_cast<uint8_t>(bytes[i]), i);
        }
      }
    }
  };
  if (t.data_location == static_cast<int32_t>(DataLocation::External)) {
    if (!t.raw_data.empty() || has_typed) fail("onnx", "{}: has external data and data in the file as well", label(t));
    std::string bytes = read_external_data(t, model_dir);
    check_raw(bytes, "external data");
    return bytes;
  }
  if (t.data_location != 0) fail("onnx", "{}: data_location {} is not DEFAULT (0) or EXTERNAL (1)", label(t), t.data_location);
  if (!t.raw_data.empty()) {
    if (has_typed) fail("onnx", "{}: has both raw_data and a typed data field", label(t));
    check_raw(t.raw_data, "raw_data");
    return t.raw_data;
  }
  // Typed fields: check the one ONNX uses for this data type, and that no other one is filled.
  const bool narrow = dt == DataType::Int32 || dt == DataType::Int8 || dt == DataType::Uint8 || dt == DataType::Bool;
  const char* field_name = dt == DataType::Float    ? "float_data"
                           : dt == DataType::Double ? "double_data"
                           : dt == DataType::Int64  ? "int64_data"
                                                    : "int32_data";
  const size_t have = dt == DataType::Float    ? t.float_data.size()
                      : dt == DataType::Double ? t.double_data.size()
                      : dt == DataType::Int64  ? t.int64_data.size()
                                               : t.int32_data.size();
  const size_t others = t.float_data.size() + t.double_data.size() + t.int64_data.size() + t.int32_data.size() +
                        t.uint64_data.size() + t.string_data.size() - have;
  if (others != 0) {
    fail("onnx", "{}: a {} tensor keeps its values in {}, but other typed fields hold {} values", label(t),
         data_type_name(t.data_type), field_name, others);
  }
  if (have != static_cast<uint64_t>(count)) {
    fail("onnx", "{}: {} has {} values, expected {} for dims [{}]", label(t), field_name, have, count,
         fmt::join(t.dims, ", "));
  }
  if (narrow) return narrow_from_int32(t, dt);
  if (dt == DataType::Float) return bytes_of(t.float_data);
  if (dt == DataType::Double) return bytes_of(t.double_data);
  return bytes_of(t.int64_data);
}

template <class T>
std::vector<T> tensor_to_vector(const TensorProto& t, const fs::path& model_dir) {
  constexpr DataType want = data_type_of<T>();
  if (t.data_type != static_cast<int32_t>(want)) {
    fail("onnx", "{}: is {}, not {}", label(t), data_type_name(t.data_type), data_type_name(static_cast<int32_t>(want)));
  }
  const std::string bytes = tensor_bytes(t, model_dir);
  if constexpr (std::is_same_v<T, bool>) {
    std::vector<bool> out(bytes.size());
    for (size_t i = 0; i < bytes.size(); ++i) out[i] = bytes[i] != 0;
    return out;
  } else {
    std::vector<T> out(bytes.size() / sizeof(T));
    if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
    return out;
  }
}

std::vector<double> tensor_to_doubles(const TensorProto& t, const fs::path& model_dir) {
  const std::string bytes = tensor_bytes(t, model_dir);
  const size_t item = element_size(t.data_type);
  std::vector<double> out(bytes.size() / item);
  auto convert = [&]<class T>(T) {
    for (size_t i = 0; i < out.size(); ++i) {
      T v;
      std::memcpy(&v, bytes.data() + i * sizeof(T), sizeof(T));
      out[i] = static_cast<double>(v);
    }
  };
  switch (static_cast<DataType>(t.data_type)) {
    case DataType::Float: convert(float{}); break;
    case DataType::Double: convert(double{}); break;
    case DataType::Int64: convert(int64_t{}); break;
    case DataType::Int32: convert(int32_t{}); break;
    case DataType::Int8: convert(int8_t{}); break;
    default: convert(uint8_t{}); break;  // UINT8 and BOOL
  }
  return out;
}

template <class T>
TensorProto make_tensor(std::string name, std::vector<int64_t> dims, std::span<const T> values, bool raw) {
  TensorProto t;
  t.name = std::move(name);
  t.dims = std::move(dims);
  t.data_type = static_cast<int32_t>(data_type_of<T>());
  if (static_cast<uint64_t>(element_count(t)) != values.size()) {
    fail("onnx", "{}: {} values given for dims [{}] ({} elements)", label(t), values.size(), fmt::join(t.dims, ", "),
         element_count(t));
  }
  if (raw) {
    if constexpr (std::is_same_v<T, bool>) {
      t.raw_data.reserve(values.size());
      for (bool v : values) t.raw_data.push_back(v ? '\1' : '\0');
    } else {
      t.raw_data.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
    }
  } else if constexpr (std::is_same_v<T, float>) {
    t.float_data.assign(values.begin(), values.end());
  } else if constexpr (std::is_same_v<T, double>) {
    t.double_data.assign(values.begin(), values.end());
  } else if constexpr (std::is_same_v<T, int64_t>) {
    t.int64_data.assign(values.begin(), values.end());
  } else {
    t.int32_data.reserve(values.size());
    for (T v : values) t.int32_data.push_back(static_cast<int32_t>(v));
  }
  return t;
}

#define LATENT_ONNX_TENSOR_TYPE(T)                                                                 \
  template std::vector<T> tensor_to_vector<T>(const TensorProto&, const fs::path&);                \
  template TensorProto make_tensor<T>(std::string, std::vector<int64_t>, std::span<const T>, bool);
LATENT_ONNX_TENSOR_TYPE(float)
LATENT_ONNX_TENSOR_TYPE(double)
LATENT_ONNX_TENSOR_TYPE(int64_t)
LATENT_ONNX_TENSOR_TYPE(int32_t)
LATENT_ONNX_TENSOR_TYPE(int8_t)
LATENT_ONNX_TENSOR_TYPE(uint8_t)
LATENT_ONNX_TENSOR_TYPE(bool)
#undef LATENT_ONNX_TENSOR_TYPE

}  // namespace latent::onnx
