// Seedable random numbers that are the same on every platform: xoshiro256** seeded through
// splitmix64, uniform doubles from the top 53 bits, normals by Box-Muller. (std::normal_distribution
// is implementation-defined, so it is not used.)
#pragma once

#include <cstdint>

namespace latent {

/// A random number generator. The global one is seeded by manual_seed().
class Generator {
 public:
  /// A generator seeded with `seed` through splitmix64 (the same sequence on every platform).
  explicit Generator(uint64_t seed = 0) { seed_(seed); }
  /// Restarts the sequence from `seed` (drops any cached normal).
  void manual_seed(uint64_t seed) { seed_(seed); }
  /// Next 64 random bits.
  uint64_t next_u64();
  /// Uniform in [0, 1).
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  /// Standard normal.
  double normal();
  /// Uniform integer in [0, n).
  uint64_t below(uint64_t n);

  /// Everything that determines the rest of the sequence.
  struct State {
    /// The four xoshiro256** state words.
    uint64_t s[4];
    /// The second Box-Muller normal, cached for the next normal() call.
    double spare;
    /// Whether `spare` holds a value.
    bool has_spare;
  };
  /// The full state, for checkpoints (restoring it continues the same sequence).
  State state() const { return {{s_[0], s_[1], s_[2], s_[3]}, spare_, has_spare_}; }
  /// Continues from a state() snapshot.
  void set_state(const State& st);

 private:
  void seed_(uint64_t seed);
  uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

/// The process-wide default generator.
Generator& default_generator();
/// Seeds the default generator (LibTorch's torch::manual_seed).
void manual_seed(uint64_t seed);

}  // namespace latent
