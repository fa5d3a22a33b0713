// Optimizers, learning-rate schedulers and gradient clipping, each with PyTorch's update equations
// (torch.optim), LibTorch-style options:
//
//   latent::optim::Adam opt(model->parameters(), latent::optim::AdamOptions(1e-3).weight_decay(1e-4));
//   for (...) { opt.zero_grad(); loss = ...; loss.backward(); opt.step(); }
//
// Every parameter's state (momentum buffers, moment estimates, scratch) is allocated when the
// optimizer is built, and step() updates parameters and state in place, so a step allocates nothing.
// Parameters without a gradient are skipped, and their per-parameter step count does not advance
// (PyTorch's rule). step() runs under no-grad.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../../autograd/tensor.h"

namespace latent::optim {

/// Internal optimizer state by name ("step", "lr", "0.step", "0.exp_avg", ...), for checkpoints.
using OptimizerState = std::vector<std::pair<std::string, Tensor>>;

/// Base of the optimizers: a list of parameters, a learning rate and per-parameter state.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// Applies one update to every parameter that has a gradient.
  void step();
  /// Drops every parameter's gradient (set_to_none, PyTorch's default); with set_to_none = false
  /// the gradients are zeroed in place instead.
  void zero_grad(bool set_to_none = true);

  /// The current learning rate (schedulers change it).
  double lr() const { return lr_; }
  /// Sets the learning rate used by the next step().
  void set_lr(double lr);
  /// Number of step() calls so far.
  int64_t step_count() const { return step_count_; }
  /// The parameters being optimized.
  const std::vector<Tensor>& parameters() const { return params_; }
  /// "SGD", "Adam", "AdamW", "RMSprop".
  const char* name() const { return name_; }

  /// Everything step() depends on besides the parameters and options: "step" (int64 count of
  /// step() calls), "lr" (float64), and per parameter i: "i.step" (int64) and the state tensors
  /// ("i.momentum_buffer"; "i.exp_avg", "i.exp_avg_sq", "i.max_exp_avg_sq"; "i.square_avg",
  /// "i.grad_avg"). Tensors are copies, so later steps do not change them.
  OptimizerState state() const;
  /// Restores what state() returned, by name. Every name must be known and every tensor must have
  /// the expected shape and dtype ("[Adam] load_state: '0.exp_avg' has shape [3] ..., expected [2, 3]");
  /// nothing changes when a check fails. Missing names are an error too, unless strict is false.
  void load_state(const OptimizerState& state, bool strict = true);

 protected:
  /// Checks the parameters (defined, floating, leaves, no duplicates) and the learning rate.
  Optimizer(const char* name, std::vector<Tensor> params, double lr);
  /// Adds a state tensor for parameter i, shaped and typed like it, filled with zeros.
  void add_state(size_t i, const std::string& name);
  /// A scratch tensor like parameter i (not part of state()).
  void add_scratch(size_t i);
  /// The update of parameter i, whose gradient is `grad`; `step` is its step number (1 on the first).
  virtual void update(size_t i, const Tensor& grad, int64_t step) = 0;
  /// Unless ok, fails with "[SGD] invalid momentum value: -1" (what = "momentum value"), for constructors.
  void check_option(bool ok, const char* what, double value) const;

  /// Per-parameter storage; names index into `state`.
  struct ParamState {
    /// The parameter's dtype when the state was allocated (step() checks it has not changed).
    DType dtype = kFloat32;  // the parameter's dtype and shape when the state was allocated
    /// The parameter's shape when the state was allocated.
    Shape shape;
    /// Steps this parameter has taken (it advances only when the parameter has a gradient).
    int64_t step = 0;
    /// Named state tensors (momentum buffers, moment estimates), in state() order.
    std::vector<std::pair<std::string, Tensor>> state;  // in state() order
    /// Temporaries of the update, not saved.
    std::vector<Tensor> scratch;                         // temporaries of the update, not saved
  };
  /// One entry per parameter, in parameters() order.
  std::vector<ParamState> slots_;

 private:
  const char* name_;
  std::vector<Tensor> params_;
  double lr_;
  int64_t step_count_ = 0;
};

// ---- options (LibTorch style: SGDOptions(0.1).momentum(0.9).nesterov(true)) ----

#define LATENT_OPTION(Self, type, field, initial)                                    \
 public:                                                                            \
  Self& field(type value) { field##_ = value; return static_cast<Self&>(*this); }   \
  type field() const { return field##_; }                                           \
                                                                                    \
 private:                                                                           \
  type field##_ = initial

/// SGD: lr (required), momentum 0, dampening 0, weight_decay 0, nesterov false.
struct SGDOptions {
  /// Learning rate `lr` (required: SGD has no default); checked when the optimizer is built.
  explicit SGDOptions(double lr) { this->lr(lr); }
  /// Learning rate (setter returns *this for chaining; the getter reads it).
  LATENT_OPTION(SGDOptions, double, lr, 1e-3);
  /// Momentum factor, >= 0 (0: plain SGD).
  LATENT_OPTION(SGDOptions, double, momentum, 0.0);
  /// Dampening of the momentum's gradient term.
  LATENT_OPTION(SGDOptions, double, dampening, 0.0);
  /// L2 penalty added to the gradient, >= 0.
  LATENT_OPTION(SGDOptions, double, weight_decay, 0.0);
  /// Nesterov momentum (needs momentum > 0 and dampening 0).
  LATENT_OPTION(SGDOptions, bool, nesterov, false);
};

/// The options shared by Adam and AdamW; setters return the derived type so chains keep it.
template <class Self>
struct AdamOptionsBase {
  /// Both betas at once.
  Self& betas(std::pair<double, double> b) {
    beta1_ = b.first;
    beta2_ = b.second;
    return static_cast<Self&>(*this);
  }
  /// (beta1, beta2).
  std::pair<double, double> betas() const { return {beta1_, beta2_}; }
  /// Learning rate (setter returns the derived options for chaining; the getter reads it).
  LATENT_OPTION(Self, double, lr, 1e-3);
  /// Decay of the first-moment (mean) estimate, in [0, 1).
  LATENT_OPTION(Self, double, beta1, 0.9);
  /// Decay of the second-moment (uncentered variance) estimate, in [0, 1).
  LATENT_OPTION(Self, double, beta2, 0.999);
  /// Added to the denominator for stability, >= 0.
  LATENT_OPTION(Self, double, eps, 1e-8);
  /// Weight decay, >= 0 (added to the gradient for Adam, decoupled for AdamW).
  LATENT_OPTION(Self, double, weight_decay, 0.0);
  /// Use the running maximum of the second moment (AMSGrad).
  LATENT_OPTION(Self, bool, amsgrad, false);
};

/// Adam: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, amsgrad false.
struct AdamOptions : AdamOptionsBase<AdamOptions> {
  /// Defaults as above, with learning rate `lr`.
  explicit AdamOptions(double lr = 1e-3) { this->lr(lr); }
};

/// AdamW: as Adam but weight_decay 1e-2 by default.
struct AdamWOptions : AdamOptionsBase<AdamWOptions> {
  /// Defaults as above (weight_decay 1e-2), with learning rate `lr`.
  explicit AdamWOptions(double lr = 1e-3) {
    this->lr(lr);
    weight_decay(1e-2);
  }
  /// The same settings as AdamOptions (what the shared Adam update reads).
  AdamOptions as_adam() const {
    return AdamOptions(lr()).betas(betas()).eps(eps()).weight_decay(weight_decay()).amsgrad(amsgrad());
  }
};

/// RMSprop: lr 1e-2, alpha 0.99, eps 1e-8, weight_decay 0, momentum 0, centered false.
struct RMSpropOptions {
  /// Defaults as above, with learning rate `lr`.
  explicit RMSpropOptions(double lr = 1e-2) { this->lr(lr); }
  /// Learning rate (setter returns *this for chaining; the getter reads it).
  LATENT_OPTION(RMSpropOptions, double, lr, 1e-2);
  /// Smoothing constant of the squared-gradient average.
  LATENT_OPTION(RMSpropOptions, double, alpha, 0.99);
  /// Added to the denominator for stability, >= 0.
  LATENT_OPTION(RMSpropOptions, double, eps, 1e-8);
  /// L2 penalty added to the gradient, >= 0.
  LATENT_OPTION(RMSpropOptions, double, weight_decay, 0.0);
  /// Momentum factor, >= 0.
  LATENT_OPTION(RMSpropOptions, double, momentum, 0.0);
  /// Normalize by the estimated variance (subtract the squared gradient mean).
  LATENT_OPTION(RMSpropOptions, bool, centered, false);
};

#undef LATENT_OPTION

// ---- optimizers ----

/// Stochastic gradient descent (torch.optim.SGD):
///   g = grad + weight_decay * p
///   b = g on a parameter's first step, else momentum * b + (1 - dampening) * g   (when momentum != 0)
///   g = nesterov ? g + momentum * b : b                                          (when momentum != 0)
///   p = p - lr * g
class SGD : public Optimizer {
 public:
  /// Allocates the state for `params`; throws "[SGD] ..." for an empty, duplicated, non-leaf or
  /// non-floating parameter, a negative lr, momentum or weight_decay, or nesterov without momentum.
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  /// The options it was built with.
  const SGDOptions& options() const { return options_; }

 protected:
  void update(size_t i, const Tensor& grad, int64_t step) override;

 private:
  SGDOptions options_;
};

/// Adam (torch.optim.Adam), at step t:
///   g = grad + weight_decay * p
///   m = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2
///   amsgrad: v_max = max(v_max, v), used in place of v below
///   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
class Adam : public Optimizer {
 public:
  /// Allocates the moment estimates for `params`; throws "[Adam] ..." for invalid parameters, a
  /// negative lr, eps or weight_decay, or a beta outside [0, 1).
  Adam(std::vector<Tensor> params, const AdamOptions& options = AdamOptions());
  /// The options it was built with.
  const AdamOptions& options() const { return options_; }

 protected:
  /// For AdamW: the same update with decoupled weight decay.
  Adam(const char* name, std::vector<Tensor> params, const AdamOptions& options, bool decoupled);
  void update(size_t i, const Tensor& grad, int64_t step) override;

 private:
  AdamOptions options_;
  bool decoupled_;  // AdamW: p = p (1 - lr weight_decay) first, and no weight decay in g
};

/// AdamW (torch.optim.AdamW): p = p * (1 - lr * weight_decay), then Adam's update without weight
/// decay in the gradient.
class AdamW : public Adam {
 public:
  /// Allocates the moment estimates; throws "[AdamW] ..." as Adam does.
  AdamW(std::vector<Tensor> params, const AdamWOptions& options = AdamWOptions());
};

/// RMSprop (torch.optim.RMSprop):
///   g = grad + weight_decay * p
///   v = alpha v + (1 - alpha) g^2
///   centered: g_avg = alpha g_avg + (1 - alpha) g;  d = sqrt(v - g_avg^2) + eps;  else d = sqrt(v) + eps
///   momentum > 0: b = momentum b + g / d;  p = p - lr b;   else p = p - lr g / d
class RMSprop : public Optimizer {
 public:
  /// Allocates the state for `params`; throws "[RMSprop] ..." for invalid parameters or a negative
  /// lr, eps, alpha, momentum or weight_decay.
  RMSprop(std::vector<Tensor> params, const RMSpropOptions& options = RMSpropOptions());
  /// The options it was built with.
  const RMSpropOptions& options() const { return options_; }

 protected:
  void update(size_t i, const Tensor& grad, int64_t step) override;

 private:
  RMSpropOptions options_;
};

// ---- learning-rate schedulers ----

/// Base of the schedulers: the epoch-based closed forms of torch.optim.lr_scheduler. Building one
/// records the optimizer's lr as base_lr and sets the epoch-0 value; each step() advances one epoch
/// and sets the optimizer's lr to get_lr(). The optimizer must outlive the scheduler.
class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  /// Advances one epoch and writes the new lr into the optimizer.
  void step();
  /// The lr for the current epoch.
  double get_lr() const { return lr_at(last_epoch_); }
  /// The lr the optimizer had when the scheduler was built.
  double base_lr() const { return base_lr_; }
  /// Epochs stepped so far (0 after construction).
  int64_t last_epoch() const { return last_epoch_; }
  /// Jumps to an epoch (for resuming from a checkpoint) and writes its lr into the optimizer.
  void set_last_epoch(int64_t epoch);
  /// The closed-form lr at an epoch.
  virtual double lr_at(int64_t epoch) const = 0;

 protected:
  /// Records optimizer.lr() as base_lr; `optimizer` is not owned and must outlive the scheduler.
  explicit LRScheduler(Optimizer& optimizer);
  /// Called at the end of derived constructors: writes lr_at(0) into the optimizer.
  void initialize() { set_last_epoch(0); }

 private:
  Optimizer& optimizer_;
  double base_lr_;
  int64_t last_epoch_ = 0;
};

/// base_lr * gamma^floor(epoch / step_size).
class StepLR : public LRScheduler {
 public:
  /// Sets the epoch-0 lr; throws "[StepLR] ..." for step_size < 1 or a negative gamma.
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  double lr_at(int64_t epoch) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

/// base_lr * gamma^epoch.
class ExponentialLR : public LRScheduler {
 public:
  /// Sets the epoch-0 lr; throws "[ExponentialLR] ..." for a negative gamma.
  ExponentialLR(Optimizer& optimizer, double gamma);
  double lr_at(int64_t epoch) const override;

 private:
  double gamma_;
};

/// eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.
class CosineAnnealingLR : public LRScheduler {
 public:
  /// Sets the epoch-0 lr; throws "[CosineAnnealingLR] ..." for T_max < 1 or a negative eta_min.
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0.0);
  double lr_at(int64_t epoch) const override;

 private:
  int64_t t_max_;
  double eta_min_;
};

/// Linear warm-up: base_lr * (start_factor + (end_factor - start_factor) * min(epoch, total_iters) / total_iters).
class LinearLR : public LRScheduler {
 public:
  /// Sets the epoch-0 lr; throws "[LinearLR] ..." for start_factor outside (0, 1], end_factor outside
  /// [0, 1] or total_iters < 1.
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3.0, double end_factor = 1.0, int64_t total_iters = 5);
  double lr_at(int64_t epoch) const override;

 private:
  double start_factor_, end_factor_;
  int64_t total_iters_;
};

/// The name used in the issue; the same as LinearLR.
using LinearWarmup = LinearLR;

// ---- gradient clipping ----

/// Scales the gradients of `params` in place so that their joint norm is at most max_norm:
/// total = (sum over gradients of ||g||_p^p)^(1/p) (the largest |g| for norm_type = inf), and every
/// gradient is multiplied by min(1, max_norm / (total + 1e-6)). Parameters without a gradient are
/// skipped. Returns total (before clipping).
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0);

}  // namespace latent::optim
