// nn::Module: the base of every layer and model. A module owns named parameters (tensors that
// require grad), buffers (state that is saved but not trained, e.g. BatchNorm's running mean) and
// submodules, all kept in registration order so that dotted names and their order match PyTorch:
// a model with an `encoder` Sequential has `encoder.0.weight`, `encoder.0.bias`, ... exactly as
// its PyTorch twin's state_dict.
//
//   struct Net : latent::nn::Module {
//     std::shared_ptr<latent::nn::Linear> fc;
//     Net() { fc = register_module("fc", std::make_shared<latent::nn::Linear>(4, 2)); }
//     latent::Tensor forward(const latent::Tensor& x) override { return latent::relu(fc->forward(x)); }
//   };
//
// Registered tensors are held by handle: load_state_dict() and to() change their contents in
// place, so handles kept in members (fc->weight) stay valid.
#pragma once

#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../../autograd/tensor.h"

namespace latent::nn {

/// Tensors by dotted name, in order (the state_dict order of PyTorch).
using StateDict = std::vector<std::pair<std::string, Tensor>>;

/// What a non-strict load_state_dict() could not match (PyTorch's _IncompatibleKeys).
struct LoadResult {
  std::vector<std::string> missing_keys;     ///< in the model, absent from the state dict
  std::vector<std::string> unexpected_keys;  ///< in the state dict, absent from the model
};

/// Base class of layers and models. Non-copyable; hold modules by std::shared_ptr.
class Module {
 public:
  /// The printed type name is the C++ class name (namespaces dropped).
  Module() = default;
  /// Sets the type name used by to_string(), e.g. Module("Autoencoder").
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The computation; the base version throws "[Net] forward is not implemented".
  virtual Tensor forward(const Tensor& input);
  /// Same as forward(input).
  Tensor operator()(const Tensor& input) { return forward(input); }

  // ---- registration (names: non-empty, no '.', unique within this module) ----

  /// Registers a trainable tensor (a floating leaf; requires_grad is set) and returns it.
  Tensor register_parameter(const std::string& name, Tensor tensor, bool requires_grad = true);
  /// Registers state that is saved in state_dict() but not trained, and returns it.
  Tensor register_buffer(const std::string& name, Tensor tensor);
  /// Registers a submodule and returns it with its own type:
  /// `auto fc = register_module("fc", std::make_shared<Linear>(4, 2));`
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    register_module_impl(name, module);
    return module;
  }

  // ---- access (recursive by default; registration order, parents before children) ----

  /// Parameters of this module and its descendants; a tensor registered twice appears once.
  std::vector<Tensor> parameters(bool recurse = true) const;
  /// Parameters with dotted names ("encoder.0.weight").
  StateDict named_parameters(bool recurse = true) const;
  /// Buffers of this module and its descendants.
  std::vector<Tensor> buffers(bool recurse = true) const;
  /// Buffers with dotted names ("bn.running_mean").
  StateDict named_buffers(bool recurse = true) const;
  /// Direct submodules in registration order.
  std::vector<std::shared_ptr<Module>> children() const;
  /// Direct submodules with their names.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  /// The direct submodule called `name` ("[Net] has no submodule 'fc2'" otherwise).
  std::shared_ptr<Module> child(const std::string& name) const;
  /// Calls fn on every descendant (children first, depth first) and then on this module.
  void apply(const std::function<void(Module&)>& fn);
  /// Total number of elements over parameters().
  int64_t parameter_count() const;

  // ---- modes ----

  /// Sets training mode on this module and every descendant (Dropout, BatchNorm read it).
  virtual void train(bool on = true);
  /// train(false).
  void eval() { train(false); }
  /// True in training mode (the default), false after eval().
  bool is_training() const { return training_; }

  // ---- state ----

  /// Parameters and buffers with dotted names, each module's own parameters then its own buffers
  /// then its children (PyTorch's order). The tensors are detached aliases of the model's data.
  StateDict state_dict() const;
  /// Copies tensors into the model by name. Shapes and dtypes must match ("[load_state_dict]
  /// 'fc.weight': shape [2, 4] in the state dict, [3, 4] in the model"); nothing is changed when
  /// any check fails. strict: missing or unexpected keys are an error; otherwise they are returned.
  LoadResult load_state_dict(const StateDict& state, bool strict = true);
  /// load_state_dict from a map (e.g. what a file reader produced).
  LoadResult load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

  /// Moves parameters and buffers to `device` in place: every handle to them sees the new data and
  /// gradients are dropped. Build optimizers after moving (their state follows the parameters).
  /// An unavailable device fails with "[to] device cuda is not available: ...".
  void to(Device device);
  /// Converts the floating parameters and buffers to `dtype` in place (gradients are dropped).
  void to(DType dtype);
  /// Drops the gradient of every parameter (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();

  // ---- printing ----

  /// The class name shown by to_string(), e.g. "Linear".
  std::string type_name() const;
  /// The text inside the parentheses of a leaf module, e.g. "in_features=4, out_features=2, bias=True".
  virtual std::string extra_repr() const { return {}; }
  /// The module tree as PyTorch prints it.
  std::string to_string() const;

 protected:
  /// The non-template part of register_module(): checks the name and stores the module.
  void register_module_impl(const std::string& name, std::shared_ptr<Module> module);

 private:
  void check_name(const char* op, const std::string& name) const;
  void collect_named(StateDict& out, const std::string& prefix, bool params, bool buffers, bool recurse) const;

  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  std::string type_name_;
};

/// Prints module.to_string().
std::ostream& operator<<(std::ostream& os, const Module& module);

/// Python's repr of a float: 0.01 -> "0.01", 1.0 -> "1.0", 1e-05 -> "1e-05" (for extra_repr()).
std::string python_float(double value);

}  // namespace latent::nn
