#include "storage.h"

#include <array>
#include <string>

namespace latent {
namespace {
std::array<Allocator*, kNumDeviceTypes>& allocators() {
  static std::array<Allocator*, kNumDeviceTypes> table{&cpu_allocator(), nullptr};
  return table;
}
std::array<std::string, kNumDeviceTypes>& reasons() {
  static std::array<std::string, kNumDeviceTypes> table{"", "this build has no CUDA backend (meson -Dcuda=enabled)"};
  return table;
}
}  // namespace

bool device_available(Device device) { return allocators()[static_cast<int>(device.type)] != nullptr; }

std::string device_unavailable_reason(Device device) {
  return device_available(device) ? std::string() : reasons()[static_cast<int>(device.type)];
}

void set_device_unavailable_reason(DeviceType type, std::string reason) {
  reasons()[static_cast<int>(type)] = std::move(reason);
}

void check_device_available(const char* op, Device device) {
  if (!device_available(device))
    fail(op, "device {} is not available: {}", device, reasons()[static_cast<int>(device.type)]);
}

void synchronize(Device device) { allocator_for(device).synchronize(); }

Allocator& allocator_for(Device device) {
  Allocator* a = allocators()[static_cast<int>(device.type)];
  if (!a) check_device_available("storage", device);
  return *a;
}

void register_allocator(DeviceType type, Allocator* allocator) {
  allocators()[static_cast<int>(type)] = allocator;
}

Storage::Storage(size_t nbytes, Device device)
    : data_(allocator_for(device).allocate(nbytes)), nbytes_(nbytes), device_(device), owned_(true) {}

Storage::~Storage() {
  if (owned_) allocator_for(device_).deallocate(data_, nbytes_);
}

}  // namespace latent
