// CPU index kernels: index_select / index_add and gather / scatter_add along one dim.
#include "cpu_backend.h"

namespace latent::cpu {
namespace {

/// Calls fn(offsets...) for every element of `shape`, where offsets[k] is the element offset of
/// operand k (storage offset plus index . strides).
template <int K, class Fn>
void for_each_element(const Shape& shape, const std::array<const Tensor*, K>& ts, Fn&& fn) {
  const int nd = shape.size();
  const int64_t total = shape.numel();
  Shape counter = Shape::filled(nd, 0);
  std::array<int64_t, K> off;
  for (int k = 0; k < K; ++k) off[k] = ts[k]->storage_offset();
  for (int64_t e = 0; e < total; ++e) {
    fn(off, counter);
    for (int d = nd - 1; d >= 0; --d) {
      for (int k = 0; k < K; ++k) off[k] += ts[k]->strides()[d];
      if (++counter[d] < shape[d]) break;
      for (int k = 0; k < K; ++k) off[k] -= ts[k]->strides()[d] * shape[d];
      counter[d] = 0;
    }
  }
}

template <class T> T* base(const Tensor& t) { return static_cast<T*>(t.storage()->data()); }

}  // namespace

void CpuBackend::index_select(const Tensor& x, int dim, const Tensor& index, const Tensor& out) {
  visit_any_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t* idx = index.data_ptr<int64_t>();
    const int64_t istride = index.strides().empty() ? 0 : index.strides()[0];
    const int64_t xs = x.strides()[dim];
    for_each_element<2>(out.shape(), {&out, &x}, [&](const std::array<int64_t, 2>& off, const Shape& at) {
      // x's offset counts at[dim] * xs; replace it with index[at[dim]] * xs.
      const int64_t j = idx[at[dim] * istride];
      base<T>(out)[off[0]] = base<T>(x)[off[1] - at[dim] * xs + j * xs];
    });
  });
}

void CpuBackend::index_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t* idx = index.data_ptr<int64_t>();
    const int64_t istride = index.strides().empty() ? 0 : index.strides()[0];
    const int64_t os = out.strides()[dim];
    for_each_element<2>(src.shape(), {&src, &out}, [&](const std::array<int64_t, 2>& off, const Shape& at) {
      const int64_t j = idx[at[dim] * istride];
      base<T>(out)[off[1] - at[dim] * os + j * os] += base<T>(src)[off[0]];
    });
  });
}

void CpuBackend::gather(const Tensor& x, int dim, const Tensor& index, const Tensor& out) {
  visit_any_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t xs = x.strides()[dim];
    for_each_element<3>(out.shape(), {&out, &x, &index}, [&](const std::array<int64_t, 3>& off, const Shape& at) {
      const int64_t j = base<int64_t>(index)[off[2]];
      base<T>(out)[off[0]] = base<T>(x)[off[1] - at[dim] * xs + j * xs];
    });
  });
}

void CpuBackend::scatter_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int64_t os = out.strides()[dim];
    for_each_element<3>(index.shape(), {&src, &out, &index}, [&](const std::array<int64_t, 3>& off, const Shape& at) {
      const int64_t j = base<int64_t>(index)[off[2]];
      base<T>(out)[off[1] - at[dim] * os + j * os] += base<T>(src)[off[0]];
    });
  });
}

}  // namespace latent::cpu
