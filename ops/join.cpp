// cat (one node over all inputs), stack (cat of unsqueezed inputs), and split / chunk (narrow views).
#include "join.h"

#include "apply.h"
#include "backend.h"
#include "check.h"
#include "shape_ops.h"

namespace latent {
namespace {

/// PyTorch's legacy rule: a 1-d tensor with no elements joins anything and is skipped.
bool is_legacy_empty(const Tensor& t) { return t.dim() == 1 && t.shape()[0] == 0; }

/// What cat produces: the output shape and promoted dtype, and the wrapped dim.
struct CatPlan {
  Shape shape;
  DType dtype = kFloat32;
  int dim = 0;
};

/// Validates the list and plans the output ("[cat] tensors have different dims: ..."); `op` names
/// the public function (cat or stack) in errors.
CatPlan plan_cat(const char* op, const std::vector<Tensor>& tensors, int64_t dim_arg) {
  if (tensors.empty()) fail(op, "expected a non-empty list of tensors");
  for (size_t i = 0; i < tensors.size(); ++i)
    if (!tensors[i].defined()) fail(op, "tensor {} is undefined", i);
  // The first tensor that is not skipped sets the rank and the sizes outside dim.
  size_t ref = 0;
  while (ref < tensors.size() && is_legacy_empty(tensors[ref])) ++ref;
  const bool all_empty = ref == tensors.size();
  if (all_empty) ref = 0;
  const Tensor& first = tensors[ref];
  if (first.dim() == 0) fail(op, "zero-dimensional tensor (at position {}) cannot be concatenated", ref);
  CatPlan plan;
  plan.dim = wrap_dim(op, dim_arg, first.dim());
  plan.shape = first.shape();
  plan.shape[plan.dim] = 0;
  plan.dtype = first.dtype();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (t.device() != first.device())
      fail(op, "expected all tensors on one device; got {} (tensor {}) and {} (tensor {})", first.device(), ref,
           t.device(), i);
    plan.dtype = promote_types(plan.dtype, t.dtype());
    if (is_legacy_empty(t) && !all_empty) continue;
    if (t.dim() == 0) fail(op, "zero-dimensional tensor (at position {}) cannot be concatenated", i);
    if (t.dim() != first.dim()) fail(op, "tensors have different dims: {} and {}", first.shape(), t.shape());
    for (int d = 0; d < t.dim(); ++d) {
      if (d != plan.dim && t.shape()[d] != first.shape()[d])
        fail(op, "sizes must match except in dim {}: tensor {} has shape {} and tensor {} has shape {} "
             "({} != {} at dim {})", plan.dim, ref, first.shape(), i, t.shape(), first.shape()[d], t.shape()[d], d);
    }
    plan.shape[plan.dim] += t.shape()[plan.dim];
  }
  return plan;
}

struct CatOp {
  static constexpr const char* name = "cat";
  struct Ctx : OpContext {
    int dim = 0;
    std::vector<int64_t> sizes;  // each input's size along dim; -1 for a skipped legacy empty
    std::vector<DType> dtypes;
  };
  static Tensor forward(Ctx* ctx, const std::vector<Tensor>& tensors, int64_t dim_arg, const char* op) {
    const CatPlan plan = plan_cat(op, tensors, dim_arg);
    const Device device = tensors[0].device();
    Tensor out = empty(plan.shape, plan.dtype, device);
    Backend& be = backend(device, op);
    int64_t start = 0;
    if (ctx) ctx->dim = plan.dim;
    for (const Tensor& t : tensors) {
      // A legacy empty joins a 1-d result as an ordinary size-0 piece; otherwise it is skipped.
      const bool skipped = is_legacy_empty(t) && plan.shape.size() != 1;
      const int64_t size = skipped ? -1 : t.shape()[plan.dim];
      if (ctx) {
        ctx->sizes.push_back(size);
        ctx->dtypes.push_back(t.dtype());
      }
      if (size <= 0) continue;
      // The slice of out that this input fills: same strides, shifted along dim.
      Shape part = plan.shape;
      part[plan.dim] = size;
      Tensor target = make_view(out, part, out.strides(), start * out.strides()[plan.dim]);
      be.copy(t, target);
      start += size;
    }
    return out;
  }
  static std::vector<Tensor> backward(const Ctx& ctx, const Tensor& g) {
    std::vector<Tensor> grads(ctx.sizes.size());
    int64_t start = 0;
    for (size_t i = 0; i < ctx.sizes.size(); ++i) {
      const int64_t size = ctx.sizes[i];
      // int64 inputs never require grad (only indices past the 32nd reach here for them).
      if (ctx.needs_grad(static_cast<int>(i)) && is_floating(ctx.dtypes[i])) {
        Tensor gi = size < 0 ? empty({0}, g.dtype(), g.device()) : narrow(g, ctx.dim, start, size);
        grads[i] = gi.dtype() == ctx.dtypes[i] ? gi : to_dtype(gi, ctx.dtypes[i]);
      }
      start += std::max<int64_t>(size, 0);
    }
    return grads;
  }
};

/// The dim of x that split and chunk cut, rejecting 0-d tensors.
int split_dim(const char* op, const Tensor& x, int64_t dim) {
  check::defined(op, x);
  if (x.dim() == 0) fail(op, "cannot {} a 0-d tensor", op);
  return wrap_dim(op, dim, x.dim());
}

}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) { return apply_list<CatOp>(tensors, dim, "cat"); }

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  if (tensors.empty()) fail("stack", "expected a non-empty list of tensors");
  for (size_t i = 0; i < tensors.size(); ++i)
    if (!tensors[i].defined()) fail("stack", "tensor {} is undefined", i);
  for (size_t i = 1; i < tensors.size(); ++i)
    if (!(tensors[i].shape() == tensors[0].shape()))
      fail("stack", "expects tensors of equal shape; tensor 0 has shape {} and tensor {} has shape {}",
           tensors[0].shape(), i, tensors[i].shape());
  const int d = wrap_dim("stack", dim, tensors[0].dim() + 1);
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const Tensor& t : tensors) parts.push_back(unsqueeze(t, d));
  return apply_list<CatOp>(parts, int64_t{d}, "stack");
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim_arg) {
  const int dim = split_dim("split", x, dim_arg);
  if (split_size <= 0) fail("split", "split_size must be positive; got {}", split_size);
  const int64_t n = x.shape()[dim];
  std::vector<Tensor> out;
  if (n == 0) out.push_back(narrow(x, dim, 0, 0));
  for (int64_t start = 0; start < n; start += split_size) out.push_back(narrow(x, dim, start, std::min(split_size, n - start)));
  return out;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim_arg) {
  const int dim = split_dim("split", x, dim_arg);
  const int64_t n = x.shape()[dim];
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) fail("split", "sizes must be non-negative; got [{}]", fmt::join(sizes, ", "));
    total += s;
  }
  if (total != n) fail("split", "sizes [{}] sum to {}, but dim {} has size {}", fmt::join(sizes, ", "), total, dim, n);
  std::vector<Tensor> out;
  out.reserve(sizes.size());
  int64_t start = 0;
  for (int64_t s : sizes) {
    out.push_back(narrow(x, dim, start, s));
    start += s;
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim_arg) {
  const int dim = split_dim("chunk", x, dim_arg);
  if (chunks <= 0) fail("chunk", "chunks must be positive; got {}", chunks);
  const int64_t n = x.shape()[dim];
  // PyTorch keeps the requested count of empty chunks when the dim is empty.
  if (n == 0) return split(x, std::vector<int64_t>(static_cast<size_t>(chunks), 0), dim);
  return split(x, (n + chunks - 1) / chunks, dim);
}

}  // namespace latent
