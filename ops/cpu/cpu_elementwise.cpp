// CPU kernels: elementwise unary/binary/where, copy, fill, random fills, all_finite.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../backend.h"
#include "cpu_backend.h"
#include "isa.h"
#include "workers.h"
#include "loops.h"

namespace latent::cpu {
namespace {

template <class T>
bool same_layout_contiguous(const Tensor& out, const Tensor& x) {
  return out.is_contiguous() && x.is_contiguous() && out.shape() == x.shape();
}

template <class T, class F>
void unary_kernel(const Tensor& x, const Tensor& out, F f) {
  if (same_layout_contiguous<T>(out, x)) {
    T* o = out.data_ptr<T>();
    const T* a = x.data_ptr<T>();
    for (int64_t i = 0, n = out.numel(); i < n; ++i) o[i] = f(a[i]);
    return;
  }
  for_each_row<2>(out, {&x}, [&](char** p, int64_t n, const int64_t* s) {
    T* o = reinterpret_cast<T*>(p[0]);
    const T* a = reinterpret_cast<const T*>(p[1]);
    const int64_t so = s[0] / int64_t(sizeof(T)), sa = s[1] / int64_t(sizeof(T));
    if (so == 1 && sa == 1)
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
    else
      for (int64_t i = 0; i < n; ++i) o[i * so] = f(a[i * sa]);
  });
}

template <class T, class F>
void binary_kernel(const Tensor& a, const Tensor& b, const Tensor& out, F f) {
  if (same_layout_contiguous<T>(out, a) && same_layout_contiguous<T>(out, b)) {
    T* o = out.data_ptr<T>();
    const T* x = a.data_ptr<T>();
    const T* y = b.data_ptr<T>();
    for (int64_t i = 0, n = out.numel(); i < n; ++i) o[i] = f(x[i], y[i]);
    return;
  }
  for_each_row<3>(out, {&a, &b}, [&](char** p, int64_t n, const int64_t* s) {
    T* o = reinterpret_cast<T*>(p[0]);
    const T* x = reinterpret_cast<const T*>(p[1]);
    const T* y = reinterpret_cast<const T*>(p[2]);
    const int64_t so = s[0] / int64_t(sizeof(T)), sx = s[1] / int64_t(sizeof(T)), sy = s[2] / int64_t(sizeof(T));
    if (so == 1 && sx == 1 && sy == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
    } else if (so == 1 && sx == 1 && sy == 0) {
      const T yv = *y;
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], yv);
    } else if (so == 1 && sx == 0 && sy == 1) {
      const T xv = *x;
      for (int64_t i = 0; i < n; ++i) o[i] = f(xv, y[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * so] = f(x[i * sx], y[i * sy]);
    }
  });
}

template <class T>
void run_unary(UnaryOp op, const Tensor& x, const Tensor& out, T p0, T p1) {
  using namespace latent::math;
  switch (op) {
#define LATENT_CASE(name, expr) \
  case UnaryOp::name: return unary_kernel<T>(x, out, [=](T x) { return static_cast<T>(expr); });
    LATENT_UNARY_OPS(LATENT_CASE)
#undef LATENT_CASE
  }
}

template <class T>
void run_binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, T p0, T p1) {
  using namespace latent::math;
  switch (op) {
#define LATENT_CASE(name, expr) \
  case BinaryOp::name: return binary_kernel<T>(a, b, out, [=](T a, T b) { return static_cast<T>(expr); });
    LATENT_BINARY_OPS(LATENT_CASE)
#undef LATENT_CASE
  }
}

// Conversion for copy/to/fill: float -> narrower integer dtypes saturates (NaN -> 0) after
// truncation toward zero, where a plain cast would be undefined out of range; bfloat16/float16
// go through float32 (round to nearest even into them); other conversions are the C++ casts (PyTorch's).
template <class To, class From>
inline To convert_to(From v) {
  if constexpr (!std::is_same_v<To, From> && (std::is_same_v<From, BFloat16> || std::is_same_v<From, Float16>)) {
    return convert_to<To>(static_cast<float>(v));  // 16-bit floats convert through float32 (exact)
  } else if constexpr (std::is_integral_v<To> && sizeof(To) < 8 && std::is_floating_point_v<From>) {
    if (!(v == v)) return To(0);
    if (v >= From(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
    if (v <= From(std::numeric_limits<To>::min())) return std::numeric_limits<To>::min();
    return static_cast<To>(v);
  } else {
    return static_cast<To>(v);
  }
}

template <class To, class From>
void copy_rows(const Tensor& src, const Tensor& out) {
  if (std::is_same_v<To, From> && same_layout_contiguous<To>(out, src)) {
    std::memcpy(out.raw_data(), src.raw_data(), static_cast<size_t>(out.numel()) * sizeof(To));
    return;
  }
  for_each_row<2>(out, {&src}, [](char** p, int64_t n, const int64_t* s) {
    To* o = reinterpret_cast<To*>(p[0]);
    const From* a = reinterpret_cast<const From*>(p[1]);
    const int64_t so = s[0] / int64_t(sizeof(To)), sa = s[1] / int64_t(sizeof(From));
    if (so == 1 && sa == 1)
      for (int64_t i = 0; i < n; ++i) o[i] = convert_to<To>(a[i]);
    else
      for (int64_t i = 0; i < n; ++i) o[i * so] = convert_to<To>(a[i * sa]);
  });
}

/// Fills out in row-major order with values from next().
template <class T, class Next>
void generate(const Tensor& out, Next&& next) {
  for_each_row<1>(out, {}, [&](char** p, int64_t n, const int64_t* s) {
    T* o = reinterpret_cast<T*>(p[0]);
    const int64_t so = s[0] / int64_t(sizeof(T));
    for (int64_t i = 0; i < n; ++i) o[i * so] = static_cast<T>(next());
  });
}

// The activations that run on every training step (relu, sigmoid: fused_linear's output pass),
// float32 contiguous, compiled for the widest instruction set (exp_float vectorises).
template <class F>
[[gnu::always_inline]] inline void unary_f32_body(const float* x, float* out, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) out[i] = f(x[i]);
}
LATENT_CPU_MULTI_ISA_F(unary_f32, (const float* x, float* out, int64_t n, F f), (x, out, n, f))

struct ReluF32 {
  [[gnu::always_inline]] inline float operator()(float x) const { return x > 0.f ? x : 0.f; }
};
struct SigmoidF32 {
  [[gnu::always_inline]] inline float operator()(float x) const { return latent::math::sigmoid(x); }
};

/// The multi-ISA path for op, if it has one and the operands allow it (x may be out itself).
bool unary_fast(UnaryOp op, const Tensor& x, const Tensor& out) {
  if (out.dtype() != kFloat32 || x.dtype() != kFloat32 || !same_layout_contiguous<float>(out, x)) return false;
  const float* in = x.data_ptr<float>();
  float* o = out.data_ptr<float>();
  const int64_t n = out.numel();
  auto run = [&](auto f) {
    parallel_ranges(n, kMinParallelElements, kElementGrain,
                    [&](int64_t lo, int64_t hi) { unary_f32<decltype(f)>(in + lo, o + lo, hi - lo, f); });
    return true;
  };
  if (op == UnaryOp::Relu) return run(ReluF32{});
  if (op == UnaryOp::Sigmoid) return run(SigmoidF32{});
  return false;
}

}  // namespace

void CpuBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out, double p0, double p1) {
  if (unary_fast(op, x, out)) return;
  visit_dtype(out.dtype(), [&](auto t) {
    using T = decltype(t);
    run_unary<T>(op, x, out, static_cast<T>(p0), static_cast<T>(p1));
  });
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, double p0, double p1) {
  visit_dtype(out.dtype(), [&](auto t) {
    using T = decltype(t);
    run_binary<T>(op, a, b, out, static_cast<T>(p0), static_cast<T>(p1));
  });
}

void CpuBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  visit_any_dtype(out.dtype(), [&](auto t) {
    using T = decltype(t);
    visit_any_dtype(cond.dtype(), [&](auto c) {
      using C = decltype(c);
      for_each_row<4>(out, {&cond, &a, &b}, [](char** p, int64_t n, const int64_t* s) {
        for (int64_t i = 0; i < n; ++i) {
          bool take_a = *reinterpret_cast<const C*>(p[1] + i * s[1]) != C(0);
          *reinterpret_cast<T*>(p[0] + i * s[0]) = *reinterpret_cast<const T*>(take_a ? p[2] + i * s[2] : p[3] + i * s[3]);
        }
      });
    });
  });
}

void CpuBackend::copy(const Tensor& src, const Tensor& out) {
  visit_any_dtype(out.dtype(), [&](auto o) {
    visit_any_dtype(src.dtype(), [&](auto s) { copy_rows<decltype(o), decltype(s)>(src, out); });
  });
}

void CpuBackend::fill(const Tensor& out, double value) {
  visit_any_dtype(out.dtype(), [&](auto t) {
    using T = decltype(t);
    const T v = convert_to<T>(value);
    generate<T>(out, [v] { return v; });
  });
}

void CpuBackend::uniform(const Tensor& out, Generator& gen, double low, double high) {
  visit_dtype(out.dtype(), [&](auto t) {
    generate<decltype(t)>(out, [&] { return low + (high - low) * gen.uniform(); });
  });
}

void CpuBackend::normal(const Tensor& out, Generator& gen, double mean, double std) {
  visit_dtype(out.dtype(), [&](auto t) { generate<decltype(t)>(out, [&] { return mean + std * gen.normal(); }); });
}

bool CpuBackend::all_finite(const Tensor& x) {
  bool finite = true;
  visit_dtype(x.dtype(), [&](auto t) {
    using T = decltype(t);
    if constexpr (std::is_floating_point_v<T>) {
      for_each_row<1>(x, {}, [&](char** p, int64_t n, const int64_t* s) {
        for (int64_t i = 0; i < n; ++i)
          if (!std::isfinite(*reinterpret_cast<const T*>(p[0] + i * s[0]))) finite = false;
      });
    }
  });
  return finite;
}

}  // namespace latent::cpu
