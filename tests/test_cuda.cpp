// The CUDA backend against the CPU backend on the same inputs: every kernel family (elementwise
// lists, where, copy, fill, reductions, GEMM, index ops, random fills, all_finite, Adam,
// convolutions, pooling, resampling), autograd through a conv autoencoder, training steps, and
// device errors. Without a GPU (or without a CUDA build) every GPU case prints one skip line and the suite exits 77
// (skipped, tests/skip.h) once the device-error case has passed.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "helpers.h"
#include "skip.h"
#include "latent.h"
#include "models/ae/autoencoder.h"
#include "models/nn/optim.h"
#include "ops/backend.h"

using namespace latent;
using latent::testing::check_close;

namespace {

/// True when a GPU is usable; otherwise prints "cuda: skipped: <reason>" and the case returns.
bool cuda_ready() {
  if (device_available(kCUDA)) return true;
  const std::string line = "cuda: skipped: " + device_unavailable_reason(kCUDA);
  std::puts(line.c_str());
  MESSAGE(line);
  latent::testing::skip_suite("no usable CUDA GPU: " + device_unavailable_reason(kCUDA));
  return false;
}

#define REQUIRE_CUDA() \
  if (!cuda_ready()) return

/// Random values in (lo, hi) of dtype, from a fixed seed.
Tensor uniform_values(const Shape& shape, DType dtype, uint64_t seed, double lo = -2, double hi = 2) {
  Generator gen(seed);
  Tensor t = rand(shape, kFloat64, &gen);
  return (t * (hi - lo) + lo).to(dtype);
}

/// cuda result (any dtype/device) close to the CPU one: tolerances by dtype.
void check_same(const Tensor& cuda, const Tensor& cpu, double tol32 = 2e-5, double tol64 = 1e-11) {
  REQUIRE(cuda.device() == kCUDA);
  REQUIRE(cpu.device() == kCPU);
  CHECK(cuda.dtype() == cpu.dtype());
  const double tol = cpu.dtype() == kFloat32 ? tol32 : cpu.dtype() == kFloat64 ? tol64 : 0.0;
  check_close(cuda.to(kCPU), cpu, tol, tol);
}

}  // namespace

TEST_CASE("cuda: unavailable devices fail with the reason") {
  if (device_available(kCUDA)) {
    MESSAGE("a CUDA GPU is present: the error path is not reachable");
    return;
  }
  const std::string reason = device_unavailable_reason(kCUDA);
  std::puts(("cuda: skipped: " + reason).c_str());
  CHECK((reason.find("this build has no CUDA backend") == 0 || reason.find("no CUDA GPU was found (cudaGetDeviceCount: ") == 0));
  CHECK_THROWS_WITH_SUBSTR(zeros({2}).to(kCUDA), "[to] device cuda is not available: " + reason);
  CHECK_THROWS_WITH_SUBSTR(zeros({2}, kFloat32, kCUDA), "device cuda is not available: ");
  CHECK_THROWS_WITH_SUBSTR(randn({2}, kFloat32, nullptr, kCUDA), "[randn] device cuda is not available");
}

TEST_CASE("cuda: host <-> device copies, views and dtype conversion") {
  REQUIRE_CUDA();
  for (DType dtype : {kFloat32, kFloat64, kInt64}) {
    Tensor x = uniform_values({3, 4, 5}, kFloat64, 1, -50, 50).to(dtype);
    Tensor d = x.to(kCUDA);
    CHECK(d.device() == kCUDA);
    check_close(d.to(kCPU), x, 0, 0);
    // Non-contiguous views both ways.
    Tensor view = x.transpose(0, 2).slice(1, 1, 4);
    check_close(view.to(kCUDA).to(kCPU), view, 0, 0);
    check_close(d.transpose(0, 2).slice(1, 1, 4).to(kCPU), view, 0, 0);
    check_close(d.permute({1, 2, 0}).contiguous().to(kCPU), x.permute({1, 2, 0}), 0, 0);
    // dtype conversion on the device.
    for (DType to : {kFloat32, kFloat64, kInt64}) check_same(d.to(to), x.to(to), 0, 0);
    CHECK(d.sum().item<double>() == doctest::Approx(x.sum().item<double>()).epsilon(1e-6));
    CHECK(d.at<double>({1, 2, 3}) == x.at<double>({1, 2, 3}));
    CHECK(d.to_vector<double>() == x.to_vector<double>());
  }
  check_same(full({2, 3}, 2.5, kFloat64, kCUDA), full({2, 3}, 2.5, kFloat64));
  check_same(arange(0.0, 5.0, 0.5, kFloat32, kCUDA), arange(0.0, 5.0, 0.5, kFloat32));
  check_same(from_vector(std::vector<float>{1, 2, 3}, {3}, TensorOptions().device(kCUDA)),
             from_vector(std::vector<float>{1, 2, 3}, {3}));
  Tensor filled = zeros({4, 6}, kFloat32, kCUDA);
  filled.slice(1, 0, 6, 2).fill_(3.0);
  Tensor expect = zeros({4, 6});
  expect.slice(1, 0, 6, 2).fill_(3.0);
  check_same(filled, expect);
}

TEST_CASE("cuda: .to(device) is differentiable both ways") {
  REQUIRE_CUDA();
  Tensor x = uniform_values({3, 4}, kFloat64, 2).requires_grad_(true);
  Tensor y = (x.to(kCUDA) * 3.0).to(kCPU).sum();
  y.backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().device() == kCPU);
  check_close(x.grad(), full({3, 4}, 3.0, kFloat64), 0, 0);
  Tensor w = uniform_values({2, 2}, kFloat32, 3).to(kCUDA).requires_grad_(true);
  (w.to(kCPU) * w.to(kCPU)).sum().backward();
  CHECK(w.grad().device() == kCUDA);
  check_same(w.grad(), (w.detach().to(kCPU) * 2.0));
}

TEST_CASE("cuda: random factories draw the CPU's numbers") {
  REQUIRE_CUDA();
  Generator a(7), b(7);
  check_same(randn({5, 7}, kFloat32, &a, kCUDA), randn({5, 7}, kFloat32, &b), 0, 0);
  check_same(rand({3, 3}, kFloat64, &a, kCUDA), rand({3, 3}, kFloat64, &b), 0, 0);
  Tensor d = empty({4, 4}, kFloat32, kCUDA), c = empty({4, 4});
  backend(kCUDA).normal(d.t(), a, 1.0, 2.0);  // strided output: the same row-major order of the view
  cpu_backend().normal(c.t(), b, 1.0, 2.0);
  check_same(d, c, 0, 0);
  backend(kCUDA).uniform(d, a, -1.0, 1.0);
  cpu_backend().uniform(c, b, -1.0, 1.0);
  check_same(d, c, 0, 0);
}

TEST_CASE("cuda: every unary kernel matches the CPU (contiguous and strided)") {
  REQUIRE_CUDA();
  for (DType dtype : {kFloat32, kFloat64}) {
#define LATENT_UNARY_CASE(name, expr)                                                                    \
  {                                                                                                      \
    INFO("unary " #name " " << dtype_name(dtype));                                                      \
    const bool positive = UnaryOp::name == UnaryOp::Log || UnaryOp::name == UnaryOp::Sqrt ||            \
                          UnaryOp::name == UnaryOp::PowScalar || UnaryOp::name == UnaryOp::Reciprocal ||  \
                          UnaryOp::name == UnaryOp::RdivScalar;                                          \
    Tensor x = uniform_values({6, 9}, dtype, 11, positive ? 0.1 : -3, 3);                                \
    const double p0 = UnaryOp::name == UnaryOp::Clamp ? -0.5 : 1.5, p1 = UnaryOp::name == UnaryOp::Clamp ? 0.7 : 20; \
    Tensor c = empty({9, 6}, dtype), d = empty({9, 6}, dtype, kCUDA);                                    \
    cpu_backend().unary(UnaryOp::name, x.t(), c, p0, p1);                                               \
    backend(kCUDA).unary(UnaryOp::name, x.to(kCUDA).t(), d, p0, p1);                                    \
    check_same(d, c, 1e-5, 1e-12);                                                                       \
    Tensor c2 = empty({6, 9}, dtype), d2 = empty({6, 9}, dtype, kCUDA);                                  \
    cpu_backend().unary(UnaryOp::name, x, c2, p0, p1);                                                  \
    backend(kCUDA).unary(UnaryOp::name, x.to(kCUDA), d2, p0, p1);                                       \
    check_same(d2, c2, 1e-5, 1e-12);                                                                     \
  }
    LATENT_UNARY_OPS(LATENT_UNARY_CASE)
#undef LATENT_UNARY_CASE
  }
}

TEST_CASE("cuda: every binary kernel matches the CPU with broadcasting") {
  REQUIRE_CUDA();
  for (DType dtype : {kFloat32, kFloat64}) {
#define LATENT_BINARY_CASE(name, expr)                                                                 \
  {                                                                                                    \
    INFO("binary " #name " " << dtype_name(dtype));                                                   \
    const bool probability = BinaryOp::name == BinaryOp::BinaryCrossEntropy ||                         \
                             BinaryOp::name == BinaryOp::BinaryCrossEntropyBackward;                   \
    const bool positive = BinaryOp::name == BinaryOp::Pow || BinaryOp::name == BinaryOp::PowScalarBackward; \
    const double lo = probability ? 0.05 : positive ? 0.2 : -3, hi = probability ? 0.95 : 3;           \
    Tensor a = uniform_values({3, 1, 5}, dtype, 21, lo, hi), b = uniform_values({4, 1}, dtype, 22, lo, hi); \
    Tensor c = empty({3, 4, 5}, dtype), d = empty({3, 4, 5}, dtype, kCUDA);                             \
    cpu_backend().binary(BinaryOp::name, a, b, c, 0.5, 1.5);                                            \
    backend(kCUDA).binary(BinaryOp::name, a.to(kCUDA), b.to(kCUDA), d, 0.5, 1.5);                       \
    check_same(d, c, 1e-5, 1e-12);                                                                      \
    /* a non-contiguous output */                                                                       \
    Tensor ct = empty({5, 4, 3}, dtype), dt = empty({5, 4, 3}, dtype, kCUDA);                           \
    cpu_backend().binary(BinaryOp::name, a, b, ct.permute({2, 1, 0}), 0.5, 1.5);                        \
    backend(kCUDA).binary(BinaryOp::name, a.to(kCUDA), b.to(kCUDA), dt.permute({2, 1, 0}), 0.5, 1.5);   \
    check_same(dt, ct, 1e-5, 1e-12);                                                                    \
  }
    LATENT_BINARY_OPS(LATENT_BINARY_CASE)
#undef LATENT_BINARY_CASE
  }
  // int64 arithmetic (integer division, comparisons).
  Tensor a = from_vector(std::vector<int64_t>{7, -8, 9, 10}, {4}), b = from_vector(std::vector<int64_t>{2, 3, -4, 5}, {4});
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Maximum, BinaryOp::Lt}) {
    Tensor c = empty({4}, kInt64), d = empty({4}, kInt64, kCUDA);
    cpu_backend().binary(op, a, b, c, 1.0, 0.0);
    backend(kCUDA).binary(op, a.to(kCUDA), b.to(kCUDA), d, 1.0, 0.0);
    check_same(d, c);
  }
}

TEST_CASE("cuda: ops with autograd: elementwise, where, softmax, losses") {
  REQUIRE_CUDA();
  Tensor x = uniform_values({8, 10}, kFloat64, 31).requires_grad_(true);
  Tensor y = uniform_values({10}, kFloat64, 32).requires_grad_(true);
  Tensor xd = x.detach().to(kCUDA).requires_grad_(true), yd = y.detach().to(kCUDA).requires_grad_(true);
  auto f = [](const Tensor& a, const Tensor& b) {
    Tensor h = sigmoid(a * b) + tanh(a - b) * relu(a) + where(gt(a, 0.0), a, b * 2.0);
    return sum(log_softmax(h, 1) * h) + mean(exp(h * 0.1));
  };
  Tensor lc = f(x, y), ld = f(xd, yd);
  check_same(ld, lc);
  lc.backward();
  ld.backward();
  check_same(xd.grad(), x.grad());
  check_same(yd.grad(), y.grad());
  Tensor p = uniform_values({4, 6}, kFloat32, 33, 0.05, 0.95), t = uniform_values({4, 6}, kFloat32, 34, 0, 1);
  check_same(binary_cross_entropy(p.to(kCUDA), t.to(kCUDA)), binary_cross_entropy(p, t), 1e-5);
  check_same(mse_loss(p.to(kCUDA), t.to(kCUDA), Reduction::Sum), mse_loss(p, t, Reduction::Sum), 1e-5);
}

TEST_CASE("cuda: reductions over different dims") {
  REQUIRE_CUDA();
  for (DType dtype : {kFloat32, kFloat64, kInt64}) {
    Tensor x = uniform_values({4, 5, 6, 70}, kFloat64, 41, -20, 20).to(dtype);
    Tensor xd = x.to(kCUDA);
    const std::vector<Shape> dim_sets = {{0}, {1}, {3}, {0, 2}, {1, 3}, {0, 1, 2, 3}, {2, 3}};
    for (const Shape& dims : dim_sets) {
      INFO("dims " << dims.size() << " first " << dims[0] << " " << dtype_name(dtype));
      check_same(sum(xd, dims, true), sum(x, dims, true), 1e-5, 1e-11);
      for (ReduceOp op : {ReduceOp::Max, ReduceOp::Min}) {
        Shape out_shape = x.shape();
        for (int64_t d : dims) out_shape[static_cast<int>(d)] = 1;
        Tensor c = empty(out_shape, dtype), d = empty(out_shape, dtype, kCUDA);
        cpu_backend().reduce(op, x, c);
        backend(kCUDA).reduce(op, xd, d);
        check_same(d, c, 0, 0);
      }
    }
    // A non-contiguous input.
    check_same(sum(xd.transpose(1, 3), {1}, false), sum(x.transpose(1, 3), {1}, false), 1e-5, 1e-11);
  }
  Tensor x = uniform_values({7, 300}, kFloat32, 42);
  check_same(mean(x.to(kCUDA)), mean(x), 1e-5);
  check_same(logsumexp(x.to(kCUDA), {1}), logsumexp(x, {1}), 1e-5);
  for (int64_t dim : {0, 1}) {
    auto [vc, ic] = max(x, dim, true);
    auto [vd, id] = max(x.to(kCUDA), dim, true);
    check_same(vd, vc, 0, 0);
    check_same(id, ic);
    auto [vc2, ic2] = min(x.t(), dim, false);
    auto [vd2, id2] = min(x.to(kCUDA).t(), dim, false);
    check_same(vd2, vc2, 0, 0);
    check_same(id2, ic2);
  }
}

TEST_CASE("cuda: gemm with transposed views, batches and beta") {
  REQUIRE_CUDA();
  for (DType dtype : {kFloat32, kFloat64}) {
    Tensor a = uniform_values({33, 17}, dtype, 51), b = uniform_values({17, 29}, dtype, 52);
    check_same(matmul(a.to(kCUDA), b.to(kCUDA)), matmul(a, b), 1e-4, 1e-11);
    Tensor at = uniform_values({17, 33}, dtype, 53), bt = uniform_values({29, 17}, dtype, 54);
    check_same(matmul(at.to(kCUDA).t(), bt.to(kCUDA).t()), matmul(at.t(), bt.t()), 1e-4, 1e-11);
    Tensor ba = uniform_values({5, 9, 7}, dtype, 55), bb = uniform_values({5, 7, 4}, dtype, 56);
    check_same(matmul(ba.to(kCUDA), bb.to(kCUDA)), matmul(ba, bb), 1e-4, 1e-11);
    check_same(matmul(ba.to(kCUDA).transpose(1, 2).contiguous().transpose(1, 2), bb.to(kCUDA)), matmul(ba, bb), 1e-4,
               1e-11);
    check_same(matmul(ba.to(kCUDA), bb.to(kCUDA).slice(2, 0, 4, 2)), matmul(ba, bb.slice(2, 0, 4, 2)), 1e-4, 1e-11);
    // Broadcast batch (a 2-d right operand) and a matrix-vector product.
    check_same(matmul(ba.to(kCUDA), b.slice(0, 0, 7).to(kCUDA)), matmul(ba, b.slice(0, 0, 7)), 1e-4, 1e-11);
    Tensor v = uniform_values({17}, dtype, 57);
    check_same(matmul(a.to(kCUDA), v.to(kCUDA)), matmul(a, v), 1e-4, 1e-11);
    // beta != 0 through the backend, with a transposed output.
    Tensor c = uniform_values({29, 33}, dtype, 58), d = c.to(kCUDA);
    cpu_backend().gemm(a, b, c.t(), 0.5);
    backend(kCUDA).gemm(a.to(kCUDA), b.to(kCUDA), d.t(), 0.5);
    check_same(d, c, 1e-4, 1e-11);
    // linear with autograd.
    Tensor w = uniform_values({8, 17}, dtype, 59).requires_grad_(true), bias = uniform_values({8}, dtype, 60).requires_grad_(true);
    Tensor wd = w.detach().to(kCUDA).requires_grad_(true), bd = bias.detach().to(kCUDA).requires_grad_(true);
    Tensor lc = sum(linear(a, w, bias) * linear(a, w, bias)), ld = sum(linear(a.to(kCUDA), wd, bd) * linear(a.to(kCUDA), wd, bd));
    check_same(ld, lc, 1e-4, 1e-10);
    lc.backward();
    ld.backward();
    check_same(wd.grad(), w.grad(), 1e-3, 1e-10);
    check_same(bd.grad(), bias.grad(), 1e-3, 1e-10);
  }
}

TEST_CASE("cuda: index_select, index_add, gather, scatter_add") {
  REQUIRE_CUDA();
  for (DType dtype : {kFloat32, kFloat64, kInt64}) {
    Tensor x = uniform_values({6, 7, 5}, kFloat64, 61, -9, 9).to(dtype);
    Tensor idx = from_vector(std::vector<int64_t>{4, 0, 4, 2, 6}, {5});
    for (int64_t dim : {0, 1}) {
      Tensor ix = dim == 0 ? from_vector(std::vector<int64_t>{5, 0, 5, 2}, {4}) : idx;
      check_same(index_select(x.to(kCUDA), dim, ix.to(kCUDA)), index_select(x, dim, ix), 0, 0);
    }
    Tensor gi = from_vector(std::vector<int64_t>{0, 3, 3, 1, 6, 2, 0, 0, 1, 5, 4, 4}, {6, 2, 1});
    check_same(gather(x.to(kCUDA), 1, gi.to(kCUDA)), gather(x, 1, gi), 0, 0);
    Tensor src = uniform_values({6, 2, 1}, kFloat64, 62, -9, 9).to(dtype);
    check_same(scatter_add(x.to(kCUDA), 1, gi.to(kCUDA), src.to(kCUDA)), scatter_add(x, 1, gi, src), 1e-6, 1e-12);
    // index_add through the backend (repeated indices: atomics).
    Tensor c = x.clone(), d = x.to(kCUDA);
    Tensor add_src = uniform_values({6, 5, 5}, kFloat64, 63, -9, 9).to(dtype);
    cpu_backend().index_add(c, 1, idx, add_src);
    backend(kCUDA).index_add(d, 1, idx.to(kCUDA), add_src.to(kCUDA));
    check_same(d, c, 1e-5, 1e-12);
  }
  // Gradients of index_select (index_add) and gather (scatter_add).
  Tensor x = uniform_values({5, 4}, kFloat64, 64).requires_grad_(true);
  Tensor xd = x.detach().to(kCUDA).requires_grad_(true);
  Tensor idx = from_vector(std::vector<int64_t>{1, 1, 3, 0}, {4});
  Tensor gi = from_vector(std::vector<int64_t>{0, 0, 3, 2, 1, 1, 4, 4}, {2, 4});
  Tensor lc = sum(index_select(x, 0, idx) * 2.0) + sum(gather(x, 0, gi) * 3.0);
  Tensor ld = sum(index_select(xd, 0, idx.to(kCUDA)) * 2.0) + sum(gather(xd, 0, gi.to(kCUDA)) * 3.0);
  lc.backward();
  ld.backward();
  check_same(xd.grad(), x.grad());
}

TEST_CASE("cuda: all_finite") {
  REQUIRE_CUDA();
  Tensor x = uniform_values({100, 3}, kFloat32, 71).to(kCUDA);
  CHECK(backend(kCUDA).all_finite(x));
  Tensor y = x.clone();
  y.slice(0, 57, 58).fill_(std::nan(""));
  CHECK_FALSE(backend(kCUDA).all_finite(y));
  CHECK(backend(kCUDA).all_finite(y.slice(0, 0, 50)));
  y.slice(0, 57, 58).fill_(INFINITY);
  CHECK_FALSE(backend(kCUDA).all_finite(y));
}

TEST_CASE("cuda: adam_step matches the CPU (Adam, AdamW, AMSGrad)") {
  REQUIRE_CUDA();
  for (DType dtype : {kFloat32, kFloat64}) {
    for (int variant = 0; variant < 3; ++variant) {
      AdamStep s;
      s.lr = 1e-2;
      s.weight_decay = variant == 0 ? 0.0 : 0.1;
      s.decoupled = variant == 1;
      s.bias_correction1 = 1 - std::pow(0.9, 3);
      s.bias_correction2 = 1 - std::pow(0.999, 3);
      Tensor p = uniform_values({1000}, dtype, 81), g = uniform_values({1000}, dtype, 82);
      Tensor m = uniform_values({1000}, dtype, 83), v = uniform_values({1000}, dtype, 84, 0, 1);
      Tensor vmax = variant == 2 ? uniform_values({1000}, dtype, 85, 0, 1) : Tensor();
      Tensor pd = p.to(kCUDA), gd = g.to(kCUDA), md = m.to(kCUDA), vd = v.to(kCUDA);
      Tensor vmaxd = vmax.defined() ? vmax.to(kCUDA) : Tensor();
      cpu_backend().adam_step(p, g, m, v, vmax, s);
      backend(kCUDA).adam_step(pd, gd, md, vd, vmaxd, s);
      check_same(pd, p, 1e-5, 1e-12);
      check_same(md, m, 1e-6, 1e-12);
      check_same(vd, v, 1e-6, 1e-12);
      if (vmax.defined()) check_same(vmaxd, vmax, 1e-6, 1e-12);
    }
  }
}

TEST_CASE("cuda: conv2d forward and both backwards (groups, stride, padding, dilation)") {
  REQUIRE_CUDA();
  struct Case {
    int64_t n, c_in, c_out, h, w, k, stride, padding, dilation, groups;
  };
  const Case cases[] = {{2, 3, 4, 9, 8, 3, 1, 1, 1, 1}, {3, 4, 6, 11, 10, 3, 2, 1, 1, 2}, {1, 6, 6, 12, 12, 5, 1, 2, 2, 3},
                        {2, 1, 8, 28, 28, 3, 2, 1, 1, 1}, {4, 8, 4, 7, 7, 1, 1, 0, 1, 1}, {2, 4, 4, 8, 9, 3, 3, 0, 1, 4}};
  for (DType dtype : {kFloat32, kFloat64}) {
    for (const Case& c : cases) {
      INFO("conv n=" << c.n << " c_in=" << c.c_in << " c_out=" << c.c_out << " k=" << c.k << " s=" << c.stride
                     << " p=" << c.padding << " d=" << c.dilation << " g=" << c.groups << " " << dtype_name(dtype));
      Tensor x = uniform_values({c.n, c.c_in, c.h, c.w}, dtype, 91).requires_grad_(true);
      Tensor w = uniform_values({c.c_out, c.c_in / c.groups, c.k, c.k}, dtype, 92).requires_grad_(true);
      Tensor b = uniform_values({c.c_out}, dtype, 93).requires_grad_(true);
      Tensor xd = x.detach().to(kCUDA).requires_grad_(true), wd = w.detach().to(kCUDA).requires_grad_(true);
      Tensor bd = b.detach().to(kCUDA).requires_grad_(true);
      Tensor yc = conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups);
      Tensor yd = conv2d(xd, wd, bd, c.stride, c.padding, c.dilation, c.groups);
      check_same(yd, yc, 1e-4, 1e-11);
      Tensor gout = uniform_values(yc.shape(), dtype, 94);
      sum(yc * gout).backward();
      sum(yd * gout.to(kCUDA)).backward();
      check_same(xd.grad(), x.grad(), 1e-4, 1e-11);
      check_same(wd.grad(), w.grad(), 2e-4, 1e-10);
      check_same(bd.grad(), b.grad(), 2e-4, 1e-10);
    }
    // Transposed convolution (runs conv2d_backward_input forward), with output_padding.
    Tensor x = uniform_values({2, 4, 7, 7}, dtype, 95).requires_grad_(true);
    Tensor w = uniform_values({4, 3, 3, 3}, dtype, 96).requires_grad_(true);
    Tensor xd = x.detach().to(kCUDA).requires_grad_(true), wd = w.detach().to(kCUDA).requires_grad_(true);
    Tensor yc = conv_transpose2d(x, w, {}, 2, 1, 1);
    Tensor yd = conv_transpose2d(xd, wd, {}, 2, 1, 1);
    check_same(yd, yc, 1e-4, 1e-11);
    sum(yc * yc).backward();
    sum(yd * yd).backward();
    check_same(xd.grad(), x.grad(), 1e-3, 1e-10);
    check_same(wd.grad(), w.grad(), 1e-3, 1e-10);
  }
}

TEST_CASE("cuda: pooling and upsampling forward and backward") {
  REQUIRE_CUDA();
  for (DType dtype : {kFloat32, kFloat64}) {
    Tensor x = uniform_values({2, 3, 11, 10}, dtype, 101).requires_grad_(true);
    Tensor xd = x.detach().to(kCUDA).requires_grad_(true);
    auto run = [&](const char* what, auto&& f) {
      INFO(what << " " << dtype_name(dtype));
      x.zero_grad();
      xd.zero_grad();
      Tensor yc = f(x), yd = f(xd);
      check_same(yd, yc, 1e-5, 1e-12);
      Tensor gout = uniform_values(yc.shape(), dtype, 102);
      sum(yc * gout).backward();
      sum(yd * gout.to(kCUDA)).backward();
      check_same(xd.grad(), x.grad(), 1e-5, 1e-12);
    };
    run("max_pool2d", [](const Tensor& t) { return max_pool2d(t, 3, 2, 1); });
    run("max_pool2d dilated ceil", [](const Tensor& t) { return max_pool2d(t, 2, 2, 0, 2, true); });
    run("avg_pool2d", [](const Tensor& t) { return avg_pool2d(t, 3, 2, 1); });
    run("avg_pool2d no pad count", [](const Tensor& t) { return avg_pool2d(t, 3, 2, 1, true, false); });
    run("adaptive_avg_pool2d", [](const Tensor& t) { return adaptive_avg_pool2d(t, {4, 3}); });
    run("upsample_nearest2d", [](const Tensor& t) { return upsample_nearest2d(t, {23, 17}); });
    run("upsample_bilinear2d", [](const Tensor& t) { return upsample_bilinear2d(t, {22, 15}, false); });
    run("upsample_bilinear2d aligned", [](const Tensor& t) { return upsample_bilinear2d(t, {22, 15}, true); });
    auto [vc, ic] = max_pool2d_with_indices(x.detach(), 2);
    auto [vd, id] = max_pool2d_with_indices(xd.detach(), 2);
    check_same(id, ic);
  }
}

namespace {
/// The conv autoencoder on CPU and a copy of it on CUDA with the same weights.
std::pair<std::shared_ptr<models::Autoencoder>, std::shared_ptr<models::Autoencoder>> conv_ae_pair(DType dtype) {
  models::AEConfig cfg;
  cfg.model = "conv";
  manual_seed(5);
  auto cpu_model = models::make_autoencoder(cfg);
  manual_seed(5);
  auto cuda_model = models::make_autoencoder(cfg);  // the same host-drawn weights
  cpu_model->to(dtype);
  cuda_model->to(dtype);
  cuda_model->to(kCUDA);
  return {cpu_model, cuda_model};
}
}  // namespace

TEST_CASE("cuda: conv autoencoder gradients match the CPU (float64)") {
  REQUIRE_CUDA();
  auto [cpu_model, cuda_model] = conv_ae_pair(kFloat64);
  Tensor x = uniform_values({4, 784}, kFloat64, 111, 0, 1);
  models::AELoss lc = cpu_model->loss(x, x, 0.0);
  models::AELoss ld = cuda_model->loss(x.to(kCUDA), x.to(kCUDA), 0.0);
  CHECK(ld.reconstruction == doctest::Approx(lc.reconstruction).epsilon(1e-10));
  lc.total.backward();
  ld.total.backward();
  const auto pc = cpu_model->named_parameters(), pd = cuda_model->named_parameters();
  REQUIRE(pc.size() == pd.size());
  for (size_t i = 0; i < pc.size(); ++i) {
    INFO("parameter " << pc[i].first);
    REQUIRE(pd[i].second.grad().defined());
    check_same(pd[i].second.grad(), pc[i].second.grad(), 0, 1e-9);
  }
}

TEST_CASE("cuda: training steps match the CPU losses (conv AE, Adam, float32)") {
  REQUIRE_CUDA();
  auto [cpu_model, cuda_model] = conv_ae_pair(kFloat32);
  optim::Adam opt_c(cpu_model->parameters(), optim::AdamOptions(1e-3));
  optim::Adam opt_d(cuda_model->parameters(), optim::AdamOptions(1e-3));
  for (int step = 0; step < 5; ++step) {
    Tensor x = uniform_values({16, 784}, kFloat32, 120 + step, 0, 1);
    models::AELoss lc = cpu_model->loss(x, x, 0.0);
    models::AELoss ld = cuda_model->loss(x.to(kCUDA), x.to(kCUDA), 0.0);
    INFO("step " << step << ": cpu " << lc.reconstruction << ", cuda " << ld.reconstruction);
    CHECK(ld.reconstruction == doctest::Approx(lc.reconstruction).epsilon(1e-4));
    opt_c.zero_grad();
    opt_d.zero_grad();
    lc.total.backward();
    ld.total.backward();
    opt_c.step();
    opt_d.step();
  }
  // Dense AE too: one step.
  models::AEConfig cfg;
  cfg.model = "deep";
  manual_seed(9);
  auto dc = models::make_autoencoder(cfg);
  manual_seed(9);
  auto dd = models::make_autoencoder(cfg);
  dd->to(kCUDA);
  Tensor x = uniform_values({32, 784}, kFloat32, 130, 0, 1);
  CHECK(dd->loss(x.to(kCUDA), x.to(kCUDA), 0.0).reconstruction ==
        doctest::Approx(dc->loss(x, x, 0.0).reconstruction).epsilon(1e-4));
}

TEST_CASE("cuda: ops mixing devices name the op and both devices") {
  REQUIRE_CUDA();
  Tensor a = ones({2, 3}), b = ones({2, 3}, kFloat32, kCUDA);
  CHECK_THROWS_WITH_SUBSTR(add(a, b), "[add] expected all tensors on one device; got cpu and cuda");
  CHECK_THROWS_WITH_SUBSTR(matmul(b, a.t()), "expected all tensors on one device; got cuda and cpu");
  CHECK_THROWS_WITH_SUBSTR(conv2d(ones({1, 1, 4, 4}), ones({1, 1, 3, 3}, kFloat32, kCUDA)),
                           "[conv2d] expected all tensors on one device");
  Tensor p = ones({3}, kFloat32, kCUDA).requires_grad_(true);
  optim::Adam opt({p});
  nn::Linear layer(3, 2);
  layer.to(kCUDA);
  CHECK(layer.weight.device() == kCUDA);
  CHECK_THROWS_WITH_SUBSTR(layer.forward(ones({4, 3})), "expected all tensors on one device");
  Tensor y = layer.forward(ones({4, 3}, kFloat32, kCUDA));
  CHECK(y.device() == kCUDA);
  layer.to(kCPU);
  CHECK(layer.weight.device() == kCPU);
}
