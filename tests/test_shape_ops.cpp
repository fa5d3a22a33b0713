// Gradients of views flow back to the right elements; view results alias their input.
#include "helpers.h"

using namespace latent;
using latent::testing::check_values;

TEST_CASE("gradients of views land on the viewed elements") {
  Tensor x = arange(0.0, 6.0, 1.0, kFloat32).view({2, 3}).clone().requires_grad_();
  (x.t() * tensor({{1, 10}, {100, 1000}, {1e4, 1e5}})).sum().backward();
  check_values(x.grad(), {1, 100, 1e4, 10, 1000, 1e5});
  x.zero_grad();
  x.narrow(1, 1, 2).sum().backward();
  check_values(x.grad(), {0, 1, 1, 0, 1, 1});
  x.zero_grad();
  (x.select(0, 1) * 2.0).sum().backward();
  check_values(x.grad(), {0, 0, 0, 2, 2, 2});
  x.zero_grad();
  x.slice(1, 0, 3, 2).sum().backward();
  check_values(x.grad(), {1, 0, 1, 1, 0, 1});
  x.zero_grad();
  x.view({3, 2}).select(1, 0).sum().backward();
  check_values(x.grad(), {1, 0, 1, 0, 1, 0});
  x.zero_grad();
  Tensor b = tensor({1, 2, 3}).requires_grad_();
  (b.unsqueeze(0).expand({4, 3}) * 1.0).sum().backward();
  check_values(b.grad(), {4, 4, 4});
}

TEST_CASE("a view writes through to its base") {
  Tensor x = zeros({2, 3});
  Tensor row = x[1];
  row.fill_(7.0);
  check_values(x, {0, 0, 0, 7, 7, 7});
  x.view({3, 2}).select(1, 1).fill_(1.0);
  check_values(x, {0, 1, 0, 1, 7, 1});
}
