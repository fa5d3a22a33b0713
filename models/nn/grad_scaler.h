// Loss scaling for float16 training (PyTorch's GradScaler): the loss is multiplied by a scale
// before backward so small gradients survive float16's range; step() divides the gradients by
// the scale, skips the optimizer step when any gradient is Inf or NaN (counting it) and adapts
// the scale: x backoff (0.5) after an overflow, x growth (2) after growth_interval (2000) steps
// in a row without one. bfloat16 has float32's exponent range and needs no scaler.
#pragma once

#include <cstdint>

#include "../../autograd/tensor.h"
#include "optim.h"

namespace latent {

/// GradScaler's settings (PyTorch's defaults).
struct GradScalerOptions {
  double init_scale = 65536.0;    ///< the first scale, 2^16
  double growth_factor = 2.0;     ///< scale *= this after growth_interval finite steps in a row
  double backoff_factor = 0.5;    ///< scale *= this after a step with Inf/NaN gradients
  int64_t growth_interval = 2000; ///< finite steps in a row before the scale grows
  bool enabled = true;            ///< false: scale() and step() pass through (float32/bfloat16 runs)
};

/// Scales the loss and unscales and checks the gradients around an optimizer step.
class GradScaler {
 public:
  /// A scaler with `options`; throws "[GradScaler] ..." for a non-positive scale or factors that
  /// do not grow (growth <= 1) or back off (backoff outside (0, 1)), or an interval < 1.
  explicit GradScaler(const GradScalerOptions& options = {});
  /// loss * scale (the loss itself when disabled); call backward() on the result.
  Tensor scale(const Tensor& loss) const;
  /// Divides every gradient of `optimizer`'s parameters by the scale; when all are finite runs
  /// optimizer.step() and returns true, else skips it (counted in skipped_steps()) and returns
  /// false; then updates the scale. Disabled: optimizer.step(), true.
  bool step(optim::Optimizer& optimizer);
  /// The current scale.
  double get_scale() const { return scale_; }
  /// Steps skipped because of Inf/NaN gradients.
  int64_t skipped_steps() const { return skipped_; }
  /// Finite steps since the last overflow or growth.
  int64_t growth_tracker() const { return tracker_; }
  /// Whether the scaler acts.
  bool enabled() const { return o_.enabled; }

 private:
  GradScalerOptions o_;
  double scale_;
  int64_t skipped_ = 0, tracker_ = 0;
};

}  // namespace latent
