#include "report.h"

#include <fmt/format.h>

#include <algorithm>

namespace latent::tools {

Report& Report::add(const std::string& key, json::Value value, std::string label, std::string shown) {
  if (shown.empty()) shown = value.is_string() ? value.as_string() : value.dump();
  json_[key] = std::move(value);
  rows_.emplace_back(std::move(label), std::move(shown));
  return *this;
}

Report& Report::add_json(const std::string& key, json::Value value) {
  json_[key] = std::move(value);
  return *this;
}

std::string Report::summary() const {
  size_t width = 0;
  for (const auto& row : rows_) width = std::max(width, row.first.size());
  std::string out = title_.empty() ? "" : title_ + "\n";
  const std::string indent = title_.empty() ? "" : "  ";
  for (const auto& [label, shown] : rows_) out += fmt::format("{}{:<{}}  {}\n", indent, label, width, shown);
  return out;
}

void Report::print(bool as_json) const {
  if (as_json) fmt::print("{}\n", json_line());
  else fmt::print("{}", summary());
}

std::string percent(double fraction) { return fmt::format("{:.1f}%", 100 * fraction); }

}  // namespace latent::tools
