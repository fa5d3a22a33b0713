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

/// Row-major matrices as nested float64 vectors: the tests' hand-written references.
using Rows = std::vector<std::vector<double>>;

/// t (N, ...) as N rows of its other elements, in float64 (any dtype, any strides).
inline Rows rows_of(const Tensor& t) {
  const std::vector<double> v = t.to(kFloat64).contiguous().to_vector<double>();
  const auto n = static_cast<size_t>(t.size(0)), d = static_cast<size_t>(t.numel() / t.size(0));
  Rows out(n, std::vector<double>(d));
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) out[i][j] = v[i * d + j];
  return out;
}

/// x W^T + b for each row of x, in float64: W (out, in), b (out), as a Linear layer holds them.
inline Rows affine(const Rows& x, const Tensor& w, const Tensor& b) {
  const Rows W = rows_of(w);
  const std::vector<double> B = b.to(kFloat64).to_vector<double>();
  Rows out(x.size(), std::vector<double>(W.size()));
  for (size_t i = 0; i < x.size(); ++i)
    for (size_t o = 0; o < W.size(); ++o) {
      double acc = B[o];
      for (size_t k = 0; k < x[i].size(); ++k) acc += W[o][k] * x[i][k];
      out[i][o] = acc;
    }
  return out;
}

/// f applied to every element of x.
inline Rows map_rows(Rows x, double (*f)(double)) {
  for (auto& row : x)
    for (double& v : row) v = f(v);
  return x;
}

/// The parameter of `module` called `name` (a failed check when there is none).
inline Tensor named_parameter(const nn::Module& module, const std::string& name) {
  for (const auto& [n, t] : module.named_parameters())
    if (n == name) return t;
  FAIL("no parameter " << name);
  return {};
}

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
