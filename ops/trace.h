// Tracing hook for the ONNX exporter: while a TraceGuard is alive on a thread, every top-level op
// application (apply<Op> / apply_list<Op>, see apply.h) appends a Record with the op's name, its
// tensor inputs (undefined ones included, in argument order), its output and its non-tensor
// arguments converted to typed attributes (conv and pool params stay structs). Ops that an op's
// forward applies internally are not recorded: the tracer is suspended while a recorded op runs.
//
// ops/ knows nothing about ONNX; onnx_io/ maps the records to ONNX nodes through its export table
// (onnx_io/onnx_op_tables.cpp), keyed by the op's unique name (op_registry.h).
//
// Cost when nothing traces: apply() reads one process-wide counter (relaxed atomic load) and
// branches on it; the thread-local tracer is only consulted while some thread traces.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "../autograd/shape.h"
#include "../autograd/tensor.h"
#include "op_registry.h"
#include "params.h"

namespace latent {
namespace trace {

/// One non-tensor argument of a recorded op, in argument order.
///   Int: integers and enums (i); Float: floating values (f); Bool: bool (i = 0 or 1);
///   Ints: Shape, Pair {h, w}, std::vector<int64_t> (ints); String: const char* / std::string (s);
///   Conv2d / Pool2d: the Conv2dParams / Pool2dParams struct itself (params; read with get<T>()), so
///           the exporter reads fields by name and reordering a struct cannot change an export;
///   None: anything else (output slots such as `Tensor* indices_out`, user types).
struct Attr {
  /// Which of the value members below is set (see the table above).
  enum class Kind : uint8_t { None, Int, Float, Bool, Ints, String, Conv2d, Pool2d };
  /// What the argument was.
  Kind kind = Kind::None;
  /// Int and enum values; Bool as 0 or 1.
  int64_t i = 0;
  /// Float values.
  double f = 0;
  /// Shape, Pair {h, w} and int64 vector values.
  std::vector<int64_t> ints;
  /// String values.
  std::string s;
  /// Conv2dParams or Pool2dParams for those kinds; std::monostate otherwise.
  std::variant<std::monostate, Conv2dParams, Pool2dParams> params;

  /// The typed params this attribute holds; throws "[trace] ..." when it holds something else.
  template <class T>
  const T& get() const {
    if (const T* p = std::get_if<T>(&params)) return *p;
    throw_wrong_kind();
  }

 private:
  [[noreturn]] void throw_wrong_kind() const;
};

/// Ints: the dims of a shape.
Attr attr_of(const Shape& shape);
/// Ints: {h, w}.
Attr attr_of(const Pair& pair);
/// Ints: the values.
Attr attr_of(const std::vector<int64_t>& values);
/// String: the text.
Attr attr_of(const char* text);
/// String: the text.
Attr attr_of(const std::string& text);
/// Conv2d: the params struct, kept whole.
Attr attr_of(const Conv2dParams& p);
/// Pool2d: the params struct, kept whole.
Attr attr_of(const Pool2dParams& p);

/// The attribute form of any op argument that is not a tensor.
template <class T>
Attr to_attr(const T& value) {
  Attr a;
  if constexpr (std::is_same_v<T, bool>) {
    a.kind = Attr::Kind::Bool;
    a.i = value ? 1 : 0;
  } else if constexpr (std::is_integral_v<T>) {
    a.kind = Attr::Kind::Int;
    a.i = static_cast<int64_t>(value);
  } else if constexpr (std::is_floating_point_v<T>) {
    a.kind = Attr::Kind::Float;
    a.f = static_cast<double>(value);
  } else if constexpr (std::is_enum_v<T>) {
    a.kind = Attr::Kind::Int;
    a.i = static_cast<int64_t>(value);
  } else if constexpr (requires { attr_of(value); }) {
    a = attr_of(value);
  }
  return a;
}

/// One recorded op application.
struct Record {
  const char* op = "";             ///< Op::name (unique, see op_registry.h)
  std::vector<Tensor> inputs;      ///< tensor arguments in order (undefined ones kept as such)
  Tensor output;                   ///< the result (kept alive, so its identity stays unique)
  std::vector<Attr> attrs;         ///< non-tensor arguments in order
  uint32_t output_version = 0;     ///< storage version of the output when recorded
};

/// Collects the records of one traced computation.
class Tracer {
 public:
  /// The recorded op applications in execution order.
  std::vector<Record> records;
};

/// Makes `tracer` the active tracer of this thread while alive; restores the previous one after.
class TraceGuard {
 public:
  /// Activates `tracer` (not owned; must outlive the guard) on this thread.
  explicit TraceGuard(Tracer& tracer);
  ~TraceGuard();
  TraceGuard(const TraceGuard&) = delete;
  TraceGuard& operator=(const TraceGuard&) = delete;

 private:
  Tracer* previous_;
};

namespace detail {
/// Number of live TraceGuards in the process: the one value apply() reads when nothing traces.
extern std::atomic<int> g_active_guards;
/// This thread's active tracer, or null (also null while a recorded op runs).
Tracer* active();
/// Suspends recording on this thread while alive (ops inside a recorded op's forward).
class Suspend {
 public:
  Suspend();
  ~Suspend();
  Suspend(const Suspend&) = delete;
  Suspend& operator=(const Suspend&) = delete;

 private:
  Tracer* saved_;
};
/// Appends a record (sets its output version).
void record(Tracer& tracer, Record&& r);
}  // namespace detail

/// Whether some thread may be tracing: the cheap test apply() makes first.
inline bool maybe_tracing() { return detail::g_active_guards.load(std::memory_order_relaxed) != 0; }

/// For an op written as a composition of other ops (softmax, eval batch norm, pad): runs body()
/// and, while this thread traces, records the whole as one op named Op::name with these tensor
/// inputs and attributes instead of recording its pieces, so the exporter can write one node
/// (Softmax, BatchNormalization, Pad) where it knows one. Op is a tag struct with a unique `name`
/// (registered like every op, see op_registry.h). Costs one relaxed load otherwise.
template <class Op, class Body>
Tensor composite(std::vector<Tensor> inputs, std::vector<Attr> attrs, Body&& body) {
  (void)OpRegistration<Op>::registered;
  Tracer* tracer = maybe_tracing() ? detail::active() : nullptr;
  if (!tracer) return body();
  Tensor out;
  {
    detail::Suspend suspend;
    out = body();
  }
  Record r;
  r.op = Op::name;
  r.inputs = std::move(inputs);
  r.output = out;
  r.attrs = std::move(attrs);
  detail::record(*tracer, std::move(r));
  return out;
}

}  // namespace trace
}  // namespace latent
