// CPU matmul: operands go to blas_gemm (cpu_blas.h) with a transpose flag and leading dimension
// read off their strides; only an operand with neither of its last two strides equal to 1 is
// copied first.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "../autocast.h"
#include "../blas_layout.h"
#include "cpu_backend.h"
#include "cpu_blas.h"
#include "sgemm_small.h"
#include "sgemm_small_dispatch.h"
#include "../quantize.h"

namespace latent::cpu {
namespace {

template <class T>
void gemm_typed(CpuBackend& be, const Tensor& a_in, const Tensor& b_in, const Tensor& out, double beta) {
  const bool batched = out.dim() == 3;
  const int ra = a_in.dim() - 2, rb = b_in.dim() - 2, ro = out.dim() - 2;
  const int64_t m = out.shape()[ro], n = out.shape()[ro + 1], k = a_in.shape()[ra + 1];
  const int64_t batch = batched ? out.shape()[0] : 1;

  Tensor a = a_in, b = b_in;
  BlasOperand la = blas_layout(m, k, a.strides()[ra], a.strides()[ra + 1]);
  if (!la.ok) {
    a = empty(a_in.shape(), a_in.dtype());
    be.copy(a_in, a);
    la = blas_layout(m, k, a.strides()[ra], a.strides()[ra + 1]);
  }
  BlasOperand lb = blas_layout(k, n, b.strides()[rb], b.strides()[rb + 1]);
  if (!lb.ok) {
    b = empty(b_in.shape(), b_in.dtype());
    be.copy(b_in, b);
    lb = blas_layout(k, n, b.strides()[rb], b.strides()[rb + 1]);
  }
  BlasOperand lc = blas_layout(m, n, out.strides()[ro], out.strides()[ro + 1]);
  Tensor c = out;
  if (!lc.ok || lc.transposed) {
    c = empty(out.shape(), out.dtype());
    if (beta != 0.0) be.copy(out, c);
    lc = blas_layout(m, n, c.strides()[ro], c.strides()[ro + 1]);
  }
  for (int64_t i = 0; i < batch; ++i) {
    const T* pa = a.data_ptr<T>() + (batched ? i * a.strides()[0] : 0);
    const T* pb = b.data_ptr<T>() + (batched ? i * b.strides()[0] : 0);
    T* pc = c.data_ptr<T>() + (batched ? i * c.strides()[0] : 0);
    blas_gemm<T>(la.transposed, lb.transposed, m, n, k, pa, la.ld, pb, lb.ld, T(beta), pc, lc.ld);
  }
  if (!c.is_same(out)) be.copy(c, out);
}

}  // namespace

namespace {
/// LATENT_NO_PREPACK=1 turns the small-M prepacked path off (A/B benchmarks, bisecting).
bool small_m_prepack_enabled() {
  static const bool on = [] {
    const char* env = std::getenv("LATENT_NO_PREPACK");
    return !(env && std::strcmp(env, "1") == 0);
  }();
  return on;
}

/// linear_forward and linear_inference: `prepack` lets float32 weights be packed once and cached.
void linear_cpu(CpuBackend& be, const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation,
                const Tensor& out, bool prepack) {
  const auto f32 = [](const Tensor& t) { return t.dtype() == kFloat32 && t.is_contiguous(); };
  const bool fused = sgemm_uses_latent_kernel() && x.dim() == 2 && f32(x) && f32(weight) && f32(out) &&
                     (!bias.defined() || f32(bias));
  const int64_t m = x.dim() == 2 ? x.shape()[0] : 0, k = weight.shape()[1], n = weight.shape()[0];
  // Inference: W^T packed once per weight version and cached (sgemm_small.h), any weight strides
  // (a tied decoder's W.t() too). Up to kSmallM rows the small-M kernel reads each weight once
  // per call; more rows run the general kernel on its panels without packing.
  // Under autocast (lowered GEMM precision) the cached float32 packing does not apply.
  const bool packed = prepack && autocast::detail::gemm_dtype() == kFloat32 && sgemm_uses_latent_kernel() &&
                      sgemm_packed_available() && m >= 1 && f32(x) && f32(out) &&
                      weight.dtype() == kFloat32 && (!bias.defined() || f32(bias));
  if (!fused && !packed) return be.Backend::linear_forward(x, weight, bias, activation, out);
  GemmEpilogue epilogue;
  epilogue.bias = bias.defined() ? bias.data_ptr<float>() : nullptr;
  epilogue.relu = activation == Activation::Relu;
  // The prepacked kernels apply the sigmoid in their store (bit for bit the separate pass).
  epilogue.sigmoid = packed && activation == Activation::Sigmoid;
  if (packed && m <= kSmallM) {
    sgemm_small_any(m, x.data_ptr<float>(), k, *prepacked_weight_t(weight), out.data_ptr<float>(), n, epilogue);
  } else if (packed) {
    sgemm_large_packed_any(m, x.data_ptr<float>(), k, *prepacked_weight_t(weight, PackedB::kPanelLarge),
                       out.data_ptr<float>(), n, epilogue);
  } else {
    // out = x W^T: A = x (m x k), B = W^T read transposed from W (n x k); bias and relu in the store.
    sgemm_epilogue(false, true, m, n, k, x.data_ptr<float>(), k, weight.data_ptr<float>(), k, out.data_ptr<float>(),
                   n, epilogue);
  }
  if (activation == Activation::Sigmoid && !epilogue.sigmoid) be.unary(UnaryOp::Sigmoid, out, out, 0, 0);
  if (activation == Activation::Tanh) be.unary(UnaryOp::Tanh, out, out, 0, 0);
}

}  // namespace

void CpuBackend::linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation,
                                const Tensor& out) {
  linear_cpu(*this, x, weight, bias, activation, out, false);
}

void CpuBackend::linear_inference(const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation,
                                  const Tensor& out) {
  if (detail::quantization_active() && x.dim() == 2 && x.dtype() == kFloat32 && out.dtype() == kFloat32 &&
      out.is_contiguous()) {
    // A weight with an int8 form runs the int8 GEMM (ops/quantize.cpp); others are observed when calibrating.
    if (detail::linear_inference_int8(x, weight, bias, activation, out)) return;
  }
  linear_cpu(*this, x, weight, bias, activation, out, small_m_prepack_enabled());
}

void CpuBackend::gemm(const Tensor& a, const Tensor& b, const Tensor& out, double beta) {
  visit_floating("matmul", out.dtype(), [&](auto tag) { gemm_typed<decltype(tag)>(*this, a, b, out, beta); });
}

}  // namespace latent::cpu
