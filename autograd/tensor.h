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
  std::shared_ptr<Storage> storage;  ///< the bytes, shared by every view of them
  Shape shape;                       ///< size of each dim
  Shape strides;                     ///< step of each dim, in elements (not bytes)
  int64_t offset = 0;                ///< first element's position in `storage`, in elements
  DType dtype = kFloat32;            ///< element type
  /// Cached compute_contiguous(shape, strides) (row-major, no gaps); false is always safe.
  bool contiguous = false;
  /// Set on leaves that collect a gradient; non-leaves require grad through `grad_fn`.
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;     ///< the node that produced this tensor (null for leaves)
  std::shared_ptr<TensorImpl> grad;  ///< accumulated gradient of a leaf (null until a backward reaches it)
};

/// A strided N-d tensor. Copying a Tensor copies a reference (as in LibTorch); use clone() for data.
class Tensor {
 public:
  /// An undefined tensor (defined() is false): the "no tensor" value of optional arguments.
  Tensor() = default;
  /// Wraps an existing impl, sharing it (ops and autograd build tensors this way; users call empty() or
  /// the creation ops of ops/creation.h).
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- metadata ----
  // The accessors below read the impl without checks: call them on a defined tensor only.

  /// Whether this refers to a tensor (false for a default-constructed Tensor).
  bool defined() const { return impl_ != nullptr; }
  /// Size of each dim.
  const Shape& shape() const { return impl_->shape; }
  /// Same as shape() (LibTorch's name).
  const Shape& sizes() const { return impl_->shape; }
  /// Step of each dim in elements (a contiguous [2, 3] tensor has strides [3, 1]).
  const Shape& strides() const { return impl_->strides; }
  /// Size of one dim; negative dims count from the end.
  int64_t size(int64_t dim) const;
  /// Stride of one dim in elements; negative dims count from the end ("[stride] ..." when out of range).
  int64_t stride(int64_t dim) const;
  /// Number of dims (0 for a scalar tensor).
  int dim() const { return impl_->shape.size(); }
  /// Number of elements (the product of the sizes; 1 for a 0-d tensor).
  int64_t numel() const { return impl_->shape.numel(); }
  /// Position of the first element in storage(), in elements.
  int64_t storage_offset() const { return impl_->offset; }
  /// Element type.
  DType dtype() const { return impl_->dtype; }
  /// Same as dtype() (LibTorch's name).
  DType scalar_type() const { return impl_->dtype; }
  /// Where the storage lives (kCPU, or kCUDA in a CUDA build).
  Device device() const { return impl_->storage->device(); }
  /// Bytes per element (dtype_size(dtype())).
  size_t element_size() const { return dtype_size(dtype()); }
  /// Whether the elements are laid out row-major without gaps (what raw_data() loops and BLAS calls need).
  bool is_contiguous() const { return impl_->contiguous; }
  /// Whether the dtype is float32 or float64 (the dtypes autograd and float math run on).
  bool is_floating_point() const { return is_floating(dtype()); }
  /// The shared buffer; views of one tensor return the same pointer.
  const std::shared_ptr<Storage>& storage() const { return impl_->storage; }
  /// Version counter of the storage: bumped by every in-place op on this tensor or a view of it.
  uint32_t version() const { return impl_->storage->version(); }
  /// The impl, not owned (null for an undefined tensor).
  TensorImpl* impl() const { return impl_.get(); }
  /// The shared impl (what Tensor(impl) takes back; autograd keeps gradients this way).
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
  /// Whether a backward through this tensor reaches leaves: a leaf marked by requires_grad_(), or any
  /// result of a recorded op (it has a grad_fn).
  bool requires_grad() const;
  /// Marks a leaf as requiring grad ("[requires_grad_] ..." for non-leaves or int64).
  Tensor& requires_grad_(bool requires_grad = true);
  /// Accumulated gradient (undefined until a backward reaches this leaf).
  Tensor grad() const;
  /// Replaces the accumulated gradient (shared, not copied); an undefined `grad` drops it. Throws
  /// "[set_grad] gradient shape ... does not match tensor shape ..." on a shape mismatch.
  void set_grad(const Tensor& grad);
  /// Drops the gradient (set_to_none, PyTorch's default).
  void zero_grad();
  /// The autograd node that produced this tensor (null for leaves and for results made under NoGradGuard).
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
  /// Whether no recorded op produced this tensor (created tensors, parameters, detach() results).
  bool is_leaf() const { return impl_->grad_fn == nullptr; }
  /// Runs backpropagation from this tensor. `gradient` is required for non-scalar tensors.
  void backward(const Tensor& gradient = {}, bool retain_graph = false) const;
  /// A view of the same data outside the graph (no grad_fn, requires_grad false).
  Tensor detach() const;

  // ---- views (share storage; defined in ops/) ----
  // Each forwards to the free function of the same name in ops/shape_ops.h (differentiable; errors
  // name that op).

  /// Same data, new shape; one dim may be -1 (inferred). Throws "[view] ..." when the element count
  /// differs or the strides cannot be viewed that way (use reshape()).
  Tensor view(const Shape& shape) const;
  /// view() when the strides allow it, otherwise a contiguous copy with the new shape.
  Tensor reshape(const Shape& shape) const;
  /// A view with dims dim0 and dim1 swapped (negative dims count from the end).
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  /// A view whose dim i is this tensor's dim dims[i]; dims must be a permutation of 0..dim()-1.
  Tensor permute(const Shape& dims) const;
  /// Transpose of a tensor with at most 2 dims (a view; 0-d and 1-d tensors come back as they are).
  Tensor t() const;
  /// A view of `length` elements of `dim` starting at `start` ("[narrow] ..." past the end).
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  /// Python-style x[start:end:step] along dim, as a view; negative start/end count from the end and
  /// out-of-range bounds clamp.
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  /// A view without `dim`, taking its element `index` (negative counts from the end).
  Tensor select(int64_t dim, int64_t index) const;
  /// Broadcasts size-1 dims (and new leading dims) to `shape` without copying (stride 0); -1 keeps a size.
  Tensor expand(const Shape& shape) const;
  /// A view without any size-1 dims.
  Tensor squeeze() const;
  /// A view without `dim` when its size is 1 (this tensor's shape otherwise).
  Tensor squeeze(int64_t dim) const;
  /// A view with a new size-1 dim at position `dim` (in [-(n+1), n]).
  Tensor unsqueeze(int64_t dim) const;
  /// Merges dims start_dim..end_dim (inclusive) into one, as a view when possible; a 0-d tensor gives
  /// shape [1].
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  /// select(0, index): x[i] is row i.
  Tensor operator[](int64_t index) const;

  // ---- copies ----
  /// This tensor itself when contiguous, else a contiguous copy (differentiable).
  Tensor contiguous() const;
  /// A contiguous copy with its own storage (differentiable: the gradient flows back to this tensor).
  Tensor clone() const;
  /// A copy converted to `dtype` (this tensor itself when it already has it). Between float32,
  /// float64, bfloat16 and float16 it is differentiable (the gradient converts back); a tensor that
  /// requires grad cannot go to an integer dtype ("[to] ... detach() it first").
  Tensor to(DType dtype) const;
  /// A copy on `device` (this tensor itself when already there); differentiable. Throws
  /// "[to] device cuda is not available: ..." when the build or machine has no such device.
  Tensor to(Device device) const;

  // ---- reductions and math (defined in ops/) ----
  // Forwards to ops/reduce.h, ops/elementwise.h and ops/linalg.h; all differentiable.

  /// Sum of all elements as a 0-d tensor of this dtype (float64 accumulation for floats).
  Tensor sum() const;
  /// Sum over `dims` (negative dims count from the end; an empty list sums all; duplicates throw
  /// "[sum] ..."); keepdim keeps them as size 1.
  Tensor sum(const Shape& dims, bool keepdim = false) const;
  /// Mean of all elements as a 0-d tensor; float dtypes only ("[mean] ..." for int64).
  Tensor mean() const;
  /// Mean over `dims` (empty: all); float dtypes only; an empty reduction gives NaN, as in PyTorch.
  Tensor mean(const Shape& dims, bool keepdim = false) const;
  /// One dim as an integer: x.sum(1), x.mean(-1, true) (templates, so x.sum({}) stays "all dims").
  template <class I>
    requires(std::integral<I> && !std::same_as<I, bool>)
  Tensor sum(I dim, bool keepdim = false) const {
    return sum(Shape{static_cast<int64_t>(dim)}, keepdim);
  }
  /// Mean over one dim given as an integer (negative counts from the end).
  template <class I>
    requires(std::integral<I> && !std::same_as<I, bool>)
  Tensor mean(I dim, bool keepdim = false) const {
    return mean(Shape{static_cast<int64_t>(dim)}, keepdim);
  }
  /// Unbiased by default (correction 1), as PyTorch's var; see ops/reduce.h.
  Tensor var() const;
  /// Variance over `dims` (empty: all) divided by N - correction (1: the unbiased estimate, 0: the
  /// population variance); float dtypes only.
  Tensor var(const Shape& dims, int64_t correction = 1, bool keepdim = false) const;
  /// Variance over one dim given as an integer, with the given correction.
  template <class I>
    requires(std::integral<I> && !std::same_as<I, bool>)
  Tensor var(I dim, int64_t correction = 1, bool keepdim = false) const {
    return var(Shape{static_cast<int64_t>(dim)}, correction, keepdim);
  }
  /// Largest element as a 0-d tensor (the gradient is shared evenly among ties).
  Tensor max() const;
  /// Smallest element as a 0-d tensor (the gradient is shared evenly among ties).
  Tensor min() const;
  /// |x| elementwise, any compute dtype.
  Tensor abs() const;
  /// e^x elementwise; float dtypes only ("[exp] ..." for int64).
  Tensor exp() const;
  /// Natural log elementwise; float only; log(0) = -inf, negative inputs give NaN.
  Tensor log() const;
  /// Square root elementwise; float only; negative inputs give NaN.
  Tensor sqrt() const;
  /// x ** exponent elementwise; float dtypes only ("[pow] ..." for int64).
  Tensor pow(double exponent) const;
  /// Elementwise min(max(x, min), max), differentiable (gradient 0 where clamped).
  Tensor clamp(double min, double max) const;
  /// NumPy/PyTorch matmul (1-d, 2-d and batched with broadcast batch dims); throws
  /// "[matmul] shapes [128, 784] and [64, 128] cannot be multiplied: 784 != 64".
  Tensor matmul(const Tensor& other) const;

  // ---- in-place (bump the version; not recorded by autograd) ----
  // Each writes through this tensor's own strides and returns *this. While grad mode is on they
  // refuse a tensor that requires grad ("[add_] in-place op on a tensor that requires grad ...": run
  // them under NoGradGuard, as optimizers and init code do). A tensor operand must broadcast onto
  // this tensor's shape, live on its device, and is converted to its dtype; a float operand cannot
  // be written into an int64 tensor.

  /// this += alpha * other.
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  /// this += value.
  Tensor& add_(double value);
  /// this -= other.
  Tensor& sub_(const Tensor& other);
  /// this -= value.
  Tensor& sub_(double value);
  /// this *= other.
  Tensor& mul_(const Tensor& other);
  /// this *= value.
  Tensor& mul_(double value);
  /// this /= other (true division: float tensors only, "[div_] ..." for int64).
  Tensor& div_(const Tensor& other);
  /// this /= value (float tensors only).
  Tensor& div_(double value);
  /// Sets every element to 0 (fill_(0)).
  Tensor& zero_();
  /// Sets every element to `value`, converted to the dtype.
  Tensor& fill_(double value);
  /// Copies `src` (broadcast to this shape, converted to this dtype, same device) into this tensor.
  Tensor& copy_(const Tensor& src);
  /// Clamps every element to [min, max] ("[clamp_] min ... is greater than max ..." otherwise).
  Tensor& clamp_(double min, double max);

  /// "Tensor[shape=[2, 3], dtype=float32, device=cpu, requires_grad=true, grad_fn=MulBackward]".
  std::string describe() const;
  /// describe() followed by the values (at most 6 per dim shown).
  std::string to_string() const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

/// Writes t.to_string(): the description and the values (at most 6 per dim).
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
