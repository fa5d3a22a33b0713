// Tracing hook for the ONNX exporter (see trace.h).
#include "trace.h"

#include "../autograd/error.h"

namespace latent::trace {

namespace detail {
std::atomic<int> g_active_guards{0};
namespace {
thread_local Tracer* t_active = nullptr;
}  // namespace

Tracer* active() { return t_active; }

Suspend::Suspend() : saved_(t_active) { t_active = nullptr; }
Suspend::~Suspend() { t_active = saved_; }

void record(Tracer& tracer, Record&& r) {
  if (r.output.defined()) r.output_version = r.output.version();
  tracer.records.push_back(std::move(r));
}
}  // namespace detail

TraceGuard::TraceGuard(Tracer& tracer) : previous_(detail::t_active) {
  detail::t_active = &tracer;
  detail::g_active_guards.fetch_add(1, std::memory_order_relaxed);
}

TraceGuard::~TraceGuard() {
  detail::g_active_guards.fetch_sub(1, std::memory_order_relaxed);
  detail::t_active = previous_;
}

Attr attr_of(const Shape& shape) {
  Attr a;
  a.kind = Attr::Kind::Ints;
  for (int64_t v : shape) a.ints.push_back(v);
  return a;
}

Attr attr_of(const Pair& pair) {
  Attr a;
  a.kind = Attr::Kind::Ints;
  a.ints = {pair.h, pair.w};
  return a;
}

Attr attr_of(const std::vector<int64_t>& values) {
  Attr a;
  a.kind = Attr::Kind::Ints;
  a.ints = values;
  return a;
}

Attr attr_of(const char* text) {
  Attr a;
  a.kind = Attr::Kind::String;
  a.s = text ? text : "";
  return a;
}

Attr attr_of(const std::string& text) { return attr_of(text.c_str()); }

Attr attr_of(const Conv2dParams& p) {
  Attr a;
  a.kind = Attr::Kind::Conv2d;
  a.params = p;
  return a;
}

Attr attr_of(const Pool2dParams& p) {
  Attr a;
  a.kind = Attr::Kind::Pool2d;
  a.params = p;
  return a;
}

void Attr::throw_wrong_kind() const {
  fail("trace", "attribute of kind {} does not hold the params asked for", static_cast<int>(kind));
}

}  // namespace latent::trace
