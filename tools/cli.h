// Command-line parsing for the `latent` command: every user mistake becomes a UsageError, printed
// as one line with exit code 2.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace latent::tools {

/// A user error on the command line (exit code 2).
struct UsageError {
  std::string message;
};

/// Parsed arguments of one command.
class Args {
 public:
  /// Parses `argv` (after the command name). `valued` options take a value ("--epochs 3" or
  /// "--epochs=3"); `flags` take none; `positional` is how many bare arguments are required.
  Args(const std::string& command, const std::vector<std::string>& argv, const std::set<std::string>& valued,
       const std::set<std::string>& flags, size_t positional, const std::vector<std::string>& positional_names);
  bool has(const std::string& name) const { return values_.count(name) || flags_.count(name); }
  std::string str(const std::string& name, const std::string& fallback) const;
  long long integer(const std::string& name, long long fallback, long long lo, long long hi) const;
  double number(const std::string& name, double fallback, double lo, double hi) const;
  /// One of `choices` ("--optimizer must be one of adam, adamw, sgd; got 'adm'").
  std::string choice(const std::string& name, const std::string& fallback, const std::vector<std::string>& choices) const;
  const std::string& positional(size_t i) const { return positional_[i]; }
  bool help() const { return help_; }

 private:
  std::string command_;
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
  std::vector<std::string> positional_;
  bool help_ = false;
};

}  // namespace latent::tools
