// The 2-D view of latent codes that `latent embed` draws and the web page's scatter shows: the
// first two principal directions of the centred codes, found by power iteration in float64.
#pragma once

#include <vector>

#include "latent.h"

namespace latent::tools {

/// A plane to project codes on: their mean and up to two unit directions (code_dim values each).
struct CodePlane {
  std::vector<double> mean;
  std::vector<std::vector<double>> axes;  ///< one axis for one-dimensional codes
  /// (x, y) of one code (code_dim values); y is 0 with one axis.
  std::pair<double, double> project(const float* code) const;
};

/// The first two principal directions of `codes` (N, code_dim) float32.
CodePlane principal_plane(const Tensor& codes);

}  // namespace latent::tools
