// In-place ops (Tensor::add_ and friends). They write through the tensor's own strides, bump the
// storage version (so saved tensors notice) and are not recorded by autograd: while grad mode is
// on they refuse tensors that require grad, which is what optimizers and init code expect.
#include "../autograd/grad_mode.h"
#include "backend.h"
#include "check.h"
#include "creation.h"

namespace latent {
namespace {

void check_mutable(const char* op, const Tensor& self) {
  check::defined(op, self);
  if (is_grad_enabled() && self.requires_grad())
    fail(op, "in-place op on a tensor that requires grad (shape {}); run it under latent::NoGradGuard or use the "
         "out-of-place op", self.shape());
}

/// other converted to self's dtype and checked to broadcast onto self's shape.
Tensor operand_for(const char* op, const Tensor& self, const Tensor& other) {
  check::defined(op, other, "other");
  check::same_device(op, self, other);
  if (!(broadcast_shapes(op, self.shape(), other.shape()) == self.shape()))
    fail(op, "cannot write a result of shape {} into a tensor of shape {}",
         broadcast_shapes(op, self.shape(), other.shape()), self.shape());
  if (!self.is_floating_point() && other.is_floating_point())
    fail(op, "result dtype {} cannot be written into an int64 tensor in place", other.dtype());
  return other.dtype() == self.dtype() ? other : other.to(self.dtype());
}

Tensor& binary_inplace(const char* op, Tensor& self, BinaryOp kind, const Tensor& other, double p0 = 1.0) {
  check_mutable(op, self);
  Tensor b = operand_for(op, self, other);
  backend(self.device(), op).binary(kind, self, b, self, p0, 0.0);
  self.storage()->bump_version();
  return self;
}

Tensor& unary_inplace(const char* op, Tensor& self, UnaryOp kind, double p0, double p1 = 0.0) {
  check_mutable(op, self);
  backend(self.device(), op).unary(kind, self, self, p0, p1);
  self.storage()->bump_version();
  return self;
}

}  // namespace

Tensor& Tensor::add_(const Tensor& other, double alpha) { return binary_inplace("add_", *this, BinaryOp::Add, other, alpha); }
Tensor& Tensor::sub_(const Tensor& other) { return binary_inplace("sub_", *this, BinaryOp::Sub, other); }
Tensor& Tensor::mul_(const Tensor& other) { return binary_inplace("mul_", *this, BinaryOp::Mul, other); }
Tensor& Tensor::div_(const Tensor& other) {
  check::defined("div_", *this);
  if (!is_floating_point()) fail("div_", "true division cannot write into an int64 tensor in place");
  return binary_inplace("div_", *this, BinaryOp::Div, other);
}
Tensor& Tensor::add_(double value) { return unary_inplace("add_", *this, UnaryOp::AddScalar, value); }
Tensor& Tensor::sub_(double value) { return unary_inplace("sub_", *this, UnaryOp::AddScalar, -value); }
Tensor& Tensor::mul_(double value) { return unary_inplace("mul_", *this, UnaryOp::MulScalar, value); }
Tensor& Tensor::div_(double value) {
  check::defined("div_", *this);
  if (!is_floating_point()) fail("div_", "true division cannot write into an int64 tensor in place");
  return unary_inplace("div_", *this, UnaryOp::DivScalar, value);
}
Tensor& Tensor::clamp_(double min, double max) {
  if (min > max) fail("clamp_", "min {} is greater than max {}", min, max);
  return unary_inplace("clamp_", *this, UnaryOp::Clamp, min, max);
}

Tensor& Tensor::fill_(double value) {
  check_mutable("fill_", *this);
  backend(device(), "fill_").fill(*this, value);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::zero_() { return fill_(0.0); }

Tensor& Tensor::copy_(const Tensor& src) {
  check_mutable("copy_", *this);
  check::defined("copy_", src, "src");
  check::same_device("copy_", *this, src);
  if (!(broadcast_shapes("copy_", shape(), src.shape()) == shape()))
    fail("copy_", "source of shape {} cannot be broadcast to destination shape {}", src.shape(), shape());
  backend(device(), "copy_").copy(src, *this);
  storage()->bump_version();
  return *this;
}

}  // namespace latent
