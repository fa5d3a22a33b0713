// CPU reductions: sum/max/min over any set of dims, and max/min with indices along one dim.
#include <cmath>
#include <limits>
#include <vector>

#include "cpu_backend.h"
#include "loops.h"

namespace latent::cpu {
namespace {

template <class T, class Acc, class Combine>
void reduce_into(const Tensor& x, const Shape& out_strides, Acc* acc, Combine combine) {
  // Iterate x; acc is contiguous in out's shape, addressed through out_strides (elements).
  std::array<Shape, 2> strides{out_strides, x.strides()};
  std::array<int64_t, 2> sizes{int64_t(sizeof(Acc)), int64_t(sizeof(T))};
  std::array<char*, 2> ptr{reinterpret_cast<char*>(acc), bytes(x)};
  for_each_row<2>(make_layout<2>(x.shape(), strides, sizes), ptr, [&](char** p, int64_t n, const int64_t* s) {
    Acc* o = reinterpret_cast<Acc*>(p[0]);
    const T* a = reinterpret_cast<const T*>(p[1]);
    const int64_t so = s[0] / int64_t(sizeof(Acc)), sa = s[1] / int64_t(sizeof(T));
    if (so == 0 && sa == 1) {
      // Four independent accumulators break the dependency chain (about 4x faster for sums).
      // *o may already hold earlier rows' partial result: it enters once, through r0.
      Acc r0 = *o;
      int64_t i = 0;
      if (n < 8) {
        for (; i < n; ++i) r0 = combine(r0, Acc(a[i]));
        *o = r0;
        return;
      }
      r0 = combine(r0, Acc(a[0]));
      Acc r1 = Acc(a[1]), r2 = Acc(a[2]), r3 = Acc(a[3]);
      for (i = 4; i + 4 <= n; i += 4) {
        r0 = combine(r0, Acc(a[i]));
        r1 = combine(r1, Acc(a[i + 1]));
        r2 = combine(r2, Acc(a[i + 2]));
        r3 = combine(r3, Acc(a[i + 3]));
      }
      for (; i < n; ++i) r0 = combine(r0, Acc(a[i]));
      *o = combine(combine(r0, r1), combine(r2, r3));
    } else if (so == 0) {
      Acc r = *o;
      for (int64_t i = 0; i < n; ++i) r = combine(r, Acc(a[i * sa]));
      *o = r;
    } else if (so == 1 && sa == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = combine(o[i], Acc(a[i]));
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * so] = combine(o[i * so], Acc(a[i * sa]));
    }
  });
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, const Tensor& x, const Tensor& out) {
  // Accumulate into a contiguous buffer of out's shape (float64 for sums, so float32 sums of many
  // elements stay accurate), then copy into out.
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using Acc = std::conditional_t<std::is_same_v<T, int64_t>, int64_t, double>;
    const int64_t n = out.numel();
    // Reduce straight into out when it is contiguous and already the accumulator type.
    const bool direct = std::is_same_v<T, Acc> && out.is_contiguous();
    std::vector<Acc> buffer(direct ? 0 : static_cast<size_t>(n));
    Acc* acc = direct ? static_cast<Acc*>(out.raw_data()) : buffer.data();
    Shape acc_strides = contiguous_strides(out.shape());
    for (int d = 0; d < x.dim(); ++d)
      if (out.shape()[d] == 1 && x.shape()[d] != 1) acc_strides[d] = 0;
    if (op == ReduceOp::Sum) {
      std::fill(acc, acc + n, Acc(0));
      reduce_into<T>(x, acc_strides, acc, [](Acc a, Acc b) { return a + b; });
    } else {
      const bool is_max = op == ReduceOp::Max;
      std::fill(acc, acc + n, is_max ? std::numeric_limits<Acc>::lowest() : std::numeric_limits<Acc>::max());
      if (is_max)
        reduce_into<T>(x, acc_strides, acc, [](Acc a, Acc b) { return (b > a || b != b) ? b : a; });
      else
        reduce_into<T>(x, acc_strides, acc, [](Acc a, Acc b) { return (b < a || b != b) ? b : a; });
    }
    if (!direct) {
      Tensor src = empty(out.shape(), dtype_of<Acc>::value);
      std::copy(buffer.begin(), buffer.end(), src.data_ptr<Acc>());
      copy(src, out);
    }
  });
}

void CpuBackend::arg_reduce(ReduceOp op, const Tensor& x, int dim, const Tensor& values, const Tensor& indices) {
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const bool is_max = op == ReduceOp::Max;
    const int64_t len = x.shape()[dim], step = x.strides()[dim];
    const int nd = x.dim();
    Shape counter = Shape::filled(nd, 0);
    const int64_t total = values.numel();
    const T* base = static_cast<const T*>(static_cast<void*>(x.storage()->data()));
    for (int64_t k = 0; k < total; ++k) {
      int64_t xo = x.storage_offset(), vo = values.storage_offset(), io = indices.storage_offset();
      for (int d = 0; d < nd; ++d) {
        xo += counter[d] * x.strides()[d];
        vo += counter[d] * values.strides()[d];
        io += counter[d] * indices.strides()[d];
      }
      T best = base[xo];
      int64_t best_i = 0;
      for (int64_t i = 1; i < len && !(best != best); ++i) {
        T v = base[xo + i * step];
        if ((is_max ? v > best : v < best) || v != v) {
          best = v;
          best_i = i;
        }
      }
      static_cast<T*>(values.storage()->data())[vo] = best;
      static_cast<int64_t*>(indices.storage()->data())[io] = best_i;
      for (int d = nd - 1; d >= 0; --d) {
        if (d == dim) continue;
        if (++counter[d] < x.shape()[d]) break;
        counter[d] = 0;
      }
    }
  });
}

}  // namespace latent::cpu
