// PointwiseOp: the op template for elementwise functions of one tensor whose gradient is one
// binary kernel of (incoming gradient, saved input or output). abs, clamp, pow-by-scalar and
// every activation are instances; the math of both directions lives in scalar_math.h.
#pragma once

#include "apply.h"
#include "elementwise.h"

namespace latent {

template <const char* kName, UnaryOp kOp, BinaryOp kGrad, bool kSavesOutput = false>
struct PointwiseOp {
  static constexpr const char* name = kName;
  struct Ctx : OpContext {
    double p0 = 0, p1 = 0;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, double p0, double p1) {
    if (x.defined() && !x.is_floating_point() && kOp != UnaryOp::Abs && kOp != UnaryOp::Clamp &&
        kOp != UnaryOp::Relu)
      fail(name, "dtype {} is not supported: expected float32 or float64", x.dtype());
    Tensor out = unary_kernel(name, kOp, x, p0, p1);
    if (ctx) {
      ctx->save(kSavesOutput ? out : x);
      ctx->p0 = p0;
      ctx->p1 = p1;
    }
    return out;
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    return {binary_kernel(name, kGrad, g, ctx.saved(0, name), ctx.p0, ctx.p1)};
  }
};

}  // namespace latent
