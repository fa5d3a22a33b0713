// The registry of op names (see op_registry.h).
#include "op_registry.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

namespace latent {
namespace {

/// The readable C++ name of a type ("(anonymous namespace)::PowOp").
std::string type_name_of(std::type_index type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status),
                                                   std::free);
  return status == 0 && demangled ? std::string(demangled.get()) : std::string(type.name());
}

}  // namespace

void OpRegistry::add(const char* name, const char* display_name, std::type_index type) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry& e = entries_[name];
  if (e.types.empty()) e.display_name = display_name;
  if (std::find(e.types.begin(), e.types.end(), type) == e.types.end()) e.types.push_back(type);
}

std::vector<OpInfo> OpRegistry::ops() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<OpInfo> out;
  for (const auto& [name, e] : entries_) out.push_back({name, e.display_name});
  return out;
}

bool OpRegistry::contains(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.count(name) != 0;
}

std::vector<std::string> OpRegistry::duplicates() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, e] : entries_) {
    if (e.types.size() < 2) continue;
    std::string line = name + ":";
    for (size_t i = 0; i < e.types.size(); ++i) line += (i ? ", " : " ") + type_name_of(e.types[i]);
    out.push_back(std::move(line));
  }
  return out;
}

OpRegistry& op_registry() {
  static OpRegistry* registry = new OpRegistry();  // never destroyed: ops register from any library
  return *registry;
}

}  // namespace latent
