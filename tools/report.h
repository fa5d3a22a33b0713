// What a command reports (`latent eval`, `anomaly`, `classify`, `embed`, `version`): named values
// printed as aligned lines a person reads at a glance, or, with --json, as the one JSON line
// scripts parse (the same keys in the same order).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "models/io/json.h"

namespace latent::tools {

/// The result of one command, printed as a summary or as one JSON line.
class Report {
 public:
  /// `title`, when not empty, is the summary's first line (not part of the JSON).
  explicit Report(std::string title = "") : title_(std::move(title)) {}
  /// Adds a value: `key` is its JSON field, `label` its name in the summary and `shown` its text
  /// there with the unit ("0.0312 MSE per element"); empty `shown`: the value as JSON writes it.
  Report& add(const std::string& key, json::Value value, std::string label, std::string shown = "");
  /// Adds a value to the JSON line only (one the summary's title already shows).
  Report& add_json(const std::string& key, json::Value value);
  /// The summary lines: the title, then "  label   shown" aligned.
  std::string summary() const;
  /// The JSON line (without newline).
  std::string json_line() const { return json_.dump(); }
  /// Prints the JSON line when `as_json`, else the summary, on stdout.
  void print(bool as_json) const;

 private:
  std::string title_;
  json::Value json_ = json::Value::object();
  std::vector<std::pair<std::string, std::string>> rows_;
};

/// "81.3%" for 0.8127.
std::string percent(double fraction);

}  // namespace latent::tools
