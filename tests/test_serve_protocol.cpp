// The service's protocol codec (tools/serve/protocol.cpp) without HTTP: the JSON float writer
// reads back exactly, and an infer reply carries the outputs' values.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>

#include "protocol.h"

using namespace latent::serve;

namespace {

// The float that strtod-then-round gives for the text (what a JSON reader does), and the text.
float read_back(float v, std::string* text = nullptr) {
  char buffer[40];
  char* end = write_json_float(buffer, v);
  *end = '\0';
  if (text) *text = buffer;
  char* stop = nullptr;
  const float back = std::strtof(buffer, &stop);
  REQUIRE(stop == end);
  return back;
}

uint32_t bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}

}  // namespace

TEST_CASE("write_json_float: every float tried reads back bit for bit") {
  std::mt19937 rng(7);
  int64_t tried = 0;
  // Random bit patterns over the whole finite range, both signs.
  for (int i = 0; i < 2'000'000; ++i) {
    uint32_t b = static_cast<uint32_t>(rng());
    float v;
    std::memcpy(&v, &b, 4);
    if (!std::isfinite(v)) continue;
    CHECK(bits(read_back(v)) == bits(v));
    ++tried;
  }
  // Every float next to each power of ten the writer switches digit counts at, and its edges.
  for (int e = -6; e <= 10; ++e) {
    float p = static_cast<float>(std::pow(10.0, e));
    float lo = p, hi = p;
    for (int i = 0; i < 300; ++i) {
      CHECK(bits(read_back(lo)) == bits(lo));
      CHECK(bits(read_back(hi)) == bits(hi));
      CHECK(bits(read_back(-hi)) == bits(-hi));
      lo = std::nextafter(lo, 0.0f);
      hi = std::nextafter(hi, 1e30f);
      tried += 3;
    }
  }
  // All floats of [0.5, 0.5 + 2^-8): a sigmoid output's neighbourhood, exhaustively.
  for (float v = 0.5f; v < 0.50390625f; v = std::nextafter(v, 1.0f)) {
    REQUIRE(bits(read_back(v)) == bits(v));
    ++tried;
  }
  MESSAGE("floats checked: " << tried);
  CHECK(tried > 2'000'000);
}

TEST_CASE("write_json_float: plain notation, at most nine digits, no trailing zeros") {
  const std::pair<float, const char*> cases[] = {
      {0.5f, "0.5"},
      {-0.25f, "-0.25"},
      {1.0f, "1"},
      {1234.5f, "1234.5"},
      {0.00025f, "0.000250000012"},  // the float nearest 2.5e-4, to nine significant digits
      {0.0001f, "1e-04"},            // the float nearest 1e-4 is just below it: std::to_chars's form
      {100000000.0f, "100000000"},
      {0.1f, "0.100000001"},
      {0.0f, "0"},
      {3e-7f, "3e-07"},  // outside [1e-4, 1e9): std::to_chars's form
  };
  for (const auto& [value, expected] : cases) {
    std::string t;
    read_back(value, &t);
    CHECK(t == expected);
  }
}

TEST_CASE("encode_v2_infer writes each output value so that it reads back exactly") {
  ModelSignature sig;
  sig.name = "m";
  sig.input = TensorSpec{"input", DataType::FP32, 3};
  sig.outputs = {TensorSpec{"reconstruction", DataType::FP32, 3}, TensorSpec{"is_anomaly", DataType::BOOL, 0}};
  InferRequest request;
  request.rows = 2;
  request.outputs = {0, 1};
  request.binary = {false, false};
  std::vector<OutputRows> outputs(2);
  outputs[0].values = {0.1f, -2.5f, 1e-5f, 0.333333343f, 7.0f, 123456.789f};
  outputs[1].values = {1.0f, 0.0f};
  const InferReply reply = encode_v2_infer(sig, request, outputs);
  CHECK(reply.body ==
        R"({"model_name":"m","model_version":"1","outputs":[{"name":"reconstruction","datatype":"FP32","shape":[2,3],)"
        R"("data":[0.100000001,-2.5,1e-05,0.333333343,7,123456.789]},{"name":"is_anomaly","datatype":"BOOL","shape":[2],"data":[true,false]}]})");
}
