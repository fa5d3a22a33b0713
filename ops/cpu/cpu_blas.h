// The CPU backend's one GEMM entry point, used by matmul/linear (cpu_gemm.cpp) and convolution
// (cpu_conv.cpp): C = A B + beta C on row-major matrices, A (m x k) stored as a[i * lda + p] or,
// with trans_a, a[p * lda + i]; B (k x n) likewise with trans_b.
//
// Products of at least kMinParallelMacs multiply-adds are split into column (else row) blocks
// over latent's thread pool (workers.h). Each float32 block runs latent's own kernel for the
// widest instruction set the CPU has (isa.h's cpu_isa(), which LATENT_CPU_ISA caps): AVX-512
// (sgemm_avx512.cpp) or AVX2 + FMA (sgemm_avx2.cpp); OpenBLAS on one thread on baseline CPUs,
// for float64 and with LATENT_SGEMM=openblas.
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

/// Whether float32 products use latent's own kernel (AVX2 + FMA or AVX-512 present and
/// LATENT_CPU_ISA not capping it to base; LATENT_SGEMM=openblas in the environment turns it off).
bool sgemm_uses_latent_kernel();

/// Name of the float32 GEMM kernel blas_gemm uses: "latent AVX-512", "latent AVX2" or "OpenBLAS".
const char* sgemm_kernel_name();

/// The single-threaded kernel of the widest instruction set present: sgemm_avx512 or sgemm_avx2
/// (call only when sgemm_uses_latent_kernel() or sgemm_avx2_available()).
void sgemm_latent(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                  const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const GemmEpilogue* epilogue = nullptr);

/// The single-threaded AVX2 + FMA kernel, same contract as sgemm_avx512 (call only when
/// sgemm_avx2_available(): the CPU has AVX2 and FMA and LATENT_CPU_ISA is not base).
bool sgemm_avx2_available();
void sgemm_avx2(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const GemmEpilogue* epilogue = nullptr);

/// The single-threaded AVX-512 kernel (call only when sgemm_avx512_available()).
bool sgemm_avx512_available();
void sgemm_avx512(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                  const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const GemmEpilogue* epilogue = nullptr);
/// sgemm_avx2 with B already packed, same contract and panel layout as sgemm_avx512_packed.
void sgemm_avx2_packed(int64_t m, int64_t n, int64_t k, int64_t j_lo, int64_t j_hi, const float* a, int64_t lda,
                       const float* b, float* c, int64_t ldc, const GemmEpilogue& epilogue);

/// sgemm_avx512 with B already packed (beta 0, A not transposed): columns [j_lo, j_hi) of C, j_lo
/// a multiple of 32; `b` holds 32-wide panels (the last 16 wide when at most 16 columns are left),
/// each all k rows deep, the panel of column j at b + j * k (sgemm_small.h's PackedB).
void sgemm_avx512_packed(int64_t m, int64_t n, int64_t k, int64_t j_lo, int64_t j_hi, const float* a, int64_t lda,
                         const float* b, float* c, int64_t ldc, const GemmEpilogue& epilogue);

}  // namespace latent::cpu
