// Element types and devices, and the one dtype switch every kernel goes through.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

#include "error.h"
#include "half.h"

namespace latent {

/// Every dtype latent holds, one line each. Adding a dtype is adding a line here: the enum, the
/// names, sizes, promotion, `dtype_of`, the visitors, the safetensors codes and ONNX's TensorProto
/// data types (onnx_io/) all come from this list.
///
///   X(Enum, C++ type, name, safetensors code, ONNX TensorProto data type, promotion rank, kind)
///
/// kind: kFloatingKind: float math and autograd; kComputeKind: the elementwise, reduction and
/// index kernels run on it (`visit_dtype`); kStorageKind: stored, copied, converted, filled and
/// read (`visit_any_dtype`), but computed on only by the kernels made for it (the int8 GEMM in
/// ops/cpu/qgemm.h): every other kernel throws "dtype int8 is not supported"; kHalfKind: a
/// storage dtype that is a float (bfloat16, float16): `to()` between it and float32 is
/// differentiable, and the low-precision kernels (ops/cpu/bgemm.h) and autocast use it.
#define LATENT_DTYPES(X)                                                \
  X(Float32, float, "float32", "F32", 1, 6, ::latent::kFloatingKind)   \
  X(Float64, double, "float64", "F64", 11, 7, ::latent::kFloatingKind) \
  X(Int64, int64_t, "int64", "I64", 7, 3, ::latent::kComputeKind)     \
  X(Int32, int32_t, "int32", "I32", 6, 2, ::latent::kStorageKind)     \
  X(Int8, int8_t, "int8", "I8", 3, 1, ::latent::kStorageKind)         \
  X(UInt8, uint8_t, "uint8", "U8", 2, 0, ::latent::kStorageKind)         \
  X(BFloat16, ::latent::BFloat16, "bfloat16", "BF16", 16, 5, ::latent::kHalfKind) \
  X(Float16, ::latent::Float16, "float16", "F16", 10, 4, ::latent::kHalfKind)

/// Which kernels a dtype reaches (the last column of LATENT_DTYPES).
enum DTypeKind : uint8_t {
  kStorageKind = 0,   ///< stored, converted, copied, indexed; computed on only by kernels made for it
  kComputeKind = 1,   ///< also the elementwise, reduction and index kernels (visit_dtype)
  kFloatingKind = 2,  ///< also float math and autograd (visit_floating)
  kHalfKind = 3,      ///< 16-bit floats: storage, plus differentiable `to()` and the low-precision kernels
};

/// Element type of a tensor. float64 exists for gradcheck; int64 for labels and indices;
/// int8/uint8/int32 for quantized weights, activations and accumulators; bfloat16/float16 for
/// mixed precision.
enum class DType : uint8_t {
#define LATENT_DTYPE_ENUM(E, T, N, S, O, R, K) E,
  LATENT_DTYPES(LATENT_DTYPE_ENUM)
#undef LATENT_DTYPE_ENUM
};

inline constexpr DType kFloat32 = DType::Float32;  ///< float32: the default dtype of tensors and parameters
inline constexpr DType kFloat64 = DType::Float64;  ///< float64 (gradcheck, accumulations)
inline constexpr DType kInt64 = DType::Int64;      ///< int64 (labels, indices)
inline constexpr DType kInt32 = DType::Int32;  ///< int32 (int8 GEMM accumulators, ONNX int32 tensors)
inline constexpr DType kInt8 = DType::Int8;    ///< int8 (quantized weights)
inline constexpr DType kUInt8 = DType::UInt8;  ///< uint8 (quantized activations)
inline constexpr DType kBFloat16 = DType::BFloat16;  ///< bfloat16 (mixed precision: autocast, the bf16 GEMM)
inline constexpr DType kFloat16 = DType::Float16;    ///< IEEE float16 (storage; autocast on CUDA)
inline constexpr DType kHalf = DType::Float16;       ///< LibTorch's name for float16
inline constexpr DType kFloat = DType::Float32;   ///< LibTorch's name for float32
inline constexpr DType kDouble = DType::Float64;  ///< LibTorch's name for float64
inline constexpr DType kLong = DType::Int64;      ///< LibTorch's name for int64
inline constexpr DType kInt = DType::Int32;    ///< LibTorch's name for int32
inline constexpr DType kChar = DType::Int8;    ///< LibTorch's name for int8
inline constexpr DType kByte = DType::UInt8;   ///< LibTorch's name for uint8

namespace detail {
/// One row of LATENT_DTYPES.
struct DTypeInfo {
  std::string_view name;    ///< "float32"
  const char* safetensors;  ///< "F32"
  int32_t onnx;             ///< TensorProto data type
  size_t size;              ///< bytes per element
  int rank;                 ///< promotion rank
  DTypeKind kind;           ///< which kernels reach it
};
/// The rows of LATENT_DTYPES, indexed by DType.
inline constexpr DTypeInfo kDTypeInfo[] = {
#define LATENT_DTYPE_INFO(E, T, N, S, O, R, K) {N, S, O, sizeof(T), R, K},
    LATENT_DTYPES(LATENT_DTYPE_INFO)
#undef LATENT_DTYPE_INFO
};
/// Number of dtypes.
inline constexpr int kNumDTypes = int(sizeof(kDTypeInfo) / sizeof(kDTypeInfo[0]));
/// The row of `d`, or null for a code outside the list.
constexpr const DTypeInfo* dtype_info(DType d) {
  return static_cast<int>(d) < kNumDTypes ? &kDTypeInfo[static_cast<int>(d)] : nullptr;
}
}  // namespace detail

/// "float32", "float64", "int64", "int32", "int8", "uint8", "bfloat16", "float16".
constexpr std::string_view dtype_name(DType dtype) {
  const auto* i = detail::dtype_info(dtype);
  return i ? i->name : "unknown";
}

/// Bytes per element.
constexpr size_t dtype_size(DType dtype) {
  const auto* i = detail::dtype_info(dtype);
  return i ? i->size : 0;
}

/// Whether autograd and float math run on the dtype (float32, float64; not the 16-bit floats, see is_half).
constexpr bool is_floating(DType dtype) {
  const auto* i = detail::dtype_info(dtype);
  return i && i->kind == kFloatingKind;
}

/// Whether the general elementwise/reduction/index kernels run on this dtype (float32, float64, int64).
constexpr bool is_compute_dtype(DType dtype) {
  const auto* i = detail::dtype_info(dtype);
  return i && (i->kind == kComputeKind || i->kind == kFloatingKind);
}

/// Whether the dtype is a 16-bit float (bfloat16, float16).
constexpr bool is_half(DType dtype) {
  const auto* i = detail::dtype_info(dtype);
  return i && i->kind == kHalfKind;
}

/// The safetensors code ("F32", "I8", ...), or nullptr for an unknown dtype.
constexpr const char* dtype_safetensors_code(DType dtype) {
  const auto* i = detail::dtype_info(dtype);
  return i ? i->safetensors : nullptr;
}

/// The dtype of a safetensors code; false when latent does not hold it.
constexpr bool dtype_from_safetensors(std::string_view code, DType& out) {
  for (int i = 0; i < detail::kNumDTypes; ++i)
    if (code == detail::kDTypeInfo[i].safetensors) { out = static_cast<DType>(i); return true; }
  return false;
}

/// ONNX's TensorProto data type number (FLOAT 1, UINT8 2, INT8 3, INT32 6, INT64 7, FLOAT16 10, DOUBLE 11, BFLOAT16 16), 0 if unknown.
constexpr int32_t dtype_onnx_code(DType dtype) {
  const auto* i = detail::dtype_info(dtype);
  return i ? i->onnx : 0;
}

/// The dtype of an ONNX TensorProto data type; false when latent does not hold it.
constexpr bool dtype_from_onnx(int32_t code, DType& out) {
  for (int i = 0; i < detail::kNumDTypes; ++i)
    if (code == detail::kDTypeInfo[i].onnx) { out = static_cast<DType>(i); return true; }
  return false;
}

/// The dtype both operands of a binary op are converted to: the higher promotion rank
/// (uint8 < int8 < int32 < int64 < float16 < bfloat16 < float32 < float64).
constexpr DType promote_types(DType a, DType b) {
  const auto* ia = detail::dtype_info(a);
  const auto* ib = detail::dtype_info(b);
  return (ia ? ia->rank : -1) >= (ib ? ib->rank : -1) ? a : b;
}

template <class T> struct dtype_of;
#define LATENT_DTYPE_OF(E, T, N, S, O, R, K) \
  template <> struct dtype_of<T> { static constexpr DType value = DType::E; };
LATENT_DTYPES(LATENT_DTYPE_OF)
#undef LATENT_DTYPE_OF

/// Calls fn with a value of the C++ type of `dtype` and returns its result, for every dtype in
/// the list (copy, conversion, fill, indexing, element reads).
template <class Fn>
decltype(auto) visit_any_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
#define LATENT_DTYPE_CASE(E, T, N, S, O, R, K) \
  case DType::E: return fn(T{});
    LATENT_DTYPES(LATENT_DTYPE_CASE)
#undef LATENT_DTYPE_CASE
  }
  fail("dtype", "unknown dtype code {}", static_cast<int>(dtype));
}

/// Calls fn with a value of the C++ type of `dtype` (float, double or int64_t: the compute
/// dtypes) and returns its result; a storage-only dtype throws "[op] dtype int8 is not supported ...".
template <class Fn>
decltype(auto) visit_dtype(const char* op, DType dtype, Fn&& fn) {
  switch (dtype) {
#define LATENT_DTYPE_CASE(E, T, N, S, O, R, K) \
  case DType::E: if constexpr (K == kComputeKind || K == kFloatingKind) return fn(T{}); else break;
    LATENT_DTYPES(LATENT_DTYPE_CASE)
#undef LATENT_DTYPE_CASE
  }
  fail(op, "dtype {} is not supported on CPU: convert with .to(kFloat32) first", dtype_name(dtype));
}
/// visit_dtype with "dtype" as the op in its error.
template <class Fn>
decltype(auto) visit_dtype(DType dtype, Fn&& fn) { return visit_dtype("dtype", dtype, std::forward<Fn>(fn)); }

/// Like visit_dtype, restricted to float32 and float64; any other throws "[op] dtype int64 is not supported ...".
template <class Fn>
decltype(auto) visit_floating(const char* op, DType dtype, Fn&& fn) {
  switch (dtype) {
#define LATENT_DTYPE_CASE(E, T, N, S, O, R, K) \
  case DType::E: if constexpr (K == kFloatingKind) return fn(T{}); else break;
    LATENT_DTYPES(LATENT_DTYPE_CASE)
#undef LATENT_DTYPE_CASE
  }
  fail(op, "dtype {} is not supported: expected float32 or float64", dtype_name(dtype));
}

/// Kind of memory a tensor's storage lives in; indexes the allocator and backend tables.
enum class DeviceType : uint8_t {
  CPU = 0,   ///< host memory, the CPU backend (always present)
  CUDA = 1   ///< an NVIDIA GPU; registered only by a build with -Dcuda=enabled on a machine with a GPU
};
/// Number of DeviceType values (the size of the per-device allocator and backend tables).
inline constexpr int kNumDeviceTypes = 2;

/// Where a tensor's storage lives: the CPU, or a CUDA GPU in a build with the CUDA backend
/// (cuda/; tensors move with to(Device)). Using a device that is not available throws
/// "[to] device cuda is not available: ...".
struct Device {
  DeviceType type = DeviceType::CPU;  ///< kind of device
  int8_t index = 0;                   ///< which device of that kind (only 0 is used today)
  /// Same type and index.
  constexpr bool operator==(const Device&) const = default;
  /// Whether this is host memory.
  constexpr bool is_cpu() const { return type == DeviceType::CPU; }
};

inline constexpr Device kCPU{DeviceType::CPU, 0};    ///< the host
inline constexpr Device kCUDA{DeviceType::CUDA, 0};  ///< the first CUDA GPU

/// "cpu" or "cuda" (what `--device` takes and error messages print).
constexpr std::string_view device_name(Device device) {
  return device.type == DeviceType::CPU ? "cpu" : "cuda";
}

}  // namespace latent

// fmt::format("{}", dtype) and ("{}", device) print dtype_name / device_name. (Left out of the
// API reference: Doxygen cannot place specializations of another library's templates.)
/// @cond
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
/// @endcond
