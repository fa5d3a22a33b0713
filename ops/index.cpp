// index_select / gather / scatter_add: validation (dtype, rank, shapes, every index value), the
// kernel call, and backwards that are each other's adjoints (index_select <-> index_add,
// gather <-> scatter_add). 0-d inputs are handled as one-element 1-d tensors.
#include "index.h"

#include "apply.h"
#include "backend.h"
#include "check.h"
#include "creation.h"
#include "shape_ops.h"

namespace latent {
namespace {

/// index is defined, int64 and on x's device ("[gather] index must be int64; got float32").
void check_index_tensor(const char* op, const Tensor& x, const Tensor& index) {
  check::defined(op, x, "input");
  check::defined(op, index, "index");
  if (index.dtype() != kInt64) fail(op, "index must be int64; got {}", index.dtype());
  check::same_device(op, x, index);
}

/// Every index value lies in [0, size) ("[gather] index 7 is out of range for dim 1 of size 5").
/// Runs before any kernel, so kernels never see a bad index.
void check_index_values(const char* op, const Tensor& index, int dim, int64_t size) {
  auto check_one = [&](int64_t i) {
    if (i < 0 || i >= size) fail(op, "index {} is out of range for dim {} of size {}", i, dim, size);
  };
  if (index.numel() == 0) return;
  if (index.device().is_cpu() && index.is_contiguous()) {  // the common case: no copy, no allocation
    const int64_t* p = index.data_ptr<int64_t>();
    for (int64_t k = 0, n = index.numel(); k < n; ++k) check_one(p[k]);
    return;
  }
  const Tensor host = index.device().is_cpu() ? index : index.to(kCPU);
  for (int64_t i : host.to_vector<int64_t>()) check_one(i);
}

/// index.size(d) <= x.size(d) for every d (except `skip`), naming what x is in the message.
void check_index_fits(const char* op, const Tensor& index, const Tensor& x, const char* what, int skip) {
  for (int d = 0; d < x.dim(); ++d) {
    if (d != skip && index.shape()[d] > x.shape()[d])
      fail(op, "index shape {} does not fit {} shape {} at dim {} ({} > {})", index.shape(), what, x.shape(), d,
           index.shape()[d], x.shape()[d]);
  }
}

/// index and the other tensors share one rank ("[gather] index has 3 dims but input has 2 ...").
void check_same_rank(const char* op, const Tensor& index, const Tensor& x, const char* what) {
  if (index.dim() != x.dim())
    fail(op, "index has {} dims but {} has {}; they must have the same number of dims (index shape {}, {} shape {})",
         index.dim(), what, x.dim(), index.shape(), what, x.shape());
}

/// Arguments already validated by the public function; dim wrapped, x at least 1-d.
struct IndexSelectOp {
  static constexpr const char* name = "index_select";
  struct Ctx : OpContext {
    Shape input_shape;
    int dim = 0;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, int dim, const Tensor& index) {
    Shape shape = x.shape();
    shape[dim] = index.numel();
    Tensor out = empty(shape, x.dtype(), x.device());
    if (out.numel() > 0) backend(x.device(), name).index_select(x, dim, index, out);
    if (ctx) {
      ctx->input_shape = x.shape();
      ctx->dim = dim;
      ctx->save(index);
    }
    return out;
  }
  static std::array<Tensor, 2> backward(const Ctx& ctx, const Tensor& g) {
    Tensor index = ctx.saved(0, name);
    Tensor grad = zeros(ctx.input_shape, g.dtype(), g.device());
    if (g.numel() > 0) backend(g.device(), name).index_add(grad, ctx.dim, index, g);
    return {grad, Tensor()};
  }
};

struct GatherOp {
  static constexpr const char* name = "gather";
  struct Ctx : OpContext {
    Shape input_shape;
    int dim = 0;
  };
  static Tensor forward(Ctx* ctx, const Tensor& x, int dim, const Tensor& index) {
    Tensor out = empty(index.shape(), x.dtype(), x.device());
    if (out.numel() > 0) backend(x.device(), name).gather(x, dim, index, out);
    if (ctx) {
      ctx->input_shape = x.shape();
      ctx->dim = dim;
      ctx->save(index);
    }
    return out;
  }
  static std::array<Tensor, 2> backward(const Ctx& ctx, const Tensor& g) {
    Tensor index = ctx.saved(0, name);
    Tensor grad = zeros(ctx.input_shape, g.dtype(), g.device());
    if (g.numel() > 0) backend(g.device(), name).scatter_add(grad, ctx.dim, index, g);
    return {grad, Tensor()};
  }
};

struct ScatterAddOp {
  static constexpr const char* name = "scatter_add";
  struct Ctx : OpContext {
    Shape src_shape;
    int dim = 0;
  };
  static Tensor forward(Ctx* ctx, const Tensor& self, int dim, const Tensor& index, const Tensor& src) {
    Tensor out = empty(self.shape(), self.dtype(), self.device());
    Backend& be = backend(self.device(), name);
    be.copy(self, out);
    if (index.numel() > 0) be.scatter_add(out, dim, index, src);
    if (ctx) {
      ctx->src_shape = src.shape();
      ctx->dim = dim;
      ctx->save(index);
    }
    return out;
  }
  static std::array<Tensor, 3> backward(const Ctx& ctx, const Tensor& g) {
    Tensor grad_src;
    if (ctx.needs_grad(2)) {
      Tensor index = ctx.saved(0, name);
      // src may be larger than index; its elements beyond index's extent were not used: gradient 0.
      grad_src = zeros(ctx.src_shape, g.dtype(), g.device());
      if (index.numel() > 0) {
        Tensor used = make_view(grad_src, index.shape(), grad_src.strides(), 0);
        backend(g.device(), name).gather(g, ctx.dim, index, used);
      }
    }
    return {ctx.needs_grad(0) ? g : Tensor(), Tensor(), grad_src};
  }
};

}  // namespace

Tensor index_select(const Tensor& x, int64_t dim_arg, const Tensor& index) {
  const char* op = IndexSelectOp::name;
  check_index_tensor(op, x, index);
  if (index.dim() > 1) fail(op, "index must be 0-d or 1-d; got shape {}", index.shape());
  const int dim = wrap_dim(op, dim_arg, x.dim());
  if (x.dim() == 0) {
    if (index.numel() != 1) fail(op, "index must have one element for a 0-d input; got shape {}", index.shape());
    check_index_values(op, index, dim, 1);
    return reshape(apply<IndexSelectOp>(reshape(x, {1}), 0, index), {});
  }
  check_index_values(op, index, dim, x.shape()[dim]);
  return apply<IndexSelectOp>(x, dim, index);
}

Tensor gather(const Tensor& x, int64_t dim_arg, const Tensor& index) {
  const char* op = GatherOp::name;
  check_index_tensor(op, x, index);
  check_same_rank(op, index, x, "input");
  const int dim = wrap_dim(op, dim_arg, x.dim());
  if (x.dim() == 0) {
    check_index_values(op, index, dim, 1);
    return reshape(apply<GatherOp>(reshape(x, {1}), 0, reshape(index, {1})), {});
  }
  check_index_fits(op, index, x, "input", dim);
  check_index_values(op, index, dim, x.shape()[dim]);
  return apply<GatherOp>(x, dim, index);
}

Tensor scatter_add(const Tensor& self, int64_t dim_arg, const Tensor& index, const Tensor& src) {
  const char* op = ScatterAddOp::name;
  check_index_tensor(op, self, index);
  check::defined(op, src, "src");
  check::same_device(op, self, src);
  if (self.dtype() != src.dtype())
    fail(op, "self and src must have the same dtype; got {} and {}", self.dtype(), src.dtype());
  check_same_rank(op, index, self, "self");
  check_same_rank(op, index, src, "src");
  const int dim = wrap_dim(op, dim_arg, self.dim());
  if (self.dim() == 0) {
    check_index_values(op, index, dim, 1);
    return reshape(apply<ScatterAddOp>(reshape(self, {1}), 0, reshape(index, {1}), reshape(src, {1})), {});
  }
  check_index_fits(op, index, src, "src", -1);
  check_index_fits(op, index, self, "self", dim);
  check_index_values(op, index, dim, self.shape()[dim]);
  return apply<ScatterAddOp>(self, dim, index, src);
}

}  // namespace latent
