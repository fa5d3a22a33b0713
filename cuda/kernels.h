// The boundary between the CUDA backend's host code (cuda_backend.cpp, compiled by the C++
// compiler with latent's headers) and its kernels (*.cu, compiled by nvcc). Only plain structs and
// integers cross it, so nvcc never parses fmt or the Tensor class, which keeps nvcc builds short.
//
// Every pointer is a device pointer to the first element of the operand (storage offset applied);
// strides are in elements. Launches go to the legacy default stream, so they are ordered with each
// other, with cudaMemcpy and with cuBLAS/cuDNN calls (all on stream 0).
#pragma once

#include <cstdint>

namespace latent::cuda {

inline constexpr int kMaxDims = 8;

/// Element types as the numeric values of latent::DType (Float32, Float64, Int64).
enum class Dt : uint8_t { F32 = 0, F64 = 1, I64 = 2 };

/// K operands iterated over a common shape (size-1 dims dropped, contiguous dims merged).
/// strides[k][d] is operand k's stride in elements along dim d (0 where it broadcasts).
template <int K>
struct Layout {
  int ndim = 0;
  int64_t numel = 1;
  bool contiguous = false;  ///< every operand dense row-major over the shape: index i is offset i
  int64_t shape[kMaxDims] = {};
  int64_t strides[K][kMaxDims] = {};
};

/// A CUDA runtime failure as a message ("cudaMalloc: out of memory"), or empty when ok.
/// Launchers throw latent::Error through this (raised by the host side, see cuda_backend.cpp).
[[noreturn]] void raise_cuda_error(const char* op, const char* what, int code, const char* name);
void check_launch(const char* op);

// ---- elementwise (cuda_elementwise.cu); op codes are UnaryOp / BinaryOp values ----
void launch_unary(int op, Dt dt, const Layout<2>& l, void* out, const void* x, double p0, double p1);
void launch_binary(int op, Dt dt, const Layout<3>& l, void* out, const void* a, const void* b, double p0, double p1);
void launch_where(Dt dt, Dt cond_dt, const Layout<4>& l, void* out, const void* cond, const void* a, const void* b);
void launch_copy(Dt out_dt, Dt src_dt, const Layout<2>& l, void* out, const void* src);
void launch_fill(Dt dt, const Layout<1>& l, void* out, double value);
/// True when no element is NaN or Inf (synchronises).
bool launch_all_finite(Dt dt, const Layout<1>& l, const void* x);

// ---- reductions (cuda_reduce.cu); op: 0 sum, 1 max, 2 min (ReduceOp) ----
/// For each of `outer` outputs (kept dims, x strides `kept`, out strides `out_strides`), reduce the
/// `inner` elements of x addressed by `reduced`. Sums accumulate in float64 (int64 for int64).
void launch_reduce(int op, Dt dt, const Layout<2>& kept, const Layout<1>& reduced, void* out, const void* x);
/// Max/min with indices along one dim of length `len` and x stride `step`; `l` iterates the
/// outputs with operands (values, indices, x).
void launch_arg_reduce(int op, Dt dt, const Layout<3>& l, int64_t len, int64_t step, void* values, int64_t* indices,
                       const void* x);

// ---- index kernels (cuda_reduce.cu); `l` iterates the index space (out for select/gather,
// src/index for the adds) with operands listed per kernel; `dim_size`/`dim_stride` describe the
// indexed dim: at[dim] is recovered from the element index through `dim_div` and `dim_len`.
struct IndexGeometry {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[3][kMaxDims] = {};  // operand strides in elements over `shape`
  int dim = 0;
};
/// out[..i..] = x[.. index[i] ..]; operands (out, x).
void launch_index_select(Dt dt, const IndexGeometry& g, void* out, const void* x, const int64_t* index,
                         int64_t index_stride, int64_t numel);
/// out[.. index[i] ..] += src[..i..]; operands (src, out).
void launch_index_add(Dt dt, const IndexGeometry& g, void* out, const void* src, const int64_t* index,
                      int64_t index_stride, int64_t numel);
/// out[..] = x[.. index[..] ..]; operands (out, x, index).
void launch_gather(Dt dt, const IndexGeometry& g, void* out, const void* x, const int64_t* index, int64_t numel);
/// out[.. index[..] ..] += src[..]; operands (src, out, index).
void launch_scatter_add(Dt dt, const IndexGeometry& g, void* out, const void* src, const int64_t* index,
                        int64_t numel);

// ---- optimizer (cuda_reduce.cu) ----
struct AdamArgs {
  double lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2;
  bool decoupled;
};
void launch_adam(Dt dt, void* param, const void* grad, void* m, void* v, void* vmax, int64_t n, const AdamArgs& a);

// ---- convolution helpers (cuda_pool.cu) ----
/// out (N, C, HW) += bias[c].
void launch_add_bias(Dt dt, void* out, const void* bias, int64_t n, int64_t c, int64_t hw);

// ---- pooling and resampling (cuda_pool.cu); all operands contiguous (N, C, H, W) ----
struct PoolGeometry {
  int64_t planes, in_h, in_w, out_h, out_w;
  int64_t kernel[2], stride[2], padding[2], dilation[2];
  bool count_include_pad;
};
void launch_max_pool(Dt dt, const PoolGeometry& g, const void* x, void* out, int64_t* indices);
void launch_max_pool_backward(Dt dt, const PoolGeometry& g, const void* grad_out, const int64_t* indices,
                              void* grad_input);
void launch_avg_pool(Dt dt, const PoolGeometry& g, const void* x, void* out);
void launch_avg_pool_backward(Dt dt, const PoolGeometry& g, const void* grad_out, void* grad_input);
void launch_adaptive_avg_pool(Dt dt, const PoolGeometry& g, const void* x, void* out);
void launch_adaptive_avg_pool_backward(Dt dt, const PoolGeometry& g, const void* grad_out, void* grad_input);
void launch_upsample(Dt dt, const PoolGeometry& g, const void* x, void* out, bool bilinear, bool align_corners);
void launch_upsample_backward(Dt dt, const PoolGeometry& g, const void* grad_out, void* grad_input, bool bilinear,
                              bool align_corners);
/// Sets n bytes... zero-fills count elements of dt at ptr (async on stream 0).
void zero_fill(Dt dt, void* ptr, int64_t count);

}  // namespace latent::cuda
