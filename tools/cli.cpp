#include "cli.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace latent::tools {

Options::Options(std::string command, std::string about) : command_(std::move(command)), about_(std::move(about)) {}

Options& Options::positional(std::string metavar, std::string& into, std::string what) {
  positionals_.push_back({std::move(metavar), std::move(what), &into});
  return *this;
}

Options& Options::add(Spec spec) {
  if (find(spec.name)) throw std::logic_error(fmt::format("[cli] {}: option --{} is declared twice", command_, spec.name));
  specs_.push_back(std::move(spec));
  return *this;
}

Options::Spec* Options::find(std::string_view name) {
  for (Spec& s : specs_)
    if (s.name == name) return &s;
  return nullptr;
}

Options& Options::number(std::string name, std::string metavar, double& into, double lo, double hi, std::string help) {
  Spec s{name, std::move(metavar), std::move(help), into >= lo && into <= hi ? fmt::format("{}", into) : "",
         range_text(lo, hi)};
  s.set = [name, &into, lo, hi](const std::string& text) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(v) || v < lo || v > hi)
      throw UsageError{fmt::format("--{} expects a number in [{}, {}]; got '{}'", name, lo, hi, text)};
    into = v;
  };
  return add(std::move(s));
}

Options& Options::text(std::string name, std::string metavar, std::string& into, std::string help) {
  Spec s{std::move(name), std::move(metavar), std::move(help), into};
  s.set = [&into](const std::string& text) { into = text; };
  return add(std::move(s));
}

Options& Options::choice(std::string name, std::string metavar, std::string& into, std::vector<std::string> choices,
                         std::string help) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (auto& c : choices) pairs.emplace_back(c, c);
  return choice<std::string>(std::move(name), std::move(metavar), into, std::move(pairs), std::move(help));
}

Options& Options::flag(std::string name, bool& into, std::string help, bool value) {
  Spec s{std::move(name), "", std::move(help), ""};
  s.takes_value = false;
  s.set = [&into, value](const std::string&) { into = value; };
  return add(std::move(s));
}

Options& Options::repeated(std::string metavar, std::vector<std::string>& into, std::string what) {
  repeated_ = &into;
  repeated_metavar_ = std::move(metavar);
  repeated_what_ = std::move(what);
  return *this;
}

Options& Options::shown_default(std::string text) {
  specs_.back().default_text = std::move(text);
  return *this;
}

Options& Options::required() {
  specs_.back().required = true;
  return *this;
}

long long Options::parse_integer(const std::string& name, const std::string& text, long long lo, long long hi) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < lo || v > hi)
    throw UsageError{fmt::format("--{} expects an integer in [{}, {}]; got '{}'", name, lo, hi, text)};
  return v;
}

std::string Options::integer_default(long long value, long long lo, long long hi) {
  return value >= lo && value <= hi ? fmt::format("{}", value) : "";
}

std::string Options::range_text(double lo, double hi) {
  return hi < 1e6 ? fmt::format("{} to {}", lo, hi) : "";
}

void Options::bad_choice(const std::string& name, const std::vector<std::string>& names, const std::string& got) {
  throw UsageError{fmt::format("--{} must be one of {}; got '{}'", name, fmt::join(names, ", "), got)};
}

bool Options::parse(const std::vector<std::string>& argv) {
  if (std::any_of(argv.begin(), argv.end(), [](const std::string& a) { return a == "--help" || a == "-h"; })) {
    std::fputs(help().c_str(), stdout);
    return false;
  }
  size_t bare = 0;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      if (bare >= positionals_.size() && repeated_) {
        repeated_->push_back(arg);
        continue;
      }
      if (bare >= positionals_.size())
        throw UsageError{fmt::format("unexpected argument '{}' for {}", arg, command_)};
      *positionals_[bare++].into = arg;
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string flag = arg.substr(0, eq);
    Spec* s = find(std::string_view(flag).substr(2));
    if (!s) throw UsageError{fmt::format("unknown option '{}' for {} (see latent {} --help)", flag, command_, command_)};
    if (!s->takes_value) {
      if (eq != std::string::npos) throw UsageError{fmt::format("{} takes no value; got '{}'", flag, arg)};
      s->set("");
    } else if (eq != std::string::npos) {
      s->set(arg.substr(eq + 1));
    } else {
      if (i + 1 >= argv.size()) throw UsageError{fmt::format("{} needs a value", flag)};
      s->set(argv[++i]);
    }
    s->given = true;
  }
  if (bare < positionals_.size())
    throw UsageError{fmt::format("{} needs {} (see latent {} --help)", command_, positionals_[bare].what, command_)};
  if (repeated_ && repeated_->empty())
    throw UsageError{fmt::format("{} needs at least {} (see latent {} --help)", command_, repeated_what_, command_)};
  for (const Spec& s : specs_)
    if (s.required && !s.given)
      throw UsageError{fmt::format("{}: --{} {} is required ({})", command_, s.name, s.metavar, s.help)};
  return true;
}

bool Options::given(std::string_view name) const {
  for (const Spec& s : specs_)
    if (s.name == name) return s.given;
  throw std::logic_error(fmt::format("[cli] {}: no option --{}", command_, name));
}

std::string Options::help() const {
  std::string usage = "usage: latent " + command_;
  for (const Positional& p : positionals_) usage += " " + p.metavar;
  if (repeated_) usage += fmt::format(" {} [{}...]", repeated_metavar_, repeated_metavar_);
  for (const Spec& s : specs_)
    if (s.required) usage += fmt::format(" --{} {}", s.name, s.metavar);
  usage += " [options]\n\n" + about_ + "\n\noptions:\n";
  std::vector<std::pair<std::string, std::string>> rows;
  for (const Spec& s : specs_) {
    std::string text = s.help;
    if (!s.range.empty()) text += (text.empty() ? "" : ", ") + s.range;
    if (s.required) text += " (required)";
    else if (!s.default_text.empty()) text += fmt::format(" (default {})", s.default_text);
    rows.emplace_back(s.metavar.empty() ? "--" + s.name : fmt::format("--{} {}", s.name, s.metavar), text);
  }
  rows.emplace_back("-h, --help", "show this help");
  size_t width = 0;
  for (const auto& r : rows) width = std::max(width, r.first.size());
  for (const auto& [left, right] : rows) usage += fmt::format("  {:<{}}  {}\n", left, width, right);
  return usage;
}

}  // namespace latent::tools
