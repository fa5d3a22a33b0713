// libFuzzer target for PNG decoding through latent's image loader (models/data/png_io.cpp decode_png,
// libpng's simplified API): arbitrary bytes decode to an 8-bit gray image or fail with one-line
// latent::Error. A decoded image must have height x width pixels, and encoding it must decode back
// to the same pixels. Anything else (a crash, a sanitizer report, a leak, another exception, a
// longjmp across C++ frames) is a finding.
#include "autograd/error.h"
#include "models/data/png_io.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace latent;
  GrayImage image;
  try {
    image = decode_png({reinterpret_cast<const char*>(data), size}, "fuzz.png");
  } catch (const Error& e) {
    if (std::string_view(e.what()).find('\n') != std::string_view::npos) fuzz::finding("png_fuzz", "a multi-line error");
    return 0;
  }
  if (image.height <= 0 || image.width <= 0 || static_cast<int64_t>(image.pixels.size()) != image.height * image.width)
    fuzz::finding("png_fuzz", "the decoded pixels do not fill height x width");
  try {
    const GrayImage back = decode_png(encode_png(image, "again.png"), "again.png");
    if (back.height != image.height || back.width != image.width || back.pixels != image.pixels)
      fuzz::finding("png_fuzz", "encode + decode changed the image");
  } catch (const Error& e) {
    fuzz::finding("png_fuzz", std::string("re-encoding failed: ") + e.what());
  }
  return 0;
}
