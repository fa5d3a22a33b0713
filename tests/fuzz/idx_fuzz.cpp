// libFuzzer target for the IDX reader (models/data/data.cpp read_idx, plain or gzip through zlib): the
// bytes go to a scratch file, which must load or fail with latent::Error. A loaded array must hold
// exactly product(dims) bytes; a 3-d one must make an IdxDataset whose first and last images
// batch to the stored bytes / 255. Anything else is a finding.
#include <cmath>

#include "autograd/error.h"
#include "models/data/data.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace latent;
  const std::string path = fuzz::scratch_file({reinterpret_cast<const char*>(data), size}, "fuzz-idx3-ubyte.gz");
  IdxArray array;
  try {
    array = read_idx(path);
  } catch (const Error&) {
    return 0;
  }
  uint64_t total = 1;
  for (int64_t d : array.dims) total *= static_cast<uint64_t>(d);
  if (array.dims.empty() || total != array.data.size()) fuzz::finding("idx_fuzz", "data size does not match the dims");
  if (array.dims.size() == 3 && total > 0) {
    auto images = std::make_shared<const IdxArray>(std::move(array));
    IdxDataset ds(images, nullptr);
    const int64_t n = ds.size(), pixels = images->dims[1] * images->dims[2];
    const int64_t picks[2] = {0, n - 1};
    const Batch b = ds.get_batch(picks);
    const std::vector<float> v = b.inputs.to_vector<float>();
    for (int k = 0; k < 2; ++k)
      for (int64_t p = 0; p < pixels; ++p)
        if (std::fabs(v[size_t(k * pixels + p)] - images->data[size_t(picks[k] * pixels + p)] / 255.0f) > 1e-6f)
          fuzz::finding("idx_fuzz", "a batch differs from the stored bytes / 255");
  }
  return 0;
}
