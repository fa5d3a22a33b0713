// Graphviz DOT of a recorded graph, for debugging: `dot -Tpng graph.dot -o graph.png`.
#include <fmt/format.h>

#include <unordered_map>
#include <vector>

#include "node.h"

namespace latent {

std::string graph_to_dot(const Tensor& root) {
  std::string out = "digraph autograd {\n  node [shape=box, fontname=\"monospace\"];\n";
  if (!root.defined() || !root.grad_fn()) {
    if (root.defined()) out += fmt::format("  leaf [label=\"leaf {}\"];\n", root.shape());
    return out + "}\n";
  }
  std::unordered_map<const void*, int> ids;
  auto id_of = [&](const void* p, bool& fresh) {
    auto [it, inserted] = ids.emplace(p, static_cast<int>(ids.size()));
    fresh = inserted;
    return it->second;
  };
  bool fresh = false;
  std::vector<const Node*> stack{root.grad_fn().get()};
  int root_id = id_of(stack.back(), fresh);
  out += fmt::format("  n{} [label=\"{}\", style=bold];\n", root_id, stack.back()->name());
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    int nid = ids.at(n);
    int input = 0;
    for (const Edge& e : n->edges()) {
      if (e.fn) {
        int cid = id_of(e.fn.get(), fresh);
        if (fresh) {
          out += fmt::format("  n{} [label=\"{}\"];\n", cid, e.fn->name());
          stack.push_back(e.fn.get());
        }
        out += fmt::format("  n{} -> n{} [label=\"{}\"];\n", cid, nid, input);
      } else if (e.leaf) {
        int lid = id_of(e.leaf.get(), fresh);
        if (fresh)
          out += fmt::format("  n{} [label=\"leaf {} {}\", shape=ellipse];\n", lid, e.leaf->shape, e.leaf->dtype);
        out += fmt::format("  n{} -> n{} [label=\"{}\"];\n", lid, nid, input);
      }
      ++input;
    }
  }
  return out + "}\n";
}

}  // namespace latent
