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
  std::shared_ptr<Node> fn;
  std::shared_ptr<TensorImpl> leaf;
  bool defined() const { return fn || leaf; }
};

/// A tensor kept for backward: a detached alias plus the storage version at save time, so an
/// in-place change before backward is detected ("[backward] ... modified in place").
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t);
  /// The saved value; throws if it was modified in place or freed by an earlier backward.
  Tensor unpack(const char* op) const;
  void reset() { data_ = Tensor(); }
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
  explicit Node(int num_inputs);
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// The op's name, as in its error messages ("mul", "linear").
  virtual const char* name() const = 0;
  virtual void backward(const Tensor& grad_output, std::span<Tensor> grad_inputs) = 0;
  /// Frees saved tensors (called after backward unless retain_graph).
  virtual void release_saved() {}

  std::span<Edge> edges() { return {edges_, static_cast<size_t>(num_edges_)}; }
  std::span<const Edge> edges() const { return {edges_, static_cast<size_t>(num_edges_)}; }
  /// Whether input i needs a gradient (lets backward skip work).
  bool needs_grad(int i) const { return edges_[i].defined(); }
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
  Tensor (*add)(const Tensor&, const Tensor&) = nullptr;
  void (*add_inplace)(Tensor&, const Tensor&) = nullptr;
  Tensor (*clone)(const Tensor&) = nullptr;
  Tensor (*ones_like)(const Tensor&) = nullptr;
  bool (*all_finite)(const Tensor&) = nullptr;
};
void set_autograd_hooks(const AutogradHooks& hooks);

/// Runs backpropagation from `root` (Tensor::backward calls this).
void run_backward(const Tensor& root, const Tensor& gradient, bool retain_graph);

/// The graph that produced `root` as Graphviz DOT (nodes named by op, leaves by shape).
std::string graph_to_dot(const Tensor& root);

}  // namespace latent
