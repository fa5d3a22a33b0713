// A program outside the source tree, built against the installed headers and library.
#include <latent/latent.h>
// An old include path (models/ before its subfolders): a forwarding header keeps it working.
#include <latent/models/run.h>

#include <cmath>
#include <cstdio>

int main() {
  latent::manual_seed(0);
  latent::Tensor w = latent::randn({3, 2}).requires_grad_(true);
  latent::Tensor x = latent::ones({4, 2});
  latent::Tensor loss = latent::sigmoid(latent::matmul(x, w.t())).sum();
  loss.backward();
  const double g = latent::sum(w.grad()).item<double>();
  if (!std::isfinite(g) || w.grad().shape() != w.shape()) {
    std::printf("consumer: unexpected gradient\n");
    return 1;
  }
  std::printf("consumer: loss %.4f, gradient sum %.4f\n", loss.item<double>(), g);
  return 0;
}
