#include "linalg.h"

#include "apply.h"
#include "backend.h"
#include "check.h"
#include "creation.h"
#include "reduce.h"
#include "shape_ops.h"

namespace latent {
namespace {

void check_operands(const char* op, const Tensor& a, const Tensor& b) {
  check::defined(op, a, "a");
  check::defined(op, b, "b");
  check::same_device(op, a, b);
  check::floating(op, a);
  if (a.dtype() != b.dtype()) fail(op, "dtypes differ: {} and {}", a.dtype(), b.dtype());
}

/// Transpose of the last two dims as a view (no autograd): how backward reads operands.
Tensor mT(const Tensor& t) {
  Shape shape = t.shape(), strides = t.strides();
  const int n = t.dim();
  std::swap(shape[n - 1], shape[n - 2]);
  std::swap(strides[n - 1], strides[n - 2]);
  return make_view(t, shape, strides, t.storage_offset());
}

/// a @ b for equal-rank 2-d or 3-d operands with equal batch size.
Tensor gemm_new(const char* op, const Tensor& a, const Tensor& b) {
  Shape shape = a.shape();
  shape[a.dim() - 1] = b.shape()[b.dim() - 1];
  Tensor out = empty(shape, a.dtype(), a.device());
  backend(a.device(), op).gemm(a, b, out, 0.0);
  return out;
}

/// Matrix product of 2-d or batched 3-d operands (same batch); the core of matmul.
struct BmmOp {
  static constexpr const char* name = "matmul";
  using Ctx = OpContext;
  static Tensor forward(Ctx* ctx, const Tensor& a, const Tensor& b) {
    if (ctx) ctx->save(a, b);
    return gemm_new(name, a, b);
  }
  static std::array<Tensor, 2> backward(const Ctx& ctx, const Tensor& g) {
    auto [a, b] = ctx.saved<2>(name);
    return {ctx.needs_grad(0) ? gemm_new(name, g, mT(b)) : Tensor(),
            ctx.needs_grad(1) ? gemm_new(name, mT(a), g) : Tensor()};
  }
};

struct LinearOp {
  static constexpr const char* name = "linear";
  using Ctx = OpContext;
  // x: (N, in), weight: (out, in), bias: (out) or undefined.
  static Tensor forward(Ctx* ctx, const Tensor& x, const Tensor& weight, const Tensor& bias) {
    Backend& be = backend(x.device(), name);
    Tensor out = empty({x.shape()[0], weight.shape()[0]}, x.dtype(), x.device());
    // The bias in the GEMM's store where the backend can; without a tape node, the inference path.
    if (ctx) be.linear_forward(x, weight, bias, Activation::None, out);
    else be.linear_inference(x, weight, bias, Activation::None, out);
    if (ctx) ctx->save(x, weight);
    return out;
  }
  static std::array<Tensor, 3> backward(const Ctx& ctx, const Tensor& g) {
    auto [x, weight] = ctx.saved<2>(name);
    Tensor gx = ctx.needs_grad(0) ? gemm_new(name, g, weight) : Tensor();       // (N, out) @ (out, in)
    Tensor gw = ctx.needs_grad(1) ? gemm_new(name, mT(g), x) : Tensor();        // (out, N) @ (N, in)
    Tensor gb;
    if (ctx.needs_grad(2)) {
      gb = empty({g.shape()[1]}, g.dtype(), g.device());
      backend(g.device(), name).reduce(ReduceOp::Sum, g, gb.view({1, g.shape()[1]}));
    }
    return {gx, gw, gb};
  }
};

/// activation(x W^T + b) in one backend call (Backend::linear_forward: on the CPU the bias and
/// relu go into the GEMM's store; elsewhere the bias rows, the GEMM onto them and the activation
/// in place, no second tensor). Saves the output, from which every supported
/// activation's derivative follows, so backward is one pass (derivative + bias gradient) and two
/// GEMMs.
struct FusedLinearOp {
  static constexpr const char* name = "fused_linear";
  struct Ctx : OpContext {
    Activation activation = Activation::None;
  };
  // x: (N, in), weight: (out, in), bias: (out) or undefined.
  static Tensor forward(Ctx* ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation) {
    Backend& be = backend(x.device(), name);
    Tensor out = empty({x.shape()[0], weight.shape()[0]}, x.dtype(), x.device());
    if (ctx) be.linear_forward(x, weight, bias, activation, out);
    else be.linear_inference(x, weight, bias, activation, out);  // no tape node: weights may stay packed
    if (ctx) {
      ctx->activation = activation;
      ctx->save(x, weight, out);
    }
    return out;
  }
  static std::array<Tensor, 3> backward(const Ctx& ctx, const Tensor& g) {
    auto [x, weight, out] = ctx.saved<3>(name);
    Backend& be = backend(g.device(), name);
    Tensor grad_pre = empty(out.shape(), out.dtype(), out.device());
    Tensor gb = ctx.needs_grad(2) ? empty({out.shape()[1]}, out.dtype(), out.device()) : Tensor();
    be.activation_backward(ctx.activation, g, out, grad_pre, gb);
    Tensor gx = ctx.needs_grad(0) ? gemm_new(name, grad_pre, weight) : Tensor();  // (N, out) @ (out, in)
    Tensor gw = ctx.needs_grad(1) ? gemm_new(name, mT(grad_pre), x) : Tensor();   // (out, N) @ (N, in)
    return {gx, gw, gb};
  }
};

/// The checks every linear runs ("[linear] ..."), shared by the plain and the fused op.
void check_linear(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_operands(op, x, weight);
  if (weight.dim() != 2) fail(op, "weight must be 2-d (out_features, in_features); got shape {}", weight.shape());
  if (x.dim() < 1) fail(op, "input must have at least 1 dim; got a 0-d tensor");
  const int64_t in = x.shape()[x.dim() - 1];
  if (in != weight.shape()[1])
    fail(op, "input shape {} and weight shape {} do not match: {} input features != {}", x.shape(), weight.shape(), in,
         weight.shape()[1]);
  if (bias.defined()) {
    check::same_device(op, x, bias);
    if (bias.dtype() != x.dtype()) fail(op, "bias dtype {} differs from input dtype {}", bias.dtype(), x.dtype());
    if (bias.dim() != 1 || bias.shape()[0] != weight.shape()[0])
      fail(op, "bias shape {} does not match weight shape {}: expected [{}]", bias.shape(), weight.shape(),
           weight.shape()[0]);
  }
}

}  // namespace

const char* activation_name(Activation activation) {
  switch (activation) {
    case Activation::None: return "none";
    case Activation::Relu: return "relu";
    case Activation::Sigmoid: return "sigmoid";
    case Activation::Tanh: return "tanh";
  }
  return "unknown";
}

Tensor mm(const Tensor& a, const Tensor& b) {
  check_operands("mm", a, b);
  if (a.dim() != 2 || b.dim() != 2) fail("mm", "expects 2-d operands; got shapes {} and {}", a.shape(), b.shape());
  if (a.shape()[1] != b.shape()[0])
    fail("mm", "shapes {} and {} cannot be multiplied: {} != {}", a.shape(), b.shape(), a.shape()[1], b.shape()[0]);
  return apply<BmmOp>(a, b);
}

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  const char* op = "matmul";
  check_operands(op, a_in, b_in);
  if (a_in.dim() == 0 || b_in.dim() == 0)
    fail(op, "both operands need at least 1 dim; got shapes {} and {}", a_in.shape(), b_in.shape());
  const int64_t ka = a_in.shape()[a_in.dim() - 1];
  const int64_t kb = b_in.dim() == 1 ? b_in.shape()[0] : b_in.shape()[b_in.dim() - 2];
  if (ka != kb) fail(op, "shapes {} and {} cannot be multiplied: {} != {}", a_in.shape(), b_in.shape(), ka, kb);

  // Promote vectors to matrices, remembering which dims to drop from the result.
  const bool a_vec = a_in.dim() == 1, b_vec = b_in.dim() == 1;
  Tensor a = a_vec ? unsqueeze(a_in, 0) : a_in;
  Tensor b = b_vec ? unsqueeze(b_in, 1) : b_in;
  Tensor out;
  if (a.dim() == 2 && b.dim() == 2) {
    out = apply<BmmOp>(a, b);
  } else {
    // Broadcast batch dims, then flatten them into one.
    Shape batch_a(std::span<const int64_t>(a.shape().data(), a.dim() - 2));
    Shape batch_b(std::span<const int64_t>(b.shape().data(), b.dim() - 2));
    Shape batch = broadcast_shapes(op, batch_a, batch_b);
    const int64_t m = a.shape()[a.dim() - 2], k = ka, n = b.shape()[b.dim() - 1];
    Shape a_full = batch, b_full = batch;
    a_full.push_back(m);
    a_full.push_back(k);
    b_full.push_back(k);
    b_full.push_back(n);
    const int64_t nb = batch.numel();
    Tensor a3 = reshape(expand(a, a_full), {nb, m, k});
    Tensor b3 = reshape(expand(b, b_full), {nb, k, n});
    Shape out_shape = batch;
    out_shape.push_back(m);
    out_shape.push_back(n);
    out = reshape(apply<BmmOp>(a3, b3), out_shape);
  }
  if (a_vec) out = squeeze(out, -2);
  if (b_vec) out = squeeze(out, -1);
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_linear("linear", x, weight, bias);
  if (x.dim() == 2) return apply<LinearOp>(x, weight, bias);
  const int64_t in = x.shape()[x.dim() - 1];
  Shape out_shape = x.shape();
  out_shape[x.dim() - 1] = weight.shape()[0];
  return reshape(apply<LinearOp>(reshape(x, {-1, in}), weight, bias), out_shape);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation) {
  if (activation == Activation::None) return linear(x, weight, bias);
  check_linear("linear", x, weight, bias);
  if (x.dim() == 2) return apply<FusedLinearOp>(x, weight, bias, activation);
  const int64_t in = x.shape()[x.dim() - 1];
  Shape out_shape = x.shape();
  out_shape[x.dim() - 1] = weight.shape()[0];
  return reshape(apply<FusedLinearOp>(reshape(x, {-1, in}), weight, bias, activation), out_shape);
}

}  // namespace latent
