// Errors: every user-caused failure throws latent::Error with a one-line message that names the op
// and shows the values, e.g. "[matmul] shapes [128, 784] and [64, 128] cannot be multiplied: 784 != 64".
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace latent {

/// The one exception type latent throws for user errors. what() is "[op] message".
class Error : public std::runtime_error {
 public:
  /// An error raised by `op` with a one-line `message` (what() gives "[op] message").
  Error(std::string op, const std::string& message)
      : std::runtime_error("[" + op + "] " + message), op_(std::move(op)) {}
  /// The op or component that raised the error ("matmul", "backward", "onnx").
  const std::string& op() const noexcept { return op_; }

 private:
  std::string op_;
};

/// Throws latent::Error("[op] " + formatted message).
template <class... Args>
[[noreturn]] void fail(const char* op, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(op, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace latent
