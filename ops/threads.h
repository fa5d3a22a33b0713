// The one thread knob. latent keeps one CPU thread pool (ops/cpu/workers.h): set_num_threads(n)
// lets its parallel regions run on n threads (the caller and n - 1 workers): GEMMs, the direct
// convolutions, the float32 Adam update and the float32 fast paths of relu/sigmoid, the fused
// activation backward and the fused losses from 64k elements. Other elementwise loops run on the
// calling thread. OpenBLAS is held at one thread and runs inside our parts, so two pools never
// fight over the cores (PyTorch's 2 + 2 threads on 2 cores ran 3x slower). LATENT_NUM_THREADS in
// the environment sets the starting value (default: OpenBLAS's, i.e. OPENBLAS_NUM_THREADS or the
// cores).
#pragma once

#include <string>

namespace latent {

/// Threads for everything latent runs. n >= 1.
void set_num_threads(int n);
/// The current thread count (LATENT_NUM_THREADS at start-up, else OpenBLAS's own choice).
int get_num_threads();
/// "OpenBLAS 0.3.21 ... (pthread), Haswell kernels, 2 threads, float32 GEMM: latent AVX-512 kernel":
/// what the benchmarks print.
std::string blas_info();

}  // namespace latent
