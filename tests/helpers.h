// Shared test helpers: value comparison against float64 references, gradcheck assertions, and
// error-message assertions.
#pragma once

#include <doctest/doctest.h>

#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "latent.h"

namespace latent::testing {

/// Every element of `actual` (any dtype, any strides) within atol + rtol*|expected| of `expected`.
inline void check_values(const Tensor& actual, const std::vector<double>& expected, double atol = 1e-6,
                         double rtol = 1e-5) {
  std::vector<double> got = actual.to_vector<double>();
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", expected " << expected[i]);
    if (std::isnan(expected[i])) {
      CHECK(std::isnan(got[i]));
    } else if (std::isinf(expected[i])) {
      CHECK(got[i] == expected[i]);
    } else {
      CHECK(std::abs(got[i] - expected[i]) <= atol + rtol * std::abs(expected[i]));
    }
  }
}

/// Two tensors equal in shape and within tolerance.
inline void check_close(const Tensor& actual, const Tensor& expected, double atol = 1e-6, double rtol = 1e-5) {
  REQUIRE(actual.shape() == expected.shape());
  check_values(actual, expected.to_vector<double>(), atol, rtol);
}

/// A float64 tensor with values from a fixed generator (reproducible across runs and platforms).
inline Tensor det_randn(const Shape& shape, uint64_t seed, bool requires_grad = true) {
  Generator gen(seed);
  Tensor t = randn(shape, kFloat64, &gen);
  if (requires_grad) t.requires_grad_(true);
  return t;
}

/// Values in (lo, hi), for ops with restricted domains (log, sqrt, division).
inline Tensor det_uniform(const Shape& shape, uint64_t seed, double lo, double hi, bool requires_grad = true) {
  Generator gen(seed);
  Tensor t = rand(shape, kFloat64, &gen);
  {
    NoGradGuard g;
    t.mul_(hi - lo).add_(lo);
  }
  if (requires_grad) t.requires_grad_(true);
  return t;
}

/// A fresh folder under the system temp folder, removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "latent_test_XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  /// The path of `name` inside the folder.
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

}  // namespace latent::testing

/// Asserts that gradcheck passes, printing its report on failure.
#define CHECK_GRADCHECK(fn, inputs)                                   \
  do {                                                                \
    auto gc_result_ = ::latent::gradcheck((fn), (inputs));            \
    INFO(gc_result_.report);                                          \
    CHECK(gc_result_.ok);                                             \
  } while (0)

/// Asserts that expr throws latent::Error whose message contains `substring`.
#define CHECK_THROWS_WITH_SUBSTR(expr, substring)                                   \
  do {                                                                              \
    bool thrown_ = false;                                                           \
    try {                                                                           \
      (void)(expr);                                                                 \
    } catch (const ::latent::Error& e_) {                                           \
      thrown_ = true;                                                               \
      INFO("message: " << std::string(e_.what()));                                               \
      CHECK(std::string(e_.what()).find(substring) != std::string::npos);           \
    }                                                                               \
    INFO("expected a latent::Error containing: " << (substring));                   \
    CHECK(thrown_);                                                                 \
  } while (0)
