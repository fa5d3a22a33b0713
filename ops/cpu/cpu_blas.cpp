#include "cpu_blas.h"

#include <cblas.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "../autocast.h"
#include "../threads.h"
#include "bgemm.h"
#include "isa.h"
#include "workers.h"

namespace latent::cpu {
namespace {

/// Below this many multiply-adds a product runs on the calling thread: a 128 x 64 x 32 product
/// (2^18) takes about 3 us on one Zen 5 core, near what handing half of it to a worker costs.
constexpr double kMinParallelMacs = 256.0 * 1024;

/// One thread's share, on the calling thread.
template <class T>
void gemm_serial(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
                 T beta, T* c, int64_t ldc) {
  if (k == 0) {  // BLAS skips the beta scaling with k = 0 in some builds: do it here
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : c[i * ldc + j] * beta;
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    if (sgemm_uses_latent_kernel()) return sgemm_latent(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
  }
  const auto tra = ta ? CblasTrans : CblasNoTrans, trb = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, tra, trb, int(m), int(n), int(k), 1.0f, a, int(lda), b, int(ldb), beta, c, int(ldc));
  else
    cblas_dgemm(CblasRowMajor, tra, trb, int(m), int(n), int(k), 1.0, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

}  // namespace

bool sgemm_uses_latent_kernel() {
  static const bool on = [] {
    const char* env = std::getenv("LATENT_SGEMM");
    if (env && std::strcmp(env, "openblas") == 0) return false;
    return sgemm_avx2_available();  // AVX-512 implies it (cpu_isa() >= 1)
  }();
  return on;
}

const char* sgemm_kernel_name() {
  if (!sgemm_uses_latent_kernel()) return "OpenBLAS";
  return sgemm_avx512_available() ? "latent AVX-512" : "latent AVX2";
}

void sgemm_latent(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                  int64_t ldb, float beta, float* c, int64_t ldc, const GemmEpilogue* epilogue) {
  if (cpu_isa() >= 2) return sgemm_avx512(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, epilogue);
  sgemm_avx2(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, epilogue);
}

namespace {
/// Splits C into column (else row) blocks over the pool: calls part(lo, hi, by_cols).
template <class F>
void split_gemm(int64_t m, int64_t n, int64_t k, F&& run_block) {
  const int threads = get_num_threads();
  const double macs = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  int parts = macs < kMinParallelMacs ? 1 : threads;
  // Split the columns in 16-wide units when each part gets two of them, else the rows in 12s
  // (the kernels' tile sizes); a part never gets an empty block.
  const bool by_cols = n >= 32 * int64_t(parts);
  const int64_t unit = by_cols ? 16 : 12, units = ((by_cols ? n : m) + unit - 1) / unit;
  parts = static_cast<int>(std::min<int64_t>(parts, units));
  if (parts <= 1) return run_block(int64_t{0}, by_cols ? n : m, by_cols);
  auto part = [&](int p) {
    const int64_t lo = std::min(units * p / parts * unit, by_cols ? n : m);
    const int64_t hi = std::min(units * (p + 1) / parts * unit, by_cols ? n : m);
    if (hi > lo) run_block(lo, hi, by_cols);
  };
  run_parallel(parts, part);
}
}  // namespace

void lowp_gemm(DType dtype, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const GemmEpilogue* epilogue) {
  if (m <= 0 || n <= 0) return;
  split_gemm(m, n, k, [&](int64_t lo, int64_t hi, bool by_cols) {
    if (by_cols) {
      GemmEpilogue shifted = epilogue ? *epilogue : GemmEpilogue{};
      if (shifted.bias) shifted.bias += lo;
      lowp_gemm_serial(dtype, ta, tb, m, hi - lo, k, a, lda, tb ? b + lo * ldb : b + lo, ldb, beta, c + lo, ldc,
                       epilogue ? &shifted : nullptr);
    } else {
      lowp_gemm_serial(dtype, ta, tb, hi - lo, n, k, ta ? a + lo : a + lo * lda, lda, b, ldb, beta, c + lo * ldc, ldc,
                       epilogue);
    }
  });
}

void sgemm_epilogue(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                    int64_t ldb, float* c, int64_t ldc, const GemmEpilogue& epilogue) {
  if (m <= 0 || n <= 0) return;
  // Autocast's kLower ops (ops/autocast.h) lower this thread's products.
  if (const DType low = autocast::detail::gemm_dtype(); low != kFloat32)
    return lowp_gemm(low, ta, tb, m, n, k, a, lda, b, ldb, 0.f, c, ldc, &epilogue);
  split_gemm(m, n, k, [&](int64_t lo, int64_t hi, bool by_cols) {
    if (by_cols) {
      GemmEpilogue shifted = epilogue;
      if (shifted.bias) shifted.bias += lo;
      sgemm_latent(ta, tb, m, hi - lo, k, a, lda, tb ? b + lo * ldb : b + lo, ldb, 0.f, c + lo, ldc, &shifted);
    } else {
      sgemm_latent(ta, tb, hi - lo, n, k, ta ? a + lo : a + lo * lda, lda, b, ldb, 0.f, c + lo * ldc, ldc, &epilogue);
    }
  });
}

template <class T>
void blas_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
               T beta, T* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if constexpr (std::is_same_v<T, float>) {
    // Autocast's kLower ops (ops/autocast.h) lower this thread's products.
    if (const DType low = autocast::detail::gemm_dtype(); low != kFloat32)
      return lowp_gemm(low, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
  }
  split_gemm(m, n, k, [&](int64_t lo, int64_t hi, bool by_cols) {
    if (by_cols) {
      const T* bp = tb ? b + lo * ldb : b + lo;
      gemm_serial<T>(ta, tb, m, hi - lo, k, a, lda, bp, ldb, beta, c + lo, ldc);
    } else {
      const T* ap = ta ? a + lo : a + lo * lda;
      gemm_serial<T>(ta, tb, hi - lo, n, k, ap, lda, b, ldb, beta, c + lo * ldc, ldc);
    }
  });
}


template void blas_gemm<float>(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t,
                               float, float*, int64_t);
template void blas_gemm<double>(bool, bool, int64_t, int64_t, int64_t, const double*, int64_t, const double*, int64_t,
                                double, double*, int64_t);

}  // namespace latent::cpu
