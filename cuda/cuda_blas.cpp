// CUDA GEMM through cuBLAS. cuBLAS is column-major: the row-major product C = A B is computed as
// C^T = B^T A^T, with each operand's transpose flag and leading dimension read off its strides by
// ops/blas_layout.h, shared with ops/cpu/cpu_gemm.cpp (an operand is copied only when neither of
// its last two strides is 1).
// Batches go to one strided-batched call (a batch stride of 0 broadcasts). The handle uses
// CUBLAS_DEFAULT_MATH: no TF32, so float32 results match the CPU within float32 rounding.
//
// cuBLAS is loaded with dlopen on first use (libcublas.so.13, else .12: the few entry points used
// here have one ABI in both), so the library loads on machines whose only cuBLAS is another major
// version (a PyTorch wheel's), and one without cuBLAS fails at the first matmul, naming it.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <string>
#include <type_traits>

#include "../ops/blas_layout.h"
#include "cuda_backend.h"

namespace latent::cuda {
namespace {

/// The cuBLAS entry points used here, resolved from the shared library.
struct CublasApi {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetMathMode) set_math_mode = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  decltype(&cublasDgemm_v2) dgemm = nullptr;
  decltype(&cublasSgemmStridedBatched) sgemm_batched = nullptr;
  decltype(&cublasDgemmStridedBatched) dgemm_batched = nullptr;
  std::string library;
};

const CublasApi& cublas() {
  static const CublasApi api = [] {
    CublasApi a;
    void* lib = nullptr;
    std::string errors;
    for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) {
      lib = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
      if (lib) {
        a.library = name;
        break;
      }
      errors += std::string(errors.empty() ? "" : "; ") + dlerror();
    }
    if (!lib) fail("matmul", "cannot load cuBLAS: {}", errors);
    auto get = [&](auto& fn, const char* symbol) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, symbol));
      if (!fn) fail("matmul", "{} has no symbol {}", a.library, symbol);
    };
    get(a.create, "cublasCreate_v2");
    get(a.set_stream, "cublasSetStream_v2");
    get(a.set_math_mode, "cublasSetMathMode");
    get(a.status_string, "cublasGetStatusString");
    get(a.sgemm, "cublasSgemm_v2");
    get(a.dgemm, "cublasDgemm_v2");
    get(a.sgemm_batched, "cublasSgemmStridedBatched");
    get(a.dgemm_batched, "cublasDgemmStridedBatched");
    return a;
  }();
  return api;
}

cublasHandle_t handle() {
  static cublasHandle_t h = [] {
    const CublasApi& api = cublas();
    cublasHandle_t created = nullptr;
    const cublasStatus_t s = api.create(&created);
    if (s != CUBLAS_STATUS_SUCCESS) fail("matmul", "cublasCreate failed: {}", api.status_string(s));
    api.set_stream(created, 0);
    api.set_math_mode(created, CUBLAS_DEFAULT_MATH);
    return created;
  }();
  return h;
}

void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail("matmul", "{} failed: {}", what, cublas().status_string(s));
}

}  // namespace

void CudaBackend::gemm(const Tensor& a_in, const Tensor& b_in, const Tensor& out, double beta) {
  if (!is_floating(out.dtype())) fail("matmul", "dtype {} is not supported: expected float32 or float64", out.dtype());
  const bool batched = out.dim() == 3;
  const int ra = a_in.dim() - 2, rb = b_in.dim() - 2, ro = out.dim() - 2;
  const int64_t m = out.shape()[ro], n = out.shape()[ro + 1], k = a_in.shape()[ra + 1];
  const int64_t batch = batched ? out.shape()[0] : 1;

  Tensor a = a_in, b = b_in;
  BlasOperand la = blas_layout(m, k, a.strides()[ra], a.strides()[ra + 1]);
  if (!la.ok) {
    a = empty(a_in.shape(), a_in.dtype(), a_in.device());
    copy(a_in, a);
    la = blas_layout(m, k, a.strides()[ra], a.strides()[ra + 1]);
  }
  BlasOperand lb = blas_layout(k, n, b.strides()[rb], b.strides()[rb + 1]);
  if (!lb.ok) {
    b = empty(b_in.shape(), b_in.dtype(), b_in.device());
    copy(b_in, b);
    lb = blas_layout(k, n, b.strides()[rb], b.strides()[rb + 1]);
  }
  BlasOperand lc = blas_layout(m, n, out.strides()[ro], out.strides()[ro + 1]);
  Tensor c = out;
  if (!lc.ok || lc.transposed) {
    c = empty(out.shape(), out.dtype(), out.device());
    if (beta != 0.0) copy(out, c);
    lc = blas_layout(m, n, c.strides()[ro], c.strides()[ro + 1]);
  }
  if (m > 0 && n > 0) {
    if (k == 0) {  // C = beta * C
      if (beta == 0.0) fill(c, 0.0);
      else unary(UnaryOp::MulScalar, c, c, beta, 0.0);
    } else {
      const cublasOperation_t op_a = la.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
      const cublasOperation_t op_b = lb.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
      const long long sa = batched ? a.strides()[0] : 0, sb = batched ? b.strides()[0] : 0,
                      sc = batched ? c.strides()[0] : 0;
      cublasHandle_t h = handle();
      const CublasApi& api = cublas();
      if (out.dtype() == kFloat32) {
        const float alpha = 1.0f, beta_f = static_cast<float>(beta);
        const float *pa = static_cast<const float*>(a.raw_data()), *pb = static_cast<const float*>(b.raw_data());
        float* pc = static_cast<float*>(c.raw_data());
        if (batch == 1)
          check(api.sgemm(h, op_b, op_a, int(n), int(m), int(k), &alpha, pb, int(lb.ld), pa, int(la.ld), &beta_f,
                            pc, int(lc.ld)),
                "cublasSgemm");
        else
          check(api.sgemm_batched(h, op_b, op_a, int(n), int(m), int(k), &alpha, pb, int(lb.ld), sb, pa,
                                          int(la.ld), sa, &beta_f, pc, int(lc.ld), sc, int(batch)),
                "cublasSgemmStridedBatched");
      } else {
        const double alpha = 1.0;
        const double *pa = static_cast<const double*>(a.raw_data()), *pb = static_cast<const double*>(b.raw_data());
        double* pc = static_cast<double*>(c.raw_data());
        if (batch == 1)
          check(api.dgemm(h, op_b, op_a, int(n), int(m), int(k), &alpha, pb, int(lb.ld), pa, int(la.ld), &beta, pc,
                            int(lc.ld)),
                "cublasDgemm");
        else
          check(api.dgemm_batched(h, op_b, op_a, int(n), int(m), int(k), &alpha, pb, int(lb.ld), sb, pa,
                                          int(la.ld), sa, &beta, pc, int(lc.ld), sc, int(batch)),
                "cublasDgemmStridedBatched");
      }
    }
  }
  if (!c.is_same(out)) copy(c, out);
}

}  // namespace latent::cuda
