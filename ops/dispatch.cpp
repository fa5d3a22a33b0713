// Backend registry, the apply<Op> attach step, sum_to, and the hooks the autograd engine uses.
#include <array>

#include "apply.h"
#include "backend.h"
#include "cpu/cpu_backend.h"
#include "creation.h"
#include "elementwise.h"
#include "reduce.h"
#include "shape_ops.h"

namespace latent {
namespace {
std::array<Backend*, kNumDeviceTypes>& backends() {
  static std::array<Backend*, kNumDeviceTypes> table{&cpu_backend(), nullptr};
  return table;
}
}  // namespace

Backend& cpu_backend() {
  static cpu::CpuBackend instance;
  return instance;
}

Backend& backend(Device device, const char* op) {
  Backend* b = backends()[static_cast<int>(device.type)];
  if (!b) {
    check_device_available(op, device);  // names the reason (no CUDA build, no GPU)
    fail(op, "device {} is not available: no backend is registered for it", device);
  }
  return *b;
}

void register_backend(DeviceType type, Backend* b) { backends()[static_cast<int>(type)] = b; }

namespace detail {
void attach(const Tensor& out, std::shared_ptr<Node> node, const char* op) {
  // An op must return a fresh tensor: attaching to an input's impl would rewrite its history.
  if (out.impl_ptr().use_count() != 1)
    fail(op, "internal error: forward returned a tensor that is referenced elsewhere");
  out.impl()->grad_fn = std::move(node);
}
}  // namespace detail

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  const int lead = grad.dim() - shape.size();
  Shape dims;
  for (int d = 0; d < grad.dim(); ++d) {
    if (d < lead || (shape[d - lead] == 1 && grad.shape()[d] != 1)) dims.push_back(d);
  }
  Tensor summed = dims.empty() ? grad : sum(grad, dims, /*keepdim=*/true);
  return summed.shape() == shape ? summed : summed.reshape(shape);
}

Tensor grad_for(const Tensor& grad, const InputMeta& input) {
  Tensor g = sum_to(grad, input.shape);
  return g.dtype() == input.dtype ? g : g.to(input.dtype);
}

namespace {
// Installs what the engine needs to accumulate gradients, at library load time.
const bool hooks_installed = [] {
  AutogradHooks h;
  h.add = [](const Tensor& a, const Tensor& b) { return add(a, b); };
  h.add_inplace = [](Tensor& a, const Tensor& b) { a.add_(b); };
  h.clone = [](const Tensor& t) { return t.clone(); };
  h.ones_like = [](const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); };
  h.all_finite = [](const Tensor& t) { return backend(t.device()).all_finite(t); };
  set_autograd_hooks(h);
  return true;
}();
}  // namespace

}  // namespace latent
