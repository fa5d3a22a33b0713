// Checkpoint tests: safetensors round trips, a file written by Python's reference implementation,
// bytes built from the published format description, every malformed-file error; atomic writes
// (a writer killed with SIGKILL at random moments), checkpoint round trips and load errors, and
// resuming a seeded training loop bit for bit.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "helpers.h"

using namespace latent;
using namespace latent::testing;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& path) { return read_file(path); }

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// A safetensors file from a header text and data bytes, exactly as the format describes it.
std::string st_bytes(const std::string& header, const std::string& data) {
  std::string out;
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header + data;
}

/// The little-endian bytes of values.
template <class T>
std::string le_bytes(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) out.append(reinterpret_cast<const char*>(&v), sizeof v);
  return out;
}

NamedTensors sample_tensors() {
  return {
      {"encoder.0.weight", arange(0, 6, 1, kFloat32).view({2, 3}).t()},  // non-contiguous [3, 2]
      {"encoder.0.bias", from_vector(std::vector<double>{0.1, -2.5}, {2})},
      {"steps", from_vector(std::vector<int64_t>{INT64_MIN, 7, INT64_MAX}, {3})},
      {"scalar", scalar_tensor(1.5)},
      {"empty", zeros({0, 5})},
  };
}

void check_same_tensors(const NamedTensors& a, const NamedTensors& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("tensor " << a[i].first);
    CHECK(a[i].first == b[i].first);
    CHECK(a[i].second.dtype() == b[i].second.dtype());
    CHECK(a[i].second.shape() == b[i].second.shape());
    CHECK(a[i].second.to_vector<double>() == b[i].second.to_vector<double>());
    if (a[i].second.dtype() == kInt64) CHECK(a[i].second.to_vector<int64_t>() == b[i].second.to_vector<int64_t>());
  }
}

}  // namespace

// ================================================================= safetensors

TEST_CASE("safetensors: round trip in memory and on disk keeps order, dtypes, shapes, values, metadata") {
  const NamedTensors tensors = sample_tensors();
  const StringMap meta = {{"format", "pt"}, {"note", "é \"quoted\""}};
  const std::string bytes = safetensors::serialize(tensors, meta);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  CHECK((8 + n) % 8 == 0);  // data starts 8-aligned
  const std::string header(bytes.substr(8, n));
  CHECK(header.find(R"("encoder.0.weight":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]})") != std::string::npos);
  CHECK(header.find(R"("steps":{"dtype":"I64","shape":[3],"data_offsets":[40,64]})") != std::string::npos);
  CHECK(header.find(R"("empty":{"dtype":"F32","shape":[0,5],"data_offsets":[68,68]})") != std::string::npos);
  CHECK(bytes.size() == 8 + n + 68);
  // The transposed weight is stored row-major: [[0, 3], [1, 4], [2, 5]].
  CHECK(bytes.substr(8 + n, 24) == le_bytes<float>({0, 3, 1, 4, 2, 5}));

  safetensors::File file = safetensors::deserialize(bytes);
  check_same_tensors(file.tensors, tensors);
  CHECK(file.metadata == meta);
  CHECK(file.at("scalar").item<double>() == 1.5);
  CHECK(file.at("scalar").dim() == 0);
  CHECK_THROWS_WITH_SUBSTR(file.at("nope"), "[safetensors] no tensor 'nope' (the file has: encoder.0.weight, encoder.0.bias");

  TempDir dir;
  const std::string path = dir / "model.safetensors";
  safetensors::save_file(tensors, path, meta);
  CHECK(slurp(path) == bytes);
  check_same_tensors(safetensors::load_file(path).tensors, tensors);
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);  // no temporary left
  CHECK(safetensors::deserialize(safetensors::serialize({})).tensors.empty());
}

TEST_CASE("safetensors: the file written by Python's reference implementation") {
  const std::string path = std::string(LATENT_SAFETENSORS_REFERENCE_DIR) + "/reference.safetensors";
  safetensors::File file = safetensors::load_file(path);
  REQUIRE(file.tensors.size() == 6);
  // Header order: the reference writer sorts by alignment, then name.
  std::vector<std::string> names;
  for (const auto& [name, t] : file.tensors) names.push_back(name);
  CHECK(names == std::vector<std::string>{"steps", "decoder.scale", "empty", "encoder.0.bias", "encoder.0.weight",
                                          "scalar"});
  const Tensor& w = file.at("encoder.0.weight");
  CHECK(w.dtype() == kFloat32);
  CHECK(w.shape() == Shape{2, 3});
  check_values(w, {-0.625, -0.375, -0.125, 0.125, 0.375, 0.625}, 0, 0);
  check_values(file.at("encoder.0.bias"), {0.5, -1.25}, 0, 0);
  const Tensor& d = file.at("decoder.scale");
  CHECK(d.dtype() == kFloat64);
  CHECK(d.to_vector<double>() == std::vector<double>{1e-300, -2.0, 3.141592653589793});
  const Tensor& s = file.at("steps");
  CHECK(s.dtype() == kInt64);
  CHECK(s.to_vector<int64_t>() == std::vector<int64_t>{1, -2, int64_t{1} << 40, -(int64_t{1} << 62)});
  CHECK(file.at("scalar").shape() == Shape{});
  CHECK(file.at("scalar").item<float>() == 3.5f);
  CHECK(file.at("empty").shape() == Shape{0, 4});
  REQUIRE(file.metadata.size() == 2);
  const StringMap expected_meta = {{"written_by", "safetensors reference implementation"}, {"format", "pt"}};
  CHECK(file.metadata == expected_meta);
  // Written back in the same order, latent produces the reference implementation's bytes exactly.
  CHECK(safetensors::serialize(file.tensors, file.metadata) == slurp(path));
}

TEST_CASE("safetensors: bytes built from the published format description") {
  // 8-byte little-endian header length, JSON header padded with spaces, raw little-endian data;
  // the data order need not follow the header order, and fields may come in any order.
  const std::string ok_header = R"({"__metadata__":{"k":"v"},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},)"
                                R"("a":{"shape":[1],"dtype":"F64","data_offsets":[0,8]}}   )";
  // The same with 'a' declared [2]: 16 bytes needed, 8 given.
  const std::string header = R"({"__metadata__":{"k":"v"},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},)"
                             R"("a":{"shape":[2],"dtype":"F64","data_offsets":[0,8]}}   )";
  const std::string data = le_bytes<double>({-0.5}) + le_bytes<int64_t>({-3});
  safetensors::File file = safetensors::deserialize(st_bytes(ok_header, data), "hand.safetensors");
  REQUIRE(file.tensors.size() == 2);
  CHECK(file.tensors[0].first == "b");  // header order, not data order
  CHECK(file.at("b").to_vector<int64_t>() == std::vector<int64_t>{-3});
  CHECK(file.at("a").to_vector<double>() == std::vector<double>{-0.5});
  CHECK(file.metadata == StringMap{{"k", "v"}});
  CHECK_THROWS_WITH_SUBSTR(safetensors::deserialize(st_bytes(header, data), "hand.safetensors"),
                           "[safetensors] hand.safetensors: tensor 'a': data_offsets [0, 8] hold 8 bytes, but float64 [2] needs 16");
}

TEST_CASE("safetensors: every malformed file fails with one line naming the file and tensor") {
  const std::string f = "model.safetensors";
  auto load = [&](const std::string& header, const std::string& data) {
    return safetensors::deserialize(st_bytes(header, data), f);
  };
  const std::string four = le_bytes<float>({1});
  CHECK_THROWS_WITH_SUBSTR(safetensors::deserialize(std::string(5, '\0'), f),
                           "[safetensors] model.safetensors: truncated header at byte 5: the file is too short");
  CHECK_THROWS_WITH_SUBSTR(safetensors::deserialize(st_bytes("{}", "").substr(0, 9), f),
                           "truncated header at byte 9: the header length says 2 bytes, which end at byte 10");
  CHECK_THROWS_WITH_SUBSTR(safetensors::deserialize(le_bytes<uint64_t>({uint64_t{1} << 40}), f),
                           "header length 1099511627776 exceeds the limit of 100000000 bytes");
  CHECK_THROWS_WITH_SUBSTR(load("[]", ""), "the header does not start with '{'");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"a":{"dtype":"F32" "shape":[1]}})", four),
                           "model.safetensors: header is not valid JSON (offsets count from the header start at byte 8): "
                           "expected ',' or '}' at byte 20 (found '\"')");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"__metadata__":[1]})", ""), "__metadata__ is not an object of strings");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"__metadata__":{"epoch":3}})", ""), "__metadata__ value 'epoch' is 3, not a string");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":[1]})", four), "tensor 'w': expected an object with dtype, shape and data_offsets");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", four),
                           "tensor 'w': unknown field 'x'");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":"F32","shape":[1]}})", four),
                           "tensor 'w': missing field 'dtype', 'shape' or 'data_offsets'");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", four), "tensor 'w': dtype is not a string");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":"U16","shape":[2],"data_offsets":[0,4]}})", four),
                           "tensor 'w': dtype U16 is not supported (latent reads F32, F64, I64, I32, I8, U8, BF16, F16)");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}})", four), "tensor 'w': unknown dtype 'Q7'");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":"F32","shape":1,"data_offsets":[0,4]}})", four), "tensor 'w': shape is not an array");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})", four),
                           "shape has 9 dimensions, latent supports at most 8");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", four),
                           "tensor 'w': shape entry -1 is not a non-negative integer");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", four),
                           "shape entry 1.5 is not a non-negative integer");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", four),
                           "shape [4294967296, 4294967296] is too large");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", four),
                           "tensor 'w': data_offsets [0] is not two non-negative integers [begin, end]");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", four),
                           "data_offsets [4, 0] end before they begin");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"encoder.0.weight":{"dtype":"F32","shape":[128,784],"data_offsets":[0,400]}})",
                                std::string(400, '\0')),
                           "[safetensors] model.safetensors: tensor 'encoder.0.weight': data_offsets [0, 400] hold 400 "
                           "bytes, but float32 [128, 784] needs 401408");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", four),
                           "tensor 'w': data_offsets [0, 8] reach past the end of the data section (4 bytes): the file is truncated");
  const std::string two = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  CHECK_THROWS_WITH_SUBSTR(load(two, std::string(12, '\0')), "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
  const std::string gap = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  CHECK_THROWS_WITH_SUBSTR(load(gap, std::string(12, '\0')),
                           "tensor 'b': bytes [4, 8) of the data section before it belong to no tensor");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", four + "xx"),
                           "the data section has 6 bytes but the tensors cover 4");
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{}})", four),
                           "duplicate key \"w\"");
  CHECK_THROWS_WITH_SUBSTR(safetensors::load_file("/nonexistent/x.safetensors"),
                           "[safetensors] /nonexistent/x.safetensors: cannot open (No such file or directory)");
  // Writing refuses what cannot be read back.
  CHECK_THROWS_WITH_SUBSTR(safetensors::serialize({{"a", zeros({1})}, {"a", zeros({1})}}), "duplicate tensor name 'a'");
  CHECK_THROWS_WITH_SUBSTR(safetensors::serialize({{"", zeros({1})}}), "a tensor name is empty");
  CHECK_THROWS_WITH_SUBSTR(safetensors::serialize({{"__metadata__", zeros({1})}}), "'__metadata__' is reserved");
  CHECK_THROWS_WITH_SUBSTR(safetensors::serialize({{"u", Tensor()}}), "tensor 'u' is undefined");
}

TEST_CASE("resource limits: safetensors headers claiming 100 GB, offsets past the end or overlaps fail before allocating") {
  const std::string f = "hub/model.safetensors";
  auto load = [&](const std::string& header, const std::string& data) {
    return safetensors::deserialize(st_bytes(header, data), f);
  };
  const std::string eight(8, '\0');
  // A 100 GB tensor (25 billion float32) in a file of 8 data bytes: checked against the data section first.
  CHECK_THROWS_WITH_SUBSTR(
      load(R"({"w":{"dtype":"F32","shape":[25000000000],"data_offsets":[0,100000000000]}})", eight),
      "[safetensors] hub/model.safetensors: tensor 'w': data_offsets [0, 100000000000] reach past the end of the data "
      "section (8 bytes): the file is truncated");
  // The same claim with offsets that fit the file: the shape and the offsets disagree.
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":"F32","shape":[25000000000],"data_offsets":[0,8]}})", eight),
                           "tensor 'w': data_offsets [0, 8] hold 8 bytes, but float32 [25000000000] needs 100000000000");
  // Offsets past the end, with the begin itself past the end.
  CHECK_THROWS_WITH_SUBSTR(load(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[1000000,1000004]}})", eight),
                           "tensor 'w': data_offsets [1000000, 1000004] reach past the end of the data section (8 bytes)");
  // Offsets near 2^64, where begin + size would wrap around.
  CHECK_THROWS_WITH_SUBSTR(
      load(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551616]}})", eight),
      "hub/model.safetensors: tensor 'w'");
  // Two tensors sharing bytes: each fits alone, together they overlap.
  CHECK_THROWS_WITH_SUBSTR(load(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                eight),
                           "hub/model.safetensors: tensors 'a' [0, 8] and 'b' [4, 8] overlap");
  // The same tensor twice at the same offsets (an alias) overlaps too.
  CHECK_THROWS_WITH_SUBSTR(load(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                eight),
                           "tensors 'a' [0, 8] and 'b' [0, 8] overlap");
  // A header of a million zero-size tensors is bounded by the header limit (100 MB), not the data.
  CHECK_THROWS_WITH_SUBSTR(safetensors::deserialize(le_bytes<uint64_t>({100'000'001}) + "{}", f),
                           "header length 100000001 exceeds the limit of 100000000 bytes");
}

TEST_CASE("safetensors: random corruptions either load consistently or fail with latent::Error") {
  const std::string good = safetensors::serialize(sample_tensors(), {{"k", "v"}});
  Generator gen(31);
  int64_t loaded = 0, rejected = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bytes = good;
    const uint64_t kind = gen.below(4);
    if (kind == 0) {
      bytes.resize(gen.below(bytes.size()));  // truncate anywhere
    } else {
      // Flip 1-3 random bytes, mostly inside the 8-byte length and the header.
      for (uint64_t k = 0, flips = 1 + gen.below(3); k < flips; ++k) {
        const size_t pos = kind == 1 ? gen.below(bytes.size()) : gen.below(std::min<size_t>(bytes.size(), 200));
        bytes[pos] = static_cast<char>(gen.below(256));
      }
    }
    try {
      const safetensors::File f = safetensors::deserialize(bytes);
      // Whatever loads must be self-consistent.
      for (const auto& [name, t] : f.tensors) CHECK(static_cast<size_t>(t.numel()) * t.element_size() <= bytes.size());
      ++loaded;
    } catch (const Error& e) {
      CHECK(std::string(e.what()).rfind("[safetensors] <memory>: ", 0) == 0);
      CHECK(std::string(e.what()).find('\n') == std::string::npos);
      ++rejected;
    }
  }
  CHECK(rejected > 1000);
  MESSAGE("random corruptions: " << loaded << " loaded (data bytes changed), " << rejected << " rejected");
}

// ================================================================= atomic writes and checkpoints

TEST_CASE("write_file_atomic: replaces the file, leaves no temporary, reports failures") {
  TempDir dir;
  const std::string path = dir / "a.json";
  write_file_atomic(path, "first");
  write_file_atomic(path, "second, longer");
  CHECK(slurp(path) == "second, longer");
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
  write_file_atomic(path, "");
  CHECK(slurp(path).empty());
  CHECK_THROWS_WITH_SUBSTR(write_file_atomic("/nonexistent/dir/a.json", "x"),
                           "[file] /nonexistent/dir/a.json: cannot create a temporary file in /nonexistent/dir (No such file or directory)");
  CHECK_THROWS_WITH_SUBSTR(write_file_atomic(dir / "", "x"), "the path names a folder, not a file");
  // Renaming over a folder fails and removes the temporary file.
  fs::create_directory(dir.path / "sub");
  CHECK_THROWS_WITH_SUBSTR(write_file_atomic(dir / "sub", "x"), "rename from");
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 2);
}

TEST_CASE("write_file_atomic: removes temporaries of dead writers, keeps those of live ones") {
  TempDir dir;
  // A pid that certainly belongs to no process: a child that has exited and been reaped.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  REQUIRE(::waitpid(child, nullptr, 0) == child);
  const std::string dead = fmt::format(".a.json.tmp.{}.0", child);
  const std::string live = fmt::format(".a.json.tmp.{}.3", ::getppid());  // a running process
  const std::string other = fmt::format(".b.json.tmp.{}.0", child);       // another file's temporary
  for (const std::string& name : {dead, live, other}) std::ofstream(dir.path / name) << "partial";
  write_file_atomic(dir / "a.json", "done");
  CHECK(slurp(dir / "a.json") == "done");
  CHECK_FALSE(fs::exists(dir.path / dead));
  CHECK(fs::exists(dir.path / live));
  CHECK(fs::exists(dir.path / other));
}

TEST_CASE("checkpoint: round trip of tensors, epoch, step, RNG state, config and extra") {
  TempDir dir;
  Generator gen(99);
  gen.normal();  // leaves a Box-Muller spare: has_spare is part of the state
  Checkpoint ckpt;
  ckpt.tensors = with_prefix("model.", {{"encoder.0.weight", randn({4, 3})}, {"encoder.0.bias", zeros({4})}});
  for (auto& nt : with_prefix("optim.", {{"state.0.exp_avg", randn({4, 3}, kFloat64)}, {"step", arange(1)}}))
    ckpt.tensors.push_back(nt);
  ckpt.epoch = 7;
  ckpt.step = 3283;
  ckpt.save_rng("default", gen);
  Generator loader_gen(uint64_t{0xFFFFFFFFFFFFFFFF});
  ckpt.save_rng("loader", loader_gen);
  ckpt.config["lr"] = 1e-3;
  ckpt.config["layers"] = json::Array{784, 128, 32};
  ckpt.extra["best_loss"] = 0.0123;
  const std::string path = dir / "ckpt.safetensors";
  save_checkpoint(path, ckpt);

  Checkpoint back = load_checkpoint(path);
  check_same_tensors(back.tensors, ckpt.tensors);
  CHECK(back.epoch == 7);
  CHECK(back.step == 3283);
  CHECK(back.config == ckpt.config);
  CHECK(back.extra == ckpt.extra);
  REQUIRE(back.rng.size() == 2);
  Generator restored(0), restored_loader(1);
  back.restore_rng("default", restored);
  back.restore_rng("loader", restored_loader);
  for (int i = 0; i < 5; ++i) CHECK(restored.normal() == gen.normal());  // continues the same sequence
  CHECK(restored_loader.next_u64() == loader_gen.next_u64());
  CHECK_THROWS_WITH_SUBSTR(back.restore_rng("dropout", restored), "[checkpoint] no RNG state 'dropout' in the checkpoint");
  CHECK(strip_prefix("model.", back.tensors).size() == 2);
  CHECK(strip_prefix("optim.", back.tensors)[0].first == "state.0.exp_avg");
  CHECK(back.at("optim.step").dtype() == kInt64);
  CHECK_THROWS_WITH_SUBSTR(back.at("model.x"), "[checkpoint] no tensor 'model.x'");

  // The metadata is a readable JSON string under "checkpoint", for Python users.
  safetensors::File raw = safetensors::load_file(path);
  REQUIRE(raw.metadata.size() == 2);
  CHECK(raw.metadata[0] == std::pair<std::string, std::string>{"format", kCheckpointFormat});
  const json::Value meta = json::parse(raw.metadata[1].second);
  CHECK(meta.at("epoch").as_int64() == 7);
  // RNG words are exact JSON integers, also above 2^63.
  const Generator::State saved = ckpt.rng[1].second;
  for (size_t i = 0; i < 4; ++i) CHECK(meta.at("rng").at("loader").at("s").at(i).as_uint64() == saved.s[i]);
  CHECK(meta.at("rng").at("default").at("has_spare").as_bool());
}

TEST_CASE("checkpoint: loading into named tensors checks names, shapes and dtypes; truncated files fail") {
  TempDir dir;
  const std::string path = dir / "ckpt.safetensors";
  Checkpoint ckpt;
  ckpt.tensors = {{"encoder.0.weight", full({2, 3}, 2.0)}, {"encoder.0.bias", full({2}, -1.0)}};
  save_checkpoint(path, ckpt);
  const Checkpoint loaded = load_checkpoint(path);

  Tensor w = zeros({2, 3}).requires_grad_(true), b = zeros({2});
  LoadReport ok = load_named_tensors({{"encoder.0.weight", w}, {"encoder.0.bias", b}}, loaded.tensors, true, path);
  CHECK(ok.ok());
  check_values(w, {2, 2, 2, 2, 2, 2});
  check_values(b, {-1, -1});
  CHECK(w.requires_grad());

  Tensor w2 = zeros({2, 3});
  CHECK_THROWS_WITH_SUBSTR(load_named_tensors({{"encoder.0.weight", w2}, {"decoder.0.weight", zeros({1})}}, loaded.tensors,
                                              true, path),
                           "[checkpoint] " + path + ": missing tensor 'decoder.0.weight' (1 of 2 expected tensors are absent)");
  CHECK_THROWS_WITH_SUBSTR(load_named_tensors({{"encoder.0.weight", w2}}, loaded.tensors, true, path),
                           "unexpected tensor 'encoder.0.bias' (1 tensors in the file are not expected)");
  CHECK(w2.sum().item<double>() == 0);  // a failed load changes nothing
  CHECK_THROWS_WITH_SUBSTR(load_named_tensors({{"encoder.0.weight", zeros({3, 2})}, {"encoder.0.bias", b}}, loaded.tensors),
                           "[checkpoint] tensor 'encoder.0.weight' has shape [2, 3] in the file, expected [3, 2]");
  CHECK_THROWS_WITH_SUBSTR(
      load_named_tensors({{"encoder.0.weight", w}, {"encoder.0.bias", zeros({2}, kFloat64)}}, loaded.tensors),
      "tensor 'encoder.0.bias' has dtype float32 in the file, expected float64");
  // Non-strict: pairs what it can and reports the rest, like load_state_dict(strict=False).
  Tensor w3 = zeros({2, 3});
  LoadReport partial = load_named_tensors({{"encoder.0.weight", w3}, {"extra", zeros({1})}}, loaded.tensors, false);
  CHECK(partial.missing == std::vector<std::string>{"extra"});
  CHECK(partial.unexpected == std::vector<std::string>{"encoder.0.bias"});
  CHECK(w3.sum().item<double>() == 12);

  // Truncated data names the tensor that no longer fits; a cut header says where it ends.
  const std::string bytes = slurp(path);
  const std::string cut = dir / "cut.safetensors";
  write_bytes(cut, bytes.substr(0, bytes.size() - 3));
  CHECK_THROWS_WITH_SUBSTR(load_checkpoint(cut), "[safetensors] " + cut + ": tensor 'encoder.0.bias': data_offsets [24, 32] "
                                                 "reach past the end of the data section (29 bytes): the file is truncated");
  write_bytes(cut, bytes.substr(0, 12));
  CHECK_THROWS_WITH_SUBSTR(load_checkpoint(cut), "[safetensors] " + cut + ": truncated header at byte 12");
  // A plain safetensors file is not a checkpoint.
  safetensors::save_file(ckpt.tensors, cut);
  CHECK_THROWS_WITH_SUBSTR(load_checkpoint(cut), "not a latent checkpoint: metadata 'format' is absent");
  safetensors::save_file(ckpt.tensors, cut, {{"format", kCheckpointFormat}, {"checkpoint", "{\"epoch\":1}"}});
  CHECK_THROWS_WITH_SUBSTR(load_checkpoint(cut), "metadata 'checkpoint' is malformed: [json] missing key 'step'");
}

TEST_CASE("checkpoint: a writer killed at random moments never leaves a partial file under the final name") {
  TempDir dir;
  const std::string path = dir / "ckpt.safetensors";
  const std::string final_name = "ckpt.safetensors", tmp_prefix = ".ckpt.safetensors.tmp.";
  const int64_t n = int64_t{1} << 22;  // 16 MiB of float32 plus 16 MiB of float64 per checkpoint
  auto make = [&](int64_t k) {
    Checkpoint c;
    c.tensors = {{"model.w", full({n}, static_cast<double>(k))}, {"optim.m", full({n / 2}, -static_cast<double>(k), kFloat64)}};
    c.epoch = k;
    c.config["k"] = k;
    return c;
  };
  auto verify = [&](const Checkpoint& c) {
    REQUIRE(c.tensors.size() == 2);
    const double k = static_cast<double>(c.epoch);
    CHECK(c.config.at("k").as_int64() == c.epoch);
    CHECK(c.tensors[0].second.min().item<double>() == k);
    CHECK(c.tensors[0].second.max().item<double>() == k);
    CHECK(c.tensors[1].second.min().item<double>() == -k);
    CHECK(c.tensors[1].second.max().item<double>() == -k);
  };
  save_checkpoint(path, make(0));
  Generator rng(2024);
  int64_t last_epoch = 0, mid_write_kills = 0, reads = 0, rounds = 0;
  using clock = std::chrono::steady_clock;
  while (rounds < 20 && (rounds < 6 || mid_write_kills == 0)) {
    const int64_t first = (rounds + 1) * 1000;
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        for (int64_t k = first;; ++k) save_checkpoint(path, make(k));
      } catch (...) {
        ::_exit(3);
      }
    }
    auto temp_exists = [&] {
      for (const auto& entry : fs::directory_iterator(dir.path))
        if (entry.path().filename().string().rfind(tmp_prefix, 0) == 0) return true;
      return false;
    };
    if (rounds % 2 == 0) {
      // Read concurrently while the child writes until its first checkpoint has landed, then for
      // a random while longer, then kill it.
      const auto give_up = clock::now() + std::chrono::seconds(20);
      while (load_checkpoint(path).epoch < first && clock::now() < give_up) ++reads;
      const auto deadline = clock::now() + std::chrono::milliseconds(static_cast<int>(rng.below(300)));
      while (clock::now() < deadline) {
        verify(load_checkpoint(path));
        ++reads;
      }
    } else {
      // Wait until the child is inside write_file_atomic (its temporary exists), then kill it a
      // random 0-3 ms later: mostly in the middle of writing or syncing.
      const auto give_up = clock::now() + std::chrono::seconds(20);
      while (!temp_exists() && clock::now() < give_up) {
      }
      std::this_thread::sleep_for(std::chrono::microseconds(rng.below(3000)));
    }
    REQUIRE(::kill(pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));  // it was still writing, not failed
    const Checkpoint after = load_checkpoint(path);
    verify(after);
    CHECK(after.epoch >= last_epoch);
    last_epoch = after.epoch;
    bool temp_left = false;
    for (const auto& entry : fs::directory_iterator(dir.path)) {
      const std::string name = entry.path().filename().string();
      if (name == final_name) continue;
      CHECK(name.rfind(tmp_prefix, 0) == 0);  // anything else is a temporary, never read
      temp_left = true;
      fs::remove(entry.path());
    }
    mid_write_kills += temp_left;
    ++rounds;
  }
  MESSAGE("kill test: " << rounds << " kills, " << mid_write_kills << " in the middle of a write, " << reads
                        << " concurrent loads, last complete epoch " << last_epoch);
  CHECK(mid_write_kills >= 1);
  CHECK(last_epoch >= 1000);  // at least one checkpoint completed while the test ran
}

TEST_CASE("checkpoint: resuming a seeded training loop at epoch k reproduces epoch k+1 bit for bit") {
  // A denoising linear map fitted with SGD + momentum: the loader's shuffling and noise depend on
  // (seed, epoch, batch); a separate generator draws a dropout-like mask each step.
  Generator data_gen(5);
  auto ds = std::make_shared<TensorDataset>(rand({96, 6}, kFloat32, &data_gen));
  struct Run {
    Tensor w = zeros({6, 6}), velocity = zeros({6, 6});
    Generator mask_gen{77};
    int64_t step = 0;
    NamedTensors state() { return {{"model.w", w}, {"optim.velocity", velocity}}; }
  };
  auto epoch_loss = [&](Run& run, DataLoader& loader) {
    double total = 0;
    for (const Batch& b : loader) {
      Tensor w = run.w.detach().requires_grad_(true);
      Tensor mask = (rand({6}, kFloat32, &run.mask_gen) > 0.2).to(kFloat32);
      Tensor loss = mse_loss(matmul(b.inputs * mask, w), b.clean);
      loss.backward();
      NoGradGuard no_grad;
      run.velocity.mul_(0.9).add_(w.grad());
      run.w.add_(run.velocity, -0.1);
      total += loss.item<double>();
      ++run.step;
    }
    return total;
  };
  auto make_loader = [&] {
    return DataLoader(ds, {.batch_size = 16, .seed = 11}, {transforms::gaussian_noise(0.1)});
  };

  Run full;
  DataLoader full_loader = make_loader();
  std::vector<double> losses;
  for (int e = 0; e < 4; ++e) losses.push_back(epoch_loss(full, full_loader));
  CHECK(losses[3] < losses[0]);

  TempDir dir;
  const std::string path = dir / "resume.safetensors";
  {
    Run first;
    DataLoader loader = make_loader();
    for (int e = 0; e < 2; ++e) CHECK(epoch_loss(first, loader) == losses[static_cast<size_t>(e)]);
    Checkpoint ckpt;
    ckpt.tensors = first.state();
    ckpt.epoch = loader.epoch();
    ckpt.step = first.step;
    ckpt.save_rng("mask", first.mask_gen);
    save_checkpoint(path, ckpt);
  }
  Run resumed;
  resumed.w.fill_(123);  // overwritten by the load
  const Checkpoint ckpt = load_checkpoint(path);
  load_named_tensors(resumed.state(), ckpt.tensors, true, path);
  ckpt.restore_rng("mask", resumed.mask_gen);
  resumed.step = ckpt.step;
  DataLoader loader = make_loader();
  loader.set_epoch(ckpt.epoch);
  CHECK(ckpt.epoch == 2);
  CHECK(epoch_loss(resumed, loader) == losses[2]);  // bit for bit
  CHECK(epoch_loss(resumed, loader) == losses[3]);
  CHECK(resumed.w.to_vector<float>() == full.w.to_vector<float>());
  CHECK(resumed.step == full.step);
}
