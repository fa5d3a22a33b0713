// The one thread knob. latent's own CPU loops run on the calling thread; OpenBLAS keeps a pool of
// its own. set_num_threads(n) sizes that pool, so latent never runs more than n busy threads and
// two pools never fight over the cores (PyTorch's 2 + 2 threads on 2 cores ran 3x slower).
// LATENT_NUM_THREADS in the environment sets the starting value.
#pragma once

#include <string>

namespace latent {

/// Threads for everything latent runs (OpenBLAS's pool included). n >= 1.
void set_num_threads(int n);
int get_num_threads();
/// "OpenBLAS 0.3.21 ... Haswell MAX_THREADS=64 (pthread), 2 threads": what the benchmarks print.
std::string blas_info();

}  // namespace latent
