// Small timing helpers shared by the benchmarks: wall-clock repetitions and their median.
// Benchmarks print figures; nothing here asserts a time.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <time.h>
#include <vector>

namespace bench {

/// Seconds since an arbitrary start (steady clock).
inline double now_s() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

/// CPU seconds used by this thread (not counting time the scheduler gave to other processes).
inline double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// Median of a non-empty list (mean of the two middle values for an even count).
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

inline double min_of(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
inline double max_of(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

/// Microseconds per call of `fn`, averaged over `iters` calls (one repetition).
template <class F>
double us_per_call(int64_t iters, F&& fn) {
  const double t0 = now_s();
  for (int64_t i = 0; i < iters; ++i) fn();
  return (now_s() - t0) / static_cast<double>(iters) * 1e6;
}

/// Wall-clock and thread-CPU microseconds per call of `fn` over `iters` calls (one repetition).
/// On a loaded machine wall > cpu; the gap is time spent waiting for a core.
struct WallCpu {
  double wall_us, cpu_us;
};
template <class F>
WallCpu wall_cpu_per_call(int64_t iters, F&& fn) {
  const double w0 = now_s(), c0 = thread_cpu_s();
  for (int64_t i = 0; i < iters; ++i) fn();
  const double n = static_cast<double>(iters);
  return {(now_s() - w0) / n * 1e6, (thread_cpu_s() - c0) / n * 1e6};
}

/// Value of `--name N` on the command line, or `fallback`.
inline int64_t int_flag(int argc, char** argv, std::string_view name, int64_t fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (name == argv[i]) return std::strtoll(argv[i + 1], nullptr, 10);
  return fallback;
}

/// Value of `--name WORD` on the command line, or `fallback`.
inline std::string str_flag(int argc, char** argv, std::string_view name, std::string fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (name == argv[i]) return argv[i + 1];
  return fallback;
}

}  // namespace bench
