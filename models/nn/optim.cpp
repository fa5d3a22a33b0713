#include "optim.h"

#include <cmath>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "../../autograd/grad_mode.h"
#include "../../ops/backend.h"
#include "../../ops/creation.h"
#include "../../ops/elementwise.h"
#include "../../ops/reduce.h"

namespace latent::optim {
namespace {

// The Tensor API has in-place forms of add/mul/div but no `out = f(a, b)` into a preallocated
// tensor or in-place sqrt/maximum; these call the backend kernel into `out` directly, which is what
// an in-place op does, so the update allocates nothing. All operands have out's shape and dtype.
void binary_into(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, double p0 = 1.0) {
  backend(out.device(), "optim").binary(op, a, b, out, p0, 0.0);
  out.storage()->bump_version();
}

void unary_into(UnaryOp op, const Tensor& x, const Tensor& out) {
  backend(out.device(), "optim").unary(op, x, out, 0.0, 0.0);
  out.storage()->bump_version();
}

}  // namespace

// ---- Optimizer ----

Optimizer::Optimizer(const char* name, std::vector<Tensor> params, double lr)
    : name_(name), params_(std::move(params)), lr_(lr) {
  if (params_.empty()) fail(name_, "got an empty parameter list");
  std::unordered_set<const TensorImpl*> seen;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    if (!p.defined()) fail(name_, "parameter {} is an undefined tensor", i);
    if (!p.is_floating_point()) fail(name_, "parameter {} has dtype {}: expected float32 or float64", i, p.dtype());
    if (!p.is_leaf()) fail(name_, "parameter {} is not a leaf tensor (it has a grad_fn); optimize leaves only", i);
    if (!seen.insert(p.impl()).second) fail(name_, "parameter {} appears more than once in the parameter list", i);
  }
  set_lr(lr);
  slots_.resize(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    slots_[i].dtype = params_[i].dtype();
    slots_[i].shape = params_[i].shape();
  }
}

void Optimizer::check_option(bool ok, const char* what, double value) const {
  if (!ok) fail(name_, "invalid {}: {}", what, value);
}

void Optimizer::set_lr(double lr) {
  if (!(lr >= 0) || !std::isfinite(lr)) fail(name_, "invalid learning rate: {} (expected a finite value >= 0)", lr);
  lr_ = lr;
}

void Optimizer::add_state(size_t i, const std::string& name) {
  slots_[i].state.emplace_back(name, zeros_like(params_[i]));
}

void Optimizer::add_scratch(size_t i) { slots_[i].scratch.push_back(empty_like(params_[i])); }

void Optimizer::step() {
  NoGradGuard no_grad;
  // Check every parameter first, so a bad one leaves all of them unchanged.
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& param = params_[i];
    const Tensor grad = param.grad();
    if (!grad.defined()) continue;
    // The state was allocated for the parameter as it was; Module::to(dtype) changes it in place.
    if (param.dtype() != slots_[i].dtype || !(param.shape() == slots_[i].shape))
      fail(name_, "parameter {} changed from {} {} to {} {} after the optimizer was built; build the optimizer "
           "after converting the model", i, slots_[i].dtype, slots_[i].shape, param.dtype(), param.shape());
    if (grad.dtype() != param.dtype() || !(grad.shape() == param.shape()) || grad.device() != param.device())
      fail(name_, "parameter {} ({} {}) has a gradient of {} {}", i, param.dtype(), param.shape(), grad.dtype(),
           grad.shape());
    // State lives on the parameter's device (zeros_like at construction): moving the model later
    // would mix devices in the update kernels.
    for (const auto& state : slots_[i].state)
      if (state.second.defined() && state.second.device() != param.device())
        fail(name_, "parameter {} is on {} but its optimizer state is on {}; build the optimizer after "
             "model.to(device)", i, param.device(), state.second.device());
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor grad = params_[i].grad();
    if (grad.defined()) update(i, grad, ++slots_[i].step);
  }
  ++step_count_;
}

void Optimizer::zero_grad(bool set_to_none) {
  NoGradGuard no_grad;
  for (Tensor& p : params_) {
    if (set_to_none) {
      p.zero_grad();
    } else if (Tensor g = p.grad(); g.defined()) {
      g.zero_();
    }
  }
}

OptimizerState Optimizer::state() const {
  OptimizerState out;
  out.emplace_back("step", scalar_tensor(static_cast<double>(step_count_), kInt64));
  out.emplace_back("lr", scalar_tensor(lr_, kFloat64));
  for (size_t i = 0; i < slots_.size(); ++i) {
    out.emplace_back(fmt::format("{}.step", i), scalar_tensor(static_cast<double>(slots_[i].step), kInt64));
    for (const auto& [name, t] : slots_[i].state) out.emplace_back(fmt::format("{}.{}", i, name), t.clone());
  }
  return out;
}

void Optimizer::load_state(const OptimizerState& state, bool strict) {
  // What can be restored: counters (int64 scalars), the lr (a float64 scalar) and state tensors.
  struct Target {
    int64_t* count = nullptr;
    double* real = nullptr;
    Tensor* tensor = nullptr;
    bool found = false;
  };
  std::unordered_map<std::string, Target> targets;
  std::vector<std::string> order;
  auto add = [&](std::string name, Target t) {
    order.push_back(name);
    targets.emplace(std::move(name), t);
  };
  add("step", {&step_count_, nullptr, nullptr});
  add("lr", {nullptr, &lr_, nullptr});
  for (size_t i = 0; i < slots_.size(); ++i) {
    add(fmt::format("{}.step", i), {&slots_[i].step, nullptr, nullptr});
    for (auto& [name, t] : slots_[i].state) add(fmt::format("{}.{}", i, name), {nullptr, nullptr, &t});
  }
  for (const auto& [name, src] : state) {
    auto it = targets.find(name);
    if (it == targets.end())
      fail(name_, "load_state: unexpected entry '{}' (this {} has {} parameters)", name, name_, params_.size());
    Target& target = it->second;
    if (target.found) fail(name_, "load_state: entry '{}' appears more than once", name);
    target.found = true;
    if (!src.defined()) fail(name_, "load_state: '{}' is an undefined tensor", name);
    if (target.tensor) {
      if (!(src.shape() == target.tensor->shape()) || src.dtype() != target.tensor->dtype())
        fail(name_, "load_state: '{}' has shape {} and dtype {}, expected {} and {}", name, src.shape(), src.dtype(),
             target.tensor->shape(), target.tensor->dtype());
    } else if (src.numel() != 1 || src.dtype() != (target.count ? kInt64 : kFloat64)) {
      fail(name_, "load_state: '{}' must be a one-element {} tensor; got {} {}", name,
           target.count ? "int64" : "float64", src.dtype(), src.shape());
    } else if (target.real && !(src.item<double>() >= 0)) {
      fail(name_, "load_state: invalid learning rate {}", src.item<double>());
    }
  }
  if (strict) {
    for (const auto& name : order)
      if (!targets[name].found) fail(name_, "load_state: missing entry '{}' (strict=false keeps the current value)", name);
  }
  NoGradGuard no_grad;
  for (const auto& [name, src] : state) {
    Target& target = targets[name];
    if (target.count) *target.count = src.item<int64_t>();
    else if (target.real) *target.real = src.item<double>();
    else target.tensor->copy_(src.to(target.tensor->device()));  // a CPU checkpoint into CUDA state
  }
}

// ---- SGD ----

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : Optimizer("SGD", std::move(params), options.lr()), options_(options) {
  const auto& o = options_;
  check_option(o.momentum() >= 0, "momentum value", o.momentum());
  check_option(o.weight_decay() >= 0, "weight_decay value", o.weight_decay());
  if (o.nesterov() && (o.momentum() <= 0 || o.dampening() != 0))
    fail("SGD", "nesterov momentum requires a momentum > 0 and zero dampening; got momentum {}, dampening {}",
         o.momentum(), o.dampening());
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (o.momentum() != 0) add_state(i, "momentum_buffer");
    if (o.weight_decay() != 0 || o.nesterov()) add_scratch(i);
  }
}

void SGD::update(size_t i, const Tensor& grad, int64_t step) {
  const auto& o = options_;
  Tensor param = parameters()[i];
  ParamState& slot = slots_[i];
  Tensor g = grad;
  if (o.weight_decay() != 0) {
    binary_into(BinaryOp::Add, grad, param, slot.scratch[0], o.weight_decay());  // g + wd * p
    g = slot.scratch[0];
  }
  if (o.momentum() != 0) {
    Tensor& buf = slot.state[0].second;
    if (step == 1) buf.copy_(g);
    else buf.mul_(o.momentum()).add_(g, 1.0 - o.dampening());
    if (o.nesterov()) {
      binary_into(BinaryOp::Add, g, buf, slot.scratch[0], o.momentum());  // g + momentum * buf
      g = slot.scratch[0];
    } else {
      g = buf;
    }
  }
  param.add_(g, -lr());
}

// ---- Adam / AdamW ----

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options) : Adam("Adam", std::move(params), options, false) {}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& options)
    : Adam("AdamW", std::move(params), options.as_adam(), true) {}

Adam::Adam(const char* name, std::vector<Tensor> params, const AdamOptions& options, bool decoupled)
    : Optimizer(name, std::move(params), options.lr()), options_(options), decoupled_(decoupled) {
  const auto& o = options_;
  check_option(o.eps() >= 0, "epsilon value", o.eps());
  check_option(o.beta1() >= 0 && o.beta1() < 1, "beta parameter at index 0", o.beta1());
  check_option(o.beta2() >= 0 && o.beta2() < 1, "beta parameter at index 1", o.beta2());
  check_option(o.weight_decay() >= 0, "weight_decay value", o.weight_decay());
  for (size_t i = 0; i < slots_.size(); ++i) {
    add_state(i, "exp_avg");
    add_state(i, "exp_avg_sq");
    if (o.amsgrad()) add_state(i, "max_exp_avg_sq");
  }
}

void Adam::update(size_t i, const Tensor& grad, int64_t step) {
  // One fused pass over the parameter (backend adam_step), with PyTorch's equations:
  //   g += wd * p (Adam) or p *= 1 - lr * wd (AdamW); m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
  //   v_max = max(v_max, v) (AMSGrad); p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
  const auto& o = options_;
  const Tensor& param = parameters()[i];
  ParamState& slot = slots_[i];
  const Tensor g = grad.is_contiguous() ? grad : grad.contiguous();
  AdamStep s;
  s.lr = lr();
  s.beta1 = o.beta1();
  s.beta2 = o.beta2();
  s.eps = o.eps();
  s.weight_decay = o.weight_decay();
  s.decoupled = decoupled_;
  s.bias_correction1 = 1.0 - std::pow(o.beta1(), static_cast<double>(step));
  s.bias_correction2 = 1.0 - std::pow(o.beta2(), static_cast<double>(step));
  const Tensor none;
  backend(param.device(), name()).adam_step(param, g, slot.state[0].second, slot.state[1].second,
                                            o.amsgrad() ? slot.state[2].second : none, s);
  param.storage()->bump_version();
  for (size_t k = 0; k < (o.amsgrad() ? 3u : 2u); ++k) slot.state[k].second.storage()->bump_version();
}

// ---- RMSprop ----

RMSprop::RMSprop(std::vector<Tensor> params, const RMSpropOptions& options)
    : Optimizer("RMSprop", std::move(params), options.lr()), options_(options) {
  const auto& o = options_;
  check_option(o.eps() >= 0, "epsilon value", o.eps());
  check_option(o.alpha() >= 0, "alpha value", o.alpha());
  check_option(o.momentum() >= 0, "momentum value", o.momentum());
  check_option(o.weight_decay() >= 0, "weight_decay value", o.weight_decay());
  for (size_t i = 0; i < slots_.size(); ++i) {
    add_state(i, "square_avg");
    if (o.momentum() > 0) add_state(i, "momentum_buffer");
    if (o.centered()) add_state(i, "grad_avg");
    add_scratch(i);                                // g^2, then the denominator, then g / denominator
    if (o.weight_decay() != 0) add_scratch(i);     // grad + weight_decay * p
  }
}

void RMSprop::update(size_t i, const Tensor& grad, int64_t /*step*/) {
  const auto& o = options_;
  Tensor param = parameters()[i];
  ParamState& slot = slots_[i];
  Tensor& square_avg = slot.state[0].second;
  Tensor& work = slot.scratch[0];
  Tensor g = grad;
  if (o.weight_decay() != 0) {
    binary_into(BinaryOp::Add, grad, param, slot.scratch[1], o.weight_decay());
    g = slot.scratch[1];
  }
  binary_into(BinaryOp::Mul, g, g, work);
  square_avg.mul_(o.alpha()).add_(work, 1.0 - o.alpha());
  if (o.centered()) {
    Tensor& grad_avg = slot.state[o.momentum() > 0 ? 2 : 1].second;
    grad_avg.mul_(o.alpha()).add_(g, 1.0 - o.alpha());
    binary_into(BinaryOp::Mul, grad_avg, grad_avg, work);
    binary_into(BinaryOp::Sub, square_avg, work, work);  // v - g_avg^2
    unary_into(UnaryOp::Sqrt, work, work);
  } else {
    unary_into(UnaryOp::Sqrt, square_avg, work);
  }
  work.add_(o.eps());
  binary_into(BinaryOp::Div, g, work, work);  // g / (sqrt(...) + eps)
  if (o.momentum() > 0) {
    Tensor& buf = slot.state[1].second;
    buf.mul_(o.momentum()).add_(work);
    param.add_(buf, -lr());
  } else {
    param.add_(work, -lr());
  }
}

// ---- schedulers ----

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer), base_lr_(optimizer.lr()) {}

void LRScheduler::step() { set_last_epoch(last_epoch_ + 1); }

void LRScheduler::set_last_epoch(int64_t epoch) {
  if (epoch < 0) fail("LRScheduler", "epoch must be non-negative; got {}", epoch);
  last_epoch_ = epoch;
  optimizer_.set_lr(lr_at(epoch));
}

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  if (step_size <= 0) fail("StepLR", "step_size must be positive; got {}", step_size);
  if (!(gamma >= 0)) fail("StepLR", "gamma must be non-negative; got {}", gamma);
  initialize();
}

double StepLR::lr_at(int64_t epoch) const {
  return base_lr() * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler(optimizer), gamma_(gamma) {
  if (!(gamma >= 0)) fail("ExponentialLR", "gamma must be non-negative; got {}", gamma);
  initialize();
}

double ExponentialLR::lr_at(int64_t epoch) const { return base_lr() * std::pow(gamma_, static_cast<double>(epoch)); }

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer), t_max_(T_max), eta_min_(eta_min) {
  if (T_max <= 0) fail("CosineAnnealingLR", "T_max must be positive; got {}", T_max);
  if (!(eta_min >= 0)) fail("CosineAnnealingLR", "eta_min must be non-negative; got {}", eta_min);
  initialize();
}

double CosineAnnealingLR::lr_at(int64_t epoch) const {
  const double pi = std::acos(-1.0);
  return eta_min_ + (base_lr() - eta_min_) *
                        (1.0 + std::cos(pi * static_cast<double>(epoch) / static_cast<double>(t_max_))) / 2.0;
}

LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor, int64_t total_iters)
    : LRScheduler(optimizer), start_factor_(start_factor), end_factor_(end_factor), total_iters_(total_iters) {
  if (!(start_factor > 0 && start_factor <= 1))
    fail("LinearLR", "start_factor must be in (0, 1]; got {}", start_factor);
  if (!(end_factor >= 0 && end_factor <= 1)) fail("LinearLR", "end_factor must be in [0, 1]; got {}", end_factor);
  if (total_iters <= 0) fail("LinearLR", "total_iters must be positive; got {}", total_iters);
  initialize();
}

double LinearLR::lr_at(int64_t epoch) const {
  const double done = static_cast<double>(std::min(epoch, total_iters_)) / static_cast<double>(total_iters_);
  return base_lr() * (start_factor_ + (end_factor_ - start_factor_) * done);
}

// ---- clipping ----

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type) {
  constexpr const char* op = "clip_grad_norm_";
  if (!(norm_type > 0)) fail(op, "norm_type must be positive (or infinity); got {}", norm_type);
  if (!(max_norm >= 0)) fail(op, "max_norm must be non-negative; got {}", max_norm);
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const Tensor& p : params)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  double total = 0.0;
  const bool inf_norm = std::isinf(norm_type);
  for (const Tensor& g : grads) {
    if (inf_norm) {
      total = std::max(total, max(abs(g)).item<double>());
    } else {
      Tensor powered = norm_type == 2.0 ? square(g) : norm_type == 1.0 ? abs(g) : pow(abs(g), norm_type);
      total += sum(powered.to(kFloat64)).item<double>();
    }
  }
  if (!inf_norm) total = std::pow(total, 1.0 / norm_type);
  const double coef = max_norm / (total + 1e-6);
  if (!(coef >= 1.0)) {  // NaN total: scale by NaN, as PyTorch does
    for (Tensor& g : grads) g.mul_(coef);
  }
  return total;
}

}  // namespace latent::optim
