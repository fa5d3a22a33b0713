#include "projection.h"

namespace latent::tools {

CodePlane principal_plane(const Tensor& codes) {
  NoGradGuard no_grad;
  const Tensor c64 = codes.to(kFloat64);
  const Tensor m = mean(c64, {0}, true);
  const Tensor centred = c64 - m;
  const Tensor cov = matmul(centred.t(), centred);
  const int64_t d = codes.size(1);
  std::vector<Tensor> dirs;
  for (int k = 0; k < std::min<int64_t>(2, d); ++k) {
    Tensor v = ones({d, 1}, kFloat64) + arange(0.0, static_cast<double>(d), 1.0, kFloat64).view({-1, 1}) * 0.01;
    for (int it = 0; it < 200; ++it) {
      for (const Tensor& u : dirs) v = v - u * matmul(u.t(), v);
      v = matmul(cov, v);
      v = v / sqrt(sum(v * v));
    }
    dirs.push_back(v);
  }
  CodePlane plane;
  plane.mean = m.contiguous().to_vector<double>();
  for (const Tensor& u : dirs) plane.axes.push_back(u.contiguous().to_vector<double>());
  return plane;
}

std::pair<double, double> CodePlane::project(const float* code) const {
  double xy[2] = {0.0, 0.0};
  for (size_t k = 0; k < axes.size() && k < 2; ++k)
    for (size_t j = 0; j < mean.size(); ++j) xy[k] += (static_cast<double>(code[j]) - mean[j]) * axes[k][j];
  return {xy[0], xy[1]};
}

}  // namespace latent::tools
