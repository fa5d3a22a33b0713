// Hooks into the backward engine (autograd/engine.cpp), for code that must act while backward
// runs: data-parallel training starts a bucket's allreduce as soon as its gradients are complete.
#pragma once

#include <functional>

#include "tensor.h"

namespace latent {

/// Sets (or, with an empty fn, removes) the post-accumulate-grad hook of a leaf that requires
/// grad: fn(leaf) runs once per backward pass that reaches the leaf, on the thread running
/// backward, after the last gradient of the pass was added into leaf.grad() (also when every
/// gradient it got was undefined). One hook per leaf; hooks are not thread-safe to set while a
/// backward runs. The hook refers to the leaf's TensorImpl: remove it before the leaf dies.
void set_post_accumulate_grad_hook(const Tensor& leaf, std::function<void(const Tensor& leaf)> fn);

/// Queues fn to run when the backward pass now running on this thread has finished (PyTorch's
/// queue_callback); callable only from inside a backward pass, i.e. from a hook.
void queue_backward_callback(std::function<void()> fn);

}  // namespace latent
