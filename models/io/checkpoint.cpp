// Atomic writes and training checkpoints. See checkpoint.h for the file design.
#include "checkpoint.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "../../autograd/grad_mode.h"

namespace latent {

namespace {

constexpr const char* kOp = "checkpoint";

std::string errno_text(int err) { return std::strerror(err); }

// Splits "a/b/c.bin" into ("a/b", "c.bin"); a bare name lives in ".".
std::pair<std::string, std::string> split_path(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

// Removes `.BASE.tmp.PID.N` files in `dir` left by writers that died mid-write (their process no
// longer exists). Files of live processes, this one included, are left alone. Best effort: a
// folder that cannot be listed, or a file that is already gone, is not an error.
void remove_stale_temporaries(const std::string& dir, const std::string& base) {
  const std::string prefix = "." + base + ".tmp.";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (const dirent* entry = ::readdir(d)) {
    const std::string name = entry->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());  // "PID.N"
    const size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos) continue;
    char* end = nullptr;
    const long pid = std::strtol(rest.c_str(), &end, 10);
    if (end != rest.c_str() + dot || pid <= 0 || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    ::unlink((dir + "/" + name).c_str());
  }
  ::closedir(d);
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  const auto [dir, base] = split_path(path_);
  if (base.empty()) fail("file", "{}: the path names a folder, not a file", path_);
  static std::atomic<uint64_t> counter{0};
  // A fresh temporary name in the same folder (rename is atomic only within one file system).
  for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
    tmp_ = fmt::format("{}/.{}.tmp.{}.{}", dir, base, ::getpid(), counter++);
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0 && errno != EEXIST)
      fail("file", "{}: cannot create a temporary file in {} ({})", path_, dir, errno_text(errno));
  }
  if (fd_ < 0) fail("file", "{}: cannot create a unique temporary file in {}", path_, dir);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::abandon(const char* step, int err) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  committed_ = true;  // nothing left to remove
  fail("file", "{}: {} failed for {} ({})", path_, step, tmp_, errno_text(err));
}

void AtomicFile::write(std::string_view bytes) {
  if (fd_ < 0) fail("file", "{}: write after commit", path_);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      abandon("write", errno);
    }
    done += static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) fail("file", "{}: committed twice", path_);
  const auto [dir, base] = split_path(path_);
  // The data must be on disk before the rename makes it visible under the final name.
  if (::fsync(fd_) != 0) abandon("fsync", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) abandon("close", errno);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp_.c_str());
    committed_ = true;  // nothing left to remove
    fail("file", "{}: rename from {} failed ({})", path_, tmp_, errno_text(err));
  }
  committed_ = true;
  // Persist the rename itself (the folder entry).
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) fail("file", "{}: cannot open folder {} to fsync it ({})", path_, dir, errno_text(errno));
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0 && err != EINVAL)  // some file systems cannot fsync folders
    fail("file", "{}: fsync of folder {} failed ({})", path_, dir, errno_text(err));
  remove_stale_temporaries(dir, base);
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFile file(path);
  file.write(bytes);
  file.commit();
}

std::string read_file(const std::string& path, const char* component) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(component, "{}: cannot open ({})", path, errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    const int err = S_ISDIR(st.st_mode) ? EISDIR : errno;
    ::close(fd);
    fail(component, "{}: cannot read ({})", path, errno_text(err));
  }
  // Read to the end even if the size changed since fstat (a file being appended to).
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  char spill[65536];
  while (true) {
    const bool into_out = done < out.size();
    const ssize_t n = into_out ? ::read(fd, out.data() + done, out.size() - done) : ::read(fd, spill, sizeof spill);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      fail(component, "{}: read failed ({})", path, errno_text(err));
    }
    if (n == 0) break;
    if (!into_out) out.append(spill, static_cast<size_t>(n));
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(done);
  return out;
}

LoadReport load_named_tensors(const NamedTensors& targets, const NamedTensors& source, bool strict,
                              const std::string& source_name) {
  const std::string where = source_name.empty() ? std::string() : source_name + ": ";
  LoadReport report;
  for (const auto& [name, t] : targets)
    if (!find_tensor(source, name).defined()) report.missing.push_back(name);
  for (const auto& [name, t] : source)
    if (!find_tensor(targets, name).defined()) report.unexpected.push_back(name);
  if (strict && !report.missing.empty())
    fail(kOp, "{}missing tensor '{}' ({} of {} expected tensors are absent)", where, report.missing[0],
         report.missing.size(), targets.size());
  if (strict && !report.unexpected.empty())
    fail(kOp, "{}unexpected tensor '{}' ({} tensors in the file are not expected)", where, report.unexpected[0],
         report.unexpected.size());
  // Check everything before copying anything, so a failed load leaves the targets unchanged.
  for (const auto& [name, target] : targets) {
    Tensor src = find_tensor(source, name);
    if (!src.defined()) continue;
    if (src.dtype() != target.dtype())
      fail(kOp, "{}tensor '{}' has dtype {} in the file, expected {}", where, name, src.dtype(), target.dtype());
    if (src.shape() != target.shape())
      fail(kOp, "{}tensor '{}' has shape {} in the file, expected {}", where, name, src.shape(), target.shape());
  }
  NoGradGuard no_grad;
  for (const auto& [name, target] : targets) {
    Tensor src = find_tensor(source, name);
    if (src.defined()) Tensor(target).copy_(src);
  }
  return report;
}

NamedTensors with_prefix(const std::string& prefix, const NamedTensors& tensors) {
  NamedTensors out;
  out.reserve(tensors.size());
  for (const auto& [name, t] : tensors) out.emplace_back(prefix + name, t);
  return out;
}

NamedTensors strip_prefix(const std::string& prefix, const NamedTensors& tensors) {
  NamedTensors out;
  for (const auto& [name, t] : tensors)
    if (name.compare(0, prefix.size(), prefix) == 0) out.emplace_back(name.substr(prefix.size()), t);
  return out;
}

void Checkpoint::save_rng(const std::string& name, const Generator& generator) {
  for (auto& [n, state] : rng)
    if (n == name) {
      state = generator.state();
      return;
    }
  rng.emplace_back(name, generator.state());
}

void Checkpoint::restore_rng(const std::string& name, Generator& generator) const {
  for (const auto& [n, state] : rng)
    if (n == name) {
      generator.set_state(state);
      return;
    }
  fail(kOp, "no RNG state '{}' in the checkpoint ({} saved)", name, rng.size());
}

const Tensor& Checkpoint::at(std::string_view name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  fail(kOp, "no tensor '{}' in the checkpoint ({} tensors)", name, tensors.size());
}

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
  json::Value meta = json::Value::object();
  meta["epoch"] = checkpoint.epoch;
  meta["step"] = checkpoint.step;
  json::Value rng = json::Value::object();
  for (const auto& [name, state] : checkpoint.rng) {
    json::Value s = json::Value::object();
    s["s"] = json::Array{json::Value(state.s[0]), json::Value(state.s[1]), json::Value(state.s[2]),
                         json::Value(state.s[3])};
    s["spare"] = state.spare;
    s["has_spare"] = state.has_spare;
    rng[name] = std::move(s);
  }
  meta["rng"] = std::move(rng);
  meta["config"] = checkpoint.config;
  meta["extra"] = checkpoint.extra;
  safetensors::save_file(checkpoint.tensors, path,
                         {{"format", kCheckpointFormat}, {"checkpoint", meta.dump()}});
}

Checkpoint load_checkpoint(const std::string& path) {
  safetensors::File file = safetensors::load_file(path);
  const std::string* format = nullptr;
  const std::string* text = nullptr;
  for (const auto& [k, v] : file.metadata) {
    if (k == "format") format = &v;
    if (k == "checkpoint") text = &v;
  }
  if (!format || *format != kCheckpointFormat)
    fail(kOp, "{}: not a latent checkpoint: metadata 'format' is {}, expected '{}'", path,
         format ? "'" + *format + "'" : std::string("absent"), kCheckpointFormat);
  if (!text) fail(kOp, "{}: metadata 'checkpoint' is absent", path);
  Checkpoint ckpt;
  try {
    const json::Value meta = json::parse(*text);
    ckpt.epoch = meta.at("epoch").as_int64();
    ckpt.step = meta.at("step").as_int64();
    for (const auto& [name, s] : meta.at("rng").as_object()) {
      Generator::State state{};
      const json::Array& words = s.at("s").as_array();
      if (words.size() != 4) fail("json", "rng '{}': 's' has {} words, expected 4", name, words.size());
      for (int i = 0; i < 4; ++i) state.s[i] = words[static_cast<size_t>(i)].as_uint64();
      state.spare = s.at("spare").as_double();
      state.has_spare = s.at("has_spare").as_bool();
      ckpt.rng.emplace_back(name, state);
    }
    ckpt.config = meta.at("config");
    ckpt.extra = meta.at("extra");
  } catch (const Error& e) {
    fail(kOp, "{}: metadata 'checkpoint' is malformed: {}", path, e.what());
  }
  ckpt.tensors = std::move(file.tensors);
  return ckpt;
}

}  // namespace latent
