// int8 GEMM for quantized inference: C = A (m x k, uint8) x W^T (W: n x k, int8), accumulated in
// int32, with dequantization (or requantization to uint8) fused into the store.
//
// Activations are uint8 with a zero point, weights int8 symmetric (zero point 0), because the
// instructions that do the work multiply unsigned by signed bytes: AVX-512 VNNI's VPDPBUSD
// (u8 x s8, four products summed into an int32 lane, no intermediate rounding or saturation) and
// AVX2's VPMADDUBSW (u8 x s8 pairs summed into int16, which *saturates*: 255 * 127 * 2 = 64770 >
// 32767). The AVX2 kernel keeps it exact by splitting each activation byte into its low 7 bits
// and its top bit: VPMADDUBSW on the low bits peaks at 127 * 128 * 2 = 32512 and on the top bit
// at 2 * 128, neither saturates, and VPMADDWD widens both to int32 (the top-bit part times 128).
// The portable fallback is plain int32 loops over the same packed layout. All three give the
// same int32 sums bit for bit; tests/test_quant.cpp checks them against a plain reference.
//
// Per output channel j:  real = a_scale * w_scale[j] * (acc - a_zero * colsum[j]) + bias[j],
// colsum[j] = sum_k W[j][k] (computed at packing), then relu, then either a float32 store (with a
// sigmoid when asked: the last layer of an autoencoder) or
// q = clamp(round_half_even(real / out_scale) + out_zero, 0, 255), or the corrected int32 sum
// acc - a_zero * colsum[j].
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace latent::cpu {

/// W (n x k, int8) packed for the kernels: panels of 16 output channels; in each panel, for each
/// group of 4 k's, the 16 channels' 4 bytes side by side (64 bytes: one zmm, two ymm). k is
/// rounded up to a multiple of 4 and n to a multiple of 16, both with zero weights.
struct PackedQWeight {
  int64_t n = 0, k = 0, k4 = 0, panels = 0;
  std::unique_ptr<int8_t, void (*)(void*)> data{nullptr, nullptr};
  std::vector<int32_t> col_sum;  ///< panels * 16 values: sum over k of each channel's weights
  /// A form of this weight a kernel derives on first use and keeps with it (the transposed
  /// conv's per-phase packings, ops/cpu/qconv.cpp); that kernel alone reads and replaces it.
  mutable std::shared_ptr<const void> derived;
  /// Bytes of one panel (k4 * 16).
  int64_t panel_bytes() const { return k4 * 16; }
};

/// Packs W[j][p] = w[j * ldw + p] (row-major n x k).
PackedQWeight pack_qweight(int64_t n, int64_t k, const int8_t* w, int64_t ldw);

/// The kernel variants, in increasing order.
enum class QIsa : int { Base = 0, Avx2 = 1, Avx512Vnni = 2 };
/// The best variant this CPU runs (AVX-512 VNNI needs avx512f/bw/vl and avx512_vnni), capped by
/// LATENT_CPU_ISA=avx2|base like the float kernels.
QIsa qgemm_best_isa();
const char* qisa_name(QIsa isa);

/// What the store does with each int32 sum.
struct QEpilogue {
  float a_scale = 1.0f;            ///< activations' scale
  int32_t a_zero = 0;              ///< activations' zero point (0..255)
  const float* w_scale = nullptr;  ///< n per-channel weight scales (null: all 1)
  const float* bias = nullptr;     ///< n values or null
  bool relu = false;                ///< max(., 0) after the bias
  bool sigmoid = false;             ///< float32 output only: 1 / (1 + e^-x) after the bias (and relu)
  // Exactly one output: float32, requantized uint8, or the int32 sums less the zero-point term
  // (acc - a_zero * colsum[j]: the raw sums when a_zero is 0).
  float* out_f32 = nullptr;
  uint8_t* out_u8 = nullptr;
  int32_t* out_i32 = nullptr;
  int64_t ldc = 0;                 ///< row stride of the output, in elements
  /// When set, output row i starts at row_offset[i] elements from the output pointer instead of
  /// i * ldc (a conv's output pixels of one stride phase, or any rows scattered by a table).
  const int64_t* row_offset = nullptr;
  int64_t col_stride = 1;          ///< column stride of the output (a conv's NCHW store: H*W)
  float out_scale = 1.0f;          ///< for out_u8
  int32_t out_zero = 0;            ///< for out_u8
};

/// C = A W^T with the epilogue. A: m rows of uint8, row stride lda >= b.k4 (bytes in [k, k4) may
/// hold anything: their weights are zero). Splits over the thread pool by panels when
/// m * n * k >= 2^18. isa defaults to qgemm_best_isa(); asking for one the CPU lacks throws.
void qgemm_u8s8(int64_t m, const uint8_t* a, int64_t lda, const PackedQWeight& b, const QEpilogue& epilogue);
void qgemm_u8s8(int64_t m, const uint8_t* a, int64_t lda, const PackedQWeight& b, const QEpilogue& epilogue,
                QIsa isa);

/// A's rows gathered from an image instead of read from a matrix (an implicit im2col): row i's k4
/// bytes are `segments` runs of `seg_bytes` bytes each (a multiple of 4; segments * seg_bytes =
/// b.k4), run s at a + row_offset[i] + seg_offset[s]. A conv's row is one output pixel and a run
/// one kernel row (or tap) of a padded channels-last image: the GEMM reads the image in place.
struct QRowGather {
  const int64_t* row_offset = nullptr;  ///< m byte offsets from a
  const int64_t* seg_offset = nullptr;  ///< `segments` byte offsets added to a row's
  int64_t segments = 0;                 ///< runs per row
  int64_t seg_bytes = 0;                ///< bytes per run (a multiple of 4)
};

/// C = A W^T with A's rows gathered as `rows` describes (the matrix form's lda is rows of k4
/// contiguous bytes); the same kernels, store and threading as qgemm_u8s8.
void qgemm_u8s8_gather(int64_t m, const uint8_t* a, const QRowGather& rows, const PackedQWeight& b,
                       const QEpilogue& epilogue, QIsa isa);
/// qgemm_u8s8_gather with the best ISA.
void qgemm_u8s8_gather(int64_t m, const uint8_t* a, const QRowGather& rows, const PackedQWeight& b,
                       const QEpilogue& epilogue);

/// q[i][p] = clamp(round_half_even(x[i][p] / scale) + zero, 0, 255) for m rows of k floats
/// (ONNX QuantizeLinear's rounding). NaN maps to the zero point.
void quantize_u8(int64_t m, int64_t k, const float* x, int64_t ldx, float scale, int32_t zero, uint8_t* q,
                 int64_t ldq);
/// quantize_u8 of n images (c, p) float32 (NCHW, p = H*W) into (n, p, c) uint8, channels last (the
/// layout the int8 convs chain in): q[i][s][ch] = level(x[i][ch][s]).
void quantize_u8_nhwc(int64_t n, int64_t c, int64_t p, const float* x, float scale, int32_t zero, uint8_t* q);

}  // namespace latent::cpu
