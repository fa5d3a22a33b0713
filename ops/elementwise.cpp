// Elementwise ops: each op is one struct (name, checks, forward, backward); the math of the kernels
// is in scalar_math.h, the loops in the backends.
#include "elementwise.h"

#include "apply.h"
#include "backend.h"
#include "check.h"
#include "creation.h"
#include "pointwise_op.h"

namespace latent {

Tensor unary_kernel(const char* name, UnaryOp op, const Tensor& x, double p0, double p1) {
  check::defined(name, x);
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  backend(x.device(), name).unary(op, x, out, p0, p1);
  return out;
}

Tensor binary_kernel(const char* name, BinaryOp op, const Tensor& a, const Tensor& b, double p0, double p1) {
  check::defined(name, a, "a");
  check::defined(name, b, "b");
  check::same_device(name, a, b);
  Shape shape = broadcast_shapes(name, a.shape(), b.shape());
  const DType dtype = promote_types(a.dtype(), b.dtype());
  Tensor out = empty(shape, dtype, a.device());
  Backend& be = backend(a.device(), name);
  if (a.dtype() == dtype && b.dtype() == dtype) be.binary(op, a, b, out, p0, p1);  // no Tensor copies
  else be.binary(op, a.dtype() == dtype ? a : a.to(dtype), b.dtype() == dtype ? b : b.to(dtype), out, p0, p1);
  return out;
}

namespace {

/// Floating-point-only unary ops reject int64 up front.
Tensor float_unary(const char* name, UnaryOp op, const Tensor& x, double p0 = 0, double p1 = 0) {
  check::defined(name, x);
  check::floating(name, x);
  return unary_kernel(name, op, x, p0, p1);
}

/// Context for binary ops: the inputs' shapes and dtypes shape their gradients.
struct BinaryCtx : OpContext {
  InputMeta a, b;
  double alpha = 1.0;
  void set_inputs(const Tensor& x, const Tensor& y, double scale = 1.0) {
    a = InputMeta::of(x);
    b = InputMeta::of(y);
    alpha = scale;
  }
};

struct AddOp {
  static constexpr const char* name = "add";
  using Ctx = BinaryCtx;
  static Tensor forward(Ctx* ctx, const Tensor& a, const Tensor& b, double alpha) {
    if (ctx) ctx->set_inputs(a, b, alpha);
    return binary_kernel(name, BinaryOp::Add, a, b, alpha);
  }
  static std::array<Tensor, 2> backward(const Ctx& ctx, const Tensor& g) {
    return {ctx.needs_grad(0) ? grad_for(g, ctx.a) : Tensor(),
            ctx.needs_grad(1) ? grad_for(ctx.alpha == 1.0 ? g : mul(g, ctx.alpha), ctx.b) : Tensor()};
  }
};

struct SubOp {
  static constexpr const char* name = "sub";
  using Ctx = BinaryCtx;
  static Tensor forward(Ctx* ctx, const Tensor& a, const Tensor& b) {
    if (ctx) ctx->set_inputs(a, b);
    return binary_kernel(name, BinaryOp::Sub, a, b);
  }
  static std::array<Tensor, 2> backward(const Ctx& ctx, const Tensor& g) {
    return {ctx.needs_grad(0) ? grad_for(g, ctx.a) : Tensor(), ctx.needs_grad(1) ? grad_for(neg(g), ctx.b) : Tensor()};
  }
};

struct MulOp {
  static constexpr const char* name = "mul";
  using Ctx = BinaryCtx;
  static Tensor forward(Ctx* ctx, const Tensor& a, const Tensor& b) {
    if (ctx) {
      ctx->set_inputs(a, b);
      ctx->save(a, b);
    }
    return binary_kernel(name, BinaryOp::Mul, a, b);
  }
  static std::array<Tensor, 2> backward(const Ctx& ctx, const Tensor& g) {
    auto [a, b] = ctx.saved<2>(name);
    return {ctx.needs_grad(0) ? grad_for(mul(g, b), ctx.a) : Tensor(),
            ctx.needs_grad(1) ? grad_for(mul(g, a), ctx.b) : Tensor()};
  }
};

struct DivOp {
  static constexpr const char* name = "div";
  using Ctx = BinaryCtx;
  static Tensor forward(Ctx* ctx, const Tensor& a, const Tensor& b) {
    check::defined(name, a, "a");
    check::defined(name, b, "b");
    // True division: int64 / int64 gives float32, as in PyTorch.
    const bool ints = !a.is_floating_point() && !b.is_floating_point();
    Tensor out = ints ? binary_kernel(name, BinaryOp::Div, a.to(kFloat32), b.to(kFloat32))
                      : binary_kernel(name, BinaryOp::Div, a, b);
    if (ctx) {
      ctx->set_inputs(a, b);
      ctx->save(b, out);
    }
    return out;
  }
  static std::array<Tensor, 2> backward(const Ctx& ctx, const Tensor& g) {
    auto [b, out] = ctx.saved<2>(name);
    Tensor ga = div(g, b);  // d(a/b)/da = 1/b; d(a/b)/db = -(a/b)/b
    return {ctx.needs_grad(0) ? grad_for(ga, ctx.a) : Tensor(),
            ctx.needs_grad(1) ? grad_for(neg(mul(ga, out)), ctx.b) : Tensor()};
  }
};

struct PowOp {
  static constexpr const char* name = "pow";
  using Ctx = BinaryCtx;
  static Tensor forward(Ctx* ctx, const Tensor& a, const Tensor& b) {
    check::floating(name, a);
    Tensor out = binary_kernel(name, BinaryOp::Pow, a, b);
    if (ctx) {
      ctx->set_inputs(a, b);
      ctx->save(a, b, out);
    }
    return out;
  }
  static std::array<Tensor, 2> backward(const Ctx& ctx, const Tensor& g) {
    auto [a, b, out] = ctx.saved<3>(name);
    // d/da a^b = b a^(b-1); d/db a^b = a^b log(a), taken as 0 where a == 0 (PyTorch's convention).
    Tensor ga = ctx.needs_grad(0) ? grad_for(mul(g, mul(b, pow(a, sub(b, 1.0)))), ctx.a) : Tensor();
    Tensor gb;
    if (ctx.needs_grad(1)) {
      Tensor safe_log = where(eq(a, 0.0), zeros({}, a.dtype(), a.device()), log(a));
      gb = grad_for(mul(g, mul(out, safe_log)), ctx.b);
    }
    return {ga, gb};
  }
};

/// maximum/minimum: the gradient goes to the selected operand (to a on ties).
template <BinaryOp kOp>
struct ExtremumOp {
  static constexpr const char* name = kOp == BinaryOp::Maximum ? "maximum" : "minimum";
  using Ctx = BinaryCtx;
  static Tensor forward(Ctx* ctx, const Tensor& a, const Tensor& b) {
    if (ctx) {
      ctx->set_inputs(a, b);
      ctx->save(a, b);
    }
    return binary_kernel(name, kOp, a, b);
  }
  static std::array<Tensor, 2> backward(const Ctx& ctx, const Tensor& g) {
    auto [a, b] = ctx.saved<2>(name);
    Tensor pick_a = kOp == BinaryOp::Maximum ? ge(a, b) : le(a, b);
    Tensor zero = zeros({}, g.dtype(), g.device());
    return {ctx.needs_grad(0) ? grad_for(where(pick_a, g, zero), ctx.a) : Tensor(),
            ctx.needs_grad(1) ? grad_for(where(pick_a, zero, g), ctx.b) : Tensor()};
  }
};

struct NegOp {
  static constexpr const char* name = "neg";
  using Ctx = OpContext;
  static Tensor forward(Ctx*, const Tensor& x) { return unary_kernel(name, UnaryOp::Neg, x); }
  static std::array<Tensor, 1> backward(const Ctx&, const Tensor& g) { return {neg(g)}; }
};

struct ExpOp {
  static constexpr const char* name = "exp";
  using Ctx = OpContext;
  static Tensor forward(Ctx* ctx, const Tensor& x) {
    Tensor out = float_unary(name, UnaryOp::Exp, x);
    if (ctx) ctx->save(out);
    return out;
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) { return {mul(g, ctx.saved(0, name))}; }
};

struct LogOp {
  static constexpr const char* name = "log";
  using Ctx = OpContext;
  static Tensor forward(Ctx* ctx, const Tensor& x) {
    if (ctx) ctx->save(x);
    return float_unary(name, UnaryOp::Log, x);
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) { return {div(g, ctx.saved(0, name))}; }
};

struct SqrtOp {
  static constexpr const char* name = "sqrt";
  using Ctx = OpContext;
  static Tensor forward(Ctx* ctx, const Tensor& x) {
    Tensor out = float_unary(name, UnaryOp::Sqrt, x);
    if (ctx) ctx->save(out);
    return out;
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    return {div(g, mul(ctx.saved(0, name), 2.0))};
  }
};

/// Round: no saved tensor; the gradient is zero wherever it exists.
struct RoundOp {
  static constexpr const char* name = "round";
  using Ctx = OpContext;
  static Tensor forward(Ctx*, const Tensor& x) { return float_unary(name, UnaryOp::Round, x); }
  static std::array<Tensor, 1> backward(const Ctx&, const Tensor& g) { return {zeros_like(g)}; }
};

constexpr char kAbs[] = "abs", kClamp[] = "clamp", kPowScalar[] = "pow_scalar";
using AbsOp = PointwiseOp<kAbs, UnaryOp::Abs, BinaryOp::AbsBackward>;
using ClampOp = PointwiseOp<kClamp, UnaryOp::Clamp, BinaryOp::ClampBackward>;
/// x ** exponent: its own op (PowOp is x ** y), shown as "pow".
struct PowScalarOp : PointwiseOp<kPowScalar, UnaryOp::PowScalar, BinaryOp::PowScalarBackward> {
  static constexpr const char* display_name = "pow";
};

/// x (op) scalar where the gradient is g * factor (add, sub, mul, div by a scalar; rsub). Each
/// instance has its own name (kName: "mul_scalar"); messages and grad_fn show kDisplay ("mul"),
/// the user function it overloads.
template <const char* kName, const char* kDisplay>
struct ScalarAffineOp {
  static constexpr const char* name = kName;
  static constexpr const char* display_name = kDisplay;
  struct Ctx : OpContext {
    double factor = 1;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, UnaryOp op, double value, double factor) {
    if (ctx) ctx->factor = factor;
    return unary_kernel(display_name, op, x, value);
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    return {ctx.factor == 1.0 ? g : mul(g, ctx.factor)};
  }
};
constexpr char kAddScalar[] = "add_scalar", kSubScalar[] = "sub_scalar", kMulScalar[] = "mul_scalar",
               kDivScalar[] = "div_scalar", kRsub[] = "rsub";
constexpr char kAdd[] = "add", kSub[] = "sub", kMul[] = "mul", kDiv[] = "div";
using AddScalarOp = ScalarAffineOp<kAddScalar, kAdd>;
using SubScalarOp = ScalarAffineOp<kSubScalar, kSub>;
using MulScalarOp = ScalarAffineOp<kMulScalar, kMul>;
using DivScalarOp = ScalarAffineOp<kDivScalar, kDiv>;
using RsubOp = ScalarAffineOp<kRsub, kRsub>;

struct RdivOp {
  static constexpr const char* name = "rdiv";
  using Ctx = OpContext;
  static Tensor forward(Ctx* ctx, const Tensor& x, double value) {
    Tensor out = float_unary(name, UnaryOp::RdivScalar, x, value);
    if (ctx) ctx->save(x, out);
    return out;
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    auto [x, out] = ctx.saved<2>(name);
    return {neg(div(mul(g, out), x))};  // d(c/x)/dx = -(c/x)/x
  }
};

/// base ** x for a positive scalar base: its own op, shown as "pow".
struct RpowOp {
  static constexpr const char* name = "rpow";
  static constexpr const char* display_name = "pow";
  struct Ctx : OpContext {
    double base = 0;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, double base) {
    Tensor out = float_unary(display_name, UnaryOp::RpowScalar, x, base);
    if (ctx) {
      ctx->save(out);
      ctx->base = base;
    }
    return out;
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    return {mul(g, mul(ctx.saved(0, display_name), std::log(ctx.base)))};
  }
};

Tensor scalar_tensor_like(const Tensor& x, double value) {
  check::defined("scalar", x);
  return full({}, value, x.dtype(), x.device());
}

/// An int64 tensor meeting a fractional scalar is promoted to float32 (as in PyTorch), so
/// `labels * 0.5` does not silently truncate the scalar.
Tensor promote_for_scalar(const Tensor& x, double value) {
  check::defined("scalar", x);
  if (!x.is_floating_point() && value != static_cast<double>(static_cast<int64_t>(value))) return x.to(kFloat32);
  return x;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b, double alpha) { return apply<AddOp>(a, b, alpha); }
Tensor sub(const Tensor& a, const Tensor& b) { return apply<SubOp>(a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return apply<MulOp>(a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return apply<DivOp>(a, b); }
Tensor pow(const Tensor& a, const Tensor& b) { return apply<PowOp>(a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return apply<ExtremumOp<BinaryOp::Maximum>>(a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return apply<ExtremumOp<BinaryOp::Minimum>>(a, b); }

Tensor add(const Tensor& a, double b) {
  return apply<AddScalarOp>(promote_for_scalar(a, b), UnaryOp::AddScalar, b, 1.0);
}
Tensor sub(const Tensor& a, double b) {
  return apply<SubScalarOp>(promote_for_scalar(a, b), UnaryOp::AddScalar, -b, 1.0);
}
Tensor mul(const Tensor& a, double b) {
  return apply<MulScalarOp>(promote_for_scalar(a, b), UnaryOp::MulScalar, b, b);
}
Tensor div(const Tensor& a, double b) {
  check::defined("div", a);
  return apply<DivScalarOp>(a.is_floating_point() ? a : a.to(kFloat32), UnaryOp::DivScalar, b, 1.0 / b);
}
Tensor rsub(double a, const Tensor& b) {
  return apply<RsubOp>(promote_for_scalar(b, a), UnaryOp::RsubScalar, a, -1.0);
}
Tensor rdiv(double a, const Tensor& b) { return apply<RdivOp>(b, a); }
Tensor pow(const Tensor& a, double exponent) {
  check::defined("pow", a);
  check::floating("pow", a);
  return apply<PowScalarOp>(a, exponent, 0.0);
}
Tensor pow(double base, const Tensor& exponent) {
  if (base <= 0) return pow(scalar_tensor_like(exponent, base), exponent);
  return apply<RpowOp>(exponent, base);
}

Tensor neg(const Tensor& x) { return apply<NegOp>(x); }
Tensor exp(const Tensor& x) { return apply<ExpOp>(x); }
Tensor log(const Tensor& x) { return apply<LogOp>(x); }
Tensor sqrt(const Tensor& x) { return apply<SqrtOp>(x); }
Tensor abs(const Tensor& x) { return apply<AbsOp>(x, 0.0, 0.0); }
Tensor round(const Tensor& x) { return apply<RoundOp>(x); }
Tensor square(const Tensor& x) { return pow(x, 2.0); }
Tensor clamp(const Tensor& x, double min, double max) {
  if (min > max) fail("clamp", "min {} is greater than max {}", min, max);
  return apply<ClampOp>(x, min, max);
}

// ---- where: gradient flows to a where cond holds, to b elsewhere ----
namespace {
struct WhereOp {
  static constexpr const char* name = "where";
  struct Ctx : OpContext {
    InputMeta a, b;
  };
  static Tensor forward(Ctx* ctx, const Tensor& cond, const Tensor& a, const Tensor& b) {
    check::defined(name, cond, "cond");
    check::defined(name, a, "a");
    check::defined(name, b, "b");
    check::same_device(name, cond, a);
    check::same_device(name, a, b);
    Shape shape = broadcast_shapes(name, broadcast_shapes(name, cond.shape(), a.shape()), b.shape());
    const DType dtype = promote_types(a.dtype(), b.dtype());
    Tensor out = empty(shape, dtype, a.device());
    backend(a.device(), name).where(cond, a.dtype() == dtype ? a : a.to(dtype), b.dtype() == dtype ? b : b.to(dtype), out);
    if (ctx) {
      ctx->a = InputMeta::of(a);
      ctx->b = InputMeta::of(b);
      ctx->save(cond);
    }
    return out;
  }
  static std::array<Tensor, 3> backward(const Ctx& ctx, const Tensor& g) {
    Tensor cond = ctx.saved(0, name);
    Tensor zero = zeros({}, g.dtype(), g.device());
    return {Tensor(), ctx.needs_grad(1) ? grad_for(where(cond, g, zero), ctx.a) : Tensor(),
            ctx.needs_grad(2) ? grad_for(where(cond, zero, g), ctx.b) : Tensor()};
  }
};
}  // namespace

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) { return apply<WhereOp>(cond, a, b); }

// ---- comparisons: no gradient ----
#define LATENT_COMPARISON(fn, kind)                                                              \
  Tensor fn(const Tensor& a, const Tensor& b) { return binary_kernel(#fn, BinaryOp::kind, a, b); }       \
  Tensor fn(const Tensor& a, double b) {                                                                   \
    Tensor x = promote_for_scalar(a, b);                                                                 \
    return binary_kernel(#fn, BinaryOp::kind, x, scalar_tensor_like(x, b));                              \
  }
LATENT_COMPARISON(eq, Eq)
LATENT_COMPARISON(ne, Ne)
LATENT_COMPARISON(lt, Lt)
LATENT_COMPARISON(le, Le)
LATENT_COMPARISON(gt, Gt)
LATENT_COMPARISON(ge, Ge)
#undef LATENT_COMPARISON

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator/(const Tensor& a, double b) { return div(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(b, a); }
Tensor operator-(double a, const Tensor& b) { return rsub(a, b); }
Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
Tensor operator/(double a, const Tensor& b) { return rdiv(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator<(const Tensor& a, double b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, double b) { return le(a, b); }
Tensor operator>(const Tensor& a, double b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, double b) { return ge(a, b); }

}  // namespace latent
