// Layers: nn::Module subclasses with PyTorch's constructor arguments, defaults, parameter names,
// default initialisation and printed form. Hold them by std::shared_ptr:
//
//   auto model = std::make_shared<latent::nn::Sequential>(
//       std::make_shared<latent::nn::Linear>(784, 64), std::make_shared<latent::nn::ReLU>(),
//       std::make_shared<latent::nn::Linear>(64, 784), std::make_shared<latent::nn::Sigmoid>());
//
// Weights are initialised as in PyTorch's reset_parameters(): kaiming_uniform_ with a = sqrt(5)
// (that is U(-1/sqrt(fan_in), 1/sqrt(fan_in))) and the bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
// drawn from the default generator (latent::manual_seed) unless a generator is passed to
// reset_parameters(). Parameters are float32; Module::to(kFloat64) converts a model.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "../../autograd/shape.h"
#include "../../ops/nn_ops.h"
#include "../../ops/random.h"
#include "module.h"

namespace latent::nn {

// ---- dense ----

/// y = x W^T + b; weight (out_features, in_features), bias (out_features).
class Linear : public Module {
 public:
  /// "[Linear] in_features must be positive; got 0" for sizes below 1.
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& input) override;
  /// Re-draws weight and bias with PyTorch's default rule (from gen, or the default generator).
  void reset_parameters(Generator* gen = nullptr);
  std::string extra_repr() const override;
  /// "[Linear] expected an input whose last dim is in_features = 784; got shape [2, 3]".
  void check_input(const Tensor& input) const;

  /// Input and output feature counts given to the constructor.
  /// @{
  int64_t in_features, out_features;
  /// @}
  Tensor weight;  ///< (out_features, in_features)
  Tensor bias;    ///< (out_features), undefined when constructed with bias = false
};

// ---- activations (no parameters) ----

/// max(x, 0).
class ReLU : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

/// x for x > 0, negative_slope * x otherwise.
class LeakyReLU : public Module {
 public:
  /// Throws nothing; any slope is accepted (0 gives ReLU).
  explicit LeakyReLU(double negative_slope = 0.01) : negative_slope(negative_slope) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  /// Slope applied to negative inputs.
  double negative_slope;
};

/// 1 / (1 + exp(-x)).
class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

/// tanh(x).
class Tanh : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

/// log(1 + exp(beta x)) / beta, linear where beta x > threshold.
class Softplus : public Module {
 public:
  /// beta scales the input (forward throws "[softplus] beta must be positive" unless beta > 0);
  /// threshold (on beta x) is where the output switches to x itself.
  explicit Softplus(double beta = 1.0, double threshold = 20.0) : beta(beta), threshold(threshold) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  /// Sharpness (beta) and the beta x above which the output is x itself (threshold).
  /// @{
  double beta, threshold;
/// @}
};

/// x for x > 0, alpha * (exp(x) - 1) otherwise.
class ELU : public Module {
 public:
  /// Throws nothing; alpha is the saturation value -alpha for large negative inputs.
  explicit ELU(double alpha = 1.0) : alpha(alpha) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  /// Saturation scale for negative inputs.
  double alpha;
};

/// Exact GELU, x * Phi(x) (PyTorch's approximate='none').
class GELU : public Module {
 public:
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
};

// ---- reshaping ----

/// Flattens dims start_dim..end_dim into one (defaults keep the batch dim).
class Flatten : public Module {
 public:
  /// Negative dims count from the end and are resolved against the input's rank in forward().
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  /// First and last dim (inclusive) merged into one.
  /// @{
  int64_t start_dim, end_dim;
/// @}
};

/// Splits dim into `sizes` (one of them may be -1): (N, 784) -> (N, 1, 28, 28) with Unflatten(1, {1, 28, 28}).
class Unflatten : public Module {
 public:
  /// Throws "[Unflatten] ..." when sizes is empty, holds a size below 1 other than -1, or more than one -1.
  Unflatten(int64_t dim, std::vector<int64_t> sizes);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  /// The dim that is split (negative counts from the end).
  int64_t dim;
  /// The sizes it is split into; at most one is -1 (inferred).
  std::vector<int64_t> sizes;
};

// ---- containers ----

/// Runs its children in order. They are named "0", "1", ... as in PyTorch, so the parameters of a
/// Sequential registered as "encoder" are "encoder.0.weight", "encoder.0.bias", ...
class Sequential : public Module {
 public:
  /// Sequential(std::make_shared<Linear>(4, 2), std::make_shared<ReLU>()); no arguments: empty.
  template <class... Ms>
    requires(std::is_convertible_v<std::shared_ptr<Ms>, std::shared_ptr<Module>> && ...)
  explicit Sequential(std::shared_ptr<Ms>... modules) {
    (push_back(std::move(modules)), ...);
  }
  /// Appends a module under the next index name.
  void push_back(std::shared_ptr<Module> module);
  /// The i-th module ("[Sequential] index 3 is out of range for 2 modules").
  std::shared_ptr<Module> operator[](size_t index) const;
  /// Number of modules.
  size_t size() const { return modules_.size(); }
  /// modules[n-1](...(modules[0](input))); an empty Sequential returns input. A Linear followed
  /// by a ReLU, Sigmoid or Tanh runs as one fused_linear op (same values, fewer passes).
  Tensor forward(const Tensor& input) override;

 private:
  std::vector<std::shared_ptr<Module>> modules_;  // the children in order, for a fast forward
};

// ---- convolutions (weights and bias: kaiming_uniform(a = sqrt(5)) and U(+-1/sqrt(fan_in))) ----

/// 1-d convolution over (N, C_in, L); weight (C_out, C_in / groups, kernel_size).
class Conv1d : public Module {
 public:
  /// Throws "[Conv1d] ..." for non-positive channels, kernel_size, stride or dilation, negative
  /// padding, or channels not divisible by groups; then initialises weight and bias.
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1, int64_t padding = 0,
         int64_t dilation = 1, int64_t groups = 1, bool bias = true);
  Tensor forward(const Tensor& input) override;
  /// Re-draws weight and bias with PyTorch's default rule.
  void reset_parameters(Generator* gen = nullptr);
  std::string extra_repr() const override;

  /// Constructor arguments: channels, kernel length, stride, zero padding (each side), dilation and groups.
  /// @{
  int64_t in_channels, out_channels, kernel_size, stride, padding, dilation, groups;
  /// @}
  /// Weight (C_out, C_in / groups, kernel_size) and bias (C_out; undefined when bias = false).
  /// @{
  Tensor weight, bias;
/// @}
};

/// 2-d convolution over (N, C_in, H, W); weight (C_out, C_in / groups, kH, kW).
class Conv2d : public Module {
 public:
  /// Throws "[Conv2d] ..." for non-positive channels, kernel_size, stride or dilation, negative
  /// padding, or channels not divisible by groups; then initialises weight and bias.
  Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, Pair stride = 1, Pair padding = 0,
         Pair dilation = 1, int64_t groups = 1, bool bias = true);
  Tensor forward(const Tensor& input) override;
  /// Re-draws weight and bias with PyTorch's default rule.
  void reset_parameters(Generator* gen = nullptr);
  std::string extra_repr() const override;

  /// Channel counts; (height, width) kernel, stride, zero padding and dilation; channel groups.
  /// @{
  int64_t in_channels, out_channels;
  Pair kernel_size, stride, padding, dilation;
  int64_t groups;
  /// @}
  /// Weight (C_out, C_in / groups, kH, kW) and bias (C_out; undefined when bias = false).
  /// @{
  Tensor weight, bias;
/// @}
};

/// 2-d transposed convolution; weight (C_in, C_out / groups, kH, kW). As in PyTorch, fan_in for the
/// default initialisation is computed from the weight tensor: (C_out / groups) * kH * kW.
class ConvTranspose2d : public Module {
 public:
  /// Throws "[ConvTranspose2d] ..." for invalid sizes (as Conv2d) or a negative output_padding;
  /// then initialises weight and bias.
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, Pair stride = 1, Pair padding = 0,
                  Pair output_padding = 0, int64_t groups = 1, bool bias = true, Pair dilation = 1);
  Tensor forward(const Tensor& input) override;
  /// Re-draws weight and bias with PyTorch's default rule.
  void reset_parameters(Generator* gen = nullptr);
  std::string extra_repr() const override;

  /// Channel counts; (height, width) kernel, stride, padding removed from the output, extra
  /// output rows/columns (output_padding), channel groups and dilation.
  /// @{
  int64_t in_channels, out_channels;
  Pair kernel_size, stride, padding, output_padding;
  int64_t groups;
  Pair dilation;
  /// @}
  /// Weight (C_in, C_out / groups, kH, kW) and bias (C_out; undefined when bias = false).
  /// @{
  Tensor weight, bias;
/// @}
};

// ---- normalization and regularization ----

/// Sums a BatchNorm's per-channel statistics over the processes of a data-parallel job, so that
/// every process normalises with the statistics of the whole global batch (synchronised batch
/// norm). dist::DistributedDataParallel sets one with DDPOptions::sync_batchnorm.
class BatchStatsReducer {
 public:
  virtual ~BatchStatsReducer() = default;
  /// The sum over the processes of `t` (1-d, float64), the same on every process; differentiable:
  /// backward sums the incoming gradients over the processes likewise. Every process calls it in
  /// the same order (a collective).
  virtual Tensor sum_over_processes(const Tensor& t) = 0;
};

/// Batch normalization over channel dim 1. Parameters weight (1s) and bias (0s) when affine;
/// buffers running_mean (0s), running_var (1s) and num_batches_tracked (int64) when
/// track_running_stats. Training normalizes with batch statistics and updates the running ones
/// (momentum, or a cumulative average when momentum is std::nullopt); eval uses the running ones.
class BatchNorm : public Module {
 public:
  /// Zeroes the running statistics and num_batches_tracked.
  void reset_running_stats();
  /// reset_running_stats(), weight 1, bias 0.
  void reset_parameters();
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  /// Channels C (the size of dim 1).
  int64_t num_features;
  /// Added to the variance before the square root.
  double eps;
  /// Weight of the new batch statistic in the running update; std::nullopt for a cumulative average.
  std::optional<double> momentum;
  /// Whether weight/bias exist (affine) and whether running statistics are kept and used in eval.
  /// @{
  bool affine, track_running_stats;
  /// @}
  /// Scale (1s) and shift (0s), shape (num_features), when affine; undefined otherwise.
  /// @{
  Tensor weight, bias;                                          ///< (num_features) when affine
  /// @}
  /// Running mean, running (unbiased) variance, and the int64 count of training batches, when
  /// track_running_stats; undefined otherwise.
  /// @{
  Tensor running_mean, running_var, num_batches_tracked;        ///< when track_running_stats
/// @}
  /// In training mode, batch statistics summed over the processes by this reducer (null: this
  /// process's batch alone, the default).
  std::shared_ptr<BatchStatsReducer> stats_reducer;

 protected:
  /// Registers the parameters and buffers that the flags ask for, initialised as in PyTorch.
  BatchNorm(int64_t num_features, double eps, std::optional<double> momentum, bool affine, bool track_running_stats);
  /// Throws "[BatchNorm2d] expected a 4-d input (N, C, H, W); got shape [...]" for a wrong rank.
  virtual void check_input(const Tensor& input) const = 0;

 private:
  /// forward in training mode with stats_reducer set (layers.cpp).
  Tensor synced_forward(const Tensor& input, double factor);
};

/// BatchNorm over (N, C) or (N, C, L).
class BatchNorm1d : public BatchNorm {
 public:
  /// Throws "[BatchNorm] ..." for num_features below 1, eps not positive or momentum outside [0, 1].
  explicit BatchNorm1d(int64_t num_features, double eps = 1e-5, std::optional<double> momentum = 0.1,
                       bool affine = true, bool track_running_stats = true)
      : BatchNorm(num_features, eps, momentum, affine, track_running_stats) {}

 protected:
  void check_input(const Tensor& input) const override;
};

/// BatchNorm over (N, C, H, W).
class BatchNorm2d : public BatchNorm {
 public:
  /// Throws "[BatchNorm] ..." for num_features below 1, eps not positive or momentum outside [0, 1].
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, std::optional<double> momentum = 0.1,
                       bool affine = true, bool track_running_stats = true)
      : BatchNorm(num_features, eps, momentum, affine, track_running_stats) {}

 protected:
  void check_input(const Tensor& input) const override;
};

/// Zeroes elements with probability p and scales the rest by 1 / (1 - p) in training mode;
/// the identity in eval mode. The mask is drawn from `gen` (the default generator when null).
class Dropout : public Module {
 public:
  /// Throws "[Dropout] p must be a probability in [0, 1]; got ..." otherwise.
  explicit Dropout(double p = 0.5, Generator* gen = nullptr);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  /// Probability of zeroing an element in training mode.
  double p;
  /// Generator for the mask (not owned; null: the default generator).
  Generator* gen;
};

// ---- pooling and resampling ----

/// 2-d max pooling; stride defaults to the kernel size.
class MaxPool2d : public Module {
 public:
  /// Throws "[MaxPool2d] ..." for a kernel_size, stride or dilation below 1 or a negative padding.
  explicit MaxPool2d(Pair kernel_size, std::optional<Pair> stride = std::nullopt, Pair padding = 0, Pair dilation = 1,
                     bool ceil_mode = false);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  /// Window size, step (the kernel size when not given), implicit -inf padding and dilation, (height, width).
  /// @{
  Pair kernel_size, stride, padding, dilation;
  /// @}
  /// Output size rounds up instead of down.
  bool ceil_mode;
};

/// 2-d average pooling; stride defaults to the kernel size.
class AvgPool2d : public Module {
 public:
  /// Throws "[AvgPool2d] ..." for a kernel_size or stride below 1 or a negative padding.
  explicit AvgPool2d(Pair kernel_size, std::optional<Pair> stride = std::nullopt, Pair padding = 0,
                     bool ceil_mode = false, bool count_include_pad = true);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  /// Window size, step (the kernel size when not given) and zero padding, (height, width).
  /// @{
  Pair kernel_size, stride, padding;
  /// @}
  /// Round the output size up (ceil_mode); count padded zeros in the divisor (count_include_pad).
  /// @{
  bool ceil_mode, count_include_pad;
/// @}
};

/// Resamples (N, C, H, W) by scale_factor (output floor(H * scale_factor) x floor(W * scale_factor)).
class Upsample : public Module {
 public:
  /// Throws "[Upsample] ..." for a scale_factor not positive and finite, or align_corners with Nearest.
  explicit Upsample(double scale_factor, InterpolateMode mode = InterpolateMode::Nearest, bool align_corners = false);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  /// Output size over input size, for H and W.
  double scale_factor;
  /// Nearest or Bilinear.
  InterpolateMode mode;
  /// Bilinear only: align the corner pixels' centres of input and output.
  bool align_corners;
};

}  // namespace latent::nn
