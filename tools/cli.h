// Command-line options of the `latent` commands, declared once per option in a table that drives
// both parsing and --help: the option's name, its value's placeholder, the member it fills (whose
// starting value is the default), its range or choices, and its help line. Every user mistake
// becomes a UsageError, printed by tools/main.cpp as one line with exit code 2.
//
//   TrainOptions o;                                   // the defaults live in the struct
//   Options opts("train", "Trains an autoencoder ...");
//   opts.integer("epochs", "N", o.epochs, 1, 100000, "epochs");
//   opts.choice("optimizer", "O", o.optimizer, {"adam", "adamw", "sgd"}, "optimizer");
//   opts.flag("tied", o.model.tied, "dense models: decoder reuses the encoder weights");
//   if (!opts.parse(argv)) return 0;                  // --help was printed
#pragma once

#include <concepts>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "models/io/fields.h"

namespace latent::tools {

/// A user error on the command line (exit code 2).
struct UsageError {
  std::string message;
};

/// The option table of one command: declare each option once, then parse.
class Options {
 public:
  /// `command` as typed after `latent` ("train"); `about` is the paragraph --help shows.
  Options(std::string command, std::string about);

  /// A required bare argument, shown as `metavar` ("RUN"); `what` names it in the error
  /// "eval needs a run directory".
  Options& positional(std::string metavar, std::string& into, std::string what);
  /// One or more bare arguments after the positionals, shown as "METAVAR [METAVAR...]"; `what`
  /// names them in the error "serve needs at least one run directory".
  Options& repeated(std::string metavar, std::vector<std::string>& into, std::string what);
  /// --NAME METAVAR: an integer in [lo, hi] ("--epochs expects an integer in [1, 100000]; got 'x'").
  template <std::integral T>
  Options& integer(std::string name, std::string metavar, T& into, long long lo, long long hi, std::string help);
  /// --NAME METAVAR: a finite number in [lo, hi].
  Options& number(std::string name, std::string metavar, double& into, double lo, double hi, std::string help);
  /// --NAME METAVAR: any text (a path, a column name).
  Options& text(std::string name, std::string metavar, std::string& into, std::string help);
  /// --NAME METAVAR: one of `choices` ("--optimizer must be one of adam, adamw, sgd; got 'adm'").
  Options& choice(std::string name, std::string metavar, std::string& into, std::vector<std::string> choices,
                  std::string help);
  /// --NAME METAVAR: one of the names in `choices`, stored as the value paired with it (an enum).
  template <class T>
  Options& choice(std::string name, std::string metavar, T& into, std::vector<std::pair<std::string, T>> choices,
                  std::string help);
  /// --NAME without a value: sets `into` to `value`.
  Options& flag(std::string name, bool& into, std::string help, bool value = true);

  /// The last option's default as --help shows it, in place of its member's starting value
  /// (for starting values that mean "not set", such as 0 for "the model's default").
  Options& shown_default(std::string text);
  /// The last option must be given ("export: --out FILE is required (the .onnx file to write)").
  Options& required();

  /// Parses `argv` (the words after the command name) into the members. Returns false when
  /// --help or -h was among them: the help is then printed on stdout and nothing is parsed.
  bool parse(const std::vector<std::string>& argv);
  /// Whether the option --NAME was on the command line (after parse).
  bool given(std::string_view name) const;
  /// The --help text: usage line, `about`, then one aligned line per option.
  std::string help() const;
  /// The command's name.
  const std::string& command() const { return command_; }

 private:
  struct Spec {
    Spec(std::string name_, std::string metavar_, std::string help_, std::string default_text_, std::string range_ = "")
        : name(std::move(name_)), metavar(std::move(metavar_)), help(std::move(help_)),
          default_text(std::move(default_text_)), range(std::move(range_)) {}
    std::string name, metavar, help, default_text;
    std::string range;  ///< "1 to 100000" for --help; empty for open-ended ranges
    bool takes_value = true, required = false, given = false;
    std::function<void(const std::string&)> set;  ///< parses a value into the member (throws UsageError)
  };
  struct Positional {
    std::string metavar, what;
    std::string* into;
  };
  Options& add(Spec spec);
  Spec* find(std::string_view name);
  /// Throws "--NAME expects an integer in [lo, hi]; got 'text'" unless `text` is one.
  static long long parse_integer(const std::string& name, const std::string& text, long long lo, long long hi);
  /// The members' starting values as --help shows them; empty when outside [lo, hi] ("not set").
  static std::string integer_default(long long value, long long lo, long long hi);
  /// "lo to hi" for --help, or empty when hi is too large to be a useful bound.
  static std::string range_text(double lo, double hi);
  [[noreturn]] static void bad_choice(const std::string& name, const std::vector<std::string>& names,
                                      const std::string& got);

  std::string command_, about_;
  std::vector<Spec> specs_;
  std::vector<Positional> positionals_;
  std::vector<std::string>* repeated_ = nullptr;
  std::string repeated_metavar_, repeated_what_;
};

template <std::integral T>
Options& Options::integer(std::string name, std::string metavar, T& into, long long lo, long long hi,
                          std::string help) {
  Spec s{name, std::move(metavar), std::move(help), integer_default(static_cast<long long>(into), lo, hi),
         range_text(static_cast<double>(lo), static_cast<double>(hi))};
  s.set = [name, &into, lo, hi](const std::string& text) { into = static_cast<T>(parse_integer(name, text, lo, hi)); };
  return add(std::move(s));
}

template <class T>
Options& Options::choice(std::string name, std::string metavar, T& into, std::vector<std::pair<std::string, T>> choices,
                         std::string help) {
  std::vector<std::string> names;
  std::string current;
  for (const auto& [n, v] : choices) {
    names.push_back(n);
    if (v == into && current.empty()) current = n;
  }
  std::string listed;
  for (const auto& n : names) listed += (listed.empty() ? "" : ", ") + n;
  Spec s{name, std::move(metavar), help.empty() ? listed : help + ": " + listed, current};
  s.set = [name, &into, choices = std::move(choices), names](const std::string& text) {
    for (const auto& [n, v] : choices)
      if (n == text) return void(into = v);
    bad_choice(name, names, text);
  };
  return add(std::move(s));
}

/// Declares the Field::Cli fields a settings struct lists (models/io/fields.h) as options of `opts`:
/// `models::TrainOptions::fields(o, declarer)` gives `latent train` its options from the same
/// lines that write and read config.json.
class FieldOptions {
 public:
  /// `skip`: keys of Cli fields this command does not take (anomaly-bench chooses --out and the class itself).
  explicit FieldOptions(Options& opts, std::vector<std::string> skip = {}) : opts_(opts), skip_(std::move(skip)) {}
  template <std::integral T>
  void integer(const models::Field& f, T& v, long long lo, long long hi) {
    if (wanted(f)) shown(f, opts_.integer(f.option_name(), f.metavar, v, lo, hi, f.help));
  }
  void number(const models::Field& f, double& v, double lo, double hi) {
    if (wanted(f)) shown(f, opts_.number(f.option_name(), f.metavar, v, lo, hi, f.help));
  }
  void text(const models::Field& f, std::string& v) {
    if (wanted(f)) shown(f, opts_.text(f.option_name(), f.metavar, v, f.help));
  }
  void choice(const models::Field& f, std::string& v, const std::vector<std::string>& choices) {
    if (wanted(f)) shown(f, opts_.choice(f.option_name(), f.metavar, v, choices, f.help));
  }
  template <class T>
  void choice(const models::Field& f, T& v, const std::vector<std::pair<std::string, T>>& named) {
    if (wanted(f)) shown(f, opts_.choice(f.option_name(), f.metavar, v, named, f.help));
  }
  void flag(const models::Field& f, bool& v, bool value = true) {
    if (wanted(f)) shown(f, opts_.flag(f.option_name(), v, f.help, value));
  }
  void integers(const models::Field&, std::vector<int64_t>&) {}  ///< lists are config.json only

 private:
  bool wanted(const models::Field& f) const {
    if (!f.has(models::Field::Cli)) return false;
    for (const std::string& k : skip_)
      if (k == f.key) return false;
    return true;
  }
  static void shown(const models::Field& f, Options& declared) {
    if (*f.shown_default) declared.shown_default(f.shown_default);
  }
  Options& opts_;
  std::vector<std::string> skip_;
};

}  // namespace latent::tools
