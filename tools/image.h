// Pictures the `latent` command writes: PNG images and image grids (encoded by models/png_io);
// its SVG plots are in tools/plot.h.
#pragma once

#include <string>
#include <vector>

#include "latent.h"

namespace latent::tools {

/// Writes an 8-bit grayscale PNG of width x height pixels (values in [0, 1], clamped), atomically.
void write_png_gray(const std::string& path, const std::vector<float>& pixels, int64_t width, int64_t height);

/// Tiles images (N, H*W) with values in [0, 1] into a grid of `columns` per row, 2-pixel gaps,
/// and writes it as PNG.
void write_image_grid(const std::string& path, const Tensor& images, int64_t height, int64_t width, int64_t columns);

}  // namespace latent::tools
