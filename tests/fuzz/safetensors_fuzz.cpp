// libFuzzer target for the safetensors reader (models/io/safetensors.cpp), which reads model and
// checkpoint files from elsewhere: arbitrary bytes must load or fail with latent::Error. Whatever
// loads must be consistent with the bytes (each tensor's data inside the file) and must write back
// to bytes that load to the same names, dtypes, shapes, values and metadata. Anything else (a
// crash, a sanitizer report, a leak, another exception, a broken round trip) is a finding.
#include <cstring>

#include "autograd/error.h"
#include "models/io/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace latent;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  safetensors::File file;
  try {
    file = safetensors::deserialize(bytes, "fuzz.safetensors");
  } catch (const Error& e) {
    if (std::string_view(e.what()).find('\n') != std::string_view::npos) fuzz::finding("safetensors_fuzz", "a multi-line error");
    return 0;
  }
  size_t total = 0;
  for (const auto& [name, t] : file.tensors) total += static_cast<size_t>(t.numel()) * t.element_size();
  if (total > size) fuzz::finding("safetensors_fuzz", "tensors hold more bytes than the file");
  const std::string written = safetensors::serialize(file.tensors, file.metadata);
  safetensors::File again;
  try {
    again = safetensors::deserialize(written);
  } catch (const Error& e) {
    fuzz::finding("safetensors_fuzz", std::string("the re-written file does not load: ") + e.what());
  }
  if (again.metadata != file.metadata || again.tensors.size() != file.tensors.size())
    fuzz::finding("safetensors_fuzz", "the round trip changed the metadata or the tensor count");
  for (size_t i = 0; i < file.tensors.size(); ++i) {
    const Tensor& a = file.tensors[i].second;
    const Tensor& b = again.tensors[i].second;
    if (again.tensors[i].first != file.tensors[i].first || a.dtype() != b.dtype() || a.shape() != b.shape() ||
        std::memcmp(a.raw_data(), b.raw_data(), static_cast<size_t>(a.numel()) * a.element_size()) != 0)
      fuzz::finding("safetensors_fuzz", "the round trip changed tensor '" + file.tensors[i].first + "'");
  }
  return 0;
}
