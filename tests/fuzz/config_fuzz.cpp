// libFuzzer target for config.json reading (what models::load and `latent train --resume` do with
// a run folder's config.json): models/io/json.cpp parses arbitrary bytes or fails with one-line
// latent::Error; parsed values must write back to text that parses to an equal value and the same
// text. The "model" section goes through AEConfig::from_json, "preprocessing" through
// Preprocessing::from_json and "training" through the reads a resumed run makes (TrainOptions'
// fields); each must fail with latent::Error or give a config whose JSON round trip is exact.
#include "autograd/error.h"
#include "models/ae/autoencoder.h"
#include "models/io/json.h"
#include "models/train/run.h"
#include "models/data/samples.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

constexpr const char* kTarget = "config_fuzz";

template <class F>
void expect_error_or_ok(F&& f) {
  try {
    f();
  } catch (const latent::Error& e) {
    if (std::string_view(e.what()).find('\n') != std::string_view::npos) latent::fuzz::finding(kTarget, "a multi-line error");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace latent;
  namespace json = latent::json;
  json::Value v;
  try {
    v = json::parse({reinterpret_cast<const char*>(data), size});
  } catch (const Error& e) {
    if (std::string_view(e.what()).find('\n') != std::string_view::npos) fuzz::finding(kTarget, "a multi-line error");
    return 0;
  }
  const std::string text = v.dump();
  try {
    const json::Value again = json::parse(text);
    if (!(again == v)) fuzz::finding(kTarget, "dump + parse changed the value: " + text.substr(0, 200));
    if (again.dump() != text) fuzz::finding(kTarget, "dump is not stable");
    (void)json::parse(v.dump(2));
  } catch (const Error& e) {
    fuzz::finding(kTarget, std::string("written JSON does not parse: ") + e.what());
  }
  if (!v.is_object()) return 0;
  if (const json::Value* m = v.find("model")) {
    expect_error_or_ok([&] {
      const models::AEConfig c = models::AEConfig::from_json(*m);
      const std::string once = c.to_json().dump();
      if (models::AEConfig::from_json(json::parse(once)).to_json().dump() != once)
        fuzz::finding(kTarget, "AEConfig's JSON round trip is not exact: " + once);
      (void)c.code_dim();
    });
  }
  if (const json::Value* p = v.find("preprocessing")) {
    expect_error_or_ok([&] {
      const models::Preprocessing pre = models::Preprocessing::from_json(*p);
      const std::string once = pre.to_json().dump();
      if (models::Preprocessing::from_json(json::parse(once)).to_json().dump() != once)
        fuzz::finding(kTarget, "Preprocessing's JSON round trip is not exact: " + once);
      (void)pre.input_dim();
    });
  }
  expect_error_or_ok([&] {  // the training options a resumed run reads back
    const json::Value& t = v.at("training");
    models::TrainOptions o;
    o.batch_size = t.at("batch_size").as_int64();
    o.lr = t.at("lr").as_double();
    o.optimizer = t.at("optimizer").as_string();
    o.seed = t.at("seed").as_uint64();
    o.data = t.at("data").as_string();
    o.label_column = t.at("label_column").as_string();
    o.exclude_class = t.at("exclude_class").as_int64();
  });
  expect_error_or_ok([&] { (void)v.at("anomaly").at("threshold").as_double(); });
  expect_error_or_ok([&] {
    for (const json::Value& n : v.at("data").at("class_names").as_array()) (void)n.as_string();
  });
  return 0;
}
