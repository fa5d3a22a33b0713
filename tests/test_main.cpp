// The main of every doctest suite: doctest's runner, and exit code 77 (meson's "skipped") when the
// suite called latent::testing::skip_suite and nothing failed (tests/skip.h).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "skip.h"

namespace {
std::string& skip_reason() {
  static std::string reason;
  return reason;
}
}  // namespace

void latent::testing::skip_suite(const std::string& reason) {
  if (skip_reason().empty()) skip_reason() = reason.empty() ? "skipped" : reason;
}

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int rc = context.run();
  if (context.shouldExit() || rc != 0 || skip_reason().empty()) return rc;
  std::printf("SKIP: %s\n", skip_reason().c_str());
  return 77;
}
