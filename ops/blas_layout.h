// How a strided matrix reaches a row-major BLAS call (cblas on the CPU, cuBLAS on CUDA): the
// transpose flag and leading dimension read off its strides, so transposed views need no copy.
// Host code shared by the CPU and CUDA backends' gemm.
#pragma once

#include <algorithm>
#include <cstdint>

namespace latent {

struct BlasOperand {
  bool transposed = false;
  int64_t ld = 0;
  bool ok = false;  ///< false: neither of the last two strides is 1 (the caller copies first)
};

/// How a row-major rows x cols matrix with element strides (s0, s1) reaches a row-major BLAS call.
/// Strides of size-1 dims are free, so they are normalised first.
inline BlasOperand blas_layout(int64_t rows, int64_t cols, int64_t s0, int64_t s1) {
  const int64_t r = std::max<int64_t>(rows, 1), c = std::max<int64_t>(cols, 1);
  {
    const int64_t a1 = cols == 1 ? 1 : s1, a0 = rows == 1 ? c : s0;
    if (a1 == 1 && a0 >= c) return {false, a0, true};
  }
  {
    const int64_t a0 = rows == 1 ? 1 : s0, a1 = cols == 1 ? r : s1;
    if (a0 == 1 && a1 >= r) return {true, a1, true};
  }
  return {};
}

}  // namespace latent
