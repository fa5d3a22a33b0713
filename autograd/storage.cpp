#include "storage.h"

#include <array>

namespace latent {
namespace {
std::array<Allocator*, kNumDeviceTypes>& allocators() {
  static std::array<Allocator*, kNumDeviceTypes> table{&cpu_allocator(), nullptr};
  return table;
}
}  // namespace

Allocator& allocator_for(Device device) {
  Allocator* a = allocators()[static_cast<int>(device.type)];
  if (!a) fail("storage", "device {} is not available: latent was built without its backend", device);
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
