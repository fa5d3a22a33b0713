// TensorProto contents as flat buffers of values, both ways, for the data types latent uses:
// FLOAT, DOUBLE, INT64, INT32, INT8, UINT8 and BOOL. Values come from raw_data (little-endian,
// packed), from the typed field ONNX uses for the data type (float_data, double_data, int64_data,
// or int32_data for INT32/INT8/UINT8/BOOL), or from external data: a side file named by the
// tensor's `location` entry, which must resolve inside the model's folder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "onnx_model.h"

namespace latent::onnx {

/// Bytes per element of a data type converted here (BOOL: 1); 0 for any other data type.
size_t element_size(int32_t data_type);

/// The number of elements `dims` describe (1 for a scalar). Throws on a negative dim or overflow.
int64_t element_count(const TensorProto& tensor);

/// The tensor's values as packed little-endian bytes (element_count * element_size of them; BOOL
/// as bytes 0 and 1), checked against dims and the data type. `model_dir` is the folder of the
/// model file, needed only for external data.
std::string tensor_bytes(const TensorProto& tensor, const std::filesystem::path& model_dir = {});

/// The values of a tensor whose data type matches T: float FLOAT, double DOUBLE, int64_t INT64,
/// int32_t INT32, int8_t INT8, uint8_t UINT8, bool BOOL. A different data type throws.
template <class T>
std::vector<T> tensor_to_vector(const TensorProto& tensor, const std::filesystem::path& model_dir = {});

/// The values of a tensor of any of the data types above, converted to double.
std::vector<double> tensor_to_doubles(const TensorProto& tensor, const std::filesystem::path& model_dir = {});

/// A tensor named `name` with `dims` and `values` (whose count must match dims), of the data type
/// matching T (see tensor_to_vector). With `raw` the values go to raw_data, otherwise to the typed
/// field.
template <class T>
TensorProto make_tensor(std::string name, std::vector<int64_t> dims, std::span<const T> values, bool raw = true);

/// The bytes of an external tensor (data_location EXTERNAL): `location` relative to `model_dir`
/// (absolute paths, `..` components and symlinks that lead outside the folder are rejected), from
/// `offset` (default 0) for `length` bytes (default: the rest of the file).
std::string read_external_data(const TensorProto& tensor, const std::filesystem::path& model_dir);

}  // namespace latent::onnx
