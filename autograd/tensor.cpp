#include "tensor.h"

#include <fmt/format.h>

#include <ostream>

#include "node.h"
#include "small_alloc.h"

namespace latent {

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const int n = std::max(a.size(), b.size());
  Shape out = Shape::filled(n, 1);
  for (int i = 0; i < n; ++i) {
    int ia = a.size() - n + i, ib = b.size() - n + i;
    int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1)
      fail(op, "shapes {} and {} cannot broadcast: {} != {} at dim {}", a, b, da, db, i);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim("size", d, dim())]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim("stride", d, dim())]; }

bool Tensor::requires_grad() const { return impl_->requires_grad || impl_->grad_fn != nullptr; }

Tensor& Tensor::requires_grad_(bool requires_grad) {
  if (!defined()) fail("requires_grad_", "tensor is undefined");
  if (!is_leaf())
    fail("requires_grad_", "only leaves can change requires_grad; this tensor was produced by '{}' (use detach())",
         impl_->grad_fn->name());
  if (requires_grad && !is_floating_point())
    fail("requires_grad_", "only float32 and float64 tensors can require grad; got {}", dtype());
  impl_->requires_grad = requires_grad;
  return *this;
}

Tensor Tensor::grad() const { return impl_->grad ? Tensor(impl_->grad) : Tensor(); }

void Tensor::set_grad(const Tensor& grad) {
  if (grad.defined() && !(grad.shape() == shape()))
    fail("set_grad", "gradient shape {} does not match tensor shape {}", grad.shape(), shape());
  impl_->grad = grad.defined() ? grad.impl_ptr() : nullptr;
}

void Tensor::zero_grad() { impl_->grad.reset(); }

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  run_backward(*this, gradient, retain_graph);
}

Tensor Tensor::detach() const {
  auto impl = std::allocate_shared<TensorImpl>(PoolAllocator<TensorImpl>());
  impl->storage = impl_->storage;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->offset = impl_->offset;
  impl->dtype = impl_->dtype;
  impl->contiguous = impl_->contiguous;
  return Tensor(std::move(impl));
}

std::string Tensor::describe() const {
  if (!defined()) return "Tensor[undefined]";
  std::string s = fmt::format("Tensor[shape={}, dtype={}, device={}, requires_grad={}", shape(), dtype(), device(),
                              requires_grad());
  if (grad_fn()) s += fmt::format(", grad_fn={}", grad_fn()->name());
  return s + "]";
}

namespace {
void format_values(std::string& out, const Tensor& t, int d, int64_t offset) {
  constexpr int64_t kEdge = 3;  // show 3 leading and 3 trailing entries per dim
  const int64_t n = t.shape()[d];
  out += '[';
  for (int64_t i = 0; i < n; ++i) {
    if (n > 2 * kEdge && i == kEdge) {
      out += "..., ";
      i = n - kEdge;
    }
    int64_t off = offset + i * t.strides()[d];
    if (d + 1 == t.dim()) {
      if (t.dtype() == kInt64) out += fmt::format("{}", detail::read_as<int64_t>(t, off));
      else out += fmt::format("{:.6g}", detail::read_as<double>(t, off));
    } else {
      format_values(out, t, d + 1, off);
    }
    if (i + 1 < n) out += ", ";
  }
  out += ']';
}
}  // namespace

std::string Tensor::to_string() const {
  std::string s = describe();
  if (!defined()) return s;
  const Tensor host = detail::host_view(*this, "to_string");
  s += '\n';
  if (dim() == 0) s += fmt::format("{:.6g}", detail::read_as<double>(host, host.storage_offset()));
  else format_values(s, host, 0, host.storage_offset());
  return s;
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

Tensor empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t s : shape)
    if (s < 0) fail("empty", "negative size in shape {}", shape);
  auto impl = std::allocate_shared<TensorImpl>(PoolAllocator<TensorImpl>());
  impl->storage = std::allocate_shared<Storage>(PoolAllocator<Storage>(), static_cast<size_t>(shape.numel()) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  impl->contiguous = true;
  return Tensor(std::move(impl));
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::allocate_shared<TensorImpl>(PoolAllocator<TensorImpl>());
  impl->storage = base.storage();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  impl->contiguous = compute_contiguous(shape, strides);
  return Tensor(std::move(impl));
}

namespace detail {
int64_t element_offset(const Tensor& t, std::initializer_list<int64_t> index, const char* op) {
  if (static_cast<int>(index.size()) != t.dim())
    fail(op, "index has {} values for a {}-d tensor of shape {}", index.size(), t.dim(), t.shape());
  int64_t off = t.storage_offset();
  int d = 0;
  for (int64_t i : index) {
    int64_t n = t.shape()[d];
    if (i < -n || i >= n) fail(op, "index {} is out of range for dim {} of size {}", i, d, n);
    off += (i < 0 ? i + n : i) * t.strides()[d];
    ++d;
  }
  return off;
}
Tensor host_view(const Tensor& t, const char* op) {
  if (!t.defined()) fail(op, "tensor is undefined");
  if (t.device().is_cpu()) return t;
  const size_t nbytes = t.storage()->nbytes();
  auto impl = std::allocate_shared<TensorImpl>(PoolAllocator<TensorImpl>());
  impl->storage = std::allocate_shared<Storage>(PoolAllocator<Storage>(), nbytes, kCPU);
  if (nbytes) allocator_for(t.device()).copy_to_host(impl->storage->data(), t.storage()->data(), nbytes);
  impl->shape = t.shape();
  impl->strides = t.strides();
  impl->offset = t.storage_offset();
  impl->dtype = t.dtype();
  impl->contiguous = t.is_contiguous();
  return Tensor(std::move(impl));
}

void check_cpu(const Tensor& t, const char* op) {
  if (!t.defined()) fail(op, "tensor is undefined");
  if (!t.device().is_cpu()) fail(op, "tensor is on {}; move it to cpu first with .to(kCPU)", t.device());
}
}  // namespace detail

}  // namespace latent
