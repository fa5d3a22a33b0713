// Import of ONNX models as nn::Modules. The graph's nodes run, in graph order, as latent's own
// differentiable ops, so an imported model trains like any other module:
//
//   auto model = latent::onnx::import_model("ae/model.onnx");     // validates every node here
//   latent::Tensor y = model->forward(x);                          // one input, first output
//   std::vector<latent::Tensor> outs = model->run({x});            // all inputs, all outputs
//   latent::optim::Adam opt(model->parameters(), 1e-3);            // fine-tune the initializers
//
// Float initializers become parameters under their ONNX names ("encoder.0.weight" is the
// parameter `weight` of submodule `0` of submodule `encoder`, so state_dict() gives the name
// back); initializers read only as values (shapes, scales, BatchNorm statistics) and int64 ones
// become buffers. Each op follows its semantics at the model's opset (1 to 17); anything not
// supported (op, opset, attribute value, data type) is reported when the module is built:
//   [onnx import] node 'Resize_3' (Resize, opset 13): mode 'cubic' is not supported (supported: nearest, linear)
// The graph is an inference graph: Dropout is the identity and BatchNormalization uses the running
// statistics whatever train()/eval() says.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "../models/nn/module.h"
#include "onnx_model.h"

namespace latent::onnx {

/// A TensorProto as a tensor: FLOAT -> float32, DOUBLE -> float64, INT64 -> int64; any other data
/// type throws "[onnx import] tensor 'x' has data type UINT8, which is not supported ...".
/// `model_dir` is needed for external data only.
Tensor tensor_from_proto(const TensorProto& proto, const std::filesystem::path& model_dir = {});

/// A tensor as a TensorProto (values in raw_data) named `name`.
TensorProto tensor_to_proto(const Tensor& tensor, const std::string& name = {});

/// A graph input or output as the model declares it.
struct ValueSpec {
  /// The graph input's or output's name.
  std::string name;
  int32_t elem_type = 0;        ///< a DataType value (0: not declared)
  bool has_shape = false;       ///< false: the rank is unknown
  std::vector<int64_t> dims;    ///< -1 for a dynamic dim ("batch" or unnamed)
};

/// An ONNX model as a module. Not copyable; hold it by std::shared_ptr (import_model does).
/// It starts in eval mode, as an inference graph runs: BatchNormalization uses the running
/// statistics and Dropout is the identity. After train(), BatchNormalization normalizes with batch
/// statistics and updates the running ones (ONNX's momentum), and Dropout draws masks (unless the
/// node's own training_mode input says otherwise), as PyTorch modules do in training.
class OnnxModule : public nn::Module {
 public:
  /// Builds the module from a parsed model, validating every node. `model_dir` is the folder of the
  /// model file (external data must lie inside it).
  explicit OnnxModule(const ModelProto& model, const std::filesystem::path& model_dir = {});
  ~OnnxModule() override;

  /// Runs the graph on the inputs, in the order of inputs() (graph inputs that have an
  /// initializer are optional and not counted). Returns the graph outputs in order.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs);
  /// run({input})[0]; the model must have exactly one input.
  Tensor forward(const Tensor& input) override;

  /// The inputs run() takes.
  const std::vector<ValueSpec>& inputs() const;
  /// The outputs run() returns.
  const std::vector<ValueSpec>& outputs() const;
  /// The version of the default ("ai.onnx") operator set the model imports.
  int64_t opset_version() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Loads `path` (an .onnx file) and builds its module.
std::shared_ptr<OnnxModule> import_model(const std::filesystem::path& path);

/// The most elements a tensor may have when its size comes from values inside the model rather
/// than from the inputs (ConstantOfShape's shape, Expand's shape, Tile's repeats, Range's bounds),
/// so a shape claiming 10^12 elements fails with one line naming the node before anything is
/// allocated. 2^30 by default (4 GiB of float32); fuzzers and tests may lower it.
int64_t& max_created_elements();

/// True for the data types tensors can have in an imported graph: FLOAT, DOUBLE and INT64.
bool is_supported_data_type(int32_t data_type);

}  // namespace latent::onnx
