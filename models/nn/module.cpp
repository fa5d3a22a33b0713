#include "module.h"

#include <cxxabi.h>

#include <cmath>
#include <cstdlib>
#include <ostream>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>

#include "../../autograd/grad_mode.h"
#include "../../ops/shape_ops.h"

namespace latent::nn {

Tensor Module::forward(const Tensor&) {
  const std::string name = type_name();
  fail(name.c_str(), "forward is not implemented; override Tensor forward(const Tensor&) in the module");
}

// ---- registration ----

void Module::check_name(const char* op, const std::string& name) const {
  if (name.empty()) fail(op, "the name of a parameter, buffer or submodule must not be empty (in {})", type_name());
  if (name.find('.') != std::string::npos)
    fail(op, "name '{}' must not contain '.' (dots separate nested names)", name);
  auto taken = [&](const auto& list) {
    for (const auto& [key, value] : list)
      if (key == name) return true;
    return false;
  };
  if (taken(parameters_) || taken(buffers_) || taken(children_))
    fail(op, "'{}' is already registered in {}", name, type_name());
}

Tensor Module::register_parameter(const std::string& name, Tensor tensor, bool requires_grad) {
  check_name("register_parameter", name);
  if (!tensor.defined()) fail("register_parameter", "'{}' is an undefined tensor", name);
  if (!tensor.is_floating_point())
    fail("register_parameter", "'{}' has dtype {}; parameters must be float32 or float64", name, tensor.dtype());
  if (!tensor.is_leaf())
    fail("register_parameter", "'{}' is the result of an op (grad_fn set); pass a leaf, e.g. t.detach()", name);
  tensor.requires_grad_(requires_grad);
  parameters_.emplace_back(name, tensor);
  return tensor;
}

Tensor Module::register_buffer(const std::string& name, Tensor tensor) {
  check_name("register_buffer", name);
  if (!tensor.defined()) fail("register_buffer", "'{}' is an undefined tensor", name);
  buffers_.emplace_back(name, tensor);
  return tensor;
}

void Module::register_module_impl(const std::string& name, std::shared_ptr<Module> module) {
  check_name("register_module", name);
  if (!module) fail("register_module", "'{}' is a null module", name);
  if (module.get() == this) fail("register_module", "'{}': a module cannot contain itself", name);
  children_.emplace_back(name, std::move(module));
}

// ---- access ----

void Module::collect_named(StateDict& out, const std::string& prefix, bool params, bool buffers,
                           bool recurse) const {
  if (params)
    for (const auto& [name, t] : parameters_) out.emplace_back(prefix + name, t);
  if (buffers)
    for (const auto& [name, t] : buffers_) out.emplace_back(prefix + name, t);
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect_named(out, prefix + name + ".", params, buffers, true);
}

namespace {
/// Keeps the first occurrence of each tensor (a parameter shared by two modules is listed once).
StateDict unique_tensors(StateDict all) {
  std::unordered_set<const TensorImpl*> seen;
  StateDict out;
  out.reserve(all.size());
  for (auto& entry : all)
    if (seen.insert(entry.second.impl()).second) out.push_back(std::move(entry));
  return out;
}

std::vector<Tensor> values_of(const StateDict& named) {
  std::vector<Tensor> out;
  out.reserve(named.size());
  for (const auto& entry : named) out.push_back(entry.second);
  return out;
}
}  // namespace

StateDict Module::named_parameters(bool recurse) const {
  StateDict all;
  collect_named(all, "", true, false, recurse);
  return unique_tensors(std::move(all));
}

std::vector<Tensor> Module::parameters(bool recurse) const { return values_of(named_parameters(recurse)); }

StateDict Module::named_buffers(bool recurse) const {
  StateDict all;
  collect_named(all, "", false, true, recurse);
  return unique_tensors(std::move(all));
}

std::vector<Tensor> Module::buffers(bool recurse) const { return values_of(named_buffers(recurse)); }

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  out.reserve(children_.size());
  for (const auto& entry : children_) out.push_back(entry.second);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const { return children_; }

std::shared_ptr<Module> Module::child(const std::string& name) const {
  for (const auto& [key, module] : children_)
    if (key == name) return module;
  const std::string type = type_name();
  fail(type.c_str(), "has no submodule '{}'", name);
}

void Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& entry : children_) entry.second->apply(fn);
  fn(*this);
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& entry : children_) entry.second->train(on);
}

// ---- state ----

StateDict Module::state_dict() const {
  StateDict all;
  collect_named(all, "", true, true, true);
  for (auto& entry : all) entry.second = entry.second.detach();
  return all;
}

namespace {
std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "'" : ", '") + name + "'";
  return out;
}
}  // namespace

LoadResult Module::load_state_dict(const StateDict& state, bool strict) {
  constexpr const char* op = "load_state_dict";
  std::unordered_map<std::string, size_t> given;
  for (size_t i = 0; i < state.size(); ++i) {
    if (!given.emplace(state[i].first, i).second)
      fail(op, "key '{}' appears more than once in the state dict", state[i].first);
  }
  StateDict own = state_dict();
  LoadResult result;
  std::vector<std::pair<Tensor, const Tensor*>> copies;  // (destination, source)
  std::unordered_set<std::string> known;
  for (const auto& [name, dst] : own) {
    known.insert(name);
    auto it = given.find(name);
    if (it == given.end()) {
      result.missing_keys.push_back(name);
      continue;
    }
    const Tensor& src = state[it->second].second;
    if (!src.defined()) fail(op, "'{}' is an undefined tensor in the state dict", name);
    if (!(src.shape() == dst.shape()))
      fail(op, "'{}': shape {} in the state dict, {} in the model", name, src.shape(), dst.shape());
    if (src.dtype() != dst.dtype())
      fail(op, "'{}': dtype {} in the state dict, {} in the model", name, src.dtype(), dst.dtype());
    if (src.device() != dst.device())
      fail(op, "'{}': device {} in the state dict, {} in the model", name, src.device(), dst.device());
    copies.emplace_back(dst, &src);
  }
  for (const auto& [name, t] : state)
    if (!known.count(name)) result.unexpected_keys.push_back(name);
  if (strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty())) {
    std::string message;
    if (!result.missing_keys.empty())
      message += fmt::format("missing key{} {}", result.missing_keys.size() > 1 ? "s" : "",
                             quoted_list(result.missing_keys));
    if (!result.unexpected_keys.empty())
      message += fmt::format("{}unexpected key{} {}", message.empty() ? "" : "; ",
                             result.unexpected_keys.size() > 1 ? "s" : "", quoted_list(result.unexpected_keys));
    fail(op, "{} in {} (strict=false loads the rest and returns them)", message, type_name());
  }
  NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(*src);
  return result;
}

LoadResult Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  return load_state_dict(StateDict(state.begin(), state.end()), strict);
}

namespace {
/// Points `t`'s TensorImpl at `src`'s data (so every handle to it sees the change) and drops its gradient.
void replace_data(const Tensor& t, const Tensor& src) {
  TensorImpl* impl = t.impl();
  impl->storage = src.storage();
  impl->shape = src.shape();
  impl->strides = src.strides();
  impl->offset = src.storage_offset();
  impl->dtype = src.dtype();
  impl->grad.reset();
}
}  // namespace

void Module::to(Device device) {
  NoGradGuard no_grad;
  StateDict all;
  collect_named(all, "", true, true, true);
  for (auto& entry : all) {
    Tensor moved = entry.second.detach().to(device);
    if (moved.storage() != entry.second.storage()) replace_data(entry.second, moved);
  }
}

void Module::to(DType dtype) {
  if (!is_floating(dtype)) fail("to", "modules convert to float32 or float64, not {}", dtype);
  NoGradGuard no_grad;
  StateDict all;
  collect_named(all, "", true, true, true);
  for (auto& entry : all) {
    const Tensor& t = entry.second;
    if (!t.is_floating_point() || t.dtype() == dtype) continue;
    replace_data(t, to_dtype(t.detach(), dtype));
  }
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.zero_grad();
}

// ---- printing ----

std::string Module::type_name() const {
  if (!type_name_.empty()) return type_name_;
  const char* mangled = typeid(*this).name();
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = status == 0 && demangled ? demangled : mangled;
  std::free(demangled);
  // Drop namespaces ("latent::nn::Linear" -> "Linear"), but not inside template arguments.
  const size_t angle = name.find('<');
  const size_t colon = name.rfind("::", angle);
  if (colon != std::string::npos) name = name.substr(colon + 2);
  return name;
}

std::string Module::to_string() const {
  // PyTorch's Module.__repr__: extra_repr lines, then "(name): child" lines indented by two.
  std::vector<std::string> lines;
  const std::string extra = extra_repr();
  size_t extra_lines = 0;
  for (size_t start = 0; !extra.empty() && start <= extra.size();) {
    size_t end = extra.find('\n', start);
    if (end == std::string::npos) end = extra.size();
    lines.push_back(extra.substr(start, end - start));
    ++extra_lines;
    start = end + 1;
  }
  for (const auto& [name, child] : children_) {
    std::string text = child->to_string();
    std::string indented;
    for (char c : text) {
      indented += c;
      if (c == '\n') indented += "  ";
    }
    lines.push_back("(" + name + "): " + indented);
  }
  std::string out = type_name() + "(";
  if (extra_lines == 1 && children_.empty()) {
    out += lines[0];
  } else if (!lines.empty()) {
    for (const auto& line : lines) out += "\n  " + line;
    out += "\n";
  }
  return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Module& module) { return os << module.to_string(); }

std::string python_float(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", value);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

}  // namespace latent::nn
