// Activations: each is a PointwiseOp instance; the forward and gradient formulas are the
// Relu/ReluBackward, ... entries of scalar_math.h.
#include "activation.h"

#include "check.h"
#include "pointwise_op.h"

namespace latent {
namespace {
constexpr char kRelu[] = "relu", kLeakyRelu[] = "leaky_relu", kSigmoid[] = "sigmoid", kTanh[] = "tanh",
               kSoftplus[] = "softplus", kElu[] = "elu", kSelu[] = "selu", kGelu[] = "gelu",
               kErf[] = "erf";
}  // namespace

Tensor relu(const Tensor& x) {
  return apply<PointwiseOp<kRelu, UnaryOp::Relu, BinaryOp::ReluBackward>>(x, 0.0, 0.0);
}
Tensor leaky_relu(const Tensor& x, double negative_slope) {
  return apply<PointwiseOp<kLeakyRelu, UnaryOp::LeakyRelu, BinaryOp::LeakyReluBackward>>(x, negative_slope, 0.0);
}
Tensor sigmoid(const Tensor& x) {
  return apply<PointwiseOp<kSigmoid, UnaryOp::Sigmoid, BinaryOp::SigmoidBackward, true>>(x, 0.0, 0.0);
}
Tensor tanh(const Tensor& x) {
  return apply<PointwiseOp<kTanh, UnaryOp::Tanh, BinaryOp::TanhBackward, true>>(x, 0.0, 0.0);
}
Tensor softplus(const Tensor& x, double beta, double threshold) {
  if (!(beta > 0)) fail("softplus", "beta must be positive; got {}", beta);
  return apply<PointwiseOp<kSoftplus, UnaryOp::Softplus, BinaryOp::SoftplusBackward>>(x, beta, threshold);
}
Tensor elu(const Tensor& x, double alpha) {
  return apply<PointwiseOp<kElu, UnaryOp::Elu, BinaryOp::EluBackward>>(x, alpha, 0.0);
}
Tensor selu(const Tensor& x) {
  return apply<PointwiseOp<kSelu, UnaryOp::Selu, BinaryOp::SeluBackward>>(x, 0.0, 0.0);
}
Tensor erf(const Tensor& x) { return apply<PointwiseOp<kErf, UnaryOp::Erf, BinaryOp::ErfBackward>>(x, 0.0, 0.0); }

Tensor gelu(const Tensor& x) {
  return apply<PointwiseOp<kGelu, UnaryOp::Gelu, BinaryOp::GeluBackward>>(x, 0.0, 0.0);
}

}  // namespace latent
