// The backward engine: dependency counting, then a ready queue ordered newest-first by sequence
// number, all iterative so that graphs of any depth run (and are destroyed) without recursion.
#include <atomic>
#include <functional>
#include <queue>
#include <unordered_map>
#include <vector>

#include "grad_mode.h"
#include "hooks.h"
#include "node.h"

namespace latent {
namespace {

// initial-exec: these are read on every op; the default TLS model of a shared library would
// call __tls_get_addr each time.
#define LATENT_TLS thread_local __attribute__((tls_model("initial-exec")))
LATENT_TLS bool grad_enabled = true;
std::atomic<bool> anomaly_enabled{false};
LATENT_TLS uint64_t next_sequence_nr = 0;
std::atomic<uint64_t> next_mark{0};
AutogradHooks hooks;
// Post-accumulate hooks by leaf (few: a data-parallel model's parameters), with engine scratch:
// the pass they were counted in and the gradients still to come.
struct LeafHook {
  std::function<void(const Tensor& leaf)> fn;
  uint64_t mark = 0;
  int pending = 0;
};
std::unordered_map<const TensorImpl*, LeafHook> leaf_hooks;
LeafHook* hook_of(const TensorImpl* leaf) {
  if (leaf_hooks.empty()) return nullptr;
  auto it = leaf_hooks.find(leaf);
  return it == leaf_hooks.end() ? nullptr : &it->second;
}
// The callbacks queued by the backward pass running on this thread (null outside backward).
LATENT_TLS std::vector<std::function<void()>>* queued_callbacks = nullptr;

const AutogradHooks& checked_hooks() {
  if (!hooks.add) fail("backward", "latent ops are not initialised (link the full latent library)");
  return hooks;
}

}  // namespace

bool is_grad_enabled() { return grad_enabled; }
void set_grad_enabled(bool enabled) { grad_enabled = enabled; }
bool is_anomaly_enabled() { return anomaly_enabled.load(std::memory_order_relaxed); }
void set_anomaly_enabled(bool enabled) { anomaly_enabled.store(enabled); }
void set_autograd_hooks(const AutogradHooks& h) { hooks = h; }

void set_post_accumulate_grad_hook(const Tensor& leaf, std::function<void(const Tensor&)> fn) {
  if (!leaf.defined() || !leaf.is_leaf() || !leaf.requires_grad())
    fail("set_post_accumulate_grad_hook", "the tensor must be a leaf that requires grad");
  if (!fn) {
    leaf_hooks.erase(leaf.impl());
    return;
  }
  leaf_hooks[leaf.impl()] = LeafHook{std::move(fn), 0, 0};
}

void queue_backward_callback(std::function<void()> fn) {
  if (!queued_callbacks) fail("queue_backward_callback", "called outside a backward pass (call it from a hook)");
  queued_callbacks->push_back(std::move(fn));
}

// ---- SavedTensor ----

SavedTensor::SavedTensor(const Tensor& t) : version_(t.defined() ? t.version() : 0), saved_(true) {
  if (t.defined()) data_ = t.detach();
}

Tensor SavedTensor::unpack(const char* op) const {
  if (!saved_) return {};
  if (!data_.defined())
    fail("backward", "the saved tensors of '{}' were freed by an earlier backward; pass retain_graph=true to "
         "the first backward() to run backward twice", op);
  if (data_.version() != version_)
    fail("backward", "a tensor saved by '{}' was modified by an in-place op (version {} -> {}) before backward; "
         "clone() it before changing it", op, version_, data_.version());
  return data_;
}

// ---- Node ----

Node::Node(int num_inputs) : num_edges_(num_inputs), sequence_nr_(next_sequence_nr++) {
  if (num_inputs <= kInlineEdges) {
    edges_ = inline_edges_;
  } else {
    heap_edges_.reset(new Edge[num_inputs]);
    edges_ = heap_edges_.get();
  }
}

// Destroying the last reference to a long chain would recurse once per node through the
// shared_ptr destructors and overflow the stack. Instead each destructor moves the edges it owns
// alone onto a thread-local list, and only the outermost destructor drains that list.
Node::~Node() {
  bool owns_a_child = false;
  for (const Edge& e : edges()) owns_a_child = owns_a_child || (e.fn && e.fn.use_count() == 1);
  if (!owns_a_child) return;  // the common case: nothing to cascade
  thread_local std::vector<std::shared_ptr<Node>> pending;
  static LATENT_TLS bool draining = false;
  for (Edge& e : edges()) {
    if (e.fn && e.fn.use_count() == 1) pending.push_back(std::move(e.fn));
  }
  if (draining) return;
  draining = true;
  while (!pending.empty()) {
    std::shared_ptr<Node> node = std::move(pending.back());
    pending.pop_back();
    node.reset();  // its destructor appends its own children
  }
  draining = false;
}

// ---- Engine ----

class Engine {
 public:
  static void accumulate(const std::shared_ptr<TensorImpl>& leaf, const Tensor& g, const char* from) {
    const AutogradHooks& h = checked_hooks();
    if (!(g.shape() == leaf->shape))
      fail("backward", "'{}' produced a gradient of shape {} for a leaf of shape {}", from, g.shape(), leaf->shape);
    if (!leaf->grad) {
      // Steal the gradient when nothing else refers to it; otherwise copy, so that later in-place
      // accumulation cannot change another tensor.
      bool exclusive = g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 && g.is_contiguous();
      leaf->grad = exclusive ? g.impl_ptr() : h.clone(g).impl_ptr();
      leaf->grad->grad_fn.reset();
      leaf->grad->requires_grad = false;
    } else {
      Tensor existing(leaf->grad);
      h.add_inplace(existing, g);
    }
  }

  /// run_graph, then the callbacks its hooks queued.
  static void run(const Tensor& root, const Tensor& gradient, bool retain_graph) {
    std::vector<std::function<void()>> callbacks;
    std::vector<std::function<void()>>* outer = queued_callbacks;
    queued_callbacks = &callbacks;
    try {
      run_graph(root, gradient, retain_graph);
    } catch (...) {
      queued_callbacks = outer;
      throw;
    }
    queued_callbacks = outer;
    for (auto& fn : callbacks) fn();
  }

  /// A leaf's hook runs once its last gradient of this pass has arrived.
  static void leaf_done(const std::shared_ptr<TensorImpl>& leaf) {
    LeafHook* hook = hook_of(leaf.get());
    if (hook && --hook->pending == 0) hook->fn(Tensor(leaf));
  }

  static void run_graph(const Tensor& root, const Tensor& gradient, bool retain_graph) {
    if (!root.defined()) fail("backward", "tensor is undefined");
    if (!root.requires_grad())
      fail("backward", "tensor of shape {} does not require grad and has no grad_fn; call requires_grad_() on "
           "the leaves it depends on", root.shape());
    const AutogradHooks& h = checked_hooks();
    Tensor g = gradient;
    if (!g.defined()) {
      if (root.numel() != 1)
        fail("backward", "a gradient can be created implicitly only for one-element tensors; got shape {}: "
             "pass backward(gradient)", root.shape());
      g = h.ones_like(root);
    } else if (!(g.shape() == root.shape()) || g.dtype() != root.dtype()) {
      fail("backward", "gradient has shape {} and dtype {}, expected {} and {} like the tensor",
           g.shape(), g.dtype(), root.shape(), root.dtype());
    }
    NoGradGuard no_grad;
    if (root.is_leaf()) {
      accumulate(root.impl_ptr(), g, "backward");
      if (LeafHook* hook = hook_of(root.impl())) hook->fn(root);
      return;
    }

    Node* start = root.grad_fn().get();
    const uint64_t mark = ++next_mark;
    std::vector<Node*> stack{start};
    start->mark_ = mark;
    start->pending_ = 0;
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      for (Edge& e : n->edges()) {
        if (LeafHook* hook = e.leaf ? hook_of(e.leaf.get()) : nullptr) {  // count the gradients each hooked leaf gets
          if (hook->mark != mark) {
            hook->mark = mark;
            hook->pending = 0;
          }
          ++hook->pending;
        }
        Node* child = e.fn.get();
        if (!child) continue;
        if (child->mark_ != mark) {
          child->mark_ = mark;
          child->pending_ = 0;
          child->buffer_ = Tensor();
          stack.push_back(child);
        }
        ++child->pending_;
      }
    }

    auto newer_first = [](const Node* a, const Node* b) { return a->sequence_nr_ < b->sequence_nr_; };
    std::priority_queue<Node*, std::vector<Node*>, decltype(newer_first)> ready(newer_first);
    start->buffer_ = g;
    ready.push(start);
    std::vector<Tensor> grads;
    const bool anomaly = is_anomaly_enabled();
    while (!ready.empty()) {
      Node* n = ready.top();
      ready.pop();
      Tensor grad = std::move(n->buffer_);
      n->buffer_ = Tensor();
      grads.assign(static_cast<size_t>(n->num_edges_), Tensor());
      if (grad.defined()) {
        n->backward(grad, grads);
        if (!retain_graph) n->release_saved();
      }
      for (int i = 0; i < n->num_edges_; ++i) {
        Edge& e = n->edges_[i];
        Tensor& gi = grads[static_cast<size_t>(i)];
        if (gi.defined() && anomaly && !h.all_finite(gi))
          fail("backward", "anomaly: the backward of '{}' produced NaN or Inf in the gradient of its input {} "
               "(shape {})", n->name(), i, gi.shape());
        if (e.leaf) {
          if (gi.defined()) accumulate(e.leaf, gi, n->name());
          leaf_done(e.leaf);
        } else if (e.fn) {
          Node* child = e.fn.get();
          if (gi.defined()) child->buffer_ = child->buffer_.defined() ? h.add(child->buffer_, gi) : std::move(gi);
          if (--child->pending_ == 0) ready.push(child);
        }
      }
    }
  }
};

void run_backward(const Tensor& root, const Tensor& gradient, bool retain_graph) {
  Engine::run(root, gradient, retain_graph);
}

}  // namespace latent
