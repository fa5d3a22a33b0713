#include "cli.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace latent::tools {

Args::Args(const std::string& command, const std::vector<std::string>& argv, const std::set<std::string>& valued,
           const std::set<std::string>& flags, size_t positional, const std::vector<std::string>& positional_names)
    : command_(command) {
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      help_ = true;
      return;
    }
    if (a.rfind("--", 0) == 0) {
      std::string value;
      bool inline_value = false;
      if (auto eq = a.find('='); eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
        inline_value = true;
      }
      const std::string name = a.substr(2);
      if (valued.count(name)) {
        if (!inline_value) {
          if (i + 1 >= argv.size()) throw UsageError{fmt::format("{} needs a value", a)};
          value = argv[++i];
        }
        values_[name] = value;
      } else if (flags.count(name) && !inline_value) {
        flags_.insert(name);
      } else {
        throw UsageError{fmt::format("unknown option '{}' for {} (see latent {} --help)", a, command, command)};
      }
    } else {
      positional_.push_back(a);
    }
  }
  if (positional_.size() < positional)
    throw UsageError{fmt::format("{} needs {} (see latent {} --help)", command, positional_names[positional_.size()],
                                 command)};
  if (positional_.size() > positional)
    throw UsageError{fmt::format("unexpected argument '{}' for {}", positional_[positional], command)};
}

std::string Args::str(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

long long Args::integer(const std::string& name, long long fallback, long long lo, long long hi) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const std::string& s = it->second;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v < lo || v > hi)
    throw UsageError{fmt::format("--{} expects an integer in [{}, {}]; got '{}'", name, lo, hi, s)};
  return v;
}

double Args::number(const std::string& name, double fallback, double lo, double hi) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const std::string& s = it->second;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v) || v < lo || v > hi)
    throw UsageError{fmt::format("--{} expects a number in [{}, {}]; got '{}'", name, lo, hi, s)};
  return v;
}

std::string Args::choice(const std::string& name, const std::string& fallback,
                         const std::vector<std::string>& choices) const {
  std::string v = str(name, fallback);
  for (const auto& c : choices)
    if (c == v) return v;
  throw UsageError{fmt::format("--{} must be one of {}; got '{}'", name, fmt::join(choices, ", "), v)};
}

}  // namespace latent::tools
