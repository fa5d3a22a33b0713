// Atomic file writing and training checkpoints.
//
// Checkpoint file design: ONE safetensors file per checkpoint, written with write_file_atomic.
//
//   tensors        the caller's named tensors, in the caller's order: model state and optimizer
//                  state, conventionally prefixed "model." and "optim." (with_prefix/strip_prefix)
//   __metadata__   "format": "latent.checkpoint.v1"
//                  "checkpoint": compact JSON text
//                    {"epoch": 3, "step": 1407,
//                     "rng": {"default": {"s": [u64, u64, u64, u64], "spare": 0.25, "has_spare": false}},
//                     "config": {...}, "extra": ...}
//
// One file, not a safetensors file plus a JSON side file, because one rename is atomic and two are
// not: a crash between two renames would pair new weights with old metadata. The metadata rides in
// the safetensors header, so Python reads everything with the reference implementation:
// `safe_open(path, "np").metadata()["checkpoint"]` is the JSON text. RNG state words are JSON
// integers (exact up to 2^64; json.h keeps integers exact); the Box-Muller spare is a double written
// in its shortest round-trip form, so restoring continues the same random sequence bit for bit.
//
// Atomicity: write_file_atomic writes a temporary file ".NAME.tmp.PID.N" in the same folder, fsyncs
// it, renames it over NAME and fsyncs the folder. Killing the writer at any moment leaves either the
// previous complete file or the new complete file under NAME, never a partial one; at worst a stale
// temporary file remains (safe to delete; never read).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "../../ops/random.h"
#include "json.h"
#include "safetensors.h"

namespace latent {

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a mix: a
/// temporary file in the same folder, write, fsync, rename over `path`, fsync the folder.
/// Errors: "[file] /x/model.safetensors: cannot create a temporary file in /x (Permission denied)".
void write_file_atomic(const std::string& path, std::string_view bytes);

/// A file written in pieces that appears under its name only when commit() succeeds (the same
/// temporary + fsync + rename as write_file_atomic). Destroyed without commit() -- an error
/// mid-way -- it removes the temporary, so no partial file is left behind.
class AtomicFile {
 public:
  /// Creates the temporary file beside `path`.
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  /// Appends bytes to the temporary file.
  void write(std::string_view bytes);
  /// Makes the file visible under its name.
  void commit();
  /// The final path.
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void abandon(const char* step, int err);
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

/// The whole content of `path`; errors name `component`: "[idx] /x/a.gz: cannot open (No such file ...)".
std::string read_file(const std::string& path, const char* component = "file");

/// Names from load_named_tensors that did not pair up.
struct LoadReport {
  std::vector<std::string> missing;     ///< in the targets, absent from the source
  std::vector<std::string> unexpected;  ///< in the source, absent from the targets
  /// True when every name paired up.
  bool ok() const { return missing.empty() && unexpected.empty(); }
};

/// Copies every source tensor into the target of the same name, in place (under no-grad).
/// Shapes and dtypes must match exactly ("[checkpoint] ckpt.safetensors: tensor 'encoder.0.weight'
/// has shape [64, 784] in the file, expected [128, 784]"). With `strict`, missing or unexpected
/// names throw (naming them, before anything is copied); otherwise they are returned, like
/// PyTorch's load_state_dict(strict=False). `source_name` prefixes the errors (a path).
LoadReport load_named_tensors(const NamedTensors& targets, const NamedTensors& source, bool strict = true,
                              const std::string& source_name = "");

/// `tensors` with `prefix` prepended to every name ("model." + "encoder.0.weight").
NamedTensors with_prefix(const std::string& prefix, const NamedTensors& tensors);
/// The tensors whose names start with `prefix`, with the prefix removed.
NamedTensors strip_prefix(const std::string& prefix, const NamedTensors& tensors);

/// A full training checkpoint: named tensors plus epoch, step, RNG states, config and extra data.
struct Checkpoint {
  NamedTensors tensors;       ///< model and optimizer state, as the caller names them
  int64_t epoch = 0;          ///< epochs completed
  int64_t step = 0;           ///< optimizer steps taken
  std::vector<std::pair<std::string, Generator::State>> rng;  ///< named generator states
  json::Value config = json::Value::object();                 ///< the run's configuration
  json::Value extra;          ///< anything else (metrics, best loss); null when unused

  /// Records `generator`'s state under `name` (replacing an earlier one).
  void save_rng(const std::string& name, const Generator& generator);
  /// Restores `generator` from the state called `name` ("[checkpoint] no RNG state 'loader'").
  void restore_rng(const std::string& name, Generator& generator) const;
  /// The tensor called `name` ("[checkpoint] no tensor 'x' ..." when absent).
  const Tensor& at(std::string_view name) const;
};

/// The "format" metadata value that marks a latent checkpoint.
inline constexpr const char* kCheckpointFormat = "latent.checkpoint.v1";

/// Serialises `checkpoint` as one safetensors file (see the top of this header) at `path`, atomically.
void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);
/// Reads and validates a checkpoint file; every malformed part fails with a one-line error.
Checkpoint load_checkpoint(const std::string& path);

}  // namespace latent
