// gradcheck: compares the analytic gradients of a scalar function with central finite
// differences in float64. Users run it on their own ops and models.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "../autograd/tensor.h"

namespace latent {

/// Tolerances of gradcheck (PyTorch's defaults for float64).
struct GradcheckOptions {
  double eps = 1e-6;   ///< finite-difference step
  double atol = 1e-5;  ///< pass when |analytic - numeric| <= atol + rtol * |numeric|
  /// Relative tolerance in the pass rule above.
  double rtol = 1e-3;
};

/// Outcome of gradcheck: converts to bool; `report` describes the worst element.
struct GradcheckResult {
  /// True when every checked element is within tolerance.
  bool ok = false;
  std::string op;          ///< name of the function's output node ("mul", "sum", ...)
  int input = -1;          ///< index of the input with the worst element
  int64_t element = -1;    ///< flat (row-major) index of that element
  /// The analytic (backward) and numeric (finite-difference) derivative at that element.
  /// @{
  double analytic = 0, numeric = 0;
  /// @}
  double max_error = 0;    ///< |analytic - numeric| at that element
  double allowed = 0;      ///< atol + rtol * |numeric| at that element
  std::string report;      ///< one line with all of the above
  /// `ok`, so `if (gradcheck(...))` reads naturally.
  explicit operator bool() const { return ok; }
};

/// Checks d fn(inputs) / d inputs for every input that requires grad. fn must return a
/// one-element tensor; inputs must be float64 ("[gradcheck] input 0 has dtype float32 ...").
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace latent
