// View ops and copies. Each view computes the new (shape, strides, offset) over the same storage.
#include "shape_ops.h"

#include "apply.h"
#include "backend.h"
#include "check.h"
#include "creation.h"
#include "reduce.h"

namespace latent {
namespace {

/// Resolves one -1 in `shape` against numel ("[view] shape [-1, 5] is invalid for input of size 12").
Shape infer_shape(const char* op, const Shape& shape, int64_t numel) {
  Shape out = shape;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      if (infer >= 0) fail(op, "only one dim can be -1; got shape {}", shape);
      infer = i;
    } else if (out[i] < 0) {
      fail(op, "invalid size {} in shape {}", out[i], shape);
    } else {
      known *= out[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel % known != 0) fail(op, "shape {} is invalid for input of size {}", shape, numel);
    out[infer] = numel / known;
  } else if (known != numel) {
    fail(op, "shape {} is invalid for input of size {}", shape, numel);
  }
  return out;
}

/// Strides that view x's data as `shape`, when the layout allows it. Old dims are walked from the
/// innermost in groups that are contiguous with each other (stride[d-1] == stride[d] * size[d]);
/// each group must split exactly into consecutive new dims.
bool view_strides(const Tensor& x, const Shape& shape, Shape& strides) {
  if (x.is_contiguous() || x.numel() == 0) {
    strides = contiguous_strides(shape);
    return true;
  }
  const Shape& old_shape = x.shape();
  const Shape& old_strides = x.strides();
  strides = Shape::filled(shape.size(), 0);
  int view_d = shape.size() - 1;
  int64_t base_stride = old_strides[old_shape.size() - 1];
  int64_t group_numel = 1, view_numel = 1;
  for (int d = old_shape.size() - 1; d >= 0; --d) {
    group_numel *= old_shape[d];
    const bool group_ends =
        d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != group_numel * base_stride);
    if (!group_ends) continue;
    while (view_d >= 0 && (view_numel < group_numel || shape[view_d] == 1)) {
      strides[view_d] = view_numel * base_stride;
      view_numel *= shape[view_d];
      --view_d;
    }
    if (view_numel != group_numel) return false;
    if (d > 0) {
      base_stride = old_strides[d - 1];
      group_numel = 1;
      view_numel = 1;
    }
  }
  return view_d < 0;
}

struct ViewOp {
  static constexpr const char* name = "view";
  struct Ctx : OpContext {
    Shape input_shape;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, const Shape& shape, const char* op) {
    check::defined(op, x);
    Shape target = infer_shape(op, shape, x.numel());
    Shape strides;
    if (!view_strides(x, target, strides))
      fail(op, "shape {} is not compatible with the layout of the input (shape {}, strides {}); use reshape()",
           target, x.shape(), x.strides());
    if (ctx) ctx->input_shape = x.shape();
    return make_view(x, target, strides, x.storage_offset());
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) { return {reshape(g, ctx.input_shape)}; }
};

struct PermuteOp {
  static constexpr const char* name = "permute";
  struct Ctx : OpContext {
    Shape inverse;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, const Shape& dims) {
    check::defined(name, x);
    if (dims.size() != x.dim()) fail(name, "got {} dims {} for a {}-d tensor", dims.size(), dims, x.dim());
    Shape shape = x.shape(), strides = x.strides(), inverse = Shape::filled(x.dim(), -1);
    for (int i = 0; i < dims.size(); ++i) {
      int d = wrap_dim(name, dims[i], x.dim());
      if (inverse[d] != -1) fail(name, "dim {} appears twice in {}", d, dims);
      inverse[d] = i;
      shape[i] = x.shape()[d];
      strides[i] = x.strides()[d];
    }
    if (ctx) ctx->inverse = inverse;
    return make_view(x, shape, strides, x.storage_offset());
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) { return {permute(g, ctx.inverse)}; }
};

struct SliceOp {
  static constexpr const char* name = "slice";
  struct Ctx : OpContext {
    Shape input_shape;
    int dim = 0;
    int64_t start = 0, end = 0, step = 1;
  };
  /// start/end already normalised to 0 <= start <= end <= size.
  static Tensor forward(Ctx* ctx, const Tensor& x, int dim, int64_t start, int64_t end, int64_t step) {
    Shape shape = x.shape(), strides = x.strides();
    shape[dim] = end > start ? (end - start + step - 1) / step : 0;
    strides[dim] *= step;
    if (ctx) {
      ctx->input_shape = x.shape();
      ctx->dim = dim;
      ctx->start = start;
      ctx->end = end;
      ctx->step = step;
    }
    return make_view(x, shape, strides, x.storage_offset() + start * x.strides()[dim]);
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    Tensor grad = zeros(ctx.input_shape, g.dtype(), g.device());
    slice(grad, ctx.dim, ctx.start, ctx.end, ctx.step).copy_(g);
    return {grad};
  }
};

struct SelectOp {
  static constexpr const char* name = "select";
  struct Ctx : OpContext {
    Shape input_shape;
    int dim = 0;
    int64_t index = 0;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, int64_t dim_arg, int64_t index) {
    check::defined(name, x);
    if (x.dim() == 0) fail(name, "cannot select from a 0-d tensor");
    const int dim = wrap_dim(name, dim_arg, x.dim());
    const int64_t n = x.shape()[dim];
    if (index < -n || index >= n) fail(name, "index {} is out of range for dim {} of size {}", index, dim, n);
    if (index < 0) index += n;
    Shape shape = x.shape(), strides = x.strides();
    shape.erase(dim);
    strides.erase(dim);
    if (ctx) {
      ctx->input_shape = x.shape();
      ctx->dim = dim;
      ctx->index = index;
    }
    return make_view(x, shape, strides, x.storage_offset() + index * x.strides()[dim]);
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    Tensor grad = zeros(ctx.input_shape, g.dtype(), g.device());
    select(grad, ctx.dim, ctx.index).copy_(g);
    return {grad};
  }
};

struct ExpandOp {
  static constexpr const char* name = "expand";
  struct Ctx : OpContext {
    Shape input_shape;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, const Shape& shape) {
    check::defined(name, x);
    if (shape.size() < x.dim())
      fail(name, "the target shape {} has fewer dims than the input shape {}", shape, x.shape());
    const int lead = shape.size() - x.dim();
    Shape out_shape = shape, strides = Shape::filled(shape.size(), 0);
    for (int d = 0; d < shape.size(); ++d) {
      if (d < lead) {
        if (shape[d] < 0) fail(name, "size -1 is not allowed in a new leading dim of {}", shape);
        continue;
      }
      const int64_t in = x.shape()[d - lead];
      if (shape[d] == -1 || shape[d] == in) {
        out_shape[d] = in;
        strides[d] = x.strides()[d - lead];
      } else if (in == 1) {
        strides[d] = 0;
      } else {
        fail(name, "cannot expand shape {} to {}: size {} at dim {} is not 1", x.shape(), shape, in, d - lead);
      }
    }
    if (ctx) ctx->input_shape = x.shape();
    return make_view(x, out_shape, strides, x.storage_offset());
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) { return {sum_to(g, ctx.input_shape)}; }
};

struct CopyOp {
  static constexpr const char* name = "clone";
  struct Ctx : OpContext {
    DType input_dtype = kFloat32;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, DType dtype) {
    check::defined(name, x);
    Tensor out = empty(x.shape(), dtype, x.device());
    backend(x.device(), name).copy(x, out);
    if (ctx) ctx->input_dtype = x.dtype();
    return out;
  }
  static std::array<Tensor, 1> backward(const Ctx& ctx, const Tensor& g) {
    return {g.dtype() == ctx.input_dtype ? g : to_dtype(g, ctx.input_dtype)};
  }
};

}  // namespace

Tensor view(const Tensor& x, const Shape& shape) { return apply<ViewOp>(x, shape, "view"); }

Tensor reshape(const Tensor& x, const Shape& shape) {
  check::defined("reshape", x);
  Shape target = infer_shape("reshape", shape, x.numel()), strides;
  if (view_strides(x, target, strides)) return apply<ViewOp>(x, target, "reshape");
  return apply<ViewOp>(clone(x), target, "reshape");
}

Tensor permute(const Tensor& x, const Shape& dims) { return apply<PermuteOp>(x, dims); }

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  check::defined("transpose", x);
  const int n = x.dim();
  Shape dims = Shape::filled(n, 0);
  for (int i = 0; i < n; ++i) dims[i] = i;
  if (n == 0) return apply<PermuteOp>(x, dims);
  std::swap(dims[wrap_dim("transpose", dim0, n)], dims[wrap_dim("transpose", dim1, n)]);
  return apply<PermuteOp>(x, dims);
}

Tensor t(const Tensor& x) {
  check::defined("t", x);
  if (x.dim() > 2) fail("t", "expects a tensor with at most 2 dims; got {} (shape {}); use transpose()", x.dim(), x.shape());
  return x.dim() < 2 ? transpose(x, 0, 0) : transpose(x, 0, 1);
}

Tensor slice(const Tensor& x, int64_t dim_arg, int64_t start, int64_t end, int64_t step) {
  check::defined("slice", x);
  if (x.dim() == 0) fail("slice", "cannot slice a 0-d tensor");
  if (step <= 0) fail("slice", "step must be positive; got {}", step);
  const int dim = wrap_dim("slice", dim_arg, x.dim());
  const int64_t n = x.shape()[dim];
  auto clamp_index = [n](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + n : i, 0, n); };
  start = clamp_index(start);
  end = std::max(clamp_index(end), start);
  return apply<SliceOp>(x, dim, start, end, step);
}

Tensor narrow(const Tensor& x, int64_t dim_arg, int64_t start, int64_t length) {
  check::defined("narrow", x);
  if (x.dim() == 0) fail("narrow", "cannot narrow a 0-d tensor");
  const int dim = wrap_dim("narrow", dim_arg, x.dim());
  const int64_t n = x.shape()[dim];
  if (start < 0) start += n;
  if (start < 0 || length < 0 || start + length > n)
    fail("narrow", "start {} and length {} are out of range for dim {} of size {}", start, length, dim, n);
  return apply<SliceOp>(x, dim, start, start + length, int64_t{1});
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) { return apply<SelectOp>(x, dim, index); }
Tensor expand(const Tensor& x, const Shape& shape) { return apply<ExpandOp>(x, shape); }

Tensor squeeze(const Tensor& x) {
  check::defined("squeeze", x);
  Shape shape;
  for (int64_t s : x.shape())
    if (s != 1) shape.push_back(s);
  return apply<ViewOp>(x, shape, "squeeze");
}

Tensor squeeze(const Tensor& x, int64_t dim_arg) {
  check::defined("squeeze", x);
  if (x.dim() == 0) return apply<ViewOp>(x, Shape{}, "squeeze");
  const int dim = wrap_dim("squeeze", dim_arg, x.dim());
  Shape shape = x.shape();
  if (shape[dim] == 1) shape.erase(dim);
  return apply<ViewOp>(x, shape, "squeeze");
}

Tensor unsqueeze(const Tensor& x, int64_t dim_arg) {
  check::defined("unsqueeze", x);
  const int dim = wrap_dim("unsqueeze", dim_arg, x.dim() + 1);
  Shape shape = x.shape();
  shape.insert(dim, 1);
  return apply<ViewOp>(x, shape, "unsqueeze");
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  check::defined("flatten", x);
  if (x.dim() == 0) return reshape(x, {1});
  const int s = wrap_dim("flatten", start_dim, x.dim()), e = wrap_dim("flatten", end_dim, x.dim());
  if (s > e) fail("flatten", "start_dim {} comes after end_dim {}", start_dim, end_dim);
  Shape shape;
  for (int d = 0; d < s; ++d) shape.push_back(x.shape()[d]);
  int64_t merged = 1;
  for (int d = s; d <= e; ++d) merged *= x.shape()[d];
  shape.push_back(merged);
  for (int d = e + 1; d < x.dim(); ++d) shape.push_back(x.shape()[d]);
  return reshape(x, shape);
}

Tensor clone(const Tensor& x) {
  check::defined("clone", x);
  return apply<CopyOp>(x, x.dtype());
}

Tensor contiguous(const Tensor& x) {
  check::defined("contiguous", x);
  return x.is_contiguous() ? x : clone(x);
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  check::defined("to", x);
  if (x.dtype() == dtype) return x;
  if (x.requires_grad() && !is_floating(dtype) && !is_half(dtype))
    fail("to", "cannot convert a tensor that requires grad to {}; detach() it first", dtype);
  return apply<CopyOp>(x, dtype);
}

}  // namespace latent
