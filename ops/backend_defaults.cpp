// Default implementations of the fused Backend kernels, composed of the unfused ones. A backend
// that has no fused version (or an operand layout its fused version does not handle) gets the
// same values in two or three passes.
#include "backend.h"
#include "creation.h"

namespace latent {

void Backend::activation_backward(Activation activation, const Tensor& grad_out, const Tensor& out,
                                  const Tensor& grad_pre, const Tensor& grad_bias) {
  switch (activation) {
    case Activation::None: copy(grad_out, grad_pre); break;
    // relu'(pre) from the output: out > 0 exactly where pre > 0.
    case Activation::Relu: binary(BinaryOp::ReluBackward, grad_out, out, grad_pre, 0, 0); break;
    case Activation::Sigmoid: binary(BinaryOp::SigmoidBackward, grad_out, out, grad_pre, 0, 0); break;
    case Activation::Tanh: binary(BinaryOp::TanhBackward, grad_out, out, grad_pre, 0, 0); break;
  }
  if (grad_bias.defined()) {
    const int64_t c = grad_pre.shape()[grad_pre.dim() - 1];
    reduce(ReduceOp::Sum, grad_pre, make_view(grad_bias, {1, c}, {c, grad_bias.strides()[0]}, grad_bias.storage_offset()));
  }
}

void Backend::linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation,
                             const Tensor& out) {
  if (bias.defined()) copy(bias, out);
  gemm(x, weight.transpose(0, 1), out, bias.defined() ? 1.0 : 0.0);
  switch (activation) {
    case Activation::None: break;
    case Activation::Relu: unary(UnaryOp::Relu, out, out, 0, 0); break;
    case Activation::Sigmoid: unary(UnaryOp::Sigmoid, out, out, 0, 0); break;
    case Activation::Tanh: unary(UnaryOp::Tanh, out, out, 0, 0); break;
  }
}

void Backend::linear_inference(const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation,
                               const Tensor& out) {
  linear_forward(x, weight, bias, activation, out);
}

void Backend::binary_sum(BinaryOp term, const Tensor& a, const Tensor& b, const Tensor& out, double p0, double p1) {
  Tensor terms = empty(a.shape(), a.dtype(), a.device());
  binary(term, a, b, terms, p0, p1);
  const Shape ones = Shape::filled(terms.dim(), 1);
  reduce(ReduceOp::Sum, terms, out.dim() == terms.dim() ? out : make_view(out, ones, ones, out.storage_offset()));
}

void Backend::binary_scaled(BinaryOp term, const Tensor& a, const Tensor& b, const Tensor& scale, const Tensor& out,
                            double p0, double p1) {
  binary(term, a, b, out, p0, p1);
  binary(BinaryOp::Mul, out, scale, out, 1, 0);
}

}  // namespace latent
