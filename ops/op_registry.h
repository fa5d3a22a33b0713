// One identity per op: every op struct (and every trace::composite) has a `name` that no other op
// shares. The name is the key of the trace records and of the ONNX export table, so two ops with
// one name would be told apart by guessing (counting inputs, as the exporter once did).
//
// The registry is filled at static-initialization time: apply<Op>, apply_list<Op> and
// trace::composite<Op> name OpRegistration<Op>::registered, which instantiates it, so every op that
// can run is listed before main() without any per-call cost. tests/test_op_registry.cpp fails when
// two op types share a name (duplicates()), and tests/test_onnx_export.cpp checks that every
// registered op has an export rule or a reason why not.
//
// An op whose user-facing function is overloaded (x * 2.0 and x * y are both `mul`) keeps that name
// for its messages and its grad_fn through `display_name`; `name` stays unique ("mul_scalar").
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <typeindex>
#include <typeinfo>
#include <vector>

namespace latent {

/// The name an op shows in error messages and as its node's name(): Op::display_name where the op
/// overloads a user function that another op also implements, else Op::name.
template <class Op>
constexpr const char* display_name() {
  if constexpr (requires { Op::display_name; }) return Op::display_name;
  else return Op::name;
}

/// One registered op.
struct OpInfo {
  std::string name;          ///< the unique identity (Op::name)
  std::string display_name;  ///< what messages and grad_fn show
};

/// Op names to the op types that carry them. Thread-safe; filled before main() by OpRegistration.
class OpRegistry {
 public:
  /// Adds op type `type` under `name`; the same type added twice is one entry.
  void add(const char* name, const char* display_name, std::type_index type);
  /// Every registered op, sorted by name (one entry per name).
  std::vector<OpInfo> ops() const;
  /// Whether some op is registered under `name`.
  bool contains(const std::string& name) const;
  /// "name: TypeA, TypeB" for each name that two or more distinct op types share; empty when every
  /// op has its own name.
  std::vector<std::string> duplicates() const;

 private:
  struct Entry {
    std::string display_name;
    std::vector<std::type_index> types;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

/// The process-wide registry of every op linked into the program.
OpRegistry& op_registry();

/// Registers Op at static-initialization time once something names `registered` (apply<Op> does).
template <class Op>
struct OpRegistration {
  /// Always true; initialising it adds Op to op_registry() before main().
  static inline const bool registered = (op_registry().add(Op::name, display_name<Op>(), typeid(Op)), true);
};

}  // namespace latent
