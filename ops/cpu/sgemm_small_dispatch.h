// The prepacked float32 products of sgemm_small.h for whichever instruction set the CPU has
// (isa.h's cpu_isa(), capped by LATENT_CPU_ISA): the AVX-512 kernels of sgemm_small.cpp or the
// AVX2 + FMA ones of sgemm_small_avx2.cpp. Callers (cpu_gemm.cpp's linear) use the *_any entry
// points; on baseline CPUs they fall back to blas_gemm.
#pragma once

#include <cstdint>

#include "cpu_blas.h"

namespace latent::cpu {

struct PackedB;

/// Whether the prepacked kernels can run here (AVX2 + FMA or AVX-512, LATENT_CPU_ISA not base).
bool sgemm_packed_available();

/// sgemm_small (1 <= m <= kSmallM, 64-wide panels) on the widest instruction set present, with
/// the whole epilogue (bias, relu, sigmoid) applied whichever kernel runs.
void sgemm_small_any(int64_t m, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
                     const GemmEpilogue& epilogue);
/// sgemm_large_packed (any m, 32-wide panels) on the widest instruction set present.
void sgemm_large_packed_any(int64_t m, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
                            const GemmEpilogue& epilogue);

/// The AVX2 + FMA versions (call only when cpu_isa() >= 1); same contracts as sgemm_small and
/// sgemm_large_packed. sgemm_small_avx2 takes any panel width that is a multiple of 16.
void sgemm_small_avx2(int64_t m, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
                      const GemmEpilogue& epilogue);
void sgemm_large_packed_avx2(int64_t m, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
                             const GemmEpilogue& epilogue);

}  // namespace latent::cpu
