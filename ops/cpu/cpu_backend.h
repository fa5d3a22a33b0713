// The CPU backend: every float32 GEMM through latent's AVX-512 kernel where the CPU has it (OpenBLAS
// on one thread otherwise and for float64), our own loops for everything else. Large GEMMs, the
// direct convolutions, Adam and the float32 elementwise fast paths from 64k elements are split over
// the one thread pool (ops/cpu/workers.h); other loops run on the calling thread (ops/threads.h).
#pragma once

#include "../backend.h"

namespace latent::cpu {

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }
  void unary(UnaryOp op, const Tensor& x, const Tensor& out, double p0, double p1) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, double p0, double p1) override;
  void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void copy(const Tensor& src, const Tensor& out) override;
  void fill(const Tensor& out, double value) override;
  void reduce(ReduceOp op, const Tensor& x, const Tensor& out) override;
  void arg_reduce(ReduceOp op, const Tensor& x, int dim, const Tensor& values, const Tensor& indices) override;
  void gemm(const Tensor& a, const Tensor& b, const Tensor& out, double beta) override;
  void index_select(const Tensor& x, int dim, const Tensor& index, const Tensor& out) override;
  void index_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) override;
  void gather(const Tensor& x, int dim, const Tensor& index, const Tensor& out) override;
  void scatter_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) override;
  void uniform(const Tensor& out, Generator& gen, double low, double high) override;
  void normal(const Tensor& out, Generator& gen, double mean, double std) override;
  bool all_finite(const Tensor& x) override;
  // cpu_optim.cpp
  void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                 const Tensor& max_exp_avg_sq, const AdamStep& s) override;
  // cpu_conv.cpp
  void conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out,
              const Conv2dParams& p) override;
  void conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Tensor& grad_input,
                             const Conv2dParams& p) override;
  void conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Tensor& grad_weight,
                              const Conv2dParams& p) override;
  // cpu_pool.cpp
  void max_pool2d(const Tensor& x, const Tensor& out, const Tensor& indices, const Pool2dParams& p) override;
  void max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_input) override;
  void avg_pool2d(const Tensor& x, const Tensor& out, const Pool2dParams& p) override;
  void avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_input, const Pool2dParams& p) override;
  void adaptive_avg_pool2d(const Tensor& x, const Tensor& out) override;
  void adaptive_avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_input) override;
  void upsample2d(const Tensor& x, const Tensor& out, bool bilinear, bool align_corners) override;
  void upsample2d_backward(const Tensor& grad_out, const Tensor& grad_input, bool bilinear,
                           bool align_corners) override;
  // cpu_fused.cpp
  void linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation,
                      const Tensor& out) override;
  void linear_inference(const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation,
                        const Tensor& out) override;
  void activation_backward(Activation activation, const Tensor& grad_out, const Tensor& out, const Tensor& grad_pre,
                           const Tensor& grad_bias) override;
  void binary_sum(BinaryOp term, const Tensor& a, const Tensor& b, const Tensor& out, double p0, double p1) override;
  void binary_scaled(BinaryOp term, const Tensor& a, const Tensor& b, const Tensor& scale, const Tensor& out,
                     double p0, double p1) override;
};

}  // namespace latent::cpu
