// Tensor: a strided view of a Storage plus its autograd metadata.
//
// The class is declared here, in autograd/, with the metadata accessors and the autograd entry
// points. The methods that compute (view, sum, add_, ...) are declared here for LibTorch-style
// use (x.view({2, 3}), x.sum()) and defined in ops/tensor_methods.cpp as one-line forwards to
// the free functions of ops/ (the same split as PyTorch's TensorBody.h).
#pragma once

#include <concepts>
#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "dtype.h"
#include "shape.h"
#include "storage.h"

namespace latent {

class Node;
class Tensor;

/// What a Tensor points to. Views share `storage`.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;  // in elements
  int64_t offset = 0;  // in elements
  DType dtype = kFloat32;
  bool contiguous = false;      // cached compute_contiguous(shape, strides); false is always safe
  bool requires_grad = false;   // meaningful for leaves; non-leaves require grad through grad_fn
  std::shared_ptr<Node> grad_fn;  // the node that produced this tensor (null for leaves)
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient of a leaf
};

/// A strided N-d tensor. Copying a Tensor copies a reference (as in LibTorch); use clone() for data.
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl_->shape; }
  const Shape& sizes() const { return impl_->shape; }
  const Shape& strides() const { return impl_->strides; }
  /// Size of one dim; negative dims count from the end.
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int dim() const { return impl_->shape.size(); }
  int64_t numel() const { return impl_->shape.numel(); }
  int64_t storage_offset() const { return impl_->offset; }
  DType dtype() const { return impl_->dtype; }
  DType scalar_type() const { return impl_->dtype; }
  Device device() const { return impl_->storage->device(); }
  size_t element_size() const { return dtype_size(dtype()); }
  bool is_contiguous() const { return impl_->contiguous; }
  bool is_floating_point() const { return is_floating(dtype()); }
  const std::shared_ptr<Storage>& storage() const { return impl_->storage; }
  /// Version counter of the storage: bumped by every in-place op on this tensor or a view of it.
  uint32_t version() const { return impl_->storage->version(); }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  /// True when both refer to the same TensorImpl.
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

  /// Pointer to the first element; T must match dtype() ("[data_ptr] ..." otherwise).
  template <class T> T* data_ptr() const;
  /// Untyped pointer to the first element.
  void* raw_data() const {
    return static_cast<char*>(impl_->storage->data()) + impl_->offset * static_cast<int64_t>(element_size());
  }
  /// The single value of a one-element tensor, converted to T.
  template <class T> T item() const;
  /// Element at a full index, converted to T (for tests and small tensors).
  template <class T> T at(std::initializer_list<int64_t> index) const;
  /// All elements in row-major order, converted to T.
  template <class T> std::vector<T> to_vector() const;

  // ---- autograd ----
  bool requires_grad() const;
  /// Marks a leaf as requiring grad ("[requires_grad_] ..." for non-leaves or int64).
  Tensor& requires_grad_(bool requires_grad = true);
  /// Accumulated gradient (undefined until a backward reaches this leaf).
  Tensor grad() const;
  void set_grad(const Tensor& grad);
  /// Drops the gradient (set_to_none, PyTorch's default).
  void zero_grad();
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
  bool is_leaf() const { return impl_->grad_fn == nullptr; }
  /// Runs backpropagation from this tensor. `gradient` is required for non-scalar tensors.
  void backward(const Tensor& gradient = {}, bool retain_graph = false) const;
  /// A view of the same data outside the graph (no grad_fn, requires_grad false).
  Tensor detach() const;

  // ---- views (share storage; defined in ops/) ----
  Tensor view(const Shape& shape) const;
  Tensor reshape(const Shape& shape) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor permute(const Shape& dims) const;
  Tensor t() const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor expand(const Shape& shape) const;
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  /// select(0, index): x[i] is row i.
  Tensor operator[](int64_t index) const;

  // ---- copies ----
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;

  // ---- reductions and math (defined in ops/) ----
  Tensor sum() const;
  Tensor sum(const Shape& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const Shape& dims, bool keepdim = false) const;
  /// One dim as an integer: x.sum(1), x.mean(-1, true) (templates, so x.sum({}) stays "all dims").
  template <class I>
    requires(std::integral<I> && !std::same_as<I, bool>)
  Tensor sum(I dim, bool keepdim = false) const {
    return sum(Shape{static_cast<int64_t>(dim)}, keepdim);
  }
  template <class I>
    requires(std::integral<I> && !std::same_as<I, bool>)
  Tensor mean(I dim, bool keepdim = false) const {
    return mean(Shape{static_cast<int64_t>(dim)}, keepdim);
  }
  /// Unbiased by default (correction 1), as PyTorch's var; see ops/reduce.h.
  Tensor var() const;
  Tensor var(const Shape& dims, int64_t correction = 1, bool keepdim = false) const;
  template <class I>
    requires(std::integral<I> && !std::same_as<I, bool>)
  Tensor var(I dim, int64_t correction = 1, bool keepdim = false) const {
    return var(Shape{static_cast<int64_t>(dim)}, correction, keepdim);
  }
  Tensor max() const;
  Tensor min() const;
  Tensor abs() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor pow(double exponent) const;
  /// Elementwise min(max(x, min), max), differentiable (gradient 0 where clamped).
  Tensor clamp(double min, double max) const;
  Tensor matmul(const Tensor& other) const;

  // ---- in-place (bump the version; not recorded by autograd) ----
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  Tensor& add_(double value);
  Tensor& sub_(const Tensor& other);
  Tensor& sub_(double value);
  Tensor& mul_(const Tensor& other);
  Tensor& mul_(double value);
  Tensor& div_(const Tensor& other);
  Tensor& div_(double value);
  Tensor& zero_();
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);
  Tensor& clamp_(double min, double max);

  /// "Tensor[shape=[2, 3], dtype=float32, device=cpu, requires_grad=true, grad_fn=MulBackward]".
  std::string describe() const;
  /// describe() followed by the values (at most 6 per dim shown).
  std::string to_string() const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

/// An uninitialised contiguous tensor (the building block of every op's output).
Tensor empty(const Shape& shape, DType dtype = kFloat32, Device device = kCPU);
/// A tensor viewing `base`'s storage with new shape, strides and offset (no autograd).
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

// ---- template definitions ----

template <class T>
T* Tensor::data_ptr() const {
  if (dtype_of<T>::value != dtype())
    fail("data_ptr", "tensor has dtype {}, requested {}", dtype(), dtype_of<T>::value);
  return static_cast<T*>(raw_data());
}

namespace detail {
/// Offset in elements of a full index, with bounds checks naming `op`.
int64_t element_offset(const Tensor& t, std::initializer_list<int64_t> index, const char* op);
template <class T>
T read_as(const Tensor& t, int64_t offset) {
  const char* base = static_cast<const char*>(t.storage()->data());
  return visit_any_dtype(t.dtype(), [&](auto tag) {
    using S = decltype(tag);
    return static_cast<T>(reinterpret_cast<const S*>(base)[offset]);
  });
}
void check_cpu(const Tensor& t, const char* op);
/// t itself on the CPU; for another device, a CPU tensor with t's shape, strides and offset over a
/// host copy of t's storage (what item(), at() and to_vector() read; like PyTorch's, they wait for the device).
Tensor host_view(const Tensor& t, const char* op);
}  // namespace detail

template <class T>
T Tensor::item() const {
  if (!defined()) fail("item", "tensor is undefined");
  if (numel() != 1) fail("item", "a tensor with {} elements cannot be converted to a scalar (shape {})", numel(), shape());
  if (!device().is_cpu()) {
    unsigned char bytes[8];  // one element of any dtype
    allocator_for(device()).copy_to_host(bytes, raw_data(), element_size());
    return visit_any_dtype(dtype(), [&](auto tag) {
      decltype(tag) v;
      std::memcpy(&v, bytes, sizeof v);
      return static_cast<T>(v);
    });
  }
  return detail::read_as<T>(*this, storage_offset());
}

template <class T>
T Tensor::at(std::initializer_list<int64_t> index) const {
  if (!defined()) fail("at", "tensor is undefined");
  const Tensor host = detail::host_view(*this, "at");
  return detail::read_as<T>(host, detail::element_offset(host, index, "at"));
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  if (!defined()) fail("to_vector", "tensor is undefined");
  if (!device().is_cpu()) return detail::host_view(*this, "to_vector").to_vector<T>();
  std::vector<T> out;
  out.reserve(static_cast<size_t>(numel()));
  const int n = dim();
  Shape index = Shape::filled(n, 0);
  for (int64_t k = 0, total = numel(); k < total; ++k) {
    int64_t off = storage_offset();
    for (int d = 0; d < n; ++d) off += index[d] * strides()[d];
    out.push_back(detail::read_as<T>(*this, off));
    for (int d = n - 1; d >= 0; --d) {
      if (++index[d] < shape()[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

}  // namespace latent
