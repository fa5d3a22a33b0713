#include "gradcheck.h"

#include <cmath>

#include "../autograd/grad_mode.h"
#include "../autograd/node.h"
#include "backend.h"

namespace latent {
namespace {

double evaluate(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs) {
  NoGradGuard no_grad;
  Tensor out = fn(inputs);
  if (!out.defined() || out.numel() != 1)
    fail("gradcheck", "fn must return a one-element tensor; got {}", out.defined() ? fmt::format("shape {}", out.shape())
                                                                                     : std::string("undefined"));
  return out.item<double>();
}

}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs_in, const GradcheckOptions& options) {
  // Fresh leaves that alias the caller's data with the caller's exact strides (transposed and
  // sliced inputs stay so); numeric differentiation perturbs one element at a time and restores it.
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < inputs_in.size(); ++i) {
    const Tensor& t = inputs_in[i];
    if (!t.defined()) fail("gradcheck", "input {} is undefined", i);
    if (t.requires_grad() && t.dtype() != kFloat64)
      fail("gradcheck", "input {} has dtype {}; gradcheck runs in float64: pass x.to(latent::kFloat64)", i, t.dtype());
    if (t.requires_grad() && !t.device().is_cpu()) fail("gradcheck", "input {} is on {}; gradcheck runs on cpu", i, t.device());
    Tensor alias = t.detach();
    if (t.requires_grad()) alias.requires_grad_(true);
    inputs.push_back(alias);
  }

  GradcheckResult result;
  Tensor out = fn(inputs);
  if (!out.defined() || out.numel() != 1)
    fail("gradcheck", "fn must return a one-element tensor; got {}",
         out.defined() ? fmt::format("shape {}", out.shape()) : std::string("undefined"));
  if (!out.requires_grad()) fail("gradcheck", "the output does not depend on any input that requires grad");
  result.op = out.grad_fn() ? out.grad_fn()->name() : "leaf";
  out.backward();

  double worst = -INFINITY;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor& x = inputs[i];
    if (!x.requires_grad()) continue;
    Tensor grad = x.grad();
    // Element e of x in row-major order lives at offset(e) of its storage.
    const int64_t n = x.numel();
    double* base = static_cast<double*>(x.storage()->data());
    Shape index = Shape::filled(x.dim(), 0);
    std::vector<double> analytic = grad.defined() ? grad.to_vector<double>() : std::vector<double>(n, 0.0);
    for (int64_t e = 0; e < n; ++e) {
      int64_t off = x.storage_offset();
      for (int d = 0; d < x.dim(); ++d) off += index[d] * x.strides()[d];
      const double saved = base[off];
      base[off] = saved + options.eps;
      const double plus = evaluate(fn, inputs);
      base[off] = saved - options.eps;
      const double minus = evaluate(fn, inputs);
      base[off] = saved;
      const double numeric = (plus - minus) / (2 * options.eps);
      const double a = analytic[static_cast<size_t>(e)];
      // Worst element: largest ratio of |analytic - numeric| to its allowance atol + rtol |numeric|.
      const double error = std::abs(a - numeric);
      const double allowed = options.atol + options.rtol * std::abs(numeric);
      const double ratio = (std::isnan(a) || std::isnan(numeric)) ? INFINITY : error / allowed;
      if (ratio > worst) {
        worst = ratio;
        result.allowed = allowed;
        result.input = static_cast<int>(i);
        result.element = e;
        result.analytic = a;
        result.numeric = numeric;
        result.max_error = error;
      }
      for (int d = x.dim() - 1; d >= 0; --d) {
        if (++index[d] < x.shape()[d]) break;
        index[d] = 0;
      }
    }
  }
  result.ok = result.input >= 0 && worst <= 1.0;
  if (result.input < 0) fail("gradcheck", "no input requires grad");
  result.report = fmt::format("gradcheck {} for '{}': worst at input {} element {}: analytic {:.10g}, numeric {:.10g} "
                              "(|difference| {:.3g}, allowed {:.3g} = atol {:.3g} + rtol {:.3g} * |numeric|)",
                              result.ok ? "passed" : "FAILED", result.op, result.input, result.element,
                              result.analytic, result.numeric, result.max_error, result.allowed, options.atol,
                              options.rtol);
  return result;
}

}  // namespace latent
