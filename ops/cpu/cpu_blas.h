// The CPU backend's one GEMM entry point, used by matmul/linear (cpu_gemm.cpp) and convolution
// (cpu_conv.cpp): C = A B + beta C on row-major matrices, A (m x k) stored as a[i * lda + p] or,
// with trans_a, a[p * lda + i]; B (k x n) likewise with trans_b.
//
// Products of at least kMinParallelMacs multiply-adds are split into column (else row) blocks
// over latent's thread pool (workers.h). Each block runs latent's AVX-512 kernel for float32 on
// CPUs that have AVX-512 (sgemm_avx512.cpp), else OpenBLAS on one thread.
#pragma once

#include <cstdint>

namespace latent::cpu {

template <class T>
void blas_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
               int64_t ldb, T beta, T* c, int64_t ldc);

/// What latent's kernel applies as it stores the finished C: C[i][j] = max?(C[i][j] + bias[j], 0),
/// or sigmoid(C[i][j] + bias[j]).
struct GemmEpilogue {
  const float* bias = nullptr;  ///< one value per column of C, or null
  bool relu = false;
  /// math::sigmoid after the bias (bit for bit the separate pass). Only the prepacked inference
  /// kernels (sgemm_small.h: sgemm_small, sgemm_large_packed) apply it; others ignore it.
  bool sigmoid = false;
};
/// blas_gemm<float> with beta 0 and the epilogue in the kernel's store. Only when
/// sgemm_uses_latent_kernel() (the caller composes otherwise).
void sgemm_epilogue(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                    const float* b, int64_t ldb, float* c, int64_t ldc, const GemmEpilogue& epilogue);

/// Whether float32 products use latent's own kernel (AVX-512 present and LATENT_CPU_ISA not
/// capping it; LATENT_SGEMM=openblas in the environment turns it off).
bool sgemm_uses_latent_kernel();

/// The single-threaded AVX-512 kernel (call only when sgemm_avx512_available()).
bool sgemm_avx512_available();
void sgemm_avx512(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                  const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const GemmEpilogue* epilogue = nullptr);

/// sgemm_avx512 with B already packed (beta 0, A not transposed): columns [j_lo, j_hi) of C, j_lo
/// a multiple of 32; `b` holds 32-wide panels (the last 16 wide when at most 16 columns are left),
/// each all k rows deep, the panel of column j at b + j * k (sgemm_small.h's PackedB).
void sgemm_avx512_packed(int64_t m, int64_t n, int64_t k, int64_t j_lo, int64_t j_hi, const float* a, int64_t lda,
                         const float* b, float* c, int64_t ldc, const GemmEpilogue& epilogue);

}  // namespace latent::cpu
