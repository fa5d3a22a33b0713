#include "png_io.h"

#include <png.h>

#include <cstring>

#include "../../autograd/error.h"
#include "../io/checkpoint.h"

namespace latent {

GrayImage decode_png(std::string_view bytes, const std::string& name) {
  static constexpr unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kSignature, 8) != 0)
    fail("png", "{}: not a PNG file (the 8-byte PNG signature is missing)", name);
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  // The simplified API reports errors in image.message and returns 0: no longjmp crosses C++ frames.
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size()))
    fail("png", "{}: cannot read the PNG header: {}", name, image.message);
  image.format = PNG_FORMAT_GRAY;
  GrayImage out;
  out.height = image.height;
  out.width = image.width;
  if (out.height <= 0 || out.width <= 0 || out.height * out.width > (int64_t{1} << 28)) {
    png_image_free(&image);
    fail("png", "{}: image size {}x{} is out of range", name, out.width, out.height);
  }
  // Deflate expands at most about 1032:1, and a 1-bit image gives 8 gray pixels per byte, so a
  // header claiming more pixels than that of the file's size is corrupt: fail before allocating.
  const double most = (static_cast<double>(bytes.size()) + 1024.0) * 1032.0 * 8.0;
  if (static_cast<double>(out.height) * static_cast<double>(out.width) > most) {
    png_image_free(&image);
    fail("png", "{}: the header claims {}x{} pixels, more than its {} bytes can hold (a truncated or corrupt file?)",
         name, out.width, out.height, bytes.size());
  }
  out.pixels.resize(static_cast<size_t>(PNG_IMAGE_SIZE(image)));
  png_color black{0, 0, 0};
  if (!png_image_finish_read(&image, &black, out.pixels.data(), 0, nullptr))
    fail("png", "{}: cannot decode the image data: {} (a truncated or corrupt file?)", name, image.message);
  return out;
}

GrayImage read_png(const std::string& path) { return decode_png(read_file(path, "png"), path); }

std::string encode_png(const GrayImage& gray, const std::string& name) {
  if (gray.height <= 0 || gray.width <= 0 || static_cast<int64_t>(gray.pixels.size()) != gray.height * gray.width)
    fail("png", "{}: {} pixels do not make a {}x{} image", name, gray.pixels.size(), gray.width, gray.height);
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(gray.width);
  image.height = static_cast<png_uint_32>(gray.height);
  image.format = PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  // First call: the size; second: the bytes.
  if (!png_image_write_to_memory(&image, nullptr, &size, 0, gray.pixels.data(), 0, nullptr))
    fail("png", "{}: cannot encode: {}", name, image.message);
  std::string bytes(size, '\0');
  if (!png_image_write_to_memory(&image, bytes.data(), &size, 0, gray.pixels.data(), 0, nullptr))
    fail("png", "{}: cannot encode: {}", name, image.message);
  bytes.resize(size);
  return bytes;
}

void write_png(const std::string& path, const GrayImage& image) { write_file_atomic(path, encode_png(image, path)); }

}  // namespace latent
