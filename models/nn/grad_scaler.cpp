// GradScaler: see grad_scaler.h.
#include "grad_scaler.h"

#include "../../autograd/error.h"
#include "../../autograd/grad_mode.h"
#include "../../ops/backend.h"
#include "../../ops/elementwise.h"

namespace latent {

GradScaler::GradScaler(const GradScalerOptions& options) : o_(options), scale_(options.init_scale) {
  if (!(o_.init_scale > 0)) fail("GradScaler", "init_scale is {}, expected > 0", o_.init_scale);
  if (!(o_.growth_factor > 1)) fail("GradScaler", "growth_factor is {}, expected > 1", o_.growth_factor);
  if (!(o_.backoff_factor > 0 && o_.backoff_factor < 1))
    fail("GradScaler", "backoff_factor is {}, expected in (0, 1)", o_.backoff_factor);
  if (o_.growth_interval < 1) fail("GradScaler", "growth_interval is {}, expected >= 1", o_.growth_interval);
}

Tensor GradScaler::scale(const Tensor& loss) const {
  if (!o_.enabled) return loss;
  return mul(loss, scale_);
}

bool GradScaler::step(optim::Optimizer& optimizer) {
  if (!o_.enabled) {
    optimizer.step();
    return true;
  }
  bool finite = true;
  {
    NoGradGuard no_grad;
    const double inv = 1.0 / scale_;
    for (const Tensor& p : optimizer.parameters()) {
      Tensor g = p.grad();
      if (!g.defined()) continue;
      g.mul_(inv);
      if (finite && !backend(g.device(), "GradScaler").all_finite(g)) finite = false;
    }
  }
  if (finite) {
    optimizer.step();
    if (++tracker_ >= o_.growth_interval) {
      scale_ *= o_.growth_factor;
      tracker_ = 0;
    }
  } else {
    ++skipped_;
    tracker_ = 0;
    scale_ *= o_.backoff_factor;
  }
  return finite;
}

}  // namespace latent
