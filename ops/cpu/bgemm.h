// Low-precision products for autocast (ops/autocast.h): C = A B (+ beta C) with A and B rounded
// to bfloat16 (or float16) and float32 products and sums, on float32 operands in blas_gemm's
// layout (cpu_blas.h). The conversion happens while packing, so callers pass float32.
//
// bfloat16 on CPUs with AVX512_BF16: A packed as rows of bf16 pairs, B as 16-column panels of
// pairs (one zmm per k pair), a tile of up to 12 rows x 32 columns in 24 zmm accumulators with
// VDPBF16PS (two products and a float32 add per lane). Elsewhere, and for float16: the
// operands are rounded to the dtype into float32 buffers and the float32 kernel runs on them
// (the same products and, up to summation order, the same sums).
#pragma once

#include <cstdint>

#include "../../autograd/dtype.h"
#include "cpu_blas.h"

namespace latent::cpu {

/// Whether the CPU has AVX512_BF16 (and AVX-512 is not capped by LATENT_CPU_ISA).
bool bgemm_avx512_available();

/// One thread's C = A B + beta C (m x n, k deep) with operands rounded to `dtype` (kBFloat16 or
/// kFloat16); epilogue (bias per column, relu) applied in the store when given (beta must be 0 then).
void lowp_gemm_serial(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                      int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                      const GemmEpilogue* epilogue = nullptr);

/// The path for CPUs without AVX512_BF16 and for float16: A and B rounded to `dtype` into
/// row-major float32 copies, then the float32 kernel (one thread; tests call it directly).
void lowp_gemm_fallback(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                        int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                        const GemmEpilogue* epilogue = nullptr);

/// lowp_gemm_serial split over the thread pool as blas_gemm splits (cpu_blas.cpp).
void lowp_gemm(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const GemmEpilogue* epilogue = nullptr);

}  // namespace latent::cpu
