// The CUDA backend: every Backend kernel on the GPU. Elementwise math comes from the X-macro lists
// of ops/scalar_math.h instantiated in cuda_elementwise.cu; GEMM goes to cuBLAS (cuda_blas.cpp),
// convolutions to cuDNN (cuda_conv.cpp); reductions, index ops, pooling, resampling and Adam are
// our kernels (cuda_reduce.cu, cuda_pool.cu). Host code here turns Tensors into the plain
// structs of kernels.h. It registers itself, with its caching allocator (cuda_allocator.cpp), when
// the library loads and cudaGetDeviceCount finds a GPU.
//
// Host <-> device copies: copy() accepts a CPU source or destination on one side; it stages
// through a contiguous buffer and cudaMemcpy. Everything runs on the legacy default stream.
#pragma once

#include "../ops/backend.h"
#include "kernels.h"

namespace latent::cuda {

class CudaBackend final : public Backend {
 public:
  const char* name() const override { return "cuda"; }
  void unary(UnaryOp op, const Tensor& x, const Tensor& out, double p0, double p1) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, double p0, double p1) override;
  void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void copy(const Tensor& src, const Tensor& out) override;
  void fill(const Tensor& out, double value) override;
  void reduce(ReduceOp op, const Tensor& x, const Tensor& out) override;
  void arg_reduce(ReduceOp op, const Tensor& x, int dim, const Tensor& values, const Tensor& indices) override;
  // cuda_blas.cpp
  void gemm(const Tensor& a, const Tensor& b, const Tensor& out, double beta) override;
  void index_select(const Tensor& x, int dim, const Tensor& index, const Tensor& out) override;
  void index_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) override;
  void gather(const Tensor& x, int dim, const Tensor& index, const Tensor& out) override;
  void scatter_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) override;
  void uniform(const Tensor& out, Generator& gen, double low, double high) override;
  void normal(const Tensor& out, Generator& gen, double mean, double std) override;
  bool all_finite(const Tensor& x) override;
  void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                 const Tensor& max_exp_avg_sq, const AdamStep& s) override;
  // cuda_conv.cpp
  void conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out,
              const Conv2dParams& p) override;
  void conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Tensor& grad_input,
                             const Conv2dParams& p) override;
  void conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Tensor& grad_weight,
                              const Conv2dParams& p) override;
  void max_pool2d(const Tensor& x, const Tensor& out, const Tensor& indices, const Pool2dParams& p) override;
  void max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_input) override;
  void avg_pool2d(const Tensor& x, const Tensor& out, const Pool2dParams& p) override;
  void avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_input, const Pool2dParams& p) override;
  void adaptive_avg_pool2d(const Tensor& x, const Tensor& out) override;
  void adaptive_avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_input) override;
  void upsample2d(const Tensor& x, const Tensor& out, bool bilinear, bool align_corners) override;
  void upsample2d_backward(const Tensor& grad_out, const Tensor& grad_input, bool bilinear,
                           bool align_corners) override;
};

/// The caching allocator for CUDA memory (cuda_allocator.cpp).
Allocator& cuda_allocator();

/// kernels.h dtype code of a tensor.
inline Dt dt_of(DType d) { return static_cast<Dt>(static_cast<uint8_t>(d)); }
inline Dt dt_of(const Tensor& t) { return dt_of(t.dtype()); }

/// Throws "[op] tensor on <device> reached the CUDA backend" unless t is a defined CUDA tensor.
void require_cuda(const char* op, const Tensor& t);

}  // namespace latent::cuda
