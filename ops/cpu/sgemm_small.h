// Small-M float32 products for inference (M = 1..kSmallM rows, e.g. one request's batch):
// C = A B with B packed once into column panels and reused by every later call, so a batch-1
// forward streams each weight once and repacks nothing. Only on CPUs with AVX-512 (the caller
// falls back to blas_gemm elsewhere). cpu_gemm.cpp uses it for linear_forward with grad mode
// off; prepacked_weight() caches the packing of a weight tensor (sgemm_small.cpp).
#pragma once

#include <cstdint>
#include <memory>

#include "../../autograd/tensor.h"
#include "cpu_blas.h"

namespace latent::cpu {

/// Rows of A up to which the small-M kernel is used.
inline constexpr int64_t kSmallM = 16;

/// B (k x n) as column panels of `panel` floats (64 for sgemm_small, 32 for the general
/// kernel's sgemm_avx512_packed), the last one rounded up to a multiple of 16 and zero padded;
/// the panel that starts at column j sits at data + j * k, all k rows of its width.
struct PackedB {
  static constexpr int64_t kPanel = 64;       ///< sgemm_small's panel width
  static constexpr int64_t kPanelLarge = 32;  ///< sgemm_avx512_packed's panel width
  int64_t k = 0, n = 0, panel = kPanel;
  std::unique_ptr<float, void (*)(void*)> data{nullptr, nullptr};
  /// Bytes the panels take.
  size_t bytes() const;
};

/// Packs B[p][j] = b[p * stride_k + j * stride_n] (element strides; any layout) in panels of
/// `panel` (PackedB::kPanel or kPanelLarge) columns.
std::shared_ptr<const PackedB> pack_b_small(int64_t k, int64_t n, const float* b, int64_t stride_k, int64_t stride_n,
                                            int64_t panel = PackedB::kPanel);

/// C (m x n, row stride ldc) = A (m x k, row stride lda) B, with the epilogue's bias and relu in
/// the store. 1 <= m <= kSmallM; split by panels over the thread pool when the product is large
/// enough. Call only when sgemm_avx512_available().
void sgemm_small(int64_t m, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
                 const GemmEpilogue& epilogue);

/// C (m x n) = A B for any m with B packed in kPanelLarge panels (the general AVX-512 kernel
/// without its per-call packing), the epilogue in the store; split over the pool by panels of
/// columns (else rows) like blas_gemm. Call only when sgemm_avx512_available().
void sgemm_large_packed(int64_t m, const float* a, int64_t lda, const PackedB& b, float* c, int64_t ldc,
                        const GemmEpilogue& epilogue);

/// W^T packed in panels of `panel` columns, for a 2-d float32 CPU weight W (n x k, any strides): taken from a
/// process-wide cache keyed on W's storage, element offset, shape, strides and the storage's
/// version counter, so it is packed once per weight until an in-place change bumps the version
/// (optimizer steps, copy_, load_state_dict). Entries of freed storages are dropped. Thread-safe.
std::shared_ptr<const PackedB> prepacked_weight_t(const Tensor& weight, int64_t panel = PackedB::kPanel);

/// Drops every cached packing (tests; memory).
void clear_prepacked_weights();
/// Number of cached packings (tests).
size_t prepacked_weight_count();

}  // namespace latent::cpu
