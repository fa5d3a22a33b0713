// Autocast (mixed precision): while an AutocastGuard is alive on a thread, ops follow the policy
// table below, consulted in one place, apply<Op> (ops/apply.h), as torch.autocast does:
//
//  * kLower (matmul, linear, fused_linear, conv2d, conv_transpose2d): the op's products run with
//    both operands rounded to the guard's dtype (bfloat16, or float16) and float32 sums; its
//    output, its saved tensors and the gradients it returns stay float32. The GEMMs of the op's
//    backward run in the same precision (the node remembers it), whether or not a guard is alive
//    when backward() runs. On the CPU the bfloat16 products use VDPBF16PS where the CPU has
//    AVX512_BF16 (ops/cpu/bgemm.cpp) and otherwise round the operands and use the float32 GEMM.
//  * kFloat32 (reductions, softmax/log_softmax, exp/log/pow/sqrt, batch norm, every loss):
//    bfloat16/float16 inputs are converted to float32 first.
//  * every op (kLower too): a bfloat16/float16 input is converted to float32 with `to_dtype`, a
//    recorded op, so the tape carries the cast and the gradient comes back in the input's dtype.
//
// Parameters stay float32 (master weights) and so do their gradients. Ops not in the table run
// as they would without the guard. gradcheck (float64) is unaffected: the kLower rounding applies
// to float32 products only.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "../autograd/dtype.h"

namespace latent {

/// What autocast does with an op (see the top of ops/autocast.h).
enum class CastPolicy : uint8_t {
  kNone = 0,     ///< not in the table: runs as without autocast
  kLower = 1,    ///< products in the guard's dtype with float32 sums
  kFloat32 = 2,  ///< inputs converted to float32
};

/// One row of the autocast policy table: an op's unique name (op_registry.h) and its policy.
struct AutocastRule {
  std::string_view op;  ///< the op's name
  CastPolicy policy;    ///< what autocast does with it
};

/// The autocast policy table: the one place that says which ops run in low precision.
inline constexpr AutocastRule kAutocastPolicy[] = {
    {"matmul", CastPolicy::kLower},
    {"linear", CastPolicy::kLower},
    {"fused_linear", CastPolicy::kLower},
    {"conv2d", CastPolicy::kLower},
    {"conv_transpose2d", CastPolicy::kLower},
    {"sum", CastPolicy::kFloat32},
    {"mean", CastPolicy::kFloat32},
    {"max", CastPolicy::kFloat32},
    {"max_dim", CastPolicy::kFloat32},
    {"min_dim", CastPolicy::kFloat32},
    {"softmax", CastPolicy::kFloat32},
    {"log_softmax", CastPolicy::kFloat32},
    {"exp", CastPolicy::kFloat32},
    {"log", CastPolicy::kFloat32},
    {"pow", CastPolicy::kFloat32},
    {"sqrt", CastPolicy::kFloat32},
    {"batch_norm", CastPolicy::kFloat32},
    {"mse_loss", CastPolicy::kFloat32},
    {"l1_loss", CastPolicy::kFloat32},
    {"nll_loss", CastPolicy::kFloat32},
    {"binary_cross_entropy", CastPolicy::kFloat32},
    {"binary_cross_entropy_with_logits", CastPolicy::kFloat32},
};

/// The policy of the op named `op` (kNone when the table has no row for it); used at compile time.
constexpr CastPolicy autocast_policy(std::string_view op) {
  for (const AutocastRule& r : kAutocastPolicy)
    if (r.op == op) return r.policy;
  return CastPolicy::kNone;
}

/// Turns autocast on for this thread while alive (nested guards restore the previous state).
/// dtype: kBFloat16 (CPU: VDPBF16PS where present) or kFloat16 (CPU: operands rounded to
/// float16, products in float32: a correct but not a fast path; the fast one is CUDA's);
/// kFloat32 or enabled = false turns autocast off inside the guard.
class AutocastGuard {
 public:
  /// Starts autocast to `dtype`; throws "[autocast] dtype int8 ..." for a dtype that is not a 16-bit float or float32.
  explicit AutocastGuard(DType dtype, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  DType previous_;
};

/// The dtype autocast lowers products to on this thread, or kFloat32 when it is off.
DType autocast_dtype();

namespace autocast::detail {
/// Number of live AutocastGuards that lower (the one value apply() reads when nothing autocasts).
extern std::atomic<int> g_active_guards;
/// Whether some thread may be autocasting: the cheap test apply() makes first.
inline bool maybe_active() { return g_active_guards.load(std::memory_order_relaxed) != 0; }
/// The precision this thread's GEMMs run in (kFloat32, kBFloat16, kFloat16): set by kLower ops
/// around their forward and backward; read by the CPU GEMM entry (ops/cpu/cpu_blas.cpp).
DType gemm_dtype();
/// Sets gemm_dtype() for this thread while alive.
class GemmScope {
 public:
  /// Makes `dtype` this thread's GEMM precision until destruction.
  explicit GemmScope(DType dtype);
  ~GemmScope();
  GemmScope(const GemmScope&) = delete;
  GemmScope& operator=(const GemmScope&) = delete;

 private:
  DType previous_;
};
}  // namespace autocast::detail

}  // namespace latent
