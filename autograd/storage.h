// Storage: a reference-counted buffer shared by a tensor and all its views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "allocator.h"
#include "dtype.h"

namespace latent {

/// Raw memory of a tensor and its views, with the version counter that in-place ops bump
/// (shared by every view, so an in-place change through any view is seen by saved tensors).
class Storage {
 public:
  /// Allocates nbytes on `device` through that device's allocator.
  Storage(size_t nbytes, Device device);
  /// Wraps memory owned elsewhere (not freed by latent).
  Storage(void* external, size_t nbytes, Device device)
      : data_(external), nbytes_(nbytes), device_(device), owned_(false) {}
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  /// Start of the buffer (device memory for CUDA storage).
  void* data() const { return data_; }
  /// Size of the buffer in bytes.
  size_t nbytes() const { return nbytes_; }
  /// Where the buffer lives.
  Device device() const { return device_; }
  /// Counter of in-place writes; saved tensors compare it to detect changes before backward.
  uint32_t version() const { return version_; }
  /// Marks an in-place write (in-place ops call this).
  void bump_version() { ++version_; }

 private:
  void* data_;
  size_t nbytes_;
  Device device_;
  bool owned_;
  uint32_t version_ = 0;
};

/// Allocator for a device type; CUDA registers its own when that backend is built.
Allocator& allocator_for(Device device);
/// Installs the allocator for a device type (used by backends at start-up).
void register_allocator(DeviceType type, Allocator* allocator);

/// True when tensors can live on `device` (its allocator is registered: CPU always; CUDA when
/// the build has the CUDA backend and a GPU was found).
bool device_available(Device device);
/// Why `device` is not available, for messages: "this build has no CUDA backend (meson
/// -Dcuda=enabled)" or "no CUDA GPU was found (cudaGetDeviceCount: ...)"; empty when it is.
std::string device_unavailable_reason(Device device);
/// Records why a device type is unavailable (the CUDA backend calls this when it finds no GPU).
void set_device_unavailable_reason(DeviceType type, std::string reason);
/// Throws "[op] device cuda is not available: <reason>" unless device_available(device).
void check_device_available(const char* op, Device device);
/// Waits for all work queued on `device` (CUDA kernels run asynchronously; a no-op on the CPU).
void synchronize(Device device);

}  // namespace latent
