// Pictures the `latent` command writes: PNG image grids (encoded by models/png_io) and SVG plots.
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

/// A line plot of per-epoch train and test loss as SVG.
void write_loss_svg(const std::string& path, const std::vector<double>& train, const std::vector<double>& test,
                    const std::string& title);

/// A 2-D scatter of points coloured by class as SVG, with a legend of class names.
void write_scatter_svg(const std::string& path, const std::vector<double>& x, const std::vector<double>& y,
                       const std::vector<int64_t>& labels, const std::vector<std::string>& class_names,
                       const std::string& title);

}  // namespace latent::tools
