// apply<Op>: the one place that knows about the tape. It runs Op::forward, and when grad mode is
// on and some tensor argument requires grad, records one node holding Op's context and edges.
//
// An op is a struct with
//   static constexpr const char* name;                       // its unique identity (op_registry.h), used in
//                                                            // messages, trace records and the export table
//   [static constexpr const char* display_name;]             // only for overloads of a user function that
//                                                            // another op also implements (x * 2.0: "mul")
//   struct Ctx : OpContext { ...attributes backward needs... }; // or `using Ctx = OpContext;`
//   static Tensor forward(Ctx* ctx, args...);                // ctx is null when nothing records;
//                                                            // save with ctx->save(a, b)
//   static std::array<Tensor, N> backward(const Ctx& ctx, const Tensor& grad);  // N tensor args
// See docs/design.md for the whole pattern.
//
// Tracing (ops/trace.h, for the ONNX exporter): while a trace::TraceGuard is alive, apply() and
// apply_list() record each top-level call; otherwise the hook is one relaxed load and a branch.
// Autocast (ops/autocast.h): for an op in the policy table, apply() also makes one relaxed load
// and branch; while some AutocastGuard is alive it casts 16-bit float inputs to float32 and, for
// kLower ops, runs the op (and later its backward) with the GEMM precision lowered.
#pragma once

#include <array>
#include <type_traits>
#include <vector>

#include "../autograd/grad_mode.h"
#include "../autograd/node.h"
#include "../autograd/small_alloc.h"
#include "autocast.h"
#include "op_registry.h"
#include "trace.h"

namespace latent {

Tensor to_dtype(const Tensor& x, DType dtype);  // ops/shape_ops.h (autocast's casts)

/// Base of every op's backward context: up to four saved tensors plus which inputs need grads.
class OpContext {
 public:
  /// Most tensors one context saves.
  static constexpr int kMaxSaved = 4;
  /// Saves tensors for backward (detached, with their version for in-place checks).
  template <class... Ts>
  void save(const Ts&... tensors) {
    static_assert(sizeof...(Ts) <= kMaxSaved, "at most 4 saved tensors");
    int i = 0;
    ((saved_[i++] = SavedTensor(tensors)), ...);
  }
  /// The first K saved tensors, checked against in-place modification.
  template <int K>
  std::array<Tensor, K> saved(const char* op) const {
    std::array<Tensor, K> out;
    for (int i = 0; i < K; ++i) out[i] = saved_[i].unpack(op);
    return out;
  }
  /// Saved tensor i; throws "[backward] ..." (naming `op`) if it was modified in place or freed.
  Tensor saved(int i, const char* op) const { return saved_[i].unpack(op); }
  /// Drops the saved tensors (after backward, unless retain_graph).
  void release() {
    for (auto& s : saved_) s.reset();
  }
  /// Whether tensor argument i needs a gradient (inputs past the 32nd are assumed to).
  bool needs_grad(int i) const { return i >= 32 || ((needs_ >> i) & 1u); }
  /// Marks tensor argument i (< 32) as needing a gradient (apply() does this).
  void set_needs_grad(int i) { needs_ |= 1u << i; }
  /// The GEMM precision the op's forward ran in (autocast kLower ops); backward runs in it too.
  DType gemm_dtype() const { return gemm_dtype_; }
  /// Records the GEMM precision of the forward (apply() does this for kLower ops).
  void set_gemm_dtype(DType d) { gemm_dtype_ = d; }

 private:
  std::array<SavedTensor, kMaxSaved> saved_;
  uint32_t needs_ = 0;
  DType gemm_dtype_ = kFloat32;
};

/// Shape and dtype of an input, enough to shape its gradient.
struct InputMeta {
  /// The input's shape (its gradient gets this shape).
  Shape shape;
  /// The input's dtype (its gradient is converted back to it).
  DType dtype = kFloat32;
  /// The meta of `t`.
  static InputMeta of(const Tensor& t) { return {t.shape(), t.dtype()}; }
};

namespace detail {

template <class T>
inline constexpr bool is_tensor_v = std::is_same_v<std::decay_t<T>, Tensor>;

template <class T>
bool arg_requires_grad(const T& arg) {
  if constexpr (is_tensor_v<T>) return arg.defined() && arg.requires_grad();
  else return false;
}

inline Edge edge_of(const Tensor& t) {
  if (!t.defined()) return {};
  if (t.grad_fn()) return {t.grad_fn(), nullptr};
  if (t.requires_grad()) return {nullptr, t.impl_ptr()};
  return {};
}

/// Makes `node` the grad_fn of the freshly created output.
void attach(const Tensor& out, std::shared_ptr<Node> node, const char* op);

}  // namespace detail

/// The recorded node of Op with N tensor inputs.
template <class Op, int N>
class OpNode final : public Node {
 public:
  OpNode() : Node(N) {}
  const char* name() const override { return display_name<Op>(); }
  void backward(const Tensor& grad, std::span<Tensor> grads) override {
    std::array<Tensor, N> g;
    if constexpr (autocast_policy(Op::name) == CastPolicy::kLower) {
      autocast::detail::GemmScope scope(ctx.gemm_dtype());
      g = Op::backward(ctx, grad);
    } else {
      g = Op::backward(ctx, grad);
    }
    for (int i = 0; i < N; ++i) grads[i] = std::move(g[i]);
  }
  void release_saved() override { ctx.release(); }
  /// The op's context: what forward saved for backward.
  typename Op::Ctx ctx;
};

namespace detail {

/// apply() without the tracing hook: the tape logic. kFromTrace only makes the tracing path call
/// its own instantiation, so that apply()'s stays called from one place and is inlined as before.
template <bool kFromTrace, class Op, class... Args>
Tensor apply_untraced(const Args&... args) {
  (void)OpRegistration<Op>::registered;  // lists Op before main(); no code runs here
  constexpr int N = (0 + ... + int(detail::is_tensor_v<Args>));
  if (!is_grad_enabled() || !(false || ... || detail::arg_requires_grad(args)))
    return Op::forward(nullptr, args...);
  auto node = std::allocate_shared<OpNode<Op, N>>(PoolAllocator<OpNode<Op, N>>());
  if constexpr (autocast_policy(Op::name) == CastPolicy::kLower) node->ctx.set_gemm_dtype(autocast::detail::gemm_dtype());
  Tensor out;
  {
    NoGradGuard no_grad;
    out = Op::forward(&node->ctx, args...);
  }
  int i = 0;
  auto set_edge = [&](const auto& arg) {
    if constexpr (detail::is_tensor_v<decltype(arg)>) {
      Edge e = detail::edge_of(arg);
      if (e.defined()) node->ctx.set_needs_grad(i);
      node->edges()[i++] = std::move(e);
    }
  };
  (set_edge(args), ...);
  detail::attach(out, std::move(node), display_name<Op>());
  return out;
}

// The tracing path, taken only while some TraceGuard is alive (ops/trace.h): out of line and cold
// so that the hot path of apply() is the tape logic plus one load and one branch. Without an
// active tracer on this thread (another thread traces, or a recorded op is running and its inner
// ops must not be recorded) it is apply_untraced; otherwise it runs the op with recording
// suspended and records it.
template <class Op, class... Args>
[[gnu::noinline, gnu::cold]] Tensor traced_apply(const Args&... args) {
  trace::Tracer* tracer = trace::detail::active();
  if (!tracer) return apply_untraced<true, Op>(args...);
  Tensor out;
  {
    trace::detail::Suspend suspend;
    out = apply_untraced<true, Op>(args...);
  }
  trace::Record r;
  r.op = Op::name;
  auto add = [&r](const auto& arg) {
    if constexpr (is_tensor_v<decltype(arg)>) r.inputs.push_back(arg);
    else r.attrs.push_back(trace::to_attr(arg));
  };
  (add(args), ...);
  r.output = out;
  trace::detail::record(*tracer, std::move(r));
  return out;
}

/// apply() after the autocast hook: tracing or not.
template <class Op, class... Args>
inline Tensor apply_traced_or_not(const Args&... args) {
  if (trace::maybe_tracing()) [[unlikely]] return traced_apply<Op>(args...);
  return apply_untraced<false, Op>(args...);
}

/// An argument as autocast passes it on: a bfloat16/float16 tensor converted to float32 (a
/// recorded cast), anything else unchanged.
template <class T>
decltype(auto) autocast_arg(const T& arg) {
  if constexpr (is_tensor_v<T>) return arg.defined() && is_half(arg.dtype()) ? to_dtype(arg, kFloat32) : arg;
  else return (arg);
}

// The autocast path, taken only while some AutocastGuard is alive (ops/autocast.h), for ops in
// the policy table: 16-bit inputs to float32; kLower ops run with this thread's GEMM precision
// lowered (their node records it for backward).
template <class Op, class... Args>
[[gnu::noinline, gnu::cold]] Tensor autocast_apply(const Args&... args) {
  const DType low = autocast_dtype();
  if (low == kFloat32) return apply_traced_or_not<Op>(args...);  // the guard is another thread's, or disabled
  if constexpr (autocast_policy(Op::name) == CastPolicy::kLower) {
    autocast::detail::GemmScope scope(low);
    return apply_traced_or_not<Op>(autocast_arg(args)...);
  } else {
    return apply_traced_or_not<Op>(autocast_arg(args)...);
  }
}

}  // namespace detail

/// Runs Op::forward, recording a tape node when some tensor argument requires grad (and a trace
/// record while tracing; under autocast, with the policy of ops/autocast.h).
template <class Op, class... Args>
[[gnu::always_inline]] inline Tensor apply(const Args&... args) {
  if constexpr (autocast_policy(Op::name) != CastPolicy::kNone)
    if (autocast::detail::maybe_active()) [[unlikely]] return detail::autocast_apply<Op>(args...);
  if (trace::maybe_tracing()) [[unlikely]] return detail::traced_apply<Op>(args...);
  return detail::apply_untraced<false, Op>(args...);
}

/// A node for ops over a list of tensors (cat, stack).
template <class Op>
class ListOpNode final : public Node {
 public:
  /// A node with `n` edges, one per list element.
  explicit ListOpNode(int n) : Node(n) {}
  const char* name() const override { return display_name<Op>(); }
  void backward(const Tensor& grad, std::span<Tensor> grads) override {
    std::vector<Tensor> g = Op::backward(ctx, grad);
    for (size_t i = 0; i < g.size(); ++i) grads[i] = std::move(g[i]);
  }
  void release_saved() override { ctx.release(); }
  /// The op's context: what forward saved for backward.
  typename Op::Ctx ctx;
};

/// apply for ops whose tensor inputs are a list: Op::forward(ctx, inputs, args...) and
/// Op::backward(ctx, grad) -> std::vector<Tensor> with one entry per input.
namespace detail {

/// apply_list() without the tracing hook (kFromTrace as for apply_untraced).
template <bool kFromTrace, class Op, class... Args>
Tensor apply_list_untraced(const std::vector<Tensor>& inputs, const Args&... args) {
  (void)OpRegistration<Op>::registered;  // lists Op before main(); no code runs here
  bool any = false;
  for (const Tensor& t : inputs) any = any || detail::arg_requires_grad(t);
  if (!is_grad_enabled() || !any) return Op::forward(nullptr, inputs, args...);
  auto node = std::allocate_shared<ListOpNode<Op>>(PoolAllocator<ListOpNode<Op>>(), static_cast<int>(inputs.size()));
  Tensor out;
  {
    NoGradGuard no_grad;
    out = Op::forward(&node->ctx, inputs, args...);
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    Edge e = detail::edge_of(inputs[i]);
    if (e.defined() && i < 32) node->ctx.set_needs_grad(static_cast<int>(i));
    node->edges()[i] = std::move(e);
  }
  detail::attach(out, std::move(node), display_name<Op>());
  return out;
}

/// traced_apply for apply_list.
template <class Op, class... Args>
[[gnu::noinline, gnu::cold]] Tensor traced_apply_list(const std::vector<Tensor>& inputs, const Args&... args) {
  trace::Tracer* tracer = trace::detail::active();
  if (!tracer) return apply_list_untraced<true, Op>(inputs, args...);
  Tensor out;
  {
    trace::detail::Suspend suspend;
    out = apply_list_untraced<true, Op>(inputs, args...);
  }
  trace::Record r;
  r.op = Op::name;
  r.inputs = inputs;
  (r.attrs.push_back(trace::to_attr(args)), ...);
  r.output = out;
  trace::detail::record(*tracer, std::move(r));
  return out;
}

}  // namespace detail

/// Runs Op::forward(ctx, inputs, args...), recording one tape node with an edge per list element
/// when any of them requires grad (and a trace record while tracing), as apply() does.
template <class Op, class... Args>
[[gnu::always_inline]] inline Tensor apply_list(const std::vector<Tensor>& inputs, const Args&... args) {
  if (trace::maybe_tracing()) [[unlikely]] return detail::traced_apply_list<Op>(inputs, args...);
  return detail::apply_list_untraced<false, Op>(inputs, args...);
}

/// Sums a gradient over the dims that broadcasting added or expanded, so it has `shape`
/// (PyTorch's sum_to); converts it back to `dtype` if the op promoted its inputs.
Tensor sum_to(const Tensor& grad, const Shape& shape);
/// sum_to(grad, input.shape), then converted to input.dtype: an input's gradient from its output's.
Tensor grad_for(const Tensor& grad, const InputMeta& input);

}  // namespace latent
