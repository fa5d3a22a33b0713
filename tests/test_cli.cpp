// The option table of the `latent` commands (tools/cli.h) and their result summaries
// (tools/report.h): values land in their members, defaults and ranges reach --help, and every
// mistake is one UsageError naming the flag and the value.
#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/train/run.h"
#include "tools/cli.h"
#include "tools/report.h"

using latent::models::AEConfig;
using latent::models::Field;
using latent::models::FieldReader;
using latent::models::FieldWriter;
using latent::models::TrainOptions;
using latent::tools::FieldOptions;
using latent::tools::Options;
using latent::tools::Report;
using latent::tools::UsageError;

namespace {

enum class Colour { Red, Green };

/// A small command with one option of each kind, and the members they fill.
struct Fixture {
  std::string run, data = "/data", model = "deep";
  int64_t epochs = 10, limit = 0;
  uint64_t seed = 0;
  double lr = 1e-3;
  Colour colour = Colour::Red;
  bool tied = false, progress = true;
  Options opts{"tool", "Does a thing."};
  Fixture() {
    opts.positional("RUN", run, "a run directory");
    opts.choice("model", "M", model, {"linear", "deep"}, "autoencoder");
    opts.integer("epochs", "N", epochs, 1, 100, "epochs");
    opts.integer("limit", "N", limit, 1, 1LL << 40, "at most N samples").shown_default("all");
    opts.integer("seed", "S", seed, 0, 1LL << 62, "random seed");
    opts.number("lr", "LR", lr, 1e-12, 10, "learning rate");
    opts.text("data", "PATH", data, "data folder");
    opts.choice("colour", "C", colour, {{"red", Colour::Red}, {"green", Colour::Green}}, "");
    opts.flag("tied", tied, "tie weights");
    opts.flag("quiet", progress, "no progress output", false);
  }
  /// The message of the UsageError that parsing `argv` throws ("" when none).
  std::string error(const std::vector<std::string>& argv) {
    try {
      opts.parse(argv);
    } catch (const UsageError& e) {
      return e.message;
    }
    return "";
  }
};

}  // namespace

TEST_CASE("cli: values of every kind land in their members; defaults stay otherwise") {
  Fixture f;
  REQUIRE(f.opts.parse({"runs/a", "--epochs", "3", "--lr=0.5", "--model", "linear", "--colour", "green", "--tied",
                        "--quiet", "--seed", "4611686018427387904"}));
  CHECK(f.run == "runs/a");
  CHECK(f.epochs == 3);
  CHECK(f.lr == 0.5);
  CHECK(f.model == "linear");
  CHECK(f.colour == Colour::Green);
  CHECK(f.tied);
  CHECK_FALSE(f.progress);
  CHECK(f.seed == (uint64_t{1} << 62));
  CHECK(f.data == "/data");
  CHECK(f.limit == 0);
  CHECK(f.opts.given("epochs"));
  CHECK_FALSE(f.opts.given("limit"));
}

TEST_CASE("cli: the last of a repeated option wins") {
  Fixture f;
  REQUIRE(f.opts.parse({"r", "--epochs", "3", "--epochs", "7"}));
  CHECK(f.epochs == 7);
}

TEST_CASE("cli: mistakes are one line naming the flag and the value") {
  Fixture f;
  CHECK(f.error({"r", "--bogus"}) == "unknown option '--bogus' for tool (see latent tool --help)");
  CHECK(f.error({"r", "--bogus=1"}) == "unknown option '--bogus' for tool (see latent tool --help)");
  CHECK(f.error({"r", "--epochs"}) == "--epochs needs a value");
  CHECK(f.error({"r", "--epochs", "ten"}) == "--epochs expects an integer in [1, 100]; got 'ten'");
  CHECK(f.error({"r", "--epochs", "0"}) == "--epochs expects an integer in [1, 100]; got '0'");
  CHECK(f.error({"r", "--epochs", "3x"}) == "--epochs expects an integer in [1, 100]; got '3x'");
  CHECK(f.error({"r", "--seed", "99999999999999999999"}) ==
        "--seed expects an integer in [0, 4611686018427387904]; got '99999999999999999999'");
  CHECK(f.error({"r", "--lr", "nan"}) == "--lr expects a number in [1e-12, 10]; got 'nan'");
  CHECK(f.error({"r", "--lr", "11"}) == "--lr expects a number in [1e-12, 10]; got '11'");
  CHECK(f.error({"r", "--model", "foo"}) == "--model must be one of linear, deep; got 'foo'");
  CHECK(f.error({"r", "--colour", "blue"}) == "--colour must be one of red, green; got 'blue'");
  CHECK(f.error({"r", "--tied=yes"}) == "--tied takes no value; got '--tied=yes'");
  CHECK(f.error({}) == "tool needs a run directory (see latent tool --help)");
  CHECK(f.error({"r", "s"}) == "unexpected argument 's' for tool");
}

TEST_CASE("cli: a required option is named with its help when missing") {
  std::string out;
  Options opts("export", "Writes ONNX.");
  opts.text("out", "FILE", out, "the .onnx file to write").required();
  try {
    opts.parse({});
    FAIL("no error");
  } catch (const UsageError& e) {
    CHECK(e.message == "export: --out FILE is required (the .onnx file to write)");
  }
  CHECK(opts.parse({"--out", "m.onnx"}));
  CHECK(out == "m.onnx");
  CHECK(opts.help().find("usage: latent export --out FILE [options]") == 0);
}

TEST_CASE("cli: repeated bare arguments after the positionals, at least one") {
  std::vector<std::string> models;
  int64_t port = 8000;
  Options opts("serve", "Serves runs.");
  opts.repeated("MODEL", models, "one MODEL (a run directory)");
  opts.integer("port", "P", port, 0, 65535, "port");
  REQUIRE(opts.parse({"runs/a", "--port", "0", "b=runs/b"}));
  CHECK(models == std::vector<std::string>{"runs/a", "b=runs/b"});
  CHECK(port == 0);
  CHECK(opts.help().find("usage: latent serve MODEL [MODEL...] [options]") == 0);
  std::vector<std::string> none;
  Options empty("serve", "Serves runs.");
  empty.repeated("MODEL", none, "one MODEL (a run directory)");
  try {
    empty.parse({});
    FAIL("no error");
  } catch (const UsageError& e) {
    CHECK(e.message == "serve needs at least one MODEL (a run directory) (see latent serve --help)");
  }
}

TEST_CASE("cli: --help wins over mistakes and parses nothing") {
  Fixture f;
  CHECK_FALSE(f.opts.parse({"--epochs", "ten", "--help"}));
  CHECK(f.epochs == 10);
  CHECK_FALSE(f.opts.parse({"-h"}));
}

TEST_CASE("cli: --help shows each option once with its range, choices and default") {
  Fixture f;
  const std::string help = f.opts.help();
  CHECK(help.find("usage: latent tool RUN [options]\n\nDoes a thing.\n\noptions:\n") == 0);
  CHECK(help.find("  --model M    autoencoder: linear, deep (default deep)\n") != std::string::npos);
  CHECK(help.find("  --epochs N   epochs, 1 to 100 (default 10)\n") != std::string::npos);
  CHECK(help.find("  --limit N    at most N samples (default all)\n") != std::string::npos);
  CHECK(help.find("  --lr LR      learning rate, 1e-12 to 10 (default 0.001)\n") != std::string::npos);
  CHECK(help.find("  --colour C   red, green (default red)\n") != std::string::npos);
  CHECK(help.find("  --quiet      no progress output\n") != std::string::npos);
  CHECK(help.find("  -h, --help   show this help\n") != std::string::npos);
}

TEST_CASE("cli: declaring an option twice is a programming error") {
  int64_t a = 0, b = 0;
  Options opts("tool", "");
  opts.integer("n", "N", a, 0, 9, "");
  CHECK_THROWS_AS(opts.integer("n", "N", b, 0, 9, ""), std::logic_error);
}

TEST_CASE("report: aligned summary and the same values as one JSON line") {
  Report r;
  r.add("run", "runs/a", "run");
  r.add("samples", int64_t{300}, "test samples");
  r.add("test_loss", 0.03125, "test loss", "0.03125 MSE per element");
  CHECK(r.json_line() == R"({"run":"runs/a","samples":300,"test_loss":0.03125})");
  CHECK(r.summary() == "run           runs/a\ntest samples  300\ntest loss     0.03125 MSE per element\n");
  Report titled("latent 0.1.0");
  titled.add_json("version", "0.1.0");
  titled.add("blas", "OpenBLAS", "BLAS");
  CHECK(titled.summary() == "latent 0.1.0\n  BLAS  OpenBLAS\n");
  CHECK(titled.json_line() == R"({"version":"0.1.0","blas":"OpenBLAS"})");
  CHECK(latent::tools::percent(0.8127) == "81.3%");
}

// ---- the field lists of models/io/fields.h: one line per field drives the flags and config.json ----

namespace {

/// `latent train`'s table as tools/commands.cpp declares it.
Options train_options(TrainOptions& o) {
  Options opts("train", "Trains an autoencoder.");
  FieldOptions declare(opts);
  TrainOptions::fields(o, declare);
  AEConfig::fields(o.model, declare);
  return opts;
}

std::string train_error(const std::vector<std::string>& argv) {
  TrainOptions o;
  Options opts = train_options(o);
  try {
    opts.parse(argv);
  } catch (const UsageError& e) {
    return e.message;
  }
  return "";
}

std::string config_error(const latent::json::Value& v, unsigned use) {
  TrainOptions o;
  FieldReader reader(v, use);
  try {
    TrainOptions::fields(o, reader);
    AEConfig::fields(o.model, reader);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("fields: train's options come from the field lists, with their names, ranges and flags") {
  TrainOptions o;
  Options opts = train_options(o);
  REQUIRE(opts.parse({"--model", "vae", "--epochs", "3", "--latent-dim", "8", "--batch-size=16", "--lr", "0.01",
                      "--optimizer", "sgd", "--quiet", "--metrics", "m.jsonl", "--tied", "--likelihood", "gaussian",
                      "--exclude-class", "2", "--device", "cpu", "--seed", "7"}));
  CHECK(o.model.model == "vae");
  CHECK(o.epochs == 3);
  CHECK(o.model.latent_dim == 8);
  CHECK(o.batch_size == 16);
  CHECK(o.lr == 0.01);
  CHECK(o.optimizer == "sgd");
  CHECK_FALSE(o.progress);
  CHECK(o.metrics_file == "m.jsonl");
  CHECK(o.model.tied);
  CHECK(o.model.likelihood == latent::models::Likelihood::Gaussian);
  CHECK(o.exclude_class == 2);
  CHECK(o.seed == 7);
  const std::string help = opts.help();
  CHECK(help.find("--latent-dim D") != std::string::npos);
  CHECK(help.find("(default deep 64, linear 32, vae 20, conv-vae 16)") != std::string::npos);
  CHECK(help.find("--input-dim") == std::string::npos);  // stored only: the data decides it
  CHECK(help.find("--resume DIR") != std::string::npos);
  CHECK(train_error({"--epochs", "0"}) == "--epochs expects an integer in [1, 100000]; got '0'");
  CHECK(train_error({"--lr", "fast"}) == "--lr expects a number in [1e-12, 10]; got 'fast'");
  CHECK(train_error({"--input-dim", "5"}).find("--input-dim") != std::string::npos);
  CHECK(train_error({"--model", "big"}).find("linear, deep, conv, sparse, denoising, vae, conv-vae") !=
        std::string::npos);
  CHECK(o.precision == "fp32");
  REQUIRE(opts.parse({"--precision", "bf16"}));
  CHECK(o.precision == "bf16");
  CHECK(help.find("--precision P") != std::string::npos);
  CHECK(train_error({"--precision", "fp8"}).find("fp32, bf16, fp16") != std::string::npos);
}

TEST_CASE("fields: config.json round trip keeps every stored field; command-line-only fields stay out") {
  TrainOptions o;
  o.model.model = "sparse";
  o.model.input_dim = 12;
  o.model.hidden = {32, 16};
  o.model.activation = "gelu";
  o.model.sparsity = "kl";
  o.model.rho = 0.1;
  o.model.likelihood = latent::models::Likelihood::Gaussian;
  o.epochs = 4;
  o.batch_size = 32;
  o.lr = 0.25;
  o.seed = 99;
  o.threads = 2;
  o.label_column = "y";
  o.out = "runs/x";
  o.limit_batches = 5;
  o.progress = false;
  auto v = latent::json::Value::object();
  FieldWriter writer(v);
  TrainOptions::fields(o, writer);
  CHECK(v.find("out") == nullptr);
  CHECK(v.find("limit_batches") == nullptr);
  CHECK(v.find("progress") == nullptr);
  CHECK(v.at("device").as_string() == "cpu");
  CHECK(v.at("precision").as_string() == "fp32");  // recorded in config.json
  const AEConfig back = AEConfig::from_json(o.model.to_json());
  CHECK(back.model == "sparse");
  CHECK(back.input_dim == 12);
  CHECK(back.hidden == std::vector<int64_t>{32, 16});
  CHECK(back.activation == "gelu");
  CHECK(back.sparsity == "kl");
  CHECK(back.rho == 0.1);
  CHECK(back.latent_dim == o.model.code_dim());
  CHECK(back.likelihood == latent::models::Likelihood::Gaussian);

  // --resume takes the Resumed fields only: epochs and threads stay as given on the command line.
  TrainOptions resumed;
  resumed.epochs = 20;
  FieldReader reader(v, Field::Resumed);
  TrainOptions::fields(resumed, reader);
  CHECK(resumed.epochs == 20);
  CHECK(resumed.threads == 0);
  CHECK(resumed.batch_size == 32);
  CHECK(resumed.lr == 0.25);
  CHECK(resumed.seed == 99);
  CHECK(resumed.label_column == "y");
}

TEST_CASE("fields: a config.json field of the wrong type, range or choice is one error naming it") {
  using latent::json::parse;
  CHECK(config_error(parse(R"({"latent_dim": -3})"), Field::Stored) ==
        "[config] field 'latent_dim': expected an integer in [1, 1048576]; got -3");
  CHECK(config_error(parse(R"({"lr": "fast"})"), Field::Stored) == "[config] field 'lr': expected a number; got \"fast\"");
  CHECK(config_error(parse(R"({"optimizer": "rmsprop"})"), Field::Stored) ==
        "[config] field 'optimizer': expected one of adam, adamw, sgd; got \"rmsprop\"");
  CHECK(config_error(parse(R"({"likelihood": "poisson"})"), Field::Stored) ==
        "[config] field 'likelihood': expected one of bernoulli, gaussian; got \"poisson\"");
  CHECK(config_error(parse(R"({"tied": 1})"), Field::Stored) == "[config] field 'tied': expected true or false; got 1");
  // A value from the file is shown escaped, so the error stays one line (config fuzz finding).
  CHECK(config_error(parse(R"({"noise": "gaussi\n"})"), Field::Stored) ==
        "[config] field 'noise': expected one of gaussian, mask, salt-pepper; got \"gaussi\\n\"");
  CHECK(config_error(parse(R"({"hidden": [8, "x"]})"), Field::Stored).find("field 'hidden'") != std::string::npos);
  // A field --resume does not take is not read, whatever it holds.
  CHECK(config_error(parse(R"({"epochs": "many"})"), Field::Resumed) == "");
  CHECK(config_error(parse(R"({"epochs": "many"})"), Field::Stored) ==
        "[config] field 'epochs': expected an integer; got \"many\"");
}
