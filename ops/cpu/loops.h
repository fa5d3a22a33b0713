// Strided loops for CPU kernels: drop size-1 dims, merge dims that are contiguous for every
// operand, then call a body once per innermost row with byte pointers and byte strides. Kernels
// specialise the body for unit strides so the compiler vectorises the common cases.
#pragma once

#include <array>
#include <cstdint>

#include "../../autograd/tensor.h"

namespace latent::cpu {

/// Strides (in elements) of `t` read as if broadcast to `shape` (0 in broadcast dims).
inline Shape broadcast_strides(const Tensor& t, const Shape& shape) {
  Shape s = Shape::filled(shape.size(), 0);
  const int offset = shape.size() - t.dim();
  for (int i = 0; i < t.dim(); ++i)
    s[offset + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  return s;
}

/// K operands iterated over a common shape, after coalescing.
template <int K>
struct Layout {
  int ndim = 0;
  int64_t shape[kMaxDims];
  int64_t strides[K][kMaxDims];  // bytes
};

/// Builds the layout from element strides and element sizes of each operand.
template <int K>
Layout<K> make_layout(const Shape& shape, const std::array<Shape, K>& strides, const std::array<int64_t, K>& sizes) {
  Layout<K> l;
  for (int d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = l.ndim > 0;
    for (int k = 0; k < K && merge; ++k)
      merge = l.strides[k][l.ndim - 1] == strides[k][d] * sizes[k] * shape[d];
    if (merge) {
      l.shape[l.ndim - 1] *= shape[d];
      for (int k = 0; k < K; ++k) l.strides[k][l.ndim - 1] = strides[k][d] * sizes[k];
    } else {
      l.shape[l.ndim] = shape[d];
      for (int k = 0; k < K; ++k) l.strides[k][l.ndim] = strides[k][d] * sizes[k];
      ++l.ndim;
    }
  }
  return l;
}

/// Calls body(char* ptr[K], int64_t n, const int64_t stride[K]) for every innermost row.
template <int K, class Body>
void for_each_row(const Layout<K>& l, std::array<char*, K> ptr, Body&& body) {
  if (l.ndim == 0) {
    int64_t zero[K] = {};
    body(ptr.data(), int64_t{1}, zero);
    return;
  }
  for (int d = 0; d < l.ndim; ++d)
    if (l.shape[d] == 0) return;
  const int inner = l.ndim - 1;
  int64_t inner_strides[K];
  for (int k = 0; k < K; ++k) inner_strides[k] = l.strides[k][inner];
  int64_t outer = 1;
  for (int d = 0; d < inner; ++d) outer *= l.shape[d];
  int64_t counter[kMaxDims] = {};
  for (int64_t o = 0; o < outer; ++o) {
    body(ptr.data(), l.shape[inner], inner_strides);
    for (int d = inner - 1; d >= 0; --d) {
      for (int k = 0; k < K; ++k) ptr[k] += l.strides[k][d];
      if (++counter[d] < l.shape[d]) break;
      for (int k = 0; k < K; ++k) ptr[k] -= l.strides[k][d] * l.shape[d];
      counter[d] = 0;
    }
  }
}

/// Byte pointer to the first element of t.
inline char* bytes(const Tensor& t) { return static_cast<char*>(t.raw_data()); }

/// Iterates `out` and the inputs (broadcast to out's shape) row by row.
template <int K, class Body>
void for_each_row(const Tensor& out, const std::array<const Tensor*, K - 1>& inputs, Body&& body) {
  std::array<Shape, K> strides;
  std::array<int64_t, K> sizes;
  std::array<char*, K> ptr;
  strides[0] = out.strides();
  sizes[0] = static_cast<int64_t>(out.element_size());
  ptr[0] = bytes(out);
  for (int k = 1; k < K; ++k) {
    strides[k] = broadcast_strides(*inputs[k - 1], out.shape());
    sizes[k] = static_cast<int64_t>(inputs[k - 1]->element_size());
    ptr[k] = bytes(*inputs[k - 1]);
  }
  for_each_row<K>(make_layout<K>(out.shape(), strides, sizes), ptr, body);
}

}  // namespace latent::cpu
