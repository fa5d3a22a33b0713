#include "image.h"

#include <algorithm>
#include <cmath>

namespace latent::tools {

void write_png_gray(const std::string& path, const std::vector<float>& pixels, int64_t width, int64_t height) {
  if (width <= 0 || height <= 0 || static_cast<int64_t>(pixels.size()) != width * height)
    fail("png", "{}: {} pixels do not make a {}x{} image", path, pixels.size(), width, height);
  GrayImage image;
  image.width = width;
  image.height = height;
  image.pixels.resize(pixels.size());
  for (size_t i = 0; i < pixels.size(); ++i)
    image.pixels[i] = static_cast<uint8_t>(std::lround(std::clamp(pixels[i], 0.0f, 1.0f) * 255.0f));
  write_png(path, image);
}

void write_image_grid(const std::string& path, const Tensor& images, int64_t height, int64_t width, int64_t columns) {
  const int64_t n = images.size(0);
  if (images.dim() != 2 || images.size(1) != height * width)
    fail("png", "{}: expected images of shape [N, {}]; got {}", path, height * width, images.shape());
  const int64_t cols = std::max<int64_t>(1, std::min(columns, n));
  const int64_t rows = (n + cols - 1) / cols, gap = 2;
  const int64_t W = cols * width + (cols + 1) * gap, H = rows * height + (rows + 1) * gap;
  std::vector<float> canvas(static_cast<size_t>(W * H), 0.25f);
  std::vector<float> values = images.to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t top = gap + (i / cols) * (height + gap), left = gap + (i % cols) * (width + gap);
    for (int64_t r = 0; r < height; ++r)
      for (int64_t c = 0; c < width; ++c)
        canvas[static_cast<size_t>((top + r) * W + left + c)] = values[static_cast<size_t>(i * height * width + r * width + c)];
  }
  write_png_gray(path, canvas, W, H);
}

}  // namespace latent::tools
