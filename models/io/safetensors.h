// The safetensors format (https://github.com/huggingface/safetensors), so weights move both ways
// between latent and PyTorch:
//
//   8 bytes      N, the header length, unsigned little-endian
//   N bytes      a JSON object: {"__metadata__": {"key": "value", ...},        (optional, strings only)
//                                "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
//                padded with spaces so the data starts at a multiple of 8
//   the rest     the data section: each tensor's raw little-endian bytes, row-major, at
//                [begin, end) relative to the start of the data section, with no gaps or overlaps
//
// latent writes and reads every dtype of LATENT_DTYPES. Reading never trusts the file: the header length is
// checked against the file size, every entry's dtype, shape and offsets against each other and the
// data section; every error is one line naming the file and the tensor.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../../autograd/tensor.h"

namespace latent {

/// An ordered list of named tensors (a state dict): {"encoder.0.weight", w}, ...
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
/// The "__metadata__" string map, in order.
using StringMap = std::vector<std::pair<std::string, std::string>>;

/// The tensor called `name` in `tensors`, or an undefined Tensor.
Tensor find_tensor(const NamedTensors& tensors, std::string_view name);

namespace safetensors {

/// What a safetensors file holds: its tensors in header order and its metadata.
struct File {
  NamedTensors tensors;  ///< in header order
  StringMap metadata;    ///< "__metadata__", in header order (empty when absent)
  /// The tensor called `name` ("[safetensors] no tensor 'x' (the file has: a, b)" when absent).
  const Tensor& at(std::string_view name) const;
};

/// Largest header accepted when reading (the reference implementation's limit): 100 MB.
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;

/// The file's bytes for `tensors` (CPU; any strides; float32, float64 or int64) in the given order.
/// Names must be unique, non-empty and not "__metadata__".
std::string serialize(const NamedTensors& tensors, const StringMap& metadata = {});
/// Parses and validates bytes; `source` names them in errors (a path or "<memory>").
File deserialize(std::string_view bytes, const std::string& source = "<memory>");
/// Writes `tensors` to `path` atomically (write_file_atomic: a reader never sees half a file).
void save_file(const NamedTensors& tensors, const std::string& path, const StringMap& metadata = {});
/// Reads and validates `path`.
File load_file(const std::string& path);

}  // namespace safetensors
}  // namespace latent
