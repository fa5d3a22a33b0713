// Tape nodes: one per recorded op application, holding edges to the nodes (or leaves) of its inputs
// and whatever its backward needs.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "tensor.h"

namespace latent {

/// Where the gradient of one input goes: the node that produced it, or the leaf itself.
/// Both empty means the input needs no gradient.
struct Edge {
  /// The node that produced the input (non-leaf inputs).
  std::shared_ptr<Node> fn;
  /// The input tensor itself when it is a leaf that requires grad (the gradient accumulates into it).
  std::shared_ptr<TensorImpl> leaf;
  /// True when the input needs a gradient.
  bool defined() const { return fn || leaf; }
};

/// A tensor kept for backward: a detached alias plus the storage version at save time, so an
/// in-place change before backward is detected ("[backward] ... modified in place").
class SavedTensor {
 public:
  SavedTensor() = default;
  /// Saves a detached alias of `t` and its storage version (an undefined `t` saves nothing).
  explicit SavedTensor(const Tensor& t);
  /// The saved value; throws if it was modified in place or freed by an earlier backward.
  Tensor unpack(const char* op) const;
  /// Drops the saved tensor (frees its storage when it held the last reference).
  void reset() { data_ = Tensor(); }
  /// True while a tensor is held.
  bool defined() const { return data_.defined(); }

 private:
  Tensor data_;
  uint32_t version_ = 0;
  bool saved_ = false;
};

/// Base of every recorded op. The engine calls backward() once per backward pass with the summed
/// gradient of the node's output; it fills one gradient per input (undefined = none).
class Node {
 public:
  /// A node with `num_inputs` edges (up to 3 stored inline, more on the heap), numbered in creation order.
  explicit Node(int num_inputs);
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// The op's name, as in its error messages ("mul", "linear").
  virtual const char* name() const = 0;
  /// Computes the gradient of each input from grad_output (the summed gradient of the node's
  /// output) into grad_inputs[i] (one per edge, undefined on entry; leave undefined for none).
  virtual void backward(const Tensor& grad_output, std::span<Tensor> grad_inputs) = 0;
  /// Frees saved tensors (called after backward unless retain_graph).
  virtual void release_saved() {}

  /// The edges to the inputs' producers, one per input in op order.
  /// @{
  std::span<Edge> edges() { return {edges_, static_cast<size_t>(num_edges_)}; }
  std::span<const Edge> edges() const { return {edges_, static_cast<size_t>(num_edges_)}; }
  /// @}
  /// Whether input i needs a gradient (lets backward skip work).
  bool needs_grad(int i) const { return edges_[i].defined(); }
  /// Creation order of this node on its thread; backward runs newer nodes first.
  uint64_t sequence_nr() const { return sequence_nr_; }

 private:
  friend class Engine;
  static constexpr int kInlineEdges = 3;
  Edge inline_edges_[kInlineEdges];
  std::unique_ptr<Edge[]> heap_edges_;
  Edge* edges_;
  int num_edges_;
  uint64_t sequence_nr_;
  // Engine scratch, valid during one backward pass.
  uint64_t mark_ = 0;
  int pending_ = 0;
  Tensor buffer_;
};

/// Gradient-accumulation helpers the engine needs from ops/ (installed by ops at load time, so
/// autograd does not depend on ops).
struct AutogradHooks {
  /// a + b, out of place.
  Tensor (*add)(const Tensor&, const Tensor&) = nullptr;
  /// a += b, in place.
  void (*add_inplace)(Tensor&, const Tensor&) = nullptr;
  /// A copy of the tensor with its own storage.
  Tensor (*clone)(const Tensor&) = nullptr;
  /// A tensor of ones like the argument (the seed gradient of a scalar root).
  Tensor (*ones_like)(const Tensor&) = nullptr;
  /// False when the tensor holds NaN or Inf (anomaly mode's check).
  bool (*all_finite)(const Tensor&) = nullptr;
};
/// Installs the helpers (ops/ calls this once at load time).
void set_autograd_hooks(const AutogradHooks& hooks);

/// Runs backpropagation from `root` (Tensor::backward calls this).
void run_backward(const Tensor& root, const Tensor& gradient, bool retain_graph);

/// The graph that produced `root` as Graphviz DOT (nodes named by op, leaves by shape).
std::string graph_to_dot(const Tensor& root);

}  // namespace latent
