// The Backend interface: the kernels every device provides. Ops (ops/*.cpp) validate, allocate the
// output and call backend(device).kernel(...); they never touch device memory themselves.
// A backend that misses a kernel fails to compile (all methods are pure virtual, except the fused
// kernels at the end, whose defaults compose the others).
//
// Conventions for every kernel: `out` is preallocated with the right shape and dtype and may have
// any strides (in-place ops pass a view); inputs have the same dtype as `out` unless stated and are
// already broadcast-compatible with out's shape (missing leading dims and size-1 dims broadcast).
#pragma once

#include "../autograd/tensor.h"
#include "linalg.h"
#include "params.h"
#include "random.h"
#include "scalar_math.h"

namespace latent {

/// Hyper-parameters of one fused Adam/AdamW update (PyTorch's equations).
struct AdamStep {
  /// Learning rate, moment decays, denominator epsilon and weight decay (AdamOptions' meanings).
  /// @{
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  /// @}
  bool decoupled = false;  ///< AdamW: p *= 1 - lr * weight_decay instead of g += weight_decay * p
  /// 1 - beta1^step and 1 - beta2^step, precomputed by the optimizer for this step.
  /// @{
  double bias_correction1 = 1, bias_correction2 = 1;  ///< 1 - beta^step
/// @}
};

/// The kernels one device provides; ops call them through backend(device) (see the file comment
/// for the conventions every kernel follows). Backends are owned by their registrar and live for the process.
class Backend {
 public:
  virtual ~Backend() = default;
  /// The device's name for messages ("cpu", "cuda").
  virtual const char* name() const = 0;

  /// out = f(x) elementwise (LATENT_UNARY_OPS), with parameters p0, p1.
  virtual void unary(UnaryOp op, const Tensor& x, const Tensor& out, double p0, double p1) = 0;
  /// out = f(a, b) elementwise with broadcasting (LATENT_BINARY_OPS).
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, double p0, double p1) = 0;
  /// out = cond != 0 ? a : b; cond may have any dtype.
  virtual void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  /// out = src with broadcasting and dtype conversion (src's dtype may differ from out's).
  virtual void copy(const Tensor& src, const Tensor& out) = 0;
  /// Sets every element of out to value (converted to out's dtype).
  virtual void fill(const Tensor& out, double value) = 0;
  /// out has x's rank with size 1 in the reduced dims (keepdim form). Sum accumulates in float64.
  virtual void reduce(ReduceOp op, const Tensor& x, const Tensor& out) = 0;
  /// Max or Min along `dim`: values (x's dtype) and int64 indices, both in keepdim form.
  virtual void arg_reduce(ReduceOp op, const Tensor& x, int dim, const Tensor& values, const Tensor& indices) = 0;
  /// out = a @ b + beta * out for a: (M, K), b: (K, N), out: (M, N), or batched with a leading
  /// batch dim on all three. Any strides; transposed operands reach the BLAS call without a copy.
  virtual void gemm(const Tensor& a, const Tensor& b, const Tensor& out, double beta) = 0;
  /// out = x.index_select(dim, index); index is int64 1-d, already bounds-checked.
  virtual void index_select(const Tensor& x, int dim, const Tensor& index, const Tensor& out) = 0;
  /// out[i][index[i][j]] += src[i][j] along dim: the adjoint of index_select.
  virtual void index_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) = 0;
  /// out[..i..] = x[..index[..i..]..] along dim; index has out's shape.
  virtual void gather(const Tensor& x, int dim, const Tensor& index, const Tensor& out) = 0;
  /// out[..index[..i..]..] += src[..i..] along dim: the adjoint of gather.
  virtual void scatter_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) = 0;
  /// Fills out with uniform [low, high) or normal(mean, std) numbers drawn from gen in row-major order.
  virtual void uniform(const Tensor& out, Generator& gen, double low, double high) = 0;
  /// Normal(mean, std) numbers, as uniform (row-major draw order, so devices agree for one seed).
  virtual void normal(const Tensor& out, Generator& gen, double mean, double std) = 0;
  /// True when no element is NaN or Inf.
  virtual bool all_finite(const Tensor& x) = 0;

  // ---- optimizers ----
  /// One Adam/AdamW step over a parameter in a single pass: updates param, exp_avg, exp_avg_sq
  /// (and max_exp_avg_sq for AMSGrad; undefined otherwise) in place. All contiguous, one dtype.
  virtual void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                         const Tensor& max_exp_avg_sq, const AdamStep& s) = 0;

  // ---- convolution (the transposed convolution is conv2d_backward_input run forward) ----
  /// out = conv(x, weight) + bias. x: (N, C_in, H, W), weight: (C_out, C_in / groups, kH, kW),
  /// bias: (C_out) or undefined, out: (N, C_out, H_out, W_out); all contiguous.
  virtual void conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out,
                      const Conv2dParams& p) = 0;
  /// grad_input (N, C_in, H, W) = adjoint of conv2d w.r.t. x applied to grad_out (overwritten).
  virtual void conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Tensor& grad_input,
                                     const Conv2dParams& p) = 0;
  /// grad_weight (C_out, C_in / groups, kH, kW) = adjoint of conv2d w.r.t. weight (overwritten).
  virtual void conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Tensor& grad_weight,
                                      const Conv2dParams& p) = 0;

  // ---- pooling and resampling; x: (N, C, H, W) contiguous, outputs overwritten ----
  /// Max pooling; indices (int64, out's shape) hold the flat h * W + w position of each maximum.
  virtual void max_pool2d(const Tensor& x, const Tensor& out, const Tensor& indices, const Pool2dParams& p) = 0;
  /// grad_input = 0, then grad_out scattered (added) to the positions in indices.
  virtual void max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_input) = 0;
  /// Average pooling of x (N, C, H, W) into out with p's kernel, stride, padding, ceil_mode and count_include_pad.
  virtual void avg_pool2d(const Tensor& x, const Tensor& out, const Pool2dParams& p) = 0;
  /// grad_input = the adjoint of avg_pool2d applied to grad_out (grad_input overwritten).
  virtual void avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_input, const Pool2dParams& p) = 0;
  /// Adaptive average pooling to out's H and W (PyTorch's start/end index rule).
  virtual void adaptive_avg_pool2d(const Tensor& x, const Tensor& out) = 0;
  /// grad_input = the adjoint of adaptive_avg_pool2d applied to grad_out (grad_input overwritten).
  virtual void adaptive_avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_input) = 0;
  /// Nearest (PyTorch's floor(dst * in / out) rule) or bilinear resampling to out's H and W.
  virtual void upsample2d(const Tensor& x, const Tensor& out, bool bilinear, bool align_corners) = 0;
  /// grad_input = the adjoint of upsample2d applied to grad_out (grad_input overwritten).
  virtual void upsample2d_backward(const Tensor& grad_out, const Tensor& grad_input, bool bilinear,
                                   bool align_corners) = 0;

  // ---- fused kernels: one pass where the kernels above take two or three. Each has a default
  // composed of the kernels above (ops/backend_defaults.cpp), so a backend overrides only what it
  // has measured to pay. ----
  /// grad_pre (N, C) = grad_out * activation'(pre), read off the activation's output `out` (N, C)
  /// (relu: out > 0; sigmoid: out (1 - out); tanh: 1 - out^2; none: 1); then, when grad_bias (C)
  /// is defined, grad_bias = column sums of grad_pre (float64 accumulation, like reduce).
  virtual void activation_backward(Activation activation, const Tensor& grad_out, const Tensor& out,
                                   const Tensor& grad_pre, const Tensor& grad_bias);
  /// out (N, F) = activation(x W^T + bias), x (N, K), weight (F, K), bias (F) or undefined, out
  /// fresh and contiguous: fused_linear's forward. The CPU adds the bias and applies relu in its
  /// AVX-512 GEMM's store; the default copies the bias rows, multiplies with beta 1 and runs the
  /// activation in place.
  virtual void linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation,
                              const Tensor& out);
  /// linear_forward for a call that records no tape node (inference: grad mode off or nothing
  /// requires grad), so the weight is not about to change with every call: a backend may keep
  /// the weight in a layout of its own between calls (the CPU caches W^T packed for its GEMM,
  /// ops/cpu/sgemm_small.h). The default is linear_forward.
  virtual void linear_inference(const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation,
                                const Tensor& out);
  /// out (0-d, or all dims of size 1) = sum over all elements of term(a, b), a LATENT_BINARY_OPS
  /// entry of a and b of one shape, accumulated in float64: a pointwise loss and its reduction.
  virtual void binary_sum(BinaryOp term, const Tensor& a, const Tensor& b, const Tensor& out, double p0,
                          double p1);
  /// out = term(a, b) * scale, with scale broadcast to out (0-d for a Mean or Sum loss): a
  /// pointwise loss's gradient times the incoming gradient in one pass.
  virtual void binary_scaled(BinaryOp term, const Tensor& a, const Tensor& b, const Tensor& scale,
                             const Tensor& out, double p0, double p1);
};

/// The backend of a device; throws "[op] device cuda is not available ..." when none is registered.
Backend& backend(Device device, const char* op = "dispatch");
/// Installs a backend for a device type (the CUDA backend calls this when it is built).
void register_backend(DeviceType type, Backend* backend);
/// The CPU backend.
Backend& cpu_backend();

}  // namespace latent
