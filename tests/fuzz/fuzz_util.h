// Helpers shared by the libFuzzer targets in tests/fuzz: a per-process scratch folder for readers
// that take a path (IDX, CSV), and the one way a target reports a finding.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace latent::fuzz {

/// Reports a finding (a broken invariant) and aborts, so libFuzzer keeps the input.
[[noreturn]] inline void finding(const char* target, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", target, what.c_str());
  std::abort();
}

/// `bytes` written to `name` inside a scratch folder made once per process (removed at exit).
inline std::string scratch_file(std::string_view bytes, const std::string& name) {
  struct Scratch {
    std::string dir;
    Scratch() {
      std::string tmpl = (std::filesystem::temp_directory_path() / "latent_fuzz_XXXXXX").string();
      if (!::mkdtemp(tmpl.data())) finding("fuzz", "mkdtemp failed");
      dir = tmpl;
    }
    ~Scratch() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  };
  static Scratch scratch;
  const std::string path = scratch.dir + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) finding("fuzz", "cannot write " + path);
  return path;
}

}  // namespace latent::fuzz
