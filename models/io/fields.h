// Settings structs (AEConfig, TrainOptions) list their fields once, in a static `fields`
// function, and every place that reads or writes them by name walks that list: config.json
// (FieldWriter, FieldReader), `--resume` (FieldReader with Field::Resumed) and the command line
// (tools/cli.h's FieldOptions). A field's name, kind, range, choices and help are one line:
//
//   template <class Self, class V> static void fields(Self& o, V& v) {
//     v.integer(Field{"epochs", "N", "epochs", Field::Cli | Field::Stored}, o.epochs, 1, 100000);
//     v.choice(Field{"optimizer", "O", ""}, o.optimizer, {"adam", "adamw", "sgd"});
//   }
//
// A visitor has one member per kind: integer, number, text, choice (strings), choice (an enum
// from named values), flag (a bool) and integers (a list, config.json only).
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../../autograd/error.h"
#include "json.h"

namespace latent::models {

/// One field of a settings struct: its config.json key, how the command line shows it, and where
/// it is used.
struct Field {
  /// Where a field is used: a bit set of these values.
  enum Use : unsigned {
    Cli = 1,      ///< a `latent train` option --KEY (underscores as dashes, or `flag` when set)
    Stored = 2,   ///< written to config.json
    Resumed = 4,  ///< `--resume` takes it from config.json, not from the command line
    All = Cli | Stored | Resumed,
  };
  const char* key;                  ///< config.json key ("latent_dim")
  const char* metavar = "";         ///< the value's placeholder in --help ("D"); "" for flags
  const char* help = "";            ///< the --help line
  /// Bits of Use saying where the field appears (default All).
  unsigned use = All;
  const char* shown_default = "";   ///< --help's default in place of the member's value
  const char* flag = "";            ///< the option's name when it is not the key's ("quiet")

  /// True when `use` has bit `u`.
  bool has(Use u) const { return (use & u) != 0; }
  /// The command-line name: `flag`, or the key with dashes for underscores.
  std::string option_name() const {
    if (*flag) return flag;
    std::string name = key;
    for (char& c : name)
      if (c == '_') c = '-';
    return name;
  }
};

/// Writes every Stored field of a visited struct into a JSON object.
class FieldWriter {
 public:
  /// Writes into `out` (a JSON object), which must outlive the writer.
  explicit FieldWriter(json::Value& out) : out_(out) {}
  /// Stores the field's value under its key when it is Stored; ranges, choices and the flag's
  /// sense are the reader's business and ignored here. An enum choice is written by its name.
  /// @{
  template <std::integral T>
  void integer(const Field& f, const T& v, long long, long long) { put(f, static_cast<int64_t>(v)); }
  void number(const Field& f, const double& v, double, double) { put(f, v); }
  void text(const Field& f, const std::string& v) { put(f, v); }
  void choice(const Field& f, const std::string& v, const std::vector<std::string>&) { put(f, v); }
  template <class T>
  void choice(const Field& f, const T& v, const std::vector<std::pair<std::string, T>>& named) {
    for (const auto& [n, x] : named)
      if (x == v) return put(f, n);
  }
  void flag(const Field& f, const bool& v, bool = true) { put(f, v); }
  void integers(const Field& f, const std::vector<int64_t>& v) {
    if (!f.has(Field::Stored)) return;
    json::Value a = json::Value::array();
    for (int64_t x : v) a.push_back(x);
    out_[f.key] = a;
  }
/// @}

 private:
  template <class T>
  void put(const Field& f, T v) {
    if (f.has(Field::Stored)) out_[f.key] = std::move(v);
  }
  json::Value& out_;
};

/// Reads the fields of a visited struct from a JSON object: those with all of `use`'s bits
/// (Stored, or Resumed for --resume). A missing key keeps the member's value; a wrong type, a
/// value out of range or not among the choices throws
/// "[config] field 'latent_dim': expected an integer in [1, 1048576]; got -3".
class FieldReader {
 public:
  /// Reads from `in` (a JSON object, must outlive the reader) the fields whose use has every bit of `use`.
  FieldReader(const json::Value& in, unsigned use) : in_(in), use_(use) {}
  /// An integer within [lo, hi]; throws "[config] field 'K': expected an integer in [lo, hi]; got V".
  template <std::integral T>
  void integer(const Field& f, T& v, long long lo, long long hi) {
    if (const json::Value* x = find(f)) {
      if (!x->is_integer()) fail("config", "field '{}': expected an integer; got {}", f.key, x->dump());
      const long long got = x->as_int64();
      if (got < lo || got > hi) fail("config", "field '{}': expected an integer in [{}, {}]; got {}", f.key, lo, hi, got);
      v = static_cast<T>(got);
    }
  }
  /// A number within [lo, hi]; throws "[config] field 'K': expected a number in [lo, hi]; got V".
  void number(const Field& f, double& v, double lo, double hi) {
    if (const json::Value* x = find(f)) {
      if (!x->is_number()) fail("config", "field '{}': expected a number; got {}", f.key, x->dump());
      const double got = x->as_double();
      if (!(got >= lo && got <= hi)) fail("config", "field '{}': expected a number in [{}, {}]; got {}", f.key, lo, hi, got);
      v = got;
    }
  }
  /// A string; throws "[config] field 'K': expected a string; got V" for another JSON type.
  void text(const Field& f, std::string& v) {
    if (const json::Value* x = find(f)) v = string_of(f, *x);
  }
  /// One of `choices`; throws "[config] field 'K': expected one of a, b; got \"x\"" otherwise.
  void choice(const Field& f, std::string& v, const std::vector<std::string>& choices) {
    if (const json::Value* x = find(f)) {
      std::string got = string_of(f, *x);
      for (const std::string& c : choices)
        if (c == got) return void(v = std::move(got));
      fail("config", "field '{}': expected one of {}; got {}", f.key, joined(choices), quoted(got));
    }
  }
  /// An enum value by its name in `named`; throws naming the allowed names otherwise.
  template <class T>
  void choice(const Field& f, T& v, const std::vector<std::pair<std::string, T>>& named) {
    if (const json::Value* x = find(f)) {
      const std::string got = string_of(f, *x);
      std::vector<std::string> names;
      for (const auto& [n, value] : named) {
        if (n == got) return void(v = value);
        names.push_back(n);
      }
      fail("config", "field '{}': expected one of {}; got {}", f.key, joined(names), quoted(got));
    }
  }
  /// A JSON boolean (the third argument, the CLI flag's sense, is ignored here).
  void flag(const Field& f, bool& v, bool = true) {
    if (const json::Value* x = find(f)) {
      if (!x->is_bool()) fail("config", "field '{}': expected true or false; got {}", f.key, x->dump());
      v = x->as_bool();
    }
  }
  /// A JSON array of integers; throws for any other value.
  void integers(const Field& f, std::vector<int64_t>& v) {
    if (const json::Value* x = find(f)) {
      if (!x->is_array()) fail("config", "field '{}': expected an array of integers; got {}", f.key, x->dump());
      std::vector<int64_t> got;
      for (const json::Value& w : x->as_array()) {
        if (!w.is_integer()) fail("config", "field '{}': expected an array of integers; got {}", f.key, x->dump());
        got.push_back(w.as_int64());
      }
      v = std::move(got);
    }
  }

 private:
  const json::Value* find(const Field& f) const {
    if ((f.use & use_) != use_) return nullptr;
    return in_.find(f.key);
  }
  static std::string string_of(const Field& f, const json::Value& x) {
    if (!x.is_string()) fail("config", "field '{}': expected a string; got {}", f.key, x.dump());
    return x.as_string();
  }
  /// A value from the file as a JSON string: quoted, control characters escaped (errors stay one line).
  static std::string quoted(const std::string& text) { return json::Value(text).dump(); }
  static std::string joined(const std::vector<std::string>& names) {
    std::string s;
    for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
  }
  const json::Value& in_;
  unsigned use_;
};

}  // namespace latent::models
