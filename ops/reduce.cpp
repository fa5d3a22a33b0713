// Reductions. sum and mean are one op (mean scales); max/min over all dims share ties evenly;
// max/min along a dim scatter the gradient to the chosen index. The softmax family is composed
// of differentiable ops (logsumexp subtracts a detached max for stability).
#include "reduce.h"

#include <cmath>

#include "apply.h"
#include "trace.h"
#include "backend.h"
#include "check.h"
#include "creation.h"
#include "elementwise.h"
#include "shape_ops.h"

namespace latent {
namespace {

/// Keepdim shape of reducing `dims` of `shape`, with a bitmask of the reduced dims.
Shape reduced_shape(const char* op, const Shape& shape, const Shape& dims, uint32_t& mask) {
  mask = 0;
  Shape out = shape;
  for (int64_t d : dims) {
    int w = wrap_dim(op, d, shape.size());
    if (mask & (1u << w)) fail(op, "dim {} appears more than once in {}", w, dims);
    mask |= 1u << w;
    if (shape.size() > 0) out[w] = 1;
  }
  return out;
}

Shape drop_dims(const Shape& keep_shape, uint32_t mask) {
  Shape out;
  for (int d = 0; d < keep_shape.size(); ++d)
    if (!(mask & (1u << d))) out.push_back(keep_shape[d]);
  return out;
}

/// sum, and mean (= sum scaled by 1/count) under the name "mean".
template <const char* kName>
struct SumOp {
  static constexpr const char* name = kName;
  struct Ctx : OpContext {
    Shape input_shape, keep_shape;
    double scale = 1;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, const Shape& dims, bool keepdim) {
    const char* op = name;
    const bool is_mean = std::string_view(name) == "mean";
    check::defined(op, x);
    uint32_t mask;
    Shape all;
    for (int d = 0; d < x.dim(); ++d) all.push_back(d);
    Shape keep = reduced_shape(op, x.shape(), dims.empty() ? all : dims, mask);
    double scale = 1;
    if (is_mean) {
      check::floating(op, x);
      const int64_t count = keep.numel() ? x.numel() / keep.numel() : 0;
      scale = 1.0 / static_cast<double>(count);  // mean of nothing is NaN, as in PyTorch
    }
    Tensor out = empty(keep, x.dtype(), x.device());
    Backend& be = backend(x.device(), op);
    be.reduce(ReduceOp::Sum, x, out);
    if (scale != 1) be.unary(UnaryOp::MulScalar, out, out, scale, 0);
    if (ctx) {
      ctx->input_shape = x.shape();
      ctx->keep_shape = keep;
      ctx->scale = scale;
    }
    return keepdim ? out : make_view(out, drop_dims(keep, mask), contiguous_strides(drop_dims(keep, mask)), 0);
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    Tensor gk = reshape(g, ctx.keep_shape);
    if (ctx.scale != 1) gk = mul(gk, ctx.scale);
    return {expand(gk, ctx.input_shape)};
  }
};

/// max()/min() over every element; the gradient is shared evenly by the elements equal to it.
template <ReduceOp kOp>
struct ExtremeAllOp {
  static constexpr const char* name = kOp == ReduceOp::Max ? "max" : "min";
  using Ctx = OpContext;
  static Tensor forward(Ctx* ctx, const Tensor& x) {
    check::defined(name, x);
    if (x.numel() == 0) fail(name, "cannot reduce an empty tensor (shape {})", x.shape());
    Tensor keep = empty(Shape::filled(x.dim(), 1), x.dtype(), x.device());
    backend(x.device(), name).reduce(kOp, x, keep);
    Tensor out = make_view(keep, {}, {}, 0);
    if (ctx) ctx->save(x, out);
    return out;
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    auto [x, out] = ctx.saved<2>(name);
    Tensor mask = eq(x, out);
    return {mul(mask, div(g, sum(mask)))};
  }
};

/// max/min along one dim: values with the index of the chosen element.
template <ReduceOp kOp>
struct ExtremeDimOp {
  static constexpr const char* name = kOp == ReduceOp::Max ? "max_dim" : "min_dim";  // max(x) is "max"
  static constexpr const char* display_name = kOp == ReduceOp::Max ? "max" : "min";
  struct Ctx : OpContext {
    Shape input_shape, keep_shape;
    int dim = 0;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, int64_t dim_arg, bool keepdim, Tensor* indices_out) {
    check::defined(display_name, x);
    const int dim = wrap_dim(display_name, dim_arg, x.dim());
    if (x.dim() > 0 && x.shape()[dim] == 0)
      fail(display_name, "cannot reduce dim {} of size 0 (shape {})", dim, x.shape());
    Shape keep = x.shape();
    if (x.dim() > 0) keep[dim] = 1;
    Tensor values = empty(keep, x.dtype(), x.device());
    Tensor indices = empty(keep, kInt64, x.device());
    if (x.dim() == 0) {
      backend(x.device(), display_name).copy(x, values);
      backend(x.device(), display_name).fill(indices, 0);
    } else {
      backend(x.device(), display_name).arg_reduce(kOp, x, dim, values, indices);
    }
    if (ctx) {
      ctx->input_shape = x.shape();
      ctx->keep_shape = keep;
      ctx->dim = dim;
      ctx->save(indices);
    }
    Shape out_shape = keep;
    if (!keepdim && x.dim() > 0) out_shape.erase(dim);
    *indices_out = keepdim ? indices : make_view(indices, out_shape, contiguous_strides(out_shape), 0);
    return keepdim ? values : make_view(values, out_shape, contiguous_strides(out_shape), 0);
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    Tensor indices = ctx.saved(0, display_name);
    Tensor grad = zeros(ctx.input_shape, g.dtype(), g.device());
    if (ctx.input_shape.size() == 0) return {reshape(g, {})};
    backend(g.device(), display_name).scatter_add(grad, ctx.dim, indices, contiguous(reshape(g, ctx.keep_shape)));
    return {grad};
  }
};

constexpr char kSum[] = "sum", kMean[] = "mean";

}  // namespace

Tensor sum(const Tensor& x) { return apply<SumOp<kSum>>(x, Shape{}, false); }
Tensor sum(const Tensor& x, const Shape& dims, bool keepdim) { return apply<SumOp<kSum>>(x, dims, keepdim); }
Tensor mean(const Tensor& x) { return apply<SumOp<kMean>>(x, Shape{}, false); }
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) { return apply<SumOp<kMean>>(x, dims, keepdim); }
Tensor var(const Tensor& x) { return var(x, Shape{}, 1, false); }
Tensor var(const Tensor& x, const Shape& dims, int64_t correction, bool keepdim) {
  const char* op = "var";
  check::defined(op, x);
  check::floating(op, x);
  if (correction < 0) fail(op, "correction must be 0 or more; got {}", correction);
  uint32_t mask;
  Shape all;
  for (int d = 0; d < x.dim(); ++d) all.push_back(d);
  const Shape keep = reduced_shape(op, x.shape(), dims.empty() ? all : dims, mask);  // checks the dims
  const int64_t count = keep.numel() ? x.numel() / keep.numel() : 0;
  const Tensor centered = sub(x, mean(x, dims, true));
  const Tensor squares = sum(mul(centered, centered), dims, keepdim);
  // N - correction clamped at 0, as PyTorch: 0/0 is NaN, a positive sum over 0 is inf.
  return div(squares, static_cast<double>(std::max<int64_t>(count - correction, 0)));
}

Tensor max(const Tensor& x) { return apply<ExtremeAllOp<ReduceOp::Max>>(x); }
Tensor min(const Tensor& x) { return apply<ExtremeAllOp<ReduceOp::Min>>(x); }

std::tuple<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor indices;
  Tensor values = apply<ExtremeDimOp<ReduceOp::Max>>(x, dim, keepdim, &indices);
  return {values, indices};
}
std::tuple<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor indices;
  Tensor values = apply<ExtremeDimOp<ReduceOp::Min>>(x, dim, keepdim, &indices);
  return {values, indices};
}
namespace {
// Traced as one op each (the exporter writes ArgMax / ArgMin), not as max/min's values.
struct ArgMaxOp {
  static constexpr const char* name = "argmax";
};
struct ArgMinOp {
  static constexpr const char* name = "argmin";
};
}  // namespace

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  return trace::composite<ArgMaxOp>({x}, {trace::to_attr(dim), trace::to_attr(keepdim)}, [&] {
    NoGradGuard no_grad;
    return std::get<1>(max(x, dim, keepdim));
  });
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  return trace::composite<ArgMinOp>({x}, {trace::to_attr(dim), trace::to_attr(keepdim)}, [&] {
    NoGradGuard no_grad;
    return std::get<1>(min(x, dim, keepdim));
  });
}

namespace {
/// x - m and log(sum(exp(x - m))) over dims (keepdim), with m the max over dims taken as a
/// constant: the shift only keeps exp() in range and cancels in every result built from the two.
struct ShiftedLse {
  Tensor shifted, lse, m;  // x - m, log(sum(exp(x - m))) (keepdim), m (keepdim, no grad)
};
ShiftedLse shifted_logsumexp(const char* op, const Tensor& x, const Shape& dims) {
  check::defined(op, x);
  check::floating(op, x);
  uint32_t mask;
  reduced_shape(op, x.shape(), dims, mask);
  Tensor m;
  {
    NoGradGuard no_grad;
    m = x.detach();
    for (int d = 0; d < x.dim(); ++d)
      if (mask & (1u << d)) m = std::get<0>(max(m, d, true));
    // Infinite maxima would give inf - inf = NaN: shift by 0 there (an all -inf row stays -inf).
    m = where(eq(abs(m), INFINITY), zeros({}, x.dtype(), x.device()), m);
  }
  Tensor shifted = sub(x, m);
  return {shifted, log(sum(exp(shifted), dims, true)), m};
}
}  // namespace

Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim) {
  auto [shifted, lse, m] = shifted_logsumexp("logsumexp", x, dims);
  Tensor out = add(lse, m);
  if (keepdim) return out;
  uint32_t mask;
  Shape keep = reduced_shape("logsumexp", x.shape(), dims, mask);
  return reshape(out, drop_dims(keep, mask));
}

// Both are traced as one op each (the exporter writes Softmax / LogSoftmax), not as their pieces.
namespace {
struct LogSoftmaxOp {
  static constexpr const char* name = "log_softmax";
};
struct SoftmaxOp {
  static constexpr const char* name = "softmax";
};
}  // namespace

Tensor log_softmax(const Tensor& x, int64_t dim) {
  return trace::composite<LogSoftmaxOp>({x}, {trace::to_attr(dim)}, [&] {
    // (x - m) - log(sum(exp(x - m))): subtracting small numbers keeps float32 precision where
    // x - logsumexp(x) would lose it for large logits.
    auto [shifted, lse, m] = shifted_logsumexp("log_softmax", x, {dim});
    return sub(shifted, lse);
  });
}

Tensor softmax(const Tensor& x, int64_t dim) {
  return trace::composite<SoftmaxOp>({x}, {trace::to_attr(dim)}, [&] {
    auto [shifted, lse, m] = shifted_logsumexp("softmax", x, {dim});
    Tensor e = exp(shifted);
    return div(e, sum(e, {dim}, true));
  });
}

}  // namespace latent
