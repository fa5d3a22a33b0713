// Skips are skips: a suite whose subject is absent here (no GPU, no ONNX test data) calls
// skip_suite(reason); when its cases otherwise pass, test_main.cpp's main prints "SKIP: reason" and
// exits 77, which meson counts as skipped rather than passed. Failing cases still fail the suite.
#pragma once

#include <string>

namespace latent::testing {

/// Marks the whole suite as skipped, with the reason printed at the end (the first reason given wins).
void skip_suite(const std::string& reason);

}  // namespace latent::testing
