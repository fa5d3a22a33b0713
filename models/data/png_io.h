// PNG in and out, through libpng's simplified API in this one place: `latent score`, the service
// and the web page decode images here; the commands that draw pictures encode them here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace latent {

/// An 8-bit grayscale image: height x width bytes, row-major.
struct GrayImage {
  /// Size in pixels.
  /// @{
  int64_t height = 0, width = 0;
  /// @}
  /// height * width gray levels (0 black, 255 white), row by row from the top.
  std::vector<uint8_t> pixels;
};

/// Decodes PNG bytes (any bit depth, grayscale, RGB, palette, with or without alpha) to 8-bit
/// gray; colour is converted by libpng (sRGB coefficients), alpha is composited on black.
/// `name` (a file name or "request input 'image'") prefixes errors:
/// "[png] a.png: not a PNG file (the signature is missing)", "[png] a.png: ... (truncated?)".
GrayImage decode_png(std::string_view bytes, const std::string& name);

/// Reads and decodes the PNG file at `path`.
GrayImage read_png(const std::string& path);

/// Encodes an 8-bit grayscale PNG ("[png] NAME: ..." on failure).
std::string encode_png(const GrayImage& image, const std::string& name);

/// Writes an 8-bit grayscale PNG file atomically.
void write_png(const std::string& path, const GrayImage& image);

}  // namespace latent
