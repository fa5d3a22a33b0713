// Autocast state (see autocast.h): a per-thread autocast dtype and a per-thread GEMM precision.
#include "autocast.h"

#include "../autograd/error.h"

namespace latent {

namespace autocast::detail {
std::atomic<int> g_active_guards{0};
namespace {
thread_local DType t_autocast = kFloat32;  // what AutocastGuard set
thread_local DType t_gemm = kFloat32;      // what the running kLower op set
}  // namespace

DType gemm_dtype() { return t_gemm; }
GemmScope::GemmScope(DType dtype) : previous_(t_gemm) { t_gemm = dtype; }
GemmScope::~GemmScope() { t_gemm = previous_; }
}  // namespace autocast::detail

AutocastGuard::AutocastGuard(DType dtype, bool enabled) : previous_(autocast::detail::t_autocast) {
  if (dtype != kFloat32 && !is_half(dtype))
    fail("autocast", "dtype {} is not supported: expected bfloat16, float16 or float32", dtype);
  autocast::detail::t_autocast = enabled ? dtype : kFloat32;
  autocast::detail::g_active_guards.fetch_add(1, std::memory_order_relaxed);
}

AutocastGuard::~AutocastGuard() {
  autocast::detail::g_active_guards.fetch_sub(1, std::memory_order_relaxed);
  autocast::detail::t_autocast = previous_;
}

DType autocast_dtype() { return autocast::detail::t_autocast; }

}  // namespace latent
