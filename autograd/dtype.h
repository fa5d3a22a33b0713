// Element types and devices, and the one dtype switch every kernel goes through.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "error.h"

namespace latent {

/// Element type of a tensor. float64 exists for gradcheck; int64 for labels and indices.
enum class DType : uint8_t { Float32, Float64, Int64 };

inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kFloat = DType::Float32;
inline constexpr DType kDouble = DType::Float64;
inline constexpr DType kLong = DType::Int64;

/// "float32", "float64", "int64".
constexpr std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
  }
  return "unknown";
}

/// Bytes per element.
constexpr size_t dtype_size(DType dtype) { return dtype == DType::Float32 ? 4 : 8; }

constexpr bool is_floating(DType dtype) { return dtype != DType::Int64; }

/// The dtype both operands of a binary op are converted to: int64 < float32 < float64.
constexpr DType promote_types(DType a, DType b) {
  auto rank = [](DType d) { return d == DType::Int64 ? 0 : d == DType::Float32 ? 1 : 2; };
  return rank(a) >= rank(b) ? a : b;
}

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::Int64; };

/// Calls fn with a value of the C++ type of `dtype` (float, double or int64_t) and returns its result.
template <class Fn>
decltype(auto) visit_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::Float32: return fn(float{});
    case DType::Float64: return fn(double{});
    case DType::Int64: return fn(int64_t{});
  }
  fail("dtype", "unknown dtype code {}", static_cast<int>(dtype));
}

/// Like visit_dtype, restricted to float32 and float64; int64 throws "[op] dtype int64 is not supported ...".
template <class Fn>
decltype(auto) visit_floating(const char* op, DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::Float32: return fn(float{});
    case DType::Float64: return fn(double{});
    default: break;
  }
  fail(op, "dtype {} is not supported: expected float32 or float64", dtype_name(dtype));
}

enum class DeviceType : uint8_t { CPU = 0, CUDA = 1 };
inline constexpr int kNumDeviceTypes = 2;

/// Where a tensor's storage lives. Only CPU exists until the CUDA backend lands.
struct Device {
  DeviceType type = DeviceType::CPU;
  int8_t index = 0;
  constexpr bool operator==(const Device&) const = default;
  constexpr bool is_cpu() const { return type == DeviceType::CPU; }
};

inline constexpr Device kCPU{DeviceType::CPU, 0};
inline constexpr Device kCUDA{DeviceType::CUDA, 0};

constexpr std::string_view device_name(Device device) {
  return device.type == DeviceType::CPU ? "cpu" : "cuda";
}

}  // namespace latent

template <>
struct fmt::formatter<latent::DType> : fmt::formatter<std::string_view> {
  auto format(latent::DType d, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(latent::dtype_name(d), ctx);
  }
};
template <>
struct fmt::formatter<latent::Device> : fmt::formatter<std::string_view> {
  auto format(latent::Device d, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(latent::device_name(d), ctx);
  }
};
