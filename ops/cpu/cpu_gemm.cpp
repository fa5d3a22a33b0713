// CPU GEMM through OpenBLAS. Operands are passed to cblas_?gemm with a transpose flag and leading
// dimension read off their strides; only an operand with neither of its last two strides equal to
// 1 is copied first.
#include <cblas.h>

#include <algorithm>

#include "../blas_layout.h"
#include "cpu_backend.h"

namespace latent::cpu {
namespace {

template <class T>
void gemm_call(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
               T beta, T* c, int64_t ldc) {
  const auto tra = ta ? CblasTrans : CblasNoTrans, trb = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, tra, trb, int(m), int(n), int(k), 1.0f, a, int(lda), b, int(ldb), beta, c, int(ldc));
  else
    cblas_dgemm(CblasRowMajor, tra, trb, int(m), int(n), int(k), 1.0, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

/// Products below this many multiply-adds run on one thread. OpenBLAS threads every sgemm above
/// 2^18 of them; for the autoencoders' 128x128x64 products (2^20) its second thread cost 6-7 us
/// on top of 18 us (1 vs 2 threads, 2-core EPYC, OpenBLAS 0.3.21 Haswell kernels), while the
/// 128x128x784 ones (2^23.6) can gain from it on an idle machine.
constexpr double kMinThreadedMacs = 4.0 * 1024 * 1024;

/// Caps OpenBLAS at one thread for its lifetime (the cap is a global of OpenBLAS's; restoring it is
/// a store, no thread is started or stopped).
class SingleThreadScope {
 public:
  explicit SingleThreadScope(bool active) : saved_(active ? openblas_get_num_threads() : 1) {
    if (saved_ > 1) openblas_set_num_threads(1);
  }
  ~SingleThreadScope() {
    if (saved_ > 1) openblas_set_num_threads(saved_);
  }
  SingleThreadScope(const SingleThreadScope&) = delete;
  SingleThreadScope& operator=(const SingleThreadScope&) = delete;

 private:
  int saved_;
};

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
  if (m > 0 && n > 0) {
    SingleThreadScope one_thread(static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) <
                                 kMinThreadedMacs);
    for (int64_t i = 0; i < batch; ++i) {
      const T* pa = a.data_ptr<T>() + (batched ? i * a.strides()[0] : 0);
      const T* pb = b.data_ptr<T>() + (batched ? i * b.strides()[0] : 0);
      T* pc = c.data_ptr<T>() + (batched ? i * c.strides()[0] : 0);
      if (k == 0) {
        // BLAS skips beta scaling with k = 0 in some builds; do it here.
        for (int64_t r = 0; r < m; ++r)
          for (int64_t j = 0; j < n; ++j) pc[r * lc.ld + j] = beta == 0.0 ? T(0) : pc[r * lc.ld + j] * T(beta);
        continue;
      }
      gemm_call<T>(la.transposed, lb.transposed, m, n, k, pa, la.ld, pb, lb.ld, T(beta), pc, lc.ld);
    }
  }
  if (!c.is_same(out)) be.copy(c, out);
}

}  // namespace

void CpuBackend::gemm(const Tensor& a, const Tensor& b, const Tensor& out, double beta) {
  visit_floating("matmul", out.dtype(), [&](auto tag) { gemm_typed<decltype(tag)>(*this, a, b, out, beta); });
}

}  // namespace latent::cpu
