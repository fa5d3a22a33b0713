// PointwiseOp: the op template for elementwise functions of one tensor whose gradient is one
// binary kernel of (incoming gradient, saved input or output). abs, clamp, pow-by-scalar and
// every activation are instances; the math of both directions lives in scalar_math.h.
#pragma once

#include "apply.h"
#include "elementwise.h"

namespace latent {

/// An op (see apply.h) computing out = kOp(x, p0, p1) with gradient kGrad(g, saved, p0, p1), where
/// `saved` is x, or the output when kSavesOutput (sigmoid, tanh). Floating dtypes only, except for
/// abs, clamp and relu.
template <const char* kName, UnaryOp kOp, BinaryOp kGrad, bool kSavesOutput = false>
struct PointwiseOp {
  /// The op's unique name (the template argument kName).
  static constexpr const char* name = kName;
  /// Backward context: the saved tensor plus the two kernel parameters.
  struct Ctx : OpContext {
    /// The kernel parameters forward got (alpha, slope, clamp bounds, exponent...).
    /// @{
    double p0 = 0, p1 = 0;
  /// @}
  };
  /// Checks the dtype ("[name] dtype int64 is not supported ..."), runs the kernel, and saves x or
  /// the output and the parameters when ctx is not null.
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
  /// The input's gradient: kGrad(g, saved tensor, p0, p1).
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    return {binary_kernel(name, kGrad, g, ctx.saved(0, name), ctx.p0, ctx.p1)};
  }
};

}  // namespace latent
